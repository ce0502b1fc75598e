"""Citizen ID conflicts have one record, `CitizenIdConflict`, whichever way the number
was claimed: entered in the app (`accounts.set_identity`) or asserted by a national
identity (`national_sign_in`). The app's "as entered" number, support's look-up and
the admin's pages read it, so what one shows the others show too.

Before, a number entered in the app was kept on the account (`citizen_id_conflict`):
support's look-up and the user pages saw only those, the conflicts' pages only the
national ones, and the column stayed set after the account got the number.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from auth.models import CitizenIdConflict, User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.conftest import last_code
from tests.accounts.national import LINK_VERIFY, national_callback
from tests.accounts.staff import client_for, make_staff
from tests.accounts.test_support_admin import admin_client
from tests.conftest import ApiClient, make_user, sign_in

pytestmark = pytest.mark.django_db

PERSON = default_person()  # the national identity asserts PERSON["citizen_id"]
BORN = PERSON["birthdate"]
IDENTITY = "/api/v1/auth/me/identity"
OTHER = "001190054321"  # another number consistent with the same birth date
THIRD = "001190067890"
DECLARED = CitizenIdConflict.Source.DECLARED
NATIONAL = CitizenIdConflict.Source.NATIONAL


def api_of(user: User) -> ApiClient:
    return ApiClient(token=sign_in(user)[1].access_token)


def enter(user_api: ApiClient, number: str) -> None:
    response = user_api.patch(IDENTITY, {"citizen_id": number, "birth_date": BORN})
    assert response.status_code == 200, response


def support_sees_a_conflict(user: User) -> bool:
    found = client_for(make_staff()).post("/api/v1/support/lookup", {"phone": user.phone})
    assert found.status_code == 200, found
    conflict: bool = found.json()["citizen_id_conflict"]
    return conflict


def listed_in_conflict() -> set[Any]:
    root = Client()
    root.force_login(make_user(is_staff=True, is_superuser=True, full_name="Quản Trị"))
    listing = root.get(reverse("admin:accounts_user_changelist"), {"citizen_id_conflict": "yes"})
    assert listing.status_code == 200
    return {row.pk for row in listing.context["cl"].result_list}


def link_national_identity(api: ApiClient, account: User) -> None:
    """The identity (PERSON) links to `account`, which proves control of its phone."""
    link = national_callback(api).json()["link"]
    linked = api.post(
        LINK_VERIFY,
        {"flow_id": link["flow_id"], "method": "sms_otp", "code": last_code(account.phone)},
    )
    assert linked.status_code == 200, linked


def conflicts() -> list[tuple[str, Any, Any, str, bool]]:
    return [
        (c.citizen_id, c.verified_user_id, c.declared_by_id, c.source, c.resolved_at is None)
        for c in CitizenIdConflict.objects.order_by("created_at", "pk")
    ]


# --- Entered in the app ------------------------------------------------------------------


def test_a_number_entered_in_the_app_and_held_elsewhere_is_a_conflict_row() -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    citizen_api = api_of(citizen)

    enter(citizen_api, OTHER)

    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, True)]
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"
    assert support_sees_a_conflict(citizen)
    assert listed_in_conflict() == {citizen.pk}


def test_entering_another_number_withdraws_the_earlier_claim() -> None:
    first, second = make_user(citizen_id=OTHER), make_user(citizen_id=THIRD)
    citizen = make_user()
    citizen_api = api_of(citizen)

    enter(citizen_api, OTHER)
    enter(citizen_api, THIRD)

    assert conflicts() == [
        (OTHER, citizen.pk, first.pk, DECLARED, False),
        (THIRD, citizen.pk, second.pk, DECLARED, True),
    ]
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••890"


def test_the_holder_correcting_its_number_leaves_the_entered_claim_open() -> None:
    """The number is not the claimant's until it is recorded: support still sees the
    claim, and the app still shows the number as entered."""
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    citizen_api = api_of(citizen)
    enter(citizen_api, OTHER)

    enter(api_of(holder), THIRD)

    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, True)]
    assert support_sees_a_conflict(citizen)
    assert citizen_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"
    # Entered again once free: the account holds it, and the claim is settled.
    enter(citizen_api, OTHER)
    citizen.refresh_from_db()
    assert citizen.citizen_id == OTHER
    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)


# --- Entered in the app, then asserted by the national identity ---------------------------


def test_the_national_identity_giving_the_entered_number_settles_the_claim(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=PERSON["citizen_id"])
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), PERSON["citizen_id"])
    enter(api_of(holder), OTHER)  # the holder corrects its number: it is free

    link_national_identity(api, citizen)

    citizen.refresh_from_db()
    assert citizen.citizen_id == PERSON["citizen_id"]
    assert citizen.citizen_id_verified_at is not None
    assert conflicts() == [(PERSON["citizen_id"], citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)
    assert listed_in_conflict() == set()


def test_the_national_identity_asserting_another_number_withdraws_the_entered_claim(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), OTHER)

    link_national_identity(api, citizen)

    citizen.refresh_from_db()
    assert citizen.citizen_id == PERSON["citizen_id"]
    assert conflicts() == [(OTHER, citizen.pk, holder.pk, DECLARED, False)]
    assert not support_sees_a_conflict(citizen)


def test_an_entered_claim_the_national_identity_asserts_becomes_the_identitys(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user(citizen_id=PERSON["citizen_id"])
    citizen = make_user(PERSON["phone_number"])
    enter(api_of(citizen), PERSON["citizen_id"])

    link_national_identity(api, citizen)

    assert conflicts() == [(PERSON["citizen_id"], citizen.pk, holder.pk, NATIONAL, True)]
    assert support_sees_a_conflict(citizen)


# --- Asserted by the national identity ----------------------------------------------------


def test_support_and_the_user_pages_see_a_conflict_the_national_identity_asserted(
    idp: FakeIdentityProvider, api: ApiClient
) -> None:
    holder = make_user("+84922222222", citizen_id=PERSON["citizen_id"])

    assert national_callback(api).status_code == 200

    created = User.objects.get(phone=PERSON["phone_number"])
    assert conflicts() == [(PERSON["citizen_id"], created.pk, holder.pk, NATIONAL, True)]
    assert support_sees_a_conflict(created)
    assert not support_sees_a_conflict(holder)  # it holds the number; it claims none
    assert listed_in_conflict() == {created.pk}
    # Settled once the holder corrects its number: support sees it go.
    enter(api_of(holder), OTHER)
    assert not support_sees_a_conflict(created)


def test_the_user_page_shows_both_sides_of_a_conflict() -> None:
    holder = make_user(citizen_id=OTHER)
    citizen = make_user()
    enter(api_of(citizen), OTHER)
    conflict = CitizenIdConflict.objects.get()
    root = make_staff(is_superuser=True)
    page = reverse("admin:accounts_citizenidconflict_change", args=[conflict.pk])

    support = admin_client(make_staff())
    claimant = support.get(reverse("admin:accounts_user_change", args=[citizen.pk]))
    held = support.get(reverse("admin:accounts_user_change", args=[holder.pk]))
    whole = admin_client(root).get(reverse("admin:accounts_user_change", args=[citizen.pk]))

    for response in (claimant, held, whole):
        assert response.status_code == 200
        assert page in response.content.decode()
    assert "•••••••••321" in claimant.content.decode()
    assert OTHER not in claimant.content.decode()
    assert OTHER not in held.content.decode()
    assert OTHER in whole.content.decode()


# --- The column no longer used (release 1 of 2) -------------------------------------------


def test_no_statement_names_the_old_column(user: User, user_api: ApiClient) -> None:
    make_user(citizen_id=OTHER)
    with CaptureQueriesContext(connection) as captured:
        enter(user_api, OTHER)
        user_api.get("/api/v1/auth/me")
        support_sees_a_conflict(user)
        make_user()
    assert any("INSERT INTO" in q["sql"] for q in captured.captured_queries)
    assert not [q["sql"] for q in captured.captured_queries if "citizen_id_conflict" in q["sql"]]
    with connection.cursor() as cursor:  # the previous release reads: no conflict
        cursor.execute("SELECT citizen_id_conflict FROM accounts_user WHERE id = %s", [user.pk])
        assert cursor.fetchone() == ("",)


def test_the_next_release_may_drop_the_old_column(user: User, user_api: ApiClient) -> None:
    # Release 2 drops it (README "Deploying"). (The test's transaction undoes the drop.)
    holder = make_user(citizen_id=OTHER)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_user DROP COLUMN citizen_id_conflict")
    enter(user_api, OTHER)
    assert user_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"
    assert conflicts() == [(OTHER, user.pk, holder.pk, DECLARED, True)]
    assert support_sees_a_conflict(user)


# --- The carry-over (migration 0016) ------------------------------------------------------

CARRY_OVER = importlib.import_module("auth.migrations.0016_citizen_id_conflicts_carried_over")


def carry_over() -> None:
    state = MigrationLoader(connection).project_state(
        ("accounts", "0016_citizen_id_conflicts_carried_over")
    )
    with connection.schema_editor(atomic=False) as editor:
        CARRY_OVER.carry_over(state.apps, editor)


def set_old_column(user: User, number: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET citizen_id_conflict = %s WHERE id = %s", [number, user.pk]
        )


def test_the_carry_over_makes_rows_of_the_old_column_in_batches(monkeypatch: Any) -> None:
    monkeypatch.setattr(CARRY_OVER, "BATCH", 2)
    holder = make_user(citizen_id=OTHER)
    claimant = make_user()  # entered a number another account holds
    set_old_column(claimant, OTHER)
    first, second = sorted([make_user(), make_user()], key=lambda u: u.pk)
    for user in (first, second):  # entered a number nobody holds any more
        set_old_column(user, THIRD)
    overtaken = make_user(citizen_id="001190011111", citizen_id_verified_at=timezone.now())
    set_old_column(overtaken, OTHER)  # its identity gave it a number since
    verified = make_user()
    waiting = make_user()  # a national identity asserted the free number: it waits for it
    CitizenIdConflict.objects.create(
        citizen_id="001190022222",
        verified_user=verified,
        declared_by=holder,
        resolved_at=timezone.now(),
    )
    set_old_column(waiting, "001190022222")

    carry_over()
    once = conflicts()
    carry_over()  # idempotent

    assert conflicts() == once
    assert sorted(once, key=lambda row: row[0]) == [
        ("001190022222", verified.pk, holder.pk, NATIONAL, False),
        (OTHER, claimant.pk, holder.pk, DECLARED, True),
        (THIRD, second.pk, first.pk, DECLARED, True),
    ]
    taken = dict(User.objects.values_list("pk", "citizen_id"))
    assert (taken[first.pk], taken[second.pk], taken[claimant.pk]) == (THIRD, None, None)
    assert (taken[overtaken.pk], taken[waiting.pk]) == ("001190011111", None)
