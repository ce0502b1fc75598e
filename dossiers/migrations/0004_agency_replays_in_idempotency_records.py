"""Agency replays move into backend's IdempotencyRecord (scope `agency:<id>`).

Stored answers keep working: each row becomes a completed record that expires
AGENCY_REQUEST_RETENTION_DAYS after it was made; then the old table is dropped.
"""

import datetime as dt

from django.conf import settings
from django.db import migrations

SCOPE_PREFIX = "agency:"


def move_to_idempotency_records(apps, schema_editor):
    AgencyRequest = apps.get_model("dossiers", "AgencyRequest")
    IdempotencyRecord = apps.get_model("backend", "IdempotencyRecord")
    keep = dt.timedelta(days=settings.AGENCY_REQUEST_RETENTION_DAYS)
    rows = AgencyRequest.objects.exclude(response_status=None).iterator(chunk_size=1000)
    batch = []
    for row in rows:
        batch.append(
            IdempotencyRecord(
                scope=f"{SCOPE_PREFIX}{row.agency_id}",
                key=row.event_id,
                fingerprint=row.fingerprint,
                state="completed",
                response_status=row.response_status,
                response_body=row.response_body,
                response_content_type=row.response_content_type,
                locked_until=row.created_at,
                expires_at=row.created_at + keep,
            )
        )
        if len(batch) >= 1000:
            IdempotencyRecord.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    IdempotencyRecord.objects.bulk_create(batch, ignore_conflicts=True)


def move_back(apps, schema_editor):
    AgencyRequest = apps.get_model("dossiers", "AgencyRequest")
    IdempotencyRecord = apps.get_model("backend", "IdempotencyRecord")
    records = IdempotencyRecord.objects.filter(
        scope__startswith=SCOPE_PREFIX, state="completed"
    ).iterator(chunk_size=1000)
    AgencyRequest.objects.bulk_create(
        [
            AgencyRequest(
                agency_id=int(record.scope.removeprefix(SCOPE_PREFIX)),
                event_id=record.key,
                fingerprint=record.fingerprint,
                response_status=record.response_status,
                response_body=record.response_body,
                response_content_type=record.response_content_type,
            )
            for record in records
        ],
        ignore_conflicts=True,
    )
    IdempotencyRecord.objects.filter(scope__startswith=SCOPE_PREFIX).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backend", "0001_initial"),
        ("dossiers", "0003_procedure_version"),
    ]

    operations = [
        migrations.RunPython(move_to_idempotency_records, move_back),
        migrations.DeleteModel(
            name="AgencyRequest",
        ),
    ]
