"""The wallet's delete locks the paper's own row, and nothing else: no joined row of
its type, its result or its owner (a FOR UPDATE over a join, without OF, would lock
every row it joins)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection, models, transaction
from django.test.utils import CaptureQueriesContext

from auth.models import User
from backend.errors import NotFound
from documents import wallet
from documents.models import WalletItem
from dossiers.models import DocumentType
from tests.concurrency import in_threads, on_sql
from tests.conftest import make_user
from tests.documents.test_attach_cost import shape
from tests.documents.test_wallet import client, keep
from tests.dossiers.attachments import samples

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN and COMMIT


@pytest.fixture
def cccd(db: Any) -> DocumentType:
    return DocumentType.objects.create(code="cccd", name="Căn cước công dân", name_en="Citizen ID")


def free(model: type[models.Model], key: Any) -> bool:
    """Whether another transaction could lock the row now (NOWAIT: no waiting)."""
    try:
        with transaction.atomic():
            rows = model._default_manager.select_for_update(nowait=True).filter(pk=key)
            return len(rows.values_list("pk")) == 1
    except DatabaseError:
        return False


def test_a_delete_locks_the_papers_own_row_in_one_lean_statement(cccd: DocumentType) -> None:
    user = make_user()
    item = WalletItem.objects.get(
        pk=keep(user, samples.jpeg_bytes(), document_type="cccd").json()["id"]
    )
    api = client(user)
    seen: dict[str, bool] = {}

    def look() -> None:  # from other connections, while the delete holds its lock
        seen.update(
            in_threads(
                lambda: {
                    "paper": free(WalletItem, item.pk),
                    "type": free(DocumentType, cccd.pk),
                    "owner": free(User, user.pk),
                }
            )[0]
        )

    with (
        CaptureQueriesContext(connection) as captured,
        on_sql(before=(lambda sql: sql.startswith("DELETE"), look)),
    ):
        response = api.delete(f"/api/v1/wallet/items/{item.pk}")

    assert response.status_code == 204, response
    assert seen == {"paper": False, "type": True, "owner": True}
    sql = [query["sql"] for query in captured.captured_queries]
    assert [shape(text) for text in sql[:5]] == [
        "SELECT accounts_devicesession",
        "BEGIN",
        "SELECT documents_walletitem FOR UPDATE",
        "DELETE ?",
        "COMMIT",
    ]
    assert "JOIN" not in sql[2]
    assert wallet._LOCKED_TO_DELETE._compiled_for("default") is not None  # made once
    assert not WalletItem.objects.filter(pk=item.pk).exists()


def test_the_lean_lock_keeps_the_delete_refusals(cccd: DocumentType) -> None:
    owner, stranger = make_user(), make_user()
    item_id = keep(owner, samples.jpeg_bytes(), document_type="cccd").json()["id"]

    # Someone else's paper and no paper at all: the same 404.
    for key in (item_id, str(uuid.uuid4())):
        refused = client(stranger).delete(f"/api/v1/wallet/items/{key}")
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found"), refused
    with pytest.raises(NotFound):
        wallet.delete_item(owner, "not-a-key")
    assert WalletItem.objects.filter(pk=item_id).exists()
