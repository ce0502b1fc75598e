"""Authentication for API routes: `auth=bearer` on a router or an operation."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja.security import HttpBearer

from auth.models import DeviceSession, User
from auth.tokens import TokenError, authenticate_access_token, recently_authenticated
from backend.errors import NotAuthenticated


class SessionBearer(HttpBearer):
    """`Authorization: Bearer <access token>`; sets request.auth (the user) and
    request.device_session."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        proved = getattr(request, "_bearer_proved", None)
        if proved is not None and proved[0] == token:
            # Already checked in this request (the idempotency guard authenticates
            # before the route runs): one session read per request.
            return proved[1]
        try:
            session = authenticate_access_token(token)
        except TokenError as exc:
            if exc.reason == "expired":
                raise NotAuthenticated(
                    "token_expired", _("Your session token expired. Refresh it.")
                ) from exc
            if exc.reason == "session_expired":
                raise session_expired_error() from exc
            return None
        request.device_session = session  # type: ignore[attr-defined]
        request._bearer_proved = (token, session.user)  # type: ignore[attr-defined]
        return session.user


bearer = SessionBearer()


def session_expired_error() -> NotAuthenticated:
    """The session reached SESSION_MAX_AGE_DAYS: its tokens no longer work (access or
    refresh), the password signs the device in again (no revocation, so no second step)."""
    return NotAuthenticated(
        "session_expired",
        _("This sign-in has reached its time limit. Sign in again with your password."),
    )


def current_session(request: HttpRequest) -> DeviceSession:
    session: DeviceSession = request.device_session  # type: ignore[attr-defined]
    return session


def current_user(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


def require_recent_authentication(request: HttpRequest) -> None:
    """Sensitive actions need a sign-in (or re-authentication) within 24 hours."""
    if not recently_authenticated(current_session(request)):
        raise NotAuthenticated(
            "reauth_required", _("Confirm it is you: sign in again to continue.")
        )
