"""E-receipts (PDF with Vietnamese text), amounts in words, and 404 for everyone else."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from auth.models import Membership
from dossiers.agency.credentials import create_credential
from dossiers.models import Dossier
from payments.amounts import number_in_words, vnd_in_figures, vnd_in_words
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_agency, make_organisation
from tests.payments.conftest import (
    AMOUNT,
    Citizen,
    configure,
    only_payment,
    pay_at_gateway,
    post_ipn,
)


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "Không đồng"),
        (5, "Năm đồng"),
        (10, "Mười đồng"),
        (15, "Mười lăm đồng"),
        (21, "Hai mươi mốt đồng"),
        (24, "Hai mươi tư đồng"),
        (105, "Một trăm linh năm đồng"),
        (110, "Một trăm mười đồng"),
        (1_005, "Một nghìn không trăm linh năm đồng"),
        (30_000, "Ba mươi nghìn đồng"),
        (150_000, "Một trăm năm mươi nghìn đồng"),
        (1_250_000, "Một triệu hai trăm năm mươi nghìn đồng"),
        (2_024_000, "Hai triệu không trăm hai mươi tư nghìn đồng"),
        (1_000_005, "Một triệu không trăm linh năm đồng"),
        (1_000_000_000, "Một tỷ đồng"),
        (2_000_300_000, "Hai tỷ ba trăm nghìn đồng"),
        (1_500_000_000_000, "Một nghìn năm trăm tỷ đồng"),
    ],
)
def test_amount_in_vietnamese_words(amount: int, words: str) -> None:
    assert vnd_in_words(amount) == words


def test_amount_in_figures_and_negative_amounts() -> None:
    assert vnd_in_figures(1_250_000) == "1.250.000 đồng"
    with pytest.raises(ValueError, match="negative"):
        number_in_words(-1)


def paid(citizen: Citizen, fake_gateway) -> str:
    configure(fake_gateway, drop_callbacks=True)
    params = pay_at_gateway(fake_gateway, citizen.checkout().json()["checkout_url"])
    assert post_ipn(params).json()["RspCode"] == "00"
    return str(only_payment(citizen).pk)


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.django_db
def test_payer_downloads_the_receipt_with_vietnamese_text(citizen, fake_gateway) -> None:
    payment_id = paid(citizen, fake_gateway)
    payment = only_payment(citizen)

    response = citizen.api.get(f"/api/v1/payments/{payment_id}/receipt")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    for expected in (
        "BIÊN LAI THU PHÍ, LỆ PHÍ",
        str(payment.receipt_number),
        citizen.user.full_name,
        str(citizen.dossier.code),
        "Phí thẩm định",
        "Lệ phí cấp giấy",
        "Cước trả kết quả qua bưu chính",
        "150.000 đồng",
        "Một trăm năm mươi nghìn đồng",
        payment.gateway_reference,
    ):
        assert expected in text, expected
    fonts = PdfReader(io.BytesIO(response.content)).pages[0]["/Resources"]["/Font"]
    assert any("NotoSans" in str(font.get_object()["/BaseFont"]) for font in fonts.values())


@pytest.mark.django_db
def test_the_receipt_is_in_vietnamese_whatever_the_request_language(citizen, fake_gateway) -> None:
    """payments.md: the e-receipt is issued in Vietnamese, the document's legal language."""
    payment_id = paid(citizen, fake_gateway)
    texts = {
        language: pdf_text(
            ApiClient(token=citizen.api.token, language=language)
            .get(f"/api/v1/payments/{payment_id}/receipt")
            .content
        )
        for language in ("vi", "en")
    }
    assert texts["en"] == texts["vi"]
    assert "BIÊN LAI THU PHÍ, LỆ PHÍ" in texts["en"]


@pytest.mark.django_db
def test_no_receipt_before_payment(citizen, fake_gateway) -> None:
    payment = citizen.checkout().json()
    response = citizen.api.get(f"/api/v1/payments/{payment['id']}/receipt")
    assert response.status_code == 404
    assert response.json()["code"] == "no_receipt"


@pytest.mark.django_db
def test_organisation_members_see_business_payments_and_receipts(fake_gateway) -> None:
    citizen = Citizen()
    organisation = make_organisation(citizen.user)
    Dossier.objects.filter(pk=citizen.dossier.pk).update(organisation=organisation)
    colleague = make_user()
    Membership.objects.create(
        organisation=organisation, user=colleague, role=Membership.Role.MEMBER
    )
    payment_id = paid(citizen, fake_gateway)
    api = ApiClient(token=sign_in(colleague)[1].access_token)
    assert api.get(f"/api/v1/payments/{payment_id}").json()["status"] == "paid"
    assert api.get(f"/api/v1/payments/{payment_id}/receipt").status_code == 200


@pytest.mark.django_db
def test_another_user_gets_404_on_every_payment_route(citizen, fake_gateway) -> None:
    payment_id = paid(citizen, fake_gateway)
    stranger = ApiClient(token=sign_in(make_user())[1].access_token)
    dossier = citizen.dossier.pk
    answers = [
        stranger.get(f"/api/v1/payments/{payment_id}"),
        stranger.get(f"/api/v1/payments/{payment_id}/receipt"),
        stranger.post(f"/api/v1/payments/{payment_id}/cancel"),
        stranger.get(f"/api/v1/payments/dossiers/{dossier}/due"),
        stranger.get(f"/api/v1/payments/dossiers/{dossier}/payments"),
        stranger.post(f"/api/v1/payments/dossiers/{dossier}/checkout", {}),
    ]
    assert [a.status_code for a in answers] == [404] * 6
    assert {a.json()["code"] for a in answers} == {"not_found"}
    assert only_payment(citizen).status == "paid"


@pytest.mark.django_db
def test_agency_sees_payment_state_and_downloads_the_receipt(citizen, fake_gateway) -> None:
    from tests.dossiers.conftest import AgencyClient

    payment_id = paid(citizen, fake_gateway)
    credential, secret = create_credential(citizen.dossier.agency)
    agency = AgencyClient(credential, secret)

    listing = agency.get(f"/api/v1/agency/dossiers/{citizen.dossier.code}/payments")
    assert listing.status_code == 200, listing
    [item] = listing.json()["items"]
    assert (item["id"], item["status"], item["amount"], item["counted"]) == (
        payment_id,
        "paid",
        AMOUNT,
        True,
    )
    receipt = agency.get(f"/api/v1/agency/payments/{payment_id}/receipt")
    assert receipt.status_code == 200
    assert "Một trăm năm mươi nghìn đồng" in pdf_text(receipt.content)

    other_credential, other_secret = create_credential(make_agency())
    other = AgencyClient(other_credential, other_secret)
    assert other.get(f"/api/v1/agency/payments/{payment_id}/receipt").status_code == 404
    assert other.get(f"/api/v1/agency/dossiers/{citizen.dossier.code}/payments").status_code == 404
