"""Uploads, thumbnails, results and wallet papers in an S3-speaking object store.

Every test here runs against moto's standalone S3 server as its own process on
loopback (`s3_server`, a fresh bucket per test from `s3_bucket`) through
django-storages' S3 backend, the production configuration (`STORAGE_BACKEND=s3`):
what the bucket holds is read back from the server itself, never from a mock.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from PIL import Image
from storages.backends.s3 import S3Storage

from auth.models import User
from documents import wallet
from documents.models import WalletItem
from dossiers.actions import delete_draft
from dossiers.models import Agency, Attachment, DocumentType, Dossier, ResultDocument
from tests.conftest import ApiClient, make_user, sign_in
from tests.documents.pki import configure, make_pdf
from tests.dossiers.attachments import samples
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, AgencyClient
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks: Any) -> Any:
    return django_capture_on_commit_callbacks


@pytest.fixture
def cccd(db: None) -> DocumentType:
    return DocumentType.objects.create(code="cccd", name="Căn cước công dân", name_en="Citizen ID")


def client(user: User) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token)


def draft_for(user: User, document_type: DocumentType | None = None) -> Dossier:
    procedure = make_procedure(form_spec=RICH_FORM)
    if document_type is not None:
        procedure.documents.get(code="doc-1").accepted_types.add(document_type)
    return make_dossier(user, procedure, form_data=VALID_FORM)


def upload(user: User, dossier: Dossier, data: bytes, name: str, content_type: str) -> Any:
    return client(user).client.post(
        f"/api/v1/dossiers/{dossier.pk}/attachments",
        {"file": ContentFile(data, name=name), "document_code": "doc-1"},
        headers={"Authorization": f"Bearer {sign_in(user)[1].access_token}"},
    )


def keep(user: User, data: bytes, **fields: str) -> Any:
    return client(user).client.post(
        "/api/v1/wallet/items",
        {"file": ContentFile(data, name="paper.jpg"), **fields},
        headers={"Authorization": f"Bearer {sign_in(user)[1].access_token}"},
    )


def streamed(response: Any) -> bytes:
    return b"".join(response.streaming_content)


# --- the storage itself -------------------------------------------------------------


def test_the_default_storage_is_the_s3_backend_on_the_servers_bucket(
    s3_bucket: str, s3_server: Any
) -> None:
    assert isinstance(storages["default"], S3Storage)
    name = default_storage.save("attachments/ab/first", ContentFile(b"one object"))
    assert name == "attachments/ab/first"
    assert s3_server.keys(s3_bucket) == ["attachments/ab/first"]
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=name)["Body"].read()
    assert body == b"one object"


def test_save_read_delete_round_trip(s3_bucket: str, s3_server: Any) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, more than one read chunk
    name = default_storage.save("results/cd/round-trip", ContentFile(data))
    assert default_storage.exists(name)
    assert default_storage.size(name) == len(data)
    with default_storage.open(name, "rb") as stored:
        assert stored.read() == data
    default_storage.delete(name)
    assert not default_storage.exists(name)
    assert s3_server.keys(s3_bucket) == []


def test_a_missing_object_is_file_not_found(s3_bucket: str) -> None:
    with pytest.raises(FileNotFoundError):
        default_storage.open("attachments/00/never-stored", "rb")


def test_listdir_sees_the_prefixes_the_orphan_sweep_walks(s3_bucket: str) -> None:
    for name in ("wallet/aa/one", "wallet/aa/two", "wallet/bb/three"):
        default_storage.save(name, ContentFile(b"x"))
    directories, files = default_storage.listdir("wallet")
    assert (sorted(directories), files) == (["aa", "bb"], [])
    assert sorted(default_storage.listdir("wallet/aa")[1]) == ["one", "two"]


# --- attachments end to end through the API ------------------------------------------


def test_an_uploaded_photo_and_its_thumbnail_live_in_the_bucket(
    s3_bucket: str, s3_server: Any, on_commit: Any
) -> None:
    user = make_user()
    dossier = draft_for(user)
    source = samples.jpeg_bytes((400, 300), orientation=6, gps=True)

    response = upload(user, dossier, source, "cccd.jpg", "image/jpeg")

    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get(pk=response.json()["id"])
    assert s3_server.keys(s3_bucket) == sorted([attachment.file.name, attachment.thumbnail.name])
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=attachment.file.name)
    stored_bytes = stored["Body"].read()
    assert attachment.sha256 == hashlib.sha256(source).hexdigest()
    assert stored_bytes[:2] == b"\xff\xd8"
    image = Image.open(io.BytesIO(stored_bytes))
    assert image.size == (300, 400)  # the clean copy (orientation applied) is what is stored
    assert not image.getexif().get_ifd(samples.GPS_IFD)

    api = client(user)
    base = f"/api/v1/dossiers/{dossier.pk}/attachments/{attachment.pk}"
    download = api.client.get(f"{base}/download", headers=api._headers(None))
    assert download.status_code == 200
    assert streamed(download) == stored_bytes
    thumbnail = api.client.get(f"{base}/thumbnail", headers=api._headers(None))
    assert thumbnail.status_code == 200
    thumb_bytes = s3_server.client().get_object(Bucket=s3_bucket, Key=attachment.thumbnail.name)
    assert streamed(thumbnail) == thumb_bytes["Body"].read()

    # The signed link (our own route, streaming from the store) works without the token.
    link = api.get(f"{base}/download-url")
    assert link.status_code == 200
    signed = api.client.get(urlsplit(link.json()["url"]).path)
    assert signed.status_code == 200
    assert streamed(signed) == stored_bytes

    with on_commit(execute=True):
        assert api.delete(base).status_code == 204
    assert s3_server.keys(s3_bucket) == []


def test_a_pdf_upload_is_stored_without_a_thumbnail(s3_bucket: str, s3_server: Any) -> None:
    user = make_user()
    dossier = draft_for(user)
    response = upload(user, dossier, samples.pdf_bytes(), "form.pdf", "application/pdf")
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get(pk=response.json()["id"])
    assert s3_server.keys(s3_bucket) == [attachment.file.name]


def test_an_object_gone_from_the_store_is_a_404_not_a_500(s3_bucket: str, s3_server: Any) -> None:
    user = make_user()
    dossier = draft_for(user)
    response = upload(user, dossier, samples.pdf_bytes(), "form.pdf", "application/pdf")
    attachment = Attachment.objects.get(pk=response.json()["id"])
    s3_server.client().delete_object(Bucket=s3_bucket, Key=attachment.file.name)
    api = client(user)
    gone = api.get(f"/api/v1/dossiers/{dossier.pk}/attachments/{attachment.pk}/download")
    assert gone.status_code == 404


# --- results and the wallet -----------------------------------------------------------


def test_an_issued_result_is_stored_and_downloaded_from_the_bucket(
    s3_bucket: str, s3_server: Any, agency: Agency, agency_client: AgencyClient, settings: Any
) -> None:
    configure(settings, agency.code)
    owner = make_user()
    dossier = make_dossier(owner, make_procedure(agency), status=Dossier.Status.PROCESSING)
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/complete",
        multipart={"result_file": ContentFile(make_pdf(), name="kq.pdf"), "signing": "server"},
    )
    assert response.status_code == 200
    dossier.refresh_from_db()
    result = ResultDocument.objects.get(dossier=dossier)
    assert dossier.result_file.name.startswith("results/")
    assert result.file == dossier.result_file.name
    assert dossier.result_file.name in s3_server.keys(s3_bucket)
    in_bucket = s3_server.client().get_object(Bucket=s3_bucket, Key=result.file)["Body"].read()
    assert in_bucket.startswith(b"%PDF")

    api = client(owner)
    download = api.client.get(f"/api/v1/dossiers/{dossier.pk}/result", headers=api._headers(None))
    assert download.status_code == 200
    assert streamed(download) == in_bucket


def test_attaching_a_wallet_paper_shares_the_same_key_without_a_copy(
    s3_bucket: str, s3_server: Any, cccd: DocumentType, on_commit: Any, settings: Any
) -> None:
    settings.WALLET_ORPHAN_GRACE_SECONDS = 0  # the sweep reads each orphan's age from S3
    user = make_user()
    kept = keep(user, samples.jpeg_bytes(), document_type="cccd")
    assert kept.status_code == 201, kept.content
    item = WalletItem.objects.get(pk=kept.json()["id"])
    keys_before = s3_server.keys(s3_bucket)
    assert keys_before == sorted([item.file, item.thumbnail])

    dossier = draft_for(user, cccd)
    attached = client(user).post(
        f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
        {"wallet_item_id": str(item.pk), "document_code": "doc-1"},
    )

    assert attached.status_code == 201, attached
    attachment = Attachment.objects.get(pk=attached.json()["id"])
    assert (attachment.file.name, attachment.thumbnail.name) == (item.file, item.thumbnail)
    assert s3_server.keys(s3_bucket) == keys_before  # no byte copied, no new object

    api = client(user)
    download = api.client.get(f"/api/v1/wallet/items/{item.pk}/file", headers=api._headers(None))
    assert (
        streamed(download)
        == s3_server.client().get_object(Bucket=s3_bucket, Key=item.file)["Body"].read()
    )

    # Deleting the item and then the draft leaves an orphan the sweep finds by listing
    # the bucket, and deletes from it.
    with on_commit(execute=True):
        assert api.delete(f"/api/v1/wallet/items/{item.pk}").status_code == 204
    assert s3_server.keys(s3_bucket) == keys_before  # the draft still points at them
    with on_commit(execute=True):
        delete_draft(user, dossier.pk)
    assert s3_server.keys(s3_bucket) == keys_before
    assert sorted(wallet.sweep_orphan_files()) == keys_before
    assert s3_server.keys(s3_bucket) == []
