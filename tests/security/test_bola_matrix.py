"""BOLA matrix: every signed-in route that names an object, called with another user's ids.

The routes are read from the published OpenAPI document, so a route added later is
walked without touching this file; the only thing to add for it is a valid request
body (BODIES) when it takes one, and the test says so. The attacker is a signed-in
citizen with rows of their own (so a body that names the attacker's own address
is valid and only the victim's object is foreign). Each call must answer 404 (403
`not_support_staff` on the support console, which refuses citizens before reading
anything), change nothing of the victim's, and the victim's own call of the same
route must not be 404 (the ids are real and reachable).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.utils import timezone
from PIL import Image

from auth.models import DeviceSession, Invitation, Membership, User
from documents.models import WalletItem
from documents.wallet import add_item
from dossiers import lifecycle
from dossiers.models import Attachment, Dossier
from notifications.models import Device, Notification
from payments.models import Payment, PaymentRequest
from postal.models import DeliveryBooking, SavedAddress
from tests.accounts.staff import client_for as staff_client_for
from tests.accounts.staff import make_citizen, make_staff
from tests.conftest import ApiClient, make_user, sign_in
from tests.factories import make_dossier, make_organisation, make_procedure
from tests.postal.conftest import make_address

OPENAPI = Path(settings.BASE_DIR) / "mobile_api_docs" / "openapi.json"
# Routes anyone may call (public reads, signed links, signed server-to-server calls):
# their own tests cover them (catalogue, postal divisions, signed links, agency
# signatures, carrier webhooks).
OWN_SECURITY = {"SessionBearer", "SupportSession"}

PHONE_FOR_INVITES = "+84987654000"


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def object_routes() -> list[tuple[str, str, str]]:
    """(method, path, security scheme) of every signed-in route with a path parameter."""
    document = json.loads(OPENAPI.read_text())
    routes = []
    for path, operations in document["paths"].items():
        if "{" not in path:
            continue
        for method, operation in operations.items():
            schemes = {name for entry in operation.get("security", []) for name in entry}
            if schemes & OWN_SECURITY:
                routes.append((method.upper(), path, sorted(schemes)[0]))
    return sorted(routes)


# Which of the victim's dossiers each dossier route is aimed at (its state matters to
# the victim's own call: a draft can be edited, a handed-over one rated).
DOSSIER_FOR = {
    "/rating": "handed_over",
    "/result": "handed_over",
    "/supplement": "supplement",
    "/withdraw": "submitted",
    "/bookings": "accepted",
    "/quote": "accepted",
    "/results": "handed_over",
    "/receipt": "submitted",
    "/lookup-secret": "submitted",
    "/checkout": "payment",
    "/due": "payment",
    "/payments": "payment",
}


def body_for(
    method: str, path: str, world: dict[str, Any], *, caller: str = "attacker"
) -> dict[str, Any] | None:
    """A valid request body (or query) for the route, or None when it takes none.

    Anything else the body names is the caller's own (their saved address).
    """
    own = world[f"{caller}_address"]
    bodies: dict[tuple[str, str], Any] = {
        ("PATCH", "/api/v1/dossiers/{dossier_id}"): {"json": {"form": {"copies": 3}}},
        ("POST", "/api/v1/dossiers/{dossier_id}/attachments"): {
            "data": {
                "file": SimpleUploadedFile("cccd.jpg", _jpeg(), "image/jpeg"),
                "document_code": "doc-1",
            }
        },
        ("POST", "/api/v1/dossiers/{dossier_id}/rating"): {"json": {"satisfaction": 1}},
        ("POST", "/api/v1/dossiers/{dossier_id}/supplement"): {"json": {"message": "Đã bổ sung"}},
        ("POST", "/api/v1/dossiers/{dossier_id}/withdraw"): {"json": {"reason": "Không cần"}},
        ("PATCH", "/api/v1/organisations/{organisation_id}"): {"json": {"name": "Đã đổi"}},
        ("POST", "/api/v1/organisations/{organisation_id}/invitations"): {
            "json": {"phone": PHONE_FOR_INVITES, "role": "member"}
        },
        ("PATCH", "/api/v1/organisations/{organisation_id}/members/{user_id}"): {
            "json": {"role": "admin"}
        },
        ("PUT", "/api/v1/organisations/{organisation_id}/watching"): {"json": {"watching": False}},
        ("PUT", "/api/v1/postal/addresses/{address_id}"): {
            "json": {
                "recipient_name": "Kẻ Lạ",
                "phone": "+84912000999",
                "street": "Số 1",
                "commune_code": own.commune_code,
                "province_code": own.province_code,
            }
        },
        ("PUT", "/api/v1/postal/bookings/{booking_id}/address"): {
            "json": {"address_id": str(own.id)}
        },
        ("POST", "/api/v1/postal/dossiers/{dossier_id}/bookings"): {
            "json": {"direction": "result", "address_id": str(own.id)}
        },
        ("GET", "/api/v1/postal/dossiers/{dossier_id}/quote"): {
            "query": {"address_id": str(own.id)}
        },
        ("POST", "/api/v1/support/resets/{reset_id}/reject"): {"json": {"note": "Không rõ"}},
        ("POST", "/api/v1/dossiers/{dossier_id}/wallet-attachments"): {
            "json": {
                "wallet_item_id": str(world[f"{caller}_wallet_item"].id),
                "document_code": "doc-1",
            }
        },
        ("POST", "/api/v1/payments/dossiers/{dossier_id}/checkout"): {"json": {}},
    }
    return bodies.get((method, path))


def takes_body(method: str, path: str) -> bool:
    document = json.loads(OPENAPI.read_text())
    operation = document["paths"][path][method.lower()]
    required_query = [
        p for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    return "requestBody" in operation or bool(required_query)


def build_world() -> dict[str, Any]:
    victim = make_citizen(phone="+84912340001")
    _session, victim_tokens = sign_in(victim)
    victim_api = ApiClient(token=victim_tokens.access_token)
    procedure = make_procedure()
    organisation = make_organisation(victim)
    colleague = make_user()
    Membership.objects.create(organisation=organisation, user=colleague)
    dossiers = {
        "draft": make_dossier(victim, procedure, organisation=organisation),
        "submitted": make_dossier(victim, procedure, status=Dossier.Status.NEW),
        "accepted": make_dossier(victim, procedure, status=Dossier.Status.ACCEPTED),
        "supplement": make_dossier(victim, procedure, status=Dossier.Status.SUPPLEMENT_REQUESTED),
        "handed_over": make_dossier(victim, procedure, status=Dossier.Status.HANDED_OVER),
        "payment": make_dossier(victim, procedure, status=Dossier.Status.PROCESSING),
    }
    lifecycle.request_payment(
        dossiers["payment"].pk,
        lifecycle.Actor.agency_system("T (ak_test)"),
        amount=50_000,
        description="Lệ phí",
        lines=[{"kind": "charge", "label": "Lệ phí", "amount": 50_000}],
    )
    checkout = victim_api.post(f"/api/v1/payments/dossiers/{dossiers['payment'].id}/checkout", {})
    assert checkout.status_code == 201, checkout.content
    upload = victim_api.post(
        f"/api/v1/dossiers/{dossiers['draft'].id}/attachments",
        data={
            "file": SimpleUploadedFile("cccd.jpg", _jpeg(), "image/jpeg"),
            "document_code": "doc-1",
        },
    )
    assert upload.status_code == 201, upload.content
    address = make_address(victim)
    booking = victim_api.post(
        f"/api/v1/postal/dossiers/{dossiers['accepted'].id}/bookings",
        {"direction": "result", "address_id": str(address.id)},
    )
    assert booking.status_code == 201, booking.content
    device = victim_api.post(
        "/api/v1/devices",
        {
            "token": "victim-fcm-token-" + "x" * 40,
            "platform": "android",
            "installation_id": "victim-install",
        },
    )
    assert device.status_code in (200, 201), device.content
    notification = Notification.objects.create(
        user=victim, type="test", category="announcements", title="t", body="b"
    )
    invitation = Invitation.objects.create(
        organisation=organisation,
        phone=PHONE_FOR_INVITES,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    # An invitation addressed to the victim (their accept/decline routes).
    to_victim = Invitation.objects.create(
        organisation=make_organisation(make_user()),
        phone=victim.phone,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    victim_session = DeviceSession.objects.filter(user=victim, revoked_at=None).first()
    reset_opener = make_staff()
    level2 = make_citizen(level=User.Level.IDENTITY)
    reset = staff_client_for(reset_opener).post(
        "/api/v1/support/resets",
        {
            "user_id": str(level2.id),
            "kind": "lost_authenticator",
            "reason": "Mất điện thoại",
            "evidence": "CCCD checked in person at the counter",
            "ticket_number": "HT-1",
        },
    )
    assert reset.status_code == 201, reset.content

    attacker = make_user(phone="+84912340002")
    make_organisation(attacker)
    attacker_address = make_address(attacker)
    wallet_items = {
        who: add_item(user, upload=io.BytesIO(_jpeg()), size=len(_jpeg()), original_name="cccd.jpg")
        for who, user in (("victim", victim), ("attacker", attacker))
    }
    ids = {
        "attachment_id": upload.json()["id"],
        "organisation_id": str(organisation.id),
        "user_id": str(colleague.id),
        "address_id": str(address.id),
        "booking_id": booking.json()["id"],
        "device_id": device.json()["id"],
        "notification_id": str(notification.id),
        "session_id": str(victim_session.id) if victim_session else "",
        "reset_id": reset.json()["id"],
        "item_id": str(wallet_items["victim"].id),
        "payment_id": checkout.json()["id"],
    }
    return {
        "victim": victim,
        "victim_api": victim_api,
        "support_api": staff_client_for(make_staff()),
        "attacker": attacker,
        "attacker_api": ApiClient(token=sign_in(attacker)[1].access_token, language="en"),
        "attacker_address": attacker_address,
        "victim_address": address,
        "dossiers": dossiers,
        "ids": ids,
        "invitation": invitation,
        "to_victim": to_victim,
        "victim_wallet_item": wallet_items["victim"],
        "attacker_wallet_item": wallet_items["attacker"],
    }


def concrete_path(path: str, world: dict[str, Any]) -> str:
    ids = dict(world["ids"])
    suffix = path.split("{dossier_id}", 1)[-1] if "{dossier_id}" in path else ""
    which = next((v for k, v in DOSSIER_FOR.items() if suffix.startswith(k)), "draft")
    if "/attachments" in suffix:
        which = "draft"
    ids["dossier_id"] = str(world["dossiers"][which].id)
    if path.startswith("/api/v1/organisations/invitations/"):
        ids["invitation_id"] = str(world["to_victim"].id)
    else:
        ids["invitation_id"] = str(world["invitation"].id)
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def call(client: ApiClient, method: str, url: str, spec: dict[str, Any] | None) -> Any:
    spec = dict(spec or {})
    if "query" in spec:
        url += "?" + "&".join(f"{k}={v}" for k, v in spec["query"].items())
    if "data" in spec:
        data = {
            k: (SimpleUploadedFile(v.name, _jpeg(), v.content_type) if hasattr(v, "name") else v)
            for k, v in spec["data"].items()
        }
        return client.post(url, data=data)
    body = spec.get("json")
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url)
    return getattr(client, method.lower())(url, body if body is not None else {})


def victims_rows(world: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Everything of the victim's that a foreign call could change."""
    victim = world["victim"]
    models: dict[str, Any] = {
        "dossiers": Dossier.objects.filter(applicant=victim),
        "attachments": Attachment.objects.filter(dossier__applicant=victim),
        "addresses": SavedAddress.objects.filter(user=victim),
        "bookings": DeliveryBooking.objects.filter(dossier__applicant=victim),
        "memberships": Membership.objects.filter(organisation_id=world["ids"]["organisation_id"]),
        "invitations": Invitation.objects.filter(
            pk__in=[world["invitation"].pk, world["to_victim"].pk]
        ),
        "sessions": DeviceSession.objects.filter(user=victim),
        "devices": Device.objects.filter(user=victim),
        "notifications": Notification.objects.filter(user=victim),
        "wallet": WalletItem.objects.filter(user=victim),
        "payment_requests": PaymentRequest.objects.filter(dossier__applicant=victim),
        "payments": Payment.objects.filter(request__dossier__applicant=victim),
    }
    return {
        name: [model_to_dict(row) for row in queryset.order_by("pk")]
        for name, queryset in models.items()
    }


ROUTES = object_routes()


def test_the_matrix_sees_every_kind_of_object_route() -> None:
    paths = {path for _m, path, _s in ROUTES}
    for expected in (
        "/api/v1/dossiers/{dossier_id}/attachments/{attachment_id}/download",
        "/api/v1/postal/bookings/{booking_id}/cancel",
        "/api/v1/devices/{device_id}",
        "/api/v1/organisations/{organisation_id}/members/{user_id}",
        "/api/v1/support/resets/{reset_id}/approve",
    ):
        assert expected in paths
    assert len(ROUTES) >= 40


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "scheme"), ROUTES)
def test_another_users_ids_read_as_not_found(
    method: str, path: str, scheme: str, tmp_path: Path, settings: Any, registry: Any
) -> None:
    # `registry`: the business registry fake is on, so an organisation's own
    # `/verify` reaches it (off, the owner's call would answer 503).
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = build_world()
    if takes_body(method, path):
        assert body_for(method, path, world) is not None, (
            f"{method} {path} takes a body: add a valid one to BODIES in this test"
        )
    spec = body_for(method, path, world)
    url = concrete_path(path, world)
    before = victims_rows(world)

    response = call(world["attacker_api"], method, url, spec)

    if scheme == "SupportSession":
        assert response.status_code == 403, (method, url, response.content)
        assert response.json()["code"] == "not_support_staff"
    else:
        assert response.status_code == 404, (method, url, response.status_code, response.content)
        assert response.json()["code"] == "not_found"
    assert victims_rows(world) == before, f"{method} {url} changed the victim's rows"

    owner = world["support_api"] if scheme == "SupportSession" else world["victim_api"]
    own_call = call(owner, method, url, body_for(method, path, world, caller="victim"))
    # Found (a 404 of its own, e.g. `no_result_file`, still says the object was found).
    assert own_call.status_code != 404 or own_call.json()["code"] != "not_found", (
        method,
        url,
        own_call.content,
    )
    assert own_call.status_code < 500, (method, url, own_call.content)
