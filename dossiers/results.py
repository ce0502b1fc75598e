"""State changes of signed results after they were issued: revocation."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.errors import Conflict, NotFound, field_error
from dossiers.events import EventType, record_event
from dossiers.models import Agency, Dossier, DossierEvent, ResultDocument

REVOCATION_REASON_MAX_CHARS = 500


def revoke_result(
    agency: Agency, verification_code: str, *, reason: str, actor_label: str
) -> ResultDocument:
    """The issuing agency withdraws a result: verification says so from now on, and
    the holder is told (event `dossier.result_revoked`, pushed like every event)."""
    reason = reason.strip()
    if not reason or len(reason) > REVOCATION_REASON_MAX_CHARS:
        raise field_error(
            "reason",
            "invalid_reason",
            _("Give the reason, at most %(max)s characters.")
            % {"max": REVOCATION_REASON_MAX_CHARS},
        )
    with transaction.atomic():
        result = (
            ResultDocument.objects.select_for_update()
            .filter(verification_code=verification_code.strip().upper(), dossier__agency=agency)
            .first()
        )
        if result is None:  # another agency's result is not found either
            raise NotFound("result_not_found", _("No such result."))
        if result.revoked_at is not None:
            raise Conflict("already_revoked", _("This result was already revoked."))
        dossier = Dossier.objects.select_for_update().get(pk=result.dossier_id)
        result.revoked_at = timezone.now()
        result.revocation_reason = reason
        result.save(update_fields=["revoked_at", "revocation_reason"])
        dossier.version += 1
        dossier.save(update_fields=["version", "updated_at"])
        record_event(
            dossier,
            type=EventType.DOSSIER_RESULT_REVOKED,
            actor_type=DossierEvent.Actor.AGENCY,
            actor_label=actor_label,
            status_before=dossier.status,
            status_after=dossier.status,
            message=reason,
            data={"verification_code": result.verification_code},
        )
        return result
