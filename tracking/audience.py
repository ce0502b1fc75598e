"""Who hears about a dossier's events: decided here, by the sender, in one place."""

from __future__ import annotations

import uuid

from auth.models import Membership
from dossiers.models import Dossier


def recipients_for(dossier: Dossier) -> set[uuid.UUID]:
    """The applicant, plus members of the dossier's organisation who watch it."""
    recipients = {dossier.applicant_id}
    if dossier.organisation_id is not None:
        recipients.update(
            Membership.objects.filter(
                organisation_id=dossier.organisation_id, watches=True
            ).values_list("user_id", flat=True)
        )
    return recipients


def user_group(user_id: uuid.UUID | str) -> str:
    """The channel-layer group of one user's open sockets."""
    return f"user.{uuid.UUID(str(user_id)).hex}"
