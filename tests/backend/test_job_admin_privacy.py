"""The job queue's admin shows staff other than superusers no personal data of a job's
arguments (backend/job_admin.py): an SMS notice's number masked, its text withheld,
on the list, the job's page and its history, and no filter by the arguments.
Superusers see them masked on the list too, and whole on the job's page and its
history, each an audited look-up of the account the number (or citizen ID) is."""

from __future__ import annotations

import inspect
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from procrastinate.contrib.django import app as job_app
from procrastinate.contrib.django.models import ProcrastinateJob

from auth.models import SupportAuditRecord, User
from backend.jobs import PERSONAL_ARGS, personal_args
from tests.conftest import make_user
from tests.factories import make_job

pytestmark = pytest.mark.django_db

JOBS = "/admin/procrastinate/procrastinatejob/"
PHONE = "+84912345678"
MASKED_PHONE = "+8491•••5678"
# The text of an SMS notice: it may carry the end of another number.
TEXT = "Số điện thoại tài khoản của bạn đã được đổi sang số có đuôi 4321."
# The same number as it is also written: none of it may reach the page.
WRITTEN = (PHONE, "0912345678", "912345678", TEXT, "4321")

# The arguments of the project's tasks that are no personal data: ids, times, kinds.
# A task's new argument is either declared personal (`backend.jobs.personal_args`, above
# its `@app.task`) or added here, once someone decided it is not personal.
NOT_PERSONAL = {
    "booking_id",
    "carrier",  # the carrier's code
    "challenge_id",
    "context",  # procrastinate's job context, no argument of the job
    "delivery_ids",
    "event_id",
    "kind",
    "language",
    "notice",
    "notification_id",
    "purpose",
    "reference",  # a support reset's id
    "requested_at",
    "revision",
    "session_ids",
    "timestamp",
    "user_id",
    "waybill",  # the carrier's order number, shown to support staff too
}


def staff_with(*codenames: str) -> User:
    staff = make_user(password=None, is_staff=True, full_name="Vận Hành")
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="procrastinate", codename__in=codenames)
    )
    return staff


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sms_notice_job() -> int:
    """A queued SMS notice (deferred in the test's transaction: no worker sees it)."""
    task = job_app.configure_task("accounts.send_sms_notice")
    return task.defer(to=PHONE, text=TEXT, purpose="notice.phone_changed")


def pages(client: Client, job_id: int) -> dict[str, str]:
    """The list filtered to the job's task, the job's page and its history."""
    answers = {
        "list": client.get(JOBS, {"task_name": "accounts.send_sms_notice"}),
        "change": client.get(f"{JOBS}{job_id}/change/"),
        "history": client.get(f"{JOBS}{job_id}/history/"),
    }
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(
        answers, 200
    )
    return {name: unescape(answer.content.decode()) for name, answer in answers.items()}


@pytest.mark.parametrize(
    "codenames",
    [("view_procrastinatejob",), ("view_procrastinatejob", "change_procrastinatejob")],
    ids=["view", "view and change"],
)
def test_staff_see_an_sms_notices_number_masked_and_its_text_withheld(
    codenames: tuple[str, ...],
) -> None:
    job_id = sms_notice_job()
    shown = pages(client_of(staff_with(*codenames)), job_id)

    for name, html in shown.items():
        assert MASKED_PHONE in html, name
        assert [written for written in WRITTEN if written in html] == [], name
    # What tells a job apart stays readable.
    assert f"{JOBS}{job_id}/change/" in shown["list"]
    assert f"accounts.send_sms_notice[{job_id}]" in shown["change"]
    for html in (shown["list"], shown["change"]):
        assert '"purpose": "notice.phone_changed"' in html


def test_superusers_see_the_arguments_masked_on_the_list_and_whole_on_the_jobs_pages() -> None:
    job_id = sms_notice_job()
    superuser = make_user(password=None, is_staff=True, is_superuser=True)
    shown = pages(client_of(superuser), job_id)

    assert MASKED_PHONE in shown["list"]
    assert [written for written in WRITTEN if written in shown["list"]] == []
    for name in ("change", "history"):
        assert PHONE in shown[name], name
        assert MASKED_PHONE not in shown[name], name
    assert TEXT in shown["change"]


def look_ups() -> list[tuple[Any, ...]]:
    return list(
        SupportAuditRecord.objects.order_by("pk").values_list(
            "actor_id", "action", "subject_id", "channel", "details"
        )
    )


def test_a_superuser_opening_a_job_with_personal_arguments_is_a_look_up_of_its_citizen() -> None:
    holder = make_user(phone=PHONE, full_name="Chủ Số Điện Thoại")
    job_id = sms_notice_job()
    superuser = make_user(password=None, is_staff=True, is_superuser=True)
    client = client_of(superuser)

    assert client.get(JOBS).status_code == 200
    assert client.get(JOBS, {"task_name": "accounts.send_sms_notice"}).status_code == 200
    assert look_ups() == []  # the list (masked) is no look-up
    assert client.get(f"{JOBS}{job_id}/change/").status_code == 200
    assert client.get(f"{JOBS}{job_id}/history/").status_code == 200

    look_up = (superuser.id, "lookup", holder.id, "admin", {"by": "job", "found": True})
    assert look_ups() == [look_up, look_up]
    stored = repr(list(SupportAuditRecord.objects.values()))
    assert [written for written in WRITTEN if written in stored] == []


def test_a_job_of_a_number_nobody_holds_is_a_look_up_that_found_no_account() -> None:
    job_id = sms_notice_job()  # no account holds PHONE (an old number, a sign-up gone)
    superuser = make_user(password=None, is_staff=True, is_superuser=True)

    assert client_of(superuser).get(f"{JOBS}{job_id}/change/").status_code == 200

    assert look_ups() == [(superuser.id, "lookup", None, "admin", {"by": "job", "found": False})]


def test_an_unknown_tasks_citizen_id_is_a_look_up_of_its_account() -> None:
    holder = make_user(full_name="Chủ Căn Cước")
    User.objects.filter(pk=holder.pk).update(citizen_id="001099012345")
    unknown = make_job(cccd="001099012345", note="riêng")  # tests.admin_job: unregistered
    superuser = make_user(password=None, is_staff=True, is_superuser=True)

    page = unescape(client_of(superuser).get(f"{JOBS}{unknown}/change/").content.decode())

    assert "001099012345" in page
    assert look_ups() == [
        (superuser.id, "lookup", holder.id, "admin", {"by": "job", "found": True})
    ]


def test_opening_a_job_without_personal_arguments_or_as_other_staff_writes_nothing() -> None:
    make_user(phone=PHONE)
    collection = job_app.configure_task("postal.request_collection").defer(
        booking_id=4242, waybill="GHN-WB-4242"
    )
    notice = sms_notice_job()
    superuser = make_user(password=None, is_staff=True, is_superuser=True)
    staff = client_of(staff_with("view_procrastinatejob", "change_procrastinatejob"))

    assert client_of(superuser).get(f"{JOBS}{collection}/change/").status_code == 200
    for job_id in (collection, notice):
        for page in ("change", "history"):
            assert staff.get(f"{JOBS}{job_id}/{page}/").status_code == 200
    assert client_of(superuser).get(f"{JOBS}999999999/change/").status_code == 302
    # A post is refused (jobs are never edited in a form): nothing shown.
    assert client_of(superuser).post(f"{JOBS}{notice}/change/", {}).status_code == 403

    assert look_ups() == []


def test_other_arguments_stay_readable_and_an_unknown_tasks_are_withheld() -> None:
    collection = job_app.configure_task("postal.request_collection").defer(
        booking_id=4242, waybill="GHN-WB-4242"
    )
    unknown = make_job(to=PHONE, note="private")  # a task of no registry: tests.admin_job
    client = client_of(staff_with("view_procrastinatejob"))

    page = unescape(client.get(f"{JOBS}{collection}/change/").content.decode())
    assert '"booking_id": 4242' in page
    assert '"waybill": "GHN-WB-4242"' in page
    page = unescape(client.get(f"{JOBS}{unknown}/change/").content.decode())
    assert (PHONE in page, "912345678" in page, "private" in page) == (False, False, False)
    assert '"to": "•••"' in page


@pytest.mark.parametrize(
    "lookup",
    [
        {"args__to": PHONE},
        {"args__to__startswith": "+8491"},
        {"args__text__icontains": "đuôi"},
        {"args__has_key": "to"},
    ],
)
@pytest.mark.parametrize("is_superuser", [False, True], ids=["staff", "superuser"])
def test_nobody_filters_jobs_by_their_arguments(lookup: dict[str, str], is_superuser: bool) -> None:
    """Superusers too see them masked on the list: a filter by a number would be a
    look-up without a record (they open the job, audited)."""
    job_id = sms_notice_job()
    user = superuser() if is_superuser else staff_with("view_procrastinatejob")
    refused = client_of(user).get(JOBS, lookup)
    assert refused.status_code == 400
    assert f"{JOBS}{job_id}/change/" not in refused.content.decode()
    assert look_ups() == []


def test_every_argument_of_every_task_is_declared_personal_or_known_not_to_be() -> None:
    undecided = {}
    for name, task in job_app.tasks.items():
        if task.func.__module__.startswith(("procrastinate.", "tests.")):
            continue  # procrastinate's own (old jobs' removal), the tests' own
        personal = set(PERSONAL_ARGS.get(name, {}))
        arguments = set(inspect.signature(task.func).parameters)
        unknown = arguments - personal - NOT_PERSONAL
        if unknown:
            undecided[name] = sorted(unknown)
    assert undecided == {}
    assert "accounts.send_sms_notice" in job_app.tasks  # the walk saw the project's tasks
    assert set(PERSONAL_ARGS["accounts.send_sms_notice"]) == {"to", "text"}


def test_a_personal_argument_the_task_does_not_take_fails_at_once() -> None:
    task: Any = job_app.tasks["accounts.send_sms_notice"]
    with pytest.raises(TypeError, match="no argument phone"):
        personal_args(phone=str)(task)
    assert set(PERSONAL_ARGS["accounts.send_sms_notice"]) == {"to", "text"}


def booking_job_with_locks() -> int:
    return job_app.configure_task(
        "postal.send_booking", lock="postal-booking-4242", queueing_lock="queued-4242"
    ).defer(booking_id=4242, revision=1)


def superuser() -> User:
    return make_user(password=None, is_staff=True, is_superuser=True)


@pytest.mark.parametrize("is_superuser", [False, True], ids=["staff", "superuser"])
def test_the_job_list_offers_no_filter_by_lock(is_superuser: bool) -> None:
    """A sidebar listing every lock of the table (one per booking sent) diagnoses
    nothing, and would list whatever a lock may one day be made of to everyone who sees
    the jobs."""
    booking_job_with_locks()
    listing = client_of(superuser() if is_superuser else staff_with("view_procrastinatejob")).get(
        JOBS
    )

    sidebar = listing.content.decode()
    sidebar = sidebar[sidebar.index('id="changelist-filter"') :]
    assert "task_name" in sidebar  # the other filters stay
    assert "postal-booking-4242" not in sidebar
    assert "queued-4242" not in sidebar
    assert {spec.title for spec in listing.context["cl"].filter_specs}.isdisjoint(
        {"lock", "queueing lock"}
    )


def test_staff_see_whether_a_job_has_locks_not_what_they_are() -> None:
    """A lock is free text that no task declares (`personal_args` covers arguments):
    staff see that a job has one, on the list (its summary) and its page, never what it
    says."""
    job_id = booking_job_with_locks()
    unlocked = job_app.configure_task("postal.request_collection").defer(
        booking_id=4243, waybill="GHN-WB-4243"
    )
    client = client_of(staff_with("view_procrastinatejob", "change_procrastinatejob"))

    listing = client.get(JOBS, {"task_name": "postal.send_booking"})
    shown = {
        "list": unescape(listing.content.decode()),
        "change": unescape(client.get(f"{JOBS}{job_id}/change/").content.decode()),
        "history": unescape(client.get(f"{JOBS}{job_id}/history/").content.decode()),
    }
    for name, html in shown.items():
        assert ("postal-booking-4242" in html, "queued-4242" in html) == (False, False), name
    assert "<strong>Lock:</strong>\n      •••" in shown["list"]
    assert "<strong>Queueing lock:</strong>\n      •••" in shown["list"]
    change = client.get(f"{JOBS}{job_id}/change/")
    fields = {line.field["name"]: line for line in _readonly_lines(change)}
    assert (fields["lock"].contents(), fields["queueing_lock"].contents()) == ("•••", "•••")
    # A job without locks shows none (not a withheld one).
    fields = {
        line.field["name"]: line
        for line in _readonly_lines(client.get(f"{JOBS}{unlocked}/change/"))
    }
    assert (fields["lock"].contents(), fields["queueing_lock"].contents()) == ("-", "-")
    # The job's other fields stay readable, and its locks still work: nothing was saved.
    assert '"booking_id": 4242' in shown["change"]
    row = ProcrastinateJob.objects.filter(pk=job_id).values_list("lock", "queueing_lock")
    assert row.get() == ("postal-booking-4242", "queued-4242")


def test_superusers_see_a_jobs_locks() -> None:
    job_id = booking_job_with_locks()
    client = client_of(superuser())

    listing = unescape(client.get(JOBS, {"task_name": "postal.send_booking"}).content.decode())
    page = client.get(f"{JOBS}{job_id}/change/")
    assert "<strong>Lock:</strong>\n      postal-booking-4242" in listing
    fields = {line.field["name"]: line for line in _readonly_lines(page)}
    assert (fields["lock"].contents(), fields["queueing_lock"].contents()) == (
        "postal-booking-4242",
        "queued-4242",
    )


def test_an_action_of_staff_keeps_the_locks_they_do_not_see() -> None:
    """Retrying passes the job's lock on (procrastinate's retry_job_by_id): the action
    reads the jobs again, never the withheld ones the page showed."""
    job_id = booking_job_with_locks()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", [job_id])
    client = client_of(staff_with("view_procrastinatejob", "change_procrastinatejob"))
    assert "postal-booking-4242" not in client.get(JOBS).content.decode()

    client.post(JOBS, {"action": "retry", "_selected_action": [str(job_id)], "index": "0"})

    row = ProcrastinateJob.objects.filter(pk=job_id).values_list("status", "lock", "queueing_lock")
    assert row.get() == ("todo", "postal-booking-4242", "queued-4242")


def _readonly_lines(page: Any) -> list[Any]:
    """The read-only fields of a job's page, as Django's admin renders them."""
    assert page.status_code == 200
    return [field for fieldset in page.context["adminform"] for line in fieldset for field in line]


# Crafted URLs that filter the list by a field the page offers no filter for: Django's
# admin accepts a lookup on any field of the model itself (it checks only lookups that
# cross a relation against the filters offered), so each of these answered 200 to staff
# with the jobs they select.
UNOFFERED_LOOKUPS = [
    {"lock": "postal-booking-4242"},
    {"lock__startswith": "postal-booking-42"},
    {"queueing_lock__exact": "queued-4242"},
    {"queueing_lock__contains": "4242"},
    {"id": "{job_id}"},
    {"attempts__gte": "0"},
    {"abort_requested__exact": "0"},
]


@pytest.mark.parametrize("lookup", UNOFFERED_LOOKUPS, ids=lambda lookup: next(iter(lookup)))
def test_staff_cannot_filter_jobs_by_a_field_not_offered_as_a_filter(
    lookup: dict[str, str],
) -> None:
    job_id = booking_job_with_locks()
    lookup = {key: value.format(job_id=job_id) for key, value in lookup.items()}
    refused = client_of(staff_with("view_procrastinatejob")).get(JOBS, lookup)
    assert refused.status_code == 400
    assert f"{JOBS}{job_id}/change/" not in refused.content.decode()
    # Superusers, who read every field on the job's page, may.
    found = client_of(superuser()).get(JOBS, lookup)
    assert found.status_code == 200
    assert job_id in {job.pk for job in found.context["cl"].result_list}


@pytest.mark.parametrize(
    "lookup",
    [
        {"status__exact": "todo"},
        {"queue_name__exact": "postal"},
        {"task_name__exact": "postal.send_booking"},
        {"priority__exact": "0"},
        {"scheduled_at__isnull": "True"},
    ],
    ids=lambda lookup: next(iter(lookup)),
)
def test_staff_filter_jobs_by_the_filters_offered(lookup: dict[str, str]) -> None:
    job_id = booking_job_with_locks()
    found = client_of(staff_with("view_procrastinatejob")).get(JOBS, lookup)
    assert found.status_code == 200
    assert job_id in {job.pk for job in found.context["cl"].result_list}


def test_the_filters_offered_each_answer_to_staff() -> None:
    """Each filter the sidebar offers, followed as a link, is allowed (the date filter's
    __gte/__lt pair, the choices' __exact)."""
    booking_job_with_locks()
    client = client_of(staff_with("view_procrastinatejob"))
    listing = client.get(JOBS)
    links = [
        choice["query_string"]
        for spec in listing.context["cl"].filter_specs
        for choice in spec.choices(listing.context["cl"])
    ]
    assert len(links) > 10
    answers = {link: client.get(JOBS + link).status_code for link in links}
    assert set(answers.values()) == {200}, answers
