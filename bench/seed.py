"""Seed the bench database.

    python -m bench.seed               # a citizen, a session and a submitted dossier
    python -m bench.seed --users N     # N more citizens with one session each

Run by the harness with the bench environment; prints one JSON line:
{"access_token", "dossier_id"}, or {"access_tokens": [...]} with `--users`.
The dossier's state changes go through the real actions (draft, submit), so it
has its code, appointment and event. The N citizens (the idle sockets
benchmark: at most WS_MAX_SOCKETS_PER_USER sockets per user) are written in
bulk, with an unusable password: they never sign in with one, and hashing N
passwords would only make seeding slow.
"""

from __future__ import annotations

import argparse
import json
import sys

import django


def seed_dossier() -> dict[str, str]:
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
    return {"access_token": tokens.access_token, "dossier_id": str(dossier.pk)}


def seed_users(count: int) -> dict[str, list[str]]:
    """`count` verified citizens, each signed in on one device; their access tokens."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from auth.models import DeviceSession, User
    from auth.tokens import access_token_for

    now = timezone.now()
    unusable = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            User(
                phone=f"+849130{index:05d}",
                password=unusable,
                full_name=f"Người dùng {index}",
                verification_level=User.Level.PHONE,
                phone_verified_at=now,
            )
            for index in range(count)
        )
        sessions = DeviceSession.objects.bulk_create(
            DeviceSession(
                user=user,
                device_id=f"bench-socket-{index}",
                name="bench",
                last_seen_at=now,
                authenticated_at=now,
            )
            for index, user in enumerate(users)
        )
    return {"access_tokens": [access_token_for(session.pk) for session in sessions]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=0, help="seed N citizens with a session")
    args = parser.parse_args(argv)
    django.setup()
    data = seed_users(args.users) if args.users > 0 else seed_dossier()
    sys.stdout.write(json.dumps(data) + "\n")


if __name__ == "__main__":
    main()
