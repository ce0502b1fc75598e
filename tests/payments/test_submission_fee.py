"""A wholly-online procedure whose fee is paid when submitting: the draft shows the fee,
and the submission waits for the payment."""

from __future__ import annotations

import pytest

from dossiers.models import Dossier, DossierEvent, Procedure
from payments.models import Payment, PaymentRequest
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_procedure
from tests.payments.conftest import configure, pay_at_gateway, post_ipn

pytestmark = pytest.mark.django_db
FORM = {"full_name": "Lê Thị Hoa", "birth_date": "1990-01-02"}


def draft(**procedure: object) -> tuple[ApiClient, Dossier]:
    user = make_user()
    fields = {"fee_amount": 50_000, "fee_timing": Procedure.FeeTiming.BEFORE, **procedure}
    dossier = make_dossier(user, make_procedure(documents=0, **fields), form_data=FORM)
    return ApiClient(token=sign_in(user)[1].access_token), dossier


def test_submission_waits_for_the_fee_then_goes_through(fake_gateway) -> None:
    api, dossier = draft()

    refused = api.post(f"/api/v1/dossiers/{dossier.pk}/submit")

    assert refused.status_code == 409
    assert refused.json()["code"] == "payment_required"
    assert refused.json()["details"]["amount"] == 50_000
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.DRAFT
    assert dossier.code is None
    due = api.get(f"/api/v1/payments/dossiers/{dossier.pk}/due").json()
    assert (due["source"], due["amount"], due["status"]) == ("submission", 50_000, "open")
    assert due["lines"] == [{"kind": "fee", "label": dossier.procedure.name, "amount": 50_000}]

    configure(fake_gateway, drop_callbacks=True)
    payment = api.post(f"/api/v1/payments/dossiers/{dossier.pk}/checkout", {}).json()
    assert post_ipn(pay_at_gateway(fake_gateway, payment["checkout_url"])).json()["RspCode"] == "00"
    assert Payment.objects.get(pk=payment["id"]).receipt_number
    assert PaymentRequest.objects.get(dossier=dossier).status == "paid"
    assert not DossierEvent.objects.filter(dossier=dossier).exists()  # still a draft

    submitted = api.post(f"/api/v1/dossiers/{dossier.pk}/submit")
    assert submitted.status_code == 200, submitted
    assert submitted.json()["status"] == Dossier.Status.NEW
    assert api.get(f"/api/v1/payments/{payment['id']}/receipt").status_code == 200


@pytest.mark.parametrize(
    "procedure",
    [
        {"fee_timing": Procedure.FeeTiming.AFTER},
        {"service_level": Procedure.ServiceLevel.PARTIAL},
        {"fee_amount": 0},
    ],
)
def test_no_wait_when_the_catalogue_says_the_fee_comes_later_or_not_at_all(procedure) -> None:
    api, dossier = draft(**procedure)
    assert api.get(f"/api/v1/payments/dossiers/{dossier.pk}/due").status_code == 404
    response = api.post(f"/api/v1/dossiers/{dossier.pk}/submit")
    assert response.status_code == 200, response


def test_the_gate_can_be_switched_off(settings) -> None:
    settings.SUBMISSION_CHECKS = []
    api, dossier = draft()
    assert api.post(f"/api/v1/dossiers/{dossier.pk}/submit").status_code == 200
