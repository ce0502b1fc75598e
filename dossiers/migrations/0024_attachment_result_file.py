"""The attachments that are issued results, by their stored object, for revocation
(`dossiers.results.attachments_of`).

`attachment_result_file`: a partial index of the attachments whose file is under
`results/` (a result attached from the wallet points at the result's own object).
A revocation finds the dossiers holding the result on it, instead of reading every
attachment (4.85 M at national scale); the few rows it holds cost an upload nothing.

Built CONCURRENTLY on PostgreSQL (backend/online_migrations.py), a plain CREATE INDEX
on SQLite.
"""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0023_dossier_original_appointment_not_after"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="attachment",
            index=models.Index(
                condition=models.Q(("file__regex", "^results/")),
                fields=["file"],
                name="attachment_result_file",
            ),
        ),
    ]
