"""The support console's reads of a citizen are audited look-ups, as the admin's are
(`auth.support_api`): opening a reset is a look-up of its citizen, reading the audit
trail of one account a look-up of that account, each recorded with the API's channel
once the answer is a success. A list of resets is none (the admin's list is none
either), nor is the whole trail, nor the citizen's own list (`my-audit`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from auth.actions import support
from auth.models import SupportAuditRecord, SupportReset, User
from tests.accounts.staff import client_for, make_citizen, make_staff
from tests.accounts.test_support_resets import RESETS, reset_body
from tests.conftest import ApiClient, ApiResponse, make_user, sign_in

pytestmark = pytest.mark.django_db

AUDIT = "/api/v1/support/audit"
MY_AUDIT = "/api/v1/support/my-audit"


def written(call: Callable[[], ApiResponse]) -> tuple[ApiResponse, list[tuple[Any, ...]]]:
    """The answer and the audit records the call wrote (actor, action, subject,
    channel, details)."""
    before = list(SupportAuditRecord.objects.values_list("pk", flat=True))
    response = call()
    rows = SupportAuditRecord.objects.exclude(pk__in=before).order_by("pk")
    return response, list(
        rows.values_list("actor_id", "action", "subject_id", "channel", "details")
    )


def statuses(*answers: tuple[ApiResponse, list[Any]]) -> list[tuple[int, list[Any]]]:
    return [(response.status_code, records) for response, records in answers]


@pytest.fixture
def pending() -> SupportReset:
    """A reset of a level-2 account, waiting for a second staff member."""
    citizen = make_citizen(level=User.Level.IDENTITY, full_name="Vũ Thị Được Hỗ Trợ")
    response = client_for(make_staff()).post(RESETS, reset_body(citizen))
    assert response.status_code == 201, response.content
    return SupportReset.objects.get(user=citizen)


# --- A reset ------------------------------------------------------------------------------


def test_opening_a_reset_is_a_look_up_of_its_citizen_its_list_none(pending: SupportReset) -> None:
    checker = make_staff(full_name="Ngô Văn Duyệt")
    client = client_for(checker)

    pending_list = written(lambda: client.get(RESETS, query={"status": "pending"}))
    every_reset = written(lambda: client.get(RESETS))
    opened = written(lambda: client.get(f"{RESETS}/{pending.pk}"))

    assert statuses(pending_list, every_reset) == [(200, []), (200, [])]
    listed = pending_list[0].json()["items"]
    assert [item["account"]["id"] for item in listed] == [str(pending.user_id)]
    response, records = opened
    assert response.status_code == 200
    assert response.json()["account"]["id"] == str(pending.user_id)
    assert records == [
        (checker.id, "lookup", pending.user_id, "api", {"by": "support_reset", "found": True})
    ]


def test_a_reset_is_a_look_up_only_once_shown(pending: SupportReset) -> None:
    without_totp = client_for(make_staff(totp=False))
    citizen = client_for(make_user())
    checker = make_staff()
    support_staff = client_for(checker)

    refused = written(lambda: without_totp.get(f"{RESETS}/{pending.pk}"))
    a_citizens = written(lambda: citizen.get(f"{RESETS}/{pending.pk}"))
    unknown = written(lambda: support_staff.get(f"{RESETS}/{uuid.uuid4()}"))
    shown = written(lambda: support_staff.get(f"{RESETS}/{pending.pk}"))

    assert statuses(refused, a_citizens, unknown) == [(403, []), (403, []), (404, [])]
    assert statuses(shown) == [
        (
            200,
            [
                (
                    checker.id,
                    "lookup",
                    pending.user_id,
                    "api",
                    {"by": "support_reset", "found": True},
                )
            ],
        )
    ]


# --- The audit trail ----------------------------------------------------------------------


def test_the_audit_trail_of_one_account_is_a_look_up_of_it_the_whole_trail_none(
    pending: SupportReset,
) -> None:
    reader = make_staff(full_name="Trịnh Thị Đọc")
    client = client_for(reader)

    whole = written(lambda: client.get(AUDIT))
    of_nobody = written(lambda: client.get(AUDIT, query={"user_id": str(uuid.uuid4())}))
    response, records = written(lambda: client.get(AUDIT, query={"user_id": str(pending.user_id)}))

    assert statuses(whole, of_nobody) == [(200, []), (200, [])]
    assert [item["action"] for item in whole[0].json()["items"]] == ["reset_opened"]
    assert of_nobody[0].json()["items"] == []  # an id no account has names nobody
    assert response.status_code == 200
    assert records == [
        (reader.id, "lookup", pending.user_id, "api", {"by": "audit_trail", "found": True})
    ]
    # The page read is the trail before this reading: its own record is on the next one.
    assert [item["action"] for item in response.json()["items"]] == ["reset_opened"]


def test_the_trail_of_an_account_is_a_look_up_only_once_shown(pending: SupportReset) -> None:
    of_the_citizen = {"user_id": str(pending.user_id)}
    without_totp = client_for(make_staff(totp=False))
    citizen = client_for(make_user())
    reader = make_staff()
    support_staff = client_for(reader)

    refused = written(lambda: without_totp.get(AUDIT, query=of_the_citizen))
    a_citizens = written(lambda: citizen.get(AUDIT, query=of_the_citizen))
    bad_cursor = written(
        lambda: support_staff.get(AUDIT, query={**of_the_citizen, "cursor": "not-a-cursor"})
    )
    shown = written(lambda: support_staff.get(AUDIT, query=of_the_citizen))

    assert statuses(refused, a_citizens, bad_cursor) == [(403, []), (403, []), (422, [])]
    assert bad_cursor[0].json()["details"][0]["code"] == "invalid_cursor"
    assert statuses(shown) == [
        (200, [(reader.id, "lookup", pending.user_id, "api", {"by": "audit_trail", "found": True})])
    ]


def test_ones_own_support_actions_are_no_look_up_ones_trail_in_the_console_is(
    pending: SupportReset,
) -> None:
    """`my-audit` is a citizen's own list, a staff member's too (an account like any);
    the console's trail of an account is a look-up of it, whoever's it is."""
    staff = make_staff()
    support.record_look_up(make_staff(), staff, context=support.Context(channel="admin"), by="id")
    as_staff = client_for(staff)
    as_citizen = ApiClient(token=sign_in(pending.user)[1].access_token)

    staffs_own = written(lambda: as_staff.get(MY_AUDIT))
    citizens_own = written(lambda: as_citizen.get(MY_AUDIT))
    staffs_trail = written(lambda: as_staff.get(AUDIT, query={"user_id": str(staff.id)}))

    assert statuses(staffs_own, citizens_own) == [(200, []), (200, [])]
    assert [item["action"] for item in staffs_own[0].json()["items"]] == ["lookup"]
    assert [item["action"] for item in citizens_own[0].json()["items"]] == ["reset_opened"]
    assert statuses(staffs_trail) == [
        (200, [(staff.id, "lookup", staff.id, "api", {"by": "audit_trail", "found": True})])
    ]
