"""Migrations the walk must judge (tests/backend/migration_walk.py), added after each
app's last one in a database of their own: each unsafe one is named for what it does
wrong, each safe one is the way to do the same without blocking the table.

On PostgreSQL 15: a CHECK or FOREIGN KEY constraint added without NOT VALID reads
every row under the lock of the ALTER TABLE (ACCESS EXCLUSIVE, SHARE ROW EXCLUSIVE for
a foreign key), and so does SET NOT NULL, unless a validated CHECK (column IS NOT NULL)
proves it; VALIDATE CONSTRAINT reads them under SHARE UPDATE EXCLUSIVE (writes go on),
unless the transaction still holds the ALTER TABLE's lock.
"""

from __future__ import annotations

from django.db import migrations, models


def _sql(*statements: str) -> list[migrations.RunSQL]:
    return [migrations.RunSQL(statement, migrations.RunSQL.noop) for statement in statements]


class CheckWithoutNotValid(migrations.Migration):
    # Django's AddConstraint, as makemigrations writes it.
    operations = [
        migrations.AddConstraint(
            model_name="dossier",
            constraint=models.CheckConstraint(
                condition=models.Q(id__gt=0), name="walk_dossier_id_positive"
            ),
        )
    ]


class SetNotNull(migrations.Migration):
    operations = _sql("ALTER TABLE dossiers_dossier ALTER COLUMN submitted_at SET NOT NULL")


class ForeignKeyWithoutNotValid(migrations.Migration):
    operations = _sql(
        "ALTER TABLE dossiers_dossier ADD CONSTRAINT walk_dossier_self"
        " FOREIGN KEY (id) REFERENCES dossiers_dossier (id)"
    )


class ValidatedWhereAdded(migrations.Migration):
    # NOT VALID, then validated in the same transaction: its ACCESS EXCLUSIVE is held.
    operations = _sql(
        "ALTER TABLE dossiers_dossier ADD CONSTRAINT walk_finished_after_submitted"
        " CHECK (finished_at >= submitted_at) NOT VALID",
        "ALTER TABLE dossiers_dossier VALIDATE CONSTRAINT walk_finished_after_submitted",
    )


class CheckNotValid(migrations.Migration):
    operations = _sql(
        "ALTER TABLE dossiers_dossier ADD CONSTRAINT walk_handed_over_set"
        " CHECK (handed_over_at IS NOT NULL) NOT VALID"
    )


class ValidateCheck(migrations.Migration):
    operations = _sql("ALTER TABLE dossiers_dossier VALIDATE CONSTRAINT walk_handed_over_set")


class SetNotNullProven(migrations.Migration):
    # The validated CHECK above proves it: PostgreSQL reads no row.
    operations = _sql("ALTER TABLE dossiers_dossier ALTER COLUMN handed_over_at SET NOT NULL")


class JobsIndex(migrations.Migration):
    operations = _sql("CREATE INDEX walk_jobs_priority ON procrastinate_jobs (priority)")


class JobsRewrite(migrations.Migration):
    operations = _sql("ALTER TABLE procrastinate_jobs ALTER COLUMN priority TYPE bigint")


class JobsCheck(migrations.Migration):
    operations = _sql(
        "ALTER TABLE procrastinate_jobs ADD CONSTRAINT walk_attempts CHECK (attempts >= 0)"
    )


class EventsUnbounded(migrations.Migration):
    operations = _sql("SET LOCAL lock_timeout = 0", "LOCK TABLE procrastinate_events IN SHARE MODE")


MIGRATIONS: dict[str, list[type[migrations.Migration]]] = {
    "dossiers": [
        CheckWithoutNotValid,
        SetNotNull,
        ForeignKeyWithoutNotValid,
        ValidatedWhereAdded,
        CheckNotValid,
        ValidateCheck,
        SetNotNullProven,
    ],
    "procrastinate": [JobsIndex, JobsRewrite, JobsCheck, EventsUnbounded],
}
