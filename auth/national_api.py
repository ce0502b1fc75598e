"""National sign-in (VNeID through the national portal's SSO): /api/v1/auth/national.

The exact mobile flow is in mobile_api_docs/national-sign-in.md.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from auth.access import my_national_identity
from auth.actions import national_sign_in
from auth.bearer import bearer, current_session, current_user, require_recent_authentication
from auth.phone import mask_phone
from auth.schemas import DeviceIn, SecondFactor, TokenOut
from backend.errors import ErrorOut
from backend.middleware import client_ip, request_language
from backend.strict_json import JSON_INTEGER

router = Router(tags=["national sign-in"])

ERRORS = {400: ErrorOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut}


class NationalStartIn(DeviceIn):
    min_level: Annotated[Literal[1, 2], JSON_INTEGER] = Field(
        1, description="Least identity level needed, e.g. 2 when a procedure asks for it"
    )


class NationalStartOut(Schema):
    authorization_url: str = Field(..., description="Open it in the system browser")
    state: str = Field(..., description="Also in the URL; the callback must bring it back")
    redirect_uri: str = Field(..., description="The app link the browser returns to")
    expires_in: int = Field(..., description="Seconds left to finish this sign-in")


class NationalCallbackIn(Schema):
    state: str = Field(..., min_length=1, max_length=256)
    code: str = Field(..., min_length=1, max_length=2048)


class LinkRequiredOut(Schema):
    flow_id: uuid.UUID
    phone: str = Field(..., description="Masked number of the account the code went to")
    methods: list[SecondFactor]
    expires_in: int


class NationalCallbackOut(Schema):
    status: Literal["signed_in", "link_required"]
    account_created: bool = False
    tokens: TokenOut | None = Field(None, description="With `signed_in`")
    link: LinkRequiredOut | None = Field(None, description="With `link_required`")


class LinkVerifyIn(Schema):
    flow_id: uuid.UUID
    method: SecondFactor = "sms_otp"
    code: str = Field(..., min_length=1, max_length=32)


class NationalIdentityOut(Schema):
    level: int = Field(..., description="VNeID identity level: 1 or 2")
    full_name: str
    linked_at: dt.datetime
    last_sign_in_at: dt.datetime


def _tokens(outcome: national_sign_in.Outcome) -> TokenOut:
    tokens = outcome.tokens
    if tokens is None:
        raise RuntimeError("a signed-in outcome without tokens")
    return TokenOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        session_id=tokens.session_id,
        device_key=tokens.device_key or None,
    )


def _callback_out(outcome: national_sign_in.Outcome) -> NationalCallbackOut:
    if outcome.link_flow is not None:
        account = outcome.link_flow.link_user
        return NationalCallbackOut(
            status="link_required",
            tokens=None,
            link=LinkRequiredOut(
                flow_id=outcome.link_flow.id,
                phone=mask_phone(account.phone) if account else "",
                methods=list(outcome.methods),  # type: ignore[arg-type]
                expires_in=settings.OTP_TTL_SECONDS,
            ),
        )
    return NationalCallbackOut(
        status="signed_in",
        account_created=outcome.created_account,
        tokens=_tokens(outcome),
        link=None,
    )


def _start_out(started: national_sign_in.Started) -> NationalStartOut:
    return NationalStartOut(
        authorization_url=started.authorization_url,
        state=started.state,
        redirect_uri=settings.NATIONAL_ID_REDIRECT_URI,
        expires_in=settings.NATIONAL_ID_FLOW_TTL_SECONDS,
    )


@router.post(
    "/start",
    response={200: NationalStartOut, **ERRORS},
    summary="Start a national sign-in (VNeID): the authorization URL to open",
)
def start(request: HttpRequest, payload: NationalStartIn) -> NationalStartOut:
    """Begin signing in with the national identity: open the URL in the system browser."""
    started = national_sign_in.start(
        purpose="sign_in", device=payload.info(), ip=client_ip(request), min_level=payload.min_level
    )
    return _start_out(started)


@router.post(
    "/callback",
    response={200: NationalCallbackOut, **ERRORS},
    summary="Finish a national sign-in with the code the app link brought back",
)
def callback(request: HttpRequest, payload: NationalCallbackIn) -> NationalCallbackOut:
    """The `code` and `state` of the app link the browser came back to."""
    outcome = national_sign_in.complete(
        state=payload.state,
        code=payload.code,
        ip=client_ip(request),
        language=request_language(request),
    )
    return _callback_out(outcome)


@router.post(
    "/link/verify",
    response={200: TokenOut, **ERRORS},
    summary="Prove control of the existing account to link the national identity",
)
def verify_link(request: HttpRequest, payload: LinkVerifyIn) -> TokenOut:
    """The existing account's proof (SMS code, TOTP or recovery code): linked, signed in."""
    outcome = national_sign_in.verify_link(
        flow_id=payload.flow_id, method=payload.method, code=payload.code, ip=client_ip(request)
    )
    return _tokens(outcome)


@router.post(
    "/link/start",
    auth=bearer,
    response={200: NationalStartOut, 401: ErrorOut, **ERRORS},
    summary="Start linking my account to my national identity",
)
def start_link(request: HttpRequest, payload: NationalStartIn) -> NationalStartOut:
    """Link a national identity to the signed-in account (needs a recent sign-in)."""
    require_recent_authentication(request)
    started = national_sign_in.start(
        purpose="link",
        device=payload.info(),
        ip=client_ip(request),
        user=current_user(request),
        session=current_session(request),
        min_level=payload.min_level,
    )
    return _start_out(started)


@router.post(
    "/link/callback",
    auth=bearer,
    response={200: NationalCallbackOut, 401: ErrorOut, **ERRORS},
    summary="Finish linking with the code the app link brought back",
)
def link_callback(request: HttpRequest, payload: NationalCallbackIn) -> NationalCallbackOut:
    """The app link of a link flow; the account then proves control (`/link/verify`)."""
    outcome = national_sign_in.complete(
        state=payload.state, code=payload.code, ip=client_ip(request), user=current_user(request)
    )
    return _callback_out(outcome)


@router.get(
    "/identity",
    auth=bearer,
    response={200: NationalIdentityOut, 401: ErrorOut, 404: ErrorOut},
    summary="My linked national identity and its level",
)
def linked_identity(request: HttpRequest) -> NationalIdentityOut:
    """The national identity linked to the account."""
    identity = my_national_identity(current_user(request))
    return NationalIdentityOut(
        level=identity.level,
        full_name=identity.full_name,
        linked_at=identity.linked_at,
        last_sign_in_at=identity.last_sign_in_at,
    )


@router.delete(
    "/identity",
    auth=bearer,
    response={204: None, 401: ErrorOut, 409: ErrorOut},
    summary="Unlink my national identity (needs a recent sign-in and a password)",
)
def unlink_identity(request: HttpRequest) -> Status[None]:
    """Unlink (needs a recent sign-in, and a password to sign in with afterwards)."""
    require_recent_authentication(request)
    national_sign_in.unlink(user=current_user(request))
    return Status(204, None)
