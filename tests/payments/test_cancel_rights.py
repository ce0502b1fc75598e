"""Who may cancel a pending payment of an organisation's dossier.

Any member may pay (checkout hands them the payment already waiting), but only whoever
started the payment, the dossier's applicant and the organisation's owners and admins
may cancel it: the payer may be on the bank's page. The organisation's other members get
403 `not_payer`, and the payment stays pending.
"""

from __future__ import annotations

from typing import Any

import pytest

from auth.models import Membership
from dossiers.models import Dossier, DossierEvent
from payments.models import Payment
from tests.conftest import api_as
from tests.factories import make_team
from tests.payments.conftest import Citizen

NOT_PAYER = {
    "vi": "Chỉ người tạo giao dịch này, người nộp hồ sơ, chủ sở hữu và quản trị viên của tổ "
    "chức mới được hủy giao dịch.",
    "en": "Only whoever started this payment, the dossier's applicant and the organisation's "
    "owners and administrators can cancel it.",
}


class Team:
    """The agency asked to pay on an organisation's dossier; `payer`, a plain member,
    started paying."""

    def __init__(self) -> None:
        self.citizen = Citizen()
        organisation, self.people = make_team("owner", "admin", "payer", "member")
        Dossier.objects.filter(pk=self.citizen.dossier.pk).update(organisation=organisation)
        Membership.objects.create(organisation=organisation, user=self.citizen.user)
        self.people["applicant"] = self.citizen.user
        started = api_as(self.people["payer"]).post(
            f"/api/v1/payments/dossiers/{self.citizen.dossier.pk}/checkout", {}
        )
        assert started.status_code == 201, started
        self.payment_id = started.json()["id"]

    def state(self) -> tuple[Any, ...]:
        payment = Payment.objects.get(pk=self.payment_id)
        return (
            payment.status,
            payment.updated_at,
            Payment.objects.count(),
            DossierEvent.objects.filter(dossier_id=self.citizen.dossier.pk).count(),
        )


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_a_plain_member_cannot_cancel_a_colleagues_payment(fake_gateway, language: str) -> None:
    team = Team()
    before = team.state()
    response = api_as(team.people["member"], language).post(
        f"/api/v1/payments/{team.payment_id}/cancel"
    )
    assert response.status_code == 403
    assert response.json() == {"code": "not_payer", "message": NOT_PAYER[language], "details": None}
    assert team.state() == before
    assert Payment.objects.get(pk=team.payment_id).status == "pending"


@pytest.mark.django_db
def test_a_plain_member_still_gets_the_waiting_payment_to_pay_it(fake_gateway) -> None:
    """Paying stays open to every member (mobile_api_docs/payments.md)."""
    team = Team()
    response = api_as(team.people["member"]).post(
        f"/api/v1/payments/dossiers/{team.citizen.dossier.pk}/checkout", {}
    )
    assert (response.status_code, response.json()["id"]) == (200, team.payment_id)
    assert response.json()["checkout_url"]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["payer", "applicant", "admin", "owner"])
def test_the_payer_the_applicant_and_managers_may_cancel(fake_gateway, who: str) -> None:
    team = Team()
    response = api_as(team.people[who]).post(f"/api/v1/payments/{team.payment_id}/cancel")
    assert response.status_code == 200, response
    assert response.json()["status"] == "cancelled"
    assert Payment.objects.get(pk=team.payment_id).status == "cancelled"
