"""SMS notices to an account's owner when its security changes.

Each is queued by the action that makes the change, inside its transaction: a change
that rolls back sends nothing, a committed one never loses its notice (the job is
retried, auth/tasks.py). In the account's language (its owner reads it, whoever
made the request), with no code or secret in it, and it says to contact support
when it was not them.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from auth.actions.challenges import SMS_NOTICE_TASK
from auth.models import User
from auth.sms import SmsTemplate
from backend.jobs import defer

NOTICE_TOTP_ENABLED = SmsTemplate(
    _(
        "An authenticator app was turned on for your Public Services account. If this was "
        "not you, contact support now."
    )
)
NOTICE_TOTP_DISABLED = SmsTemplate(
    _(
        "The authenticator app of your Public Services account was turned off. If this was "
        "not you, contact support now."
    )
)
NOTICE_RECOVERY_CODES_REGENERATED = SmsTemplate(
    _(
        "New recovery codes were made for your Public Services account; the old ones no "
        "longer work. If this was not you, contact support now."
    )
)
NOTICE_PASSWORD_CHANGED = SmsTemplate(
    _(
        "The password of your Public Services account was changed. If this was not you, "
        "contact support now."
    )
)
NOTICE_PASSWORD_RESET = SmsTemplate(
    _(
        "The password of your Public Services account was reset with a code sent to this "
        "number. If this was not you, contact support now."
    )
)


def notify_owner(
    user: User, notice: SmsTemplate, *, purpose: str, to: str = "", **values: object
) -> None:
    """Queue `notice` to `user`'s number (or `to`, a number it had), in the account's
    language, inside the caller's transaction."""
    with translation.override(user.language):
        text = notice.format(**values)
    defer(SMS_NOTICE_TASK, to=to or user.phone, text=text, purpose=purpose)
