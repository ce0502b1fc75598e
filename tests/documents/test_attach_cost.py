"""What one "use from wallet" tap costs: its statements and its commits.

A sequential tap is latency: every statement is a round trip plus the ORM's Python,
every durable commit a disk flush. An attach is one transaction of six statements
(the paper's row lock, which also relaxes the commit: pending state; the dossier's
row lock; the document with the dossier's counts; the attachment; the dossier's
version), and with an Idempotency-Key two transactions (the claim, then the attach
with its kept answer), neither waiting for the disk.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.test.utils import CaptureQueriesContext

from backend import joined_read
from backend.models import IdempotencyRecord
from documents import wallet
from documents.models import WalletItem
from dossiers import access, attachments_api
from dossiers.models import Attachment, DocumentType, Dossier
from tests.conftest import make_user
from tests.documents.test_wallet import client, draft_for, keep
from tests.dossiers.attachments import samples

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN and COMMIT

RELAXED = "set_config('synchronous_commit', 'off', true)"


@pytest.fixture
def cccd(db: Any) -> DocumentType:
    return DocumentType.objects.create(code="cccd", name="Căn cước công dân", name_en="Citizen ID")


def shape(sql: str) -> str:
    """A statement as its verb and first table, e.g. `SELECT dossiers_dossier FOR UPDATE`."""
    verb = sql.split(None, 1)[0].upper()
    if verb in {"BEGIN", "COMMIT", "ROLLBACK"}:
        return verb
    if verb in {"SAVEPOINT", "RELEASE"}:
        return "SAVEPOINT" if verb == "SAVEPOINT" else "RELEASE SAVEPOINT"
    if verb == "SET":
        return " ".join(sql.split()[:3])
    # A read's table is its first column's (its select list may hold subqueries).
    table = re.search(r'^(?:SELECT "(\w+)"\.|INSERT INTO "(\w+)"|UPDATE "(\w+)")', sql)
    locked = " FOR UPDATE" if sql.rstrip().endswith("FOR UPDATE") else ""
    name = next((group for group in table.groups() if group), "?") if table else "?"
    return f"{verb} {name}{locked}"


def tap(cccd: DocumentType, **headers: str) -> tuple[Any, list[str], list[str]]:
    """A draft, a paper and a signed-in client; the attach's answer, statements' shapes
    and SQL."""
    user = make_user()
    keep(user, samples.jpeg_bytes(), document_type="cccd")
    item = WalletItem.objects.get()
    dossier = draft_for(user, cccd)
    api = client(user)
    with CaptureQueriesContext(connection) as captured:
        response = api.post(
            f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
            {"wallet_item_id": str(item.pk), "document_code": "doc-1"},
            headers=headers,
        )
    sql = [query["sql"] for query in captured.captured_queries]
    return response, [shape(text) for text in sql], sql


def test_an_attach_is_one_relaxed_transaction_of_six_statements(cccd: DocumentType) -> None:
    response, shapes, sql = tap(cccd)
    assert response.status_code == 201, response
    assert shapes == [
        "SELECT accounts_devicesession",  # the bearer's session (autocommit)
        "BEGIN",
        "SELECT documents_walletitem FOR UPDATE",
        "SELECT dossiers_dossier FOR UPDATE",
        "SELECT dossiers_requireddocument",  # with the dossier's counts
        "INSERT dossiers_attachment",
        "UPDATE dossiers_dossier",
        "COMMIT",
    ]
    assert RELAXED in sql[2]  # pending state: the commit does not wait for the disk
    # Both row locks are reads compiled once (prepared statements with the pool).
    assert wallet._LOCKED_TO_ATTACH._compiled_for("default") is not None
    assert access._LOCKED_FOR_PAPERS._compiled_for("default") is not None
    assert "form_data" not in sql[3]  # the dossier's few fields, not its form
    assert sql[4].count('"dossiers_attachment"') == 3  # total, this document's, same bytes
    assert str(Attachment.objects.get().pk) == response.json()["id"]
    assert response.json()["can_remove"] is True
    assert "RETURNING" not in sql[5]  # the attachment's key is made in Python
    assert sql[6].startswith('UPDATE "dossiers_dossier" SET "version" = ')
    assert Dossier.objects.get().version == 2  # from 1: bumped once, under the lock


def test_with_a_key_the_answer_is_kept_in_the_attachs_transaction(cccd: DocumentType) -> None:
    response, shapes, sql = tap(cccd, **{"Idempotency-Key": "tap-1"})
    assert response.status_code == 201, response
    assert shapes == [
        "SELECT accounts_devicesession",
        # The claim, on its own: a twin sees it and gets 409 while the attach runs.
        *("BEGIN", "SET LOCAL synchronous_commit", "INSERT backend_idempotencyrecord", "COMMIT"),
        "BEGIN",
        "SAVEPOINT",
        "SELECT documents_walletitem FOR UPDATE",
        "SELECT dossiers_dossier FOR UPDATE",
        "SELECT dossiers_requireddocument",
        "INSERT dossiers_attachment",
        "UPDATE dossiers_dossier",
        "RELEASE SAVEPOINT",
        "UPDATE backend_idempotencyrecord",  # the answer, committed with the attachment
        "COMMIT",
    ]
    assert RELAXED in sql[7]
    record = IdempotencyRecord.objects.get()
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.response_status == 201


def test_an_answer_that_fails_after_the_attach_keeps_neither(
    cccd: DocumentType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exactly once: when the answer cannot be made (a 500 after the action), the
    attachment goes with the released key, and the retry makes it."""

    def broken(attachment: Any, context: Any) -> bool:
        raise RuntimeError("the answer could not be made")

    monkeypatch.setattr(attachments_api, "_may_remove", broken)
    response, _shapes, _sql = tap(cccd, **{"Idempotency-Key": "tap-2"})
    assert response.status_code == 500
    assert not Attachment.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_the_document_read_is_compiled_once(
    cccd: DocumentType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No statement of a second attach is built by the ORM's compilers: the locks and
    the document with the dossier's counts are replayed, the attachment's INSERT and
    the dossier's version UPDATE are made once (backend/row_writes.py)."""
    response, _shapes, first = tap(cccd)  # what is compiled once per process
    assert response.status_code == 201, response
    user = make_user()
    keep(user, samples.jpeg_bytes(), document_type="cccd")
    item = WalletItem.objects.get(added_by=user)
    dossier = draft_for(user, cccd)
    api = client(user)
    built: list[Any] = []

    def counting(as_sql: Any) -> Any:
        def built_by_the_orm(self: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
            made = as_sql(self, *args, **kwargs)
            built.append(made)
            return made

        return built_by_the_orm

    for compiler in (SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler):
        monkeypatch.setattr(compiler, "as_sql", counting(compiler.as_sql))
    with CaptureQueriesContext(connection) as captured:
        response = api.post(
            f"/api/v1/dossiers/{dossier.pk}/wallet-attachments",
            {"wallet_item_id": str(item.pk), "document_code": "doc-1"},
        )
    assert response.status_code == 201, response
    assert built == []
    second = [query["sql"] for query in captured.captured_queries]
    # The same statement as the first attach's, with this dossier's values.
    assert shape(second[4]) == "SELECT dossiers_requireddocument"
    assert second[4].split(" FROM ")[0] == first[4].split(" FROM ")[0]
    assert dossier.pk.hex in second[4]
    assert Attachment.objects.filter(dossier=dossier).count() == 1


def test_through_the_pool_the_document_read_is_a_prepared_statement(
    cccd: DocumentType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tests' connection is not pooled; what DATABASE_POOL=1 does, on it.
    monkeypatch.setattr(joined_read, "prepares", lambda connection: True)
    try:
        for _ in range(2):
            user = make_user()
            keep(user, samples.jpeg_bytes(), document_type="cccd")
            item = WalletItem.objects.get(added_by=user)
            response = client(user).post(
                f"/api/v1/dossiers/{draft_for(user, cccd).pk}/wallet-attachments",
                {"wallet_item_id": str(item.pk), "document_code": "doc-1"},
            )
            assert response.status_code == 201, response
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cursor.fetchall()]
        assert [text for text in prepared if '"dossiers_requireddocument"' in text] != []
        assert Attachment.objects.count() == 2
    finally:
        connection.connection.prepare_threshold = None  # as Django configures it
