"""The legal deadline (`original_appointment_at`) is never after the appointment, and
is set only beside one: a CHECK constraint on dossiers (dossiers/models.py says why it
holds).

Added NOT VALID, then validated in a transaction of its own (backend/online_migrations.py
`AddCheckConstraint`): the ALTER TABLE's ACCESS EXCLUSIVE lock is held a moment, bounded
by the migration's lock_timeout, and the table is read under SHARE UPDATE EXCLUSIVE
(writes go on), not under that lock. On SQLite (the embedded default) Django's
AddConstraint.
"""

import django.db.models.expressions
from django.db import migrations, models

from backend.online_migrations import AddCheckConstraint


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0022_event_payment_requests_index"),
    ]

    operations = [
        AddCheckConstraint(
            model_name="dossier",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("original_appointment_at__isnull", True),
                    models.Q(
                        ("appointment_at__isnull", False),
                        (
                            "original_appointment_at__lte",
                            django.db.models.expressions.F("appointment_at"),
                        ),
                    ),
                    _connector="OR",
                ),
                name="dossier_original_appointment_not_after",
            ),
        ),
    ]
