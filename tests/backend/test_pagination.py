import uuid

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from auth.models import User
from backend.errors import Unprocessable
from backend.pagination import PageParams, cursor_values, encode_cursor, paginate
from dossiers.models import Procedure
from tests.conftest import ApiClient, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.backend.conventions_api")]


def test_cursor_walks_every_row_once_in_order(api: ApiClient) -> None:
    for i in range(7):
        make_user(f"+8490000{i:04d}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/test/users", query=query).json()
        seen += [item["phone"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = list(User.objects.order_by("-date_joined", "-id").values_list("phone", flat=True))
    assert seen == expected
    assert len(seen) == 7
    assert pages == 3


def test_new_rows_do_not_shift_the_next_page(api: ApiClient) -> None:
    for i in range(4):
        make_user(f"+8490000{i:04d}")
    first = api.get("/api/test/users", query={"limit": 2}).json()
    make_user("+84900009999")  # arrives between page loads, sorts first
    second = api.get("/api/test/users", query={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [i["phone"] for i in second["items"]] == ["+84900000001", "+84900000000"]


def test_limit_is_capped_by_setting(api: ApiClient, settings) -> None:
    settings.API_PAGE_SIZE_MAX = 2
    for i in range(3):
        make_user(f"+8490000{i:04d}")
    body = api.get("/api/test/users", query={"limit": 50}).json()
    assert len(body["items"]) == 2
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWpzb24", "WzEsMiwzXQ"])
def test_bad_cursor_is_a_field_error(api: ApiClient, cursor: str) -> None:
    response = api.get("/api/test/users", query={"cursor": cursor})
    assert response.status_code == 422
    [detail] = response.json()["details"]
    assert (detail["field"], detail["location"], detail["code"]) == (
        "cursor",
        "query",
        "invalid_cursor",
    )


@pytest.mark.parametrize(
    "values",
    [
        ["garbage", 1],  # not a moment
        ["2026-03-10T08:00:00+07:00", "not-an-id"],
        ["2026-03-10T08:00:00", 1],  # a moment without its offset
        [None, 1],
        [True, 1],
        [{"a": 1}, 1],
        [[1], 2],
    ],
)
def test_a_well_encoded_cursor_with_wrong_values_is_a_field_error(
    api: ApiClient, values: list
) -> None:
    make_user("+84900000001")
    response = api.get("/api/test/users", query={"cursor": encode_cursor(values)})
    assert response.status_code == 422, response
    assert response.json()["details"][0]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("model", "field", "accepted", "refused"),
    [
        (User, "id", str(uuid.uuid4()), [uuid.uuid4().int, 1.5]),
        (User, "date_joined", "2026-03-10T08:00:00+07:00", [1_700_000_000, 1.5]),
        (User, "phone", "+84900000001", [84900000001, 1.5]),  # text
        (Procedure, "id", 7, ["7", 7.0, 7.5, True]),  # an integer
        (Procedure, "processing_time", 3, ["3", 3.0]),
    ],
)
def test_each_cursor_value_has_the_json_type_its_field_is_written_as(
    model: type[Model], field: str, accepted: object, refused: list[object]
) -> None:
    """What `encode_cursor` writes: a number for an integer column, text for any other
    (a moment, an id, a code). Anything else was never a cursor of ours, whatever
    `to_python` would make of it."""
    assert cursor_values(model, [field], encode_cursor([accepted])) == [
        model._meta.get_field(field).to_python(accepted)
    ]
    for value in refused:
        with pytest.raises(Unprocessable) as caught:
            cursor_values(model, [field], encode_cursor([value]))
        assert caught.value.details[0]["code"] == "invalid_cursor", value


def test_the_cursor_is_one_row_value_the_index_can_start_at() -> None:
    for i in range(3):
        make_user(f"+8490000{i:04d}")
    first, cursor = paginate(User.objects.all(), PageParams(limit=2), ("-date_joined", "-id"))
    with CaptureQueriesContext(connection) as captured:
        second, _ = paginate(
            User.objects.all(), PageParams(limit=2, cursor=cursor), ("-date_joined", "-id")
        )
    [query] = captured.captured_queries
    assert '("accounts_user"."date_joined", "accounts_user"."id") <' in query["sql"]
    assert " OR " not in query["sql"]
    assert [u.pk for u in first + second] == list(
        User.objects.order_by("-date_joined", "-id").values_list("pk", flat=True)
    )


def test_an_ordering_that_goes_both_ways_is_refused() -> None:
    with pytest.raises(ValueError, match="one way"):
        paginate(User.objects.all(), PageParams(), ("-date_joined", "id"))


@pytest.mark.parametrize(("limit", "status"), [(1000, 200), (1001, 422), (0, 422)])
def test_limit_bounds_are_the_documented_ones(api: ApiClient, limit: int, status: int) -> None:
    """README (Lists and pagination): up to 1000 is accepted (then cut), beyond is 422."""
    response = api.get("/api/test/users", query={"limit": limit})
    assert response.status_code == status
    if status == 422:
        [detail] = response.json()["details"]
        assert (detail["field"], detail["location"]) == ("limit", "query")
