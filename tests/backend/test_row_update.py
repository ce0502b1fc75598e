"""save_fields writes what save(update_fields=...) writes, with the SQL made once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.db.models import F
from django.db.models.sql import compiler
from django.test.utils import CaptureQueriesContext

from backend.row_update import save_fields
from payments.models import Payment
from tests.conftest import make_user
from tests.factories import make_dossier, make_paid_payment, make_procedure

pytestmark = pytest.mark.django_db


def a_payment(order_ref: str = "ROWUPDATE01") -> Payment:
    user = make_user()
    return make_paid_payment(user, make_dossier(user, make_procedure()), order_ref)


def assigned(sql: str) -> list[str]:
    return [part.split(" = ")[0] for part in sql.split(" SET ")[1].split(" WHERE ")[0].split(", ")]


def test_writes_the_named_columns_as_the_orm_does_and_no_other(
    django_assert_num_queries: Any,
) -> None:
    payment, twin = a_payment("ROWUPDATE01"), a_payment("ROWUPDATE02")
    before = {row.pk: Payment.objects.get(pk=row.pk) for row in (payment, twin)}
    refunded_by = make_user()
    for row in (payment, twin):
        row.status = Payment.Status.REFUNDED
        row.refunded_by = refunded_by
        row.needs_refund = True
        row.refund_reason = "HT-0042"
        row.checkout_url = "not written: not named"
    names = ["status", "refunded_by", "needs_refund", "refund_reason", "updated_at"]

    with django_assert_num_queries(1) as ours:
        save_fields(payment, names)
    with CaptureQueriesContext(connection) as orm:
        twin.save(update_fields=names)

    [sql] = [query["sql"] for query in ours.captured_queries]
    [orm_sql] = [query["sql"] for query in orm.captured_queries]
    # The same columns (in the order named; the ORM's is the model's).
    assert sorted(assigned(sql)) == sorted(assigned(orm_sql))
    assert assigned(sql) == [
        '"status"',
        '"refunded_by_id"',
        '"needs_refund"',
        '"refund_reason"',
        '"updated_at"',
    ]
    assert sql.startswith('UPDATE "payments_payment" SET ')
    for row in (payment, twin):
        stored = Payment.objects.get(pk=row.pk)
        assert (stored.status, stored.refunded_by_id, stored.needs_refund) == (
            "refunded",
            refunded_by.pk,
            True,
        )
        assert stored.refund_reason == "HT-0042"
        assert stored.checkout_url == before[row.pk].checkout_url  # not named: not written
        assert stored.updated_at == row.updated_at > before[row.pk].updated_at  # auto_now
        assert stored.paid_at == before[row.pk].paid_at


def test_the_statement_is_made_once_not_by_the_orm_on_every_save(monkeypatch: Any) -> None:
    payment = a_payment()
    save_fields(payment, ["status", "updated_at"])
    built: list[str] = []
    original = compiler.SQLUpdateCompiler.as_sql

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(self.query.model.__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(compiler.SQLUpdateCompiler, "as_sql", counted)
    for status in (Payment.Status.REFUNDED, Payment.Status.PAID):
        payment.status = status
        save_fields(payment, ["status", "updated_at"])
        assert Payment.objects.get(pk=payment.pk).status == status
    assert built == []
    payment.save(update_fields=["status"])
    assert built == ["Payment"]  # the ORM's own save builds it every time


def test_a_row_that_is_gone_fails_as_with_the_orm() -> None:
    payment = a_payment()
    Payment.objects.filter(pk=payment.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        save_fields(payment, ["status"])
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        payment.save(update_fields=["status"])


def test_refuses_expressions_the_key_and_what_is_not_a_column() -> None:
    payment = a_payment()
    payment.amount = F("amount") + 1  # type: ignore[assignment]
    with pytest.raises(ValueError, match="expression"):
        save_fields(payment, ["amount"])
    with pytest.raises(ValueError, match="not a column"):
        save_fields(payment, ["id"])
    with pytest.raises(ValueError, match="not a column"):
        save_fields(payment, ["anomalies"])  # a reverse relation
    assert Payment.objects.get(pk=payment.pk).amount == 50_000


def test_a_moment_is_written_in_the_databases_form() -> None:
    payment = a_payment()
    moment = dt.datetime(2026, 12, 7, 16, 5, 1, 250000, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    payment.paid_at = moment
    save_fields(payment, ["paid_at"])
    assert Payment.objects.get(pk=payment.pk).paid_at == moment
