"""Credentials in URLs never reach the real server's log output.

The Procfile's web command serves the app; the test downloads through a signed
citizen link and an agency file link (both work: the tokens are real) and passes
credential-bearing query parameters, then reads what the process wrote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from django.core.files.base import ContentFile

from dossiers.agency.api import file_token
from dossiers.downloads import sign_download
from dossiers.models import Attachment, Dossier
from tests.backend.web_process import web_process
from tests.conftest import make_user
from tests.dossiers.attachments import samples
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db(transaction=True)

FORGED = "eyJhIjoiZm9yZ2VkIn0:1xa0uv:forgedSignatureForgedSignatureForgedSigna"
QUERY_SECRETS = {
    "access_token": "query-token-0d1e2f",
    "X-Amz-Credential": "AKIAQUERYCREDENTIAL",
    "X-Amz-Signature": "f00dfacequerysignature",
    "sig": "querysig-77aa",
}
# What support staff type into the admin's search box: a name, a phone number without
# its prefix, an address.
ADMIN_SEARCHES = {
    "/admin/accounts/user/": ["Nguyễn Văn An", "912345678"],
    "/admin/postal/savedaddress/": ["Ngõ 5 nhà 17"],
}
VNPAY_SECURE_HASH = "ab" * 64


def leaked(secret: str, log: str, window: int = 12) -> list[str]:
    """Pieces of `secret` found in `log` (a partly masked token still leaks the rest)."""
    pieces = {secret[i : i + window] for i in range(max(1, len(secret) - window + 1))}
    return sorted(piece for piece in pieces if piece in log)


def test_signed_links_and_url_credentials_are_redacted_in_the_access_log(
    settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    citizen = make_user(password=None)
    dossier = make_dossier(citizen, make_procedure(), status=Dossier.Status.NEW)
    pdf = samples.pdf_bytes()
    attachment = Attachment.objects.create(
        dossier=dossier,
        document_code="doc-1",
        kind=Attachment.Kind.PDF,
        file=ContentFile(pdf, name="paper.pdf"),
        content_type="application/pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        pages=1,
        uploaded_by=citizen,
    )
    download_token, _ = sign_download(attachment, "file", citizen)
    agency_token = file_token(dossier.agency, attachment)

    # httpx's default 5 s read timeout is shorter than a busy 2-core CI machine needs
    # for a fresh server's first requests.
    with web_process(tmp_path) as server, httpx.Client(timeout=60) as client:
        citizen_link = client.get(
            f"{server.base_url}/api/v1/dossiers/attachment-downloads/{download_token}"
        )
        agency_link = client.get(f"{server.base_url}/api/v1/agency/files/{agency_token}")
        # A forged one: Django also logs the path of a 4xx ("Not Found: ...").
        forged = client.get(f"{server.base_url}/api/v1/agency/files/{FORGED}")
        with_query = client.get(
            f"{server.base_url}/api/v1/catalogue/agencies", params=QUERY_SECRETS
        )
        admin = [
            client.get(f"{server.base_url}{path}", params={"q": term})
            for path, terms in ADMIN_SEARCHES.items()
            for term in terms
        ]
        vnpay = {"vnp_TxnRef": "AB12", "vnp_TmnCode": "X", "vnp_SecureHash": VNPAY_SECURE_HASH}
        ipn = client.get(f"{server.base_url}/api/v1/payments/gateways/vnpay/callback", params=vnpay)
        back = client.get(f"{server.base_url}/api/v1/payments/gateways/vnpay/return", params=vnpay)
        log = server.wait_for_log("/api/v1/payments/gateways/vnpay/return?")

    assert (citizen_link.status_code, agency_link.status_code) == (200, 200)
    assert forged.status_code == 404
    assert citizen_link.content == agency_link.content == pdf
    assert with_query.status_code == 200
    assert [response.status_code for response in admin] == [302, 302, 302]  # to the login
    assert (ipn.status_code, back.status_code) == (200, 302)
    for secret in (download_token, agency_token, FORGED, *QUERY_SECRETS.values()):
        assert not leaked(secret, log)
    assert not leaked(VNPAY_SECURE_HASH, log)
    for terms in ADMIN_SEARCHES.values():
        for term in terms:
            assert not leaked(term, log, window=6)
            assert not leaked(urlencode({"q": term})[2:], log, window=6)
    messages = [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]
    request_lines = [m for m in messages if '"GET /api/v1/' in m]
    assert any('"GET /api/v1/dossiers/attachment-downloads/[redacted] HTTP/1.1" 200' in m
               for m in request_lines)  # fmt: skip
    assert any('"GET /api/v1/agency/files/[redacted] HTTP/1.1" 200' in m for m in request_lines)
    assert any('"GET /admin/accounts/user/?q=[redacted] HTTP/1.1" 302' in m for m in messages)
    assert any("vnp_TmnCode=X&vnp_SecureHash=[redacted] HTTP/1.1" in m for m in request_lines)
    assert any(
        "access_token=[redacted]&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]"
        "&sig=[redacted]" in m
        for m in request_lines
    )
