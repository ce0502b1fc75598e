"""State changes of signed results after they were issued: revocation.

A result is attached to other dossiers by reference (the wallet's "use from wallet":
the attachment points at the result's stored object, `results/...`). Such an
attachment is the result: it shows the result's revocation (`result_revoked_at`), and a
revocation changes the dossiers holding it (a new version, a new place in the agency
feed, an event `dossier.paper_revoked` for their audience), whose submission it then
stops (`refuse_revoked_papers`).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.errors import Conflict, NotFound, Unprocessable, field_detail, field_error
from dossiers.events import EventType, record_event
from dossiers.models import (
    RESULT_PAPERS,
    Agency,
    Attachment,
    Dossier,
    DossierEvent,
    ResultDocument,
)

REVOCATION_REASON_MAX_CHARS = 500


def attachments_of(result: ResultDocument) -> QuerySet[Attachment]:
    """The attachments that are `result` (its stored object, attached from the wallet),
    on the attachments' partial index of results (`attachment_result_file`)."""
    return Attachment.objects.filter(RESULT_PAPERS, file=result.file)


def result_revoked_at() -> Subquery:
    """A column of a query of attachments: when the issued result the attachment is
    was revoked; null for every other paper and for a result that stands. One probe
    of the results' digest index per attachment, in the same statement."""
    return Subquery(
        ResultDocument.objects.filter(
            sha256=OuterRef("sha256"), file=OuterRef("file"), revoked_at__isnull=False
        )
        .order_by()
        .values("revoked_at")[:1]
    )


def refuse_revoked_papers(dossier: Dossier) -> None:
    """422 `wallet_item_revoked` when a paper of `dossier` is an issued result revoked
    since it was attached (the citizen replaces it, then sends the dossier)."""
    revoked = list(
        Attachment.objects.filter(RESULT_PAPERS, dossier=dossier)
        .annotate(revoked_at=result_revoked_at())
        .filter(revoked_at__isnull=False)
        .order_by("document_code", "created_at")
        .values_list("id", "document_code")
    )
    if revoked:
        message = _("This paper is a result its agency revoked: replace it.")
        details: list[dict[str, Any]] = [
            {
                **field_detail(f"documents.{code}", "wallet_item_revoked", message),
                "attachment_id": str(pk),
            }
            for pk, code in revoked
        ]
        raise Unprocessable(
            "wallet_item_revoked",
            _("A paper of this dossier is a result its agency revoked: replace it first."),
            details=details,
        )


def revoke_result(
    agency: Agency, verification_code: str, *, reason: str, actor_label: str
) -> ResultDocument:
    """The issuing agency withdraws a result: verification says so from now on, the
    holder is told (event `dossier.result_revoked` on its dossier), and so is each
    dossier holding it as a paper (`dossier.paper_revoked`), pushed like every event."""
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
            ResultDocument.objects.select_for_update(of=("self",))
            .filter(verification_code=verification_code.strip().upper(), dossier__agency=agency)
            .first()
        )
        if result is None:  # another agency's result is not found either
            raise NotFound("result_not_found", _("No such result."))
        if result.revoked_at is not None:
            raise Conflict("already_revoked", _("This result was already revoked."))
        # The result's row lock (its own row only) comes first, as in the wallet's
        # attach: an attach that held it has committed, and its attachment is among
        # these; a later one sees the revocation. Then every dossier, in one order.
        papers = papers_by_holder(result)
        locked = {
            row.pk: row
            for row in Dossier.objects.select_for_update()
            .filter(pk__in={result.dossier_id, *papers})
            .order_by("pk")
        }
        dossier = locked[result.dossier_id]
        result.revoked_at = timezone.now()
        result.revocation_reason = reason
        result.save(update_fields=["revoked_at", "revocation_reason"])
        for holder in locked.values():
            # The issuing dossier, and each holding the result as a paper: a new
            # version for the app's pollers, a new place in the agency feed.
            holder.version += 1
            holder.save(update_fields=["version", "updated_at"])

        def tell(holder: Dossier, type: EventType, **details: Any) -> None:
            """An event of the agency's that leaves the dossier's status as it is."""
            record_event(
                holder,
                type=type,
                actor_type=DossierEvent.Actor.AGENCY,
                actor_label=actor_label,
                status_before=holder.status,
                status_after=holder.status,
                **details,
            )

        tell(
            dossier,
            EventType.DOSSIER_RESULT_REVOKED,
            message=reason,
            data={"verification_code": result.verification_code},
        )
        for holder_id, held in papers.items():
            # Its own event, to its own audience (the holder's applicant and watching
            # members: a business's dossier is not the result holder's): which papers
            # to replace. Not the reason, written for the result's holder alone.
            tell(locked[holder_id], EventType.DOSSIER_PAPER_REVOKED, data={"papers": held})
        return result


def papers_by_holder(result: ResultDocument) -> dict[uuid.UUID, list[dict[str, str]]]:
    """The dossiers other than its own holding `result` as a paper, each with those
    papers (`attachment_id`, `document_code`), in one read of the results' index."""
    papers: dict[uuid.UUID, list[dict[str, str]]] = {}
    rows = (
        attachments_of(result)
        .exclude(dossier_id=result.dossier_id)
        .order_by("dossier_id", "document_code", "created_at")
        .values_list("dossier_id", "id", "document_code")
    )
    for dossier_id, pk, code in rows:
        papers.setdefault(dossier_id, []).append({"attachment_id": str(pk), "document_code": code})
    return papers
