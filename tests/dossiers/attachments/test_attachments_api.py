"""Uploading, listing, downloading and deleting a dossier's attachments."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from auth.models import User
from dossiers import attachments as attachment_actions
from dossiers.models import Attachment, Dossier
from dossiers.uploads import process_image
from tests.conftest import ApiClient
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import stored_files, upload
from tests.factories import make_dossier

pytestmark = pytest.mark.django_db


def _url(dossier: Dossier, suffix: str = "") -> str:
    return f"/api/v1/dossiers/{dossier.pk}/attachments{suffix}"


def _assert_nothing_saved(dossier: Dossier, media_root: Path) -> None:
    assert Attachment.objects.filter(dossier=dossier).count() == 0
    assert stored_files(media_root) == []


# --- uploading ---------------------------------------------------------------------


def test_upload_jpeg_stores_a_clean_copy_and_a_thumbnail(
    owner_api: ApiClient, owner: User, dossier: Dossier, media_root: Path
) -> None:
    source = samples.jpeg_bytes((400, 300), orientation=6, gps=True)

    response = upload(owner_api, dossier, source, name="cccd.jpg")

    assert response.status_code == 201, response
    body = response.json()
    attachment = Attachment.objects.get(dossier=dossier)
    assert body == {
        "id": str(attachment.pk),
        "document_code": "doc-1",
        "kind": "image",
        "content_type": "image/jpeg",
        "size": attachment.size,
        "sha256": hashlib.sha256(source).hexdigest(),
        "width": 300,
        "height": 400,
        "pages": None,
        "original_name": "cccd.jpg",
        "has_thumbnail": True,
        "revoked": False,
        "revoked_at": None,
        "can_remove": True,
        "created_at": body["created_at"],
    }
    assert attachment.uploaded_by == owner
    assert len(stored_files(media_root)) == 2
    stored = default_storage.open(attachment.file.name).read()
    assert attachment.size == len(stored)
    image = Image.open(io.BytesIO(stored))
    assert image.size == (300, 400)
    assert dict(image.getexif()) == {}
    assert b"PhoneModel" not in stored
    # Random storage names: nothing the citizen sent reaches the path.
    assert attachment.file.name.startswith("attachments/")
    assert "cccd" not in attachment.file.name
    assert "cccd" not in attachment.thumbnail.name


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (samples.png_bytes, "scan.png"),
        (samples.webp_bytes, "scan.webp"),
        (samples.heic_bytes, "IMG_0001.HEIC"),
    ],
)
def test_upload_png_webp_heic_are_stored_as_jpeg(  # type: ignore[no-untyped-def]
    owner_api: ApiClient, dossier: Dossier, make, name: str
) -> None:
    response = upload(owner_api, dossier, make(), name=name, content_type="image/heic")

    assert response.status_code == 201, response
    assert response.json()["content_type"] == "image/jpeg"
    assert (response.json()["width"], response.json()["height"]) == (400, 300)


def test_upload_pdf_keeps_the_file_and_counts_pages(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    source = samples.pdf_bytes(2)

    response = upload(
        owner_api,
        dossier,
        source,
        name="to-khai.pdf",
        content_type="application/pdf",
        document_code="form",
    )

    assert response.status_code == 201, response
    assert response.json()["kind"] == "pdf"
    assert response.json()["pages"] == 2
    assert response.json()["has_thumbnail"] is False
    attachment = Attachment.objects.get(dossier=dossier)
    assert default_storage.open(attachment.file.name).read() == source
    assert len(stored_files(media_root)) == 1


def test_type_comes_from_the_content_not_the_name_or_content_type(
    owner_api: ApiClient, dossier: Dossier
) -> None:
    response = upload(
        owner_api, dossier, samples.png_bytes(), name="form.pdf", content_type="application/pdf"
    )

    assert response.status_code == 201, response
    assert response.json()["kind"] == "image"


@pytest.mark.parametrize(
    "data",
    [
        samples.HTML_AS_JPG,
        b"#!/bin/sh\nrm -rf /\n",
        b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
    ],
)
def test_script_named_jpg_is_refused(
    owner_api: ApiClient, dossier: Dossier, media_root: Path, data: bytes
) -> None:
    response = upload(owner_api, dossier, data, name="photo.jpg", content_type="image/jpeg")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_file_type"
    _assert_nothing_saved(dossier, media_root)


def test_same_file_twice_returns_the_existing_attachment(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    source = samples.jpeg_bytes()
    first = upload(owner_api, dossier, source)

    second = upload(owner_api, dossier, source, name="again.jpg")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Attachment.objects.filter(dossier=dossier).count() == 1
    assert len(stored_files(media_root)) == 2


def test_same_file_in_two_dossiers_makes_two_attachments(
    owner_api: ApiClient, owner: User, dossier: Dossier
) -> None:
    other = make_dossier(owner, dossier.procedure)
    source = samples.jpeg_bytes()

    assert upload(owner_api, dossier, source).status_code == 201
    assert upload(owner_api, other, source).status_code == 201


def test_idempotency_key_replays_the_first_response(owner_api: ApiClient, dossier: Dossier) -> None:
    source = samples.jpeg_bytes()
    headers = {"Idempotency-Key": "upload-1"}

    first = upload(owner_api, dossier, source, headers=headers)
    second = upload(owner_api, dossier, source, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert Attachment.objects.filter(dossier=dossier).count() == 1


def multipart(
    boundary: str, source: bytes, document_code: str = "doc-1", filename: str = "photo.jpg"
) -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="document_code"\r\n\r\n'
            f"{document_code}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + source
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_retry_with_a_new_multipart_boundary_replays(
    owner_api: ApiClient, dossier: Dossier
) -> None:
    source = samples.jpeg_bytes()
    path = f"/api/v1/dossiers/{dossier.id}/attachments"
    headers = {"Idempotency-Key": "upload-boundary"}
    responses = [
        owner_api.post(
            path,
            raw=multipart(boundary, source),
            headers=headers,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
        for boundary in ("first-boundary-1111", "second-boundary-2222")
    ]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[1].json() == responses[0].json()
    assert responses[1].headers["Idempotent-Replayed"] == "true"
    other_file = owner_api.post(
        path,
        raw=multipart("third-boundary-3333", samples.png_bytes()),
        headers=headers,
        content_type="multipart/form-data; boundary=third-boundary-3333",
    )
    assert other_file.status_code == 422
    assert other_file.json()["code"] == "idempotency_key_reused"
    assert Attachment.objects.filter(dossier=dossier).count() == 1


def test_retry_of_the_same_bytes_under_another_file_name_replays(
    owner_api: ApiClient, dossier: Dossier
) -> None:
    """Apps write a new temporary file per try: the name must not break the retry."""
    source = samples.jpeg_bytes()
    path = f"/api/v1/dossiers/{dossier.id}/attachments"
    responses = [
        owner_api.post(
            path,
            raw=multipart("boundary-4444", source, filename=name),
            headers={"Idempotency-Key": "upload-renamed"},
            content_type="multipart/form-data; boundary=boundary-4444",
        )
        for name in ("tmp-1a2b.jpg", "tmp-9z8y.jpg")
    ]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[1].json() == responses[0].json()
    assert responses[1].json()["original_name"] == "tmp-1a2b.jpg"  # the first try's answer
    assert responses[1].headers["Idempotent-Replayed"] == "true"
    assert Attachment.objects.filter(dossier=dossier).count() == 1


def test_upload_bumps_the_dossier_version(owner_api: ApiClient, dossier: Dossier) -> None:
    upload(owner_api, dossier)

    dossier.refresh_from_db()
    assert dossier.version == 2


# --- limits ------------------------------------------------------------------------


def test_file_size_limit_boundary(
    settings: Any, owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    small, large = samples.jpeg_bytes((40, 30)), samples.jpeg_bytes((400, 300))
    settings.ATTACHMENT_MAX_FILE_BYTES = len(small)

    at_limit = upload(owner_api, dossier, small)
    over = upload(owner_api, dossier, large)

    assert at_limit.status_code == 201
    assert over.status_code == 413
    assert over.json()["code"] == "file_too_large"
    assert over.json()["details"] == {"size": len(large), "max_bytes": len(small)}
    assert Attachment.objects.filter(dossier=dossier).count() == 1


def test_default_file_size_limit_is_10_mb(owner_api: ApiClient, dossier: Dossier) -> None:
    data = samples.jpeg_bytes() + b"\0" * (10 * 1024 * 1024)

    response = upload(owner_api, dossier, data)

    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert response.json()["details"]["max_bytes"] == 10 * 1024 * 1024


def test_decompression_bomb_is_refused(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    response = upload(owner_api, dossier, samples.png_header_only(50_000, 50_000), name="a.png")

    assert response.status_code == 422
    assert response.json()["code"] == "image_too_large"
    _assert_nothing_saved(dossier, media_root)


def test_files_per_dossier_limit(
    settings: Any, owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    settings.ATTACHMENT_MAX_PER_DOSSIER = 2
    assert upload(owner_api, dossier, samples.jpeg_bytes((40, 30))).status_code == 201
    assert upload(owner_api, dossier, samples.jpeg_bytes((41, 30))).status_code == 201

    response = upload(owner_api, dossier, samples.jpeg_bytes((42, 30)))

    assert response.status_code == 422
    assert response.json()["code"] == "too_many_files"
    assert response.json()["details"] == {"max_files": 2}
    assert Attachment.objects.filter(dossier=dossier).count() == 2
    assert len(stored_files(media_root)) == 4


def test_default_files_per_dossier_is_20(settings: Any) -> None:
    assert settings.ATTACHMENT_MAX_PER_DOSSIER == 20


def test_files_per_document_limit(owner_api: ApiClient, dossier: Dossier) -> None:
    first = upload(owner_api, dossier, samples.jpeg_bytes((40, 30)), document_code="id-photo")

    second = upload(owner_api, dossier, samples.jpeg_bytes((41, 30)), document_code="id-photo")

    assert first.status_code == 201
    assert second.status_code == 422
    assert second.json()["code"] == "too_many_files_for_document"
    assert second.json()["details"] == {"document_code": "id-photo", "max_files": 1}


def test_quota_per_user_counts_every_dossier(
    settings: Any, owner_api: ApiClient, owner: User, dossier: Dossier, media_root: Path
) -> None:
    first, second = samples.jpeg_bytes((40, 30)), samples.jpeg_bytes((41, 30))
    first_size = len(process_image(io.BytesIO(first)).data)
    settings.ATTACHMENT_QUOTA_BYTES_PER_USER = first_size
    other = make_dossier(owner, dossier.procedure)

    at_quota = upload(owner_api, dossier, first)
    over = upload(owner_api, other, second)

    assert at_quota.status_code == 201
    assert over.status_code == 413
    assert over.json()["code"] == "quota_exceeded"
    assert over.json()["details"] == {"used_bytes": first_size, "quota_bytes": first_size}
    assert Attachment.objects.filter(dossier=other).count() == 0
    assert len(stored_files(media_root)) == 2


def test_default_quota_is_200_mb(settings: Any) -> None:
    assert settings.ATTACHMENT_QUOTA_BYTES_PER_USER == 200 * 1024 * 1024
    assert settings.ATTACHMENT_MAX_PIXELS == 40_000_000


# --- documents and dossier state ---------------------------------------------------------


def test_unknown_document_code_is_refused(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    response = upload(owner_api, dossier, document_code="passport")

    assert response.status_code == 422
    assert response.json()["code"] == "unknown_document"
    _assert_nothing_saved(dossier, media_root)


def test_kind_not_accepted_by_the_document(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    pdf_as_photo = upload(owner_api, dossier, samples.pdf_bytes(), document_code="id-photo")
    photo_as_form = upload(owner_api, dossier, samples.jpeg_bytes(), document_code="form")

    assert pdf_as_photo.status_code == 422
    assert pdf_as_photo.json()["code"] == "kind_not_accepted"
    assert pdf_as_photo.json()["details"] == {"kind": "pdf", "accepted_kinds": ["photo"]}
    assert photo_as_form.status_code == 422
    assert photo_as_form.json()["code"] == "kind_not_accepted"
    _assert_nothing_saved(dossier, media_root)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Dossier.Status.DRAFT, 201),
        (Dossier.Status.NEW, 409),
        (Dossier.Status.ACCEPTED, 409),
        (Dossier.Status.PROCESSING, 409),
        (Dossier.Status.SUPPLEMENT_REQUESTED, 201),
        (Dossier.Status.WITHDRAWN, 409),
        (Dossier.Status.HANDED_OVER, 409),
    ],
)
def test_upload_only_while_draft_or_supplement_requested(
    owner_api: ApiClient, owner: User, procedure: Any, media_root: Path, status: int, expected: int
) -> None:
    dossier = make_dossier(owner, procedure, status=status)

    response = upload(owner_api, dossier)

    assert response.status_code == expected
    if expected == 409:
        assert response.json()["code"] == "dossier_locked"
        _assert_nothing_saved(dossier, media_root)


def test_delete_refused_once_submitted(
    owner_api: ApiClient, dossier: Dossier, media_root: Path
) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    Dossier.objects.filter(pk=dossier.pk).update(status=Dossier.Status.NEW)

    response = owner_api.delete(_url(dossier, f"/{attachment_id}"))

    assert response.status_code == 409
    assert response.json()["code"] == "dossier_locked"
    assert Attachment.objects.filter(pk=attachment_id).exists()
    assert len(stored_files(media_root)) == 2


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (samples.pdf_with_javascript_open_action, "pdf_active_content"),
        (samples.pdf_with_launch_action, "pdf_active_content"),
        (samples.pdf_with_embedded_file, "pdf_active_content"),
        (lambda: samples.pdf_bytes(51), "pdf_too_many_pages"),
        # A viewer reads the object stream to its second /Length, and runs the script
        # there; pypdf stops at the first.
        (samples.pdf_with_script_after_the_first_length, "pdf_unreadable"),
    ],
)
def test_bad_pdf_is_refused_and_nothing_is_saved(  # type: ignore[no-untyped-def]
    owner_api: ApiClient, dossier: Dossier, media_root: Path, make, code: str
) -> None:
    response = upload(
        owner_api,
        dossier,
        make(),
        name="x.pdf",
        content_type="application/pdf",
        document_code="form",
    )

    assert response.status_code == 422
    assert response.json()["code"] == code
    _assert_nothing_saved(dossier, media_root)


def test_storage_failure_after_the_first_file_leaves_nothing_behind(
    owner_api: ApiClient, dossier: Dossier, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = default_storage.save
    calls = {"n": 0}

    def flaky_save(name: str, content: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_save(name, content, **kwargs)

    monkeypatch.setattr(default_storage, "save", flaky_save)

    response = upload(owner_api, dossier)

    assert response.status_code == 500
    assert calls["n"] == 2
    _assert_nothing_saved(dossier, media_root)


def test_database_failure_after_storing_leaves_no_file(
    owner_api: ApiClient, dossier: Dossier, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_touch(dossier: Dossier) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(attachment_actions, "_touch", failing_touch)

    response = upload(owner_api, dossier)

    assert response.status_code == 500
    _assert_nothing_saved(dossier, media_root)


def test_dossier_submitted_while_processing_is_refused_without_leftovers(
    owner_api: ApiClient, dossier: Dossier, media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_prepare = attachment_actions.prepare_content

    def prepare_then_submit(kind: str, upload: Any) -> Any:
        content = real_prepare(kind, upload)
        Dossier.objects.filter(pk=dossier.pk).update(status=Dossier.Status.NEW)
        return content

    monkeypatch.setattr(attachment_actions, "prepare_content", prepare_then_submit)

    response = upload(owner_api, dossier)

    assert response.status_code == 409
    assert response.json()["code"] == "dossier_locked"
    _assert_nothing_saved(dossier, media_root)


# --- listing, downloading, deleting ------------------------------------------------------


def test_list_is_oldest_first_and_paginated(owner_api: ApiClient, dossier: Dossier) -> None:
    ids = [
        upload(owner_api, dossier, samples.jpeg_bytes((40 + n, 30))).json()["id"] for n in range(3)
    ]

    page = owner_api.get(_url(dossier), query={"limit": 2})
    rest = owner_api.get(_url(dossier), query={"cursor": page.json()["next_cursor"]})

    assert [item["id"] for item in page.json()["items"]] == ids[:2]
    assert [item["id"] for item in rest.json()["items"]] == ids[2:]
    assert rest.json()["next_cursor"] is None


def test_download_streams_the_file_as_an_attachment(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    attachment = Attachment.objects.get(pk=attachment_id)

    response = owner_api.get(_url(dossier, f"/{attachment_id}/download"))

    assert response.status_code == 200
    assert (
        b"".join(response.raw.streaming_content)
        == default_storage.open(attachment.file.name).read()
    )
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="doc-1-{attachment_id[:8]}.jpg"'
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-store"


def test_thumbnail_is_about_320_px(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier, samples.jpeg_bytes((1600, 1200))).json()["id"]

    response = owner_api.get(_url(dossier, f"/{attachment_id}/thumbnail"))

    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    image = Image.open(io.BytesIO(b"".join(response.raw.streaming_content)))
    assert image.size == (320, 240)


def test_pdf_has_no_thumbnail(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier, samples.pdf_bytes(), document_code="form").json()[
        "id"
    ]

    response = owner_api.get(_url(dossier, f"/{attachment_id}/thumbnail"))
    pdf = owner_api.get(_url(dossier, f"/{attachment_id}/download"))

    assert response.status_code == 404
    assert response.json()["code"] == "no_thumbnail"
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"].endswith('.pdf"')


def test_delete_removes_the_row_and_the_files_on_commit(
    owner_api: ApiClient,
    dossier: Dossier,
    media_root: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    assert len(stored_files(media_root)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.delete(_url(dossier, f"/{attachment_id}"))

    assert response.status_code == 204
    assert not Attachment.objects.filter(pk=attachment_id).exists()
    assert stored_files(media_root) == []


def test_delete_unknown_attachment_is_404(owner_api: ApiClient, dossier: Dossier) -> None:
    response = owner_api.delete(_url(dossier, "/00000000-0000-0000-0000-000000000000"))

    assert response.status_code == 404


def test_attachment_of_another_dossier_is_404(
    owner_api: ApiClient, owner: User, dossier: Dossier
) -> None:
    other = make_dossier(owner, dossier.procedure)
    attachment_id = upload(owner_api, other).json()["id"]

    response = owner_api.get(_url(dossier, f"/{attachment_id}/download"))

    assert response.status_code == 404


# --- signed download URLs ----------------------------------------------------------------


def _signed_url(client: ApiClient, dossier: Dossier, attachment_id: str, **query: str) -> str:
    response = client.get(_url(dossier, f"/{attachment_id}/download-url"), query=query)
    assert response.status_code == 200, response
    return str(response.json()["url"])


def test_signed_url_downloads_without_a_token(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    attachment = Attachment.objects.get(pk=attachment_id)

    url = _signed_url(owner_api, dossier, attachment_id)
    response = ApiClient().get(urlsplit(url).path)

    assert url.startswith("http://testserver/api/v1/dossiers/attachment-downloads/")
    assert response.status_code == 200
    assert (
        b"".join(response.raw.streaming_content)
        == default_storage.open(attachment.file.name).read()
    )
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_signed_url_for_the_thumbnail(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier, samples.jpeg_bytes((1600, 1200))).json()["id"]

    url = _signed_url(owner_api, dossier, attachment_id, variant="thumbnail")
    response = ApiClient().get(urlsplit(url).path)

    image = Image.open(io.BytesIO(b"".join(response.raw.streaming_content)))
    assert image.size == (320, 240)


def test_signed_url_expires_after_the_ttl(
    owner_api: ApiClient, dossier: Dossier, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import time

    attachment_id = upload(owner_api, dossier).json()["id"]
    # The link is stamped in whole seconds: issued on one, so that the test knows its age.
    issued = float(int(time.time()))
    monkeypatch.setattr(time, "time", lambda: issued)
    response = owner_api.get(_url(dossier, f"/{attachment_id}/download-url"))
    path = urlsplit(response.json()["url"]).path
    assert settings.ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS == 300

    monkeypatch.setattr(time, "time", lambda: issued + 300)
    still_valid = ApiClient().get(path)
    monkeypatch.setattr(time, "time", lambda: issued + 301)
    expired = ApiClient().get(path)

    assert still_valid.status_code == 200
    assert expired.status_code == 403
    assert expired.json()["code"] == "download_url_expired"


def test_tampered_signed_url_is_404(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    path = urlsplit(_signed_url(owner_api, dossier, attachment_id)).path
    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")

    response = ApiClient().get(path.replace(token, forged))

    assert response.status_code == 404


def test_signed_url_of_a_deleted_attachment_is_404(owner_api: ApiClient, dossier: Dossier) -> None:
    attachment_id = upload(owner_api, dossier).json()["id"]
    path = urlsplit(_signed_url(owner_api, dossier, attachment_id)).path
    owner_api.delete(_url(dossier, f"/{attachment_id}"))

    response = ApiClient().get(path)

    assert response.status_code == 404


def test_large_phone_photo_spooled_to_disk_is_processed(
    settings: Any, owner_api: ApiClient, dossier: Dossier
) -> None:
    noise = Image.effect_noise((1008, 756), 60).convert("RGB").resize((4032, 3024))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=95)
    source = out.getvalue()
    assert len(source) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE  # a temporary file upload

    response = upload(owner_api, dossier, source, name="IMG_1234.JPG")

    assert response.status_code == 201, response
    assert (response.json()["width"], response.json()["height"]) == (2016, 1512)
    assert response.json()["sha256"] == hashlib.sha256(source).hexdigest()
