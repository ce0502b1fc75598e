from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one caller, and the response it produced."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        COMPLETED = "completed"

    scope = models.CharField(max_length=80, help_text="Who sent the key (user or anonymous IP).")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_unique_scope_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({self.state})"
