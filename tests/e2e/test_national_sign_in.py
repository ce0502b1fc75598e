"""The national sign-in path of the journey, every party a separate process.

The fake identity provider runs as its own process (`python -m
fakes.identity_provider`), the web server and the worker are the Procfile's
commands; the test is the mobile app (HTTP only) and its system browser (a plain
HTTP GET that stops at the provider's redirect to the app link).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fakes.harness import ROOT
from tests.e2e.clients import (
    PROCEDURE_CODE,
    MobileApp,
    draft,
    pay_submission_fee,
    sign_up,
    sms_code,
)
from tests.e2e.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

PHONE = "+84987650077"


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fakes.identity_provider", "--port", "0", "--level", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, e2e_template: str, identity_provider: str
) -> Iterator[Stack]:
    with running_stack(
        Path(tmp_path_factory.mktemp("stack")),
        template=e2e_template,
        extra_env={"NATIONAL_ID_ISSUER": identity_provider},
    ) as running:
        yield running


def browse(authorization_url: str) -> dict[str, str]:
    """The system browser: the provider signs the person in and redirects to the app link."""
    response = httpx.get(authorization_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def test_a_phone_account_links_vneid_to_submit_a_level_2_procedure(stack: Stack) -> None:
    # The operator marks the procedure as needing VNeID level 2.
    stack.python(
        "from dossiers.models import Procedure; "
        f"Procedure.objects.filter(code={PROCEDURE_CODE!r}).update(min_identity_level=2)"
    )
    app = sign_up(stack, PHONE)
    dossier_id = draft(app)
    pay_submission_fee(app, dossier_id)  # the fee is due first; the level is what refuses
    refused = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "identity_level_too_low"
    assert refused.json()["details"]["required_level"] == 2

    # Link VNeID from the signed-in account: browser, app link, SMS proof.
    started = app.post("/api/v1/auth/national/link/start", {**app.device(), "min_level": 2})
    assert started.status_code == 200, started.text
    back = browse(started.json()["authorization_url"])
    assert back["state"] == started.json()["state"]
    called = app.post("/api/v1/auth/national/link/callback", back)
    assert called.status_code == 200, called.text
    assert called.json()["status"] == "link_required"
    verified = app.post(
        "/api/v1/auth/national/link/verify",
        {
            "flow_id": called.json()["link"]["flow_id"],
            "method": "sms_otp",
            "code": sms_code(stack, PHONE, already=1),
        },
    )
    assert verified.status_code == 200, verified.text
    app.token = verified.json()["access_token"]
    me = app.get("/api/v1/auth/me").json()
    assert (me["identity_level"], me["citizen_id_verified"]) == (2, True)

    submitted = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == 1

    # A new installation signs in with VNeID alone, into the same account.
    other = MobileApp(stack)
    try:
        started = other.post("/api/v1/auth/national/start", other.device())
        assert started.status_code == 200, started.text
        signed_in = other.post(
            "/api/v1/auth/national/callback", browse(started.json()["authorization_url"])
        )
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["status"] == "signed_in"
        assert signed_in.json()["account_created"] is False
        other.token = signed_in.json()["tokens"]["access_token"]
        assert other.get("/api/v1/auth/me").json()["phone"] == PHONE
        again = other.post("/api/v1/auth/national/callback", back)
        assert again.status_code == 400
        assert again.json()["code"] == "national_id_state_mismatch"
    finally:
        other.close()
        app.close()
