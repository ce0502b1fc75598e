"""The legal deadline is never after the appointment, and is set only beside one: a
CHECK constraint on dossiers (dossier_original_appointment_not_after, migration 0023,
added NOT VALID then validated), which the lifecycle's moves of the two dates keep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from dossiers import lifecycle
from dossiers.lifecycle import Actor
from dossiers.models import Dossier
from tests.conftest import make_user
from tests.dossiers.conftest import at, frozen
from tests.factories import make_dossier, make_procedure

S = Dossier.Status
AGENCY = Actor.agency_system("T (ak_test)")
NAME = "dossier_original_appointment_not_after"


def dates(dossier: Dossier) -> tuple[dt.datetime | None, dt.datetime | None]:
    row = Dossier.objects.values_list("original_appointment_at", "appointment_at").get(
        pk=dossier.pk
    )
    return row[0], row[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("original", "appointment"),
    [
        (at(2026, 3, 13, 16, 0, 0, 1), at(2026, 3, 13, 16)),  # after it, by a microsecond
        (at(2026, 3, 13, 16), None),  # a legal deadline with no appointment
    ],
)
def test_postgresql_refuses_a_legal_deadline_after_the_appointment_or_without_one(
    original: dt.datetime, appointment: dt.datetime | None
) -> None:
    dossier = make_dossier(
        make_user(password=None), make_procedure(), status=S.PROCESSING,
        appointment_at=at(2026, 3, 13, 16),
    )  # fmt: skip
    # Written as no action writes it: straight SQL, past the model's validation.
    with (
        pytest.raises(IntegrityError, match=NAME),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE dossiers_dossier SET original_appointment_at = %s, appointment_at = %s"
            " WHERE id = %s",
            [original, appointment, dossier.pk],
        )
    assert dates(dossier) == (None, at(2026, 3, 13, 16))  # nothing written


@pytest.mark.django_db
def test_the_constraint_takes_a_legal_deadline_equal_to_the_appointment_or_none() -> None:
    applicant, procedure = make_user(password=None), make_procedure()
    moment = at(2026, 3, 13, 16)
    equal = make_dossier(applicant, procedure, status=S.PROCESSING,
                         original_appointment_at=moment, appointment_at=moment)  # fmt: skip
    bare = make_dossier(applicant, procedure, status=S.NEW)
    assert dates(equal) == (moment, moment)
    assert dates(bare) == (None, None)


@pytest.mark.django_db
def test_the_lifecycles_moves_of_the_two_dates_keep_the_constraint() -> None:
    # Accepted with an appointment on a Saturday, apologised to the Sunday: a supplement's
    # pause then moves both to the same moment (the working time added to each starts
    # on the Monday), so the constraint is `<=`, not `<`.
    dossier = make_dossier(make_user(password=None), make_procedure(), status=S.NEW)
    seen = []

    def step(moment: dt.datetime, move: str, **arguments: object) -> None:
        actor = Actor.citizen(dossier.applicant) if move == "submit_supplement" else AGENCY
        with frozen(moment):
            lifecycle.ACTIONS[move](dossier.pk, actor, **arguments)
        original, appointment = dates(dossier)
        # What the constraint says, checked after each move as PostgreSQL checks it.
        assert original is None or (appointment is not None and original <= appointment)
        seen.append((move, original, appointment))

    step(at(2026, 3, 10, 9), "accept", appointment_at=at(2026, 3, 14, 10))
    step(at(2026, 3, 11, 9), "apologise", new_appointment_at=at(2026, 3, 15, 10), reason="r")
    step(at(2026, 3, 11, 10), "request_supplement", documents=[{"note": "x"}], message="m")
    # Paused Wed 10:00 to Thu 10:00: 8 working hours, from Monday 07:00 for both dates.
    step(at(2026, 3, 12, 10), "submit_supplement")
    step(at(2026, 3, 12, 11), "apologise", new_appointment_at=at(2026, 3, 20, 10), reason="r")
    step(at(2026, 3, 13, 9), "request_supplement", documents=[{"note": "y"}], message="m")
    step(at(2026, 3, 13, 10), "apologise", new_appointment_at=at(2026, 3, 23, 10), reason="r")
    step(at(2026, 3, 16, 9), "submit_supplement")
    step(at(2026, 3, 17, 9), "complete")
    assert seen == [
        ("accept", None, at(2026, 3, 14, 10)),
        ("apologise", at(2026, 3, 14, 10), at(2026, 3, 15, 10)),
        ("request_supplement", at(2026, 3, 14, 10), at(2026, 3, 15, 10)),
        ("submit_supplement", at(2026, 3, 16, 17), at(2026, 3, 16, 17)),  # equal
        ("apologise", at(2026, 3, 16, 17), at(2026, 3, 20, 10)),
        ("request_supplement", at(2026, 3, 16, 17), at(2026, 3, 20, 10)),
        ("apologise", at(2026, 3, 16, 17), at(2026, 3, 23, 10)),
        # Paused Fri 09:00 to Mon 09:00: 8 working hours (Fri 6, Mon 2), added to each.
        ("submit_supplement", at(2026, 3, 17, 17), at(2026, 3, 24, 10)),
        ("complete", at(2026, 3, 17, 17), at(2026, 3, 24, 10)),
    ]


@pytest.fixture
def before_0023(transactional_db: None) -> Iterator[None]:
    MigrationExecutor(connection).migrate([("dossiers", "0022_event_payment_requests_index")])
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def validated() -> list[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [NAME])
        return [row[0] for row in cursor.fetchall()]


def test_0023_validates_the_constraint_and_an_interrupted_run_ends_it(before_0023: None) -> None:
    assert validated() == []
    # What a run stopped between its two statements leaves: the constraint NOT VALID.
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE dossiers_dossier ADD CONSTRAINT {NAME} CHECK"
            " (original_appointment_at IS NULL OR (appointment_at IS NOT NULL"
            " AND original_appointment_at <= appointment_at)) NOT VALID"
        )
    assert validated() == [False]
    MigrationExecutor(connection).migrate(
        [("dossiers", "0023_dossier_original_appointment_not_after")]
    )
    assert validated() == [True]
