"""Production refuses a national sign-in set up with the development defaults."""

from __future__ import annotations

from tests.backend.test_settings import PRODUCTION_ENV, run_manage


def test_production_refuses_a_plain_http_issuer_or_the_default_secret() -> None:
    plain = run_manage("check", **PRODUCTION_ENV, NATIONAL_ID_ISSUER="http://idp.example")
    default_secret = run_manage(
        "check", **PRODUCTION_ENV, NATIONAL_ID_ISSUER="https://sso.dichvucong.gov.vn"
    )
    configured = run_manage(
        "check",
        **PRODUCTION_ENV,
        NATIONAL_ID_ISSUER="https://sso.dichvucong.gov.vn",
        NATIONAL_ID_CLIENT_SECRET="a-real-secret-from-the-portal",
    )

    assert plain.returncode != 0
    assert "NATIONAL_ID_ISSUER must be https" in plain.stderr
    assert default_secret.returncode != 0
    assert "NATIONAL_ID_CLIENT_SECRET" in default_secret.stderr
    assert configured.returncode == 0, configured.stderr
