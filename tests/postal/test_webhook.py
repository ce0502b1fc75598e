"""Carrier webhook: signature, freshness, replay, out-of-order, events in the timeline."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dossiers.models import DossierEvent
from fakes.carrier import FakeCarrier
from postal.models import CarrierMessage, DeliveryBooking
from tests.postal.conftest import WEBHOOK_SECRET, Citizen, post_webhook, run_postal_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def booked(citizen: Citizen) -> DeliveryBooking:
    """A booking the carrier accepted (waybill recorded)."""
    booking_id = citizen.book().json()["id"]
    DeliveryBooking.objects.filter(pk=booking_id).update(status="booked", waybill="EB000000042VN")
    return DeliveryBooking.objects.get(pk=booking_id)


def message(booking: DeliveryBooking, status: str, n: int, **extra: Any) -> dict[str, Any]:
    data = {
        "message_id": f"msg-{n}",
        "order_number": booking.order_number,
        "waybill": booking.waybill,
        "status": status,
        "occurred_at": f"2026-11-24T0{n}:00:00+07:00",
        "location": "Bưu cục Hoàn Kiếm",
    }
    data.update(extra)
    return data


def delivery_events(booking: DeliveryBooking) -> list[str]:
    return list(
        DossierEvent.objects.filter(dossier_id=booking.dossier_id)
        .order_by("seq")
        .values_list("type", flat=True)
    )


def test_signed_status_updates_booking_and_logs_a_dossier_event(booked: DeliveryBooking) -> None:
    response = post_webhook(message(booked, "picked_up", 1))
    assert response.status_code == 200
    assert response.json() == {"message_id": "msg-1", "outcome": "applied"}
    booked.refresh_from_db()
    assert booked.status == "picked_up"
    event = DossierEvent.objects.get(dossier_id=booked.dossier_id, type="delivery.picked_up")
    assert (event.actor_type, event.actor_label) == ("carrier", "vnpost")
    assert event.data["booking_id"] == booked.pk
    assert event.data["waybill"] == "EB000000042VN"
    assert event.data["status"] == "picked_up"
    assert event.data["location"] == "Bưu cục Hoàn Kiếm"
    assert event.data["occurred_at"] == "2026-11-23T18:00:00.000Z"


def test_full_journey_reaches_the_timeline_in_order(booked: DeliveryBooking, citizen) -> None:
    for n, status in enumerate(
        ["picked_up", "in_transit", "out_for_delivery", "failed_attempt", "out_for_delivery"], 1
    ):
        assert post_webhook(message(booked, status, n)).json()["outcome"] == "applied"
    assert post_webhook(message(booked, "delivered", 6)).json()["outcome"] == "applied"
    assert delivery_events(booked) == [
        "delivery.booked",
        "delivery.picked_up",
        "delivery.in_transit",
        "delivery.out_for_delivery",
        "delivery.failed_attempt",
        "delivery.out_for_delivery",
        "delivery.delivered",
    ]
    seqs = list(
        DossierEvent.objects.filter(dossier_id=booked.dossier_id)
        .order_by("id")
        .values_list("seq", flat=True)
    )
    assert seqs == [1, 2, 3, 4, 5, 6, 7]
    shown = citizen.api.get(f"/api/v1/postal/bookings/{booked.pk}").json()
    assert shown["status"] == "delivered"
    assert [u["status"] for u in shown["updates"]] == [
        "picked_up",
        "in_transit",
        "out_for_delivery",
        "failed_attempt",
        "out_for_delivery",
        "delivered",
    ]


def test_bad_signature_is_401_and_changes_nothing(booked: DeliveryBooking) -> None:
    response = post_webhook(message(booked, "delivered", 1), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert CarrierMessage.objects.count() == 0
    assert DeliveryBooking.objects.get(pk=booked.pk).status == "booked"
    assert delivery_events(booked) == ["delivery.booked"]


def test_body_changed_after_signing_is_401(booked: DeliveryBooking) -> None:
    import json

    from postal.webhooks import sign

    ts = str(int(time.time()))
    signed = json.dumps(message(booked, "picked_up", 1)).encode()
    tampered = json.dumps(message(booked, "delivered", 1)).encode()
    response = post_webhook(tampered, timestamp=int(ts), signature=sign(WEBHOOK_SECRET, ts, signed))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


def test_missing_signature_is_401(booked: DeliveryBooking) -> None:
    response = post_webhook(message(booked, "picked_up", 1), signature="")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_signature")


def test_unconfigured_secret_refuses_everything(booked: DeliveryBooking, settings) -> None:
    settings.POSTAL_WEBHOOK_SECRETS = {"vnpost": ""}
    response = post_webhook(message(booked, "picked_up", 1), secret="")
    assert (response.status_code, response.json()["code"]) == (401, "invalid_signature")


def test_timestamp_window_boundary(booked: DeliveryBooking, settings) -> None:
    settings.POSTAL_WEBHOOK_TOLERANCE_SECONDS = 300
    now = int(time.time())
    stale = post_webhook(message(booked, "picked_up", 1), timestamp=now - 400)
    assert (stale.status_code, stale.json()["code"]) == (401, "stale_timestamp")
    future = post_webhook(message(booked, "picked_up", 2), timestamp=now + 400)
    assert (future.status_code, future.json()["code"]) == (401, "stale_timestamp")
    fresh = post_webhook(message(booked, "picked_up", 3), timestamp=now - 250)
    assert fresh.status_code == 200
    assert CarrierMessage.objects.count() == 1


def test_replayed_message_is_harmless(booked: DeliveryBooking) -> None:
    first = post_webhook(message(booked, "picked_up", 1))
    second = post_webhook(message(booked, "picked_up", 1))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"message_id": "msg-1", "outcome": "applied"}
    assert CarrierMessage.objects.count() == 1
    assert delivery_events(booked) == ["delivery.booked", "delivery.picked_up"]


def test_out_of_order_status_never_moves_back(booked: DeliveryBooking) -> None:
    assert post_webhook(message(booked, "delivered", 5)).json()["outcome"] == "applied"
    late = post_webhook(message(booked, "in_transit", 2))
    assert late.status_code == 200
    assert late.json()["outcome"] == "stale"
    booked.refresh_from_db()
    assert booked.status == "delivered"
    assert delivery_events(booked) == ["delivery.booked", "delivery.delivered"]
    assert CarrierMessage.objects.get(message_id="msg-2").outcome == "stale"


def test_late_picked_up_after_in_transit_is_stale(booked: DeliveryBooking) -> None:
    post_webhook(message(booked, "in_transit", 2))
    assert post_webhook(message(booked, "picked_up", 1)).json()["outcome"] == "stale"
    assert DeliveryBooking.objects.get(pk=booked.pk).status == "in_transit"


def test_older_attempt_report_does_not_override_a_newer_one(booked: DeliveryBooking) -> None:
    post_webhook(message(booked, "out_for_delivery", 3))
    post_webhook(message(booked, "failed_attempt", 5))
    # The "out for delivery" of 04:00 arrives after the failure of 05:00.
    assert post_webhook(message(booked, "out_for_delivery", 4)).json()["outcome"] == "stale"
    assert DeliveryBooking.objects.get(pk=booked.pk).status == "failed_attempt"


def test_returned_is_final(booked: DeliveryBooking) -> None:
    post_webhook(message(booked, "failed_attempt", 3))
    assert post_webhook(message(booked, "returned", 5)).json()["outcome"] == "applied"
    assert post_webhook(message(booked, "out_for_delivery", 6)).json()["outcome"] == "stale"
    assert DeliveryBooking.objects.get(pk=booked.pk).status == "returned"
    assert delivery_events(booked)[-1] == "delivery.returned"


def test_status_for_a_cancelled_booking_is_stale(booked: DeliveryBooking, citizen) -> None:
    citizen.api.post(f"/api/v1/postal/bookings/{booked.pk}/cancel")
    assert post_webhook(message(booked, "picked_up", 1)).json()["outcome"] == "stale"
    assert DeliveryBooking.objects.get(pk=booked.pk).status == "cancelled"


def test_booking_found_by_waybill_alone(booked: DeliveryBooking) -> None:
    response = post_webhook(message(booked, "picked_up", 1, order_number=""))
    assert response.json()["outcome"] == "applied"


def test_unknown_order_is_acknowledged_and_kept(booked: DeliveryBooking) -> None:
    response = post_webhook(
        message(booked, "picked_up", 1, order_number="X-1", waybill="EB000000999VN")
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_order"
    assert CarrierMessage.objects.get().booking_id is None
    assert delivery_events(booked) == ["delivery.booked"]


def test_unknown_carrier_is_404(booked: DeliveryBooking) -> None:
    response = post_webhook(message(booked, "picked_up", 1), carrier="dhl")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "teleported"}, "status"),
        ({"occurred_at": "2026-11-24T01:00:00"}, "occurred_at"),  # no time zone
        ({"occurred_at": "9999-12-31T23:59:59-12:00"}, "occurred_at"),  # beyond 9999 in UTC
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at"),  # before year 1
        ({"message_id": ""}, "message_id"),
    ],
)
def test_malformed_message_is_422(booked: DeliveryBooking, change: dict, field: str) -> None:
    response = post_webhook({**message(booked, "picked_up", 1), **change})
    assert response.status_code == 422
    assert [(d["field"], d["location"]) for d in response.json()["details"]] == [(field, "body")]
    assert CarrierMessage.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_pickup_booking_journey_end_to_end(fake_carrier: FakeCarrier) -> None:
    from dossiers.models import Dossier

    citizen = Citizen(channel=Dossier.Channel.POSTAL, status=Dossier.Status.NEW)
    booking_id = citizen.book("pickup").json()["id"]
    run_postal_jobs()
    booking = DeliveryBooking.objects.get(pk=booking_id)
    for n, status in enumerate(["picked_up", "in_transit", "delivered"], 1):
        assert post_webhook(message(booking, status, n)).status_code == 200
    assert delivery_events(booking) == [
        "delivery.booked",
        "delivery.picked_up",
        "delivery.in_transit",
        "delivery.delivered",
    ]


# --- Refusals in the API's error shape and the request's language ---------------------------


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        (
            "vi",
            {
                "": "Một số trường không hợp lệ.",
                "status": "Giá trị không nằm trong danh sách cho phép.",
                "message_id": "Phải có ít nhất 1 ký tự.",
                "occurred_at": "Phải có múi giờ.",
            },
        ),
        (
            "en",
            {
                "": "Some fields are not valid.",
                "status": "Not one of the allowed values.",
                "message_id": "Must be at least 1 characters.",
                "occurred_at": "Must include a time zone.",
            },
        ),
    ],
)
def test_field_errors_are_coded_and_in_the_requests_language(
    booked: DeliveryBooking, language: str, texts: dict[str, str]
) -> None:
    """The carrier gets what every client of the API gets (README.md, Errors), not
    pydantic's English."""
    body = message(booked, "teleported", 1, message_id="", occurred_at="2026-11-24T01:00:00")
    response = post_webhook(body, language=language)
    assert response.status_code == 422
    assert response.json() == {
        "code": "validation_error",
        "message": texts[""],
        "details": [
            {
                "field": "message_id",
                "location": "body",
                "code": "string_too_short",
                "message": texts["message_id"],
            },
            {
                "field": "status",
                "location": "body",
                "code": "literal_error",
                "message": texts["status"],
            },
            {
                "field": "occurred_at",
                "location": "body",
                "code": "timezone_aware",
                "message": texts["occurred_at"],
            },
        ],
    }
    assert CarrierMessage.objects.count() == 0


@pytest.mark.parametrize(
    ("language", "text"),
    [("vi", "Ngày giờ nằm ngoài khoảng cho phép."), ("en", "This date is out of range.")],
)
def test_a_moment_out_of_range_is_explained_in_the_requests_language(
    booked: DeliveryBooking, language: str, text: str
) -> None:
    body = message(booked, "picked_up", 1, occurred_at="9999-12-31T23:59:59-12:00")
    response = post_webhook(body, language=language)
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert (detail["field"], detail["code"], detail["message"]) == (
        "occurred_at",
        "value_error",
        text,
    )


def test_a_body_that_is_not_json_is_400_malformed_json(booked: DeliveryBooking) -> None:
    response = post_webhook(b'{"message_id": "msg-1",', language="vi")
    assert response.status_code == 400
    assert response.json() == {
        "code": "malformed_json",
        "message": "Nội dung yêu cầu không phải JSON hợp lệ.",
        "details": None,
    }
    assert CarrierMessage.objects.count() == 0


def test_a_nul_character_is_refused_before_anything_is_stored(booked: DeliveryBooking) -> None:
    body = json.dumps(message(booked, "picked_up", 1, location="Bưu cục\x00")).encode()
    response = post_webhook(body, language="en")
    assert response.status_code == 422
    assert response.json()["details"] == [
        {
            "field": "location",
            "location": "body",
            "code": "nul_character",
            "message": "Must not contain the NUL character.",
        }
    ]
    assert CarrierMessage.objects.count() == 0


def test_a_malformed_body_without_a_valid_signature_is_401(booked: DeliveryBooking) -> None:
    """The signature is checked before the body is read: an unsigned caller learns
    nothing about the format."""
    response = post_webhook(b"not json", secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"


def test_the_guides_signing_recipe_is_the_one_the_server_checks(booked: DeliveryBooking) -> None:
    """postal.md's header line, followed to the letter (not postal.webhooks.sign): a
    carrier that implements it from the guide gets in."""
    import hashlib
    import hmac
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "mobile_api_docs" / "postal.md").read_text()
    [(prefix, signed)] = re.findall(
        r'`X-Carrier-Signature: (\w+=)<hex HMAC-SHA256 of "([^"]+)"\s+with the carrier\'s secret>`',
        guide,
    )
    raw = json.dumps(message(booked, "picked_up", 1)).encode()
    timestamp = str(int(time.time()))
    text = signed.replace("{timestamp}", timestamp).encode()
    text = text.replace(b"{raw body}", raw)
    digest = hmac.new(WEBHOOK_SECRET.encode(), text, hashlib.sha256).hexdigest()

    response = post_webhook(raw, timestamp=int(timestamp), signature=prefix + digest)

    assert response.status_code == 200, response
    assert response.json()["outcome"] == "applied"
