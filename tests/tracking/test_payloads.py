"""The frames in tracking/payloads.py and mobile_api_docs/asyncapi.yaml say the same,
and the document's event types are exactly `EventType`."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from dossiers.events import EventType
from tracking import payloads

ASYNCAPI = Path(__file__).resolve().parents[2] / "mobile_api_docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def document() -> dict[str, typing.Any]:
    loaded = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert loaded["asyncapi"] == "2.6.0"
    return dict(loaded)


@pytest.fixture(scope="module")
def schemas(document) -> dict[str, typing.Any]:
    return dict(document["components"]["schemas"])


SERVER_CLOSE_CODES = {value for name, value in vars(payloads).items() if name.startswith("CLOSE_")}


def test_the_documented_close_codes_are_exactly_the_server_s(document):
    channel = document["channels"]["/ws/v1/events"]
    documented = [entry["code"] for entry in channel["x-close-codes"]]
    assert sorted(documented) == sorted(SERVER_CLOSE_CODES)
    assert all(entry["meaning"] and entry["action"] for entry in channel["x-close-codes"])


def test_the_realtime_guide_tells_every_close_code():
    """The guide's table also names what the client itself may see (1001, 1006)."""
    import re

    guide = (ASYNCAPI.parent / "realtime.md").read_text(encoding="utf-8")
    table = guide.split("## 6. Close codes", 1)[1]
    listed = {
        int(code) for row in re.findall(r"^\| ([\d, ]+) \|", table, re.M) for code in row.split(",")
    }
    assert listed - {1001, 1006} == SERVER_CLOSE_CODES


def test_a_narrowed_ticket_opened_on_another_dossier_is_documented_as_4404(document):
    query = document["channels"]["/ws/v1/events"]["bindings"]["ws"]["query"]
    assert "narrowed" in query["properties"]["dossier_id"]["description"]
    [entry] = [
        e
        for e in document["channels"]["/ws/v1/events"]["x-close-codes"]
        if e["code"] == payloads.CLOSE_DOSSIER_NOT_FOUND
    ]
    assert "narrowed" in entry["meaning"]


@pytest.mark.parametrize(
    "frame",
    [payloads.EventFrame, payloads.HeartbeatFrame, payloads.ResyncFrame, payloads.ErrorFrame],
)
def test_every_frame_field_is_documented(frame, schemas):
    documented = schemas[frame.__name__]
    hints = typing.get_type_hints(frame)
    assert sorted(documented["required"]) == sorted(hints)
    assert sorted(documented["properties"]) == sorted(hints)
    assert documented["properties"]["type"]["const"] == typing.get_args(hints["type"])[0]


def test_resync_reasons_are_documented(schemas):
    assert schemas["ResyncFrame"]["properties"]["reason"]["enum"] == list(
        typing.get_args(payloads.ResyncReason)
    )


def test_error_codes_are_documented(schemas):
    """The consumer's `_error`/`_refuse` take an `ErrorCode`: mypy keeps it to these."""
    assert schemas["ErrorFrame"]["properties"]["code"]["enum"] == list(
        typing.get_args(payloads.ErrorCode)
    )


def test_the_documented_event_types_are_exactly_the_enumeration(schemas):
    assert schemas["EventFrame"]["properties"]["event_type"]["enum"] == EventType.values


@pytest.mark.django_db
def test_the_realtime_guide_example_frame_has_the_real_keys() -> None:
    """realtime.md's example (a supplement request) against a real one's frame."""
    import json
    import re

    from dossiers import lifecycle
    from dossiers.models import Dossier, DossierEvent
    from tests.factories import make_dossier

    guide = (ASYNCAPI.parent / "realtime.md").read_text(encoding="utf-8")
    [example] = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", guide, re.S)
        if '"type": "event"' in block
    ]
    dossier = make_dossier(status=Dossier.Status.PROCESSING)
    code = dossier.procedure.documents.first().code
    lifecycle.request_supplement(
        dossier.pk,
        lifecycle.Actor.agency_system("T (ak_test)"),
        documents=[{"code": code, "note": "Ảnh bị mờ"}],
        message="m",
    )
    event = DossierEvent.objects.get(dossier=dossier, type="dossier.supplement_requested")
    assert example["event_type"] == event.type
    assert set(example) == set(typing.get_type_hints(payloads.EventFrame))
    assert set(example["data"]) <= set(event.data)
    [documented] = example["data"]["documents"]
    [real] = event.data["documents"]
    assert set(documented) == set(real)
