"""The document wallet (kho giấy tờ): papers a person or an organisation keeps."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from dossiers.models import WALLET_OBJECTS_PREFIX

# Files the wallet stores itself live under this prefix (dossiers.storage_names):
# attachments made from the wallet point at them and dossiers never delete them.
WALLET_PREFIX = WALLET_OBJECTS_PREFIX


def wallet_path(instance: Any, filename: str) -> str:
    return f"{WALLET_PREFIX}{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"


class WalletItem(models.Model):
    class Source(models.TextChoices):
        UPLOAD = "upload", _("Kept by the holder")
        RESULT = "result", _("Issued result")

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        PDF = "pdf", "PDF"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Exactly one owner: a person, or an organisation (its members see it by role).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="wallet_items",
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="wallet_items",
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    document_type = models.ForeignKey(
        "dossiers.DocumentType", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    file = models.CharField(max_length=200, help_text="Storage name (shared with attachments).")
    thumbnail = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    result = models.OneToOneField(
        "dossiers.ResultDocument",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="wallet_item",
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(organisation__isnull=True))
                | (Q(user__isnull=True) & Q(organisation__isnull=False)),
                name="wallet_item_one_owner",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["organisation", "-created_at"]),
            models.Index(fields=["file"]),
            models.Index(fields=["thumbnail"], name="wallet_item_thumbnail"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.id})"
