"""The citizen's whole journey against the real stack, as separate processes.

The web server and the worker are the Procfile's commands; PostgreSQL, Redis,
FCM, the SMS gateway and the carrier are real or loopback fakes speaking the
real wire formats (see stack.py). The test talks HTTP and WebSocket only, as
the mobile app, the agency's system and the carrier do.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fakes.harness import wait_until
from tests.dossiers.attachments.samples import GPS_IFD, heic_bytes, jpeg_bytes
from tests.e2e.clients import (
    AGENCY_CODE,
    BA_DINH,
    PROCEDURE_CODE,
    Agency,
    Carrier,
    EventStream,
    pay_at_gateway,
    pay_submission_fee,
    pushes_to,
    sign_up,
    wait_for_pushes,
    wait_paid,
)
from tests.e2e.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

PHONE = "+84987650001"
FCM_TOKEN = "fcm-e2e-journey-" + "x" * 40
DOCUMENT = "divorce-paper"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, e2e_template: str) -> Iterator[Stack]:
    with running_stack(Path(tmp_path_factory.mktemp("stack")), template=e2e_template) as running:
        yield running


def gps_of(image_bytes: bytes) -> dict[int, Any]:
    with Image.open(io.BytesIO(image_bytes)) as image:
        return dict(image.getexif().get_ifd(GPS_IFD))


def wait_for_push_of(stack: Stack, event_type: str) -> None:
    """The journey's next step comes once this event's push is out, at a person's
    pace: of two events milliseconds apart, only the later one's push may be sent
    (push.md, "Order of a dossier's pushes": the earlier one is SUPERSEDED once the
    later one is due), and the end of the journey checks every event's push, in the
    events' order."""
    wait_until(
        lambda: any(p["data"]["type"] == event_type for p in pushes_to(stack, FCM_TOKEN)),
        timeout=30,
        what=f"the push of {event_type}",
    )


def test_citizen_journey_from_registration_to_rating(stack: Stack) -> None:
    app = sign_up(stack, PHONE)
    device = app.post(
        "/api/v1/devices",
        {"token": FCM_TOKEN, "platform": "android", "installation_id": app.device_id},
    )
    assert device.status_code == 201, device.text
    stream = EventStream(app)
    stream.open()
    agency = Agency(stack, AGENCY_CODE)
    carrier = Carrier(stack)

    # Find the procedure in the catalogue, fill a draft, attach two phone photos.
    found = app.get("/api/v1/catalogue/procedures", params={"q": "tình trạng hôn nhân"}).json()
    procedure = next(p for p in found["items"] if p["code"] == PROCEDURE_CODE)
    draft = app.post(
        "/api/v1/dossiers",
        {
            "procedure_id": procedure["id"],
            "form": {
                "applicant_name": "Trần Văn Minh",
                "applicant_citizen_id": "001090012345",
                "applicant_phone": "0987650001",
                "birth_date": "1990-03-12",
                "residence_commune": BA_DINH,
                "marital_status": "single",
                "purpose": "marriage",
                "pledge": True,
            },
        },
        headers={"Idempotency-Key": "draft-1"},
    )
    assert draft.status_code == 201, draft.text
    dossier_id = draft.json()["id"]
    uploads = {}
    for name, content, kind in [
        ("IMG_0001.HEIC", heic_bytes(), "image/heic"),
        ("IMG_0002.jpg", jpeg_bytes(gps=True), "image/jpeg"),
    ]:
        if name.endswith(".jpg"):
            assert gps_of(content)  # the phone's photo does carry a location
        response = app.post(
            f"/api/v1/dossiers/{dossier_id}/attachments",
            files={"file": (name, content, kind)},
            data={"document_code": DOCUMENT},
            headers={"Idempotency-Key": f"upload-{name}"},
        )
        assert response.status_code == 201, response.text
        uploads[name] = response.json()
    # The fee of this wholly-online procedure is paid when submitting.
    early = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert early.status_code == 409, early.text
    assert early.json()["code"] == "payment_required"
    fee = pay_submission_fee(app, dossier_id)
    assert fee["amount"] == 15_000
    submitted = app.post(f"/api/v1/dossiers/{dossier_id}/submit")
    assert submitted.status_code == 200, submitted.text
    code = submitted.json()["code"]
    assert code.startswith(f"{AGENCY_CODE}-")
    assert submitted.json()["status"] == 1

    # The stored photos: re-encoded JPEGs without any location.
    for attachment in uploads.values():
        stored = app.get(f"/api/v1/dossiers/{dossier_id}/attachments/{attachment['id']}/download")
        assert stored.status_code == 200
        assert stored.headers["content-type"] == "image/jpeg"
        assert gps_of(stored.content) == {}

    # The agency receives it.
    accepted = agency.post(f"/api/v1/agency/dossiers/{code}/accept", {"receipt_number": "BD-1"})
    assert accepted.status_code == 200, accepted.text
    assert stream.wait_for("dossier.accepted")["dossier_id"] == dossier_id
    [push] = wait_for_pushes(stack, FCM_TOKEN, 1)
    assert push["data"]["type"] == "dossier.accepted"
    assert push["data"]["dossier_id"] == dossier_id
    assert push["data"]["dossier_code"] == code
    assert stream.wait_for("dossier.accepted")["id"] == int(push["data"]["event_id"])
    assert push["android"]["collapse_key"] == f"dossier-{dossier_id.replace('-', '')}"
    assert push["android"]["notification"]["tag"] == push["android"]["collapse_key"]
    assert push["apns"]["headers"]["apns-collapse-id"] == push["android"]["collapse_key"]

    # The agency asks for the fees (phí, lệ phí, postage); the citizen pays in the app,
    # the gateway's callback settles it and the dossier goes back to processing by itself.
    lines = [
        {"kind": "fee", "label": "Phí thẩm định", "amount": 50_000},
        {"kind": "charge", "label": "Lệ phí cấp giấy", "amount": 20_000},
        {"kind": "postage", "label": "Cước trả kết quả qua bưu chính", "amount": 25_000},
    ]
    requested = agency.post(
        f"/api/v1/agency/dossiers/{code}/request-payment",
        {"amount": 95_000, "description": "Phí, lệ phí", "lines": lines},
    )
    assert requested.status_code == 200, requested.text
    stream.wait_for("dossier.payment_requested")
    wait_for_push_of(stack, "dossier.payment_requested")
    due = app.get(f"/api/v1/payments/dossiers/{dossier_id}/due").json()
    assert (due["source"], due["amount"], due["lines"]) == ("agency", 95_000, lines)
    payment = pay_at_gateway(app, dossier_id)
    assert payment["deep_link"].startswith(f"dichvucong://payments/{payment['id']}?status=")
    received = stream.wait_for("dossier.payment_received")
    wait_for_push_of(stack, "dossier.payment_received")
    assert received["dossier_id"] == dossier_id
    paid = wait_paid(app, payment["id"])
    assert paid["amount"] == 95_000
    assert app.get(f"/api/v1/dossiers/{dossier_id}").json()["status"] == 4
    receipt = app.get(paid["receipt_url"])
    assert receipt.status_code == 200, receipt.text
    assert receipt.headers["content-type"] == "application/pdf"
    assert receipt.content.startswith(b"%PDF-")
    seen_by_agency = agency.get(f"/api/v1/agency/dossiers/{code}/payments").json()["items"]
    assert [(p["id"], p["status"], p["amount"], p["counted"]) for p in seen_by_agency] == [
        (fee["id"], "paid", 15_000, True),
        (payment["id"], "paid", 95_000, True),
    ]
    assert agency.get(f"/api/v1/agency/payments/{payment['id']}/receipt").status_code == 200
    callbacks = [c for c in stack.payments.state.callbacks if c.get("code")]
    assert {c["code"] for c in callbacks} <= {"00", "02"}

    # A supplement is asked for and given.
    asked = agency.post(
        f"/api/v1/agency/dossiers/{code}/request-supplement",
        {"documents": [{"code": DOCUMENT, "note": "Ảnh bị mờ"}], "message": "Chụp lại bản gốc"},
    )
    assert asked.status_code == 200, asked.text
    stream.wait_for("dossier.supplement_requested")
    wait_for_push_of(stack, "dossier.supplement_requested")
    clearer = app.post(
        f"/api/v1/dossiers/{dossier_id}/attachments",
        files={"file": ("IMG_0003.jpg", jpeg_bytes((640, 480), gps=True), "image/jpeg")},
        data={"document_code": DOCUMENT},
        headers={"Idempotency-Key": "upload-3"},
    )
    assert clearer.status_code == 201, clearer.text
    supplemented = app.post(f"/api/v1/dossiers/{dossier_id}/supplement", {"message": "Đã chụp lại"})
    assert supplemented.status_code == 200, supplemented.text
    stream.wait_for("dossier.supplement_submitted")

    # The result is ready; the citizen has it posted home.
    completed = agency.post(
        f"/api/v1/agency/dossiers/{code}/complete", {"message": "Đã chứng thực"}, files={}
    )
    assert completed.status_code == 200, completed.text
    stream.wait_for("dossier.completed")
    wait_for_push_of(stack, "dossier.completed")
    address = app.post(
        "/api/v1/postal/addresses",
        {
            "recipient_name": "Trần Văn Minh",
            "phone": "0987650001",
            "street": "Số 5 phố Đội Cấn",
            "commune_code": BA_DINH,
        },
        headers={"Idempotency-Key": "address-1"},
    )
    assert address.status_code == 201, address.text
    booked = app.post(
        f"/api/v1/postal/dossiers/{dossier_id}/bookings",
        {"address_id": address.json()["id"], "direction": "result"},
        headers={"Idempotency-Key": "booking-1"},
    )
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["id"]
    order = wait_until(
        lambda: next(iter(stack.carrier.orders.values()), None), timeout=20, what="carrier order"
    )
    assert order["payload"]["reference"] == code
    booking = wait_until(
        lambda: (b := app.get(f"/api/v1/postal/bookings/{booking_id}").json())["waybill"] and b,
        timeout=20,
        what="the waybill on the booking",
    )
    assert booking["waybill"] == order["waybill"]
    for status in ("picked_up", "delivered"):
        reported = carrier.report(order["waybill"], order["order_number"], status)
        assert reported.status_code == 200, reported.text
        assert reported.json()["outcome"] == "applied"
        stream.wait_for(f"delivery.{status}")
        wait_for_push_of(stack, f"delivery.{status}")
    handed = agency.post(f"/api/v1/agency/dossiers/{code}/hand-over", {"method": "post"})
    assert handed.status_code == 200, handed.text
    stream.wait_for("dossier.handed_over")
    rated = app.post(f"/api/v1/dossiers/{dossier_id}/rating", {"satisfaction": 1})
    assert rated.status_code == 200, rated.text
    stream.wait_for("dossier.rated")

    # The socket saw every event of the dossier, in the log's order, each once.
    timeline = app.get(f"/api/v1/dossiers/{dossier_id}/timeline")
    assert timeline.status_code == 200, timeline.text
    steps = timeline.json()["steps"]
    logged = [(step["event_id"], step["event_type"]) for step in steps]
    streamed = [(e["id"], e["event_type"]) for e in stream.events()]
    assert streamed == logged
    assert [e["text"] for e in stream.events()] == [step["text"] for step in steps]
    assert {e["dossier_id"] for e in stream.events()} == {dossier_id}
    assert [t for _, t in logged] == [
        "dossier.submitted",
        "dossier.accepted",
        "dossier.payment_requested",
        "dossier.payment_received",
        "dossier.supplement_requested",
        "dossier.supplement_submitted",
        "dossier.completed",
        "delivery.booked",
        "delivery.picked_up",
        "delivery.delivered",
        "dossier.handed_over",
        "dossier.rated",
    ]

    # The inbox has one entry per event; the pushes are the others' events, each once.
    # (The worker writes inbox entries after the event commits: wait for the last one.)
    inbox = wait_until(
        lambda: (
            len(items := app.get("/api/v1/notifications", params={"limit": 50}).json()["items"])
            >= len(logged)
            and items
        ),
        timeout=20,
        what="every inbox entry",
    )
    assert sorted((n["event_id"], n["type"]) for n in inbox) == sorted(logged)
    by_event = {n["event_id"]: n for n in inbox}
    unread_types = [t for i, t in logged if by_event[i]["read_at"] is None]
    pushes = wait_for_pushes(stack, FCM_TOKEN, len(unread_types))
    assert [p["data"]["type"] for p in pushes] == unread_types
    assert sorted(p["data"]["event_id"] for p in pushes) == sorted(
        str(i) for i, t in logged if t in unread_types
    )
    for push in pushes:
        entry = by_event[int(push["data"]["event_id"])]
        assert push["data"]["notification_id"] == str(entry["id"])
        assert push["notification"] == {"title": entry["title"], "body": entry["body"]}
        assert push["data"]["dossier_code"] == code
        assert push["android"]["collapse_key"] == f"dossier-{dossier_id.replace('-', '')}"
    assert len(stack.fcm.attempts_for(FCM_TOKEN)) == len(unread_types)
    stream.close()
    for client in (app, agency, carrier):
        client.close()

    # The server's logs (uvicorn's request lines included) never show a ticket, a token
    # or the citizen's number, yet they do show the socket's request.
    web_log = (stack.workdir / "web.log").read_text(encoding="utf-8")
    assert "/ws/v1/events?ticket=[redacted]" in web_log
    for secret in [*stream.tickets, app.token, PHONE, PHONE.removeprefix("+84")]:
        assert secret not in web_log
