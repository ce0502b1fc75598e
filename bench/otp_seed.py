"""Pending sign-ups for the OTP benchmark: `python -m bench.otp_seed FIRST COUNT`.

Runs with the bench environment, outside the API server, so that neither the
timed requests nor the server's profile include the sign-up's password hash.
Each sign-up goes through the real `accounts.register` action (the first code
is texted to the file outbox like any other, by this process's own job queue:
the embedded one, so that the benchmark's worker, which texts through the fake
gateway, never sees these codes); only the password hasher is a fast one, since
these bench passwords are never checked. Prints one JSON line: a list of
{"phone", "challenge_id"}.
"""

from __future__ import annotations

import json
import sys
import time

import django


def main() -> None:
    django.setup()

    from django.test import override_settings

    from auth.actions import accounts
    from backend import embedded_queue

    first, count = int(sys.argv[1]), int(sys.argv[2])
    pending = []
    with override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], JOBS_INLINE=True
    ):
        embedded_queue.start()
        for number in range(first, first + count):
            phone = f"+8491{number:07d}"
            challenge = accounts.register(
                phone=phone,
                full_name="Trần Thị Bench",
                password="bench-Passw0rd!2026",  # noqa: S106 # nosec B106 - throwaway bench account
                ip="127.0.0.1",
            )
            pending.append({"phone": phone, "challenge_id": str(challenge.id)})
        while not embedded_queue.idle():  # every first code texted to the outbox
            time.sleep(0.05)
        embedded_queue.stop()
    sys.stdout.write(json.dumps(pending) + "\n")


if __name__ == "__main__":
    main()
