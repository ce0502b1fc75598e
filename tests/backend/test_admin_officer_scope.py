"""Agency officers see, in every admin, only what belongs to the dossiers they handle.

The dossier admin hides other agencies' dossiers from an officer; the admins of the
apps above it (bookings, carrier messages, payments, notifications) scope their rows
through those same dossiers, saved addresses (a citizen's address book) are for
superusers only, and bookings change only through `postal.actions`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dossiers.models import AgencyOfficer, Dossier
from notifications.models import Delivery, Device, Notification, Preference
from payments.models import PaymentAnomaly
from postal import actions as postal_actions
from postal.models import CarrierMessage, DeliveryBooking
from tests.conftest import make_user
from tests.factories import make_agency, make_dossier, make_paid_payment, make_procedure
from tests.postal.conftest import make_address

pytestmark = pytest.mark.django_db

SCOPED = [
    ("postal", "deliverybooking"),
    ("postal", "carriermessage"),
    ("postal", "savedaddress"),
    ("payments", "paymentrequest"),
    ("payments", "payment"),
    ("payments", "paymentanomaly"),
    ("notifications", "notification"),
    ("notifications", "delivery"),
    ("notifications", "device"),
    ("notifications", "preference"),
]


def agency_world(name: str, phone: str, street: str, order_ref: str) -> dict[str, Any]:
    """One agency's accepted dossier with a booking, a carrier message, a paid payment
    with an anomaly, and a notification pushed to the citizen's device."""
    agency = make_agency()
    citizen = make_user(full_name=name)
    dossier = make_dossier(citizen, make_procedure(agency), status=Dossier.Status.ACCEPTED)
    address = make_address(citizen, recipient_name=name, phone=phone, street=street)
    booking = postal_actions.book_delivery(
        citizen, dossier.id, direction="result", address_id=address.id
    )
    message = CarrierMessage.objects.create(
        carrier=booking.carrier,
        message_id=f"msg-{order_ref}",
        booking=booking,
        status="picked_up",
        occurred_at=timezone.now(),
        payload={"phone": phone},
        outcome=CarrierMessage.Outcome.APPLIED,
    )
    payment = make_paid_payment(citizen, dossier, order_ref)
    anomaly = PaymentAnomaly.objects.create(
        payment=payment,
        gateway="vnpay",
        order_ref=order_ref,
        kind=PaymentAnomaly.Kind.AMOUNT_MISMATCH,
        source="report",
    )
    device = Device.objects.create(
        user=citizen,
        token=f"tok-{order_ref}",
        platform=Device.Platform.ANDROID,
        installation_id=f"install-{order_ref}",
        last_seen_at=timezone.now(),
    )
    notification = Notification.objects.create(
        user=citizen,
        dossier=dossier,
        type="dossier.accepted",
        category="status_changes",
        title="Hồ sơ đã được tiếp nhận",
        body=f"Hồ sơ {dossier.code} đã được tiếp nhận",
    )
    delivery = Delivery.objects.create(notification=notification, device=device)
    preference = Preference.objects.create(user=citizen)
    return {
        "agency": agency,
        "citizen": citizen,
        "dossier": dossier,
        "rows": {
            "deliverybooking": booking,
            "carriermessage": message,
            "savedaddress": address,
            "paymentrequest": payment.request,
            "payment": payment,
            "paymentanomaly": anomaly,
            "notification": notification,
            "delivery": delivery,
            "device": device,
            "preference": preference,
        },
    }


@pytest.fixture
def worlds() -> tuple[dict[str, Any], dict[str, Any]]:
    own = agency_world("Nguyễn Văn Mình", "+84987111000", "Ngõ 1 nhà 1", "OWNAGENCY1")
    other = agency_world("Trần Thị Khác", "+84987222333", "Ngõ 9 nhà 3", "OTHERAGENCY")
    return own, other


def officer_client(world: dict[str, Any], *codenames: str) -> Client:
    officer = make_user(password=None, is_staff=True, full_name="Cán bộ Một Cơ Quan")
    officer.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[f"view_{model}" for _, model in SCOPED] + ["view_dossier", *codenames]
        )
    )
    AgencyOfficer.objects.create(agency=world["agency"], user=officer)
    client = Client()
    client.force_login(officer)
    return client


@pytest.mark.parametrize(("app_label", "model"), SCOPED)
def test_an_officer_sees_only_the_rows_of_their_agencys_dossiers(
    worlds: tuple[dict[str, Any], dict[str, Any]], app_label: str, model: str
) -> None:
    own, other = worlds
    client = officer_client(own)
    other_dossier = reverse("admin:dossiers_dossier_change", args=[other["dossier"].pk])
    assert client.get(other_dossier).status_code == 302
    listing = client.get(reverse(f"admin:{app_label}_{model}_changelist"))
    assert listing.status_code == 200
    shown = {str(row.pk) for row in listing.context["cl"].result_list}
    foreign = other["rows"][model]
    assert str(foreign.pk) not in shown
    page = client.get(reverse(f"admin:{app_label}_{model}_change", args=[foreign.pk]))
    assert page.status_code == 302  # "does not exist", back to the list
    if model == "savedaddress":
        assert shown == set(), "a citizen's address book is for superusers only"
    else:
        assert str(own["rows"][model].pk) in shown


def test_an_officer_cannot_find_another_agencys_citizen_by_phone(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    own, _other = worlds
    client = officer_client(own)
    for url in ("admin:postal_savedaddress_changelist", "admin:postal_deliverybooking_changelist"):
        listing = client.get(reverse(url), {"q": "987222333"})
        assert "Trần Thị Khác" not in listing.content.decode(), url
        assert "Ngõ 9 nhà 3" not in listing.content.decode(), url


def test_an_officer_reads_their_own_booking_to_ship_it(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    own, _other = worlds
    booking = own["rows"]["deliverybooking"]
    page = officer_client(own).get(
        reverse("admin:postal_deliverybooking_change", args=[booking.pk])
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "+84987111000" in html
    assert "Ngõ 1 nhà 1" in html


@pytest.mark.parametrize("who", ["officer_with_change", "superuser"])
def test_bookings_are_read_only_in_the_admin(
    worlds: tuple[dict[str, Any], dict[str, Any]], who: str
) -> None:
    own, _other = worlds
    if who == "superuser":
        client = Client()
        client.force_login(make_user(password=None, is_staff=True, is_superuser=True))
    else:
        client = officer_client(
            own, "change_deliverybooking", "add_deliverybooking", "delete_deliverybooking"
        )
    booking: DeliveryBooking = own["rows"]["deliverybooking"]
    before = DeliveryBooking.objects.filter(pk=booking.pk).values().get()
    url = reverse("admin:postal_deliverybooking_change", args=[booking.pk])
    assert 'name="street"' not in client.get(url).content.decode()
    client.post(
        url,
        {
            **{k: v for k, v in before.items() if v is not None},
            "street": "Địa chỉ khác",
            "_save": 1,
        },
    )
    client.post(reverse("admin:postal_deliverybooking_delete", args=[booking.pk]), {"post": "yes"})
    assert client.get(reverse("admin:postal_deliverybooking_add")).status_code == 403
    assert DeliveryBooking.objects.filter(pk=booking.pk).values().get() == before


def test_superusers_see_every_agencys_rows(
    worlds: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    client = Client()
    client.force_login(make_user(password=None, is_staff=True, is_superuser=True))
    for app_label, model in SCOPED:
        listing = client.get(reverse(f"admin:{app_label}_{model}_changelist"))
        shown = {str(row.pk) for row in listing.context["cl"].result_list}
        for world in worlds:
            assert str(world["rows"][model].pk) in shown, model
