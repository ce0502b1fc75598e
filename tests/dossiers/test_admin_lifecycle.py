"""Agency officers act on dossiers in the Django admin through the same lifecycle."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from auth.models import User
from dossiers.agency.credentials import decrypt_secret
from dossiers.models import (
    Agency,
    AgencyCredential,
    AgencyOfficer,
    Dossier,
    DossierEvent,
    SupplementRequest,
)
from tests.conftest import make_user
from tests.factories import make_agency, make_dossier, make_procedure

pytestmark = pytest.mark.django_db
S = Dossier.Status


def dossier_of(agency: Agency, status: int = S.NEW, **extra: object) -> Dossier:
    return make_dossier(
        make_user(password=None), make_procedure(agency, documents=2), status=status, **extra
    )


def officer_of(agency: Agency) -> User:
    user = make_user(password=None, is_staff=True, full_name="Cán bộ Một Cửa")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_dossier", "change_dossier"], content_type__app_label="dossiers"
        )
    )
    AgencyOfficer.objects.create(agency=agency, user=user)
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def action_url(dossier: Dossier, action: str) -> str:
    return f"/admin/dossiers/dossier/{dossier.pk}/lifecycle/{action}/"


def test_officer_sees_the_allowed_actions_and_accepts(agency: Agency) -> None:
    dossier = dossier_of(agency)
    officer = officer_of(agency)
    client = client_for(officer)
    page = client.get(f"/admin/dossiers/dossier/{dossier.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert action_url(dossier, "accept") in html
    assert action_url(dossier, "refuse") in html
    assert action_url(dossier, "complete") not in html
    response = client.post(action_url(dossier, "accept"), {"receipt_number": "BN-7"})
    assert response.status_code == 302
    dossier.refresh_from_db()
    assert dossier.status == S.ACCEPTED
    event = DossierEvent.objects.get(dossier=dossier)
    assert (event.type, event.actor_type, event.actor_user_id, event.actor_label) == (
        "dossier.accepted",
        "officer",
        officer.pk,
        "Cán bộ Một Cửa",
    )
    assert event.data["receipt_number"] == "BN-7"


def test_officer_requests_a_supplement_with_codes_and_free_text(agency: Agency) -> None:
    dossier = dossier_of(agency, S.PROCESSING, appointment_at=timezone.now() + dt.timedelta(days=2))
    client = client_for(officer_of(agency))
    response = client.post(
        action_url(dossier, "request_supplement"),
        {"codes": ["doc-2"], "other": "Giấy ủy quyền\n\n", "message": "Vui lòng bổ sung"},
    )
    assert response.status_code == 302
    request = SupplementRequest.objects.get(dossier=dossier)
    assert [(d["code"], d["note"]) for d in request.documents] == [
        ("doc-2", ""),
        ("", "Giấy ủy quyền"),
    ]
    dossier.refresh_from_db()
    assert dossier.status == S.SUPPLEMENT_REQUESTED
    assert dossier.paused_at is not None


def test_officer_apologises_with_a_new_date(agency: Agency) -> None:
    current = timezone.now() - dt.timedelta(hours=1)
    dossier = dossier_of(agency, S.PROCESSING, appointment_at=current)
    client = client_for(officer_of(agency))
    new_local = timezone.localtime(current + dt.timedelta(days=3)).replace(second=0, microsecond=0)
    response = client.post(
        action_url(dossier, "apologise"),
        {"new_appointment_at": new_local.strftime("%Y-%m-%dT%H:%M"), "reason": "Chờ xác minh"},
    )
    assert response.status_code == 302
    dossier.refresh_from_db()
    assert dossier.appointment_at == new_local
    assert dossier.original_appointment_at == current


def test_forbidden_transition_in_the_admin_writes_nothing(agency: Agency) -> None:
    dossier = dossier_of(agency, S.HANDED_OVER)
    client = client_for(officer_of(agency))
    response = client.post(
        action_url(dossier, "stop"), {"reason": "x"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 200
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts == ["This cannot be done while the dossier is “Result handed over”."]
    dossier.refresh_from_db()
    assert dossier.status == S.HANDED_OVER
    assert DossierEvent.objects.filter(dossier=dossier).count() == 0


def test_officer_of_another_agency_cannot_see_or_act(agency: Agency) -> None:
    dossier = dossier_of(agency)
    stranger = client_for(officer_of(make_agency()))
    assert stranger.get(f"/admin/dossiers/dossier/{dossier.pk}/change/").status_code == 302
    assert stranger.post(action_url(dossier, "accept"), {}).status_code == 404
    listing = stranger.get("/admin/dossiers/dossier/")
    assert dossier.code not in listing.content.decode()
    dossier.refresh_from_db()
    assert dossier.status == S.NEW


def test_bulk_accept_reports_the_ones_that_cannot_move(agency: Agency) -> None:
    fresh, old = dossier_of(agency), dossier_of(agency, S.PROCESSING)
    client = client_for(officer_of(agency))
    response = client.post(
        "/admin/dossiers/dossier/",
        {"action": "accept_selected", "_selected_action": [str(fresh.pk), str(old.pk)]},
    )
    assert response.status_code == 302
    fresh.refresh_from_db()
    old.refresh_from_db()
    assert (fresh.status, old.status) == (S.ACCEPTED, S.PROCESSING)
    assert DossierEvent.objects.filter(dossier=old).count() == 0


def test_violation_filter_lists_overdue_dossiers_without_apology(agency: Agency) -> None:
    past = timezone.now() - dt.timedelta(hours=1)
    violation = dossier_of(agency, S.PROCESSING, appointment_at=past)
    fine = dossier_of(agency, S.PROCESSING, appointment_at=past + dt.timedelta(days=3))
    client = client_for(officer_of(agency))
    html = client.get("/admin/dossiers/dossier/?deadline=violation").content.decode()
    assert violation.code in html
    assert fine.code not in html


def test_admin_creates_a_credential_and_shows_the_secret_once(agency: Agency) -> None:
    admin_user = make_user(password=None, is_staff=True, is_superuser=True)
    client = client_for(admin_user)
    response = client.post(
        "/admin/dossiers/agencycredential/add/",
        {"agency": agency.pk, "label": "Một cửa điện tử", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    credential = AgencyCredential.objects.get(agency=agency)
    secret = decrypt_secret(credential.secret_encrypted)
    assert response.context["secrets"] == [(credential.key_id, secret)]
    assert secret in response.content.decode()
    assert [str(m) for m in get_messages(response.wsgi_request)] == []  # not in a cookie
    # Later pages never show it again.
    page = client.get(f"/admin/dossiers/agencycredential/{credential.pk}/change/")
    assert secret not in page.content.decode()
    listing = client.get("/admin/dossiers/agencycredential/")
    assert secret not in listing.content.decode()
    rotated = client.post(
        "/admin/dossiers/agencycredential/",
        {"action": "rotate_secrets", "_selected_action": [str(credential.pk)]},
    )
    credential.refresh_from_db()
    new_secret = decrypt_secret(credential.secret_encrypted)
    assert new_secret != secret
    assert decrypt_secret(credential.previous_secret_encrypted) == secret
    assert rotated.context["secrets"] == [(credential.key_id, new_secret)]


def test_performance_page_for_an_officer_shows_their_agency_figures(agency: Agency) -> None:
    from zoneinfo import ZoneInfo

    vn = ZoneInfo("Asia/Ho_Chi_Minh")
    dossier_of(agency, S.RESULT_READY, channel=Dossier.Channel.ONLINE,
               submitted_at=dt.datetime(2026, 3, 2, 9, tzinfo=vn),
               accepted_at=dt.datetime(2026, 3, 2, 9, tzinfo=vn),
               appointment_at=dt.datetime(2026, 3, 4, 9, tzinfo=vn),
               finished_at=dt.datetime(2026, 3, 3, 9, tzinfo=vn))  # fmt: skip
    dossier_of(make_agency(), S.NEW, submitted_at=dt.datetime(2026, 3, 2, 9, tzinfo=vn))
    client = client_for(officer_of(agency))
    page = client.get(
        "/admin/dossiers/dossier/performance/",
        {"date_from": "2026-03-02", "date_to": "2026-03-06", "agency": agency.pk},
    )
    assert page.status_code == 200
    figures = page.context["figures"]
    assert figures["received"]["total"] == 1
    assert figures["finished"] == {"total": 1, "on_time": 1, "late": 0, "on_time_share": 1.0}
    assert figures["average_processing_hours"] == 8.0
    # Another agency is not a valid choice for this officer.
    other = client.get(
        "/admin/dossiers/dossier/performance/",
        {"date_from": "2026-03-02", "date_to": "2026-03-06", "agency": make_agency().pk},
    )
    assert other.context["figures"] is None
    assert "agency" in other.context["form"].errors


def view_only_officer_of(agency: Agency) -> User:
    user = make_user(password=None, is_staff=True, full_name="Cán bộ Chỉ Xem")
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_dossier", "view_agencycredential"],
            content_type__app_label="dossiers",
        )
    )
    AgencyOfficer.objects.create(agency=agency, user=user)
    return user


def test_view_only_officer_cannot_rotate_any_secret_or_read_one(agency: Agency) -> None:
    from dossiers.agency.credentials import create_credential

    own, _ = create_credential(agency, "own")
    other, _ = create_credential(make_agency(), "other")
    before = {c.pk: c.secret_encrypted for c in AgencyCredential.objects.all()}
    client = client_for(view_only_officer_of(agency))

    listing = client.get("/admin/dossiers/agencycredential/").content.decode()
    response = client.post(
        "/admin/dossiers/agencycredential/",
        {"action": "rotate_secrets", "_selected_action": [own.pk, other.pk], "index": "0"},
    )

    assert own.key_id in listing
    assert other.key_id not in listing  # another agency's credentials are not listed
    assert "rotate_secrets" not in listing  # nor offered
    # No action is offered to this officer: the post just shows the list again.
    assert response.status_code == 200
    assert "secrets" not in response.context
    after = {c.pk: c.secret_encrypted for c in AgencyCredential.objects.all()}
    assert after == before
    assert not AgencyCredential.objects.filter(rotated_at__isnull=False).exists()


def test_view_only_officer_cannot_accept_through_the_bulk_action(agency: Agency) -> None:
    dossier = dossier_of(agency)
    client = client_for(view_only_officer_of(agency))

    client.post(
        "/admin/dossiers/dossier/",
        {"action": "accept_selected", "_selected_action": [str(dossier.pk)], "index": "0"},
    )

    dossier.refresh_from_db()
    assert dossier.status == S.NEW
    assert DossierEvent.objects.filter(dossier=dossier).count() == 0


def roster_keeper_of(agency: Agency) -> User:
    """An officer who may add, change and delete officers (an agency's own admin)."""
    user = officer_of(agency)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "view_agencyofficer",
                "add_agencyofficer",
                "change_agencyofficer",
                "delete_agencyofficer",
            ],
            content_type__app_label="dossiers",
        )
    )
    return user


def test_an_officer_cannot_attach_anyone_to_another_agency(agency: Agency) -> None:
    keeper = roster_keeper_of(agency)
    other = make_agency()
    colleague = make_user(password=None, is_staff=True)
    client = client_for(keeper)

    form = client.get("/admin/dossiers/agencyofficer/add/")
    to_other = client.post(
        "/admin/dossiers/agencyofficer/add/", {"user": keeper.pk, "agency": other.pk}
    )
    to_own = client.post(
        "/admin/dossiers/agencyofficer/add/", {"user": colleague.pk, "agency": agency.pk}
    )

    assert str(other.pk) not in [
        str(v) for v, _ in form.context["adminform"].form.fields["agency"].choices
    ]
    assert to_other.status_code == 200  # the form answers "not one of the choices"
    assert "agency" in to_other.context["adminform"].form.errors
    assert not AgencyOfficer.objects.filter(agency=other).exists()  # nothing was saved
    assert to_own.status_code == 302
    assert AgencyOfficer.objects.filter(agency=agency, user=colleague).exists()


def test_an_officer_sees_and_removes_only_their_own_agencies_officers(agency: Agency) -> None:
    keeper = roster_keeper_of(agency)
    other = make_agency()
    stranger = AgencyOfficer.objects.create(agency=other, user=make_user(password=None))
    client = client_for(keeper)

    listing = client.get("/admin/dossiers/agencyofficer/")
    page = client.get(f"/admin/dossiers/agencyofficer/{stranger.pk}/change/")
    delete = client.post(
        "/admin/dossiers/agencyofficer/",
        {"action": "delete_selected", "_selected_action": [stranger.pk], "post": "yes"},
    )
    direct = client.post(f"/admin/dossiers/agencyofficer/{stranger.pk}/delete/", {"post": "yes"})

    assert [row.pk for row in listing.context["cl"].result_list] == [
        AgencyOfficer.objects.get(user=keeper).pk
    ]
    assert page.status_code == 302  # not in the officer's queryset: "does not exist"
    assert delete.status_code in (200, 302)
    assert direct.status_code == 302
    assert AgencyOfficer.objects.filter(pk=stranger.pk).exists()  # nothing was deleted
