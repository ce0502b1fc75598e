"""Who holds a phone number: the lock that serialises every claim on one number.

Used inside the caller's transaction by sign-up (auth/actions/accounts.py).
"""

from __future__ import annotations

from django.db import connection


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
