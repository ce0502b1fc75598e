"""Fixtures of the dossiers tests: a procedure with a rich form, attachments, clients."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from auth.models import User
from dossiers.models import Attachment, Dossier, Procedure
from tests.conftest import ApiClient, sign_in
from tests.factories import make_agency, make_procedure

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
    return procedure
