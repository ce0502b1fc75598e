"""Templates in both languages for every event type, and the 4 KB payload limit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from dossiers.events import EventType
from notifications.fcm import read_push_outbox
from notifications.models import Category
from notifications.payload import Push, fit, payload_size
from notifications.templates import (
    NOT_NOTIFIED,
    TEMPLATES,
    render,
    render_context,
    template_for,
)
from tests.factories import make_user
from tests.notifications.conftest import notify, register, send_all

# Every event type but these gets a push (the decision is NOT_NOTIFIED in templates.py).
NO_PUSH = {EventType.DOSSIER_DEADLINE_AT_RISK}
EVENT_TYPES = [t for t in EventType if t not in NO_PUSH]
URGENT = {
    "dossier.supplement_requested",
    "dossier.payment_requested",
    "dossier.completed",
    "dossier.result_revoked",
}


def context(language: str, **extra) -> dict[str, str]:
    return render_context(
        language=language,
        code="HN-PXB-260310-0001",
        procedure="Đăng ký khai sinh",
        agency="UBND phường Ba Đình",
        appointment=dt.datetime(2026, 3, 12, 9, 0, tzinfo=dt.UTC),
        **extra,
    )


def test_every_event_type_has_a_template_or_an_explicit_no_push() -> None:
    assert set(TEMPLATES).isdisjoint(NOT_NOTIFIED)
    assert set(TEMPLATES) | NOT_NOTIFIED == set(EventType)
    assert NOT_NOTIFIED == NO_PUSH


def test_every_citizen_facing_event_type_has_a_template() -> None:
    assert sorted(TEMPLATES) == sorted(EVENT_TYPES)
    assert template_for(EventType.DOSSIER_DEADLINE_AT_RISK) is None
    assert {t for t, template in TEMPLATES.items() if template.urgent} == URGENT
    assert {t for t, tpl in TEMPLATES.items() if tpl.category == Category.ACTION_REQUESTS} == {
        "dossier.supplement_requested",
        "dossier.payment_requested",
        "dossier.paper_revoked",
    }
    assert {t for t, tpl in TEMPLATES.items() if tpl.category == Category.DELIVERY_UPDATES} == {
        t for t in EVENT_TYPES if t.startswith("delivery.")
    }


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_template_renders_in_vietnamese_and_english(event_type: str) -> None:
    template = TEMPLATES[event_type]
    vi = render(template, "vi", context("vi"))
    en = render(template, "en", context("en"))
    assert vi.title != en.title
    assert vi.body != en.body
    for rendered in (vi, en):
        assert "{" not in rendered.title + rendered.body
        assert rendered.title.strip() == rendered.title != ""
    if event_type in URGENT:
        assert "HN-PXB-260310-0001" in template.sms_vi.format(**context("vi"))
        assert "HN-PXB-260310-0001" in template.sms_en.format(**context("en"))


def test_accepted_text_shows_the_appointment_in_vietnam_time() -> None:
    template = TEMPLATES["dossier.accepted"]
    assert render(template, "vi", context("vi")).body == (
        "Hồ sơ HN-PXB-260310-0001 đã được UBND phường Ba Đình tiếp nhận. "
        "Ngày hẹn trả kết quả: 16:00 12/03/2026."
    )
    assert render(template, "en", context("en")).body == (
        "Dossier HN-PXB-260310-0001 was accepted by UBND phường Ba Đình. "
        "Result expected on 16:00 12/03/2026."
    )


def test_apology_payment_handover_and_refusal_details() -> None:
    data = {
        "new_appointment_at": "2026-03-20T02:00:00+00:00",
        "amount": 150000,
        "method": "post",
    }
    vi = context("vi", data=data, message="Thiếu   giấy tờ\n tùy thân")
    en = context("en", data=data, message="Missing ID")
    assert render(TEMPLATES["dossier.apologised"], "vi", vi).body.endswith(
        "Ngày hẹn mới: 09:00 20/03/2026."
    )
    assert render(TEMPLATES["dossier.payment_requested"], "vi", vi).body == (
        "Hồ sơ HN-PXB-260310-0001: vui lòng thực hiện nghĩa vụ tài chính (150.000 đồng)."
    )
    assert render(TEMPLATES["dossier.payment_requested"], "en", en).body == (
        "Dossier HN-PXB-260310-0001: please pay the fees (150.000 VND)."
    )
    assert render(TEMPLATES["dossier.handed_over"], "en", en).body == (
        "The result of dossier HN-PXB-260310-0001 was handed over by post."
    )
    assert render(TEMPLATES["dossier.refused"], "vi", vi).body == (
        "Hồ sơ HN-PXB-260310-0001 không được tiếp nhận. Lý do: Thiếu giấy tờ tùy thân"
    )


def push(body: str, title: str = "Tiêu đề") -> Push:
    return Push(
        token="t" * 160,
        title=title,
        body=body,
        data={"type": "dossier.refused", "dossier_id": "x", "dossier_code": "HN-1"},
        collapse_id="dossier-abc",
        urgent=False,
        badge=3,
        channel_id="dossier_updates",
    )


def test_payload_at_the_limit_is_untouched_one_byte_more_is_shortened() -> None:
    small = push("Lý do: " + "ạ" * 100)
    size = payload_size(small)

    assert fit(small, limit=size) == small
    shortened = fit(small, limit=size - 1)
    assert shortened.body != small.body
    assert shortened.body.endswith("…")
    assert payload_size(shortened) <= size - 1


def test_payload_never_exceeds_4000_bytes_and_never_fails() -> None:
    huge = push("Thiếu bản sao có chứng thực. " * 1000, title="Hồ sơ " * 500)
    assert payload_size(huge) > 4096

    fitted = fit(huge, limit=4000)

    assert payload_size(fitted) <= 4000
    assert fitted.token == huge.token  # the token is not counted and never cut
    assert fitted.data == huge.data
    assert fitted.body == ""
    assert fitted.title.endswith("…")


def test_no_texts_at_all_still_gives_a_message() -> None:
    tiny_limit = payload_size(push("", title=""))
    fitted = fit(push("body", title="title"), limit=tiny_limit)
    assert (fitted.title, fitted.body) == ("", "")


@pytest.mark.django_db
def test_file_backend_writes_the_fcm_request_to_the_outbox(settings) -> None:
    settings.PUSH_BACKEND = "file"
    user = make_user(language="en")
    register(user, "tok-file", platform="web")
    entry = notify(user, "delivery.delivered")

    send_all(entry)

    [line] = read_push_outbox()
    assert line["message"]["token"] == "tok-file"
    assert line["message"]["notification"] == {
        "title": "Delivered",
        "body": f"The parcel of dossier {entry.dossier.code} was delivered.",
    }
    assert entry.deliveries.get().fcm_message_id == line["name"]
    json.dumps(line)  # plain JSON


def test_the_push_guide_documents_every_event_type() -> None:
    guide = (Path(__file__).resolve().parents[2] / "mobile_api_docs" / "push.md").read_text()
    for event_type, template in TEMPLATES.items():
        assert f"| `{event_type}` |" in guide
        assert template.vi[0] in guide
        assert template.en[1] in guide
    for event_type in NOT_NOTIFIED:
        assert f"| `{event_type}` |" not in guide
        assert f"`{event_type}` is an internal monitoring signal: it produces no" in guide


def test_the_push_guide_lists_every_urgent_event_and_its_sms_texts() -> None:
    import re

    guide = (Path(__file__).resolve().parents[2] / "mobile_api_docs" / "push.md").read_text()
    [listed] = re.findall(r"Urgent ones \(([^)]*)\)", guide)
    assert set(re.findall(r"`([a-z_.]+)`", listed)) == URGENT
    sms_table = guide.split("Fallback SMS texts", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.]+)` \| (.*) \| (.*) \|$", sms_table, re.M)
    assert {event_type for event_type, _, _ in rows} == URGENT
    for event_type, vi, en in rows:
        assert (vi, en) == (TEMPLATES[event_type].sms_vi, TEMPLATES[event_type].sms_en)


def test_handover_without_a_method_reads_cleanly() -> None:
    rendered = render(TEMPLATES["dossier.handed_over"], "vi", context("vi"))
    assert rendered.body == "Kết quả của hồ sơ HN-PXB-260310-0001 đã được trả."


def _key_paths(value: object, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    paths = set()
    for key, inner in value.items():
        paths |= {f"{prefix}{key}"} | _key_paths(inner, f"{prefix}{key}.")
    return paths


def test_the_push_guides_example_is_the_message_the_server_sends() -> None:
    """push.md's example (an urgent dossier push) has exactly the keys of the FCM v1
    message built for one, its `data` those of the deep link plus `notification_id`."""
    import re
    from types import SimpleNamespace

    from notifications.actions import _deep_link
    from notifications.delivery import collapse_id
    from notifications.payload import channel_for, wire_message

    guide = (Path(__file__).resolve().parents[2] / "mobile_api_docs" / "push.md").read_text()
    section = guide.split("## What a push looks like", 1)[1]
    [block] = re.findall(r"```json\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    example = json.loads(block)
    template = TEMPLATES[example["data"]["type"]]
    dossier = SimpleNamespace(pk="0b7f6f5e-1c2d-4e3f-9a8b-7c6d5e4f3a2b", code="HN-PXB-1")
    event = SimpleNamespace(pk=5531, type=example["data"]["type"])
    data = _deep_link(event, dossier, template) | {"notification_id": "812"}
    push = Push(
        token="t",
        title="t",
        body="b",
        data=data,
        collapse_id=collapse_id(dossier.pk, 812),
        urgent=template.urgent,
        badge=2,
        channel_id=channel_for(template.category, template.urgent),
    )
    assert set(example["data"]) == set(data)
    assert _key_paths(example) == _key_paths(wire_message(push))
    assert example["android"]["notification"]["channel_id"] == push.channel_id
