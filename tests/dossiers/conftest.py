"""Fixtures of the lifecycle and agency API tests: a signing agency client."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.test.client import BOUNDARY, encode_multipart

from dossiers.agency_auth import create_credential, sign
from dossiers.models import Agency, AgencyCredential
from tests.conftest import ApiClient, ApiResponse
from tests.factories import make_agency


class AgencyClient:
    """Signs every request like an agency's back-office system (see agency-api.md)."""

    def __init__(self, credential: AgencyCredential, secret: str) -> None:
        self.credential = credential
        self.secret = secret
        self.api = ApiClient()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        multipart: dict[str, Any] | None = None,
        event_id: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        key_id: str | None = None,
        tamper: dict[str, str] | None = None,
    ) -> ApiResponse:
        if multipart is not None:
            raw = encode_multipart(BOUNDARY, multipart)
            content_type = f"multipart/form-data; boundary={BOUNDARY}"  # a copy: raw bytes
        else:
            raw = json.dumps(body).encode() if body is not None else b""
            content_type = "application/json"
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        event = uuid.uuid4().hex if event_id is None else event_id
        headers = {
            "X-Agency-Key": key_id or self.credential.key_id,
            "X-Timestamp": stamp,
            "X-Event-Id": event,
            "X-Signature": sign(secret or self.secret, method, path, stamp, event, raw),
        }
        headers.update(tamper or {})
        if method == "GET":
            return self.api.request("GET", path, headers=headers)
        return self.api.request(method, path, raw=raw, content_type=content_type, headers=headers)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)


@pytest.fixture
def agency(db: None) -> Agency:
    return make_agency()


@pytest.fixture
def agency_client(agency: Agency) -> AgencyClient:
    credential, secret = create_credential(agency, "test system")
    return AgencyClient(credential, secret)


@pytest.fixture
def other_agency_client(db: None) -> AgencyClient:
    credential, secret = create_credential(make_agency(), "other system")
    return AgencyClient(credential, secret)


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
