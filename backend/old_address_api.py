"""The API side of old-address conversion, shared by the app's and the agencies' routes:
the answer's schema, the coded errors, and `resolve_old_address` for forms that take
an old address and store the 2025 units."""

from __future__ import annotations

from typing import Any, Literal

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from ninja import Field, Schema
from vietnam_provinces import Ward, WardCode

from backend import old_addresses
from backend.errors import Unprocessable

_LEVEL_TEXTS = {
    "province": _("No province or city before July 2025 has this name."),
    "district": _("No district, ward or commune of this province before July 2025 has this name."),
    "ward": _("No ward or commune of this district before July 2025 has this name."),
}


class UnitOut(Schema):
    code: str = Field(..., description="Official code")
    name: str


class OldUnitsOut(Schema):
    province: UnitOut
    district: UnitOut | None
    wards: list[UnitOut] = Field(..., description="Old wards that went (wholly or partly) here")


class CandidateOut(Schema):
    province: UnitOut = Field(..., description="2025 province or city")
    commune: UnitOut | None = Field(..., description="2025 commune or ward; null: province only")
    confidence: float = Field(..., ge=0, le=1)
    main: bool = Field(
        ...,
        description="The commune the mapping data names as the default for a split old "
        "ward: show it first, never pick it for the citizen",
    )
    old: OldUnitsOut


class ConversionOut(Schema):
    status: Literal["converted", "choose", "province_only"] = Field(
        ...,
        description="converted: one commune; choose: ask the citizen (split ward or "
        "ambiguous text); province_only: only a province was named",
    )
    street: str = Field(..., description="What came before the ward, as written")
    split: bool = Field(..., description="An old ward named here was split among communes")
    candidates: list[CandidateOut]


class OldCodesIn(Schema):
    province_code: str = Field(..., pattern=r"^\d{1,2}$", examples=["79"])
    district_code: str | None = Field(None, pattern=r"^\d{1,3}$", examples=["760"])
    ward_code: str | None = Field(None, pattern=r"^\d{1,5}$", examples=["26740"])


def conversion_out(conversion: old_addresses.Conversion) -> dict[str, Any]:
    def unit(value: Any) -> dict[str, str] | None:
        return {"code": value.code, "name": value.name} if value is not None else None

    return {
        "status": conversion.status,
        "street": conversion.street,
        "split": conversion.split,
        "candidates": [
            {
                "province": unit(c.province),
                "commune": unit(c.commune),
                "confidence": c.confidence,
                "main": c.main,
                "old": {
                    "province": unit(c.old_province),
                    "district": unit(c.old_district),
                    "wards": [unit(w) for w in c.old_wards],
                },
            }
            for c in conversion.candidates
        ],
    }


def check_text_length(text: str, field: str = "text") -> None:
    limit = settings.ADDRESS_TEXT_MAX_CHARS
    if len(text) > limit:
        raise Unprocessable(
            "address_too_long",
            _("An address may have at most %(max)s characters.") % {"max": limit},
            details=[
                {
                    "field": field,
                    "location": "body",
                    "code": "too_long",
                    "message": str(_("Must be at most %(max)s characters.") % {"max": limit}),
                    "max": limit,
                }
            ],
        )
    if not text.strip():
        raise Unprocessable(
            "address_empty",
            _("Write the address."),
            details=[
                {
                    "field": field,
                    "location": "body",
                    "code": "required",
                    "message": str(_("This field is required.")),
                }
            ],
        )


def not_recognised_error(exc: old_addresses.NotRecognised, field: str = "text") -> Unprocessable:
    return Unprocessable(
        f"unknown_old_{exc.level}",
        _LEVEL_TEXTS[exc.level],
        details={"field": field, "written": exc.written, "suggestions": exc.suggestions},
    )


def bad_codes_error(exc: old_addresses.BadCodes) -> Unprocessable:
    return Unprocessable(
        "unknown_old_unit",
        _("These codes are not units of before July 2025, or they do not fit together."),
        details=[
            {
                "field": exc.field,
                "location": "body",
                "code": "unknown_old_unit",
                "message": str(_("Not a unit of before July 2025, or not inside the one above.")),
            }
        ],
    )


def convert_text(text: str, field: str = "text") -> old_addresses.Conversion:
    """`old_addresses.convert_text` with the length limit and coded errors."""
    check_text_length(text, field)
    try:
        return old_addresses.convert_text(text)
    except old_addresses.NotRecognised as exc:
        raise not_recognised_error(exc, field) from exc


def convert_codes(codes: OldCodesIn) -> old_addresses.Conversion:
    try:
        return old_addresses.convert_codes(
            codes.province_code, codes.district_code, codes.ward_code
        )
    except old_addresses.BadCodes as exc:
        raise bad_codes_error(exc) from exc


def _province_of(commune_code: str) -> str | None:
    try:
        return f"{int(Ward.from_code(WardCode(int(commune_code))).province_code):02d}"
    except ValueError:
        return None


def resolve_old_address(
    text: str, chosen_commune: str | None, field: str
) -> tuple[old_addresses.Conversion, str]:
    """The 2025 commune code an old address stands for, never guessed.

    One candidate: its commune (a `chosen_commune` must then be that one). Several
    (a split ward, an ambiguous name): `chosen_commune` must be one of them, else a 422
    `address_needs_choice` listing them. A province alone: 422 `address_needs_commune`.
    """
    conversion = convert_text(text, field)
    codes = [c.commune.code for c in conversion.candidates if c.commune]
    if chosen_commune:
        chosen = chosen_commune.strip().zfill(5)
        if chosen in codes:
            return conversion, chosen
        if conversion.status == "province_only" and _province_of(chosen) == (
            conversion.candidates[0].province.code
        ):
            return conversion, chosen
        if conversion.status != "province_only":
            raise Unprocessable(
                "commune_not_a_candidate",
                _("The chosen commune is not one that this old address became."),
                details={"field": field, "conversion": conversion_out(conversion)},
            )
    if conversion.status == "converted":
        return conversion, codes[0]
    if conversion.status == "choose":
        raise Unprocessable(
            "address_needs_choice",
            _("This old address now belongs to one of several communes: choose yours."),
            details={"field": field, "conversion": conversion_out(conversion)},
        )
    raise Unprocessable(
        "address_needs_commune",
        _("Only a province was recognised: add the ward and district, or choose the commune."),
        details={"field": field, "conversion": conversion_out(conversion)},
    )
