"""What a citizen does to a dossier before and around its life at the agency.

Each function is one state change in one transaction. Status transitions after
submission (withdraw, supplement, the agency's steps) live in `dossiers.lifecycle`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from auth.models import Membership, User
from backend.errors import Conflict, NotFound, Unprocessable, field_error
from backend.times import rfc3339
from dossiers.access import access_dossier, require_identity_level, require_may_act_for
from dossiers.attachments import deletable
from dossiers.deadlines import appointment_for, business_tz
from dossiers.events import EventType, record_event
from dossiers.form_spec import check_draft_values, validate_form
from dossiers.lifecycle import Actor, InvalidTransition, ensure_allowed
from dossiers.lookup_secrets import issue_lookup_secret
from dossiers.models import (
    Agency,
    Attachment,
    Dossier,
    DossierCodeSequence,
    DossierEvent,
    Procedure,
)
from dossiers.results import refuse_revoked_papers


def _not_a_draft() -> Conflict:
    return Conflict("not_a_draft", _("This dossier was already submitted."))


def _invalid_form(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable(details=errors)


def create_draft(
    user: User,
    procedure: Procedure,
    *,
    organisation_id: uuid.UUID | None = None,
    form_data: dict[str, Any] | None = None,
) -> Dossier:
    """A new draft of `procedure`, for `user` or for an organisation they belong to."""
    form_data = form_data or {}
    errors = check_draft_values(procedure.form_spec, form_data)
    if errors:
        raise _invalid_form(errors)
    with transaction.atomic():
        if (
            organisation_id is not None
            and not Membership.objects.filter(organisation_id=organisation_id, user=user).exists()
        ):
            raise NotFound("organisation_not_found", _("No such organisation."))
        # Lock the user's row so two concurrent creations cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        drafts = Dossier.objects.filter(applicant=user, status=Dossier.Status.DRAFT).count()
        if drafts >= settings.DOSSIER_OPEN_DRAFTS_MAX:
            raise Conflict(
                "too_many_drafts",
                _("You have %(count)s drafts: submit or delete some first.") % {"count": drafts},
            )
        return Dossier.objects.create(
            procedure=procedure,
            agency=procedure.agency,
            applicant=user,
            organisation_id=organisation_id,
            status=Dossier.Status.DRAFT,
            channel=Dossier.Channel.ONLINE,
            form_data={key: value for key, value in form_data.items() if value is not None},
        )


def update_draft(user: User, dossier_id: uuid.UUID | str, form_data: dict[str, Any]) -> Dossier:
    """Merge `form_data` into the draft's form: a value sets a field, null clears it."""
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        if dossier.status != Dossier.Status.DRAFT:
            raise _not_a_draft()
        errors = check_draft_values(dossier.procedure.form_spec, form_data)
        if errors:
            raise _invalid_form(errors)
        merged = dict(dossier.form_data)
        for key, value in form_data.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        dossier.form_data = merged
        dossier.version += 1
        dossier.save(update_fields=["form_data", "version", "updated_at"])
        return dossier


def delete_draft(user: User, dossier_id: uuid.UUID | str) -> None:
    """Delete a draft with its attachments (files are removed once the delete commits)."""
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        require_may_act_for(user, dossier)  # a colleague's draft is not theirs to drop
        if dossier.status != Dossier.Status.DRAFT:
            raise _not_a_draft()
        names = [
            name
            for file, thumbnail in Attachment.objects.filter(dossier=dossier).values_list(
                "file", "thumbnail"
            )
            for name in (file, thumbnail)
            if name
        ]
        dossier.delete()
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names: list[str]) -> None:
    for name in deletable(names):  # never a wallet's object (see dossiers.attachments)
        default_storage.delete(name)


def missing_documents(dossier: Dossier) -> list[dict[str, Any]]:
    """Mandatory documents of the procedure that have fewer files than required."""
    counts: dict[str, int] = dict(
        Attachment.objects.filter(dossier=dossier)
        .values("document_code")
        .annotate(n=Count("id"))
        .values_list("document_code", "n")
    )
    missing = []
    for document in dossier.procedure.documents.all():
        present = counts.get(document.code, 0)
        required = max(document.min_files, 1) if document.mandatory else 0
        if present < required:
            missing.append(
                {
                    "field": f"documents.{document.code}",
                    "location": "body",
                    "code": "document_missing",
                    "message": str(
                        _("Attach at least %(count)s file(s) of this document.")
                        % {"count": required}
                    ),
                    "required": required,
                    "present": present,
                }
            )
    return missing


_NEXT_CODE_SQL = (
    "INSERT INTO {table} (agency_id, day, last_number) VALUES (%s, %s, 1) "
    "ON CONFLICT (agency_id, day) DO UPDATE SET last_number = {table}.last_number + 1 "
    "RETURNING last_number"
)


def next_dossier_code(agency: Agency, moment: dt.datetime) -> str:
    """`{agency code}-{yyMMdd}-{NNNN}` from the agency's sequence of the business day.

    One atomic upsert: concurrent submissions queue on the sequence row and each
    gets the next number; a rolled-back submission gives its number back.
    """
    day = moment.astimezone(business_tz()).date()
    # The only name put into the SQL is the model's own table name, quoted; the
    # values travel as parameters.
    table = connection.ops.quote_name(DossierCodeSequence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_CODE_SQL.format(table=table), [agency.pk, day])
        row = cursor.fetchone()
    if row is None:  # RETURNING always yields the row
        raise RuntimeError("dossier code sequence returned no row")
    return f"{agency.code}-{day:%y%m%d}-{int(row[0]):04d}"


def submit_dossier(user: User, dossier_id: uuid.UUID | str) -> Dossier:
    """Send a complete draft to its agency: code, appointment date, first event. A
    paper that is a result revoked since it was attached is refused (422
    `wallet_item_revoked`, `refuse_revoked_papers`)."""
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        # Sent in the applicant's name: theirs to send, or the organisation's managers'.
        require_may_act_for(user, dossier)
        try:
            ensure_allowed("submit", dossier, Actor.citizen(user))
        except InvalidTransition as exc:
            raise _not_a_draft() from exc
        procedure = dossier.procedure
        if not procedure.is_active or not dossier.agency.is_active:
            raise Conflict(
                "procedure_unavailable", _("This procedure no longer accepts applications.")
            )
        require_identity_level(user, procedure.min_identity_level)
        cleaned, errors = validate_form(procedure.form_spec, dossier.form_data)
        missing = missing_documents(dossier)
        if errors or missing:
            raise Unprocessable(
                "dossier_incomplete",
                _("The dossier is incomplete: fix the fields and attach the missing documents."),
                details=[*errors, *missing],
            )
        refuse_revoked_papers(dossier)
        # Checks of higher apps (settings.SUBMISSION_CHECKS), e.g. a fee paid first.
        for path in settings.SUBMISSION_CHECKS:
            import_string(path)(dossier)
        now = timezone.now()
        dossier.form_data = cleaned
        dossier.status = Dossier.Status.NEW
        dossier.channel = Dossier.Channel.ONLINE
        dossier.submitted_at = now
        dossier.code = next_dossier_code(dossier.agency, now)
        dossier.appointment_at = appointment_for(procedure, now)
        issue_lookup_secret(dossier)
        dossier.version += 1
        dossier.save(
            update_fields=[
                "form_data",
                "status",
                "channel",
                "submitted_at",
                "code",
                "appointment_at",
                "lookup_secret_hash",
                "lookup_secret_encrypted",
                "version",
                "updated_at",
            ]
        )
        record_event(
            dossier,
            type=EventType.DOSSIER_SUBMITTED,
            actor_type=DossierEvent.Actor.CITIZEN,
            actor_user=user,
            actor_label=user.full_name,
            status_before=Dossier.Status.DRAFT,
            status_after=Dossier.Status.NEW,
            data={
                "code": dossier.code,
                "channel": dossier.channel,
                "appointment_at": rfc3339(dossier.appointment_at),
            },
        )
        return dossier


def rate_dossier(
    user: User, dossier_id: uuid.UUID | str, satisfaction: int, comment: str = ""
) -> Dossier:
    """Record the citizen's satisfaction, once, after the result was handed over."""
    with transaction.atomic():
        dossier = access_dossier(user, dossier_id, for_update=True)
        require_may_act_for(user, dossier)  # one rating, the applicant's (or a manager's)
        if dossier.status != Dossier.Status.HANDED_OVER:
            raise Conflict(
                "not_handed_over", _("You can rate a dossier once its result is handed over.")
            )
        if dossier.satisfaction is not None:
            raise Conflict("already_rated", _("This dossier was already rated."))
        if "\x00" in comment:
            raise field_error("comment", "invalid_characters", _("Contains invalid characters."))
        limit = settings.DOSSIER_RATING_COMMENT_MAX_CHARS
        if len(comment.strip()) > limit:
            raise field_error(
                "comment", "too_long", _("Must be at most %(max)s characters.") % {"max": limit}
            )
        dossier.satisfaction = Dossier.Satisfaction(satisfaction)
        dossier.satisfaction_comment = comment.strip()
        dossier.rated_at = timezone.now()
        dossier.version += 1
        dossier.save(
            update_fields=[
                "satisfaction",
                "satisfaction_comment",
                "rated_at",
                "version",
                "updated_at",
            ]
        )
        record_event(
            dossier,
            type=EventType.DOSSIER_RATED,
            actor_type=DossierEvent.Actor.CITIZEN,
            actor_user=user,
            actor_label=user.full_name,
            status_before=dossier.status,
            status_after=dossier.status,
            data={"satisfaction": int(dossier.satisfaction)},
        )
        return dossier
