"""Vietnamese tax codes (mã số thuế, MST), checked with python-stdnum.

An enterprise has 10 digits, the last a check digit; a branch or dependent unit
has 13: the parent's 10 followed by a 3-digit suffix, written 0100233583-001 or
0100233583001. Stored compact (digits only).
"""

from __future__ import annotations

from stdnum.exceptions import ValidationError
from stdnum.vn import mst


def normalise_tax_code(raw: str) -> str | None:
    """The compact tax code (10 or 13 digits) if valid, else None."""
    if not raw or len(raw) > 32:
        return None
    try:
        code: str = mst.validate(raw)
    except ValidationError:
        return None
    return code


def format_tax_code(code: str) -> str:
    """Display form: 0100233583 or 0100233583-001."""
    formatted: str = mst.format(code)
    return formatted
