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
def schemas() -> dict[str, typing.Any]:
    document = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    assert document["asyncapi"] == "2.6.0"
    return dict(document["components"]["schemas"])


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
