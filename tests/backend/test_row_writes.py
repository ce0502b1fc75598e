"""save_fields and create_row write what save(update_fields=...) and save() write,
with the SQL made once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.db.models import F
from django.db.models.sql import compiler
from django.test.utils import CaptureQueriesContext

from backend.row_writes import create_row, save_fields
from dossiers.events import EventType
from dossiers.models import Attachment, DossierEvent
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


def an_event(dossier: Any, seq: int) -> DossierEvent:
    return DossierEvent(
        dossier=dossier,
        organisation_id=None,
        seq=seq,
        type=EventType.DOSSIER_PAYMENT_RECEIVED,
        status_before=6,
        status_after=4,
        actor_type="system",
        actor_label="payment:vnpay",
        data={"amount": 150_000, "ghi_chú": "Lệ phí", "n": [1, 2]},
    )


def test_create_row_sends_the_orms_insert_and_gets_what_the_database_gave(
    django_assert_num_queries: Any,
) -> None:
    dossier = make_dossier(make_user(), make_procedure())
    ours, orms = an_event(dossier, 1), an_event(dossier, 2)

    with django_assert_num_queries(1) as captured:
        create_row(ours)
    with CaptureQueriesContext(connection) as orm:
        orms.save()

    [sql] = [query["sql"] for query in captured.captured_queries]
    [orm_sql] = [query["sql"] for query in orm.captured_queries]
    assert sql.split(" VALUES ")[0] == orm_sql.split(" VALUES ")[0]
    assert sql.split(" RETURNING ")[1] == orm_sql.split(" RETURNING ")[1]
    # The key comes back from the INSERT (the log's own sequence), as with the ORM.
    assert isinstance(ours.pk, int)
    assert orms.pk > ours.pk
    assert ours._state.adding is False
    assert ours._state.db == "default"
    stored = DossierEvent.objects.get(pk=ours.pk)
    for field in ("dossier_id", "seq", "type", "status_after", "actor_label", "data"):
        assert getattr(stored, field) == getattr(ours, field)
    assert stored.created_at == ours.created_at  # auto_now_add, set before the INSERT
    assert stored.data == {"amount": 150_000, "ghi_chú": "Lệ phí", "n": [1, 2]}


def test_create_row_builds_its_insert_once(monkeypatch: Any) -> None:
    dossier = make_dossier(make_user(), make_procedure())
    create_row(an_event(dossier, 1))
    built: list[str] = []
    original = compiler.SQLInsertCompiler.as_sql

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        built.append(self.query.model.__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(compiler.SQLInsertCompiler, "as_sql", counted)
    for seq in (2, 3):
        create_row(an_event(dossier, seq))
    assert built == []
    assert list(DossierEvent.objects.filter(dossier=dossier).values_list("seq", flat=True)) == [
        1,
        2,
        3,
    ]


def test_create_row_refuses_a_row_with_its_key_an_expression_or_a_key_of_its_own() -> None:
    dossier = make_dossier(make_user(), make_procedure())
    event = an_event(dossier, 1)
    event.pk = 10**9
    with pytest.raises(ValueError, match="new row"):
        create_row(event)
    event = an_event(dossier, 1)
    event.seq = F("seq") + 1  # type: ignore[assignment]
    with pytest.raises(ValueError, match="expression"):
        create_row(event)
    with pytest.raises(ValueError, match="new row"):
        create_row(a_payment())  # saved already (its key made in Python)
    payment = Payment(order_ref="ROWCREATE01")
    payment.pk = None
    with pytest.raises(ValueError, match="new row"):
        create_row(payment)  # a key made in Python, but none
    assert not DossierEvent.objects.filter(dossier=dossier).exists()
    assert not Payment.objects.filter(order_ref="ROWCREATE01").exists()


def test_create_row_writes_a_key_made_in_python_as_the_orm_does(
    django_assert_num_queries: Any,
) -> None:
    """A UUID key (the model's default, made with the instance) is written, not asked
    back: the same INSERT as `objects.create`, without RETURNING when the database
    gives no value."""
    user = make_user()
    dossier = make_dossier(user, make_procedure())

    def attachment(digest: str) -> Attachment:
        return Attachment(
            dossier=dossier,
            document_code="doc-1",
            kind=Attachment.Kind.PDF,
            file=f"wallet/ab/{digest}.pdf",
            content_type="application/pdf",
            size=1234,
            sha256=digest * 64,
            pages=2,
            original_name="Giấy khai sinh.pdf",
            uploaded_by=user,
        )

    ours, orms = attachment("a"), attachment("b")
    key = ours.pk
    with django_assert_num_queries(1) as captured:
        create_row(ours)
    with CaptureQueriesContext(connection) as orm:
        orms.save()  # what objects.create does

    [sql] = [query["sql"] for query in captured.captured_queries]
    [orm_sql] = [query["sql"] for query in orm.captured_queries]
    assert sql.split(" VALUES ")[0] == orm_sql.split(" VALUES ")[0]
    assert "RETURNING" not in sql
    assert "RETURNING" not in orm_sql
    assert ours.pk == key  # the key it was made with
    assert ours._state.adding is False
    assert ours._state.db == "default"
    stored = Attachment.objects.get(pk=key)
    for field in fields(ours):
        assert getattr(stored, field.attname) == getattr(ours, field.attname), field.name
    assert stored.created_at == ours.created_at  # auto_now_add, set before the INSERT
    with pytest.raises(ValueError, match="new row"):
        create_row(ours)  # saved now


def fields(instance: Attachment) -> list[Any]:
    return [f for f in instance._meta.concrete_fields if f.name != "created_at"]
