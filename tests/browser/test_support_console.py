"""The support console in a real browser: two staff members reset a level-2 account.

Chromium (Debian's package) drives the Django admin served by a live server:
staff member A signs in with password + TOTP, finds the citizen by phone, opens
a reset with evidence and a ticket number, signs out; staff member B signs in
with TOTP and approves it. Then the audit trail (admin page and database rows)
and the citizen's sessions are checked, and screenshots are kept in
test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyotp
import pytest

from auth.models import DeviceSession, SupportAuditRecord, SupportReset, User
from tests.accounts.conftest import PASSWORD
from tests.accounts.staff import enable_real_totp, make_citizen, make_staff
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CITIZEN_PHONE = "+84912345678"
EVIDENCE = "CCCD 0790•••••123 đối chiếu trực tiếp tại quầy, ảnh chân dung khớp"
TICKET = "HT-2026-0815"


def sign_in_admin(
    page: Any, base: str, phone: str, secret: str, screenshot: Path | None = None
) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "0" + phone[3:])  # typed the way staff write numbers
    page.fill("#id_password", PASSWORD)
    page.fill("#id_totp_code", pyotp.TOTP(secret).now())
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def sign_out_admin(page: Any, base: str) -> None:
    page.click("#logout-form button[type=submit]")
    page.wait_for_url(f"{base}/admin/logout/")


def test_two_staff_members_reset_a_level2_account_in_the_admin(
    live_server: Any,
    open_browser: Callable[[], AbstractContextManager[Any]],
    artifacts_dir: Path,
) -> None:
    # Everything the database needs is prepared before the browser opens.
    opener = make_staff(totp=False, full_name="Nguyễn Văn An")
    approver = make_staff(totp=False, full_name="Trần Thị Bình")
    opener_secret, approver_secret = enable_real_totp(opener), enable_real_totp(approver)
    citizen = make_citizen(level=User.Level.IDENTITY, phone=CITIZEN_PHONE)
    sign_in(citizen)
    sign_in(citizen)
    base = live_server.url
    login_png = artifacts_dir / "admin-login-totp.png"
    approved_png = artifacts_dir / "support-reset-approved.png"
    audit_png = artifacts_dir / "support-audit-trail.png"
    for old in (login_png, approved_png, audit_png):
        old.unlink(missing_ok=True)

    with open_browser() as page:
        # A: sign in with password + TOTP, find the citizen by phone.
        sign_in_admin(page, base, opener.phone, opener_secret, screenshot=login_png)
        page.locator("a[href='/admin/accounts/user/']").first.click()
        page.click("#support-lookup-link")
        page.fill("#id_phone", "0912345678")
        page.click("input[name=lookup]")
        account = page.locator("#content-main table").first.inner_text()
        assert "+8491•••5678" in account
        assert CITIZEN_PHONE not in page.content()
        # A: open the reset with evidence and a ticket number.
        page.click("a[href$='/support-reset/']")
        page.select_option("#id_kind", "lost_authenticator")
        page.fill("#id_reason", "Mất điện thoại có ứng dụng xác thực")
        page.fill("#id_evidence", EVIDENCE)
        page.fill("#id_ticket_number", TICKET)
        page.click("input[name=open]")
        page.wait_for_url(re.compile(r".*/admin/accounts/supportreset/[0-9a-f-]+/change/$"))
        assert page.locator(".messagelist").inner_text().strip() == (
            "Đã mở yêu cầu đặt lại: cần một cán bộ thứ hai phê duyệt."
        )
        # A cannot approve it: the decision page refuses A's own reset.
        page.click("a[href$='/decide/']")
        page.click("input[name=approve]")
        assert "self_approval" in page.locator("#content-main").inner_text()
        page.goto(f"{base}/admin/")
        sign_out_admin(page, base)

        # B: sign in with TOTP, find the pending reset and approve it.
        sign_in_admin(page, base, approver.phone, approver_secret)
        page.locator("a[href='/admin/accounts/supportreset/']").first.click()
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1
        rows.first.locator("a").first.click()
        page.click("a[href$='/decide/']")
        decision = page.locator("#content-main").inner_text()
        assert EVIDENCE in decision
        assert TICKET in decision
        page.click("input[name=approve]")
        page.wait_for_url(re.compile(r".*/admin/accounts/supportreset/[0-9a-f-]+/change/$"))
        assert page.locator(".messagelist").inner_text().strip() == (
            "Đã phê duyệt: tài khoản đã được đặt lại."
        )
        page.screenshot(path=str(approved_png), full_page=True)

        # B: the audit trail in the admin shows every step.
        page.goto(f"{base}/admin/accounts/supportauditrecord/")
        audit_rows = page.locator("#result_list tbody tr")
        audit_texts = [audit_rows.nth(i).inner_text() for i in range(audit_rows.count())]
        page.screenshot(path=str(audit_png), full_page=True)

    # The admin list, newest first, with the Vietnamese labels and both staff members:
    # the form that opens the reset, and each opening of the reset (its page, its
    # decision page) is a look-up of its citizen,
    # B's last its page shown again once approved.
    expected_rows = [
        ("Tra cứu tài khoản", "Trần Thị Bình"),
        ("Thực hiện đặt lại tài khoản", "Trần Thị Bình"),
        ("Phê duyệt yêu cầu đặt lại", "Trần Thị Bình"),
        *[("Tra cứu tài khoản", "Trần Thị Bình")] * 2,
        *[("Tra cứu tài khoản", "Nguyễn Văn An")] * 2,
        ("Mở yêu cầu đặt lại", "Nguyễn Văn An"),
        *[("Tra cứu tài khoản", "Nguyễn Văn An")] * 2,
    ]
    assert len(audit_texts) == len(expected_rows)
    for text, (label, actor) in zip(audit_texts, expected_rows, strict=True):
        assert label in text, text
        assert actor in text, text
    records = list(
        SupportAuditRecord.objects.order_by("id").values_list(
            "action", "actor_id", "subject_id", "approver_id", "channel", "evidence"
        )
    )
    assert records == [
        # The look-up by phone, then the page that opens a reset for the account.
        *[("lookup", opener.id, citizen.id, None, "admin", "")] * 2,
        ("reset_opened", opener.id, citizen.id, None, "admin", EVIDENCE),
        *[("lookup", opener.id, citizen.id, None, "admin", "")] * 2,
        *[("lookup", approver.id, citizen.id, None, "admin", "")] * 2,
        ("reset_approved", approver.id, citizen.id, approver.id, "admin", EVIDENCE),
        ("reset_applied", approver.id, citizen.id, approver.id, "admin", EVIDENCE),
        ("lookup", approver.id, citizen.id, None, "admin", ""),
    ]
    reset = SupportReset.objects.get()
    assert (reset.status, reset.opened_by_id, reset.approved_by_id, reset.ticket_number) == (
        "applied",
        opener.id,
        approver.id,
        TICKET,
    )
    assert DeviceSession.objects.filter(user=citizen, revoked_at=None).count() == 0
    assert set(
        DeviceSession.objects.filter(user=citizen).values_list("revoked_reason", flat=True)
    ) == {"support_reset"}
    citizen.refresh_from_db()
    assert (citizen.has_totp, citizen.must_reset_password) == (False, True)
    for png in (login_png, approved_png, audit_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
