"""Adapter of the national business registry (Cơ sở dữ liệu quốc gia về đăng ký doanh
nghiệp), reached through the government data-sharing platform.

One call: the enterprise registered under a tax code (MST), its status and its
legal representative(s). Wire format (JSON over HTTPS, `X-API-Key` header):

    GET {BUSINESS_REGISTRY_URL}/enterprises/{tax_code}
    200 {"enterprise_code": "0100233583", "name": "...", "address": "...",
         "status": "active" | "suspended" | "dissolved",
         "legal_representatives": [{"full_name": "...", "citizen_id": "...", "title": "..."}]}
    404 {"error": "not_found"}

The fake (fakes/business_registry.py) speaks the same format. Citizen ID numbers
of representatives are personal numbers: never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from django.conf import settings


class RegistryError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class RegistryUnavailable(RegistryError):
    def __init__(self) -> None:
        super().__init__("unavailable")


@dataclass(frozen=True)
class Representative:
    full_name: str
    citizen_id: str
    title: str = ""


@dataclass(frozen=True)
class Enterprise:
    tax_code: str
    name: str
    address: str
    status: str
    representatives: tuple[Representative, ...]

    @property
    def active(self) -> bool:
        return self.status == "active"


def enabled() -> bool:
    return bool(settings.BUSINESS_REGISTRY_URL)


def look_up(tax_code: str) -> Enterprise | None:
    """The enterprise registered under `tax_code`, or None when there is none."""
    try:
        response = requests.get(
            f"{settings.BUSINESS_REGISTRY_URL}/enterprises/{tax_code}",
            headers={"X-API-Key": settings.BUSINESS_REGISTRY_API_KEY},
            timeout=settings.BUSINESS_REGISTRY_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise RegistryUnavailable() from exc
    if response.status_code == 404:
        return None
    if response.status_code >= 500 or response.status_code == 429:
        raise RegistryUnavailable()
    if response.status_code != 200:
        raise RegistryError(f"http_{response.status_code}")
    try:
        body = response.json()
        return Enterprise(
            tax_code=str(body["enterprise_code"]),
            name=str(body["name"]),
            address=str(body.get("address") or ""),
            status=str(body["status"]),
            representatives=tuple(
                Representative(
                    full_name=str(item["full_name"]),
                    citizen_id=str(item["citizen_id"]),
                    title=str(item.get("title") or ""),
                )
                for item in body.get("legal_representatives") or []
            ),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError("malformed_answer") from exc
