"""A stored answer is replayed only to a caller who may still call the route (issue 13 #4).

For each family of routes with replays: the citizen API and the support console
(`Idempotency-Key`) and the agency API (`X-Event-Id`). The credential is checked
first; a revoked one gets its 401 and never the stored body.
"""

from __future__ import annotations

import pytest

from auth.actions.sessions import revoke_session
from auth.models import DeviceSession, SupportReset, User
from dossiers.models import Agency, AgencyCredential, Dossier
from tests.accounts.staff import make_citizen, make_staff
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db


def test_citizen_draft_replay_after_logout_is_401(procedure) -> None:
    user = make_user()
    _session, tokens = sign_in(user)
    api = ApiClient(token=tokens.access_token)
    key = {"Idempotency-Key": "draft-1"}
    body = {"procedure_id": procedure.id}
    first = api.post("/api/v1/dossiers", body, headers=key)
    assert first.status_code == 201, first.content
    assert api.post("/api/v1/auth/logout").status_code == 204

    replay = api.post("/api/v1/dossiers", body, headers=key)

    assert replay.status_code == 401
    assert "Idempotent-Replayed" not in replay.headers
    assert first.json()["id"] not in replay.content.decode()
    assert Dossier.objects.filter(applicant=user).count() == 1


def test_support_reset_replay_after_the_session_is_revoked_is_401() -> None:
    staff = make_staff()
    session, tokens = sign_in(staff, second_factor="totp")
    api = ApiClient(token=tokens.access_token)
    subject = make_citizen(level=User.Level.IDENTITY)
    key = {"Idempotency-Key": "reset-1"}
    body = {
        "user_id": str(subject.id),
        "kind": "lost_authenticator",
        "reason": "Mất điện thoại",
        "evidence": "CCCD checked in person at the counter",
        "ticket_number": "HT-9",
    }
    first = api.post("/api/v1/support/resets", body, headers=key)
    assert first.status_code == 201, first.content
    revoke_session(DeviceSession.objects.get(pk=session.pk), reason="logout")

    replay = api.post("/api/v1/support/resets", body, headers=key)

    assert replay.status_code == 401
    assert "Idempotent-Replayed" not in replay.headers
    assert SupportReset.objects.count() == 1


def test_support_reset_replay_in_a_session_without_the_authenticator_code_is_403() -> None:
    """The same key from the same staff member, signed in again by SMS: not replayed."""
    staff = make_staff()
    _s, totp_tokens = sign_in(staff, second_factor="totp")
    subject = make_citizen(level=User.Level.IDENTITY)
    key = {"Idempotency-Key": "reset-2"}
    body = {
        "user_id": str(subject.id),
        "kind": "lost_authenticator",
        "reason": "Mất điện thoại",
        "evidence": "CCCD checked in person at the counter",
        "ticket_number": "HT-10",
    }
    first = ApiClient(token=totp_tokens.access_token).post(
        "/api/v1/support/resets", body, headers=key
    )
    assert first.status_code == 201
    _s2, sms_tokens = sign_in(staff, second_factor="sms_otp")

    replay = ApiClient(token=sms_tokens.access_token).post(
        "/api/v1/support/resets", body, headers=key
    )

    assert replay.status_code == 403
    assert replay.json()["code"] == "second_factor_sign_in_required"
    assert "Idempotent-Replayed" not in replay.headers


def test_agency_replay_after_the_credential_is_deactivated_is_401(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = make_dossier(make_user(password=None), make_procedure(agency), status=1)
    path = f"/api/v1/agency/dossiers/{dossier.code}/accept"
    first = agency_client.post(path, {}, event_id="evt-replay")
    assert first.status_code == 200
    AgencyCredential.objects.filter(pk=agency_client.credential.pk).update(is_active=False)

    replay = agency_client.post(path, {}, event_id="evt-replay")

    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_signature"
    assert "X-Event-Replayed" not in replay.headers
