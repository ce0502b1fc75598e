"""Support audit records are append-only, enforced by the database itself."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from auth.actions.support import record_support_action
from auth.models import SupportAuditRecord
from tests.accounts.staff import make_citizen, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def record() -> SupportAuditRecord:
    return record_support_action(
        make_staff(),
        SupportAuditRecord.Action.LOOKUP,
        subject=make_citizen(),
        evidence="CCCD checked in person at the counter",
        details={"by": "phone", "found": True},
    )


def assert_unchanged(record: SupportAuditRecord) -> None:
    stored = SupportAuditRecord.objects.get(pk=record.pk)
    assert (stored.action, stored.evidence, stored.details) == (
        "lookup",
        "CCCD checked in person at the counter",
        {"by": "phone", "found": True},
    )


def test_orm_save_of_an_existing_record_fails(record: SupportAuditRecord) -> None:
    record.evidence = "nothing checked"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        record.save()
    assert_unchanged(record)


def test_orm_queryset_update_fails(record: SupportAuditRecord) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SupportAuditRecord.objects.filter(pk=record.pk).update(action="reset_applied")
    assert_unchanged(record)


def test_orm_delete_fails(record: SupportAuditRecord) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        SupportAuditRecord.objects.filter(pk=record.pk).delete()
    assert SupportAuditRecord.objects.filter(pk=record.pk).count() == 1


def test_raw_sql_update_fails(record: SupportAuditRecord) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE accounts_supportauditrecord SET evidence = %s WHERE id = %s",
            ["forged", record.pk],
        )
    assert_unchanged(record)


def test_raw_sql_delete_fails(record: SupportAuditRecord) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM accounts_supportauditrecord WHERE id = %s", [record.pk])
    assert SupportAuditRecord.objects.filter(pk=record.pk).count() == 1


def test_appending_still_works(record: SupportAuditRecord) -> None:
    record_support_action(record.actor, SupportAuditRecord.Action.LOOKUP, subject=record.subject)
    assert SupportAuditRecord.objects.count() == 2
