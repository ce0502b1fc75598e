"""How the push-under-faults row counts duplicates and the waits FCM asked for."""

from __future__ import annotations

from typing import Any

import pytest

from bench.benchmarks.push_faults import (
    asked_wait_seconds,
    duplicate_analysis,
    idle_outside_windows,
)


def message(token: str, notification: int, collapse: str = "dossier-1") -> dict[str, Any]:
    return {
        "token": token,
        "data": {"notification_id": str(notification)},
        "android": {"collapse_key": collapse, "notification": {"tag": collapse}},
        "apns": {"headers": {"apns-collapse-id": collapse}},
    }


def attempt(token: str, notification: int, outcome: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "token": token,
        "outcome": outcome,
        "at": extra.pop("at", 0.0),
        "message": extra.pop("message", None) or message(token, notification),
        **extra,
    }


def test_a_resend_after_a_lost_answer_is_the_lost_answers_duplicate() -> None:
    attempts = [
        attempt("a", 1, answer_lost=True),
        attempt("a", 1),  # the retry of the timed-out send
        attempt("b", 1, "UNAVAILABLE"),
        attempt("b", 1),
        attempt("c", 1),
    ]
    assert duplicate_analysis(attempts) == {
        "unique_deliveries": 3,
        "lost_answers": 1,
        "duplicates_at_wire": 1,
        "duplicates_of_lost_answers": 1,
        "duplicates_caused_by_project": 0,
        "device_visible_duplicates": 0,
    }


def test_a_resend_of_an_answered_push_is_the_projects_duplicate() -> None:
    analysis = duplicate_analysis([attempt("a", 1), attempt("a", 1)])
    assert analysis["duplicates_at_wire"] == 1
    assert analysis["duplicates_caused_by_project"] == 1
    assert analysis["duplicates_of_lost_answers"] == 0


def test_copies_without_the_same_collapse_id_are_visible_duplicates() -> None:
    bare = {"token": "a", "data": {"notification_id": "1"}}
    other = message("b", 2, collapse="dossier-2")
    analysis = duplicate_analysis(
        [
            attempt("a", 1, message=bare, answer_lost=True),
            attempt("a", 1, message=bare),
            attempt("b", 2, message=message("b", 2), answer_lost=True),
            attempt("b", 2, message=other),
        ]
    )
    assert analysis["duplicates_at_wire"] == 2
    assert analysis["device_visible_duplicates"] == 2


def test_the_waits_asked_for_are_the_union_of_the_retry_after_windows() -> None:
    attempts = [
        attempt("a", 1, "QUOTA_EXCEEDED", at=10.0, retry_after=1),
        attempt("b", 1, "QUOTA_EXCEEDED", at=10.5, retry_after=1),  # overlaps: +0.5
        attempt("c", 1, "QUOTA_EXCEEDED", at=10.6, retry_after=1),  # inside: +0.1
        attempt("d", 1, "UNAVAILABLE", at=11.0),  # no Retry-After
        attempt("e", 1, "QUOTA_EXCEEDED", at=20.0, retry_after=2),
    ]
    assert asked_wait_seconds(attempts) == pytest.approx(3.6)
    assert asked_wait_seconds([attempt("a", 1)]) == 0.0


def test_idle_time_counts_only_pauses_no_retry_after_covers() -> None:
    attempts = [
        attempt("a", 1, at=0.0),
        attempt("b", 1, "QUOTA_EXCEEDED", at=0.1, retry_after=1),  # window 0.1-1.1
        attempt("c", 1, at=2.0),  # idle 1.1-2.0 outside the window: 0.9
        attempt("d", 1, at=2.1),  # a short gap: sending
        attempt("e", 1, at=5.1),  # idle 3.0
    ]
    assert idle_outside_windows(attempts) == pytest.approx(3.9)
