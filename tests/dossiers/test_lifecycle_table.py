"""Every action × actor × status of the one transition table: allowed moves write
exactly one event; forbidden ones answer invalid_transition and write nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from dossiers import lifecycle
from dossiers.lifecycle import ROLES, TRANSITIONS, Actor, InvalidTransition
from dossiers.models import Dossier, DossierEvent
from tests.factories import make_dossier, make_user

pytestmark = pytest.mark.django_db

STATUSES = [int(s) for s in Dossier.Status]
ACTIONS = sorted(lifecycle.ACTIONS)


def actor_for(role: str, dossier: Dossier) -> Actor:
    return {
        "agency": Actor.agency_system("T-AGENCY (ak_test)"),
        "citizen": Actor.citizen(dossier.applicant),
        "carrier": Actor.carrier("VNPost"),
        "system": Actor.system(),
    }[role]


def arguments(action: str, dossier: Dossier) -> dict[str, Any]:
    assert dossier.appointment_at is not None
    return {
        "refuse": {"reason": "Sai thẩm quyền"},
        "request_supplement": {"documents": [{"code": "", "note": "Ảnh rõ hơn"}], "message": "m"},
        "request_payment": {"amount": 50_000},
        "record_payment": {
            "amount": 50_000,
            "payment_id": "p-1",
            "gateway": "vnpay",
            "gateway_reference": "14000001",
            "receipt_number": "T001-BL-26-00000001",
        },
        "hand_over": {"method": "post"},
        "stop": {"reason": "Theo yêu cầu"},
        "apologise": {
            "new_appointment_at": dossier.appointment_at + dt.timedelta(days=2),
            "reason": "Cần xác minh thêm",
        },
        "warn_deadline_at_risk": {"seconds_left": 3600},
    }.get(action, {})


def test_every_action_has_a_rule_and_every_rule_but_submit_an_action() -> None:
    assert set(TRANSITIONS) - set(lifecycle.ACTIONS) == {"submit"}


def test_allowed_actions_reads_the_table() -> None:
    assert lifecycle.allowed_actions("agency", Dossier.Status.NEW) == ["accept", "refuse"]
    assert lifecycle.allowed_actions("citizen", Dossier.Status.NEW) == ["withdraw"]
    assert lifecycle.allowed_actions("carrier", Dossier.Status.RESULT_READY) == ["hand_over"]
    assert lifecycle.allowed_actions("citizen", Dossier.Status.ACCEPTED) == []


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS)
def test_transition_table(action: str, role: str, status: int) -> None:
    now = timezone.now()
    dossier = make_dossier(
        make_user(password=None),
        status=status,
        appointment_at=now - dt.timedelta(hours=1),
        accepted_at=now,
    )
    actor = actor_for(role, dossier)
    rule = TRANSITIONS[action]
    function = lifecycle.ACTIONS[action]
    allowed = role in rule.roles and status in rule.sources

    if not allowed:
        with pytest.raises(InvalidTransition) as caught:
            function(dossier.pk, actor, **arguments(action, dossier))
        assert caught.value.status == 409
        assert caught.value.code == "invalid_transition"
        assert caught.value.details["current_status"] == status
        assert caught.value.details["action"] == action
        dossier.refresh_from_db()
        assert dossier.status == status
        assert dossier.version == 1
        assert DossierEvent.objects.filter(dossier=dossier).count() == 0
        return

    function(dossier.pk, actor, **arguments(action, dossier))
    dossier.refresh_from_db()
    expected_status = rule.target if rule.target is not None else status
    assert dossier.status == expected_status
    assert dossier.version == 2
    events = list(DossierEvent.objects.filter(dossier=dossier))
    assert len(events) == 1
    event = events[0]
    assert event.type == rule.event_type
    assert event.status_before == status
    assert event.status_after == expected_status
    assert event.actor_type == actor.kind


def test_ensure_allowed_serves_moves_made_elsewhere() -> None:
    draft = make_dossier(make_user(password=None))
    lifecycle.ensure_allowed("submit", draft, Actor.citizen(draft.applicant))
    with pytest.raises(InvalidTransition):
        lifecycle.ensure_allowed("submit", draft, Actor.agency_system("x"))


@pytest.mark.django_db(transaction=True)
def test_record_payment_runs_only_inside_the_callers_transaction() -> None:
    # It opens no savepoint of its own (the payments app's transaction holds the
    # dossier's lock until the payment is saved too): alone, it refuses to start.
    dossier = make_dossier(make_user(password=None), status=6, appointment_at=timezone.now())

    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        lifecycle.record_payment(dossier.pk, Actor.system(), **arguments("record_payment", dossier))

    dossier.refresh_from_db()
    assert (dossier.status, dossier.version) == (6, 1)
    assert not DossierEvent.objects.filter(dossier=dossier).exists()
