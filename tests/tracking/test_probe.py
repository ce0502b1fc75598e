"""The probe that settles ids nobody can see (tracking/stream.py, `Probe`): an id up
to the sequence's value read by one look is settled once every event writer seen
running at the next look has ended; writers that started later never count."""

from __future__ import annotations

from tracking.stream import Probe


def test_the_first_look_settles_nothing():
    assert Probe().looked(10, []) is None


def test_with_no_event_writer_running_what_the_previous_look_read_is_settled():
    probe = Probe()
    probe.looked(10, [])
    assert probe.looked(12, []) == 10
    assert probe.looked(15, []) == 12


def test_an_id_waits_for_the_writers_running_after_it_was_read_and_only_those():
    probe = Probe()
    probe.looked(10, ["3/7"])  # 3/7 may hold an id up to 10
    assert probe.looked(11, ["3/7", "4/2"]) is None  # pending: up to 10, while 3/7 and 4/2 run
    assert probe.looked(12, ["3/7", "4/2"]) is None
    # 3/7 and 4/2 ended; 5/1 started after the look that listed them: it cannot
    # hold an id up to 10 (it took its lock, then its id, after 10 was read).
    assert probe.looked(13, ["5/1"]) == 10
    # The next probe waits for 5/1 (it may hold 12 or 13).
    assert probe.looked(14, ["5/1"]) is None
    # Nobody left: up to what the look before read (14) is settled.
    assert probe.looked(15, []) == 14


def test_a_writer_that_never_ends_holds_the_probe_however_many_looks():
    probe = Probe()
    probe.looked(10, ["3/7"])
    for last in range(11, 40):
        assert probe.looked(last, ["3/7"]) is None


def test_a_sequence_that_went_back_starts_the_probe_again():
    probe = Probe()
    probe.looked(500, ["3/7"])
    assert probe.looked(501, ["3/7"]) is None  # pending: up to 500
    # The database was restored: its log hands out ids from 20 again. What was
    # pending (up to 500) must never be settled.
    assert probe.looked(20, []) is None
    assert probe.looked(21, []) == 20
