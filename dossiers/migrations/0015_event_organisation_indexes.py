"""The indexes of the copy of the organisation on events and of the at-risk scan
(3 of 3), built without blocking writes.

`dossier_event_org_order`: an organisation's events in log order (the replay of its
members, tracking/stream.py). `dossier_unwarned_deadline`: running dossiers neither
overdue nor warned yet (the at-risk scan, dossiers/monitoring.py).

`CREATE INDEX CONCURRENTLY` on PostgreSQL: no write lock on the live tables (it
waits for transactions open at its start, and reads the table twice). A build that
failed leaves an INVALID index of that name, which running this again drops first
(backend/online_migrations.py). Plain CREATE INDEX on SQLite (the embedded default).
"""

import django.db.models.functions.comparison
from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


# Since 2026-12-07 the operation of backend/online_migrations.py: under the bounded
# lock wait of `manage.py migrate` a concurrent build must run with no lock timeout
# (it waits for older transactions, blocking no one; a timeout would leave an INVALID
# index), and running it again must be harmless (IF NOT EXISTS, an INVALID leftover
# dropped first). Databases that applied this migration are not affected.
AddIndexConcurrentlyOnPostgres = AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0014_event_organisation_backfill"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="dossierevent",
            index=models.Index(
                condition=models.Q(("organisation__isnull", False)),
                fields=["organisation", "txid", "id"],
                name="dossier_event_org_order",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="dossier",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce(
                    "original_appointment_at", "appointment_at"
                ),
                models.F("id"),
                condition=models.Q(
                    ("appointment_at__isnull", False),
                    ("paused_at__isnull", True),
                    ("status__in", [2, 4, 6]),
                    ("deadline_warned_at__isnull", True),
                    ("overdue_at__isnull", True),
                ),
                name="dossier_unwarned_deadline",
            ),
        ),
    ]
