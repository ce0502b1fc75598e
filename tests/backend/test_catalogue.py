"""The source texts are English, and a short label that names different things in
different places carries a context, so Vietnamese can say each its own way."""

from __future__ import annotations

import ast
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

from django.utils import translation

from auth.models import Invitation
from dossiers.models import Dossier

ROOT = Path(__file__).resolve().parents[2]
APPS = [
    "backend",
    "auth",
    "dossiers",
    "tracking",
    "notifications",
    "postal",
    "documents",
    "payments",
]
GETTEXT = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy"}
# Short labels used in several places that mean the same thing everywhere.
SAME_MEANING = {"phone number", "E.164", "Image"}


def catalogue_entries(language: str) -> list[tuple[str, str]]:
    """(msgctxt, msgid) of every entry of the language's django.po."""
    po = ROOT / "locale" / language / "LC_MESSAGES" / "django.po"
    entries: list[tuple[str, str]] = []
    context, current, key = "", "", ""
    for line in [*po.read_text(encoding="utf-8").splitlines(), ""]:
        match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line)
        if match:
            key, text = match.groups()
            if key == "msgctxt":
                context = text
            elif key == "msgid":
                current = text
            continue
        if line.startswith('"') and key in {"msgctxt", "msgid"}:
            if key == "msgctxt":
                context += line[1:-1]
            else:
                current += line[1:-1]
            continue
        if not line.strip() and current:
            entries.append((context, current))
            context, current, key = "", "", ""
    return entries


def foreign_letters(text: str) -> str:
    """The letters of `text` that English does not use (typographic quotes pass)."""
    return "".join(c for c in text if unicodedata.category(c).startswith("L") and not c.isascii())


def test_every_msgid_is_english() -> None:
    """gettext looks a text up by its source, English here: a Vietnamese msgid has no
    English and reads as Vietnamese whatever the language."""
    entries = catalogue_entries("vi")
    assert len(entries) > 500
    assert [msgid for context, msgid in entries if foreign_letters(context + msgid)] == []


def short_labels_without_context() -> dict[str, set[str]]:
    """Labels of one or two words marked with plain gettext, and where."""
    uses: dict[str, set[str]] = defaultdict(set)
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = getattr(func, "id", getattr(func, "attr", None))
                first = node.args[0]
                if name in GETTEXT and isinstance(first, ast.Constant):
                    text = str(first.value)
                    if len(text.split()) <= 2 and not text.endswith("."):  # not a sentence
                        uses[text].add(f"{path.relative_to(ROOT)}:{node.lineno}")
    return uses


def test_a_short_label_used_in_several_places_has_a_context() -> None:
    shared = {
        text: sorted(places)
        for text, places in short_labels_without_context().items()
        if len(places) > 1 and text not in SAME_MEANING
    }
    assert shared == {}, "give each use its own pgettext_lazy context"


def test_an_accepted_invitation_and_an_accepted_dossier_read_differently() -> None:
    with translation.override("vi"):
        assert str(Dossier.Status.ACCEPTED.label) == "Được tiếp nhận"
        assert str(Invitation.Status.ACCEPTED.label) == "Đã chấp nhận"
    with translation.override("en"):
        assert str(Dossier.Status.ACCEPTED.label) == str(Invitation.Status.ACCEPTED.label)
