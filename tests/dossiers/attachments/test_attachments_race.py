"""Concurrent uploads of the same file to one dossier make one attachment."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from dossiers.attachments import add_attachment
from dossiers.models import Attachment
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import citizen, stored_files
from tests.factories import make_dossier, make_procedure


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_uploads_make_one_attachment(media_root: Path) -> None:
    owner = citizen()
    dossier = make_dossier(owner, make_procedure())
    data = samples.jpeg_bytes((800, 600))
    barrier = threading.Barrier(4)
    results: list[tuple[Any, bool]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(
                add_attachment(
                    owner,
                    dossier.pk,
                    document_code="doc-1",
                    upload=io.BytesIO(data),
                    size=len(data),
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({attachment.pk for attachment, _ in results}) == 1
    assert Attachment.objects.filter(dossier=dossier).count() == 1
    assert len(stored_files(media_root)) == 2
