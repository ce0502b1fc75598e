"""The performance report's period on its own indexes (`monitoring.performance`).

`dossier_received`: the dossiers by `submitted_at`, with their agency, status and
channel; `dossier_finished`: the finished ones (status 9, 10) by `finished_at`, with
what the on-time count and the average processing time read. Each of the report's
statements on the dossiers is then an index-only scan of the period, for one agency or
for all: before, the largest agency's month was read on (agency, status) from 55-60 k
blocks of the table each (1.1-1.2 s cold at 1 M dossiers), all agencies' from a scan of
the table.

Built CONCURRENTLY on PostgreSQL (backend/online_migrations.py), a plain CREATE INDEX
on SQLite (which keeps the condition, not the INCLUDE).
"""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0025_wallet_object_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="dossier",
            index=models.Index(
                fields=["submitted_at"],
                include=("agency", "status", "channel"),
                name="dossier_received",
            ),
        ),
        AddIndexConcurrently(
            model_name="dossier",
            index=models.Index(
                condition=models.Q(("status__in", [9, 10])),
                fields=["finished_at"],
                include=(
                    "agency",
                    "status",
                    "accepted_at",
                    "submitted_at",
                    "paused_working_seconds",
                    "original_appointment_at",
                    "appointment_at",
                ),
                name="dossier_finished",
            ),
        ),
    ]
