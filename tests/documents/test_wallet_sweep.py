"""Which of the wallet's stored objects are orphans: one statement per table for a
batch of objects, on indexes (never a read of every attachment), and never an
object stored so recently that its paper's row may not be visible yet."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from documents import wallet
from documents.models import WalletItem, wallet_path
from dossiers.models import Attachment, Dossier
from tests.conftest import make_user
from tests.dossiers.test_query_shapes import plan_of, scans, seeded  # noqa: F401  (a fixture)
from tests.factories import make_dossier

pytestmark = pytest.mark.django_db


def stored() -> str:
    return default_storage.save(wallet_path(None, ""), ContentFile(b"paper"))


def attachment(dossier: Dossier, file: str, thumbnail: str = "") -> Attachment:
    return Attachment.objects.create(
        dossier=dossier,
        document_code="doc-1",
        kind=Attachment.Kind.IMAGE,
        file=file,
        thumbnail=thumbnail,
        content_type="image/jpeg",
        size=5,
        sha256=hashlib.sha256(file.encode()).hexdigest(),
        uploaded_by=dossier.applicant,
    )


def kept_paper(user: Any, file: str, thumbnail: str) -> WalletItem:
    return WalletItem.objects.create(
        user=user,
        source=WalletItem.Source.UPLOAD,
        title="CCCD",
        kind=WalletItem.Kind.IMAGE,
        file=file,
        thumbnail=thumbnail,
        content_type="image/jpeg",
        size=5,
        sha256="0" * 64,
        added_by=user,
    )


def test_the_sweep_leaves_an_object_stored_within_the_grace_period(settings: Any) -> None:
    """A paper being kept stores its file, then writes its row: an object without a
    row may be one whose transaction has not committed yet. The sweep deleted it, and
    the paper's row then pointed at nothing."""
    name = stored()
    settings.WALLET_ORPHAN_GRACE_SECONDS = 3600
    assert name not in wallet.sweep_orphan_files()
    assert default_storage.exists(name)
    settings.WALLET_ORPHAN_GRACE_SECONDS = 0
    assert wallet.sweep_orphan_files() == [name]
    assert not default_storage.exists(name)


def test_what_a_paper_or_an_attachment_points_at_is_kept_batch_by_batch(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WALLET_ORPHAN_GRACE_SECONDS = 0
    monkeypatch.setattr(wallet, "SWEEP_BATCH", 2)
    user = make_user()
    dossier = make_dossier(user)
    paper_file, paper_thumb, attached_file, attached_thumb, orphan = (stored() for _ in range(5))
    kept_paper(user, paper_file, paper_thumb)
    attachment(dossier, attached_file, attached_thumb)
    names = [paper_file, paper_thumb, attached_file, attached_thumb, orphan]

    with CaptureQueriesContext(connection) as queries:
        assert wallet.delete_unreferenced(names) == [orphan]
    assert len(queries) == 3 * 2  # three batches, one statement per table
    assert [default_storage.exists(name) for name in names] == [True] * 4 + [False]

    # The sweep decides alike, and an attachment's thumbnail keeps its object alone.
    Attachment.objects.filter(dossier=dossier).update(file=orphan)
    assert wallet.sweep_orphan_files() == [attached_file]
    assert default_storage.exists(attached_thumb)


def test_whether_an_attachment_points_at_an_object_is_read_on_the_wallet_indexes(
    seeded: dict[str, Any],  # noqa: F811  (the fixture)
) -> None:
    with CaptureQueriesContext(connection) as captured:
        wallet._referenced([wallet_path(None, "") for _ in range(wallet.SWEEP_BATCH)])
    queries = [(q["sql"], None) for q in captured.captured_queries]
    plan = plan_of(queries, '"dossiers_attachment"')
    found = scans(plan)
    assert [s for s in found if s[0] == "Seq Scan"] == [], found
    assert {"attachment_wallet_file", "attachment_wallet_thumb"} <= {s[2] for s in found}
    # The seed keeps no wallet papers (a scan of an empty table is the right plan):
    # with scans discouraged, the statement is answered from the file and thumbnail
    # indexes.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        found = scans(plan_of(queries, '"documents_walletitem"'))
        cursor.execute("RESET enable_seqscan")
    assert [s for s in found if s[0] == "Seq Scan"] == [], found
    assert "wallet_item_thumbnail" in {s[2] for s in found}
