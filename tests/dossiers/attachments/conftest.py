"""Fixtures for attachment tests: a private media root, a procedure, a draft dossier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from auth.models import User
from dossiers.catalogue import procedure_changed
from dossiers.models import Dossier, Procedure, RequiredDocument
from tests.conftest import ApiClient, api_as, make_user
from tests.dossiers.attachments import samples
from tests.factories import make_dossier, make_procedure


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def procedure(db: None) -> Procedure:
    """doc-1: photo or PDF, up to 3 files; id-photo: photos only, 1 file; form: PDF only."""
    procedure = make_procedure()
    RequiredDocument.objects.create(
        procedure=procedure,
        code="id-photo",
        name="Ảnh chân dung",
        accepted_kinds=["photo"],
        max_files=1,
        position=1,
    )
    RequiredDocument.objects.create(
        procedure=procedure, code="form", name="Tờ khai", accepted_kinds=["pdf"], position=2
    )
    procedure_changed(procedure)
    return procedure


def citizen() -> User:
    """A user without a usable password: these tests sign in with tokens, and
    skipping the password hash keeps the access matrix fast."""
    return make_user(password=None)  # type: ignore[arg-type]


@pytest.fixture
def owner(db: None) -> User:
    return citizen()


@pytest.fixture
def owner_api(owner: User) -> ApiClient:
    return api_as(owner)


@pytest.fixture
def dossier(owner: User, procedure: Procedure) -> Dossier:
    return make_dossier(owner, procedure)


def upload_form(
    data: bytes | None = None,
    *,
    name: str = "photo.jpg",
    content_type: str = "image/jpeg",
    document_code: str = "doc-1",
) -> dict[str, Any]:
    return {
        "file": SimpleUploadedFile(
            name, samples.jpeg_bytes() if data is None else data, content_type
        ),
        "document_code": document_code,
    }


def upload(client: ApiClient, dossier: Dossier, data: bytes | None = None, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", None)
    return client.post(
        f"/api/v1/dossiers/{dossier.pk}/attachments",
        data=upload_form(data, **kwargs),
        headers=headers,
    )
