"""Payment error texts are wholly in the request's language: no raw status code, no
Vietnamese amount in an English sentence."""

from __future__ import annotations

import pytest
from django.utils import translation

from backend.errors import Conflict
from payments.actions import _move
from payments.models import Payment
from tests.conftest import ApiClient
from tests.payments.conftest import Citizen, only_payment
from tests.payments.test_submission_fee import draft

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("vi", "Vui lòng nộp phí, lệ phí 50.000 đồng trước khi nộp hồ sơ."),
        ("en", "Pay the fee of 50.000 VND before submitting."),
    ],
)
def test_payment_required_writes_the_amount_in_the_request_language(
    language: str, message: str
) -> None:
    api, dossier = draft()
    api = ApiClient(token=api.token, language=language)

    refused = api.post(f"/api/v1/dossiers/{dossier.pk}/submit")

    assert (refused.status_code, refused.json()["code"]) == (409, "payment_required")
    assert refused.json()["message"] == message


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("vi", "Giao dịch thanh toán không thể chuyển từ trạng thái “Hết hạn”."),
        ("en", "This payment cannot change from “Expired”."),
    ],
)
def test_a_refused_payment_move_names_the_status_by_its_label(
    fake_gateway, language: str, message: str
) -> None:
    citizen = Citizen()
    assert citizen.checkout().status_code == 201
    payment = only_payment(citizen)
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.EXPIRED)
    payment.refresh_from_db()

    with translation.override(language), pytest.raises(Conflict) as refused:
        _move(payment, Payment.Status.CANCELLED)

    assert refused.value.code == "invalid_payment_transition"
    assert str(refused.value.message) == message
    payment.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED
