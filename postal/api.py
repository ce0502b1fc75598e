"""Addresses, quotes and postal delivery bookings; the carrier's webhook."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any, Literal

import redis
from django.conf import settings
from django.core.cache import cache
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from auth.bearer import bearer, current_user
from auth.models import User
from auth.phone import mask_phone
from backend import old_address_api
from backend.errors import ErrorOut, NotFound, RateLimited, Unprocessable, field_detail
from backend.idempotency import idempotent
from backend.old_address_api import ConversionOut, OldCodesIn
from backend.pagination import PageParams, page_of, paginate
from backend.params import QueryParams
from dossiers.access import access_dossier
from postal import actions, divisions, webhooks
from postal.access import (
    access_address,
    access_booking,
    may_change,
    shows_recipient,
)
from postal.models import CarrierMessage, DeliveryBooking, SavedAddress

router = Router(tags=["postal"])
logger = logging.getLogger(__name__)


def count_conversion(user_id: uuid.UUID) -> None:
    """ADDRESS_CONVERSIONS_PER_MINUTE per user (a fixed one-minute window).

    Fails open when Redis is unreachable: a conversion reads only the packaged tables
    (no personal data, no outside call), so refusing it would only hurt the citizen.
    """
    window = int(time.time() // 60)
    counter = f"old-address-conversions:{user_id.hex}:{window}"
    try:
        cache.add(counter, 0, 61)
        count = cache.incr(counter)
    except redis.RedisError:
        logger.warning("old-address conversion not counted: redis unavailable")
        return
    if count > settings.ADDRESS_CONVERSIONS_PER_MINUTE:
        raise RateLimited(60 - int(time.time()) % 60)


DirectionLiteral = Literal["result", "pickup"]


# --- Provinces and communes ---------------------------------------------------------------


class ProvinceOut(Schema):
    code: str = Field(..., examples=["01"])
    name: str = Field(..., examples=["Thành phố Hà Nội"])
    division_type: str = Field(..., examples=["thành phố trung ương"])


class CommuneOut(Schema):
    code: str = Field(..., examples=["00070"])
    name: str = Field(..., examples=["Phường Hoàn Kiếm"])
    division_type: str = Field(..., description="xã, phường or đặc khu")
    province_code: str


class CommuneDetailOut(CommuneOut):
    province: ProvinceOut


class ProvinceListOut(Schema):
    items: list[ProvinceOut]


class CommuneListOut(Schema):
    items: list[CommuneOut]


class SearchParams(QueryParams):
    q: str | None = Field(
        None, max_length=100, description="Words of the name, with or without diacritics"
    )


@router.get("/provinces", response=ProvinceListOut, summary="List or search provinces")
def list_provinces(request: HttpRequest, params: Query[SearchParams]) -> dict[str, Any]:
    return {"items": divisions.search_provinces(params.q)}


@router.get(
    "/provinces/{code}/communes",
    response={200: CommuneListOut, 404: ErrorOut},
    summary="List or search a province's communes and wards",
)
def list_communes(request: HttpRequest, code: str, params: Query[SearchParams]) -> dict[str, Any]:
    province = divisions.get_province(code)
    if province is None:
        raise NotFound("unknown_province", _("There is no province or city with this code."))
    return {"items": divisions.search_communes(province.code, params.q)}


@router.get(
    "/communes/{code}",
    response={200: CommuneDetailOut, 404: ErrorOut},
    summary="One commune or ward with its province",
)
def get_commune(request: HttpRequest, code: str) -> dict[str, Any]:
    commune = divisions.get_commune(code)
    if commune is None:
        raise NotFound("unknown_commune", _("There is no commune or ward with this code."))
    return {**commune.__dict__, "province": divisions.provinces()[commune.province_code]}


# --- Old addresses (before July 2025) -----------------------------------------------------


class OldAddressIn(Schema):
    text: str | None = Field(
        None,
        max_length=2000,
        examples=["Phuong Ben Nghe, Quan 1, TP HCM"],
        description="The old address as written, with or without diacritics "
        "(ADDRESS_TEXT_MAX_CHARS at most)",
    )
    codes: OldCodesIn | None = Field(None, description="Or the old official codes")


@router.post(
    "/old-addresses/convert",
    response={200: ConversionOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    auth=bearer,
    summary="Convert an address of before July 2025 to the 2025 province and commune",
)
def convert_old_address(request: HttpRequest, payload: OldAddressIn) -> dict[str, Any]:
    """Nothing is chosen for the citizen: a split ward or an ambiguous name answers
    `choose` with every candidate. A province named alone answers `province_only` with
    the province it merged into."""
    count_conversion(current_user(request).pk)
    if (payload.text is None) == (payload.codes is None):
        message = _("Send either the address text or the old codes.")
        raise Unprocessable(
            "text_or_codes",
            message,
            details=[field_detail("text", "text_or_codes", message)],
        )
    if payload.codes is not None:
        conversion = old_address_api.convert_codes(payload.codes)
    else:
        conversion = old_address_api.convert_text(payload.text or "")
    return old_address_api.conversion_out(conversion)


# --- Saved addresses --------------------------------------------------------------------------


class AddressIn(Schema):
    label: str = Field("", max_length=50, examples=["Nhà riêng"])
    recipient_name: str = Field(..., min_length=1, max_length=150)
    phone: str = Field(..., min_length=3, max_length=20, examples=["0912345678"])
    street: str = Field(
        "",
        max_length=255,
        examples=["Số 12 ngõ 34 phố Huế"],
        description="Required, unless `old_address` gives it (what precedes the ward)",
    )
    commune_code: str = Field(
        "",
        max_length=5,
        examples=["00070"],
        description="2025 commune. Required, unless `old_address` converts to one commune; "
        "with `old_address`, one of its candidates",
    )
    province_code: str | None = Field(
        None, max_length=2, description="Optional; when given, the commune must be in it."
    )
    old_address: str | None = Field(
        None,
        max_length=500,
        examples=["Số 12 Nguyễn Huệ, P. Bến Nghé, Q.1, TP.HCM"],
        description="The address in the units before July 2025, as written (kept as "
        "`entered_address`). A split ward answers 422 `address_needs_choice`: send again "
        "with the chosen `commune_code`. Limit: ADDRESS_TEXT_MAX_CHARS",
    )


class AddressOut(Schema):
    id: uuid.UUID
    label: str
    recipient_name: str
    phone: str = Field(..., description="E.164")
    street: str
    commune_code: str
    commune_name: str
    province_code: str
    province_name: str
    entered_address: str = Field(..., description="The old address as written, or empty")
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_commune_name(obj: SavedAddress) -> str:
        unit = divisions.get_commune(obj.commune_code)
        return unit.name if unit else ""

    @staticmethod
    def resolve_province_name(obj: SavedAddress) -> str:
        unit = divisions.get_province(obj.province_code)
        return unit.name if unit else ""


@router.get("/addresses", response=page_of(AddressOut), auth=bearer, summary="My addresses")
def list_addresses(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    rows, next_cursor = paginate(
        SavedAddress.objects.filter(user=current_user(request)), params, ("-created_at", "-id")
    )
    return {"items": rows, "next_cursor": next_cursor}


@router.post(
    "/addresses",
    response={201: AddressOut, 409: ErrorOut, 422: ErrorOut},
    auth=bearer,
    summary="Save an address",
)
@idempotent
def create_address(request: HttpRequest, payload: AddressIn) -> Status[SavedAddress]:
    return Status(201, actions.create_address(current_user(request), payload.dict()))


@router.get(
    "/addresses/{address_id}",
    response={200: AddressOut, 404: ErrorOut},
    auth=bearer,
    summary="Get a saved address",
)
def get_address(request: HttpRequest, address_id: uuid.UUID) -> SavedAddress:
    return access_address(current_user(request), address_id)


@router.put(
    "/addresses/{address_id}",
    response={200: AddressOut, 404: ErrorOut, 422: ErrorOut},
    auth=bearer,
    summary="Replace an address (bookings keep the copy they were made with)",
)
def update_address(request: HttpRequest, address_id: uuid.UUID, payload: AddressIn) -> SavedAddress:
    return actions.update_address(current_user(request), address_id, payload.dict())


@router.delete(
    "/addresses/{address_id}",
    response={204: None, 404: ErrorOut},
    auth=bearer,
    summary="Delete a saved address",
)
def delete_address(request: HttpRequest, address_id: uuid.UUID) -> Status[None]:
    actions.delete_address(current_user(request), address_id)
    return Status(204, None)


# --- Quotes and bookings ---------------------------------------------------------------------


class QuoteParams(QueryParams):
    address_id: uuid.UUID
    direction: DirectionLiteral = "result"


class QuoteOut(Schema):
    carrier: str
    direction: DirectionLiteral
    zone: Literal["local", "near", "far"]
    weight_grams: int
    weight_class_grams: int = Field(..., description="Upper bound of the tariff's weight class")
    fee: int = Field(..., description="Postage, VND")
    cod_amount: int = Field(
        ..., description="Procedure fee the carrier collects on delivery (VND), 0 if none"
    )
    expected_days: int
    currency: str


@router.get(
    "/dossiers/{dossier_id}/quote",
    response={200: QuoteOut, 404: ErrorOut, 422: ErrorOut},
    auth=bearer,
    summary="Postage and cash on delivery for a dossier and an address",
)
def quote(request: HttpRequest, dossier_id: uuid.UUID, params: Query[QuoteParams]) -> Any:
    user = current_user(request)
    dossier = access_dossier(user, dossier_id)
    address = access_address(user, params.address_id)
    return actions.compute_quote(dossier, address, params.direction)


class BookingIn(Schema):
    direction: DirectionLiteral = Field(
        "result",
        description="`result`: deliver the result home; `pickup`: collect the paper dossier",
    )
    address_id: uuid.UUID


class BookingAddressIn(Schema):
    address_id: uuid.UUID


class BookingUpdateOut(Schema):
    status: str
    occurred_at: dt.datetime
    location: str


def _shows_recipient(booking: DeliveryBooking, context: dict[str, Any] | None) -> bool:
    """`shows_recipient` for the user of the request being answered (masked without one)."""
    request = (context or {}).get("request")
    user = getattr(request, "auth", None)
    return isinstance(user, User) and shows_recipient(user, booking)


def _may_change(booking: DeliveryBooking, context: dict[str, Any] | None) -> bool:
    """`may_change` for the user of the request being answered (False without one)."""
    request = (context or {}).get("request")
    user = getattr(request, "auth", None)
    return isinstance(user, User) and may_change(user, booking)


def _carrier_updates() -> Prefetch[Any]:
    """The carrier's reports a booking shows (`updates`), as `applied_updates`: read
    for a whole page of bookings in one query (the list), or for one (the other routes)."""
    return Prefetch(
        "messages",
        queryset=CarrierMessage.objects.filter(outcome=CarrierMessage.Outcome.APPLIED).order_by(
            "occurred_at", "id"
        ),
        to_attr="applied_updates",
    )


def _can_change_now(request: HttpRequest, path: dict[str, Any], answer: Any) -> Any:
    """A replayed booking (`@idempotent(refresh=...)`) with `can_change` read now: the
    carrier may have picked the parcel up, or an admin re-addressed it, since."""
    user = current_user(request)
    try:
        booking = access_booking(user, answer["id"])
    except NotFound:
        return {**answer, "can_change": False}
    return {**answer, "can_change": may_change(user, booking)}


class BookingOut(Schema):
    id: int
    dossier_id: uuid.UUID
    dossier_code: str
    direction: DirectionLiteral
    carrier: str
    status: str = Field(
        ...,
        description="pending, booked, ready_for_pickup, picked_up, in_transit, out_for_delivery, "
        "failed_attempt, delivered, returned, cancelled, rejected",
    )
    status_label: str
    can_change: bool = Field(
        ...,
        description="You may still cancel or change the address: before pickup, and you "
        "booked it, are the dossier's applicant, or an owner or admin of its organisation",
    )
    waybill: str = Field(..., description="Carrier tracking number; empty while pending")
    order_number: str
    recipient_name: str
    phone: str = Field(
        ...,
        description="E.164 for whoever booked and the dossier's applicant; masked "
        "(`+8498•••1222`) for the organisation's other members",
    )
    street: str = Field(
        ...,
        description="Empty for the organisation's members other than whoever booked "
        "and the applicant (they see the commune and province only)",
    )
    commune_code: str
    commune_name: str
    province_code: str
    province_name: str
    weight_grams: int
    zone: str
    fee: int
    cod_amount: int
    expected_days: int
    updates: list[BookingUpdateOut]
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_dossier_code(obj: DeliveryBooking) -> str:
        return obj.dossier.code or ""

    @staticmethod
    def resolve_status_label(obj: DeliveryBooking) -> str:
        return str(obj.get_status_display())

    @staticmethod
    def resolve_can_change(obj: DeliveryBooking, context: dict[str, Any] | None) -> bool:
        return _may_change(obj, context)

    @staticmethod
    def resolve_phone(obj: DeliveryBooking, context: dict[str, Any] | None) -> str:
        return obj.phone if _shows_recipient(obj, context) else mask_phone(obj.phone)

    @staticmethod
    def resolve_street(obj: DeliveryBooking, context: dict[str, Any] | None) -> str:
        return obj.street if _shows_recipient(obj, context) else ""

    @staticmethod
    def resolve_commune_name(obj: DeliveryBooking) -> str:
        unit = divisions.get_commune(obj.commune_code)
        return unit.name if unit else ""

    @staticmethod
    def resolve_province_name(obj: DeliveryBooking) -> str:
        unit = divisions.get_province(obj.province_code)
        return unit.name if unit else ""

    @staticmethod
    def resolve_updates(obj: DeliveryBooking) -> list[dict[str, Any]]:
        if not hasattr(obj, "applied_updates"):
            prefetch_related_objects([obj], _carrier_updates())
        messages: list[CarrierMessage] = obj.applied_updates  # type: ignore[attr-defined]
        return [
            {
                "status": m.status,
                "occurred_at": m.occurred_at,
                "location": str(m.payload.get("location", "")),
            }
            for m in messages
        ]


@router.post(
    "/dossiers/{dossier_id}/bookings",
    response={201: BookingOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    auth=bearer,
    summary="Book the result's delivery home, or the paper dossier's pickup",
)
@idempotent(refresh=_can_change_now)
def book(request: HttpRequest, dossier_id: uuid.UUID, payload: BookingIn) -> Status[Any]:
    user = current_user(request)
    booking = actions.book_delivery(
        user, dossier_id, direction=payload.direction, address_id=payload.address_id
    )
    return Status(201, access_booking(user, booking.pk))


@router.get(
    "/dossiers/{dossier_id}/bookings",
    response={200: page_of(BookingOut), 404: ErrorOut},
    auth=bearer,
    summary="A dossier's bookings, newest first",
)
def list_bookings(
    request: HttpRequest, dossier_id: uuid.UUID, params: Query[PageParams]
) -> dict[str, Any]:
    user = current_user(request)
    # The access check, once for the page: `can_change`, the recipient's masking and
    # `dossier_code` of every booking read this dossier (and the caller's role in its
    # organisation, kept on it), never a query per booking.
    dossier = access_dossier(user, dossier_id)
    rows, next_cursor = paginate(
        DeliveryBooking.objects.filter(dossier=dossier).prefetch_related(_carrier_updates()),
        params,
        ("-created_at", "-id"),
    )
    for row in rows:
        row.dossier = dossier
    return {"items": rows, "next_cursor": next_cursor}


@router.get(
    "/bookings/{booking_id}",
    response={200: BookingOut, 404: ErrorOut},
    auth=bearer,
    summary="Get a postal booking and its tracking",
)
def get_booking(request: HttpRequest, booking_id: int) -> DeliveryBooking:
    return access_booking(current_user(request), booking_id)


@router.post(
    "/bookings/{booking_id}/cancel",
    response={200: BookingOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    auth=bearer,
    summary="Cancel before the carrier picks the parcel up",
    description="Whoever booked, the dossier's applicant, and the owners and admins of its "
    "organisation; the organisation's other members get 403 `not_booker`.",
)
def cancel(request: HttpRequest, booking_id: int) -> DeliveryBooking:
    user = current_user(request)
    booking = actions.cancel_booking(user, booking_id)
    return access_booking(user, booking.pk)


@router.put(
    "/bookings/{booking_id}/address",
    response={200: BookingOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut},
    auth=bearer,
    summary="Change the address before the carrier picks the parcel up",
    description="To one of your own saved addresses (404 for anyone else's): you become "
    "whoever booked it. Whoever booked, the dossier's applicant, and the owners and admins "
    "of its organisation; the organisation's other members get 403 `not_booker`.",
)
def change_address(request: HttpRequest, booking_id: int, payload: BookingAddressIn) -> Any:
    user = current_user(request)
    booking = actions.change_booking_address(user, booking_id, payload.address_id)
    return access_booking(user, booking.pk)


# --- Carrier webhook ------------------------------------------------------------------------


class WebhookAckOut(Schema):
    message_id: str
    outcome: Literal["applied", "stale", "unknown_order"]


@router.post(
    "/carriers/{carrier}/webhook",
    auth=webhooks.carrier_signature,
    response={200: WebhookAckOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="Parcel status from the carrier (signed, server to server)",
    description="See mobile_api_docs/postal.md, section Carrier webhook contract.",
)
def carrier_webhook(
    request: HttpRequest, carrier: str, payload: webhooks.CarrierWebhookIn
) -> dict[str, Any]:
    update = webhooks.carrier_update(payload)
    outcome, _booking_id = actions.apply_carrier_update(carrier, update)
    return {"message_id": update.message_id, "outcome": outcome}
