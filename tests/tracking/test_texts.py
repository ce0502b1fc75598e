"""Every event type has its sentence for the citizen, in English and in Vietnamese."""

from __future__ import annotations

import pytest
from django.utils import translation

from dossiers.events import EventType
from tracking.texts import EVENT_TEXTS, FALLBACK_TEXT, HANDED_OVER_TEXTS, event_text


def test_the_texts_are_keyed_by_exactly_the_event_types() -> None:
    assert sorted(EVENT_TEXTS) == sorted(EventType.values)


@pytest.mark.parametrize("event_type", EventType.values)
def test_each_event_type_reads_in_english_and_vietnamese(event_type: str) -> None:
    with translation.override("en"):
        english = event_text(event_type)
        source = str(EVENT_TEXTS[event_type])
        fallback_en = str(FALLBACK_TEXT)
    with translation.override("vi"):
        vietnamese = event_text(event_type)
        fallback_vi = str(FALLBACK_TEXT)
    assert english == source != fallback_en
    assert vietnamese not in ("", english, fallback_vi), "translate it in locale/vi (make messages)"


def test_handed_over_says_how_in_both_languages() -> None:
    for method in HANDED_OVER_TEXTS:
        data = {"method": method}
        with translation.override("en"):
            english = event_text(EventType.DOSSIER_HANDED_OVER, data)
            source = str(HANDED_OVER_TEXTS[method])
        with translation.override("vi"):
            vietnamese = event_text(EventType.DOSSIER_HANDED_OVER, data)
        assert english == source
        assert vietnamese not in ("", english)


def test_an_unknown_type_reads_as_the_fallback() -> None:
    with translation.override("en"):
        assert event_text("dossier.unheard_of") == "The dossier was updated."
