"""Who holds a phone number: the lock that serialises every claim on one number, and
taking a number back from a sign-up that never proved it.

Used inside the caller's transaction by sign-up (auth/actions/accounts.py), a phone
change, a support reset to a new number (auth/actions/support.py) and a first
sign-in with a national identity (auth/actions/national_sign_in.py).
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import ProtectedError, RestrictedError

from auth.models import User
from auth.phone import mask_phone

logger = logging.getLogger(__name__)


def lock_phone_number(phone: str) -> None:
    """Hold `phone` until the transaction ends.

    `select_for_update` on a number no account has yet locks nothing, so two
    sign-ups of one new number would both insert (and the second fail on the unique
    number). A transaction-scoped advisory lock on the number makes the second wait
    for the first to commit, then read its row. The embedded SQLite default needs
    none: its transactions take the database's write lock at BEGIN (IMMEDIATE).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('auth.phone'), hashtext(%s))", [phone]
        )


def released_phone(user: User) -> str:
    """A number no one can dial, sign in with or register: unique per account (the
    column is unique) and within its 16 characters; E.164 never starts with '#'."""
    return f"#{user.pk.hex[:15]}"


def free_phone_number(phone: str, *, keep: User | None = None) -> None:
    """Take `phone` from every account (other than `keep`) that never verified it.

    A sign-up that never completed does not own its number: it is deleted. One that
    support staff looked up stays, because the audit trail of that look-up is
    append-only and protects its subject; it is deactivated instead, its password
    made unusable and its number replaced by a `released_phone`, so that it still
    names the account the audit rows are about but holds the number no longer.
    """
    lock_phone_number(phone)
    unproven = User.objects.select_for_update().filter(phone=phone, phone_verified_at=None)
    if keep is not None:
        unproven = unproven.exclude(pk=keep.pk)
    for account in unproven:
        try:
            with transaction.atomic():
                account.delete()
            continue
        except (ProtectedError, RestrictedError):
            pass
        account.phone = released_phone(account)
        account.is_active = False
        account.set_unusable_password()
        account.save(update_fields=["phone", "is_active", "password"])
        logger.info(
            "unverified account %s kept for its audit trail; number %s released",
            account.pk,
            mask_phone(phone),
        )
