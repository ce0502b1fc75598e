"""JoinedRead builds the same instances as select_related + only, from one query."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection, transaction
from django.db.models import F, Value
from django.test.utils import CaptureQueriesContext

from auth.models import User
from auth.tokens import authenticate_access_token
from backend import joined_read
from backend.joined_read import JoinedRead
from dossiers.models import Dossier
from tests.concurrency import in_threads
from tests.conftest import make_user, sign_in
from tests.factories import make_dossier, make_organisation, make_procedure

pytestmark = pytest.mark.django_db

READ = JoinedRead(
    Dossier,
    ("code", "status", "applicant", "organisation"),
    related={"applicant": ("full_name",), "organisation": None},
    annotations={"applicant_phone": F("applicant__phone"), "answer": Value(42)},
)


def test_loads_the_fields_the_related_rows_and_the_annotations_in_one_query(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user(full_name="Phạm Thu Hà")
    organisation = make_organisation(owner)
    dossier = make_dossier(owner, make_procedure(), organisation=organisation, code="X-1")
    with django_assert_num_queries(1):
        read = READ.get(pk=dossier.pk)
        assert (read.pk, read.code, read.status) == (dossier.pk, "X-1", dossier.status)
        assert (read.applicant.pk, read.applicant.full_name) == (owner.pk, "Phạm Thu Hà")
        assert read.organisation is not None
        assert read.organisation.tax_code == organisation.tax_code  # every field asked
        assert read.applicant_phone == owner.phone  # type: ignore[attr-defined]
        assert read.answer == 42  # type: ignore[attr-defined]
    assert read._state.adding is False
    assert read._state.db == "default"


def test_fields_not_asked_for_are_deferred_like_only() -> None:
    dossier = make_dossier(make_user(), make_procedure(), form_data={"a": "b"})
    read = READ.get(pk=dossier.pk)
    assert read.get_deferred_fields() >= {"form_data", "procedure_id", "version"}
    assert read.form_data == {"a": "b"}  # read on first access
    assert isinstance(read.applicant, User)
    assert "phone" in read.applicant.get_deferred_fields()


def test_a_null_foreign_key_gives_none_and_a_missing_row_does_not_exist() -> None:
    dossier = make_dossier(make_user(), make_procedure())
    assert READ.get(pk=dossier.pk).organisation is None
    with pytest.raises(Dossier.DoesNotExist):
        READ.get(pk="00000000-0000-0000-0000-000000000000")


def test_refuses_a_related_row_without_its_foreign_key_column() -> None:
    with pytest.raises(ValueError, match="applicant_id must be among the fields"):
        JoinedRead(Dossier, ("code",), related={"applicant": None})


def test_a_read_by_key_sends_the_orms_sql_with_the_key_in_its_place(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user()
    dossier = make_dossier(owner, make_procedure(), organisation=make_organisation(owner))
    other = make_dossier(owner, make_procedure())
    assert READ._compiled_for("default") is not None  # the key and Value(42): compiled
    orm = READ.rows.filter(pk=other.pk).order_by()[:21]  # what QuerySet.get() sends
    with CaptureQueriesContext(connection) as through_orm:
        assert len(orm) == 1
    for key in (dossier.pk, other.pk):  # compiled once, then replayed with each key
        with django_assert_num_queries(1) as compiled:
            assert READ.get(pk=key).pk == key
        assert compiled.captured_queries[0]["sql"] == through_orm.captured_queries[0][
            "sql"
        ].replace(other.pk.hex, key.hex)


def test_a_read_by_key_converts_like_the_orm() -> None:
    moment = dt.datetime(2026, 3, 1, 8, 30, 5, 123000, tzinfo=dt.UTC)
    dossier = make_dossier(
        make_user(), make_procedure(), form_data={"họ_tên": "Lê Văn Tám", "n": [1, 2]}
    )
    Dossier.objects.filter(pk=dossier.pk).update(submitted_at=moment)
    reader = JoinedRead(Dossier, ("form_data", "submitted_at", "applicant", "status"))
    read = reader.get(pk=dossier.pk)
    assert reader._compiled_for("default") is not None
    through_orm = Dossier.objects.only("form_data", "submitted_at", "status").get(pk=dossier.pk)
    assert read.form_data == through_orm.form_data == {"họ_tên": "Lê Văn Tám", "n": [1, 2]}
    assert read.submitted_at == through_orm.submitted_at == moment
    assert read.status == through_orm.status


def test_other_filters_go_through_the_orm_and_a_malformed_key_fails_as_there() -> None:
    owner = make_user()
    dossier = make_dossier(owner, make_procedure(), code="X-2")
    assert READ.get(code="X-2", applicant=owner).pk == dossier.pk
    with pytest.raises(ValidationError):
        READ.get(pk="not-a-uuid")
    with pytest.raises(ValidationError):
        Dossier.objects.get(pk="not-a-uuid")  # the same error as the ORM's


def test_the_bearers_session_read_loads_every_column_of_the_session_and_its_user(
    django_assert_num_queries: Any,
) -> None:
    user = make_user(full_name="Đỗ Minh Châu")
    session, tokens = sign_in(user)
    with django_assert_num_queries(1):
        read = authenticate_access_token(tokens.access_token)
        assert read.user.full_name == "Đỗ Minh Châu"
    assert read.get_deferred_fields() == set()
    assert read.user.get_deferred_fields() == set()
    assert (read.pk, read.user_id, read.device_id) == (session.pk, user.pk, session.device_id)
    assert read.user.password == User.objects.get(pk=user.pk).password


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


class Abandoned(Exception):
    pass


def change_then_abandon(dossier: Dossier) -> None:
    with transaction.atomic():  # a savepoint inside the test's transaction
        Dossier.objects.filter(pk=dossier.pk).update(code="P-2")
        raise Abandoned


def test_through_the_pool_a_read_by_key_is_a_prepared_statement(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    # The tests' connection is not pooled; what DATABASE_POOL=1 does, on it.
    monkeypatch.setattr(joined_read, "prepares", lambda connection: True)
    owner = make_user(full_name="Vũ Thị Lan")
    dossier = make_dossier(owner, make_procedure(), code="P-1")
    try:
        with django_assert_num_queries(3):  # still counted, like any query
            reads = [READ.get(pk=dossier.pk) for _ in range(3)]
        assert {(read.code, read.applicant.full_name) for read in reads} == {("P-1", "Vũ Thị Lan")}
        assert [s for s in prepared_statements() if '"dossiers_dossier"' in s] != []
        # A rolled back savepoint makes psycopg drop its prepared statements: the next
        # read prepares again.
        with pytest.raises(Abandoned):
            change_then_abandon(dossier)
        assert READ.get(pk=dossier.pk).code == "P-1"
        other = make_dossier(owner, make_procedure(), code="P-3")
        assert READ.get(pk=other.pk).code == "P-3"
        with pytest.raises(Dossier.DoesNotExist):
            READ.get(pk="00000000-0000-0000-0000-000000000000")
    finally:
        connection.connection.prepare_threshold = None  # as Django configures it


def test_without_the_pool_nothing_is_prepared() -> None:
    dossier = make_dossier(make_user(), make_procedure())
    for _ in range(6):  # more than psycopg's usual threshold
        READ.get(pk=dossier.pk)
    assert not joined_read.prepares(connection)
    assert [s for s in prepared_statements() if '"dossiers_dossier"' in s] == []


def locking() -> JoinedRead[Dossier]:
    return JoinedRead(Dossier, ("code", "status"), for_update=True)


def test_a_locking_read_is_the_orms_select_for_update_compiled_once(
    django_assert_num_queries: Any,
) -> None:
    dossier = make_dossier(make_user(), make_procedure(), code="L-1")
    reader = locking()
    orm = Dossier.objects.select_for_update().values_list("id", "code", "status")
    with CaptureQueriesContext(connection) as through_orm:
        assert len(orm.filter(pk=dossier.pk).order_by()[:21]) == 1
    with django_assert_num_queries(1) as compiled:
        read = reader.get(pk=dossier.pk)
    assert (read.code, read.status) == ("L-1", dossier.status)
    assert read.get_deferred_fields() >= {"form_data", "applicant_id"}
    sql = compiled.captured_queries[0]["sql"]
    assert sql.endswith("FOR UPDATE")
    assert sql == through_orm.captured_queries[0]["sql"]


def test_a_locking_read_locks_nothing_but_its_own_row() -> None:
    with pytest.raises(ValueError, match="no related rows"):
        JoinedRead(Dossier, ("code", "applicant"), related={"applicant": None}, for_update=True)


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_needs_a_transaction_and_holds_its_lock_until_the_end() -> None:
    dossier = make_dossier(make_user(), make_procedure())
    reader = locking()
    with pytest.raises(transaction.TransactionManagementError):
        reader.get(pk=dossier.pk)  # as the ORM: the lock would end with the statement

    def try_to_lock() -> str:
        with transaction.atomic():
            try:
                list(Dossier.objects.select_for_update(nowait=True).filter(pk=dossier.pk))
            except OperationalError:
                return "locked"
        return "free"

    with transaction.atomic():
        reader.get(pk=dossier.pk)
        assert in_threads(try_to_lock) == ["locked"]
    assert in_threads(try_to_lock) == ["free"]


LOCKING = JoinedRead(Dossier, ("status", "version"), for_update=True)


def test_a_locking_read_sends_the_orms_select_for_update(
    django_assert_num_queries: Any,
) -> None:
    owner = make_user()
    dossier, other = (make_dossier(owner, make_procedure()) for _ in range(2))
    orm = (
        Dossier.objects.select_for_update()
        .values_list("id", "status", "version")
        .filter(pk=other.pk)
        .order_by()[:21]
    )
    with CaptureQueriesContext(connection) as through_orm:
        assert len(orm) == 1
    assert through_orm.captured_queries[0]["sql"].endswith(" FOR UPDATE")
    for key in (dossier.pk, other.pk):
        with django_assert_num_queries(1) as compiled:
            read = LOCKING.get(pk=key)
        assert (read.pk, read.status, read.version) == (key, dossier.status, dossier.version)
        assert compiled.captured_queries[0]["sql"] == through_orm.captured_queries[0][
            "sql"
        ].replace(other.pk.hex, key.hex)
    assert LOCKING._compiled_for("default") is not None
    assert read.get_deferred_fields() >= {"form_data", "code"}
