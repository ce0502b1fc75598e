"""Public lookup by dossier code and receipt secret: redaction, limits, same answers."""

from __future__ import annotations

import pytest

from auth import ratelimit
from dossiers.actions import submit_dossier
from dossiers.lifecycle import Actor, accept, request_supplement
from dossiers.lookup_secrets import display, hash_secret, reveal_lookup_secret, secret_matches
from dossiers.models import Dossier
from tests.conftest import ApiClient, make_user, sign_in
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, attach
from tests.factories import make_agency, make_dossier, make_organisation, make_procedure
from tracking.lookup import _code_key

pytestmark = pytest.mark.django_db
URL = "/api/v1/lookup"


def submitted(applicant=None, **extra) -> tuple[Dossier, str]:
    procedure = make_procedure(make_agency(), form_spec=RICH_FORM)
    dossier = make_dossier(applicant, procedure, form_data=VALID_FORM, **extra)
    attach(dossier, "doc-1")
    dossier = submit_dossier(dossier.applicant, dossier.pk)
    secret = reveal_lookup_secret(dossier)
    assert secret is not None
    return dossier, secret


def test_submission_issues_a_secret_stored_hashed_and_encrypted() -> None:
    dossier, secret = submitted()
    dossier.refresh_from_db()
    assert len(secret) == 10
    assert secret not in dossier.lookup_secret_hash
    assert secret not in dossier.lookup_secret_encrypted
    assert dossier.lookup_secret_hash.startswith("pbkdf2_sha256$")
    assert secret_matches(dossier.lookup_secret_hash, display(secret).lower())
    assert not secret_matches(dossier.lookup_secret_hash, "ABCDEFGHJK")


def test_secret_survives_a_secret_key_rotation(settings) -> None:
    dossier, secret = submitted()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    dossier.refresh_from_db()
    assert reveal_lookup_secret(dossier) == secret
    assert secret_matches(dossier.lookup_secret_hash, secret)


def test_lookup_shows_the_public_view_only(api: ApiClient) -> None:
    dossier, secret = submitted(make_user(full_name="Nguyễn Văn Bí Mật"))
    accept(dossier.pk, Actor.agency_system("HN"), receipt_number="R-1")
    request_supplement(
        dossier.pk,
        Actor.agency_system("HN"),
        message="Ông Nguyễn Văn Bí Mật bổ sung CCCD 001190012345",
        documents=[{"code": "doc-1", "name": "Giấy tờ 1", "note": "mờ"}],
    )
    response = api.post(URL, {"code": dossier.code.lower(), "secret": display(secret)})
    assert response.status_code == 200, response
    body = response.json()
    dossier.refresh_from_db()
    assert body["code"] == dossier.code
    assert body["procedure_code"] == dossier.procedure.code
    assert body["agency_name"] == dossier.agency.name
    assert body["status"] == Dossier.Status.SUPPLEMENT_REQUESTED
    assert [step["event_type"] for step in body["steps"]] == [
        "dossier.submitted",
        "dossier.accepted",
        "dossier.supplement_requested",
    ]
    assert set(body["steps"][0]) == {"time", "event_type", "status", "status_label", "text"}
    raw = response.content.decode()
    for private in ("Bí Mật", "001190012345", "Lê Thị Hoa", "mờ", "attachments", "+849"):
        assert private not in raw


def test_unknown_code_and_wrong_secret_get_the_same_answer(api: ApiClient) -> None:
    dossier, secret = submitted()
    wrong = api.post(URL, {"code": dossier.code, "secret": "AAAAA-AAAAA"})
    unknown = api.post(URL, {"code": "XX-000000-0001", "secret": secret})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "lookup_failed"


def test_a_draft_or_a_dossier_without_secret_is_not_found(api: ApiClient) -> None:
    old = make_dossier(status=Dossier.Status.NEW)  # submitted before secrets existed
    response = api.post(URL, {"code": old.code, "secret": "AAAAA-AAAAA"})
    assert response.status_code == 404
    assert response.json()["code"] == "lookup_failed"


def test_wrong_secrets_lock_the_code_then_even_the_right_one_waits(
    api: ApiClient, settings
) -> None:
    settings.LOOKUP_MAX_FAILURES_PER_CODE = 3
    dossier, secret = submitted()
    for _ in range(2):
        assert api.post(URL, {"code": dossier.code, "secret": "AAAAAAAAAA"}).status_code == 404
    # The third wrong one reaches the limit; the code is locked from now on.
    assert api.post(URL, {"code": dossier.code, "secret": "AAAAAAAAAA"}).status_code == 404
    locked = api.post(URL, {"code": dossier.code, "secret": secret})
    assert locked.status_code == 429
    assert locked.json()["code"] == "lookup_locked"
    assert int(locked.headers["Retry-After"]) == settings.LOOKUP_LOCKOUT_SECONDS


def test_an_unknown_code_locks_like_a_known_one(api: ApiClient, settings) -> None:
    settings.LOOKUP_MAX_FAILURES_PER_CODE = 2
    for _ in range(2):
        assert api.post(URL, {"code": "ZZ-1", "secret": "AAAAAAAAAA"}).status_code == 404
    response = api.post(URL, {"code": "ZZ-1", "secret": "AAAAAAAAAA"})
    assert response.status_code == 429
    assert response.json()["code"] == "lookup_locked"


def test_a_right_secret_clears_the_failures_below_the_limit(api: ApiClient, settings) -> None:
    settings.LOOKUP_MAX_FAILURES_PER_CODE = 3
    dossier, secret = submitted()
    api.post(URL, {"code": dossier.code, "secret": "AAAAAAAAAA"})
    assert ratelimit.failure_count("lookup-code", _code_key(dossier.code)) == 1
    assert api.post(URL, {"code": dossier.code, "secret": secret}).status_code == 200
    assert ratelimit.failure_count("lookup-code", _code_key(dossier.code)) == 0


@pytest.mark.parametrize(("extra", "expected"), [(0, 200), (1, 429)])
def test_per_ip_cap_counts_every_attempt(
    api: ApiClient, settings, extra: int, expected: int
) -> None:
    settings.LOOKUP_MAX_ATTEMPTS_PER_IP_PER_HOUR = 4
    dossier, secret = submitted()
    # Different codes each time: only the per-IP counter grows.
    for n in range(2 + extra):
        assert api.post(URL, {"code": f"NONE-{n}", "secret": "A"}).status_code == 404
    assert api.post(URL, {"code": dossier.code, "secret": secret}).status_code == 200
    response = api.post(URL, {"code": dossier.code, "secret": secret})
    assert response.status_code == expected
    if expected == 429:
        assert response.json()["code"] == "lookup_locked"


def test_per_ip_cap_counts_an_ipv6_host_by_its_network(api: ApiClient, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOOKUP_MAX_ATTEMPTS_PER_IP_PER_HOUR = 3
    for n in range(3):
        headers = {"X-Forwarded-For": f"2001:db8:1:2::{n + 1}"}
        assert (
            api.post(URL, {"code": f"NONE-{n}", "secret": "A"}, headers=headers).status_code == 404
        )
    response = api.post(
        URL, {"code": "NONE-9", "secret": "A"}, headers={"X-Forwarded-For": "2001:db8:1:2::abc"}
    )
    assert response.status_code == 429
    assert response.json()["code"] == "lookup_locked"
    other = api.post(
        URL, {"code": "NONE-9", "secret": "A"}, headers={"X-Forwarded-For": "2001:db8:1:3::1"}
    )
    assert other.status_code == 404


def test_comparison_costs_the_same_for_unknown_and_known_codes(settings, monkeypatch) -> None:
    """The unknown case does a full hash too (not a fast "no"): the same PBKDF2 work,
    counted rather than timed (a timing on a busy machine proves nothing)."""
    import hashlib

    settings.LOOKUP_SECRET_HASH_ITERATIONS = 20_000
    stored = hash_secret("ABCDEFGHJK")
    work: list[int] = []
    real = hashlib.pbkdf2_hmac

    def counted(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        work.append(iterations)
        return real(name, password, salt, iterations)

    monkeypatch.setattr("dossiers.lookup_secrets.hashlib.pbkdf2_hmac", counted)
    assert secret_matches(stored, "ZZZZZZZZZZ") is False
    known, work[:] = list(work), []
    assert secret_matches(None, "ZZZZZZZZZZ") is False
    assert known == work == [20_000]


def test_lookup_validates_its_input(api: ApiClient) -> None:
    response = api.post(URL, {"code": "", "secret": "x" * 41})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"code", "secret"}


# --- The owner's copy of the secret ------------------------------------------------------


def test_the_applicant_sees_the_secret_and_nobody_else() -> None:
    owner = make_user()
    organisation = make_organisation(owner)
    dossier, secret = submitted(owner, organisation=organisation)
    colleague = make_user()
    organisation.memberships.create(user=colleague, role="member")
    url = f"/api/v1/dossiers/{dossier.pk}/lookup-secret"
    mine = ApiClient(token=sign_in(owner)[1].access_token).get(url)
    assert mine.status_code == 200
    assert mine.json()["secret"] == display(secret)
    assert mine.json()["lookup_url"].endswith(f"/lookup?code={dossier.code}#s={secret}")
    for other in (colleague, make_user()):
        response = ApiClient(token=sign_in(other)[1].access_token).get(url)
        assert response.status_code == 404
    assert ApiClient().get(url).status_code == 401


def test_the_public_page_exists_and_forbids_inline_scripts_but_its_own() -> None:
    response = ApiClient().client.get("/lookup", {"code": "HN-1"})
    assert response.status_code == 200
    assert b'value="HN-1"' in response.content
    assert "script-src 'nonce-" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "no-referrer"
