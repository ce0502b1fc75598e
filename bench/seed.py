"""Seed the bench database: a citizen, a signed-in session and a submitted dossier.

Run by the harness as `python -m bench.seed` with the bench environment; prints
one JSON line {"access_token", "dossier_id"}. State changes go through the real
actions (draft, submit), so the dossier has its code, appointment and event.
"""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    django.setup()

    from django.utils import timezone

    from auth.models import User
    from auth.tokens import start_session
    from dossiers import actions
    from tests.factories import make_procedure

    user = User.objects.create_user(
        "+84912000001",
        "bench-Passw0rd!",
        full_name="Nguyễn Văn Bench",
        verification_level=User.Level.PHONE,
        phone_verified_at=timezone.now(),
    )
    _session, tokens = start_session(user, device_id="bench-device", name="bench")
    procedure = make_procedure(documents=0)
    draft = actions.create_draft(
        user, procedure, form_data={"full_name": "Nguyễn Văn Bench", "birth_date": "1990-05-17"}
    )
    dossier = actions.submit_dossier(user, draft.pk)
    sys.stdout.write(
        json.dumps({"access_token": tokens.access_token, "dossier_id": str(dossier.pk)}) + "\n"
    )


if __name__ == "__main__":
    main()
