import datetime as dt

import pytest

from auth.citizen_ids import PROVINCE_CODES, century_digit, validate_citizen_id
from auth.models import CitizenIdConflict
from backend.errors import Unprocessable
from tests.accounts.staff import client_for, make_staff
from tests.conftest import ApiClient, make_user, sign_in


def _code(exc: pytest.ExceptionInfo[Unprocessable]) -> str:
    return exc.value.details[0]["code"]


def test_the_63_pre_2025_province_codes_are_known() -> None:
    assert len(PROVINCE_CODES) == 63
    assert PROVINCE_CODES["001"] == "Hà Nội"
    assert PROVINCE_CODES["079"] == "Hồ Chí Minh"
    assert PROVINCE_CODES["096"] == "Cà Mau"
    assert "003" not in PROVINCE_CODES


@pytest.mark.parametrize(
    ("citizen_id", "birth_date"),
    [
        ("001090012345", dt.date(1990, 5, 1)),  # Hà Nội, male, 1990
        ("079185012345", dt.date(1985, 1, 31)),  # HCMC, female, 1985
        ("036205000001", dt.date(2005, 12, 31)),  # Nam Định, male, 2005
        ("096300123456", dt.date(2000, 2, 29)),  # Cà Mau, female, 2000
    ],
)
def test_consistent_citizen_ids_are_accepted(citizen_id: str, birth_date: dt.date) -> None:
    assert validate_citizen_id(citizen_id, birth_date) == citizen_id


def test_century_digit_follows_century_and_gender() -> None:
    assert century_digit(dt.date(1999, 1, 1), female=False) == 0
    assert century_digit(dt.date(1999, 1, 1), female=True) == 1
    assert century_digit(dt.date(2001, 1, 1), female=False) == 2
    assert century_digit(dt.date(2001, 1, 1), female=True) == 3
    assert century_digit(dt.date(2100, 1, 1), female=True) == 5


@pytest.mark.parametrize(
    ("citizen_id", "code"),
    [
        ("00109001234", "invalid_citizen_id"),  # 11 digits
        ("0010900123456", "invalid_citizen_id"),  # 13 digits
        ("00109001234a", "invalid_citizen_id"),
        ("003090012345", "invalid_citizen_id_province"),  # 003 is no province
        ("097090012345", "invalid_citizen_id_province"),
        ("001290012345", "invalid_citizen_id_century"),  # 2 = 21st century, born 1990
        ("001091012345", "invalid_citizen_id_birth_year"),  # 91 for a 1990 birth
    ],
)
def test_inconsistent_citizen_ids_are_refused(citizen_id: str, code: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_citizen_id(citizen_id, dt.date(1990, 5, 1))
    assert _code(caught) == code


def test_birth_date_in_the_future_is_refused() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate_citizen_id("001490012345", dt.date(2190, 1, 1))
    assert caught.value.details[0]["field"] == "birth_date"


def test_identity_is_set_through_the_api_and_shown_masked(user, user_api) -> None:
    response = user_api.patch(
        "/api/v1/auth/me/identity", {"citizen_id": "001090012345", "birth_date": "1990-05-01"}
    )
    assert response.status_code == 200
    assert response.json()["citizen_id"] == "•••••••••345"
    assert response.json()["birth_date"] == "1990-05-01"
    user.refresh_from_db()
    assert user.citizen_id == "001090012345"
    assert user.verification_level == 1


IDENTITY = "/api/v1/auth/me/identity"


def test_a_citizen_id_of_another_account_is_not_confirmed_but_flagged(user, user_api) -> None:
    """Issue 13 #5: the answer for a number another account holds is the answer for a
    free one; the claim is kept aside for support and the holder keeps the number."""
    holder = make_user(citizen_id="001090012345", birth_date=dt.date(1990, 5, 1))
    other = make_user()
    other_api = ApiClient(token=sign_in(other)[1].access_token)

    held = user_api.patch(IDENTITY, {"citizen_id": "001090012345", "birth_date": "1990-05-01"})
    free = other_api.patch(IDENTITY, {"citizen_id": "001090054321", "birth_date": "1990-05-01"})

    assert held.status_code == free.status_code == 200
    assert held.json()["citizen_id"] == "•••••••••345"
    assert set(held.json()) == set(free.json())
    assert held.json()["verification_level"] == free.json()["verification_level"] == 1
    user.refresh_from_db()
    assert user.citizen_id is None
    holder.refresh_from_db()
    assert holder.citizen_id == "001090012345"
    conflict = CitizenIdConflict.objects.get()
    assert (conflict.citizen_id, conflict.verified_user, conflict.declared_by) == (
        "001090012345",
        user,
        holder,
    )
    assert (conflict.source, conflict.resolved_at) == (CitizenIdConflict.Source.DECLARED, None)
    # The me endpoint shows it as entered too.
    assert user_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••345"


def test_support_look_up_shows_the_conflict(user, user_api) -> None:
    make_user(citizen_id="001090012345", birth_date=dt.date(1990, 5, 1))
    user_api.patch(IDENTITY, {"citizen_id": "001090012345", "birth_date": "1990-05-01"})
    staff = client_for(make_staff())
    found = staff.post("/api/v1/support/lookup", {"phone": user.phone})
    assert found.status_code == 200
    assert found.json()["citizen_id_conflict"] is True
    assert found.json()["citizen_id_masked"] == ""


def test_entering_a_free_number_clears_an_earlier_conflict(user, user_api) -> None:
    make_user(citizen_id="001090012345", birth_date=dt.date(1990, 5, 1))
    user_api.patch(IDENTITY, {"citizen_id": "001090012345", "birth_date": "1990-05-01"})
    response = user_api.patch(IDENTITY, {"citizen_id": "001090054321", "birth_date": "1990-05-01"})
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.citizen_id == "001090054321"
    assert CitizenIdConflict.objects.get().resolved_at is not None
    assert user_api.get("/api/v1/auth/me").json()["citizen_id"] == "•••••••••321"


def test_citizen_id_entries_are_limited_per_account_at_the_boundary(
    user, user_api, settings
) -> None:
    settings.CITIZEN_ID_CHANGES_PER_USER_PER_DAY = 3
    numbers = ["001090000001", "001090000002", "001090000003", "001090000004"]
    for number in numbers[:3]:
        ok = user_api.patch(IDENTITY, {"citizen_id": number, "birth_date": "1990-05-01"})
        assert ok.status_code == 200
    refused = user_api.patch(IDENTITY, {"citizen_id": numbers[3], "birth_date": "1990-05-01"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "identity_changes_exceeded"
    assert int(refused.headers["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.citizen_id == numbers[2]


def test_citizen_id_entries_are_limited_per_client_address(db, settings) -> None:
    settings.CITIZEN_ID_CHANGES_PER_IP_PER_DAY = 2
    clients = [ApiClient(token=sign_in(make_user())[1].access_token) for _ in range(3)]
    body = {"citizen_id": "001090000001", "birth_date": "1990-05-01"}
    assert clients[0].patch(IDENTITY, body).status_code == 200
    assert clients[1].patch(IDENTITY, body).status_code == 200
    third = clients[2].patch(IDENTITY, body)
    assert third.status_code == 429
    assert third.json()["code"] == "identity_changes_exceeded"


def test_citizen_id_entries_count_an_ipv6_host_by_its_network(db, settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.CITIZEN_ID_CHANGES_PER_IP_PER_DAY = 2
    clients = [ApiClient(token=sign_in(make_user())[1].access_token) for _ in range(4)]
    body = {"citizen_id": "001090000001", "birth_date": "1990-05-01"}

    def enter(index: int, address: str) -> int:
        headers = {"X-Forwarded-For": address}
        return clients[index].patch(IDENTITY, body, headers=headers).status_code

    assert [enter(0, "2001:db8:1:2::1"), enter(1, "2001:db8:1:2::2")] == [200, 200]
    assert enter(2, "2001:db8:1:2:ffff::3") == 429
    assert enter(3, "2001:db8:1:3::1") == 200


def test_invalid_citizen_id_through_the_api_is_a_field_error(user_api) -> None:
    response = user_api.patch(
        "/api/v1/auth/me/identity", {"citizen_id": "001290012345", "birth_date": "1990-05-01"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0] == {
        "field": "citizen_id",
        "location": "body",
        "code": "invalid_citizen_id_century",
        "message": response.json()["details"][0]["message"],
    }
