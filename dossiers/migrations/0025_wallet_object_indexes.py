"""The attachments made from kept wallet papers, by the wallet's objects.

`attachment_wallet_file` and `attachment_wallet_thumb`: partial indexes of the
attachments whose file (thumbnail) is under `wallet/` (an attachment made from a
kept paper points at the wallet's own objects). Deleting a wallet paper and the
nightly sweep of orphaned objects (documents/wallet.py `_referenced`) ask whether an
attachment still points at an object: a probe on these, instead of reading every
attachment (4.85 M at national scale) once per object.

Built CONCURRENTLY on PostgreSQL (backend/online_migrations.py), a plain CREATE INDEX
on SQLite.
"""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0024_attachment_result_file"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="attachment",
            index=models.Index(
                condition=models.Q(("file__regex", "^wallet/")),
                fields=["file"],
                name="attachment_wallet_file",
            ),
        ),
        AddIndexConcurrently(
            model_name="attachment",
            index=models.Index(
                condition=models.Q(("thumbnail__regex", "^wallet/")),
                fields=["thumbnail"],
                name="attachment_wallet_thumb",
            ),
        ),
    ]
