"""The document wallet: keeping papers, issued results, reuse without copies, access."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from documents import wallet
from documents.models import WalletItem
from documents.tasks import on_dossier_event
from dossiers.actions import delete_draft, submit_dossier
from dossiers.models import Agency, Attachment, DocumentType, Dossier, DossierEvent, ResultDocument
from tests.conftest import ApiClient, make_user, sign_in
from tests.documents.pki import configure, make_pdf
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.test_pdf_hostile import _CATALOG, _classic
from tests.dossiers.conftest import RICH_FORM, VALID_FORM, AgencyClient
from tests.factories import make_dossier, make_organisation, make_procedure

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def cccd(db) -> DocumentType:
    return DocumentType.objects.create(code="cccd", name="Căn cước công dân", name_en="Citizen ID")


def client(user) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token)


def keep(user, data: bytes, **fields) -> object:
    return client(user).client.post(
        "/api/v1/wallet/items",
        {"file": ContentFile(data, name="paper.jpg"), **fields},
        headers={"Authorization": f"Bearer {sign_in(user)[1].access_token}"},
    )


def draft_for(user, document_type: DocumentType, *, organisation=None) -> Dossier:
    procedure = make_procedure(form_spec=RICH_FORM)
    procedure.documents.get(code="doc-1").accepted_types.add(document_type)
    return make_dossier(user, procedure, form_data=VALID_FORM, organisation=organisation)


def attach(user, dossier: Dossier, item_id, code: str = "doc-1"):
    return client(user).post(
        f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
        {"wallet_item_id": str(item_id), "document_code": code},
    )


def test_a_kept_photo_goes_through_the_attachment_pipeline(cccd: DocumentType) -> None:
    user = make_user()
    source = samples.jpeg_bytes((400, 300), orientation=6, gps=True)
    response = keep(user, source, document_type="cccd", expires_on="2035-01-01")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["document_type"]["code"] == "cccd"
    assert (body["kind"], body["expires_on"], body["owner"]) == ("image", "2035-01-01", "user")
    item = WalletItem.objects.get(pk=body["id"])
    assert item.file.startswith("wallet/")
    stored = Image.open(default_storage.open(item.file))
    assert stored.format == "JPEG"
    assert not stored.getexif().get_ifd(samples.GPS_IFD)  # GPS stripped
    assert stored.size == (300, 400)  # orientation applied


@pytest.mark.parametrize(("data", "status", "code"), [
    (samples.pdf_with_javascript_open_action(), 422, "pdf_active_content"),
    (b"MZ\x90\x00not a paper", 415, "unsupported_file_type"),
])  # fmt: skip
def test_refused_uploads_leave_nothing(data: bytes, status: int, code: str) -> None:
    user = make_user()
    response = keep(user, data)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not WalletItem.objects.exists()


def test_unknown_document_type_is_refused(db) -> None:
    response = keep(make_user(), samples.jpeg_bytes(), document_type="nope")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    [detail] = response.json()["details"]
    assert (detail["field"], detail["location"], detail["code"]) == (
        "document_type",
        "form",
        "unknown_document_type",
    )
    assert not WalletItem.objects.exists()


@pytest.mark.parametrize(("extra", "expected"), [(0, 201), (1, 413)])
def test_size_limit_is_the_attachments_one(settings, extra: int, expected: int) -> None:
    data = samples.pdf_bytes()
    settings.ATTACHMENT_MAX_FILE_BYTES = len(data) - 1 + (1 - extra)
    response = keep(make_user(), data)
    assert response.status_code == expected


@pytest.mark.parametrize(("existing", "expected"), [(1, 201), (2, 422)])
def test_item_count_limit(settings, existing: int, expected: int) -> None:
    settings.WALLET_MAX_ITEMS = 2
    user = make_user()
    for n in range(existing):
        assert keep(user, samples.jpeg_bytes((300 + n, 200))).status_code == 201
    response = keep(user, samples.jpeg_bytes((500, 200)))
    assert response.status_code == expected
    if expected == 422:
        assert response.json()["code"] == "wallet_full"


def test_attach_from_wallet_shares_the_stored_object(cccd: DocumentType) -> None:
    user = make_user()
    item = WalletItem.objects.get(
        pk=keep(user, samples.jpeg_bytes(), document_type="cccd").json()["id"]
    )
    files_before = _stored_files()
    dossier = draft_for(user, cccd)
    response = attach(user, dossier, item.pk)
    assert response.status_code == 201, response
    attachment = Attachment.objects.get(pk=response.json()["id"])
    assert attachment.file.name == item.file  # same object, no copy
    assert attachment.thumbnail.name == item.thumbnail
    assert attachment.sha256 == item.sha256
    assert _stored_files() == files_before
    # Twice: the existing attachment, nothing new.
    again = attach(user, dossier, item.pk)
    assert again.status_code == 200
    assert again.json()["id"] == str(attachment.pk)


def _stored_files() -> set[str]:
    root = Path(default_storage.location)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_deleting_the_wallet_item_keeps_the_submitted_dossiers_file(
    on_commit, cccd: DocumentType
) -> None:
    user = make_user()
    item_id = keep(user, samples.jpeg_bytes(), document_type="cccd").json()["id"]
    dossier = draft_for(user, cccd)
    attachment = Attachment.objects.get(pk=attach(user, dossier, item_id).json()["id"])
    submit_dossier(user, dossier.pk)
    name = attachment.file.name
    with on_commit(execute=True):
        assert client(user).delete(f"/api/v1/wallet/items/{item_id}").status_code == 204
    assert not WalletItem.objects.filter(pk=item_id).exists()
    assert default_storage.exists(name)  # the dossier still has its paper
    assert default_storage.open(name).read()[:2] == b"\xff\xd8"


def test_deleting_an_unused_item_deletes_its_files(on_commit, cccd: DocumentType) -> None:
    user = make_user()
    item = WalletItem.objects.get(pk=keep(user, samples.jpeg_bytes()).json()["id"])
    with on_commit(execute=True):
        assert client(user).delete(f"/api/v1/wallet/items/{item.pk}").status_code == 204
    assert not default_storage.exists(item.file)
    assert not default_storage.exists(item.thumbnail)


def test_deleting_a_draft_never_deletes_the_wallet_file(on_commit, cccd: DocumentType) -> None:
    user = make_user()
    item = WalletItem.objects.get(
        pk=keep(user, samples.jpeg_bytes(), document_type="cccd").json()["id"]
    )
    dossier = draft_for(user, cccd)
    attach(user, dossier, item.pk)
    with on_commit(execute=True):
        delete_draft(user, dossier.pk)
    assert default_storage.exists(item.file)
    # The orphan sweep keeps it too: the wallet item still refers to it.
    assert wallet.sweep_orphan_files() == []


def test_orphans_are_swept_once_nothing_refers_to_them(
    on_commit, cccd: DocumentType, settings
) -> None:
    settings.WALLET_ORPHAN_GRACE_SECONDS = 0  # test_wallet_sweep.py: the grace itself
    user = make_user()
    item = WalletItem.objects.get(
        pk=keep(user, samples.jpeg_bytes(), document_type="cccd").json()["id"]
    )
    dossier = draft_for(user, cccd)
    attach(user, dossier, item.pk)
    with on_commit(execute=True):
        client(user).delete(f"/api/v1/wallet/items/{item.pk}")
    assert default_storage.exists(item.file)  # the draft still points at it
    with on_commit(execute=True):
        delete_draft(user, dossier.pk)
    assert default_storage.exists(item.file)  # the dossier's deletion left it
    assert sorted(wallet.sweep_orphan_files()) == sorted([item.file, item.thumbnail])
    assert not default_storage.exists(item.file)


@pytest.mark.parametrize("expires_on", ["0", "1700000000", "2035-1-1", "2035-01-01T00:00"])
def test_an_expiry_is_a_calendar_date_only(cccd: DocumentType, expires_on: str) -> None:
    user = make_user()
    response = keep(user, samples.jpeg_bytes((40, 30)), document_type="cccd", expires_on=expires_on)
    assert response.status_code == 422, response.content
    assert response.json()["details"][0]["field"] == "expires_on"
    assert not WalletItem.objects.filter(user=user).exists()


def test_expired_or_wrong_type_papers_are_not_offered_nor_attached(cccd: DocumentType) -> None:
    user = make_user()
    other_type = DocumentType.objects.create(code="gks", name="Giấy khai sinh")
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    good = keep(user, samples.jpeg_bytes((410, 300)), document_type="cccd").json()["id"]
    expired = keep(
        user, samples.jpeg_bytes((420, 300)), document_type="cccd", expires_on=yesterday
    ).json()["id"]
    wrong = keep(user, samples.jpeg_bytes((430, 300)), document_type="gks").json()["id"]
    untyped = keep(user, samples.jpeg_bytes((440, 300))).json()["id"]
    dossier = draft_for(user, cccd)
    offers = client(user).get(f"/api/v1/dossiers/{dossier.pk}/wallet-offers").json()
    assert offers[0]["document_code"] == "doc-1"
    assert offers[0]["accepted_types"] == ["cccd"]
    assert [item["id"] for item in offers[0]["items"]] == [good]
    response = attach(user, dossier, expired)
    assert (response.status_code, response.json()["code"]) == (422, "wallet_item_expired")
    response = attach(user, dossier, wrong)
    assert (response.status_code, response.json()["code"]) == (422, "document_type_not_accepted")
    assert other_type.code == "gks"
    assert untyped  # untyped papers are kept but never offered
    assert not Attachment.objects.filter(dossier=dossier).exists()


def test_an_issued_result_goes_to_the_holders_wallet(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    configure(settings, agency.code)
    marriage = DocumentType.objects.create(code="gcn-kh", name="Giấy chứng nhận kết hôn")
    owner = make_user()
    organisation = make_organisation(owner)
    for holder, org in ((make_user(), None), (owner, organisation)):
        procedure = make_procedure(agency, result_type=marriage)
        dossier = make_dossier(
            holder, procedure, status=Dossier.Status.PROCESSING, organisation=org
        )
        response = agency_client.post(
            f"/api/v1/agency/dossiers/{dossier.code}/complete",
            multipart={"result_file": ContentFile(make_pdf(), name="kq.pdf"), "signing": "server"},
        )
        assert response.status_code == 200
        event = DossierEvent.objects.get(dossier=dossier, type="dossier.completed")
        on_dossier_event(event.pk)
        on_dossier_event(event.pk)  # a retried job adds nothing
        result = ResultDocument.objects.get(dossier=dossier)
        item = WalletItem.objects.get(result=result)
        assert (item.user, item.organisation) == ((None, org) if org else (holder, None))
        assert (item.source, item.file, item.document_type) == ("result", result.file, marriage)
        assert item.pages == 2


def test_an_issued_results_pages_are_counted_as_viewers_count_them(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    # Its page tree gives /Kids and /Count twice: viewers take the last values (two
    # pages), pypdf's own reader the first (one page).
    configure(settings, agency.code)
    procedure = make_procedure(agency, result_type=DocumentType.objects.create(code="gcn-kh"))
    dossier = make_dossier(make_user(), procedure, status=Dossier.Status.PROCESSING)
    response = agency_client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/complete",
        multipart={"result_file": ContentFile(make_pdf(), name="kq.pdf"), "signing": "server"},
    )
    assert response.status_code == 200
    pages = b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Kids [3 0 R 4 0 R] /Count 2 >>"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"
    stored = _classic({**_CATALOG, 2: pages, 4: page})
    event = DossierEvent.objects.get(dossier=dossier, type="dossier.completed")

    # The stored file as the object store would give it back.
    with mock.patch.object(wallet.default_storage, "open", return_value=io.BytesIO(stored)):
        on_dossier_event(event.pk)

    assert WalletItem.objects.get(result__dossier=dossier).pages == 2


def test_result_subscriber_is_configured(settings) -> None:
    assert "documents.tasks.on_dossier_event" in settings.EVENT_SUBSCRIBERS


def test_the_catalogue_says_which_document_types_a_document_accepts(cccd: DocumentType) -> None:
    procedure = make_procedure()
    procedure.documents.get(code="doc-1").accepted_types.add(cccd)
    body = ApiClient().get(f"/api/v1/catalogue/procedures/{procedure.pk}").json()
    assert body["documents"][0]["accepted_types"] == ["cccd"]
