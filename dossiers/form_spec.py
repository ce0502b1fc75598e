"""Declarative form fields of a procedure, and their server-side validation.

A procedure's `form_spec` is a list of fields such as

    {"name": "child_name", "type": "text", "label": "Họ, chữ đệm, tên", "label_en": "Full name",
     "required": true, "max_length": 100}

Types: text, number, date, choice, phone (Vietnamese mobile, stored as E.164),
citizen_id (12-digit CCCD), email, address (a 2025 commune/ward code), checkbox.
Options: required, min/max (number, or date as ISO or "today"), min_length/max_length
(text), choices ([{"value", "label", "label_en"}]), integer (number), help/help_en,
old_address (address: the app offers converting an address written in the units before
July 2025; the value may then be that text, and the companion `<name>_as_written` keeps
what the citizen wrote next to the chosen commune code).

Drafts may hold partial, unchecked values (`check_draft_values` only refuses unknown
names and non-scalar or oversized values); `validate_form` checks everything at
submission and returns the normalised data (phone numbers in E.164, ...).
Errors use the API's field-error shape with `field` = "form.<name>".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from vietnam_provinces import Ward, WardCode

from auth.citizen_ids import is_structurally_valid_citizen_id
from auth.phone import parse_phone
from backend import old_address_api
from backend.errors import ApiError

FIELD_TYPES = (
    "text",
    "number",
    "date",
    "choice",
    "phone",
    "citizen_id",
    "email",
    "address",
    "checkbox",
)
FIELD_KEYS = {
    "name",
    "type",
    "label",
    "label_en",
    "help",
    "help_en",
    "required",
    "min",
    "max",
    "min_length",
    "max_length",
    "choices",
    "integer",
    "old_address",
}
AS_WRITTEN = "_as_written"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


class FieldProblem(Exception):
    def __init__(self, code: str, message: Any, extra: Any = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.extra = extra


def field_error_detail(name: str, code: str, message: Any, extra: Any = None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "field": f"form.{name}",
        "location": "body",  # the draft's `form`, as sent (a submit checks the saved one)
        "code": code,
        "message": str(message),
    }
    if isinstance(extra, dict) and "conversion" in extra:
        detail["conversion"] = extra["conversion"]  # the candidates to choose from
    if isinstance(extra, dict) and "suggestions" in extra:
        detail["suggestions"] = extra["suggestions"]
    return detail


# --- The spec itself ------------------------------------------------------------------


def check_spec(spec: Any) -> list[str]:
    """Problems of a form spec (empty when it is well formed). For the loader and admin."""
    if not isinstance(spec, list):
        return ["the form spec must be a list of fields"]
    problems: list[str] = []
    seen: set[str] = set()
    for index, field in enumerate(spec):
        where = f"field {index + 1}"
        if not isinstance(field, dict):
            problems.append(f"{where}: must be an object")
            continue
        name = field.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{where}: name must be snake_case ascii")
        elif name in seen:
            problems.append(f"{where}: duplicate name {name}")
        else:
            seen.add(name)
            where = name
        if field.get("type") not in FIELD_TYPES:
            problems.append(f"{where}: type must be one of {', '.join(FIELD_TYPES)}")
        if not isinstance(field.get("label"), str) or not field["label"]:
            problems.append(f"{where}: a Vietnamese label is required")
        unknown = set(field) - FIELD_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        if field.get("type") == "choice":
            choices = field.get("choices")
            if not isinstance(choices, list) or not choices:
                problems.append(f"{where}: a choice field needs choices")
            elif not all(isinstance(c, dict) and isinstance(c.get("value"), str) for c in choices):
                problems.append(f"{where}: each choice needs a string value")
        if field.get("old_address") is not None and (
            field.get("type") != "address" or not isinstance(field["old_address"], bool)
        ):
            problems.append(f"{where}: old_address is true or false, on an address field")
        if field.get("type") == "date":
            for bound in ("min", "max"):
                if bound in field and _date_bound(field[bound]) is None:
                    problems.append(f"{where}: {bound} must be an ISO date or 'today'")
    for field in spec:
        kept = f"{field.get('name')}{AS_WRITTEN}" if isinstance(field, dict) else ""
        if isinstance(field, dict) and field.get("old_address") is True and kept in seen:
            problems.append(f"{kept}: this name is kept for the text of the old address")
    return problems


def _date_bound(value: Any) -> dt.date | None:
    if value == "today":
        return timezone.localdate()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


# --- Drafts: shape only ------------------------------------------------------------------


def field_names(spec: list[dict[str, Any]]) -> set[str]:
    """Names a form's data may hold: the fields, and the written text of old addresses."""
    names = {field["name"] for field in spec}
    names |= {f"{field['name']}{AS_WRITTEN}" for field in spec if field.get("old_address")}
    return names


def check_draft_values(spec: list[dict[str, Any]], data: dict[str, Any]) -> list[dict[str, str]]:
    """Errors that make `data` unfit even for a draft: unknown names, nested or huge values."""
    names = field_names(spec)
    limit = settings.DOSSIER_FORM_VALUE_MAX_CHARS
    errors = []
    for name, value in data.items():
        if name not in names:
            errors.append(
                field_error_detail(name, "unknown_field", _("This form has no such field."))
            )
        elif (value is not None and not isinstance(value, str | int | float | bool)) or (
            # PostgreSQL cannot store these in JSON: refuse them instead of failing later.
            (isinstance(value, float) and not math.isfinite(value))
            or (isinstance(value, str) and "\x00" in value)
        ):
            errors.append(field_error_detail(name, "invalid_type", _("Must be a single value.")))
        elif isinstance(value, str) and len(value) > limit:
            errors.append(
                field_error_detail(
                    name,
                    "too_long",
                    _("Must be at most %(max)s characters.") % {"max": limit},
                )
            )
    return errors


# --- Submission: everything -----------------------------------------------------------


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(field: dict[str, Any], value: Any) -> str:
    if not isinstance(value, str):
        raise FieldProblem("invalid_type", _("Must be text."))
    value = value.strip()
    max_length = min(
        int(field.get("max_length") or settings.DOSSIER_FORM_VALUE_MAX_CHARS),
        settings.DOSSIER_FORM_VALUE_MAX_CHARS,
    )
    if len(value) > max_length:
        raise FieldProblem(
            "too_long", _("Must be at most %(max)s characters.") % {"max": max_length}
        )
    min_length = field.get("min_length")
    if min_length and len(value) < int(min_length):
        raise FieldProblem(
            "too_short", _("Must be at least %(min)s characters.") % {"min": min_length}
        )
    return value


def _number(field: dict[str, Any], value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldProblem("invalid_number", _("Must be a number."))
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation as exc:
        raise FieldProblem("invalid_number", _("Must be a number.")) from exc
    if not number.is_finite():
        raise FieldProblem("invalid_number", _("Must be a number."))
    # Before any arithmetic: "1e100000000" is a short string and a 100-million-digit
    # integer. Beyond 15 digits the apps (JSON numbers are doubles) lose digits anyway.
    digits = settings.DOSSIER_FORM_NUMBER_MAX_DIGITS
    if number and number.adjusted() >= digits:
        raise FieldProblem(
            "number_too_large",
            _("Must have at most %(digits)s digits before the decimal point.") % {"digits": digits},
        )
    whole = number == number.to_integral_value()
    if field.get("integer") and not whole:
        raise FieldProblem("not_whole_number", _("Must be a whole number."))
    if "min" in field and number < Decimal(str(field["min"])):
        raise FieldProblem("below_min", _("Must be at least %(min)s.") % {"min": field["min"]})
    if "max" in field and number > Decimal(str(field["max"])):
        raise FieldProblem("above_max", _("Must be at most %(max)s.") % {"max": field["max"]})
    return int(number) if whole else float(number)


def _date(field: dict[str, Any], value: Any) -> str:
    try:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None or len(value) != 10:
        raise FieldProblem("invalid_date", _("Must be a date (YYYY-MM-DD)."))
    lowest = _date_bound(field["min"]) if "min" in field else None
    highest = _date_bound(field["max"]) if "max" in field else None
    if lowest is not None and day < lowest:
        raise FieldProblem(
            "date_too_early", _("Must be on or after %(date)s.") % {"date": lowest.isoformat()}
        )
    if highest is not None and day > highest:
        raise FieldProblem(
            "date_too_late", _("Must be on or before %(date)s.") % {"date": highest.isoformat()}
        )
    return day.isoformat()


def _choice(field: dict[str, Any], value: Any) -> str:
    allowed = [choice["value"] for choice in field.get("choices", [])]
    if not isinstance(value, str) or value not in allowed:
        raise FieldProblem("invalid_choice", _("Not one of the allowed values."))
    return value


def _phone(field: dict[str, Any], value: Any) -> str:
    phone = parse_phone(value) if isinstance(value, str) else None
    if phone is None:
        raise FieldProblem(
            "invalid_phone", _("Must be a Vietnamese mobile number, e.g. 0912 345 678.")
        )
    return phone


def _citizen_id(field: dict[str, Any], value: Any) -> str:
    candidate = value.replace(" ", "") if isinstance(value, str) else ""
    if not is_structurally_valid_citizen_id(candidate):
        raise FieldProblem(
            "invalid_citizen_id", _("Must be the 12-digit number of a citizen ID card.")
        )
    return candidate


def _email(field: dict[str, Any], value: Any) -> str:
    candidate = value.strip() if isinstance(value, str) else ""
    try:
        validate_email(candidate)
    except ValidationError as exc:
        raise FieldProblem("invalid_email", _("Must be an email address.")) from exc
    return candidate


def _address(field: dict[str, Any], value: Any) -> str:
    problem = FieldProblem("invalid_commune", _("Must be the code of a commune or ward."))
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 5:
        if field.get("old_address") and isinstance(value, str):
            return _old_address(field, value, None)
        raise problem
    try:
        Ward.from_code(WardCode(int(value)))
    except ValueError as exc:
        raise problem from exc
    return f"{int(value):05d}"


def _old_address(field: dict[str, Any], text: str, chosen: str | None) -> str:
    """The 2025 commune code of an old address; never guessed (see resolve_old_address)."""
    try:
        _, code = old_address_api.resolve_old_address(text, chosen, f"form.{field['name']}")
    except ApiError as exc:
        raise FieldProblem(exc.code, exc.message, exc.details) from exc
    return code


def _checkbox(field: dict[str, Any], value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldProblem("invalid_type", _("Must be true or false."))
    if field.get("required") and not value:
        raise FieldProblem("must_be_checked", _("This box must be ticked."))
    return value


CLEANERS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "text": _text,
    "number": _number,
    "date": _date,
    "choice": _choice,
    "phone": _phone,
    "citizen_id": _citizen_id,
    "email": _email,
    "address": _address,
    "checkbox": _checkbox,
}


def validate_form(
    spec: list[dict[str, Any]], data: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(normalised data, errors) for a form about to be submitted."""
    errors = [error for error in check_draft_values(spec, data) if error["code"] == "unknown_field"]
    cleaned: dict[str, Any] = {}
    for field in spec:
        name = field["name"]
        value = data.get(name)
        if _is_empty(value):
            if field.get("required"):
                errors.append(field_error_detail(name, "required", _("This field is required.")))
            continue
        try:
            written = data.get(f"{name}{AS_WRITTEN}") if field.get("old_address") else None
            if isinstance(written, str) and written.strip():
                # The commune chosen among the old address's candidates, and the text.
                cleaned[name] = _old_address(field, written, _address(field, value))
                cleaned[f"{name}{AS_WRITTEN}"] = written.strip()
            elif field.get("old_address") and isinstance(value, str) and not value.isdigit():
                cleaned[name] = _old_address(field, value, None)
                cleaned[f"{name}{AS_WRITTEN}"] = value.strip()
            else:
                cleaned[name] = CLEANERS[field["type"]](field, value)
        except FieldProblem as problem:
            errors.append(field_error_detail(name, problem.code, problem.message, problem.extra))
    return cleaned, errors


# --- What the app renders ---------------------------------------------------------------


def localised_spec(spec: list[dict[str, Any]], english: bool) -> list[dict[str, Any]]:
    """The spec with one label/help per field in the request's language."""

    def text(item: dict[str, Any], key: str) -> str:
        return str((english and item.get(f"{key}_en")) or item.get(key) or "")

    fields = []
    for field in spec:
        out: dict[str, Any] = {
            "name": field["name"],
            "type": field["type"],
            "label": text(field, "label"),
            "help": text(field, "help"),
            "required": bool(field.get("required")),
        }
        for key in ("min", "max", "min_length", "max_length", "integer", "old_address"):
            if key in field:
                out[key] = field[key]
        if field["type"] == "choice":
            out["choices"] = [
                {"value": choice["value"], "label": text(choice, "label") or choice["value"]}
                for choice in field.get("choices", [])
            ]
        fields.append(out)
    return fields
