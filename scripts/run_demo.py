"""`make run`: the demo's outer-boundary fakes on loopback, then the web server.

With nothing configured a newcomer gets the whole journey: the fakes the demo
needs (`DEMO_FAKES`: the carrier, the payment gateway, the identity provider and
the business registry) run as threads of this process on free loopback ports,
the backend's settings point at them, the carrier webhook secret
has a demo value, and the server is started with uvicorn (the Procfile's `web`,
on HOST:PORT). A fake whose setting is already in the environment is not started:
the backend then talks to what that setting names.

It prints the demo logins (citizen, staff, the agency credential: key id and
secret), the carrier webhook secret, the URLs and the port.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Demo value only: `make run` sets it when POSTAL_VNPOST_WEBHOOK_SECRET is unset, so
# a newcomer can sign carrier webhooks (mobile_api_docs/first-journey.md shows how).
DEMO_WEBHOOK_SECRET = "demo-carrier-webhook-secret"  # noqa: S105 # nosec B105 (demo only)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class DemoFake:
    """One outer-boundary fake of the demo: where it lives and the settings it needs."""

    module: str  # fakes.<provider>
    cls: str  # its FakeServer subclass
    env: Callable[[Any], dict[str, str]]  # the backend settings for the running fake
    skip_if: str  # not started when this setting is already in the environment
    # Constructor keywords, given the backend's base URL (a fake that calls us back).
    options: Callable[[str], dict[str, Any]] = lambda _backend: {}


DEMO_FAKES = [
    DemoFake(
        "fakes.carrier",
        "FakeCarrier",
        lambda fake: {
            "POSTAL_VNPOST_BASE_URL": fake.base_url,
            "POSTAL_VNPOST_API_KEY": fake.api_key,
            "POSTAL_VNPOST_WEBHOOK_SECRET": os.environ.get(
                "POSTAL_VNPOST_WEBHOOK_SECRET", DEMO_WEBHOOK_SECRET
            ),
        },
        skip_if="POSTAL_VNPOST_BASE_URL",
    ),
    # VNPay's and the national platform's wire formats; its IPN calls this server.
    DemoFake(
        "fakes.payment_gateway",
        "FakePaymentGateway",
        lambda fake: {"PAYMENT_FAKE_GATEWAY_URL": fake.url},
        skip_if="PAYMENT_FAKE_GATEWAY_URL",
        options=lambda backend: {
            "vnpay_ipn_url": f"{backend}/api/v1/payments/gateways/vnpay/callback"
        },
    ),
    # National sign-in (VNeID over OpenID Connect); the client id and secret default to
    # the fake's.
    DemoFake(
        "fakes.identity_provider",
        "FakeIdentityProvider",
        lambda fake: {"NATIONAL_ID_ISSUER": fake.issuer},
        skip_if="NATIONAL_ID_ISSUER",
    ),
    DemoFake(
        "fakes.business_registry",
        "FakeBusinessRegistry",
        lambda fake: {
            "BUSINESS_REGISTRY_URL": fake.base_url,
            "BUSINESS_REGISTRY_API_KEY": fake.api_key,
        },
        skip_if="BUSINESS_REGISTRY_URL",
    ),
]


def start_fakes(host: str, backend: str) -> list[Any]:
    """Start each fake not configured away; put its settings into os.environ."""
    import importlib

    running = []
    for spec in DEMO_FAKES:
        if os.environ.get(spec.skip_if):
            say(f"  {spec.module}: not started ({spec.skip_if} is set)")
            continue
        fake_class = getattr(importlib.import_module(spec.module), spec.cls)
        fake = fake_class(host, 0, **spec.options(backend)).start()
        running.append(fake)
        settings = spec.env(fake)
        os.environ.update(settings)
        say(f"  {spec.module} on {fake.base_url}")
    return running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    say("Demo fakes (outer boundary, loopback):")
    start_fakes("127.0.0.1", f"http://{args.host}:{args.port}")
    os.environ.setdefault("POSTAL_VNPOST_WEBHOOK_SECRET", DEMO_WEBHOOK_SECRET)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    base = f"http://{args.host}:{args.port}"
    say("")
    say(f"  API docs:  {base}/api/v1/docs")
    say(f"  Admin:     {base}/admin/")
    say("  First journey: mobile_api_docs/first-journey.md")
    sys.stdout.flush()
    call_command("load_demo", print_logins=True)
    say(f"  Carrier webhook secret: {settings.POSTAL_WEBHOOK_SECRETS['vnpost']}")
    say(f"  Port: {args.port} (PORT=... make run to change it)")
    say(f"Starting the server on {base}")

    import uvicorn

    uvicorn.run(
        "backend.asgi:application",
        host=args.host,
        port=args.port,
        lifespan="off",
        log_config=None,  # the project's JSON logging (settings.LOGGING)
        ws_max_size=settings.WS_MAX_INBOUND_BYTES,  # as the Procfile's web command
    )


if __name__ == "__main__":
    main()
