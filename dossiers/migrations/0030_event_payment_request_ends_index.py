"""The moves that ended a payment request, for the performance report's fee requests
(`monitoring.fee_requests`).

`event_payment_request_ends`: the events whose status before was 6 (a request's
end: paid online, or processing resumed), by (dossier, seq), with their type. The
report finds each request's end as its dossier's first such event after it: a probe
of this small index alone (an index-only scan), instead of `dossier_event_unique_seq`
over all the dossier's later events and each row read for its status and type. At
1 M dossiers: the largest agency's month 16.2 k -> 10.0 k buffers, all agencies'
124 k -> 77 k.

Built CONCURRENTLY on PostgreSQL (backend/online_migrations.py), a plain CREATE INDEX
on SQLite.
"""

from django.db import migrations, models

from backend.online_migrations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dossiers", "0029_report_agency_requests_finished_processing_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="dossierevent",
            index=models.Index(
                condition=models.Q(("status_before", 6)),
                fields=["dossier", "seq"],
                include=("type",),
                name="event_payment_request_ends",
            ),
        ),
    ]
