"""Fill empty msgstr entries of a .po catalogue from a JSON {msgid: translation} file.

    python scripts/fill_translations.py locale/vi/LC_MESSAGES/django.po new.json

Entries that already have a translation are left alone; multi-line msgids are
matched on their joined text. Run `make messages` first, then this, then
`make messages` again to compile.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ENTRY = re.compile(r'(msgid ((?:"(?:[^"\\]|\\.)*"\n)+))msgstr ""\n(?!")', re.MULTILINE)


def joined(block: str) -> str:
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def main(po_path: str, json_path: str) -> int:
    translations: dict[str, str] = json.loads(Path(json_path).read_text(encoding="utf-8"))
    po = Path(po_path)
    text = po.read_text(encoding="utf-8")
    filled = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal filled
        msgid = joined(match.group(2)).encode().decode("unicode_escape").encode("latin-1").decode()
        if msgid and msgid in translations:
            filled += 1
            return f'{match.group(1)}msgstr "{escape(translations[msgid])}"\n'
        return match.group(0)

    text = ENTRY.sub(replace, text)
    po.write_text(text, encoding="utf-8")
    print(f"filled {filled} entries")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
