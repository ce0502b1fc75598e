"""The admin in a real browser shows a citizen's linked national identity and its level.

The citizen links VNeID through the real national sign-in against the fake
identity provider (before the browser opens); a support staff member (superuser,
password + TOTP) then opens the account in the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from auth.models import User
from fakes.identity_provider import FakeIdentityProvider, default_person
from tests.accounts.national import national_callback
from tests.accounts.staff import enable_real_totp, make_staff
from tests.browser.test_support_console import sign_in_admin
from tests.conftest import ApiClient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_admin_shows_the_linked_national_identity_and_its_level(
    live_server: Any,
    open_browser: Callable[[], AbstractContextManager[Any]],
    artifacts_dir: Path,
    idp: FakeIdentityProvider,
) -> None:
    assert national_callback(ApiClient()).status_code == 200
    citizen = User.objects.get(phone=default_person()["phone_number"])
    staff = make_staff(totp=False, full_name="Nguyễn Văn An", is_superuser=True)
    secret = enable_real_totp(staff)
    screenshot = artifacts_dir / "admin-national-identity.png"
    screenshot.unlink(missing_ok=True)
    base = live_server.url

    with open_browser() as page:
        sign_in_admin(page, base, staff.phone, secret)
        page.goto(f"{base}/admin/accounts/user/")
        listing = page.locator("#result_list").inner_text()
        page.goto(f"{base}/admin/accounts/user/{citizen.pk}/change/")
        identity = page.locator(".field-national_identity_display").inner_text()
        page.screenshot(path=str(screenshot), full_page=True)

    assert "Mức 2" in listing
    assert "Đã liên kết, mức 2" in identity
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
