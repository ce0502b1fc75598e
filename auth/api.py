"""Sign-up, sign-in, sessions, TOTP and the account itself (/api/v1/auth)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from auth import recovery_codes
from auth.access import entered_citizen_id, identity_level, my_sessions
from auth.actions import accounts, challenges, second_factor, sessions, sign_in
from auth.bearer import (
    bearer,
    current_session,
    current_user,
    require_recent_authentication,
    session_expired_error,
)
from auth.citizen_ids import masked_citizen_id
from auth.models import DeviceSession, OtpChallenge, User
from auth.schemas import (
    ChallengeOut,
    CodeIn,
    CodeVerifyIn,
    IdentityIn,
    LoginIn,
    LoginOut,
    LoginVerifyIn,
    MeIn,
    MeOut,
    PasswordChangeIn,
    PasswordIn,
    PasswordResetIn,
    PasswordResetVerifyIn,
    PhoneChangeIn,
    PhoneChangeVerifyIn,
    RecoveryCodesOut,
    RefreshIn,
    RegisterIn,
    ResendIn,
    SessionOut,
    TokenOut,
    TotpEnrolOut,
)
from auth.tokens import TokenError, TokenPair
from backend.errors import ErrorOut, NotAuthenticated
from backend.idempotency import idempotent
from backend.middleware import client_ip, request_language
from backend.pagination import PageParams, page_of, paginate

router = Router(tags=["auth"])


ERRORS_PUBLIC = {400: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut}
ERRORS_AUTH = {400: ErrorOut, 401: ErrorOut, 422: ErrorOut}


# --- Helpers --------------------------------------------------------------------------


def _challenge_out(challenge: OtpChallenge) -> ChallengeOut:
    return ChallengeOut(
        challenge_id=challenge.id,
        expires_in=settings.OTP_TTL_SECONDS,
        resend_after=settings.SMS_RESEND_SECONDS,
    )


def _token_out(tokens: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        session_id=tokens.session_id,
        device_key=tokens.device_key or None,
    )


def _me_out(user: User) -> MeOut:
    return MeOut(
        id=user.id,
        phone=user.phone,
        full_name=user.full_name,
        language=user.language,
        verification_level=user.verification_level,
        phone_verified_at=user.phone_verified_at,
        totp_enabled=user.has_totp,
        recovery_codes_left=recovery_codes.remaining(user),
        # As entered, even when it is held aside as a conflict (see set_identity).
        citizen_id=masked_citizen_id(entered_citizen_id(user)),
        citizen_id_verified=user.citizen_id_verified_at is not None,
        birth_date=user.birth_date,
        identity_level=identity_level(user),
    )


def _session_out(session: DeviceSession, current: DeviceSession) -> SessionOut:
    return SessionOut(
        id=session.id,
        name=session.name,
        platform=session.platform,
        app_version=session.app_version,
        ip=session.ip,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        current=session.pk == current.pk,
    )


# --- Sign-up --------------------------------------------------------------------------


@router.post(
    "/register",
    response={202: ChallengeOut, **ERRORS_PUBLIC},
    summary="Start signing up: a code goes by SMS to the phone",
)
@idempotent
def register(request: HttpRequest, payload: RegisterIn) -> Status[ChallengeOut]:
    """Start a sign-up: a 6-digit code is texted to the number.

    The answer is the same whether or not the number already has an account."""
    challenge = accounts.register(
        phone=payload.phone,
        full_name=payload.full_name,
        password=payload.password,
        ip=client_ip(request),
        language=request_language(request),
    )
    return Status(202, _challenge_out(challenge))


@router.post(
    "/register/verify",
    response={201: TokenOut, **ERRORS_PUBLIC},
    summary="Finish signing up with the SMS code (signs this device in)",
)
def verify_registration(request: HttpRequest, payload: CodeVerifyIn) -> Status[TokenOut]:
    """The code from the SMS activates the account and signs this device in."""
    _session, tokens = accounts.verify_registration(
        challenge_id=payload.challenge_id,
        code=payload.code,
        device=payload.info(),
        ip=client_ip(request),
    )
    return Status(201, _token_out(tokens))


@router.post(
    "/otp/resend",
    response={202: ChallengeOut, 404: ErrorOut, **ERRORS_PUBLIC},
    summary="Send the SMS code of a challenge again",
)
def resend_code(request: HttpRequest, payload: ResendIn) -> Status[ChallengeOut]:
    """Text a new code for an open challenge (sign-up, sign-in, reset, phone change)."""
    challenge = challenges.resend_code(challenge_id=payload.challenge_id, ip=client_ip(request))
    return Status(202, _challenge_out(challenge))


# --- Sign-in --------------------------------------------------------------------------


@router.post(
    "/login",
    response={200: LoginOut, 401: ErrorOut, 403: ErrorOut, **ERRORS_PUBLIC},
    summary="Sign in with phone and password (a new device then gets a second step)",
)
def login(request: HttpRequest, payload: LoginIn) -> LoginOut:
    """Phone and password. On a device new to this account, a second step follows."""
    result = sign_in.login(
        phone=payload.phone,
        password=payload.password,
        device=payload.info(),
        ip=client_ip(request),
        second_factor=payload.second_factor,
    )
    if result.tokens is not None:
        tokens = result.tokens
        return LoginOut(
            second_factor_required=False,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_type="Bearer",  # noqa: S106  # nosec B106 # OAuth token type
            expires_in=tokens.expires_in,
            session_id=tokens.session_id,
            device_key=tokens.device_key,
        )
    if result.challenge is None:  # login() returns tokens or a challenge, never neither
        raise RuntimeError("login returned neither tokens nor a challenge")
    return LoginOut(
        second_factor_required=True,
        challenge_id=result.challenge.id,
        methods=list(result.methods),  # type: ignore[arg-type]
        expires_in=settings.OTP_TTL_SECONDS,
    )


@router.post(
    "/login/verify",
    response={200: TokenOut, **ERRORS_PUBLIC},
    summary="Finish signing in with the second step (SMS code, TOTP or recovery code)",
)
def verify_login(request: HttpRequest, payload: LoginVerifyIn) -> TokenOut:
    """The second step: the SMS code, an authenticator code or a recovery code."""
    _session, tokens = sign_in.complete_login(
        challenge_id=payload.challenge_id,
        method=payload.method,
        code=payload.code,
        ip=client_ip(request),
    )
    return _token_out(tokens)


@router.post(
    "/token/refresh",
    response={200: TokenOut, 401: ErrorOut, 422: ErrorOut},
    summary="Exchange a refresh token for a new token pair",
)
def refresh_tokens(request: HttpRequest, payload: RefreshIn) -> TokenOut:
    """Spend a refresh token for a new pair. A spent token ends the whole session; a
    session past its maximum age (SESSION_MAX_AGE_DAYS) gets none (`session_expired`)."""
    try:
        tokens = sessions.refresh_tokens(payload.refresh_token)
    except TokenError as exc:
        if exc.reason == "reused":
            raise NotAuthenticated(
                "refresh_token_reused",
                _("This refresh token was already used: the session has been ended."),
            ) from exc
        if exc.reason == "session_expired":
            raise session_expired_error() from exc
        raise NotAuthenticated(
            "invalid_refresh_token", _("This session has ended. Sign in again.")
        ) from exc
    return _token_out(tokens)


@router.post(
    "/reauthenticate",
    auth=bearer,
    response={204: None, **ERRORS_AUTH, 429: ErrorOut},
    summary="Confirm my password again before a sensitive action",
)
def reauthenticate(request: HttpRequest, payload: PasswordIn) -> Status[None]:
    """Confirm the password to allow sensitive actions on this session again."""
    sign_in.reauthenticate(
        session=current_session(request), password=payload.password, ip=client_ip(request)
    )
    return Status(204, None)


# --- Sessions -------------------------------------------------------------------------


@router.post(
    "/logout",
    auth=bearer,
    response={204: None, 401: ErrorOut},
    summary="Sign out this device (end this session)",
)
def logout(request: HttpRequest) -> Status[None]:
    """End this device's session."""
    sessions.logout(session=current_session(request))
    return Status(204, None)


@router.post(
    "/logout-all",
    auth=bearer,
    response={204: None, 401: ErrorOut},
    summary="Sign out every device (end every session)",
)
def logout_everywhere(request: HttpRequest) -> Status[None]:
    """End every session of the account, this one included."""
    sessions.logout_everywhere(user=current_user(request))
    return Status(204, None)


@router.get(
    "/sessions",
    auth=bearer,
    response={200: page_of(SessionOut), **ERRORS_AUTH},
    summary="List my signed-in devices",
)
def list_sessions(request: HttpRequest, params: Query[PageParams]) -> dict[str, object]:
    """The account's signed-in devices, newest first."""
    user = current_user(request)
    session = current_session(request)
    rows, next_cursor = paginate(my_sessions(user), params)
    return {"items": [_session_out(row, session) for row in rows], "next_cursor": next_cursor}


@router.delete(
    "/sessions/{session_id}",
    auth=bearer,
    response={204: None, 404: ErrorOut, 401: ErrorOut},
    summary="Sign out one of my devices",
)
def revoke_session(request: HttpRequest, session_id: uuid.UUID) -> Status[None]:
    """Sign one device out (its tokens stop working at once)."""
    sessions.revoke_own_session(user=current_user(request), session_id=session_id)
    return Status(204, None)


# --- The account ----------------------------------------------------------------------


@router.get("/me", auth=bearer, response={200: MeOut, 401: ErrorOut}, summary="Get my account")
def me(request: HttpRequest) -> MeOut:
    return _me_out(current_user(request))


@router.patch(
    "/me", auth=bearer, response={200: MeOut, **ERRORS_AUTH}, summary="Change my name or language"
)
def update_me(request: HttpRequest, payload: MeIn) -> MeOut:
    user = accounts.update_profile(
        user=current_user(request), full_name=payload.full_name, language=payload.language
    )
    return _me_out(user)


@router.patch(
    "/me/identity",
    auth=bearer,
    response={200: MeOut, 409: ErrorOut, 429: ErrorOut, **ERRORS_AUTH},
    summary="Set my citizen identity number",
)
def set_identity(request: HttpRequest, payload: IdentityIn) -> MeOut:
    """Record the citizen ID (CCCD); support staff verify it in person for level 2.

    The answer is the same whether or not another account holds the number (such a
    conflict is settled by support); a few entries a day are allowed (429 beyond).
    """
    user = accounts.set_identity(
        user=current_user(request),
        citizen_id=payload.citizen_id,
        birth_date=payload.birth_date,
        ip=client_ip(request),
    )
    return _me_out(user)


# --- Passwords ------------------------------------------------------------------------


@router.post(
    "/password/reset",
    response={202: ChallengeOut, **ERRORS_PUBLIC},
    summary="Ask for a password reset code by SMS",
)
def request_password_reset(request: HttpRequest, payload: PasswordResetIn) -> Status[ChallengeOut]:
    """A reset code by SMS. The answer is the same for every number."""
    challenge = accounts.request_password_reset(phone=payload.phone, ip=client_ip(request))
    return Status(202, _challenge_out(challenge))


@router.post(
    "/password/reset/verify",
    response={204: None, **ERRORS_PUBLIC},
    summary="Set a new password with the SMS code",
)
def reset_password(request: HttpRequest, payload: PasswordResetVerifyIn) -> Status[None]:
    """Set a new password with the code; every session of the account ends."""
    accounts.reset_password(
        challenge_id=payload.challenge_id,
        code=payload.code,
        new_password=payload.new_password,
        ip=client_ip(request),
    )
    return Status(204, None)


@router.post(
    "/password/change",
    auth=bearer,
    response={204: None, 429: ErrorOut, **ERRORS_AUTH},
    summary="Change my password",
)
def change_password(request: HttpRequest, payload: PasswordChangeIn) -> Status[None]:
    """Needs a sign-in within 24 hours; other sessions end."""
    require_recent_authentication(request)
    accounts.change_password(
        user=current_user(request),
        session=current_session(request),
        current_password=payload.current_password,
        new_password=payload.new_password,
        ip=client_ip(request),
    )
    return Status(204, None)


# --- TOTP and recovery codes ----------------------------------------------------------


@router.post(
    "/totp/enrol",
    auth=bearer,
    response={200: TotpEnrolOut, 409: ErrorOut, **ERRORS_AUTH},
    summary="Start setting up an authenticator app (TOTP secret and QR URI)",
)
def enrol_totp(request: HttpRequest) -> TotpEnrolOut:
    """A new authenticator secret; it becomes active once confirmed with a code."""
    require_recent_authentication(request)
    secret, uri, qr = second_factor.start_totp_enrolment(user=current_user(request))
    return TotpEnrolOut(secret=secret, otpauth_uri=uri, qr_png_base64=qr)


@router.post(
    "/totp/confirm",
    auth=bearer,
    response={200: RecoveryCodesOut, 409: ErrorOut, 429: ErrorOut, **ERRORS_AUTH},
    summary="Turn on the authenticator app with its first code",
)
def confirm_totp(request: HttpRequest, payload: CodeIn) -> RecoveryCodesOut:
    """The first code from the app turns TOTP on; the answer holds the recovery codes."""
    codes = second_factor.confirm_totp(user=current_user(request), code=payload.code)
    return RecoveryCodesOut(codes=codes)


@router.post(
    "/totp/disable",
    auth=bearer,
    response={204: None, 409: ErrorOut, 429: ErrorOut, **ERRORS_AUTH},
    summary="Turn off the authenticator app",
)
def disable_totp(request: HttpRequest, payload: CodeIn) -> Status[None]:
    """Needs a recent sign-in and a fresh authenticator or recovery code."""
    require_recent_authentication(request)
    second_factor.disable_totp(
        user=current_user(request), session=current_session(request), code=payload.code
    )
    return Status(204, None)


@router.post(
    "/recovery-codes/regenerate",
    auth=bearer,
    response={200: RecoveryCodesOut, 409: ErrorOut, 429: ErrorOut, **ERRORS_AUTH},
    summary="Replace my recovery codes with a new set",
)
def regenerate_recovery_codes(request: HttpRequest, payload: CodeIn) -> RecoveryCodesOut:
    """Needs a recent sign-in and a fresh authenticator or recovery code; the old
    codes stop working."""
    require_recent_authentication(request)
    codes = second_factor.regenerate_recovery_codes(
        user=current_user(request), session=current_session(request), code=payload.code
    )
    return RecoveryCodesOut(codes=codes)


# --- Phone number ---------------------------------------------------------------------


@router.post(
    "/phone/change",
    auth=bearer,
    response={202: ChallengeOut, 429: ErrorOut, 503: ErrorOut, **ERRORS_AUTH},
    summary="Ask to change my phone number (a code goes to the new number)",
)
def request_phone_change(request: HttpRequest, payload: PhoneChangeIn) -> Status[ChallengeOut]:
    """Needs a recent sign-in and the password (or a TOTP code); texts the new number."""
    require_recent_authentication(request)
    challenge = accounts.request_phone_change(
        user=current_user(request),
        session=current_session(request),
        new_phone=payload.new_phone,
        password=payload.password,
        totp_code=payload.totp_code,
        ip=client_ip(request),
    )
    return Status(202, _challenge_out(challenge))


@router.post(
    "/phone/change/verify",
    auth=bearer,
    response={200: MeOut, 409: ErrorOut, 429: ErrorOut, 503: ErrorOut, **ERRORS_AUTH},
    summary="Confirm the new phone number with its SMS code",
)
def confirm_phone_change(request: HttpRequest, payload: PhoneChangeVerifyIn) -> MeOut:
    """The code from the new number; the old number gets a notice, other sessions end."""
    require_recent_authentication(request)
    user = accounts.confirm_phone_change(
        user=current_user(request),
        session=current_session(request),
        challenge_id=payload.challenge_id,
        code=payload.code,
    )
    return _me_out(user)
