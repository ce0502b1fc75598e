"""National sign-in (VNeID via the portal's OpenID Connect SSO) against the fake provider."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pyotp
import pytest
import requests
from django.utils import timezone

from auth.actions.national_sign_in import require_recent_national_sign_in
from auth.models import (
    AuthMethod,
    CitizenIdConflict,
    DeviceSession,
    NationalIdentity,
    NationalSignIn,
    User,
)
from backend.errors import NotAuthenticated
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import PASSWORD, device, last_code, wrong_code
from tests.accounts.national import CALLBACK, LINK_VERIFY, browse, national_callback, start
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PERSON = default_person()
IDENTITY = "/api/v1/auth/me/identity"


def nothing_signed_in() -> None:
    assert not NationalIdentity.objects.exists()
    assert not DeviceSession.objects.exists()


# --- The happy paths ------------------------------------------------------------------


def test_first_sign_in_creates_an_account_with_the_verified_citizen_id(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    response = national_callback(api)

    assert response.status_code == 200, response
    body = response.json()
    assert body["status"] == "signed_in"
    assert body["account_created"] is True
    user = User.objects.get(phone=PERSON["phone_number"])
    assert user.full_name == PERSON["name"]
    assert user.citizen_id == PERSON["citizen_id"]
    assert user.citizen_id_verified_at is not None
    assert user.birth_date == dt.date(1990, 5, 17)
    assert user.verification_level == User.Level.IDENTITY
    assert not user.has_usable_password()
    identity = NationalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject, identity.level) == (idp.issuer, PERSON["sub"], 2)
    session = DeviceSession.objects.get(pk=body["tokens"]["session_id"])
    assert session.auth_method == AuthMethod.NATIONAL_2
    assert session.national_level == 2
    assert session.national_authenticated_at is not None
    me = ApiClient(token=body["tokens"]["access_token"]).get("/api/v1/auth/me").json()
    assert me["identity_level"] == 2
    assert me["citizen_id_verified"] is True
    assert me["citizen_id"] == "•••••••••345"


def test_a_linked_identity_signs_its_account_in_again(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    first = national_callback(api).json()
    idp.set_person(level=1)

    second = national_callback(api)

    assert second.status_code == 200, second
    assert second.json()["account_created"] is False
    assert User.objects.count() == 1
    assert NationalIdentity.objects.get().level == 1
    session = DeviceSession.objects.get(pk=second.json()["tokens"]["session_id"])
    assert session.user_id == DeviceSession.objects.get(pk=first["tokens"]["session_id"]).user_id
    assert session.auth_method == AuthMethod.NATIONAL_1


def test_an_existing_phone_account_is_linked_only_after_an_sms_code(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"])

    response = national_callback(api)

    assert response.status_code == 200, response
    link = response.json()["link"]
    assert response.json()["status"] == "link_required"
    assert response.json()["tokens"] is None
    assert link["methods"] == ["sms_otp"]
    nothing_signed_in()
    code = last_code(owner.phone)
    refused = api.post(
        LINK_VERIFY, {"flow_id": link["flow_id"], "method": "sms_otp", "code": wrong_code(code)}
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_code"
    nothing_signed_in()

    linked = api.post(LINK_VERIFY, {"flow_id": link["flow_id"], "method": "sms_otp", "code": code})

    assert linked.status_code == 200, linked
    assert NationalIdentity.objects.get().user_id == owner.pk
    assert DeviceSession.objects.get().user_id == owner.pk
    owner.refresh_from_db()
    assert owner.has_usable_password()  # the phone account keeps its password
    again = api.post(LINK_VERIFY, {"flow_id": link["flow_id"], "method": "sms_otp", "code": code})
    assert again.status_code == 422
    assert DeviceSession.objects.count() == 1


def test_an_existing_account_may_prove_control_with_totp(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"])
    secret = pyotp.random_base32()
    from auth import totp

    owner.totp_secret = totp.encrypt_secret(secret)
    owner.totp_confirmed_at = timezone.now()
    owner.save()

    link = national_callback(api).json()["link"]
    assert link["methods"] == ["sms_otp", "totp"]
    linked = api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "totp", "code": pyotp.TOTP(secret).now()},
    )

    assert linked.status_code == 200, linked
    assert NationalIdentity.objects.get().user_id == owner.pk


def test_a_signed_in_account_links_its_identity(idp: FakeIdentityProvider) -> None:
    owner = make_user("+84911111111")
    _, tokens = sign_in(owner)
    api = ApiClient(token=tokens.access_token)

    response = national_callback(
        api,
        start_path="/api/v1/auth/national/link/start",
        callback_path="/api/v1/auth/national/link/callback",
    )

    assert response.json()["status"] == "link_required", response
    assert not NationalIdentity.objects.exists()
    flow_id = response.json()["link"]["flow_id"]
    code = last_code(owner.phone)
    linked = api.post(LINK_VERIFY, {"flow_id": flow_id, "method": "sms_otp", "code": code})
    assert linked.status_code == 200, linked
    assert NationalIdentity.objects.get().user_id == owner.pk


def test_a_link_flow_cannot_be_completed_on_the_public_callback(
    idp: FakeIdentityProvider,
) -> None:
    owner = make_user("+84911111111")
    _, tokens = sign_in(owner)
    started = start(ApiClient(token=tokens.access_token), "/api/v1/auth/national/link/start")
    back = browse(started.json()["authorization_url"])

    response = ApiClient().post(CALLBACK, {"state": back["state"], "code": back["code"]})

    assert response.status_code == 400
    assert response.json()["code"] == "national_id_state_mismatch"
    assert not NationalIdentity.objects.exists()


def test_an_identity_linked_to_one_account_cannot_be_linked_to_another(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    national_callback(api)  # links the identity to a new account
    other = make_user("+84911111111")
    _, tokens = sign_in(other)
    other_api = ApiClient(token=tokens.access_token)

    response = national_callback(
        other_api,
        start_path="/api/v1/auth/national/link/start",
        callback_path="/api/v1/auth/national/link/callback",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "national_id_linked_elsewhere"
    assert NationalIdentity.objects.get().user.phone == PERSON["phone_number"]
    assert not NationalIdentity.objects.filter(user=other).exists()


def test_the_asserted_citizen_id_replaces_a_self_declared_one(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"], citizen_id="001190099999")
    link = national_callback(api).json()["link"]
    api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "sms_otp", "code": last_code(owner.phone)},
    )

    owner.refresh_from_db()
    assert owner.citizen_id == PERSON["citizen_id"]
    assert owner.citizen_id_verified_at is not None


def test_the_same_number_declared_by_another_account_is_flagged_not_taken(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    squatter = make_user("+84922222222", citizen_id=PERSON["citizen_id"])

    response = national_callback(api)

    assert response.status_code == 200
    squatter.refresh_from_db()
    assert squatter.citizen_id == PERSON["citizen_id"]
    assert squatter.citizen_id_verified_at is None
    created = User.objects.get(phone=PERSON["phone_number"])
    assert created.citizen_id is None
    conflict = CitizenIdConflict.objects.get()
    assert (conflict.verified_user, conflict.declared_by) == (created, squatter)


def test_a_conflict_is_settled_once_the_declaring_account_no_longer_holds_the_number(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    """Support settle it in person; it is settled when the account that declared the
    number corrects it, and the verified account takes the number at its next sign-in."""
    squatter = make_user("+84922222222", citizen_id=PERSON["citizen_id"])
    national_callback(api)
    conflict = CitizenIdConflict.objects.get()
    squatter_api = ApiClient(token=sign_in(squatter)[1].access_token)

    kept = squatter_api.patch(
        IDENTITY, {"citizen_id": PERSON["citizen_id"], "birth_date": "1990-05-17"}
    )
    conflict.refresh_from_db()
    assert kept.status_code == 200
    assert conflict.resolved_at is None  # still held: still open

    before = timezone.now()
    corrected = squatter_api.patch(
        IDENTITY, {"citizen_id": "001190054321", "birth_date": "1990-05-17"}
    )
    conflict.refresh_from_db()
    assert corrected.status_code == 200
    assert conflict.resolved_at is not None
    assert conflict.resolved_at >= before
    settled_at = conflict.resolved_at

    national_callback(api)

    verified = User.objects.get(phone=PERSON["phone_number"])
    assert verified.citizen_id == PERSON["citizen_id"]
    assert verified.citizen_id_verified_at is not None
    conflict.refresh_from_db()
    assert conflict.resolved_at == settled_at


def test_a_settled_conflict_opens_again_if_the_number_is_declared_again(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    squatter = make_user("+84922222222", citizen_id=PERSON["citizen_id"])
    national_callback(api)
    squatter_api = ApiClient(token=sign_in(squatter)[1].access_token)
    squatter_api.patch(IDENTITY, {"citizen_id": "001190054321", "birth_date": "1990-05-17"})
    assert CitizenIdConflict.objects.get().resolved_at is not None
    # Declared again before the verified account signed in again to take it.
    squatter_api.patch(IDENTITY, {"citizen_id": PERSON["citizen_id"], "birth_date": "1990-05-17"})

    national_callback(api)

    conflict = CitizenIdConflict.objects.get()
    assert conflict.resolved_at is None
    assert User.objects.get(phone=PERSON["phone_number"]).citizen_id is None


# --- Attacks and bad input ------------------------------------------------------------


def test_a_callback_without_state_is_refused(idp: FakeIdentityProvider, api: ApiClient) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])

    response = api.post(CALLBACK, {"code": back["code"]})

    assert response.status_code == 422
    assert NationalSignIn.objects.get().callback_at is None
    nothing_signed_in()


def test_a_callback_with_another_state_is_refused(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])

    response = api.post(CALLBACK, {"state": back["state"] + "x", "code": back["code"]})

    assert response.status_code == 400
    assert response.json()["code"] == "national_id_state_mismatch"
    assert idp.token_requests == 0
    nothing_signed_in()


def test_a_replayed_callback_is_refused(idp: FakeIdentityProvider, api: ApiClient) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])
    first = api.post(CALLBACK, {"state": back["state"], "code": back["code"]})
    assert first.status_code == 200

    replay = api.post(CALLBACK, {"state": back["state"], "code": back["code"]})

    assert replay.status_code == 400
    assert replay.json()["code"] == "national_id_state_mismatch"
    assert DeviceSession.objects.count() == 1


def test_a_code_replayed_into_a_new_flow_is_refused(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    first = start(api)
    old = browse(first.json()["authorization_url"])
    assert api.post(CALLBACK, old).status_code == 200
    second = start(api)
    fresh = browse(second.json()["authorization_url"])

    # The provider refuses a spent code (invalid_grant)...
    refused = api.post(CALLBACK, {"state": fresh["state"], "code": old["code"]})

    assert refused.status_code == 400
    assert refused.json()["code"] == "national_id_refused"
    assert refused.json()["details"] == {"reason": "code_rejected"}
    assert DeviceSession.objects.count() == 1


def test_a_replayed_code_is_refused_even_by_a_provider_that_accepts_replays(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    first = start(api)
    old = browse(first.json()["authorization_url"])
    assert api.post(CALLBACK, old).status_code == 200
    idp.set_mode("replay_code")
    second = start(api)
    fresh = browse(second.json()["authorization_url"])

    # The old code is bound to the old flow's PKCE challenge.
    refused = api.post(CALLBACK, {"state": fresh["state"], "code": old["code"]})

    assert refused.status_code == 400
    assert refused.json()["details"] == {"reason": "code_rejected"}
    assert DeviceSession.objects.count() == 1


def test_an_id_token_with_a_reused_nonce_is_refused(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    assert national_callback(api).status_code == 200
    idp.set_mode("replay_id_token")  # hands out the first flow's token (and nonce) again

    refused = national_callback(api)

    assert refused.status_code == 400
    assert refused.json()["details"] == {"reason": "bad_claims"}
    assert DeviceSession.objects.count() == 1


def test_a_wrong_pkce_verifier_is_refused(idp: FakeIdentityProvider, api: ApiClient) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])
    NationalSignIn.objects.update(code_verifier="x" * 86)

    response = api.post(CALLBACK, back)

    assert response.status_code == 400
    assert response.json()["details"] == {"reason": "code_rejected"}
    nothing_signed_in()


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("wrong_audience", "bad_claims"),
        ("wrong_issuer", "bad_claims"),
        ("expired", "bad_claims"),
        ("not_yet_valid", "bad_claims"),
        ("nonce_mismatch", "bad_claims"),
        ("bad_signature", "bad_signature"),
        ("alg_none", "bad_signature"),
        ("hs256_public_key", "bad_signature"),
    ],
)
def test_an_untrustworthy_id_token_is_refused(
    idp: FakeIdentityProvider, api: ApiClient, mode: str, reason: str
) -> None:
    idp.set_mode(mode)

    response = national_callback(api)

    assert response.status_code == 400, response
    assert response.json()["code"] == "national_id_refused"
    assert response.json()["details"] == {"reason": reason}
    nothing_signed_in()
    assert User.objects.count() == 0


def test_an_unknown_key_is_looked_up_once_more_then_refused(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    idp.set_mode("unknown_kid")
    started = start(api)
    back = browse(started.json()["authorization_url"])
    before = idp.jwks_requests

    response = api.post(CALLBACK, back)

    assert response.status_code == 400
    assert response.json()["details"] == {"reason": "unknown_key"}
    assert idp.jwks_requests - before == 2  # the cached set was empty: one fetch, one refetch
    nothing_signed_in()


def test_a_rotated_key_is_fetched_and_accepted(idp: FakeIdentityProvider, api: ApiClient) -> None:
    assert national_callback(api).status_code == 200  # caches the JWKS
    before = idp.jwks_requests
    idp.rotate(keep_old=False)

    response = national_callback(api)

    assert response.status_code == 200, response
    assert idp.jwks_requests - before == 1
    assert DeviceSession.objects.count() == 2


def test_the_jwks_is_cached_between_sign_ins(idp: FakeIdentityProvider, api: ApiClient) -> None:
    national_callback(api)
    before = idp.jwks_requests

    national_callback(api)

    assert idp.jwks_requests == before


def test_a_level_below_the_asked_one_is_refused(idp: FakeIdentityProvider, api: ApiClient) -> None:
    idp.set_person(level=1)

    response = national_callback(api, min_level=2)

    assert response.status_code == 403
    assert response.json()["code"] == "national_id_level_too_low"
    assert response.json()["details"] == {"required_level": 2, "level": 1}
    nothing_signed_in()


def test_an_unknown_level_of_assurance_is_refused(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    idp.set_person(level=7)

    response = national_callback(api)

    assert response.status_code == 403
    assert response.json()["code"] == "national_id_level_too_low"
    nothing_signed_in()


def test_an_expired_flow_is_refused(idp: FakeIdentityProvider, api: ApiClient) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])
    NationalSignIn.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = api.post(CALLBACK, back)

    assert response.status_code == 400
    assert response.json()["code"] == "national_id_flow_expired"
    assert idp.token_requests == 0
    nothing_signed_in()


def test_the_provider_down_is_a_503_and_phone_sign_in_still_works(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    user = make_user("+84933333333")
    idp.set_mode("down")

    response = start(api)

    assert response.status_code == 503
    assert response.json()["code"] == "national_id_unavailable"
    assert not NationalSignIn.objects.exists()
    login = api.post("/api/v1/auth/login", {"phone": user.phone, "password": PASSWORD, **device()})
    assert login.status_code == 200
    assert login.json()["second_factor_required"] is True


def test_the_provider_down_at_the_callback_is_a_503(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])
    idp.set_mode("down")

    response = api.post(CALLBACK, back)

    assert response.status_code == 503
    assert response.json()["code"] == "national_id_unavailable"
    nothing_signed_in()


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"kind": "drop"}, 503, "national_id_unavailable"),  # closed without an answer
        # OAuth 2's error body: the code is refused, as a spent one would be.
        ({"kind": "error", "status": 400, "code": "invalid_grant"}, 400, "national_id_refused"),
    ],
)
def test_a_fault_at_the_token_endpoint_signs_nobody_in(
    idp: FakeIdentityProvider, api: ApiClient, fault: dict[str, Any], status: int, code: str
) -> None:
    started = start(api)
    back = browse(started.json()["authorization_url"])
    idp.fail_next(**fault, path_contains="/token")

    response = api.post(CALLBACK, back)

    assert (response.status_code, response.json()["code"]) == (status, code)
    if status == 400:
        assert response.json()["details"] == {"reason": "code_rejected"}
    assert idp.paths()[-1] == "POST /token"
    assert idp.token_requests == 0  # answered by the fault, never by the token endpoint
    nothing_signed_in()


def test_national_sign_in_switched_off_is_a_503(settings: Any, api: ApiClient, db: None) -> None:
    settings.NATIONAL_ID_ISSUER = ""

    response = start(api)

    assert response.status_code == 503
    assert response.json()["code"] == "national_id_disabled"


# --- The linked identity, unlinking and step-up -----------------------------------------


def test_the_linked_identity_is_shown_to_its_account_only(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    tokens = national_callback(api).json()["tokens"]

    mine = ApiClient(token=tokens["access_token"]).get("/api/v1/auth/national/identity")
    _, other = sign_in(make_user())
    theirs = ApiClient(token=other.access_token).get("/api/v1/auth/national/identity")

    assert mine.status_code == 200
    assert mine.json()["level"] == 2
    assert theirs.status_code == 404


def test_unlinking_needs_a_password_to_sign_in_with_afterwards(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    tokens = national_callback(api).json()["tokens"]
    me = ApiClient(token=tokens["access_token"])

    response = me.delete("/api/v1/auth/national/identity")

    assert response.status_code == 409
    assert response.json()["code"] == "password_required"
    assert NationalIdentity.objects.exists()


def test_unlinking_needs_a_recent_sign_in_and_leaves_the_password(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    owner = make_user(PERSON["phone_number"])
    link = national_callback(api).json()["link"]
    tokens = api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "sms_otp", "code": last_code(owner.phone)},
    ).json()
    me = ApiClient(token=tokens["access_token"])
    DeviceSession.objects.update(authenticated_at=timezone.now() - dt.timedelta(days=2))

    stale = me.delete("/api/v1/auth/national/identity")
    assert stale.status_code == 401
    assert stale.json()["code"] == "reauth_required"
    assert NationalIdentity.objects.exists()

    DeviceSession.objects.update(authenticated_at=timezone.now())
    assert me.delete("/api/v1/auth/national/identity").status_code == 204
    assert not NationalIdentity.objects.exists()
    login = api.post("/api/v1/auth/login", {"phone": owner.phone, "password": PASSWORD, **device()})
    assert login.status_code == 200


def test_step_up_needs_a_recent_national_sign_in_of_the_level(
    idp: FakeIdentityProvider, api: ApiClient, settings: Any
) -> None:
    tokens = national_callback(api).json()["tokens"]
    session = DeviceSession.objects.get(pk=tokens["session_id"])
    require_recent_national_sign_in(session, level=2)  # just signed in at level 2

    phone_session, _ = sign_in(session.user)
    with pytest.raises(NotAuthenticated) as phone_only:
        require_recent_national_sign_in(phone_session)
    assert phone_only.value.code == "national_sign_in_required"

    session.national_authenticated_at = timezone.now() - dt.timedelta(
        minutes=settings.NATIONAL_ID_STEP_UP_MINUTES + 1
    )
    with pytest.raises(NotAuthenticated) as stale:
        require_recent_national_sign_in(session)
    assert stale.value.code == "national_sign_in_required"


# --- The fake as its own process ------------------------------------------------------


def test_the_fake_provider_runs_as_its_own_process(settings: Any, api: ApiClient, db: None) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.identity_provider", "--port", "0", "--level", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        issuer = process.stdout.readline().strip()
        settings.NATIONAL_ID_ISSUER = issuer

        response = national_callback(api)

        assert response.status_code == 200, response
        assert NationalIdentity.objects.get().level == 1
        assert NationalIdentity.objects.get().issuer == issuer
        # Told over HTTP to misbehave, then to rotate its key and behave again.
        assert requests.post(f"{issuer}/_fake/mode", json={"mode": "expired"}, timeout=5).ok
        expired = national_callback(api)
        assert expired.status_code == 400
        assert expired.json()["code"] == "national_id_refused"
        assert requests.post(f"{issuer}/_fake/mode", json={"mode": ""}, timeout=5).ok
        assert requests.post(f"{issuer}/_fake/rotate", json={"keep_old": False}, timeout=5).ok
        assert requests.post(f"{issuer}/_fake/person", json={"level": 2}, timeout=5).ok
        assert national_callback(api).status_code == 200
        assert NationalIdentity.objects.get().level == 2
    finally:
        process.terminate()
        process.wait(timeout=10)
