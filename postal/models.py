"""Saved addresses, delivery bookings and the carrier's status messages."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SavedAddress(models.Model):
    """An address a user keeps for deliveries (2025 units: commune + province)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="postal_addresses"
    )
    label = models.CharField(max_length=50, blank=True, help_text=_("e.g. Home, Office"))
    recipient_name = models.CharField(max_length=150)
    phone = models.CharField(max_length=16, help_text=_("E.164, e.g. +84912345678"))
    street = models.CharField(max_length=255, help_text=_("House number, street, hamlet"))
    commune_code = models.CharField(max_length=5)
    province_code = models.CharField(max_length=2, help_text=_("Follows from the commune."))
    entered_address = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("The old (pre-July-2025) address as the citizen wrote it, if any."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "saved addresses"
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.recipient_name}, {self.street}, {self.commune_code}"


class DeliveryBooking(models.Model):
    """One parcel with a carrier: the result to the citizen, or the paper dossier
    from the citizen's home to the agency. The address is copied at booking time."""

    class Direction(models.TextChoices):
        RESULT = "result", _("Result to the citizen")
        PICKUP = "pickup", _("Paper dossier to the agency")

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("postal delivery status", "Booking pending")
        BOOKED = "booked", pgettext_lazy("postal delivery status", "Booked with the carrier")
        READY_FOR_PICKUP = (
            "ready_for_pickup",
            pgettext_lazy("postal delivery status", "Waiting for the carrier to collect"),
        )
        PICKED_UP = "picked_up", pgettext_lazy("postal delivery status", "Picked up")
        IN_TRANSIT = "in_transit", pgettext_lazy("postal delivery status", "In transit")
        OUT_FOR_DELIVERY = (
            "out_for_delivery",
            pgettext_lazy("postal delivery status", "Out for delivery"),
        )
        FAILED_ATTEMPT = (
            "failed_attempt",
            pgettext_lazy("postal delivery status", "Delivery attempt failed"),
        )
        DELIVERED = "delivered", pgettext_lazy("postal delivery status", "Delivered")
        RETURNED = "returned", pgettext_lazy("postal delivery status", "Returned to sender")
        CANCELLED = "cancelled", pgettext_lazy("postal delivery status", "Cancelled")
        REJECTED = "rejected", pgettext_lazy("postal delivery status", "Refused by the carrier")

    ACTIVE_STATUSES = (
        Status.PENDING,
        Status.BOOKED,
        Status.READY_FOR_PICKUP,
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.FAILED_ATTEMPT,
    )
    # Before the carrier has the parcel: the citizen may still cancel or re-address.
    CHANGEABLE_STATUSES = (Status.PENDING, Status.BOOKED, Status.READY_FOR_PICKUP)

    id = models.BigAutoField(primary_key=True)
    dossier = models.ForeignKey(
        "dossiers.Dossier", on_delete=models.PROTECT, related_name="postal_bookings"
    )
    direction = models.CharField(max_length=6, choices=Direction.choices)
    carrier = models.CharField(max_length=20)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    revision = models.PositiveIntegerField(
        default=1, help_text="Bumped when the address changes: a new carrier order."
    )
    order_number = models.CharField(
        max_length=80, unique=True, help_text="Our order number at the carrier (idempotency key)."
    )
    waybill = models.CharField(
        max_length=40, blank=True, help_text="The carrier's tracking number."
    )
    address = models.ForeignKey(
        SavedAddress, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recipient_name = models.CharField(max_length=150)
    phone = models.CharField(max_length=16)
    street = models.CharField(max_length=255)
    commune_code = models.CharField(max_length=5)
    province_code = models.CharField(max_length=2)
    weight_grams = models.PositiveIntegerField()
    zone = models.CharField(max_length=8)
    fee = models.PositiveBigIntegerField(help_text="Postage, VND.")
    cod_amount = models.PositiveBigIntegerField(
        default=0, help_text="Procedure fee the carrier collects on delivery, VND."
    )
    expected_days = models.PositiveSmallIntegerField()
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    last_error = models.CharField(
        max_length=60, blank=True, help_text="Last carrier error code while pending."
    )
    carrier_status_at = models.DateTimeField(
        null=True, blank=True, help_text="When the carrier says the current status happened."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dossier", "direction"],
                condition=Q(
                    status__in=[
                        "pending",
                        "booked",
                        "ready_for_pickup",
                        "picked_up",
                        "in_transit",
                        "out_for_delivery",
                        "failed_attempt",
                    ]
                ),
                name="delivery_booking_one_active",
            ),
        ]
        indexes = [models.Index(fields=["carrier", "waybill"])]

    def __str__(self) -> str:
        return f"{self.order_number} ({self.status})"


class CarrierMessage(models.Model):
    """Every webhook message a carrier sent, once per message id (replays are no-ops)."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "applied"
        STALE = "stale", "stale (older than the booking's state)"
        UNKNOWN_ORDER = "unknown_order", "unknown order"

    carrier = models.CharField(max_length=20)
    message_id = models.CharField(max_length=100)
    booking = models.ForeignKey(
        DeliveryBooking, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    status = models.CharField(max_length=20)
    occurred_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["carrier", "message_id"], name="carrier_message_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carrier}:{self.message_id} {self.status} ({self.outcome})"
