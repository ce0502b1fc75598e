"""Device registration: refresh, tokens changing hands, sessions ending, own devices only."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from auth.actions.sessions import revoke_session
from auth.models import DeviceSession
from notifications.delivery import sendable_devices
from notifications.models import Device
from tests.conftest import ApiClient, make_user, sign_in
from tests.notifications.conftest import notify, register

pytestmark = pytest.mark.django_db

DEVICE = {
    "token": "fcm-token-aaaa",
    "platform": "android",
    "app_version": "1.4.0",
    "locale": "vi-VN",
    "installation_id": "install-1",
}


def client_for(user, device_id: str | None = None) -> tuple[ApiClient, object]:
    session, tokens = sign_in(user, device_id=device_id)
    return ApiClient(token=tokens.access_token), session


def test_register_device_creates_it() -> None:
    user = make_user()
    api, session = client_for(user)

    response = api.post("/api/v1/devices", DEVICE)

    assert response.status_code == 201, response
    body = response.json()
    device = Device.objects.get()
    assert body == {
        "id": device.pk,
        "platform": "android",
        "app_version": "1.4.0",
        "locale": "vi-VN",
        "installation_id": "install-1",
        "created_at": body["created_at"],
        "last_seen_at": body["last_seen_at"],
        "current": True,
    }
    assert (device.user, device.session, device.token, device.active) == (
        user,
        session,
        "fcm-token-aaaa",
        True,
    )


def test_register_again_refreshes_the_same_device() -> None:
    user = make_user()
    api, _ = client_for(user)
    first = api.post("/api/v1/devices", DEVICE).json()
    long_ago = timezone.now() - dt.timedelta(days=40)
    Device.objects.update(last_seen_at=long_ago)

    response = api.post("/api/v1/devices", {**DEVICE, "app_version": "1.5.0"})

    assert response.status_code == 200
    device = Device.objects.get()
    assert response.json()["id"] == first["id"] == device.pk
    assert device.app_version == "1.5.0"
    assert device.last_seen_at > long_ago + dt.timedelta(days=39)


def test_installation_id_defaults_to_the_session_device_id() -> None:
    user = make_user()
    api, _ = client_for(user, device_id="phone-install-77")
    response = api.post("/api/v1/devices", {"token": "tok-x", "platform": "ios"})
    assert response.status_code == 201
    assert response.json()["installation_id"] == "phone-install-77"


def test_new_token_of_the_same_installation_replaces_the_old_one() -> None:
    user = make_user()
    api, _ = client_for(user)
    api.post("/api/v1/devices", DEVICE)

    api.post("/api/v1/devices", {**DEVICE, "token": "fcm-token-rotated"})

    assert list(Device.objects.filter(active=True).values_list("token", flat=True)) == [
        "fcm-token-rotated"
    ]
    old = Device.objects.get(token="fcm-token-aaaa")
    assert (old.active, old.deactivated_reason) == (False, "replaced")


def test_token_registered_by_another_user_moves_to_that_user() -> None:
    first, second = make_user(), make_user()
    api_first, _ = client_for(first)
    api_second, _ = client_for(second)
    api_first.post("/api/v1/devices", DEVICE)

    response = api_second.post("/api/v1/devices", DEVICE)

    assert response.status_code == 201
    active = Device.objects.get(active=True)
    assert active.user == second
    previous = Device.objects.get(user=first)
    assert (previous.active, previous.deactivated_reason) == (False, "moved_to_other_user")
    assert api_first.get("/api/v1/devices").json()["items"] == []
    # The first user's events no longer reach the phone; the second user's do.
    assert notify(first, "dossier.accepted").deliveries.count() == 0
    assert [d.device_id for d in notify(second, "dossier.accepted").deliveries.all()] == [active.pk]


def test_devices_of_a_revoked_session_are_not_sent_to() -> None:
    user = make_user()
    session, _ = sign_in(user)
    device = register(user, "tok-logout", session=session)

    revoke_session(session, reason="logout")

    assert list(sendable_devices().filter(user=user)) == []
    assert notify(user, "dossier.accepted").deliveries.count() == 0
    device.refresh_from_db()
    assert device.active is True  # until housekeeping retires it (see test_maintenance)


@pytest.mark.parametrize(("age_days", "sent"), [(29.99, True), (30.01, False)])
def test_devices_of_a_session_past_its_max_age_are_not_sent_to(
    settings, age_days: float, sent: bool
) -> None:
    # The session's tokens stop at SESSION_MAX_AGE_DAYS (auth/tokens.py); its
    # device's pushes stop with them: a dossier's news is for a signed-in app.
    settings.SESSION_MAX_AGE_DAYS = 30
    user = make_user()
    session, _ = sign_in(user)
    device = register(user, "tok-old-session", session=session)
    signed_in = timezone.now() - dt.timedelta(days=age_days)
    DeviceSession.objects.filter(pk=session.pk).update(created_at=signed_in)

    assert list(sendable_devices().filter(user=user)) == ([device] if sent else [])
    assert notify(user, "dossier.accepted").deliveries.count() == (1 if sent else 0)


def test_list_devices_shows_only_my_active_devices() -> None:
    me, other = make_user(), make_user()
    api, session = client_for(me)
    mine = register(me, "tok-mine", session=session)
    elsewhere = register(me, "tok-tablet", platform="web")
    removed = register(me, "tok-old")
    Device.objects.filter(pk=removed.pk).update(active=False)
    register(other, "tok-theirs")

    response = api.get("/api/v1/devices")

    assert response.status_code == 200
    items = response.json()["items"]
    assert sorted((item["id"], item["current"]) for item in items) == sorted(
        [(mine.pk, True), (elsewhere.pk, False)]
    )


def test_remove_my_device() -> None:
    user = make_user()
    api, _ = client_for(user)
    device = register(user, "tok-remove")

    response = api.delete(f"/api/v1/devices/{device.pk}")

    assert response.status_code == 204
    device.refresh_from_db()
    assert (device.active, device.deactivated_reason) == (False, "removed_by_user")
    assert api.delete(f"/api/v1/devices/{device.pk}").status_code == 404


def test_cannot_remove_someone_elses_device() -> None:
    me, other = make_user(), make_user()
    api, _ = client_for(me)
    theirs = register(other, "tok-theirs")

    response = api.delete(f"/api/v1/devices/{theirs.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.active is True


def test_device_routes_need_authentication(api) -> None:
    assert api.post("/api/v1/devices", DEVICE).status_code == 401
    assert api.get("/api/v1/devices").status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"platform": "symbian"}, "platform"),
        ({"token": ""}, "token"),
        ({"token": "x" * 4097}, "token"),
        ({"app_version": "1" * 33}, "app_version"),
    ],
)
def test_invalid_registration_is_refused(change: dict, field: str) -> None:
    api, _ = client_for(make_user())
    response = api.post("/api/v1/devices", {**DEVICE, **change})
    assert response.status_code == 422
    assert [detail["field"] for detail in response.json()["details"]] == [field]
    assert Device.objects.count() == 0


def test_longest_token_is_accepted() -> None:
    api, _ = client_for(make_user())
    assert api.post("/api/v1/devices", {**DEVICE, "token": "x" * 4096}).status_code == 201


def test_devices_per_user_are_limited_to_the_most_recent(settings) -> None:
    settings.DEVICE_MAX_PER_USER = 3
    user = make_user()
    devices = [register(user, f"tok-{n}") for n in range(3)]
    assert Device.objects.filter(user=user, active=True).count() == 3  # at the limit

    newest = register(user, "tok-3")

    active = set(Device.objects.filter(user=user, active=True).values_list("pk", flat=True))
    assert active == {devices[1].pk, devices[2].pk, newest.pk}
    oldest = Device.objects.get(pk=devices[0].pk)
    assert oldest.deactivated_reason == "over_limit"


def test_register_with_idempotency_key_replays(settings) -> None:
    api, _ = client_for(make_user())
    headers = {"Idempotency-Key": "5f0c3c56-device-1"}
    first = api.post("/api/v1/devices", DEVICE, headers=headers)
    second = api.post("/api/v1/devices", DEVICE, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert Device.objects.count() == 1
