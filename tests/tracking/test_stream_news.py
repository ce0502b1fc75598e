"""The heartbeat's cheap check: an idle subscription reads the log only when it changed."""

from __future__ import annotations

import time

import pytest

from dossiers.models import DossierEvent
from tests.tracking.conftest import Citizen, add_event
from tracking import stream
from tracking.payloads import EventFrame

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 60  # seconds: the log settles once the event transactions before it end


def subscribe(citizen: Citizen) -> stream.Subscription:
    position, seen = stream.live_position(citizen.user, None)
    return stream.Subscription(
        user=citizen.user,
        session_id=citizen.session.pk,
        dossier_id=None,
        position=position,
        seen=seen,
    )


def pull_until_settled(subscription: stream.Subscription) -> list[EventFrame]:
    """Pull until nothing is held (an earlier test's rolled-back event leaves a gap
    that the probe settles a few looks later)."""
    frames = stream.pull(subscription)
    deadline = time.monotonic() + WAIT
    while subscription.held and time.monotonic() < deadline:
        frames += stream.pull(subscription)
    assert not subscription.held
    return frames


def wait_until_final(event: DossierEvent) -> None:
    """Until the log is settled up to the event."""
    deadline = time.monotonic() + WAIT
    while (stream.settle(probe_step=True) or 0) < event.id:
        assert time.monotonic() < deadline, "the log never settled up to the event"


def test_a_subscription_that_never_looked_may_have_news() -> None:
    assert stream.may_have_news(subscribe(Citizen())) is True


def test_idle_subscription_has_no_news_until_an_event_is_written() -> None:
    alice, bob = Citizen(), Citizen()
    subscription = subscribe(alice)
    assert pull_until_settled(subscription) == []
    assert stream.may_have_news(subscription) is False

    event = add_event(alice.dossier)

    assert stream.may_have_news(subscription) is True
    assert [frame["id"] for frame in pull_until_settled(subscription)] == [event.id]
    assert stream.may_have_news(subscription) is False
    # Anyone's event counts (the check is one index probe, not the user's query):
    # the pull that follows finds nothing for alice and the check is quiet again.
    other = add_event(bob.dossier)
    assert stream.may_have_news(subscription) is True
    wait_until_final(other)
    assert pull_until_settled(subscription) == []
    assert stream.may_have_news(subscription) is False


def test_heartbeat_check_reports_a_revoked_session_and_no_news() -> None:
    alice = Citizen()
    subscription = subscribe(alice)
    pull_until_settled(subscription)
    assert stream.heartbeat_check(subscription) == (True, False)
    alice.session.revoked_at = alice.session.last_seen_at
    alice.session.save(update_fields=["revoked_at"])
    assert stream.heartbeat_check(subscription) == (False, False)


def test_a_log_whose_ids_went_back_is_settled_again() -> None:
    # As if the database had been restored under a running process: what the
    # process knew settled is past every id the log hands out now.
    alice = Citizen()
    stream.SETTLED.raise_to(10**15)
    subscription = subscribe(alice)
    assert subscription.position.id < 10**15
    event = add_event(alice.dossier)
    assert [frame["id"] for frame in pull_until_settled(subscription)] == [event.id]
