"""Whether a text is a whole personal number, and which: the one rule by which what
staff search for or read whole counts as a look-up of an account.

A whole number is a Vietnamese mobile number in any form people write it
(`auth.phone.parse_phone`: `0912 345 678`, `+84 912-345-678`, `84912345678`) or a
citizen ID number (CCCD: 12 digits, spaces around it aside, the support look-up's
rule). Anything else is no whole number: a part of one, a landline, a foreign number,
a CCCD written in groups, text with letters. Accounts hold no other identity number
(no 9-digit identity card, CMND): a 9-digit number is none either.

The kind is also the account's field that holds the number (`User.phone`,
`User.citizen_id`) and what an audit record says the account was found by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from django.db.models import Q

from auth.phone import parse_phone

# ASCII digits only, as accounts hold them (`auth.citizen_ids`): full-width digits are
# no number an account holds.
CITIZEN_ID = re.compile(r"[0-9]{12}")


@dataclass(frozen=True)
class PersonalNumber:
    kind: Literal["phone", "citizen_id"]
    value: str  # the number as accounts hold it: E.164, or the 12 digits

    def held_by(self) -> Q:
        """The condition that an account holds this number."""
        return Q((self.kind, self.value))


def whole_personal_number(text: object) -> PersonalNumber | None:
    """`text` as a whole phone number or citizen ID, else None (not text included)."""
    if not isinstance(text, str):
        return None
    if (phone := parse_phone(text)) is not None:
        return PersonalNumber("phone", phone)
    if CITIZEN_ID.fullmatch(key := text.strip()):
        return PersonalNumber("citizen_id", key)
    return None
