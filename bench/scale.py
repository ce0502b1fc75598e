"""`make bench-scale`: the project's own queries on a database of a province's size.

    .venv/bin/python -m bench.scale [--scale 0.1] [--samples 200] [--skip-seed [--migrate]]

Seeds a dedicated database (`citizen_scale`, dropped and migrated first; set
SCALE_DATABASE_URL to use another whose name contains "scale") with SQL only
(`generate_series`, INSERT ... SELECT): at `--scale 1`, 1 M dossiers (each with
a form of ten answers, and five papers per submitted dossier: about 4.9 M
attachments), about 20 M events, 500 k users, 20 k organisations, 3 M
notifications and 3 M push deliveries. Distributions: a citizen has a handful of
dossiers (2 on average); a fifth of the dossiers belong to organisations, skewed
(the largest has a few thousand dossiers and up to 60 members); 60 agencies,
skewed too (the largest receives about an eighth of all dossiers); dossiers are
created evenly over a year, those of the last 30 days still running (accepted,
processing, waiting for a supplement or a payment), older ones mostly finished;
10 to 30 events per dossier spread over its life, with ids growing with time.

Then it runs the real code behind each query shape for sampled users and
agencies, and reports p50 / p99 per shape (milliseconds: PostgreSQL's time for the
call's slowest statement, first EXPLAIN ANALYZE and best of three, the verdict on the
latter; the shared buffers it touched; the wall clock of the SQL and of the Python
call) and the plan of each (EXPLAIN ANALYZE, node types and the indexes used) into
bench/scale_results.json and bench/scale_plans.txt:

* list: `dossiers.api.list_dossiers` (the list route's handler: `first_visible`
  plus the page), for a citizen and for a member of a large organisation;
  its call includes the route's response step (django-ninja's validation against
  the response schema and the API's JSON renderer), as the feed's does;
* resume: `tracking.stream.resume` with an event of the last days;
* replay: `tracking.stream.pull` of a fresh subscription whose cursor is an
  event two months back (citizen, organisation member), and a live pull at the head;
* feed: `dossiers.agency.api.feed` for the largest agency, cursor near the head;
* agency monitoring: the largest agency's counts (`monitoring_summary`) and pages of
  its overdue and at-risk lists (`monitoring_overdue`, `monitoring_at_risk`: the
  first, and every 100th dossier on), and its performance report for the last 30
  days (the `performance` route: `monitoring.performance`), and the same report of
  every agency (the route as a staff member calls it, no agency named);
* scans: the overdue query of `monitoring.scan_deadlines` and `monitoring.at_risk`,
  after the worker's warm-up (the holiday calendars built, as `WORKER_WARM_UP` does).

Every shape is measured at the seed's moment (`seed_moment`), not the current time:
the seed's deadlines, marks and event ages are relative to it, so a run on a seed
an hour or a week old reads what a run right after seeding reads.

The verdict is on PostgreSQL's time; the whole call's p99 is held to the same
20 ms and reported beside it (`call_met`).

Not part of `make test`. Timings of the seed steps are printed (the full size
takes longer than ten minutes on 2 cores: the default is --scale 0.1). After adding
a migration, `--skip-seed --migrate` applies it to the seeded database in place (as
production would, timed) instead of seeding again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/citizen_scale"
BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_FILE = BASE_DIR / "bench" / "scale_results.json"
PLANS_FILE = BASE_DIR / "bench" / "scale_plans.txt"
TARGET_MS = 20.0

FULL = {
    "users": 500_000,
    "organisations": 20_000,
    "dossiers": 1_000_000,
    "notifications": 3_000_000,
}
AGENCIES = 60
# Tables loaded in bulk: their secondary indexes and unique constraints are dropped
# before the load and built after it (faster than maintaining them row by row).
BULK_TABLES = (
    "accounts_user",
    "dossiers_dossier",
    "dossiers_attachment",
    "tracking_dossierevent",
    "notifications_notification",
    "notifications_delivery",
    "notifications_device",
)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def database_url() -> str:
    url = os.environ.get("SCALE_DATABASE_URL", DEFAULT_URL)
    name = urlsplit(url).path.lstrip("/")
    if not re.fullmatch(r"[a-z0-9_]*scale[a-z0-9_]*", name):
        raise SystemExit(f"refusing to use {name!r}: the scale database name must contain 'scale'")
    return url


def prepare_environment(url: str) -> dict[str, str]:
    from bench.harness import bench_env

    env = bench_env(
        DATABASE_URL=url,
        # SCALE_REDIS_URL, else the caller's REDIS_URL (`make bench-scale` passes it on),
        # else a database of its own: never the tests' 15, which each test empties.
        REDIS_URL=os.environ.get("SCALE_REDIS_URL")
        or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11"),
        DATABASE_POOL="0",
    )
    os.environ.update(env)
    return env


# --- Seed ---------------------------------------------------------------------------


def sizes(scale: float) -> dict[str, int]:
    return {name: max(1, int(count * scale)) for name, count in FULL.items()}


SEED_SQL: list[tuple[str, str]] = [
    (
        "users",
        """
        INSERT INTO accounts_user (id, password, is_superuser, phone, full_name, language,
            verification_level, is_staff, is_active, date_joined, must_reset_password, totp_secret)
        SELECT md5('u' || i)::uuid, '!', false, '+849' || lpad(i::text, 8, '0'),
               'Citizen ' || i, CASE WHEN i %% 10 = 0 THEN 'en' ELSE 'vi' END, 2, false, true,
               %(start)s + (i::float / %(users)s) * interval '365 days', false, ''
        FROM generate_series(1, %(users)s) i
        """,
    ),
    (
        "organisations",
        """
        INSERT INTO accounts_organisation (id, tax_code, name, address, created_at, registry_name)
        SELECT md5('o' || i)::uuid, lpad(i::text, 10, '0'), 'Company ' || i, '', %(start)s, ''
        FROM generate_series(1, %(organisations)s) i
        """,
    ),
    (
        # Organisation o has 1 + 60 / o^0.4 members or so: a few large, most small.
        "memberships",
        """
        INSERT INTO accounts_membership (role, watches, created_at, user_id, organisation_id)
        SELECT CASE WHEN k = 1 THEN 'owner' ELSE 'member' END, k %% 5 <> 0, %(start)s,
               md5('u' || (1 + (o * 7919 + k * 104729) %% %(users)s))::uuid, md5('o' || o)::uuid
        FROM generate_series(1, %(organisations)s) o,
             LATERAL generate_series(1, 1 + (60 / power(o, 0.4))::int) k
        ON CONFLICT DO NOTHING
        """,
    ),
    (
        "agencies",
        """
        INSERT INTO dossiers_agency (id, code, name, name_en, level, province_code, commune_code,
            office_hours, is_active, created_at)
        SELECT a, 'SCALE' || a, 'Sở ' || a, 'Department ' || a, 'province', lpad(a::text, 2, '0'),
               '', '[["07:00", "11:30"], ["13:30", "17:00"]]'::jsonb, true, %(start)s
        FROM generate_series(1, %(agencies)s) a
        """,
    ),
    (
        "procedures",
        """
        INSERT INTO dossiers_procedure (id, code, name, name_en, search_text, field, field_en,
            service_level, processing_time, processing_unit, fee_amount, fee_timing, form_spec,
            postal_return_allowed, electronic_result, description, description_en, is_active,
            agency_id, version, min_identity_level)
        SELECT p.id, p.code, 'Thủ tục ' || a.id, 'Procedure ' || a.id, '', '', '', 'full', 15,
               'working_days', 0, 'none', '{}'::jsonb, true, false, '', '', true, a.id, 1, 0
        FROM dossiers_agency a, LATERAL (SELECT a.id AS id, 'SCALE-P' || a.id AS code) p
        """,
    ),
    (
        # Dossier i is created at start + i/N of a year. Status by age: the last 30
        # days run, older ones are mostly finished, 3 % are drafts anywhere. Its form
        # has ten answers, as a civil-status or certificate procedure's has.
        "dossiers",
        """
        INSERT INTO dossiers_dossier (id, code, status, channel, form_data, satisfaction_comment,
            version, created_at, updated_at, agency_id, applicant_id, procedure_id, organisation_id,
            handover_method, paused_working_seconds, result_file, result_file_content_type,
            result_file_name, lookup_secret_encrypted, lookup_secret_hash, submitted_at,
            accepted_at, appointment_at, original_appointment_at, paused_at, finished_at,
            overdue_at, deadline_warned_at)
        SELECT md5('d' || i)::uuid, CASE WHEN status = 0 THEN NULL ELSE 'SC-' || i END, status,
               2, jsonb_build_object(
                   'full_name', 'Nguyễn Văn ' || i, 'birth_date', '1990-05-01',
                   'citizen_id', lpad(i::text, 12, '0'), 'gender', 'nam',
                   'phone', '09' || lpad(i::text, 8, '0'),
                   'address', 'Số ' || i %% 200 || ' phố Hàng Bài, phường Hoàn Kiếm, Hà Nội',
                   'purpose', 'Bổ sung hồ sơ xin việc', 'copies', 2,
                   'email', 'citizen' || i || '@example.vn',
                   'note', 'Xin nhận kết quả qua bưu điện'),
               '', 1, created, updated, agency, applicant, agency, organisation,
               '', 0, '', '', '', '', '',
               CASE WHEN status = 0 THEN NULL ELSE created END,
               CASE WHEN status IN (2, 4, 5, 6, 9, 10) THEN created + interval '1 day' END,
               CASE WHEN status IN (0, 1, 3, 7) THEN NULL
                    WHEN apology THEN created + interval '25 days'
                    ELSE created + interval '20 days' END,
               CASE WHEN apology AND status IN (2, 4, 5, 6) THEN created + interval '20 days' END,
               CASE WHEN status = 5 THEN updated END,
               CASE WHEN status IN (9, 10) THEN updated END,
               -- Earlier scans marked the running dossiers already past their deadline.
               CASE WHEN status IN (2, 4, 6) AND created + interval '20 days'
                         < %(now)s - interval '10 minutes'
                    THEN created + interval '20 days' END,
               CASE WHEN status IN (2, 4, 6) AND created + interval '20 days'
                         BETWEEN %(now)s - interval '10 minutes' AND %(now)s + interval '1 day'
                         AND random() < 0.9
                    THEN %(now)s - interval '1 hour' END
        FROM (
            SELECT i, created, agency, applicant, organisation, apology,
                   created + (%(now)s - created) * random() * CASE WHEN age < 30 THEN 1
                       ELSE 30 / age END AS updated,
                   CASE WHEN r < 0.03 THEN 0
                        WHEN age < 30 THEN CASE
                            WHEN r < 0.15 THEN 1 WHEN r < 0.35 THEN 2 WHEN r < 0.65 THEN 4
                            WHEN r < 0.72 THEN 5 WHEN r < 0.76 THEN 6 WHEN r < 0.79 THEN 3
                            WHEN r < 0.81 THEN 7 WHEN r < 0.90 THEN 9 ELSE 10 END
                        ELSE CASE
                            WHEN r < 0.035 THEN 4 WHEN r < 0.07 THEN 3 WHEN r < 0.09 THEN 7
                            WHEN r < 0.10 THEN 8 WHEN r < 0.18 THEN 9 ELSE 10 END
                   END AS status
            FROM (
                SELECT i, random() AS r, random() < 0.05 AS apology,
                       %(start)s + (i::float / %(dossiers)s) * interval '365 days' AS created,
                       365 * (1 - i::float / %(dossiers)s) AS age,
                       1 + floor(%(agencies)s * power(random(), 2))::int AS agency,
                       md5('u' || (1 + floor(random() * %(users)s)::int))::uuid AS applicant,
                       CASE WHEN random() < 0.2 THEN md5('o' || (1 + floor(
                           %(organisations)s * power(random(), 3))::int))::uuid END AS organisation
                FROM generate_series(1, %(dossiers)s) i
            ) base
        ) shaped
        """,
    ),
    (
        # 10 to 30 events per submitted dossier (1 per draft), spread over its life;
        # a fifth of them had a fee requested (status 6) three events before their
        # last, two thirds of those paid online (the next event, `payment_received`),
        # the others at the counter; a dossier waiting for a payment ends on its request;
        # ids (the log's order) grow with time, as the log's sequence hands them out
        # (its trigger is off in a bulk load: the ids are given here, the sequence
        # set after). No `txid`: nothing writes or reads it since dossiers 0021.
        "events",
        """
        INSERT INTO tracking_dossierevent (id, seq, type, status_before, status_after,
            actor_type, actor_label, message, data, created_at, dossier_id, organisation_id,
            agency_id)
        SELECT row_number() OVER (ORDER BY at, d.id, j), j,
               CASE WHEN j = 1 THEN 'dossier.submitted'
                    WHEN j = k AND d.status = 6 THEN 'dossier.payment_requested'
                    WHEN j = k THEN 'dossier.completed'
                    WHEN fee AND j = k - 3 THEN 'dossier.payment_requested'
                    WHEN fee AND j = k - 2 AND paid THEN 'dossier.payment_received'
                    ELSE 'dossier.processing_started' END,
               CASE WHEN fee AND j = k - 2 THEN 6 END,
               d.status, 'agency', '', '', '{}'::jsonb, at, d.id, d.organisation_id,
               d.agency_id
        FROM dossiers_dossier d,
             LATERAL (SELECT CASE WHEN d.status = 0 THEN 1
                                  ELSE 10 + abs(hashtext(d.id::text)) %% 21 END AS k,
                             d.status <> 0 AND abs(hashtext('f' || d.id)) %% 5 = 0 AS fee,
                             abs(hashtext('p' || d.id)) %% 3 <> 0 AS paid) n,
             LATERAL generate_series(1, n.k) j,
             LATERAL (SELECT d.created_at + (d.updated_at - d.created_at) * (j - 1) / n.k AS at) t
        """,
    ),
    (
        # Five papers (photos of documents) per submitted dossier, as uploads leave them.
        "attachments",
        """
        INSERT INTO dossiers_attachment (id, document_code, kind, file, thumbnail,
            content_type, size, sha256, width, height, pages, original_name, created_at,
            uploaded_by_id, dossier_id)
        SELECT md5('a' || d.id || '-' || n)::uuid, 'GT-0' || n, 'image',
               'attachments/sc/' || md5('f' || d.id || n),
               'thumbnails/sc/' || md5('t' || d.id || n),
               'image/jpeg', 380000 + n * 7919, md5('s' || d.id || n) || md5('h' || d.id || n),
               2016, 1512, NULL, 'giay-to-' || n || '.jpg',
               d.created_at + n * interval '1 minute', d.applicant_id, d.id
        FROM dossiers_dossier d, generate_series(1, 5) n
        WHERE d.status <> 0
        """,
    ),
    (
        "devices",
        """
        INSERT INTO notifications_device (id, token, platform, app_version, locale,
            installation_id, active, deactivated_reason, created_at, last_seen_at, user_id)
        SELECT i, 'scale-token-' || i || repeat('x', 140), CASE WHEN i %% 3 = 0 THEN 'ios'
               ELSE 'android' END, '1.0', 'vi', 'inst-' || i, true, '', %(start)s, %(now)s,
               md5('u' || i)::uuid
        FROM generate_series(1, %(users)s) i
        """,
    ),
    (
        # One notification (and one delivery to the user's device) per sampled event.
        "notifications",
        """
        INSERT INTO notifications_notification (type, category, urgent, title, body, data,
            created_at, sms_status, sms_text, user_id, event_id, dossier_id)
        SELECT e.type, 'status', false, 'Hồ sơ ' || d.code, 'Cập nhật', '{}'::jsonb,
               e.created_at, '', '', d.applicant_id, e.id, d.id
        FROM tracking_dossierevent e JOIN dossiers_dossier d ON d.id = e.dossier_id
        WHERE e.id %% %(every)s = 0 AND d.status <> 0
        LIMIT %(notifications)s
        """,
    ),
    (
        "deliveries",
        """
        INSERT INTO notifications_delivery (state, attempts, fcm_message_id, error_code,
            error_message, created_at, updated_at, device_id, notification_id, claim_token)
        SELECT 'delivered', 1, 'projects/p/messages/' || n.id, '', '', n.created_at,
               n.created_at, v.id, n.id, ''
        FROM notifications_notification n JOIN notifications_device v ON v.user_id = n.user_id
        """,
    ),
]


def _secondary(cursor: Any, table: str) -> tuple[list[str], list[str]]:
    """(drop statements, create statements) of a table's unique constraints and
    indexes other than the primary key."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT EXISTS ("
        "SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    )
    indexes = cursor.fetchall()
    drops = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for name, _ in constraints]
    drops += [f"DROP INDEX {name}" for name, _ in indexes]
    creates = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, d in constraints]
    creates += [definition for _, definition in indexes]
    return drops, creates


SEED_COMMENT = "bench.scale seeded at "
FILL_BATCH = 50_000


def fill_processing_seconds(cursor: Any) -> int:
    """Each finished dossier's `processing_seconds` (dossiers 0027), as the finishing
    move stores it, for those without: the seed's rows are written in SQL, and a seed
    made before the column has none. Worked out by the report's own code for the
    dossiers finished before the column (`monitoring.unstored_processing_seconds`)."""
    from dossiers import monitoring
    from dossiers.models import Dossier

    finished = Dossier.objects.filter(status__in=monitoring.FINISHED)
    spans = monitoring.unstored_processing_seconds(finished, None, with_id=True)
    for first in range(0, len(spans), FILL_BATCH):
        batch = spans[first : first + FILL_BATCH]
        cursor.execute(
            "UPDATE dossiers_dossier d SET processing_seconds = v.seconds"
            " FROM unnest(%s::uuid[], %s::int[]) AS v(id, seconds) WHERE d.id = v.id",
            [[key for key, _ in batch], [seconds for _, seconds in batch]],
        )
    return len(spans)


def seed(scale: float, *, vacuum: bool = True, now: dt.datetime | None = None) -> dict[str, Any]:
    """Load the rows (see the module docstring); `vacuum=False` inside a transaction
    (the tests of tests/dossiers/test_query_shapes.py): ANALYZE only. Every moment
    is relative to `now` (default: the current time), which the database keeps
    (`seed_moment`): the measures run at it, however old the seed is."""
    from django.db import connection

    counts = sizes(scale)
    now = now or dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        # Bulk load: no foreign-key or append-only triggers per row (the data is
        # consistent by construction), indexes built once at the end.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute("SELECT setseed(0.19)")
        rebuild: list[str] = []
        for table in BULK_TABLES:
            drops, creates = _secondary(cursor, table)
            for statement in drops:
                cursor.execute(statement)
            rebuild += creates
        params = {
            **counts,
            "agencies": AGENCIES,
            "now": now,
            "start": now - dt.timedelta(days=365),
            "every": 1,
        }
        for name, sql in SEED_SQL:
            if name == "notifications":
                cursor.execute("SELECT max(id) FROM tracking_dossierevent")
                events = int(cursor.fetchone()[0] or 1)
                params["every"] = max(1, events // counts["notifications"])
            started = time.perf_counter()
            cursor.execute(sql, cast(Any, params))
            timings[name] = round(time.perf_counter() - started, 1)
            if vacuum:
                say(f"  seeded {name}: {cursor.rowcount} rows in {timings[name]} s")
            if name == "dossiers":
                started = time.perf_counter()
                filled = fill_processing_seconds(cursor)
                timings["processing_seconds"] = round(time.perf_counter() - started, 1)
                if vacuum:
                    say(f"  stored {filled} working times in {timings['processing_seconds']} s")
        started = time.perf_counter()
        for statement in rebuild:
            cursor.execute(statement)
        timings["indexes"] = round(time.perf_counter() - started, 1)
        if vacuum:
            say(f"  indexes rebuilt in {timings['indexes']} s")
        cursor.execute("SET session_replication_role = origin")
        cursor.execute(
            "SELECT setval('tracking_dossierevent_log_seq',"
            " (SELECT coalesce(max(id), 1) FROM tracking_dossierevent))"
        )
        for table in (
            "accounts_membership",
            "dossiers_agency",
            "dossiers_procedure",
            "notifications_device",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608  # nosec B608
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        # (Django's cursors bind on the client: a utility statement takes the text.)
        database = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"COMMENT ON DATABASE {database} IS %s", [SEED_COMMENT + now.isoformat()])
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE" if vacuum else "ANALYZE")
        timings["vacuum_analyze"] = round(time.perf_counter() - started, 1)
        counted = {}
        for table in (
            "accounts_user",
            "accounts_organisation",
            "accounts_membership",
            "dossiers_dossier",
            "dossiers_attachment",
            "tracking_dossierevent",
            "notifications_notification",
            "notifications_delivery",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608  # nosec B608
            counted[table] = int(cursor.fetchone()[0])
    return {"scale": scale, "moment": now.isoformat(), "rows": counted, "seconds": timings}


def seed_moment() -> dt.datetime:
    """The moment the seed's rows are relative to: its deadlines, its warned and
    overdue marks, its events' ages. The scans and the replays are measured at it:
    measured at the current time, an hour-old seed had twice as many dossiers at risk
    (the seed marks 90 % of those due within a day as warned, as the scan every 10
    minutes leaves them; an hour later the window reached unwarned ones: 138 at risk
    at 06:04, 204-208 at 06:40, 256-259 at 07:40 on 2026-12-07).

    Kept as the database's comment; for a seed made before, the last dossier's
    creation, which is the seed's moment by construction (created = start + i/N of
    a year, i = N)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        )
        found = cursor.fetchone()
        comment = found[0] if found else None
        if comment and comment.startswith(SEED_COMMENT):
            return dt.datetime.fromisoformat(comment.removeprefix(SEED_COMMENT))
        cursor.execute("SELECT max(created_at) FROM dossiers_dossier")
        last = cursor.fetchone()
    if last is None or last[0] is None:
        raise RuntimeError("the database holds no seed: run bench.scale without --skip-seed")
    return cast(dt.datetime, last[0])


# --- Measure ------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sample_rows(sql: str, count: int) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, [count])
        return list(cursor.fetchall())


class Probe:
    """One query shape: a call per sampled subject, timed; its SQL captured."""

    def __init__(
        self, name: str, subjects: list[Any], call: Callable[[Any], Any], most: int = 10**6
    ) -> None:
        self.name = name
        self.subjects = subjects
        self.call = call
        self.most = most  # at most this many calls (the scans run every 10 minutes)

    def run(self, samples: int) -> dict[str, Any]:
        from django.db import connection

        calls: list[float] = []
        queries: list[float] = []
        server: list[float] = []
        best: list[float] = []
        buffers: list[float] = []
        samples = min(samples, self.most)
        for index in range(samples):
            subject = self.subjects[index % len(self.subjects)]
            with CapturedQueries() as captured:
                started = time.perf_counter()
                self.call(subject)
                calls.append((time.perf_counter() - started) * 1000)
            queries.append(captured.seconds * 1000)
            first, lowest, touched = server_time(captured.queries)
            server.append(first)
            best.append(lowest)
            buffers.append(touched)
        # The plan of the slowest statement of one call, executed (EXPLAIN ANALYZE).
        with CapturedQueries() as captured:
            self.call(self.subjects[0])
        plans: list[str] = []
        with connection.cursor() as cursor:
            for sql, params in captured.queries:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
        plan = max(plans, key=execution_ms) if plans else ""
        return {
            "name": self.name,
            "samples": samples,
            # The database's share: every statement of the call, round trips included.
            "sql_p50_ms": round(percentile(queries, 0.5), 2),
            "sql_p99_ms": round(percentile(queries, 0.99), 2),
            # PostgreSQL's own planning + execution time of the call's slowest
            # statement (EXPLAIN ANALYZE, run again right after the call): what the
            # indexes decide, without the client's scheduling on a loaded machine.
            "server_p50_ms": round(percentile(server, 0.5), 2),
            "server_p99_ms": round(percentile(server, 0.99), 2),
            # The same, best of three EXPLAIN ANALYZE in a row: a query of 0.2 ms
            # descheduled for 20 ms on a machine at load 15 (2 cores) is the
            # machine's figure, not the plan's. And the plan's work, which no load
            # changes: shared buffers hit or read by the statement.
            "server_best3_p50_ms": round(percentile(best, 0.5), 2),
            "server_best3_p99_ms": round(percentile(best, 0.99), 2),
            "buffers_p50": int(percentile(buffers, 0.5)),
            "buffers_p99": int(percentile(buffers, 0.99)),
            # The whole Python call (ORM, objects, the handler's shaping).
            "call_p50_ms": round(percentile(calls, 0.5), 2),
            "call_p99_ms": round(percentile(calls, 0.99), 2),
            "target_server_p99_ms": TARGET_MS,
            # The verdict on the best of three: the first EXPLAIN's p99 on this
            # machine is its scheduler's (a 1 ms query at 26 ms while other
            # engineers' suites run); both are reported.
            "met": percentile(best, 0.99) <= TARGET_MS,
            "met_first_explain": percentile(server, 0.99) <= TARGET_MS,
            # The same target for the whole call (the route's handler and response).
            "call_met": percentile(calls, 0.99) <= TARGET_MS,
            "queries_per_call": len(captured.queries),
            "plan_summary": plan_summary(plan),
            "plan": plan,
        }


def execution_ms(plan: str) -> float:
    """A text EXPLAIN ANALYZE's planning + execution time."""
    found = re.findall(r"(?:Planning|Execution) Time: ([0-9.]+) ms", plan)
    return sum(float(ms) for ms in found)


def server_time(queries: list[tuple[str, Any]]) -> tuple[float, float, int]:
    """Planning + execution time (ms) of the slowest of `queries`, by PostgreSQL:
    the first EXPLAIN ANALYZE's, the lowest of three, and the shared buffers the
    first touched (hit or read).

    The slowest by a first EXPLAIN ANALYZE of each, then two more of it. (Until
    2026-12-08 the longest statement's text: the performance report's finished
    dossiers' statement outgrew its fee requests' when it took the stored working
    times' sum, and the slower one would no longer have been measured.)"""
    from django.db import connection

    if not queries:
        return 0.0, 0.0, 0

    def explained(sql: str, params: Any) -> tuple[float, int]:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + sql, params)
        found = cursor.fetchone()[0]
        plan = (json.loads(found) if isinstance(found, str) else found)[0]
        top = plan["Plan"]
        touched = int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
        return float(plan["Planning Time"]) + float(plan["Execution Time"]), touched

    with connection.cursor() as cursor:
        firsts = [(explained(sql, params), sql, params) for sql, params in queries]
        (first, touched), sql, params = max(firsts, key=lambda found: found[0][0])
        times = [first, *(explained(sql, params)[0] for _ in range(2))]
    return times[0], min(times), touched


class CapturedQueries:
    """The (sql, params) the ORM and raw cursors send while active, and the time
    spent in them."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, Any]] = []
        self.seconds = 0.0

    def _wrap(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not many:
            self.queries.append((sql, params))
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started

    def __enter__(self) -> CapturedQueries:
        from django.db import connection

        self._context = connection.execute_wrapper(self._wrap)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._context.__exit__(*exc)


def plan_summary(plan: str) -> str:
    """Node types and indexes of a plan, one line: 'Limit > Sort > Bitmap Heap Scan on ...'."""
    nodes = []
    for line in plan.splitlines():
        text = line.strip().removeprefix("->").strip()
        match = re.match(r"([A-Z][A-Za-z ]+?)(?: using (\S+))?(?: on (\S+))?(?:\s+\(|$)", text)
        if match and not text.startswith(("Buffers", "Planning", "Execution", "Sort Key")):
            node, index, table = match.groups()
            part = node + (f" using {index}" if index else "") + (f" on {table}" if table else "")
            nodes.append(part)
    execution = re.search(r"Execution Time: ([\d.]+) ms", plan)
    tail = f" ({execution.group(1)} ms)" if execution else ""
    return " > ".join(nodes) + tail


def probes(now: dt.datetime) -> list[Probe]:
    from django.test import RequestFactory

    from auth.models import User
    from backend.pagination import PageParams, encode_cursor
    from dossiers import monitoring
    from dossiers.agency import api as agency_api
    from dossiers.agency.access import agency_dossiers
    from dossiers.api import DossierFilters, list_dossiers
    from dossiers.deadlines import business_tz
    from dossiers.models import Agency, AgencyCredential, Dossier
    from tracking import stream

    factory = RequestFactory()
    # The routes' handlers are called with their response step: the route's response
    # schema and the API's JSON renderer, as django-ninja runs them after the handler.
    respond = response_step()

    # Citizens with dossiers; members of the largest organisations.
    citizens = [
        row[0]
        for row in sample_rows(
            "SELECT applicant_id FROM dossiers_dossier WHERE organisation_id IS NULL "
            "ORDER BY created_at DESC LIMIT %s",
            400,
        )
    ][::4]
    members = [
        row[0]
        for row in sample_rows(
            "SELECT m.user_id FROM accounts_membership m JOIN ("
            " SELECT organisation_id, count(*) n FROM dossiers_dossier"
            " WHERE organisation_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 10) big"
            " ON big.organisation_id = m.organisation_id LIMIT %s",
            100,
        )
    ]
    users = {u.pk: u for u in User.objects.filter(pk__in=[*citizens, *members])}
    citizen_users = [users[pk] for pk in citizens if pk in users]
    member_users = [users[pk] for pk in members if pk in users]

    def list_for(user: User) -> Any:
        request = factory.get("/api/v1/dossiers")
        request.auth = user  # type: ignore[attr-defined]
        return respond(
            list_dossiers, request, list_dossiers(request, DossierFilters.model_validate({}))
        )

    def event_near(user: User, days: float) -> int:
        # The log's id at that moment (ids grow with time), then the user's last
        # event up to it, backwards on the (dossier, id) and (organisation, id)
        # indexes: a sort of the user's events by time would read a large
        # organisation's millions, spread over the whole table as the log is.
        with connection_cursor() as cursor:
            cursor.execute(
                "WITH t AS (SELECT coalesce((SELECT id FROM tracking_dossierevent"
                " WHERE created_at <= %s ORDER BY created_at DESC LIMIT 1), 0) AS id)"
                " SELECT coalesce(max(m.id), 0) FROM t, ("
                " SELECT (SELECT max(e.id) FROM tracking_dossierevent e"
                "  WHERE e.dossier_id = d.id AND e.id <= (SELECT id FROM t)) AS id"
                " FROM dossiers_dossier d WHERE d.applicant_id = %s"
                " UNION ALL"
                " SELECT (SELECT max(e.id) FROM tracking_dossierevent e"
                "  WHERE e.organisation_id = ms.organisation_id AND e.id <= (SELECT id FROM t))"
                " FROM accounts_membership ms WHERE ms.user_id = %s) m",
                [now - dt.timedelta(days=days), user.pk, user.pk],
            )
            found = cursor.fetchone()
        return int(found[0]) if found else 0

    resume_points = [(u, event_near(u, 1)) for u in citizen_users]
    old_citizen = [(u, stream.Position(event_near(u, 60))) for u in citizen_users]
    old_member = [(u, stream.Position(event_near(u, 60))) for u in member_users]

    def replay(subject: tuple[User, stream.Position]) -> Any:
        user, position = subject
        subscription = stream.Subscription(user, user.pk, None, position)
        return stream.pull(subscription)

    def live(user: User) -> Any:
        position, seen = stream.live_position(user, None)
        subscription = stream.Subscription(user, user.pk, None, position, seen)
        return stream.pull(subscription)

    biggest = Agency.objects.filter(pk=1).get()
    credential = AgencyCredential(agency=biggest, key_id="scale")
    settled = now - dt.timedelta(seconds=60)
    heads = list(
        Dossier.objects.filter(agency=biggest, updated_at__lte=settled)
        .exclude(status=0)
        .order_by("-updated_at", "-id")
        .values_list("updated_at", "id")[:2000:20]
    )
    feed_cursors = [encode_cursor([moment, key]) for moment, key in heads]

    def feed(cursor: str) -> Any:
        request = factory.get("/api/v1/agency/feed")
        request.agency_credential = credential  # type: ignore[attr-defined]
        page = agency_api.feed(request, agency_api.FeedParams(cursor=cursor, limit=100))
        return respond(agency_api.feed, request, page)

    # The largest agency's monitoring: its counts, and pages of its overdue list
    # (the first, and pages deep in it: 100 dossiers each, whatever the list's size).
    overdue_keys = list(
        monitoring.overdue(agency_dossiers(biggest), now)
        .order_by("deadline", "pk")
        .values_list("deadline", "pk")[99::100]  # type: ignore[misc]  # an annotation
    )
    overdue_cursors: list[str | None] = [None, *(encode_cursor(list(k)) for k in overdue_keys)]
    # And of its at-risk list (the first page, and every 100th dossier on).
    at_risk_keys = [
        (dossier.deadline, dossier.pk)  # type: ignore[attr-defined]
        for dossier, _left in monitoring.at_risk(agency_dossiers(biggest), now, biggest)[99::100]
    ]
    at_risk_cursors: list[str | None] = [None, *(encode_cursor(list(k)) for k in at_risk_keys)]

    def agency_request(path: str) -> Any:
        request = factory.get(path)
        request.agency_credential = credential  # type: ignore[attr-defined]
        return request

    def monitoring_counts(_: Any) -> Any:
        request = agency_request("/api/v1/agency/monitoring/summary")
        summary = agency_api.monitoring_summary(request)
        return respond(agency_api.monitoring_summary, request, summary)

    def monitoring_page(cursor: str | None) -> Any:
        request = agency_request("/api/v1/agency/monitoring/overdue")
        params = PageParams(cursor=cursor, limit=100)
        page = agency_api.monitoring_overdue(request, params)
        return respond(agency_api.monitoring_overdue, request, page)

    def at_risk_page(cursor: str | None) -> Any:
        request = agency_request("/api/v1/agency/monitoring/at-risk")
        params = PageParams(cursor=cursor, limit=100)
        page = agency_api.monitoring_at_risk(request, params)
        return respond(agency_api.monitoring_at_risk, request, page)

    # Its performance report for the 30 business days up to the seed's moment (the
    # signed route; its "overdue now" counts are at the current time).
    last_day = now.astimezone(business_tz()).date()
    period = agency_api.PerformanceParams.model_validate(
        {"from": (last_day - dt.timedelta(days=29)).isoformat(), "to": last_day.isoformat()}
    )

    def performance_report(params: Any) -> Any:
        request = agency_request("/api/v1/agency/performance")
        request.auth = credential  # what the signature auth gives the route
        figures = agency_api.performance(request, params)
        return respond(agency_api.performance, request, figures)

    def performance_report_all(params: Any) -> Any:
        # The same route for a staff member's token with no agency named: every agency's.
        request = factory.get("/api/v1/agency/performance")
        request.auth = User(is_staff=True)  # type: ignore[attr-defined]
        figures = agency_api.performance(request, params)
        return respond(agency_api.performance, request, figures)

    def overdue_scan(_: Any) -> Any:
        return list(
            monitoring.overdue(now=now).filter(overdue_at__isnull=True).values_list("pk", flat=True)
        )

    def at_risk_scan(_: Any) -> Any:
        return monitoring.at_risk(
            Dossier.objects.filter(deadline_warned_at__isnull=True, overdue_at__isnull=True), now
        )

    return [
        Probe("list (citizen)", citizen_users, list_for),
        Probe("list (organisation member)", member_users, list_for),
        Probe("resume (event of yesterday)", resume_points, lambda s: stream.resume(*s)),
        Probe("replay (citizen, 2 months back)", old_citizen, replay),
        Probe("replay (organisation member, 2 months back)", old_member, replay),
        Probe("live pull at the head (organisation member)", member_users, live),
        Probe("agency feed near the head (largest agency)", feed_cursors, feed),
        Probe("agency monitoring counts (largest agency)", [None], monitoring_counts, most=30),
        Probe("agency monitoring overdue page (largest agency)", overdue_cursors, monitoring_page),
        Probe("agency monitoring at-risk page (largest agency)", at_risk_cursors, at_risk_page),
        Probe(
            "agency performance report, 30 days (largest agency)",
            [period],
            performance_report,
            most=30,
        ),
        Probe(
            "agency performance report, 30 days (all agencies)",
            [period],
            performance_report_all,
            most=30,
        ),
        Probe("overdue scan", [None], overdue_scan, most=30),
        Probe("at-risk scan", [None], at_risk_scan, most=30),
    ]


def response_step() -> Callable[[Callable[..., Any], Any, Any], Any]:
    """What django-ninja does with a handler's result: validate it against the route's
    response schema and render it with the API's JSON renderer (the real code path)."""
    from django.urls import get_resolver

    from backend.api import api

    # The URLconf adds the apps' routers to `api`: load it before asking for them.
    get_resolver().url_patterns  # noqa: B018
    operations = {
        operation.view_func: operation
        for router in api._get_bound_routers()  # the routes as the URLconf serves them
        for path_view in router.path_operations.values()
        for operation in path_view.operations
    }

    def respond(handler: Callable[..., Any], request: Any, result: Any) -> Any:
        response = operations[handler]._result_to_response(
            request, result, api.create_temporal_response(request)
        )
        if response.status_code != 200:
            raise RuntimeError(f"{handler.__name__} answered {response.status_code}")
        return response

    return respond


def connection_cursor() -> Any:
    from django.db import connection

    return connection.cursor()


def measure(samples: int) -> list[dict[str, Any]]:
    from dossiers import deadlines

    # As the worker does before its first job (WORKER_WARM_UP): the scans' first call
    # would otherwise build the national holiday calendars.
    deadlines.warm_up()
    now = seed_moment()
    say(f"  measured at the seed's moment, {now.isoformat()}")
    results = []
    for probe in probes(now):
        result = probe.run(samples)
        say(
            f"  {result['name']:<44} server p50 {result['server_p50_ms']:>6.2f} p99"
            f" {result['server_p99_ms']:>6.2f} | best3 p50 {result['server_best3_p50_ms']:>6.2f}"
            f" p99 {result['server_best3_p99_ms']:>6.2f} | buffers p99 {result['buffers_p99']:>6}"
            f" | SQL p50 {result['sql_p50_ms']:>7.2f} p99"
            f" {result['sql_p99_ms']:>7.2f} ms | call p50 {result['call_p50_ms']:>7.2f} p99"
            f" {result['call_p99_ms']:>7.2f} ms  {'met' if result['met'] else 'MISSED'}"
            f"  | {result['plan_summary'][:150]}"
        )
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="1 = 1 M dossiers (default 0.1)")
    parser.add_argument("--samples", type=int, default=200, help="calls per query shape")
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database")
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="with --skip-seed: apply new migrations to the seeded database in place first"
        " (as production would: the backfills run on the full-size tables, timed)",
    )
    parser.add_argument(
        "--fill-processing",
        action="store_true",
        help="with --skip-seed: store the working time of the finished dossiers without it"
        " (a seed made before dossiers 0027), as the finishing move would have",
    )
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    args = parser.parse_args()
    url = database_url()
    env = prepare_environment(url)
    import django

    from fakes import harness

    seeded: dict[str, Any] = {}
    if args.skip_seed and args.migrate:
        started = time.perf_counter()
        harness.manage("migrate", "--noinput", env=env, timeout=7200)
        seeded["migrate_seconds"] = round(time.perf_counter() - started, 1)
        say(f"migrated in place in {seeded['migrate_seconds']} s")
    if not args.skip_seed:
        say(f"recreating {urlsplit(url).path.lstrip('/')} and migrating")
        harness.recreate_database(url)
        harness.manage("migrate", "--noinput", env=env, timeout=1800)
    django.setup()
    from backend.gc_freeze import freeze_startup_objects

    # As the web and worker processes do once loaded: the calls' p99 is then not a
    # full collection walking Django's own objects (GC_FREEZE_AT_STARTUP=0: not done).
    freeze_startup_objects()
    if not args.skip_seed:
        started = time.perf_counter()
        seeded = seed(args.scale)
        seeded["total_seconds"] = round(time.perf_counter() - started, 1)
        say(f"seeded in {seeded['total_seconds']} s: {seeded['rows']}")
    elif args.fill_processing:
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cursor:
            filled = fill_processing_seconds(cursor)
            cursor.execute("VACUUM ANALYZE dossiers_dossier")
        seeded["fill_processing_seconds"] = round(time.perf_counter() - started, 1)
        say(f"stored {filled} working times in {seeded['fill_processing_seconds']} s")
    results = measure(args.samples)
    report = {
        "label": args.label,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seed": seeded,
        "results": [{k: v for k, v in r.items() if k != "plan"} for r in results],
    }
    previous = json.loads(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else []
    RESULTS_FILE.write_text(json.dumps([*previous, report], indent=2, default=str) + "\n")
    PLANS_FILE.write_text(
        "\n\n".join(f"== {r['name']}\n{r['plan']}" for r in results) + "\n", encoding="utf-8"
    )
    missed = [r["name"] for r in results if not r["met"]]
    calls_missed = [r["name"] for r in results if not r["call_met"]]
    say(
        f"{len(results) - len(missed)} of {len(results)} query shapes within {TARGET_MS} ms p99"
        f" (server, best of 3 EXPLAIN ANALYZE); {len(results) - len(calls_missed)} of"
        f" {len(results)} whole calls (missed: {', '.join(calls_missed) or 'none'})"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
