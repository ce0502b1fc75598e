"""Driving a national sign-in the way the app and the system browser do."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.accounts.conftest import device
from tests.conftest import ApiClient, ApiResponse

START = "/api/v1/auth/national/start"
CALLBACK = "/api/v1/auth/national/callback"
LINK_VERIFY = "/api/v1/auth/national/link/verify"


def browse(authorization_url: str) -> dict[str, str]:
    """The system browser: the provider signs the person in and redirects to the app link."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def start(api: ApiClient, path: str = START, **body: Any) -> ApiResponse:
    return api.post(path, {**device(), **body})


def national_callback(
    api: ApiClient, *, min_level: int = 1, start_path: str = START, callback_path: str = CALLBACK
) -> ApiResponse:
    """Start, browse, come back: the callback's answer."""
    started = start(api, start_path, min_level=min_level)
    assert started.status_code == 200, started
    back = browse(started.json()["authorization_url"])
    return api.post(callback_path, {"state": back["state"], "code": back["code"]})
