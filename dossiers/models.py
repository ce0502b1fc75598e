"""Agencies, the procedure catalogue, dossiers and their attachments."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from dossiers.event_types import EventType


def default_office_hours() -> list[list[str]]:
    # Typical one-stop office: 7:00-11:30 and 13:30-17:00 (8 working hours).
    return [["07:00", "11:30"], ["13:30", "17:00"]]


class Agency(models.Model):
    class Level(models.TextChoices):
        MINISTRY = "ministry", _("Ministry")
        PROVINCE = "province", _("Province")
        COMMUNE = "commune", _("Commune")

    code = models.CharField(
        max_length=20, unique=True, help_text=_("Used in dossier codes, e.g. HN-PXB")
    )
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)
    level = models.CharField(max_length=10, choices=Level.choices)
    province_code = models.CharField(max_length=8, blank=True)
    commune_code = models.CharField(max_length=8, blank=True)
    office_hours = models.JSONField(
        default=default_office_hours,
        help_text=_('Working periods of a working day, e.g. [["07:00","11:30"],["13:30","17:00"]]'),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AgencyCalendarDay(models.Model):
    """An agency's own exception to the national calendar."""

    class Kind(models.TextChoices):
        DAY_OFF = "day_off", _("Day off")
        WORKING_DAY = "working_day", _("Make-up working day")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="calendar_days")
    date = models.DateField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "date"], name="agency_calendar_day_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.date} {self.kind}"


class DocumentType(models.Model):
    """A kind of paper of the catalogue (CCCD, birth certificate, marriage certificate...).

    Required documents say which types they accept; papers kept in the document
    wallet carry one, so a draft can offer "use from wallet" for each document.
    """

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=255)
    name_en = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Procedure(models.Model):
    """An administrative procedure (thủ tục hành chính) of the national catalogue."""

    class ServiceLevel(models.TextChoices):
        PARTIAL = "partial", _("Partially online")
        WHOLE = "whole", _("Wholly online")

    class TimeUnit(models.TextChoices):
        WORKING_DAYS = "working_days", _("working days")
        WORKING_HOURS = "working_hours", _("working hours")
        CALENDAR_DAYS = "calendar_days", _("calendar days")

    class FeeTiming(models.TextChoices):
        BEFORE = "before", _("Pay when submitting")
        AFTER = "after", _("Pay when receiving the result")

    code = models.CharField(max_length=20, unique=True, help_text=_("National code, e.g. 1.001193"))
    name = models.CharField(max_length=500)
    name_en = models.CharField(max_length=500, blank=True)
    search_text = models.TextField(
        blank=True, editable=False, help_text="Lower-case name without diacritics, for search."
    )
    field = models.CharField(
        max_length=200, help_text=_("Field of the procedure, e.g. Civil status.")
    )
    field_en = models.CharField(max_length=200, blank=True)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="procedures")
    service_level = models.CharField(max_length=8, choices=ServiceLevel.choices)
    processing_time = models.PositiveIntegerField()
    processing_unit = models.CharField(max_length=16, choices=TimeUnit.choices)
    fee_amount = models.PositiveBigIntegerField(default=0, help_text=_("VND; 0 means exempt"))
    fee_timing = models.CharField(max_length=8, choices=FeeTiming.choices, default=FeeTiming.BEFORE)
    form_spec = models.JSONField(default=list, help_text=_("Declarative list of form fields"))
    postal_return_allowed = models.BooleanField(default=False)
    electronic_result = models.BooleanField(default=False)
    result_type = models.ForeignKey(
        DocumentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("What the issued result is, in the wallet"),
    )
    description = models.TextField(blank=True)
    description_en = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    min_identity_level = models.PositiveSmallIntegerField(
        default=0,
        choices=[(0, _("Any account")), (1, _("VNeID level 1")), (2, _("VNeID level 2"))],
        help_text=_("Least national identity level (VNeID) of the account that submits."),
    )
    version = models.PositiveIntegerField(
        default=1,
        editable=False,
        help_text=(
            "Bumped by dossiers.catalogue.procedure_changed() whenever the procedure or its "
            "required documents change: readers cache the documents by procedure and version."
        ),
    )

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class RequiredDocument(models.Model):
    """A paper the citizen must attach. Whoever adds, edits or deletes one calls
    `dossiers.catalogue.procedure_changed(procedure)` in the same transaction."""

    class Kind(models.TextChoices):
        PHOTO = "photo", _("Photo")
        PDF = "pdf", _("PDF")

    procedure = models.ForeignKey(Procedure, on_delete=models.CASCADE, related_name="documents")
    code = models.SlugField(max_length=50)
    name = models.CharField(max_length=500)
    name_en = models.CharField(max_length=500, blank=True)
    mandatory = models.BooleanField(default=True)
    accepted_kinds = models.JSONField(default=list, help_text='e.g. ["photo", "pdf"]')
    accepted_types = models.ManyToManyField(
        DocumentType,
        blank=True,
        related_name="required_by",
        help_text=_("Papers from the wallet that may be used for this document"),
    )
    min_files = models.PositiveSmallIntegerField(default=1)
    max_files = models.PositiveSmallIntegerField(default=5)
    guidance = models.TextField(blank=True)
    guidance_en = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["procedure", "code"], name="required_document_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.procedure_id}/{self.code}"


# Issued results' stored objects: a wallet paper that is a result, and an attachment
# made from it, point at the same one (dossiers/results.py finds them by this prefix).
RESULTS_PREFIX = "results/"
# The attachments that are issued results: the condition of their partial index, and
# of every query meant to use it (a pattern without "%": the concurrent index build
# would read a LIKE's "%" as a placeholder).
RESULT_PAPERS = Q(file__regex=f"^{RESULTS_PREFIX}")
# The wallet's stored objects (documents.models.WALLET_PREFIX, which this app may not
# import): an attachment made from a kept paper points at the wallet's file and
# thumbnail. The conditions of their partial indexes, and of the wallet's queries
# that decide whether an object is still referenced (documents/wallet.py).
WALLET_OBJECTS_PREFIX = "wallet/"
WALLET_FILES = Q(file__regex=f"^{WALLET_OBJECTS_PREFIX}")
WALLET_THUMBNAILS = Q(thumbnail__regex=f"^{WALLET_OBJECTS_PREFIX}")


def result_path(instance: Any, filename: str) -> str:
    return f"{RESULTS_PREFIX}{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"


# The clock runs (dossiers/lifecycle.py CLOCK_RUNNING: accepted, processing, payment
# requested), it is not paused and there is an appointment: dossiers/monitoring.py `running`.
RUNNING_CONDITION = Q(status__in=[2, 4, 6], paused_at__isnull=True, appointment_at__isnull=False)


class Dossier(models.Model):
    """An application (hồ sơ). Status codes follow the national portal's ten codes."""

    class Status(models.IntegerChoices):
        # In their own context: the same English words name other things too (an
        # invitation is "Accepted" as well), which Vietnamese may say differently.
        DRAFT = 0, pgettext_lazy("dossier status", "Draft")
        NEW = 1, pgettext_lazy("dossier status", "Submitted")  # mới đăng ký
        ACCEPTED = 2, pgettext_lazy("dossier status", "Accepted")  # được tiếp nhận
        # không được tiếp nhận
        REFUSED = 3, pgettext_lazy("dossier status", "Refused at reception")
        PROCESSING = 4, pgettext_lazy("dossier status", "Processing")  # đang xử lý
        # yêu cầu bổ sung giấy tờ
        SUPPLEMENT_REQUESTED = 5, pgettext_lazy("dossier status", "Supplement requested")
        # yêu cầu thực hiện nghĩa vụ tài chính
        PAYMENT_REQUESTED = 6, pgettext_lazy("dossier status", "Payment requested")
        # công dân yêu cầu rút hồ sơ
        WITHDRAWN = 7, pgettext_lazy("dossier status", "Withdrawn")
        STOPPED = 8, pgettext_lazy("dossier status", "Processing stopped")  # dừng xử lý
        RESULT_READY = 9, pgettext_lazy("dossier status", "Result ready")  # đã xử lý xong
        HANDED_OVER = 10, pgettext_lazy("dossier status", "Result handed over")  # đã trả kết quả

    class Channel(models.IntegerChoices):
        IN_PERSON = 1, _("In person")
        ONLINE = 2, _("Online")
        POSTAL = 3, _("By post")

    class Satisfaction(models.IntegerChoices):
        VERY_SATISFIED = 1, _("Very satisfied")  # rất hài lòng
        SATISFIED = 2, _("Satisfied")  # hài lòng
        UNSATISFIED = 3, _("Unsatisfied")  # không hài lòng

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=40, unique=True, null=True, blank=True)
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="dossiers")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="dossiers")
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dossiers"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="dossiers",
    )
    status = models.PositiveSmallIntegerField(choices=Status.choices, default=Status.DRAFT)
    channel = models.PositiveSmallIntegerField(choices=Channel.choices, default=Channel.ONLINE)
    form_data = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    appointment_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Appointment date: when the result is due.")
    )
    paused_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Set while the agency waits for a supplement.")
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(
        choices=Satisfaction.choices, null=True, blank=True
    )
    satisfaction_comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    # Lifecycle (dossiers/lifecycle.py) and deadline monitoring (dossiers/monitoring.py).
    accepted_at = models.DateTimeField(null=True, blank=True)
    original_appointment_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "The appointment before the first apology (form 04): the legal deadline that "
            "on-time statistics use. Moved only by supplement pauses."
        ),
    )
    paused_working_seconds = models.PositiveIntegerField(
        default=0, help_text="Working seconds spent waiting for supplements, in total."
    )
    # The working time from acceptance (else submission) to the result, less the
    # supplements' pauses, in the agency's calendar as it was at the finish (frozen:
    # a later change of the calendar does not rewrite it). Written by the finishing
    # move (lifecycle.complete); NULL on a dossier finished before the column existed,
    # whose figure the performance report works out as it did (monitoring.py). Not a
    # Positive*Field: its inline CHECK would be checked on every row as it is added.
    processing_seconds = models.IntegerField(null=True, blank=True, editable=False)
    overdue_at = models.DateTimeField(null=True, blank=True)
    deadline_warned_at = models.DateTimeField(null=True, blank=True)
    apologised_at = models.DateTimeField(null=True, blank=True)
    payment_amount = models.PositiveBigIntegerField(null=True, blank=True, help_text="VND")
    result_file = models.FileField(upload_to=result_path, max_length=200, blank=True)
    result_file_name = models.CharField(max_length=255, blank=True)
    result_file_content_type = models.CharField(max_length=100, blank=True)
    handover_method = models.CharField(max_length=12, blank=True)
    # The receipt's lookup secret (dossiers/lookup_secrets.py), issued at submission.
    lookup_secret_hash = models.CharField(max_length=128, blank=True, editable=False)
    lookup_secret_encrypted = models.CharField(max_length=255, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every change (ETag).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["applicant", "-created_at"]),
            models.Index(fields=["organisation", "-created_at"]),
            models.Index(fields=["agency", "status"]),
            models.Index(fields=["agency", "updated_at", "id"], name="dossier_agency_feed"),
            # The deadline scans (dossiers/monitoring.py: `running`, whose condition
            # this is, status IN CLOCK_RUNNING written out, a test holds them equal):
            # every running dossier by deadline, and those not marked overdue yet
            # (what the periodic scan reads: overdue to mark, at risk to warn).
            models.Index(
                Coalesce("original_appointment_at", "appointment_at"),
                "id",
                name="dossier_running_deadline",
                condition=RUNNING_CONDITION,
            ),
            models.Index(
                Coalesce("original_appointment_at", "appointment_at"),
                "id",
                name="dossier_unmarked_deadline",
                condition=RUNNING_CONDITION & Q(overdue_at__isnull=True),
            ),
            # The at-risk scan's candidates: not overdue and not warned yet.
            models.Index(
                Coalesce("original_appointment_at", "appointment_at"),
                "id",
                name="dossier_unwarned_deadline",
                condition=RUNNING_CONDITION
                & Q(overdue_at__isnull=True, deadline_warned_at__isnull=True),
            ),
            # The performance report's period (monitoring.performance), of one agency
            # or all: the dossiers received, and those finished with what their figures
            # read (an index-only scan each). On (agency, status) the largest agency's
            # month was 55-60 k blocks of the table each at 1 M dossiers (migration 0024).
            models.Index(
                fields=["submitted_at"],
                name="dossier_received",
                include=["agency", "status", "channel"],
            ),
            # With the stored working time, which the average sums (migration 0029;
            # `dossier_finished`, without it, made the average visit every row).
            models.Index(
                fields=["finished_at"],
                name="dossier_finished_processing",
                include=[
                    "agency",
                    "status",
                    "accepted_at",
                    "submitted_at",
                    "paused_working_seconds",
                    "original_appointment_at",
                    "appointment_at",
                    "processing_seconds",
                ],
                condition=Q(status__in=[9, 10]),
            ),
        ]
        constraints = [
            # An apology only moves the appointment later, and a supplement pause moves
            # both dates alike (working time added to each: never past one another):
            # the legal deadline is never after the appointment, and exists only beside
            # one (dossiers/lifecycle.py `apologise`, `submit_supplement`). Added NOT
            # VALID, then validated (migration 0023).
            models.CheckConstraint(
                condition=Q(original_appointment_at__isnull=True)
                | Q(appointment_at__isnull=False, original_appointment_at__lte=F("appointment_at")),
                name="dossier_original_appointment_not_after",
            ),
        ]

    def __str__(self) -> str:
        return self.code or f"draft {self.id}"


class ResultDocument(models.Model):
    """A signed electronic result (dossiers/result_signatures.py) and its verification.

    The bytes are the dossier's `result_file`; this row records who signed them,
    with which certificate, when, their digest, and the short code printed on
    the document that anyone can check (documents/verification.py).
    """

    class Source(models.TextChoices):
        AGENCY = "agency", _("Signed by the agency")
        SERVER = "server", _("Signed by the service for the agency")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dossier = models.ForeignKey(Dossier, on_delete=models.PROTECT, related_name="results")
    verification_code = models.CharField(max_length=20, unique=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    file = models.CharField(max_length=200, help_text="Storage name of the signed PDF.")
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveIntegerField()
    signer_name = models.CharField(max_length=255)
    signer_organisation = models.CharField(max_length=255, blank=True)
    certificate_serial = models.CharField(max_length=64)
    certificate_issuer = models.CharField(max_length=255, blank=True)
    signing_time = models.DateTimeField()
    valid_until = models.DateField(null=True, blank=True, help_text=_("Expiry of the document"))
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.verification_code} ({self.dossier_id})"


class DossierCodeSequence(models.Model):
    """Per-agency daily counter behind `{agency code}-{yyMMdd}-{NNNN}`."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE)
    day = models.DateField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "day"], name="dossier_code_sequence_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agency_id} {self.day}: {self.last_number}"


def attachment_path(instance: Any, filename: str) -> str:
    # Random names only: nothing the citizen typed reaches the storage path.
    return f"attachments/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file attached to one required document of a dossier."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        PDF = "pdf", "PDF"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="attachments")
    document_code = models.SlugField(max_length=50)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    file = models.FileField(upload_to=attachment_path, max_length=200)
    thumbnail = models.FileField(upload_to=attachment_path, max_length=200, blank=True)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, help_text="Of the file as uploaded.")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dossier", "sha256"], name="attachment_unique_content"),
        ]
        indexes = [
            # The few attachments that are issued results (attached from the wallet),
            # by their stored object: a revocation finds the dossiers holding one
            # (dossiers/results.py `attachments_of`), not a scan of every paper.
            models.Index(
                fields=["file"],
                condition=RESULT_PAPERS,
                name="attachment_result_file",
            ),
            # The attachments made from kept wallet papers, by the wallet's objects:
            # deleting a paper, and the nightly sweep of orphans, ask whether an
            # attachment still points at one (documents/wallet.py).
            models.Index(fields=["file"], condition=WALLET_FILES, name="attachment_wallet_file"),
            models.Index(
                fields=["thumbnail"], condition=WALLET_THUMBNAILS, name="attachment_wallet_thumb"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dossier_id}/{self.document_code}/{self.id}"


class SupplementRequest(models.Model):
    """A request for missing or incorrect papers (form 02). The clock pauses meanwhile."""

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="supplements")
    documents = models.JSONField(
        default=list, help_text='[{"code": "doc-1" or "", "name": "...", "note": "..."}]'
    )
    message = models.TextField(blank=True)
    requested_at = models.DateTimeField()
    requested_by = models.CharField(max_length=255, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    citizen_message = models.TextField(blank=True)
    paused_working_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"supplement {self.id} of {self.dossier_id}"


class Apology(models.Model):
    """An apology letter (form 04) with a new appointment date."""

    dossier = models.ForeignKey(Dossier, on_delete=models.CASCADE, related_name="apologies")
    previous_appointment_at = models.DateTimeField()
    new_appointment_at = models.DateTimeField()
    reason = models.TextField()
    issued_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "apologies"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"apology {self.id} of {self.dossier_id}"


class CurrentTransactionId(models.Func):
    """The inserting transaction's id: the database default of the event log's
    former `txid` (0 on SQLite). No field uses it since migration 0021; migration
    0016 names it, so it stays."""

    template = "0"
    arity = 0
    output_field = models.BigIntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return "(pg_current_xact_id()::text::bigint)", []


class DossierEvent(models.Model):
    """One step in a dossier's life, in the append-only event log.

    Rows are inserted (by `dossiers.events.record_event`), never updated or
    deleted: a database trigger refuses UPDATE and DELETE. The table keeps the
    name it had when the tracking app owned the model.

    `id` is global (the WebSocket resume cursor); `seq` counts per dossier.

    `id` is the log's order. Ids come from a sequence and can become visible out
    of order when two transactions commit in the opposite order: an event is
    final once every smaller id is committed or will never be (see
    tracking/stream.py, the reader). On PostgreSQL a trigger takes the id
    (migration 0018), after taking the event writers' lock.

    The table still has a `txid` column on PostgreSQL, written by nothing and
    named by no query of this release (migration 0021); the next release drops it.
    """

    class Actor(models.TextChoices):
        CITIZEN = "citizen", _("Citizen")
        AGENCY = "agency", _("Agency system")
        OFFICER = "officer", _("Agency officer")
        CARRIER = "carrier", _("Postal carrier")
        SYSTEM = "system", _("System")

    id = models.BigAutoField(primary_key=True)
    # No index of its own: (dossier, seq) and (dossier, id) below both lead with it,
    # and a third index on every event's insert bought nothing (migration 0020).
    dossier = models.ForeignKey(
        Dossier, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40, choices=EventType.choices)
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
    # The dossier's organisation, copied at insert (a dossier never changes
    # organisation): an organisation member's replay reads the organisation's
    # events in log order from their own index (tracking/stream.py), instead of
    # sorting the events of every one of its dossiers. No foreign-key constraint
    # (the dossier's own holds it): adding one would scan the 20 M-row log.
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    # The agency that held the dossier when the event was written (set by
    # `record_event`; a dossier never changes agency today, and if it ever moved, a
    # payment request would stay its requester's). The performance report reads an
    # agency's payment requests by it, not each request's dossier. No foreign-key
    # constraint (the dossier's holds it; adding one would scan the log). Events
    # written before the column existed hold NULL, except the payment requests
    # (backfilled, migration 0028).
    agency = models.ForeignKey(
        Agency,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        db_table = "tracking_dossierevent"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dossier", "seq"], name="dossier_event_unique_seq"),
        ]
        indexes = [
            # A socket's replay: its dossiers' events after a cursor, in log order
            # (tracking/stream.py), without walking everyone's log from the cursor.
            models.Index(fields=["dossier", "id"], name="dossier_event_dossier_log"),
            # An organisation's events in log order (the replay of its members).
            models.Index(
                fields=["organisation", "id"],
                name="dossier_event_org_log",
                condition=Q(organisation__isnull=False),
            ),
            # The payment requests of a period (monitoring.fee_requests, the agencies'
            # performance report): without it the report read the period's events of
            # every agency by `created_at` and kept one in seventy. Its columns are all
            # the statement reads of a request (an index-only scan).
            models.Index(
                fields=["created_at"],
                name="dossier_event_payment_requests",
                include=["dossier", "seq"],
                condition=Q(type=EventType.DOSSIER_PAYMENT_REQUESTED),
            ),
            # One agency's payment requests of a period (its performance report): read
            # by the agency beside each request, not by each request's dossier (25 k
            # dossiers read by key for the largest agency's month at 1 M dossiers).
            models.Index(
                fields=["agency", "created_at"],
                name="event_agency_payment_requests",
                include=["dossier", "seq"],
                condition=Q(type=EventType.DOSSIER_PAYMENT_REQUESTED),
            ),
            # The moves that ended a payment request (status 6 before), by (dossier,
            # seq), with their type: how the report finds what ended each request (an
            # index-only probe of a small index, not of (dossier, seq) and the row).
            models.Index(
                fields=["dossier", "seq"],
                name="event_payment_request_ends",
                include=["type"],
                condition=Q(status_before=6),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} ({self.dossier_id}#{self.seq})"


class AgencyOfficer(models.Model):
    """A staff user who may act on one agency's dossiers in the admin."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="officers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agency_roles"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "user"], name="agency_officer_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.agency_id}"


class AgencyCredential(models.Model):
    """A back-office system's signing key. Secrets are encrypted (HMAC needs them back).

    Rotation keeps the previous secret valid until `previous_valid_until`, so the
    agency can deploy the new secret without a gap.
    """

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="credentials")
    key_id = models.CharField(max_length=40, unique=True)
    label = models.CharField(max_length=100, blank=True)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key_id} ({self.agency_id})"
