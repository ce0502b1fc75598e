"""The performance report's indexes (3 of 3): an agency's payment requests, and the
finished dossiers with their stored working time.

* `event_agency_payment_requests`: the `dossier.payment_requested` events by (agency,
  moment), with their dossier and seq (an index-only scan): one agency's requests of
  a period, instead of every agency's read on `dossier_event_payment_requests` with
  each request's dossier read by key to keep the agency's.
* `dossier_finished_processing` replaces `dossier_finished` (0026): the same, with
  `processing_seconds` (0027), which the average sums, in it.

Built and dropped CONCURRENTLY on PostgreSQL (backend/online_migrations.py), plain
statements on SQLite.
"""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0028_event_agency_payment_requests_backfill"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="dossierevent",
            index=models.Index(
                condition=models.Q(("type", "dossier.payment_requested")),
                fields=["agency", "created_at"],
                include=("dossier", "seq"),
                name="event_agency_payment_requests",
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
                    "processing_seconds",
                ),
                name="dossier_finished_processing",
            ),
        ),
        RemoveIndexConcurrently(model_name="dossier", name="dossier_finished"),
    ]
