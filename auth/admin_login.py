"""Signing in to the Django admin: password, then the authenticator code.

The admin login uses the same checks as the app's sign-in: the password goes
through `check_password_with_limits`, with counters of its own (`ADMIN_LOGIN`:
wrong passwords in the app never lock anyone out of the admin, nor the reverse);
when a number is under attack from everywhere, only the password with the
authenticator code passes. And a staff member who has TOTP enabled must also
enter the current authenticator code, checked by `verify_factor` (one step of
clock drift either side, a spent step is refused, wrong codes count towards the
same lockout as in the app). Staff without TOTP can sign in with the password,
but the support pages refuse them until they turn TOTP on, and refuse a session
that was not opened with the authenticator code (signed in before turning TOTP
on) or was opened too long ago: `admin_sign_in` gives the factor and time the
admin session was opened with, judged by `auth.access.require_support_sign_in`,
the same rule as the support API's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.actions.second_factor import verify_factor
from auth.actions.sign_in import ADMIN_LOGIN, check_password_with_limits
from auth.models import User
from auth.phone import parse_phone
from backend.errors import ApiError
from backend.middleware import client_ip

LOGIN_TEMPLATE = "admin/accounts/login.html"
# Set on the admin session when its sign-in checked an authenticator code:
# {"user": <id>, "factor": "totp", "at": <ISO time>}.
SECOND_FACTOR_SESSION_KEY = "accounts.admin_second_factor"


class StaffLoginForm(AdminAuthenticationForm):
    """Phone number, password and (when the account has TOTP) the authenticator code."""

    totp_code = forms.CharField(
        label=_("Authenticator code"),
        max_length=6,
        required=False,
        help_text=_("The 6-digit code from your authenticator app, if you have set one up."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]*"}
        ),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "totp_required": _("Enter the 6-digit code from your authenticator app."),
        "password_reset_required": _(
            "Your password must be reset before you can sign in. Use Forgot password."
        ),
        "number_locked": _(
            "Too many failed sign-ins on this number. Sign in with your password and "
            "authenticator code, or try again later."
        ),
    }

    def clean(self) -> dict[str, Any]:
        phone_raw = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not phone_raw or not password:
            return self.cleaned_data
        phone = parse_phone(phone_raw)
        if phone is None:
            raise self.get_invalid_login_error()
        ip = client_ip(self.request) if self.request is not None else ""
        try:
            check = check_password_with_limits(phone, password, ip, counters=ADMIN_LOGIN)
        except ApiError as exc:  # locked out, or the counters' store is down
            raise ValidationError(str(exc.message), code=exc.code) from exc
        user = check.user
        if check.number_locked:
            # Too many wrong passwords on this number from everywhere: only the right
            # password with the right authenticator code passes, and every other
            # case gets the same answer (it does not confirm the password).
            user = self._password_and_code(user)
        if user is None:
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(user)
        if user.must_reset_password:
            raise ValidationError(
                self.error_messages["password_reset_required"], code="password_reset_required"
            )
        if user.has_totp and not check.number_locked:
            code = (self.cleaned_data.get("totp_code") or "").strip()
            if not code:
                raise ValidationError(self.error_messages["totp_required"], code="totp_required")
            try:
                # No per-code budget (there is no challenge): the account lockout applies.
                verify_factor(user, "totp", code, code_key="")
            except ApiError as exc:
                raise ValidationError(str(exc.message), code=exc.code) from exc
        if user.has_totp and self.request is not None:  # read by StaffAdminSite.login
            self.request._admin_second_factor_user = str(user.pk)  # type: ignore[attr-defined]
        self.user_cache = user
        return self.cleaned_data

    def _password_and_code(self, user: User | None) -> User:
        refusal = ValidationError(self.error_messages["number_locked"], code="login_locked")
        code = (self.cleaned_data.get("totp_code") or "").strip()
        if user is None or not user.has_totp or not code:
            raise refusal
        try:
            verify_factor(user, "totp", code, code_key="")
        except ApiError as exc:
            raise refusal from exc
        return user


class StaffAdminSite(admin.AdminSite):
    """The default admin site (see auth.apps.StaffAdminConfig) with the staff sign-in."""

    login_form = StaffLoginForm
    login_template = LOGIN_TEMPLATE

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().login(request, extra_context)
        verified = getattr(request, "_admin_second_factor_user", None)
        if verified is not None and str(getattr(request.user, "pk", "")) == verified:
            # After auth.login (which may have flushed the session): mark this session.
            request.session[SECOND_FACTOR_SESSION_KEY] = second_factor_mark(verified, "totp")
        return response


def second_factor_mark(user_id: str, factor: str) -> dict[str, str]:
    """What the admin session keeps about the second factor of its sign-in."""
    return {"user": user_id, "factor": factor, "at": timezone.now().isoformat()}


def admin_sign_in(request: HttpRequest) -> tuple[str, dt.datetime | None]:
    """The second factor this admin session was opened with and when ("", None if none)."""
    user_id = str(getattr(request.user, "pk", ""))
    mark = request.session.get(SECOND_FACTOR_SESSION_KEY)
    if not user_id or not isinstance(mark, dict) or mark.get("user") != user_id:
        return "", None
    try:
        at = dt.datetime.fromisoformat(str(mark.get("at")))
    except ValueError:
        return "", None
    return str(mark.get("factor", "")), at
