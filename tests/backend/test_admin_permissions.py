"""Staff with only "view" permissions change nothing through any admin action or page.

Django runs a ModelAdmin action for anyone who reaches the change list unless the
action declares `permissions=[...]`, and a custom admin view checks nothing unless
it does so itself. The walk below finds every registered ModelAdmin, every action
it offers (its own and the site-wide ones) and every URL of its `get_urls()`, so an
action or page added later is walked without touching this file. The walk acts on the
rows its fixture made, a job of the queue in each status included: the job tables are
not emptied between tests (they are procrastinate's, not Django's to flush), so other
tests' jobs may be there, and are left out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Max, Model, QuerySet
from django.test import Client
from django.urls import URLPattern, reverse
from django.urls.converters import UUIDConverter
from django.utils import timezone
from procrastinate.contrib.django.models import ProcrastinateJob

from auth.models import SupportReset, User
from dossiers import lifecycle
from dossiers.agency.credentials import create_credential, decrypt_secret, rotate_credential
from dossiers.models import Agency, AgencyCredential, AgencyOfficer, Dossier
from notifications import actions as notification_actions
from payments.models import Payment
from tests.conftest import make_user, sign_in
from tests.factories import (
    make_agency,
    make_dossier,
    make_job,
    make_organisation,
    make_paid_payment,
    make_procedure,
)

pytestmark = pytest.mark.django_db
S = Dossier.Status

# Rows the request itself writes (the staff member's session), not the action.
NOT_DOMAIN_STATE = {Session}


def snapshot() -> dict[str, str]:
    """A digest of every row of every model: any write anywhere changes it."""
    state = {}
    for model in apps.get_models():
        if model in NOT_DOMAIN_STATE or model._meta.proxy:
            continue
        rows = model._default_manager.order_by("pk").values_list()
        state[model._meta.label] = hashlib.sha256(repr(list(rows)).encode()).hexdigest()
    return state


def changed(before: dict[str, str]) -> list[str]:
    after = snapshot()
    return sorted(label for label in before if before[label] != after[label])


def rows_of(world: dict[str, Any], model: type[Model]) -> QuerySet[Any]:
    """The rows of `model` the test made: Django empties its tables between tests, not
    the job queue's (unmanaged), where rows of other tests may be left."""
    return model._default_manager.filter(pk__gt=world["leftovers"].get(model, 0))


def job_states(job_ids: list[int]) -> dict[int, tuple[str, bool, int]]:
    rows = ProcrastinateJob.objects.filter(pk__in=job_ids)
    return {
        pk: (status, abort, attempts)
        for pk, status, abort, attempts in rows.values_list(
            "pk", "status", "abort_requested", "attempts"
        )
    }


def view_only_officer(agency: Agency) -> User:
    """Staff with every "view" permission of the project and none other, officer of `agency`."""
    staff = make_user(password=None, is_staff=True, full_name="Cán bộ Chỉ Xem")
    staff.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    AgencyOfficer.objects.create(agency=agency, user=staff)
    return staff


@pytest.fixture
def world() -> dict[str, Any]:
    """At least one row behind every admin: dossiers the actions could move, credentials
    they could rotate, a device to push to, a session to revoke, a reset to approve, a
    paid payment to record a refund of, a job of the queue in each status to retry,
    cancel or abort."""
    # Rows already in the tables Django does not empty: the walk leaves them out.
    leftovers = {
        model: model._default_manager.aggregate(top=Max("pk"))["top"] or 0
        for model in admin.site._registry
        if not model._meta.managed
    }
    jobs = {
        status: make_job(status, marker=f"admin-walk-{status}")
        for status in ("todo", "doing", "failed", "succeeded")
    }
    agency = make_agency()
    procedure = make_procedure(agency, documents=2)
    citizen = make_user()
    session, _ = sign_in(citizen)
    dossiers = [
        make_dossier(citizen, procedure, status=status, appointment_at=timezone.now())
        for status in (S.NEW, S.ACCEPTED, S.PROCESSING, S.RESULT_READY)
    ]
    other_agency = make_agency()
    make_dossier(make_user(), make_procedure(other_agency), status=S.NEW)
    own_credential, _ = create_credential(agency, "own")
    rotate_credential(own_credential)
    create_credential(other_agency, "other")
    device, _ = notification_actions.register_device(
        citizen, session, token="tok-admin-walk", platform="android"
    )
    make_organisation(citizen)
    payment = make_paid_payment(citizen, dossiers[2], "ADMINWALK1")
    root = make_user(password=None, is_staff=True, is_superuser=True)
    SupportReset.objects.create(
        user=citizen,
        kind=SupportReset.Kind.LOST_AUTHENTICATOR,
        reason="lost phone",
        evidence="CCCD checked at the counter",
        opened_by=root,
        requires_approval=True,
    )
    return {
        "leftovers": leftovers,
        "jobs": jobs,
        "agency": agency,
        "dossiers": dossiers,
        "citizen": citizen,
        "device": device,
        "payment": payment,
    }


def url_values(
    world: dict[str, Any], model_admin: admin.ModelAdmin, name: str, converter: Any
) -> list[str]:
    """Values to fill a URL parameter with: ids of the test's rows, or every lifecycle action."""
    if name.endswith("id"):
        pks = [str(pk) for pk in rows_of(world, model_admin.model).values_list("pk", flat=True)]
        if pks:
            return pks
        return [
            "00000000-0000-0000-0000-000000000000" if isinstance(converter, UUIDConverter) else "0"
        ]
    if name == "action":
        return list(lifecycle.ACTIONS)
    raise AssertionError(f"teach the admin walk how to fill the URL parameter <{name}>")


def urls_of(world: dict[str, Any], model_admin: admin.ModelAdmin) -> list[str]:
    found = []
    for pattern in model_admin.get_urls():
        assert isinstance(pattern, URLPattern)
        if pattern.name is None:  # the old "<id>/" redirect to the change page
            continue
        converters = pattern.pattern.converters
        combos: list[dict[str, str]] = [{}]
        for name, converter in converters.items():
            combos = [
                {**combo, name: value}
                for combo in combos
                for value in url_values(world, model_admin, name, converter)
            ]
        found += [reverse(f"admin:{pattern.name}", kwargs=combo) for combo in combos]
    return found


def form_payload(world: dict[str, Any]) -> dict[str, Any]:
    """Answers to every form field a page of this admin asks for, as someone with the
    permission would post them: accepted on the officer's forms, so a refusal is the
    permission check and not a validation error."""
    citizen: User = world["citizen"]
    later = timezone.localtime(timezone.now() + dt.timedelta(days=5))
    return {
        "receipt_number": "BN-1",
        "message": "Đã xem",
        "reason": "Lý do",
        "codes": ["doc-1"],
        "other": "Giấy khác",
        "amount": "50000",
        "description": "Lệ phí",
        "method": lifecycle.HANDOVER_METHODS[0],
        "new_appointment_at": later.strftime("%Y-%m-%dT%H:%M"),
        "phone": citizen.phone,
        "citizen_id": "",
        "kind": SupportReset.Kind.LOST_AUTHENTICATOR,
        "evidence": "CCCD checked",
        "ticket_number": "T-1",
        "note": "ok",
        "approve": "1",
        "full_name": "Tên Mới",
        "label": "renamed",
        "agency": str(world["agency"].pk),
        "is_active": "on",
        "language": "vi",
        "post": "yes",
        "_save": "Save",
    }


def test_view_only_staff_change_nothing_through_any_admin_action(world: dict[str, Any]) -> None:
    staff = view_only_officer(world["agency"])
    client = Client()
    client.force_login(staff)
    walked = []
    for model, model_admin in admin.site._registry.items():
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        everything = [str(pk) for pk in rows_of(world, model).values_list("pk", flat=True)]
        for _func, name, _description in model_admin._get_base_actions():
            if everything:  # Django runs no action on an empty selection
                walked.append(f"{model._meta.label}.{name}")
            # Both ways Django dispatches an action: from the list ("index"), and the
            # confirmation page's post (delete_selected's "post": "yes").
            for extra in ({"index": "0"}, {"post": "yes"}):
                before = snapshot()
                response = client.post(
                    changelist, {"action": name, "_selected_action": everything, **extra}
                )
                assert changed(before) == [], f"{name} on {changelist} ({extra})"
                assert "secrets" not in (response.context or {}), name
    # Every action the project defines, and the ones this issue was about.
    for expected in (
        "dossiers.Dossier.accept_selected",
        "dossiers.Dossier.start_processing_selected",
        "dossiers.AgencyCredential.rotate_secrets",
        "dossiers.AgencyCredential.retire_previous_secrets",
        "accounts.DeviceSession.revoke_sessions",
        "notifications.Device.send_test_push_action",
        "payments.Payment.record_refund",
        "procrastinate.ProcrastinateJob.retry",
        "procrastinate.ProcrastinateJob.cancel",
        "procrastinate.ProcrastinateJob.abort",
    ):
        assert expected in walked


def test_view_only_staff_change_nothing_through_any_admin_page(world: dict[str, Any]) -> None:
    staff = view_only_officer(world["agency"])
    client = Client()
    client.force_login(staff)
    payload = form_payload(world)
    walked = []
    for model_admin in admin.site._registry.values():
        for url in urls_of(world, model_admin):
            walked.append(url)
            before = snapshot()
            client.get(url)
            response = client.post(url, payload)
            assert changed(before) == [], url
            assert "secrets" not in (response.context or {}), url
    dossier = world["dossiers"][0]
    assert f"/admin/dossiers/dossier/{dossier.pk}/lifecycle/accept/" in walked
    assert "/admin/accounts/user/support-lookup/" in walked
    for job_id in world["jobs"].values():
        assert f"/admin/procrastinate/procrastinatejob/{job_id}/change/" in walked


def test_the_walk_payload_moves_a_dossier_for_an_officer_allowed_to_change(
    world: dict[str, Any],
) -> None:
    """The same posts do change things for an officer with "change": the walk's
    negative answers come from the permission checks, not from malformed requests."""
    staff = view_only_officer(world["agency"])
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["change_dossier", "change_agencycredential"],
            content_type__app_label="dossiers",
        )
    )
    client = Client()
    client.force_login(staff)
    new, accepted = world["dossiers"][0], world["dossiers"][1]
    client.post(f"/admin/dossiers/dossier/{new.pk}/lifecycle/accept/", form_payload(world))
    new.refresh_from_db()
    assert new.status == S.ACCEPTED
    client.post(
        "/admin/dossiers/dossier/",
        {"action": "start_processing_selected", "_selected_action": [accepted.pk], "index": "0"},
    )
    accepted.refresh_from_db()
    assert accepted.status == S.PROCESSING


def test_officer_rotates_only_their_own_agencys_credentials(world: dict[str, Any]) -> None:
    staff = view_only_officer(world["agency"])
    staff.user_permissions.add(
        Permission.objects.get(
            codename="change_agencycredential", content_type__app_label="dossiers"
        )
    )
    own = AgencyCredential.objects.get(agency=world["agency"])
    other = AgencyCredential.objects.exclude(agency=world["agency"]).get()
    other_secret = other.secret_encrypted
    client = Client()
    client.force_login(staff)

    listing = client.get("/admin/dossiers/agencycredential/").content.decode()
    assert own.key_id in listing
    assert other.key_id not in listing
    response = client.post(
        "/admin/dossiers/agencycredential/",
        {"action": "rotate_secrets", "_selected_action": [own.pk, other.pk], "index": "0"},
    )

    own.refresh_from_db()
    other.refresh_from_db()
    assert response.context["secrets"] == [(own.key_id, decrypt_secret(own.secret_encrypted))]
    assert other.secret_encrypted == other_secret
    assert other.rotated_at is None
    # Nor can a new credential be made for another agency.
    client.post(
        "/admin/dossiers/agencycredential/add/",
        {"agency": other.agency_id, "label": "mine now", "is_active": "on"},
    )
    assert AgencyCredential.objects.filter(agency=other.agency_id).count() == 1


def test_view_only_staff_cannot_record_a_refund(world: dict[str, Any]) -> None:
    viewer = make_user(password=None, is_staff=True, full_name="Chỉ Xem Thanh Toán")
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    AgencyOfficer.objects.create(agency=world["agency"], user=viewer)  # the payment is theirs
    client = Client()
    client.force_login(viewer)
    payment: Payment = world["payment"]
    client.post(
        "/admin/payments/payment/",
        {"action": "record_refund", "_selected_action": [str(payment.pk)], "index": "0"},
    )
    payment.refresh_from_db()
    assert (payment.status, payment.refund_reason, payment.refunded_by_id) == ("paid", "", None)
    # Nor when called past the action list's filter (the action checks again).
    model_admin = admin.site._registry[Payment]
    request = client.get("/admin/payments/payment/").wsgi_request
    with pytest.raises(DjangoPermissionDenied):
        model_admin.record_refund(request, Payment.objects.filter(pk=payment.pk))
    payment.refresh_from_db()
    assert payment.status == "paid"


def test_staff_allowed_to_change_payments_record_a_refund_under_their_own_id(
    world: dict[str, Any],
) -> None:
    cashier = make_user(password=None, is_staff=True, full_name="Kế Toán")
    cashier.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payment", "change_payment"])
    )
    AgencyOfficer.objects.create(agency=world["agency"], user=cashier)
    client = Client()
    client.force_login(cashier)
    payment: Payment = world["payment"]
    client.post(
        "/admin/payments/payment/",
        {"action": "record_refund", "_selected_action": [str(payment.pk)], "index": "0"},
    )
    payment.refresh_from_db()
    assert payment.status == "refunded"
    # The whole id, as a key: nothing cut off.
    assert payment.refunded_by_id == cashier.pk


def test_a_refund_reference_too_long_to_store_is_refused_not_cut(world: dict[str, Any]) -> None:
    from payments import actions as payment_actions

    payment: Payment = world["payment"]
    with pytest.raises(ValueError, match="at most 40 characters"):
        payment_actions.mark_refunded(payment.pk, reference="gateway-refund-" + "9" * 26)
    payment.refresh_from_db()
    assert (payment.status, payment.refund_reason) == ("paid", "")
    payment_actions.mark_refunded(payment.pk, reference="gateway-refund-" + "9" * 25)
    payment.refresh_from_db()
    assert (payment.status, payment.refund_reason) == ("refunded", "gateway-refund-" + "9" * 25)


JOBS = "/admin/procrastinate/procrastinatejob/"
JOB_ACTIONS = ("retry", "cancel", "abort")


def job_staff(*codenames: str) -> User:
    staff = make_user(password=None, is_staff=True, full_name="Vận Hành")
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="procrastinate", codename__in=codenames)
    )
    return staff


def test_staff_who_only_view_jobs_cannot_retry_cancel_or_abort_them(
    world: dict[str, Any],
) -> None:
    viewer = job_staff("view_procrastinatejob")
    client = Client()
    client.force_login(viewer)
    ids = list(world["jobs"].values())
    before = job_states(ids)

    listing = client.get(JOBS)
    assert listing.status_code == 200  # they still see the jobs
    assert f"{JOBS}{world['jobs']['failed']}/change/" in listing.content.decode()
    action_form = listing.context["action_form"]  # None: no action offered at all
    offered = [name for name, _label in action_form.fields["action"].choices] if action_form else []
    assert not set(offered) & set(JOB_ACTIONS)
    for action in JOB_ACTIONS:
        client.post(JOBS, {"action": action, "_selected_action": ids, "index": "0"})

    assert job_states(ids) == before
    assert not LogEntry.objects.filter(user=viewer).exists()
    # Nor when called past the action list's filter (each action checks again).
    model_admin = admin.site._registry[ProcrastinateJob]
    request = listing.wsgi_request
    for action in JOB_ACTIONS:
        with pytest.raises(DjangoPermissionDenied):
            getattr(model_admin, action)(request, ProcrastinateJob.objects.filter(pk__in=ids))
    assert job_states(ids) == before


@pytest.mark.parametrize("who", ["change permission", "superuser"])
def test_staff_allowed_to_change_jobs_retry_cancel_and_abort_them_on_the_record(
    world: dict[str, Any], who: str
) -> None:
    if who == "superuser":
        staff = make_user(password=None, is_staff=True, is_superuser=True)
    else:
        staff = job_staff("view_procrastinatejob", "change_procrastinatejob")
    client = Client()
    client.force_login(staff)
    jobs = world["jobs"]
    before = job_states(list(jobs.values()))

    action_form = client.get(JOBS).context["action_form"]
    offered = [name for name, _label in action_form.fields["action"].choices]
    assert set(JOB_ACTIONS) <= set(offered)
    # Cancel takes only "todo" jobs: on others it changes nothing, and records nothing.
    client.post(
        JOBS,
        {"action": "cancel", "_selected_action": [jobs["doing"], jobs["failed"]], "index": "0"},
    )
    assert job_states(list(jobs.values())) == before
    assert not LogEntry.objects.filter(user=staff).exists()
    for action, status in (("cancel", "todo"), ("abort", "doing"), ("retry", "failed")):
        client.post(JOBS, {"action": action, "_selected_action": [jobs[status]], "index": "0"})

    after = job_states(list(jobs.values()))
    assert after[jobs["todo"]] == ("cancelled", False, 0)
    assert after[jobs["doing"]] == ("doing", True, 0)  # the running task is asked to stop
    assert after[jobs["failed"]] == ("todo", False, 1)
    assert after[jobs["succeeded"]] == before[jobs["succeeded"]]
    records = LogEntry.objects.filter(
        user=staff, content_type__app_label="procrastinate", object_id__in=map(str, jobs.values())
    )
    assert sorted((int(r.object_id), r.get_change_message()) for r in records) == sorted(
        [
            (jobs["todo"], "Cancel (admin action): status todo → cancelled"),
            (jobs["doing"], "Abort (admin action): abort requested"),
            (jobs["failed"], "Retry (admin action): status failed → todo, attempts 0 → 1"),
        ]
    )
    # The record names the task, never its arguments (phone numbers, texts of SMS).
    assert {r.object_repr for r in records} == {
        f"tests.admin_job #{jobs[status]}" for status in ("todo", "doing", "failed")
    }
