"""Fixtures of the dossiers tests: a procedure with a rich form, attachments, clients,
and a client that signs requests like an agency's back-office system."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.client import BOUNDARY, encode_multipart

from auth.models import User
from dossiers.agency.credentials import create_credential
from dossiers.agency.signing import sign
from dossiers.catalogue import procedure_changed
from dossiers.models import Agency, AgencyCredential, Attachment, Dossier, Procedure
from tests.conftest import ApiClient, ApiResponse, sign_in
from tests.factories import make_agency, make_procedure

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at(*args: int) -> dt.datetime:
    """A moment in business time."""
    return dt.datetime(*args, tzinfo=VN)


@contextmanager
def updates_into(found: list[Any]) -> Iterator[None]:
    """The parameters of every UPDATE run meanwhile, appended to `found` (a backfill's
    batches)."""

    def counting(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().startswith("UPDATE"):
            found.append(params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counting):
        yield


@contextmanager
def frozen(moment: dt.datetime) -> Iterator[None]:
    """`timezone.now()` is `moment` meanwhile (the actions' clock)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


RICH_FORM: list[dict[str, Any]] = [
    {
        "name": "full_name",
        "type": "text",
        "label": "Họ và tên",
        "label_en": "Full name",
        "required": True,
        "max_length": 20,
    },
    {
        "name": "birth_date",
        "type": "date",
        "label": "Ngày sinh",
        "label_en": "Date of birth",
        "required": True,
        "max": "today",
    },
    {
        "name": "phone",
        "type": "phone",
        "label": "Số điện thoại",
        "label_en": "Phone",
        "required": True,
    },
    {
        "name": "citizen_id",
        "type": "citizen_id",
        "label": "Số CCCD",
        "label_en": "Citizen ID",
        "required": True,
    },
    {
        "name": "copies",
        "type": "number",
        "label": "Số bản",
        "label_en": "Copies",
        "integer": True,
        "min": 1,
        "max": 10,
    },
    {
        "name": "purpose",
        "type": "choice",
        "label": "Mục đích",
        "label_en": "Purpose",
        "required": True,
        "choices": [
            {"value": "work", "label": "Xin việc", "label_en": "Job"},
            {"value": "study", "label": "Du học", "label_en": "Study abroad"},
        ],
    },
    {"name": "email", "type": "email", "label": "Thư điện tử", "label_en": "Email"},
    {"name": "commune", "type": "address", "label": "Phường, xã", "label_en": "Ward"},
    {
        "name": "pledge",
        "type": "checkbox",
        "label": "Tôi cam đoan",
        "label_en": "I declare",
        "required": True,
    },
]

VALID_FORM: dict[str, Any] = {
    "full_name": "Lê Thị Hoa",
    "birth_date": "1990-05-17",
    "phone": "0912 345 678",
    "citizen_id": "001190012345",
    "copies": 2,
    "purpose": "work",
    "pledge": True,
}


def client_for(user: User, language: str | None = None) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token, language=language)


def attach(dossier: Dossier, document_code: str, count: int = 1) -> list[Attachment]:
    """Attachment rows as the upload endpoint leaves them (the files are not needed here)."""
    return [
        Attachment.objects.create(
            dossier=dossier,
            document_code=document_code,
            kind=Attachment.Kind.IMAGE,
            file=f"attachments/te/{uuid.uuid4().hex}",
            content_type="image/jpeg",
            size=1000,
            sha256=uuid.uuid4().hex * 2,
            uploaded_by=dossier.applicant,
        )
        for _ in range(count)
    ]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # These tests create many users and never check passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def procedure(db: None) -> Procedure:
    """Two documents: doc-1 mandatory with at least two files, doc-2 optional."""
    procedure = make_procedure(make_agency("HN-TEST"), documents=2, form_spec=RICH_FORM)
    procedure.documents.filter(code="doc-1").update(min_files=2)
    procedure.documents.filter(code="doc-2").update(mandatory=False)
    procedure_changed(procedure)
    return procedure


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
