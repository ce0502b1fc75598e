"""The soak's reconciliation: what should exist per dossier against what each channel got.

Pure functions on plain data (no Django, no network), so the normal suite tests
them on synthetic data (tests/soak/test_reconcile.py) and the soak (tests/soak/run.py)
feeds them what it collected. Definitions (also in README, Soak):

- **timeline events**: every status move the clients saw acknowledged (the
  citizen's submit, the agency's accept / start-processing / complete / hand-over,
  each a 200) must have exactly one event of its type in the database log.
  A loss: an acknowledged move with no event; a duplicate: a second event of the
  same type for the dossier (each type happens once per dossier in this load).
- **socket frames**: each citizen holds one logical socket, opened before their
  first dossier and resumed with the last event id it saw after every drop. Every
  event of the citizen's dossiers in the log must arrive on it, once, across all
  its connections. A loss: an event that never arrived, after the final resume;
  a duplicate: an event id that arrived twice. Only events committed while the
  socket was down *and had no cursor yet* (it had seen no event to resume from,
  so the protocol cannot replay them) are excused, and counted as `excused`.
  A frame of someone else's dossier is counted as `foreign` (a leak).
- **pushes**: an event of a notified type whose actor is not the applicant (the
  agency moves; the citizen's own submission pushes nothing) must be accepted by
  the fake FCM once per device of the applicant (one each here; quiet hours are
  off, every category on, so preferences never hold one back). A loss: no accepted
  push for that (event, token); a duplicate: more than one; `unexpected`: an
  accepted push no rule asked for (e.g. to the actor). One exception, counted as
  `collapsed` and not as a loss: a push the product marked SUPERSEDED (not sent
  because a push for a later event of the same dossier to the same device was
  due, in flight or delivered: they share the dossier's collapse key, so the phone
  would show only the later one anyway; mobile_api_docs/push.md), and only when
  the fake FCM did accept a push of a later event of that dossier for the same token.
- **inbox items**: every event of a notified type gives the applicant exactly one
  inbox item (read through the API). Loss: none; duplicate: more than one.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CHANNELS = ("events", "frames", "pushes", "inbox")


@dataclass
class Event:
    id: int
    dossier_id: str
    type: str
    actor_user_id: str | None
    created_at: float  # seconds since the epoch


@dataclass
class DossierRecord:
    """A dossier as the clients know it: whose, and the moves they saw acknowledged."""

    id: str
    citizen: str  # the applicant's user id
    code: str = ""
    acknowledged: list[str] = field(default_factory=list)  # event types, in order


@dataclass
class SocketRecord:
    """One citizen's logical socket: every event frame received (ids, in order of
    arrival, with the time), and the ids it is excused from (see the module doc)."""

    citizen: str
    received: list[tuple[int, float]] = field(default_factory=list)
    foreign: list[int] = field(default_factory=list)
    excused: set[int] = field(default_factory=set)


@dataclass
class Counts:
    expected: int = 0
    got: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0  # unexpected pushes, foreign frames, events no client asked for

    def add(self, other: Counts) -> None:
        self.expected += other.expected
        self.got += other.got
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.extra += other.extra

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _count(expected: Iterable[Any], got: Iterable[Any]) -> tuple[Counts, list[Any], list[Any]]:
    """Counts of `got` against the set `expected`: (counts, lost keys, duplicated keys)."""
    wanted = set(expected)
    seen = collections.Counter(got)
    lost = sorted(k for k in wanted if seen[k] == 0)
    duplicated = sorted(k for k in wanted if seen[k] > 1)
    counts = Counts(
        expected=len(wanted),
        got=sum(1 for k in wanted if seen[k] > 0),
        lost=len(lost),
        duplicated=sum(seen[k] - 1 for k in duplicated),
        extra=sum(n for k, n in seen.items() if k not in wanted),
    )
    return counts, lost, duplicated


def reconcile(
    *,
    dossiers: Mapping[str, DossierRecord],
    events: Iterable[Event],
    notified_types: set[str],
    sockets: Mapping[str, SocketRecord],
    tokens: Mapping[str, list[str]],
    pushes: Iterable[tuple[int, str]],
    inbox: Mapping[str, list[int]],
    superseded: Iterable[tuple[int, str]] = (),
) -> dict[str, Any]:
    """Per dossier and in total, for each channel: expected, got, lost, duplicated,
    extra; plus the keys of every loss and duplicate (to find them in the logs).

    `tokens`: each citizen's device tokens; `pushes`: (event id, token) of every push
    the fake FCM accepted; `inbox`: each citizen's inbox items' event ids;
    `superseded`: (event id, token) of the deliveries the product marked SUPERSEDED."""
    by_dossier: dict[str, list[Event]] = collections.defaultdict(list)
    for event in events:
        by_dossier[event.dossier_id].append(event)
    pushes_by_event: dict[int, list[str]] = collections.defaultdict(list)
    for event_id, token in pushes:
        pushes_by_event[event_id].append(token)
    frames_by_citizen = {
        citizen: collections.Counter(event_id for event_id, _ in record.received)
        for citizen, record in sockets.items()
    }
    inbox_by_citizen = {citizen: collections.Counter(ids) for citizen, ids in inbox.items()}
    known_event_ids: set[int] = set()
    superseded_keys = set(superseded)
    collapsed_total = 0

    rows: dict[str, dict[str, Any]] = {}
    totals = {channel: Counts() for channel in CHANNELS}
    problems: list[dict[str, Any]] = []
    excused = 0
    for dossier_id, dossier in sorted(dossiers.items()):
        logged = sorted(by_dossier.get(dossier_id, []), key=lambda e: e.id)
        known_event_ids.update(e.id for e in logged)
        row: dict[str, Any] = {"code": dossier.code, "citizen": dossier.citizen}

        # Timeline: acknowledged moves vs events in the log, by type.
        counts, lost, dup = _count(dossier.acknowledged, [e.type for e in logged])
        row["events"] = counts
        problems += [{"dossier": dossier_id, "channel": "events", "lost": k} for k in lost]
        problems += [{"dossier": dossier_id, "channel": "events", "duplicated": k} for k in dup]

        # Socket frames: every logged event of the dossier, on the citizen's socket.
        socket = sockets.get(dossier.citizen)
        ids = [e.id for e in logged]
        if socket is None:
            counts, lost, dup = _count(ids, [])
        else:
            wanted = [i for i in ids if i not in socket.excused]
            excused += len(ids) - len(wanted)
            frames = frames_by_citizen[dossier.citizen]
            counts, lost, dup = _count(wanted, [i for i in wanted for _ in range(frames[i])])
        row["frames"] = counts
        problems += [{"dossier": dossier_id, "channel": "frames", "lost": k} for k in lost]
        problems += [{"dossier": dossier_id, "channel": "frames", "duplicated": k} for k in dup]

        # Pushes: agency-side events of notified types, once per applicant's device.
        citizen_tokens = tokens.get(dossier.citizen, [])
        wanted_pushes = [
            (e.id, token)
            for e in logged
            if e.type in notified_types and e.actor_user_id != dossier.citizen
            for token in citizen_tokens
        ]
        got_pushes = [(e.id, token) for e in logged for token in pushes_by_event.get(e.id, [])]
        counts, lost, dup = _count(wanted_pushes, got_pushes)
        # A superseded push is collapsed, not lost, if a later event's push of the
        # dossier reached the same token.
        accepted = set(got_pushes)
        collapsed = [
            (event_id, token)
            for event_id, token in lost
            if (event_id, token) in superseded_keys
            and any(later.id > event_id and (later.id, token) in accepted for later in logged)
        ]
        if collapsed:
            lost = [key for key in lost if key not in collapsed]
            counts.lost -= len(collapsed)
            collapsed_total += len(collapsed)
        row["collapsed_pushes"] = len(collapsed)
        row["pushes"] = counts
        problems += [{"dossier": dossier_id, "channel": "pushes", "lost": k} for k in lost]
        problems += [{"dossier": dossier_id, "channel": "pushes", "duplicated": k} for k in dup]
        problems += [
            {"dossier": dossier_id, "channel": "pushes", "unexpected": k}
            for k in sorted(set(got_pushes) - set(wanted_pushes))
        ]

        # Inbox: one item per notified event for the applicant.
        items = inbox_by_citizen.get(dossier.citizen, collections.Counter())
        counts, lost, dup = _count(
            [e.id for e in logged if e.type in notified_types],
            [e.id for e in logged for _ in range(items[e.id])],
        )
        row["inbox"] = counts
        problems += [{"dossier": dossier_id, "channel": "inbox", "lost": k} for k in lost]
        problems += [{"dossier": dossier_id, "channel": "inbox", "duplicated": k} for k in dup]

        for channel in CHANNELS:
            totals[channel].add(row[channel])
        rows[dossier_id] = row

    # What reached a client about no dossier of theirs: frames of someone else's
    # dossier, pushes and inbox items of events of no soak dossier.
    foreign_frames = sum(len(record.foreign) for record in sockets.values())
    totals["frames"].extra += foreign_frames
    stray_pushes = sum(
        len(tokens_)
        for event_id, tokens_ in pushes_by_event.items()
        if event_id not in known_event_ids
    )
    totals["pushes"].extra += stray_pushes
    stray_inbox = sum(
        n
        for items in inbox_by_citizen.values()
        for i, n in items.items()
        if i not in known_event_ids
    )
    totals["inbox"].extra += stray_inbox
    # A failure: any loss or duplicate, or a leak (a frame of someone else's dossier,
    # a push no rule asked for). Extra events or inbox items are reported only.
    failed = (
        any(totals[channel].lost or totals[channel].duplicated for channel in CHANNELS)
        or totals["frames"].extra > 0
        or totals["pushes"].extra > 0
    )
    return {
        "dossiers": {
            dossier_id: {
                **{k: v for k, v in row.items() if k not in CHANNELS},
                **{channel: row[channel].as_dict() for channel in CHANNELS},
            }
            for dossier_id, row in rows.items()
        },
        "totals": {channel: totals[channel].as_dict() for channel in CHANNELS},
        "excused_frames": excused,
        "collapsed_pushes": collapsed_total,
        "problems": problems,
        "ok": not failed,
    }


def lateness(
    events: Iterable[Event],
    sockets: Mapping[str, SocketRecord],
    opened: Mapping[str, Mapping[int, float]] | None = None,
) -> dict[str, Any]:
    """How late each event's first frame arrived after the event's commit (seconds):
    p50, p95, max and how many were later than 3 s. Reported, not failed on.

    `opened`: per socket, the time the connection that delivered each event's first
    frame was opened. An event committed before that is a replay after a resume (its
    delay is the time the socket was away) and is counted apart; the figures are of
    live frames, committed while their connection was open."""
    created = {e.id: e.created_at for e in events}
    delays = []
    replayed = 0
    for citizen, record in sockets.items():
        first: dict[int, float] = {}
        for event_id, at in record.received:
            first.setdefault(event_id, at)
        since = (opened or {}).get(citizen, {})
        for event_id, at in first.items():
            if event_id not in created:
                continue
            if created[event_id] < since.get(event_id, float("-inf")):
                replayed += 1
                continue
            delays.append(at - created[event_id])
    delays.sort()
    if not delays:
        return {"frames": 0, "replayed": replayed}

    def pct(q: float) -> float:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 3)

    return {
        "frames": len(delays),
        "replayed": replayed,
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "max_s": round(delays[-1], 3),
        "later_than_3s": sum(1 for d in delays if d > 3),
    }


def table(result: dict[str, Any], limit: int = 400) -> str:
    """The per-dossier table (compact) and the totals, as printed by the soak."""
    head = f"{'dossier':<14} " + " ".join(f"{c:>17}" for c in CHANNELS)
    lines = [
        "per dossier: expected/got, -lost, +duplicated, xextra, ~collapsed pushes",
        head,
    ]

    def cell(counts: Mapping[str, int]) -> str:
        text = f"{counts['expected']}/{counts['got']}"
        if counts["lost"]:
            text += f" -{counts['lost']}"
        if counts["duplicated"]:
            text += f" +{counts['duplicated']}"
        if counts["extra"]:
            text += f" x{counts['extra']}"
        return text

    for index, (dossier_id, row) in enumerate(result["dossiers"].items()):
        if index >= limit:
            lines.append(f"... {len(result['dossiers']) - limit} more in the JSON file")
            break
        name = row.get("code") or dossier_id[:8]
        cells = {c: cell(row[c]) for c in CHANNELS}
        if row.get("collapsed_pushes"):
            cells["pushes"] += f" ~{row['collapsed_pushes']}"
        lines.append(f"{name[-14:]:<14} " + " ".join(f"{cells[c]:>17}" for c in CHANNELS))
    lines.append("")
    lines.append(f"{'totals':<14} {'expected':>9} {'got':>9} {'lost':>6} {'dup':>6} {'extra':>6}")
    for channel in CHANNELS:
        t = result["totals"][channel]
        lines.append(
            f"{channel:<14} {t['expected']:>9} {t['got']:>9} {t['lost']:>6} "
            f"{t['duplicated']:>6} {t['extra']:>6}"
        )
    lines.append(f"excused frames (socket down with no cursor yet): {result['excused_frames']}")
    lines.append(
        "collapsed pushes (SUPERSEDED by a later event's push of the dossier, which FCM "
        f"accepted; not counted as lost): {result['collapsed_pushes']}"
    )
    lines.append("RESULT: " + ("no loss, no duplicate" if result["ok"] else "FAILED"))
    return "\n".join(lines)
