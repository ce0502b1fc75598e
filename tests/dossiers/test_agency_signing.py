"""The signing recipe in agency-api.md is the one the server checks; twins run once."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from dossiers.agency.signing import sign, string_to_sign
from dossiers.models import Agency, Dossier, DossierEvent
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure, make_user

GUIDE = Path(__file__).resolve().parents[2] / "mobile_api_docs" / "agency-api.md"


def test_worked_example_of_the_guide_matches_the_server() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    expected = re.search(r"X-Signature    = ([0-9a-f]{64})", text)
    assert expected is not None
    body = b'{"receipt_number":"01/2026"}'
    path = "/api/v1/agency/dossiers/HN-PXB-260310-0001/accept"
    assert string_to_sign("POST", path, "1773108000", "evt-0001", body) == (
        b"POST\n/api/v1/agency/dossiers/HN-PXB-260310-0001/accept\n1773108000\nevt-0001\n"
        b"3342ed62245aba3edfd7aa0b27ab96f700b798bd499b7c601b5a79867583dbc9"
    )
    signature = sign("example-secret-do-not-use", "POST", path, "1773108000", "evt-0001", body)
    assert signature == expected.group(1)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_event_id_move_the_dossier_once(
    agency: Agency, agency_client: AgencyClient
) -> None:
    dossier = make_dossier(make_user(password=None), make_procedure(agency), status=1)
    path = f"/api/v1/agency/dossiers/{dossier.code}/accept"
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def call() -> None:
        try:
            barrier.wait()
            response = agency_client.post(path, {}, event_id="twin")
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200, 200]
    assert results[0][1] == results[1][1]
    assert list(DossierEvent.objects.filter(dossier=dossier).values_list("type", flat=True)) == [
        "dossier.accepted"
    ]
    dossier.refresh_from_db()
    assert (dossier.status, dossier.version) == (Dossier.Status.ACCEPTED, 2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("timestamp", "code"), [("", "signature_required"), ("soon", "stale_timestamp")]
)
def test_a_missing_or_unreadable_timestamp_answers_the_code_the_guide_gives(
    agency_client: AgencyClient, timestamp: str, code: str
) -> None:
    response = agency_client.get("/api/v1/agency/feed", tamper={"X-Timestamp": timestamp})

    assert (response.status_code, response.json()["code"]) == (401, code)
    rows = {
        found.group(1): found.group(2)
        for found in re.finditer(r"^\| 401 \| `(\w+)` \| (.*) \|$", GUIDE.read_text(), re.M)
    }
    if code == "signature_required":
        assert "X-Timestamp" in rows[code]
        assert "missing" not in rows["stale_timestamp"]
    else:
        assert "not a number" in rows[code]


@pytest.mark.django_db
def test_the_guides_python_client_is_accepted_as_it_is_written(
    agency: Agency, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's client, run as written (its httpx calls answered by the server in
    process): a signed action, its retry with the same event id, and signed GETs with
    a query string all pass, so an agency that copies it gets in."""
    import httpx
    from django.test import Client

    from dossiers.agency.credentials import create_credential

    [block] = re.findall(
        r"### A small Python client\n\n```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S
    )
    written: dict[str, Any] = {}
    exec(compile(block, str(GUIDE), "exec"), written)  # noqa: S102 - the guide's own code
    server = Client()

    def answering(method: str) -> Any:
        def send(url: str, *, headers: dict[str, str], timeout: float, content: bytes = b""):
            sent = dict(headers)
            content_type = sent.pop("Content-Type", "")
            path = url.removeprefix("https://dichvucong.example")
            return server.generic(method, path, content, content_type, headers=sent)

        return send

    monkeypatch.setattr(httpx, "post", answering("POST"))
    monkeypatch.setattr(httpx, "get", answering("GET"))
    credential, secret = create_credential(agency, "copied from the guide")
    client = written["AgencyClient"]("https://dichvucong.example/", credential.key_id, secret)
    dossier = make_dossier(make_user(password=None), make_procedure(agency), status=1)

    accepted = client.action(dossier.code, "accept", {"receipt_number": "01/2026"}, "evt-1")
    again = client.action(dossier.code, "accept", {"receipt_number": "01/2026"}, "evt-1")
    first = client.get("/api/v1/agency/feed?limit=1")
    second = client.get(f"/api/v1/agency/feed?limit=1&cursor={first.json()['next_cursor']}")

    assert (accepted.status_code, accepted.json()["status"]) == (200, 2)
    assert (again.status_code, again.headers["X-Event-Replayed"]) == (200, "true")
    assert again.json() == accepted.json()
    assert (first.status_code, second.status_code) == (200, 200)
