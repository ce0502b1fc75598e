"""The soak's reconciliation (tests/soak/reconcile.py) on synthetic data: a clean run
passes, and each kind of loss, duplicate or leak is counted where it happened.
The soak itself (`make soak`) is not part of the suite."""

from __future__ import annotations

from typing import Any

from tests.soak.reconcile import (
    DossierRecord,
    Event,
    SocketRecord,
    lateness,
    reconcile,
    table,
)

CITIZEN = "citizen-1"
OTHER = "citizen-2"
TOKEN = "token-1"
NOTIFIED = {
    "dossier.submitted",
    "dossier.accepted",
    "dossier.processing_started",
    "dossier.completed",
    "dossier.handed_over",
}
MOVES = list(NOTIFIED - {"dossier.submitted"})


def journey() -> dict[str, Any]:
    """One dossier of CITIZEN, five events (the first by the citizen), everything
    delivered once: what a clean soak collects."""
    events = [Event(1, "d1", "dossier.submitted", CITIZEN, 100.0)] + [
        Event(2 + n, "d1", kind, None, 101.0 + n) for n, kind in enumerate(sorted(MOVES))
    ]
    ids = [e.id for e in events]
    return {
        "dossiers": {
            "d1": DossierRecord(
                "d1", CITIZEN, "G01.1", ["dossier.submitted", *(e.type for e in events[1:])]
            )
        },
        "events": events,
        "notified_types": set(NOTIFIED),
        "sockets": {
            CITIZEN: SocketRecord(CITIZEN, received=[(i, 100.5 + i) for i in ids]),
            OTHER: SocketRecord(OTHER),
        },
        "tokens": {CITIZEN: [TOKEN], OTHER: ["token-2"]},
        "pushes": [(i, TOKEN) for i in ids[1:]],  # the citizen's own submission: no push
        "inbox": {CITIZEN: list(ids), OTHER: []},
    }


def test_a_clean_run_passes_with_every_channel_complete() -> None:
    result = reconcile(**journey())

    assert result["ok"] is True
    assert result["problems"] == []
    totals = result["totals"]
    assert totals["events"] == {"expected": 5, "got": 5, "lost": 0, "duplicated": 0, "extra": 0}
    assert totals["frames"] == {"expected": 5, "got": 5, "lost": 0, "duplicated": 0, "extra": 0}
    assert totals["pushes"] == {"expected": 4, "got": 4, "lost": 0, "duplicated": 0, "extra": 0}
    assert totals["inbox"] == {"expected": 5, "got": 5, "lost": 0, "duplicated": 0, "extra": 0}
    assert "no loss, no duplicate" in table(result)


def test_a_lost_push_and_a_duplicated_frame_fail_the_run_and_are_named() -> None:
    data = journey()
    data["pushes"].remove((3, TOKEN))  # FCM never accepted event 3's push
    data["sockets"][CITIZEN].received.append((4, 200.0))  # event 4 arrived twice

    result = reconcile(**data)

    assert result["ok"] is False
    assert result["totals"]["pushes"]["lost"] == 1
    assert result["totals"]["pushes"]["duplicated"] == 0
    assert result["totals"]["frames"]["duplicated"] == 1
    assert result["totals"]["frames"]["lost"] == 0
    assert {"dossier": "d1", "channel": "pushes", "lost": (3, TOKEN)} in result["problems"]
    assert {"dossier": "d1", "channel": "frames", "duplicated": 4} in result["problems"]
    row = result["dossiers"]["d1"]
    assert row["pushes"]["lost"] == 1
    assert row["frames"]["duplicated"] == 1
    assert "FAILED" in table(result)


def test_duplicated_pushes_inbox_items_and_events_and_lost_inbox_items_are_counted() -> None:
    data = journey()
    data["pushes"].append((2, TOKEN))  # sent twice
    data["inbox"][CITIZEN].remove(5)  # an inbox item missing
    data["inbox"][CITIZEN].append(2)  # and another twice
    data["events"].append(Event(9, "d1", "dossier.accepted", None, 120.0))  # a second accept
    data["sockets"][CITIZEN].received.append((9, 121.0))
    data["inbox"][CITIZEN].append(9)

    result = reconcile(**data)

    totals = result["totals"]
    assert result["ok"] is False
    assert totals["pushes"]["duplicated"] == 1
    assert totals["inbox"]["lost"] == 1
    assert totals["inbox"]["duplicated"] == 1
    assert totals["events"]["duplicated"] == 1
    # The second accept's push was expected by the push rule (an agency event) but never
    # sent: a loss there too.
    assert totals["pushes"]["lost"] == 1


def test_an_event_the_socket_never_got_is_a_loss_unless_it_had_no_cursor() -> None:
    data = journey()
    data["sockets"][CITIZEN].received = [(i, 101.0) for i in (3, 4, 5)]

    lost = reconcile(**data)
    assert lost["totals"]["frames"]["lost"] == 2
    assert lost["ok"] is False

    data["sockets"][CITIZEN].excused = {1, 2}  # down before it had seen any event
    excused = reconcile(**data)
    assert excused["totals"]["frames"] == {
        "expected": 3,
        "got": 3,
        "lost": 0,
        "duplicated": 0,
        "extra": 0,
    }
    assert excused["excused_frames"] == 2
    assert excused["ok"] is True


def test_leaks_fail_a_run_without_loss_push_to_the_actor_and_foreign_frame() -> None:
    data = journey()
    data["pushes"].append((1, TOKEN))  # a push of the citizen's own submission
    unexpected = reconcile(**data)
    assert unexpected["totals"]["pushes"]["extra"] == 1
    assert unexpected["ok"] is False

    data = journey()
    data["sockets"][OTHER].foreign = [3]  # someone else's event on this socket
    foreign = reconcile(**data)
    assert foreign["totals"]["frames"]["extra"] == 1
    assert foreign["ok"] is False


def test_an_acknowledged_move_with_no_event_is_a_lost_event() -> None:
    data = journey()
    data["dossiers"]["d1"].acknowledged.append("dossier.stopped")

    result = reconcile(**data)

    assert result["totals"]["events"]["lost"] == 1
    assert {"dossier": "d1", "channel": "events", "lost": "dossier.stopped"} in result["problems"]


def test_lateness_is_measured_from_the_commit_to_the_first_frame() -> None:
    data = journey()
    data["sockets"][CITIZEN].received.append((2, 500.0))  # a later repeat does not count

    figures = lateness(data["events"], data["sockets"])

    # every first frame came 1.5 s after its event's commit (journey())
    assert figures["frames"] == 5
    assert figures["max_s"] == 1.5
    assert figures["p50_s"] == 1.5
    assert figures["later_than_3s"] == 0


def test_frames_replayed_after_a_resume_are_counted_apart_from_live_ones() -> None:
    data = journey()
    # Events 1-3 came live; 4 and 5 were committed (103, 104) while the socket was away
    # and replayed by a connection opened at 110, arriving at 110.2.
    data["sockets"][CITIZEN].received = [(1, 100.2), (2, 101.2), (3, 102.2)]
    data["sockets"][CITIZEN].received += [(4, 110.2), (5, 110.2)]
    opened = {CITIZEN: {1: 90.0, 2: 90.0, 3: 90.0, 4: 110.0, 5: 110.0}}

    figures = lateness(data["events"], data["sockets"], opened)

    assert figures["frames"] == 3
    assert figures["replayed"] == 2
    assert figures["max_s"] == 0.2


def test_a_superseded_push_is_collapsed_only_when_a_later_push_of_the_dossier_arrived() -> None:
    data = journey()
    data["pushes"].remove((2, TOKEN))  # event 2's push waited for a retry...
    data["superseded"] = [(2, TOKEN)]  # ...and the product superseded it

    collapsed = reconcile(**data)  # events 3-5's pushes were accepted: collapsed
    assert collapsed["ok"] is True
    assert collapsed["totals"]["pushes"]["lost"] == 0
    assert collapsed["collapsed_pushes"] == 1
    assert collapsed["dossiers"]["d1"]["collapsed_pushes"] == 1
    assert "~1" in table(collapsed)

    # The later pushes never arrived either: the superseded one is a loss after all.
    data["pushes"] = []
    data["superseded"] = [(2, TOKEN), (3, TOKEN), (4, TOKEN)]
    lost = reconcile(**data)
    assert lost["ok"] is False
    assert lost["totals"]["pushes"]["lost"] == 4
    assert lost["collapsed_pushes"] == 0

    # Superseded by nothing later (the last event's own push): a loss.
    data = journey()
    data["pushes"].remove((5, TOKEN))
    data["superseded"] = [(5, TOKEN)]
    last = reconcile(**data)
    assert last["totals"]["pushes"]["lost"] == 1
    assert last["collapsed_pushes"] == 0
