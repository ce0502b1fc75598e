"""The fuzzed world: a signed-in citizen owning real rows the fuzzer can aim at."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from PIL import Image

from auth.models import Invitation, Membership, User
from dossiers.agency.credentials import create_credential
from dossiers.models import Dossier
from fakes.business_registry import FakeBusinessRegistry
from fakes.identity_provider import FakeIdentityProvider
from tests.accounts.staff import client_for, make_citizen, make_staff
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_organisation, make_procedure
from tests.postal.conftest import WEBHOOK_SECRET, make_address


@dataclass
class World:
    """Real identifiers by parameter name; the fuzzer mixes them with generated ones."""

    token: str = ""
    staff_token: str = ""
    # The agency of the world's dossiers: its credential signs the agency pass.
    agency_key: str = ""
    agency_secret: str = ""
    known: dict[str, list[Any]] = field(default_factory=dict)


# Read by the generation hooks while a fuzz test runs; filled by the `world` fixture.
WORLD = World()


@pytest.fixture(autouse=True)
def _sandbox(
    settings: Any, tmp_path: Path, idp: FakeIdentityProvider, registry: FakeBusinessRegistry
) -> None:
    # National sign-in and the business registry talk to their fakes (settings set by
    # the fixtures), so their routes answer as in production instead of 503 "disabled".
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.POSTAL_WEBHOOK_SECRETS = {"vnpost": WEBHOOK_SECRET}


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def world(db: None) -> Iterator[World]:
    citizen = make_user()
    session, tokens = sign_in(citizen)
    api = ApiClient(token=tokens.access_token)
    procedure = make_procedure()
    draft = make_dossier(citizen, procedure)
    accepted = make_dossier(citizen, procedure, status=Dossier.Status.ACCEPTED)
    handed_over = make_dossier(citizen, procedure, status=Dossier.Status.HANDED_OVER)
    address = make_address(citizen)
    organisation = make_organisation(citizen)
    colleague = make_user()
    Membership.objects.create(organisation=organisation, user=colleague)
    invitation = Invitation.objects.create(
        organisation=make_organisation(make_user()),
        phone=citizen.phone,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    upload = api.post(
        f"/api/v1/dossiers/{draft.id}/attachments",
        data={
            "file": SimpleUploadedFile("cccd.jpg", _jpeg(), "image/jpeg"),
            "document_code": "doc-1",
        },
    )
    assert upload.status_code == 201, upload
    attachment_id = upload.json()["id"]
    signed = api.get(f"/api/v1/dossiers/{draft.id}/attachments/{attachment_id}/download-url")
    assert signed.status_code == 200, signed
    booking = api.post(
        f"/api/v1/postal/dossiers/{accepted.id}/bookings",
        {"direction": "result", "address_id": str(address.id)},
    )
    assert booking.status_code == 201, booking
    # Support staff with TOTP, and a level-2 reset another staff member opened.
    staff = make_staff()
    identified = make_citizen(level=User.Level.IDENTITY)
    reset = client_for(make_staff()).post(
        "/api/v1/support/resets",
        {
            "user_id": str(identified.id),
            "kind": "lost_authenticator",
            "reason": "Phone with the authenticator app was stolen",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-2026-0042",
        },
    )
    assert reset.status_code == 201, reset
    credential, agency_secret = create_credential(procedure.agency, "fuzz")
    WORLD.token = tokens.access_token
    WORLD.agency_key, WORLD.agency_secret = credential.key_id, agency_secret
    WORLD.staff_token = sign_in(staff, second_factor="totp")[1].access_token
    WORLD.known = {
        "dossier_id": [str(draft.id), str(accepted.id), str(handed_over.id)],
        "attachment_id": [attachment_id],
        "procedure_id": [procedure.id],
        "organisation_id": [str(organisation.id)],
        "user_id": [str(colleague.id), str(citizen.id), str(identified.id)],
        "reset_id": [reset.json()["id"]],
        "invitation_id": [str(invitation.id)],
        "session_id": [str(session.id), str(uuid.uuid4())],
        "address_id": [str(address.id)],
        "booking_id": [booking.json()["id"]],
        # The agency API names a dossier by its id or its code.
        "reference": [str(accepted.id), str(handed_over.id), str(handed_over.code)],
        "token": [signed.json()["url"].rstrip("/").rsplit("/", 1)[-1]],
        "code": ["01", "00070"],
        "carrier": ["vnpost"],
        "gateway": ["vnpay", "national"],
        "document_code": ["doc-1"],
    }
    # The fuzzer calls the WSGI app directly: as Django's test client does, keep
    # the request cycle from closing the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WORLD
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    WORLD.token, WORLD.staff_token, WORLD.known = "", "", {}
    WORLD.agency_key, WORLD.agency_secret = "", ""
