"""A push waits (quiet hours, a retry) after its audience was decided: a member who
left the organisation, or stopped watching it, meanwhile gets nothing when it goes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth.actions.organisations import remove_member, set_watching
from auth.models import Membership, User
from auth.sms import read_outbox
from dossiers.models import Dossier
from notifications import actions
from notifications.delivery import (
    NO_LONGER_RECIPIENT,
    _claim,
    _hand_to_fcm,
    _record,
    fail_stale_sending,
    send_fallback_sms,
    send_pushes,
)
from notifications.fcm import SendResult
from notifications.models import Delivery, Notification
from tests.factories import make_dossier, make_organisation, make_user
from tests.notifications.conftest import at_local, emit, jobs, register

pytestmark = pytest.mark.django_db

SEND_JOB = "notifications.send_pushes"
SMS_JOB = "notifications.send_fallback_sms"


def organisation_dossier(*members: User) -> tuple[Dossier, User]:
    applicant = make_user()
    organisation = make_organisation(applicant)
    for member in members:
        Membership.objects.create(organisation=organisation, user=member, watches=True)
    dossier = make_dossier(applicant, status=Dossier.Status.PROCESSING, organisation=organisation)
    return dossier, applicant


def entry_of(user: User, dossier: Dossier) -> Notification:
    return Notification.objects.get(user=user, dossier=dossier)


def states(notification: Notification) -> list[tuple[str, str]]:
    return [(d.state, d.error_code) for d in notification.deliveries.order_by("pk")]


def release_held_pushes() -> None:
    """The morning: every queued send job runs (in the order they were queued)."""
    for job in jobs(SEND_JOB):
        send_pushes(job["args"]["delivery_ids"])


@pytest.mark.shipped_quiet_hours
@pytest.mark.parametrize("change", ["left", "removed", "stopped_watching"])
def test_a_held_push_does_not_reach_a_member_who_no_longer_follows_the_dossier(
    fcm, clock, change: str
) -> None:
    clock.set(at_local(23, 15))
    watcher = make_user()
    dossier, applicant = organisation_dossier(watcher)
    register(applicant, "tok-applicant")
    register(watcher, "tok-watcher")
    actions.notify_event(emit(dossier, "dossier.accepted").pk)
    assert {d.next_attempt_at for d in Delivery.objects.all()} == {at_local(7, 0, day=11)}

    organisation_id = dossier.organisation_id
    if change == "left":
        remove_member(watcher, organisation_id, watcher.pk)
    elif change == "removed":
        remove_member(applicant, organisation_id, watcher.pk)
    else:
        set_watching(watcher, organisation_id, watches=False)
    clock.set(at_local(7, 0, day=11))
    release_held_pushes()

    assert fcm.sent_to("tok-watcher") == []
    assert len(fcm.sent_to("tok-applicant")) == 1
    assert states(entry_of(watcher, dossier)) == [("permanent-failure", NO_LONGER_RECIPIENT)]
    assert states(entry_of(applicant, dossier)) == [("delivered", "")]
    # Nothing is queued to try it again.
    assert send_pushes(list(Delivery.objects.values_list("pk", flat=True))) == 0
    assert fcm.sent_to("tok-watcher") == []


def test_a_retry_does_not_reach_a_member_who_left_nor_falls_back_to_sms(
    fcm, clock, no_jitter
) -> None:
    watcher = make_user()
    dossier, _ = organisation_dossier(watcher)
    register(watcher, "tok-watcher-1")
    register(watcher, "tok-watcher-2")
    fcm.script("tok-watcher-1", "UNAVAILABLE")
    fcm.script("tok-watcher-2", "UNAVAILABLE", "UNREGISTERED")
    # Urgent: never held, and a fallback SMS when every push fails for good.
    actions.notify_event(emit(dossier, "dossier.supplement_requested").pk)
    entry = entry_of(watcher, dossier)
    first, second = entry.deliveries.order_by("pk")
    send_pushes([first.pk, second.pk])
    assert states(entry) == [("temporary-failure", "UNAVAILABLE")] * 2

    clock.advance(seconds=30)
    # The second row's retry is handed to FCM just before the member leaves; its answer
    # comes after the first row's retry was refused.
    handed = _hand_to_fcm(_claim([second.pk], "s" * 32), "s" * 32)
    remove_member(watcher, dossier.organisation_id, watcher.pk)
    assert send_pushes([first.pk]) == 0
    _record(handed, [SendResult(error_code="UNREGISTERED")])

    assert fcm.attempts_for("tok-watcher-1") == ["UNAVAILABLE"]
    assert states(entry) == [
        ("permanent-failure", NO_LONGER_RECIPIENT),
        ("permanent-failure", "UNREGISTERED"),
    ]
    entry.refresh_from_db()
    assert entry.sms_status == Notification.SmsStatus.NONE
    assert [job for job in jobs(SMS_JOB) if job["args"]["notification_id"] == entry.pk] == []


def test_the_applicant_and_members_still_watching_get_their_retries(fcm, clock, no_jitter) -> None:
    member = make_user()
    dossier, applicant = organisation_dossier(member)
    Membership.objects.filter(user=applicant).update(watches=False)  # applicant all the same
    register(applicant, "tok-applicant")
    register(member, "tok-member")
    fcm.script("tok-applicant", "UNAVAILABLE")
    fcm.script("tok-member", "UNAVAILABLE")
    actions.notify_event(emit(dossier, "dossier.accepted").pk)
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    send_pushes(ids)

    clock.advance(seconds=30)
    assert send_pushes(ids) == 2

    assert fcm.attempts_for("tok-applicant") == ["UNAVAILABLE", "ok"]
    assert fcm.attempts_for("tok-member") == ["UNAVAILABLE", "ok"]


def claim_queries(members: int, leaving: int) -> list[str]:
    people = [make_user() for _ in range(members)]
    dossier, applicant = organisation_dossier(*people)
    for index, person in enumerate([applicant, *people]):
        register(person, f"tok-{index}-{person.pk.hex[:6]}")
    actions.notify_event(emit(dossier, "dossier.accepted").pk)
    Membership.objects.filter(user__in=people[:leaving]).delete()
    ids = list(Delivery.objects.filter(notification__dossier=dossier).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        claimed = _claim(ids, "c" * 32)
    assert len(claimed) == members + 1 - leaving
    assert Delivery.objects.filter(pk__in=ids, error_code=NO_LONGER_RECIPIENT).count() == leaving
    return [query["sql"] for query in queries.captured_queries]


def test_the_claim_checks_the_audience_with_the_same_queries_for_any_batch() -> None:
    few = claim_queries(members=2, leaving=1)
    many = claim_queries(members=30, leaving=12)

    assert len(many) == len(few), "\n".join(many)


@pytest.mark.parametrize("ending", ["unregistered", "worker_died"])
def test_no_fallback_sms_for_a_member_who_left_before_every_push_failed(
    fcm, settings, ending: str
) -> None:
    watcher = make_user()
    dossier, applicant = organisation_dossier(watcher)
    register(applicant, "tok-applicant-gone")
    register(watcher, "tok-watcher-gone")
    actions.notify_event(emit(dossier, "dossier.supplement_requested").pk)  # urgent
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    # Both pushes handed to FCM; then the member leaves, before their answers are in.
    rows = _hand_to_fcm(_claim(ids, "h" * 32), "h" * 32)
    remove_member(watcher, dossier.organisation_id, watcher.pk)
    if ending == "unregistered":
        _record(rows, [SendResult(error_code="UNREGISTERED")] * len(rows))
    else:
        settings.PUSH_STALE_SENDING_MINUTES = -1
        assert fail_stale_sending() == 2

    watcher_entry, applicant_entry = entry_of(watcher, dossier), entry_of(applicant, dossier)
    assert watcher_entry.sms_status == Notification.SmsStatus.NONE
    assert [job["args"] for job in jobs(SMS_JOB)] == [{"notification_id": applicant_entry.pk}]
    assert applicant_entry.sms_status == Notification.SmsStatus.PENDING


def test_a_queued_fallback_sms_is_not_sent_to_a_member_who_stopped_watching() -> None:
    watcher = make_user(phone="+84912000222")
    dossier, applicant = organisation_dossier(watcher)
    # No device to push to: the urgent event asks for an SMS at once, for both.
    actions.notify_event(emit(dossier, "dossier.payment_requested").pk)
    assert len(jobs(SMS_JOB)) == 2
    set_watching(watcher, dossier.organisation_id, watches=False)

    for job in jobs(SMS_JOB):
        send_fallback_sms(**job["args"])

    assert [sms["to"] for sms in read_outbox()] == [str(applicant.phone)]
    assert entry_of(watcher, dossier).sms_status == Notification.SmsStatus.NONE
    assert entry_of(applicant, dossier).sms_status == Notification.SmsStatus.SENT
