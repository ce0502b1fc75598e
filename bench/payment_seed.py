"""Payments waiting for their callback, for the payment callbacks benchmark.

    python -m bench.payment_seed COUNT

Runs with the bench environment, outside the API server. Each payment goes
through the real actions: a dossier in processing, the agency's payment request
(lifecycle.request_payment), the citizen's checkout (payments.actions.checkout,
VNPay adapter with the bench's demo merchant). Prints one JSON line: a list of
{"order_ref", "amount", "dossier_id"}.
"""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    django.setup()

    from dossiers import lifecycle
    from dossiers.models import Dossier, Procedure
    from payments import actions
    from tests.factories import make_dossier, make_procedure, make_user

    count = int(sys.argv[1])
    # The bench seed's procedure (a new process restarts the factories' counters).
    procedure = Procedure.objects.order_by("pk").first() or make_procedure(documents=0)
    context = actions.CheckoutContext(
        client_ip="127.0.0.1",
        language="vi",
        return_url="http://127.0.0.1/api/v1/payments/gateways/{gateway}/return",
        callback_url="http://127.0.0.1/api/v1/payments/gateways/{gateway}/callback",
    )
    agency = lifecycle.Actor.agency_system("BENCH (bench)")
    # One citizen with many dossiers: hashing a password per payment would only slow seeding.
    user = make_user(password="bench-Passw0rd!2026")  # noqa: S106 # nosec B106 - throwaway
    out = []
    first = Dossier.objects.count()
    for number in range(first, first + count):
        dossier = make_dossier(
            user, procedure, status=Dossier.Status.PROCESSING, code=f"BENCHPAY-{number:06d}"
        )
        dossier = lifecycle.request_payment(
            dossier.pk, agency, amount=150_000, description="Lệ phí"
        )
        payment, _created = actions.checkout(user, dossier, context, gateway="vnpay")
        out.append(
            {
                "order_ref": payment.order_ref,
                "amount": payment.amount,
                "dossier_id": str(dossier.pk),
            }
        )
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
