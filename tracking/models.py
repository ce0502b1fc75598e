"""The append-only log of what happens to each dossier."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DossierEvent(models.Model):
    """One step in a dossier's life. Rows are inserted, never updated or deleted.

    `id` is global (the WebSocket resume cursor); `seq` counts per dossier.

    `txid` is the PostgreSQL transaction that inserted the row (0 on SQLite).
    Ids come from a sequence and can become visible out of order when two
    transactions commit in the opposite order; (txid, id) is the stable order
    of the log, and an event is final once every transaction with a smaller
    txid has ended (see tracking/stream.py).
    """

    class Actor(models.TextChoices):
        CITIZEN = "citizen", _("Citizen")
        AGENCY = "agency", _("Agency system")
        OFFICER = "officer", _("Agency officer")
        CARRIER = "carrier", _("Postal carrier")
        SYSTEM = "system", _("System")

    id = models.BigAutoField(primary_key=True)
    dossier = models.ForeignKey("dossiers.Dossier", on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    status_before = models.PositiveSmallIntegerField(null=True, blank=True)
    status_after = models.PositiveSmallIntegerField(null=True, blank=True)
    actor_type = models.CharField(max_length=8, choices=Actor.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=255, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    txid = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dossier", "seq"], name="dossier_event_unique_seq"),
        ]
        indexes = [models.Index(fields=["txid", "id"], name="dossier_event_log_order")]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} ({self.dossier_id}#{self.seq})"
