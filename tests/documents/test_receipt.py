"""The submission receipt PDF: contents in Vietnamese, the secret, the QR code, who gets it."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from backend.pdf import qr_image
from dossiers.lookup_secrets import display
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_organisation
from tests.tracking.test_lookup import submitted
from tracking.lookup import lookup_url

pytestmark = pytest.mark.django_db


def receipt(user, dossier):
    client = ApiClient(token=sign_in(user)[1].access_token, language="vi")
    return client.get(f"/api/v1/dossiers/{dossier.pk}/receipt")


def test_receipt_prints_code_procedure_documents_appointment_and_secret() -> None:
    dossier, secret = submitted(make_user(full_name="Trần Thị Ánh Tuyết"))
    response = receipt(dossier.applicant, dossier)
    assert response.status_code == 200, response
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Cache-Control"] == "private, no-store"
    reader = PdfReader(io.BytesIO(response.content))
    text = reader.pages[0].extract_text()
    assert dossier.code in text
    assert dossier.procedure.name in text  # "Thủ tục thử nghiệm số …": diacritics kept
    assert "Trần Thị Ánh Tuyết" in text
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in text
    assert "1. Giấy tờ 1 (1 tệp)" in text
    appointment = dossier.appointment_at.astimezone().strftime("%d/%m/%Y")
    assert appointment in text
    assert display(secret) in text
    # The font is embedded (no reader-side substitution that would drop diacritics).
    fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
    assert all(
        "/FontFile2" in f["/DescendantFonts"][0].get_object()["/FontDescriptor"] for f in fonts
    )


def test_receipt_qr_code_opens_the_lookup_with_the_code_and_secret() -> None:
    dossier, secret = submitted()
    reader = PdfReader(io.BytesIO(receipt(dossier.applicant, dossier).content))
    (embedded,) = reader.pages[0].images
    printed = Image.open(io.BytesIO(embedded.data)).convert("L")
    expected = qr_image(lookup_url(dossier.code, secret)).convert("L")
    assert printed.size == expected.size
    assert ImageChops.difference(printed, expected).getbbox() is None


def test_only_the_applicant_gets_the_receipt() -> None:
    owner = make_user()
    organisation = make_organisation(owner)
    dossier, _secret = submitted(owner, organisation=organisation)
    colleague = make_user()
    organisation.memberships.create(user=colleague, role="member")
    for other in (colleague, make_user()):
        response = receipt(other, dossier)
        assert response.status_code == 404
    assert ApiClient().get(f"/api/v1/dossiers/{dossier.pk}/receipt").status_code == 401
