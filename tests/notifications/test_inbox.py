"""Inbox entries: who gets them, in which language, and the inbox API."""

from __future__ import annotations

import pytest

from auth.models import Membership
from dossiers.models import Dossier
from notifications.actions import notify_event
from notifications.models import Notification
from tests.conftest import api_as, make_user
from tests.factories import make_dossier, make_organisation, make_procedure
from tests.notifications.conftest import emit, notify, register

pytestmark = pytest.mark.django_db


def test_organisation_dossier_reaches_applicant_and_watching_members_only() -> None:
    applicant, watcher, muted, outsider = (make_user() for _ in range(4))
    organisation = make_organisation(applicant)
    Membership.objects.create(organisation=organisation, user=watcher, watches=True)
    Membership.objects.create(organisation=organisation, user=muted, watches=False)
    other_organisation = make_organisation(outsider)  # a member of another organisation
    Membership.objects.create(organisation=other_organisation, user=muted, watches=True)
    for person, token in [(applicant, "a"), (watcher, "w"), (muted, "m"), (outsider, "o")]:
        register(person, f"tok-{token}")
    dossier = make_dossier(applicant, status=Dossier.Status.PROCESSING, organisation=organisation)

    event = emit(dossier, "dossier.accepted")
    notify_event(event.pk)

    entries = Notification.objects.filter(event=event)
    assert {entry.user for entry in entries} == {applicant, watcher}
    assert sorted(entry.deliveries.get().device.token for entry in entries) == ["tok-a", "tok-w"]


def test_fan_out_twice_creates_nothing_twice() -> None:
    user = make_user()
    register(user, "tok-1")
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    event = emit(dossier, "dossier.accepted")

    assert notify_event(event.pk) == 1
    assert notify_event(event.pk) == 0

    assert Notification.objects.filter(event=event).count() == 1
    assert Notification.objects.get(event=event).deliveries.count() == 1


def test_texts_follow_each_recipients_language() -> None:
    vi_user = make_user(language="vi")
    en_user = make_user(language="en")
    organisation = make_organisation(vi_user)
    Membership.objects.create(organisation=organisation, user=en_user)
    procedure = make_procedure(name="Đăng ký khai sinh", name_en="Birth registration")
    dossier = make_dossier(
        vi_user, procedure, status=Dossier.Status.RESULT_READY, organisation=organisation
    )

    event = emit(dossier, "dossier.completed")
    notify_event(event.pk)

    vi = Notification.objects.get(event=event, user=vi_user)
    en = Notification.objects.get(event=event, user=en_user)
    assert (vi.title, vi.body) == (
        "Đã có kết quả",
        f"Hồ sơ {dossier.code} (Đăng ký khai sinh) đã xử lý xong. Kết quả đã sẵn sàng.",
    )
    assert (en.title, en.body) == (
        "Result ready",
        f"Dossier {dossier.code} (Birth registration) is done. The result is ready.",
    )
    assert (
        vi.data
        == en.data
        == {
            "type": "dossier.completed",
            "category": "status_changes",
            "urgent": "true",
            "event_id": str(event.pk),
            "dossier_id": str(dossier.pk),
            "dossier_code": dossier.code,
        }
    )


def test_the_citizen_who_acted_gets_a_read_entry_and_no_push() -> None:
    user = make_user()
    register(user, "tok-self")
    dossier = make_dossier(user, status=Dossier.Status.NEW)

    entry = notify(
        user, "dossier.submitted", dossier=dossier, actor_type="citizen", actor_user=user
    )

    assert entry.read_at is not None
    assert entry.deliveries.count() == 0


def test_internal_monitoring_events_notify_nobody() -> None:
    user = make_user()
    dossier = make_dossier(user, status=Dossier.Status.PROCESSING)
    event = emit(dossier, "dossier.deadline_at_risk", actor_type="system")

    assert notify_event(event.pk) == 0
    assert Notification.objects.count() == 0


def test_inbox_lists_my_entries_newest_first_with_a_cursor() -> None:
    me, other = make_user(), make_user()
    dossier = make_dossier(me, status=Dossier.Status.PROCESSING)
    entries = [notify(me, "dossier.processing_started", dossier=dossier) for _ in range(3)]
    notify(other, "dossier.accepted")
    api = api_as(me)

    first = api.get("/api/v1/notifications", query={"limit": 2})
    second = api.get(
        "/api/v1/notifications", query={"limit": 2, "cursor": first.json()["next_cursor"]}
    )

    assert first.status_code == 200
    assert [item["id"] for item in first.json()["items"]] == [entries[2].pk, entries[1].pk]
    assert [item["id"] for item in second.json()["items"]] == [entries[0].pk]
    assert second.json()["next_cursor"] is None
    item = second.json()["items"][0]
    assert item == {
        "id": entries[0].pk,
        "type": "dossier.processing_started",
        "category": "status_changes",
        "urgent": False,
        "title": "Hồ sơ đang được xử lý",
        "body": entries[0].body,
        "data": entries[0].data,
        "dossier_id": str(dossier.pk),
        "event_id": entries[0].event_id,
        "created_at": item["created_at"],
        "read_at": None,
    }


def test_unread_count_mark_one_and_mark_all() -> None:
    me = make_user()
    dossier = make_dossier(me, status=Dossier.Status.PROCESSING)
    a, b, c = (notify(me, "dossier.processing_started", dossier=dossier) for _ in range(3))
    api = api_as(me)
    assert api.get("/api/v1/notifications/unread-count").json() == {"unread": 3}

    response = api.post(f"/api/v1/notifications/{a.pk}/read")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    assert api.post(f"/api/v1/notifications/{a.pk}/read").status_code == 200  # again is fine
    assert api.get("/api/v1/notifications/unread-count").json() == {"unread": 2}
    unread = api.get("/api/v1/notifications", query={"unread": "true"}).json()["items"]
    assert [item["id"] for item in unread] == [c.pk, b.pk]

    assert api.post("/api/v1/notifications/read-all", {"up_to_id": b.pk}).json() == {
        "marked": 1,
        "unread": 1,
    }
    assert api.post("/api/v1/notifications/read-all", {}).json() == {"marked": 1, "unread": 0}
    assert api.get("/api/v1/notifications/unread-count").json() == {"unread": 0}


def test_cannot_read_someone_elses_entry() -> None:
    me, other = make_user(), make_user()
    theirs = notify(other, "dossier.accepted")

    response = api_as(me).post(f"/api/v1/notifications/{theirs.pk}/read")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_inbox_needs_authentication(api) -> None:
    assert api.get("/api/v1/notifications").status_code == 401
    assert api.get("/api/v1/notifications/unread-count").status_code == 401
