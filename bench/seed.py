"""Seed the bench database: a citizen, a signed-in session and a submitted dossier.

Run by the harness as `python -m bench.seed` with the bench environment; prints
one JSON line {"access_token", "dossier_id", ...}. State changes go through the
real actions (draft, attachments, submit), so the dossier has its code,
appointment and event; it is a realistic one (5 required documents, 6 photo
attachments through the upload pipeline, filed for the citizen's organisation),
so the read benchmark does the work a real dossier's read does.

`python -m bench.seed push --devices N --label NAME` seeds a push audience
instead (bench/push.py): an organisation whose members watch its dossiers and
own N devices (two each), then has the agency accept the organisation's
submitted dossier with the real action, which defers the event's fan-out job as
in production. Prints {"dossier_id", "event_id", "users", "devices"}.

`python -m bench.seed relay` seeds a second citizen with a submitted dossier
filed for their organisation (no documents): the live update row's bare relay
(bench/live_relay.py) is measured on its events, so that its samples' hints
reach no socket of the API server. Prints {"dossier_id"}.

`python -m bench.seed --users N` seeds N more citizens with one session each
(the idle sockets benchmark: at most WS_MAX_SOCKETS_PER_USER sockets per user),
written in bulk with an unusable password: they never sign in with one, and
hashing N passwords would only make seeding slow. Prints {"access_tokens": [...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import django

DEVICES_PER_USER = 2
# The dossier read benchmark's dossier (seed_citizen): as many required documents
# and attachments as a real application carries, at least.
REQUIRED_DOCUMENTS = 5
ATTACHMENTS = 6
# Real FCM registration tokens are about 160 characters.
TOKEN_PADDING = "x" * 140


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what")
    push = sub.add_parser("push", help="an organisation whose members own many devices")
    push.add_argument("--devices", type=int, required=True)
    push.add_argument("--label", required=True, help="makes the tokens of this run unique")
    push.add_argument(
        "--no-accept",
        action="store_true",
        help="leave the dossier submitted (the benchmark accepts it later: `accept`)",
    )
    accept = sub.add_parser("accept", help="the agency accepts a dossier (the event to fan out)")
    accept.add_argument("--dossier", required=True)
    wallet = sub.add_parser("wallet", help="a wallet paper and N drafts that accept it")
    wallet.add_argument("--drafts", type=int, required=True)
    sub.add_parser("relay", help="a second citizen's dossier (the live update row's relay)")
    parser.add_argument("--users", type=int, default=0, help="seed N citizens with a session")
    args = parser.parse_args()
    django.setup()
    data: dict[str, Any]
    if args.what == "push":
        data = seed_push_audience(args.devices, args.label, accept=not args.no_accept)
    elif args.what == "accept":
        data = accept_dossier(args.dossier)
    elif args.what == "wallet":
        data = seed_wallet(args.drafts)
    elif args.what == "relay":
        data = seed_relay_dossier()
    elif args.users > 0:
        data = seed_users(args.users)
    else:
        data = seed_citizen()
    sys.stdout.write(json.dumps(data) + "\n")


def seed_citizen() -> dict[str, Any]:
    import io

    from django.utils import timezone

    from auth.actions.sessions import start_session
    from auth.models import User
    from bench.photos import phone_photo
    from dossiers import actions
    from dossiers.attachments import add_attachment
    from tests.factories import make_organisation, make_procedure

    user = User.objects.create_user(
        "+84912000001",
        "bench-Passw0rd!",
        full_name="Nguyễn Văn Bench",
        verification_level=User.Level.PHONE,
        phone_verified_at=timezone.now(),
    )
    _session, tokens = start_session(user, device_id="bench-device", name="bench")
    # The push audience's procedure (no documents required: bench/seed.py push), made
    # first so that it stays the first procedure of the database.
    make_procedure(documents=0)
    # The read benchmark's dossier does the work a real one does: a procedure with
    # REQUIRED_DOCUMENTS required documents, ATTACHMENTS attachments (real uploads
    # through the pipeline), filed on behalf of the citizen's organisation.
    procedure = make_procedure(documents=REQUIRED_DOCUMENTS)
    organisation = make_organisation(user, name="Công ty TNHH Bench Đọc hồ sơ")
    draft = actions.create_draft(
        user,
        procedure,
        organisation_id=organisation.pk,
        form_data={"full_name": "Nguyễn Văn Bench", "birth_date": "1990-05-17"},
    )
    for index in range(ATTACHMENTS):
        code = f"doc-{index % REQUIRED_DOCUMENTS + 1}"
        upload = phone_photo(1200, 900)  # each one distinct (sensor-like noise)
        add_attachment(
            user,
            draft.pk,
            document_code=code,
            upload=io.BytesIO(upload),
            size=len(upload),
            original_name=f"giay-to-{index + 1}.jpg",
        )
    dossier = actions.submit_dossier(user, draft.pk)
    return {
        "access_token": tokens.access_token,
        "dossier_id": str(dossier.pk),
        "required_documents": REQUIRED_DOCUMENTS,
        "attachments": ATTACHMENTS,
        "organisation": organisation.name,
    }


def seed_relay_dossier() -> dict[str, Any]:
    """A second citizen's submitted dossier, filed for their organisation, on the
    citizen seed's procedure without documents (its status changes are what the
    relay's samples commit)."""
    from django.utils import timezone

    from auth.models import User
    from dossiers import actions
    from dossiers.models import Procedure
    from tests.factories import make_organisation, make_procedure

    user = User.objects.create_user(
        "+84912000002",
        None,
        full_name="Trần Thị Relay",
        verification_level=User.Level.PHONE,
        phone_verified_at=timezone.now(),
    )
    procedure = Procedure.objects.order_by("pk").first() or make_procedure(documents=0)
    organisation = make_organisation(user, tax_code="0912000002", name="Công ty TNHH Bench Relay")
    draft = actions.create_draft(
        user,
        procedure,
        organisation_id=organisation.pk,
        form_data={"full_name": "Trần Thị Relay", "birth_date": "1988-03-09"},
    )
    return {"dossier_id": str(actions.submit_dossier(user, draft.pk).pk)}


def seed_wallet(drafts: int) -> dict[str, Any]:
    """A citizen with one photo in the wallet (through the real pipeline) and `drafts`
    drafts whose required document accepts its type (bench/benchmarks/wallet_attach.py).
    Prints {"access_token", "item_id", "dossier_ids"}."""
    import io
    import itertools

    from django.utils import timezone

    from auth.actions.sessions import start_session
    from auth.models import User
    from bench.photos import phone_photo
    from documents import wallet
    from dossiers import actions
    from dossiers.models import DocumentType
    from tests import factories
    from tests.factories import make_agency, make_procedure

    user = User.objects.create_user(
        "+84912000002",
        None,
        full_name="Trần Thị Ví",
        verification_level=User.Level.PHONE,
        phone_verified_at=timezone.now(),
    )
    _session, tokens = start_session(user, device_id="bench-wallet", name="bench")
    kind = DocumentType.objects.create(code="bench-cccd", name="Căn cước công dân")
    # The factories number rows from 1 in each process: start past the citizen seed's.
    factories._counter = itertools.count(1000)
    procedure = make_procedure(make_agency("BENCH-WALLET"), documents=1)
    procedure.documents.get().accepted_types.add(kind)
    photo = phone_photo(1600, 1200)
    item = wallet.add_item(user, upload=io.BytesIO(photo), size=len(photo), document_type=kind.code)
    form = {"full_name": "Trần Thị Ví", "birth_date": "1990-05-17"}
    ids = [str(actions.create_draft(user, procedure, form_data=form).pk) for _ in range(drafts)]
    return {"access_token": tokens.access_token, "item_id": str(item.pk), "dossier_ids": ids}


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


def accept_dossier(dossier_id: str) -> dict[str, Any]:
    """The agency accepts the dossier with the real action (its transaction defers the
    event's fan-out job). Prints {"event_id", "committed_at"}: the epoch time at which
    the transaction's COMMIT returned (its first on-commit callback)."""
    import time

    from django.db import transaction

    from dossiers import lifecycle
    from dossiers.events import EventType
    from dossiers.models import DossierEvent

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        accepted = lifecycle.accept(dossier_id, lifecycle.Actor.agency_system("bench"))
    events = DossierEvent.objects.filter(dossier=accepted, type=EventType.DOSSIER_ACCEPTED)
    return {"event_id": events.latest("id").pk, "committed_at": committed[0]}


def seed_push_audience(devices: int, label: str, *, accept: bool = True) -> dict[str, Any]:
    """Members and devices in bulk (the sign-ups themselves are not what is measured),
    the dossier and (unless `accept` is false) its acceptance through the real actions."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from django.utils import timezone

    from auth.models import DeviceSession, Membership, Organisation, User
    from dossiers import actions
    from dossiers.models import DossierEvent, Procedure
    from notifications.actions import notify_event
    from notifications.models import Device
    from tests.factories import make_procedure

    now = timezone.now()
    first = User.objects.count()
    phones = (f"+8497{first + n:07d}" for n in range(devices))
    owner = User.objects.create_user(
        next(phones), None, full_name="Chủ doanh nghiệp", phone_verified_at=now
    )
    organisation = Organisation.objects.create(
        tax_code=f"0{first:09d}", name=f"Công ty TNHH Bench {label}"
    )
    Membership.objects.create(
        organisation=organisation, user=owner, role=Membership.Role.OWNER, watches=True
    )
    # The citizen seed's procedure (no documents required), made once per database.
    procedure = Procedure.objects.order_by("pk").first() or make_procedure(documents=0)
    draft = actions.create_draft(
        owner,
        procedure,
        organisation_id=organisation.pk,
        form_data={"full_name": "Chủ doanh nghiệp", "birth_date": "1980-01-02"},
    )
    dossier = actions.submit_dossier(owner, draft.pk)
    # The submission's own fan-out, now that the owner is its only recipient: its
    # job, when the worker gets to it, finds it done.
    notify_event(DossierEvent.objects.filter(dossier=dossier).latest("id").pk)

    users = devices // DEVICES_PER_USER
    unusable = make_password(None)
    with transaction.atomic():
        members = [
            owner,
            *User.objects.bulk_create(
                User(phone=next(phones), full_name=f"Thành viên {n}", password=unusable)
                for n in range(1, users)
            ),
        ]
        Membership.objects.bulk_create(
            Membership(organisation=organisation, user=user, watches=True) for user in members[1:]
        )
        sessions = DeviceSession.objects.bulk_create(
            DeviceSession(
                user=user,
                device_id=f"{label}-{n}-{copy}",
                platform=DeviceSession.Platform.ANDROID,
                last_seen_at=now,
            )
            for n, user in enumerate(members)
            for copy in range(DEVICES_PER_USER)
        )
        Device.objects.bulk_create(
            Device(
                user=session.user,
                session=session,
                token=f"bench-{label}-{n:06d}:{TOKEN_PADDING}",
                platform=Device.Platform.ANDROID,
                installation_id=session.device_id,
                last_seen_at=now,
            )
            for n, session in enumerate(sessions)
        )
    audience: dict[str, Any] = {
        "dossier_id": str(dossier.pk),
        "event_id": None,
        "users": len(members),
        "devices": len(sessions),
    }
    if accept:
        audience["event_id"] = accept_dossier(str(dossier.pk))["event_id"]
    return audience


if __name__ == "__main__":
    main()
