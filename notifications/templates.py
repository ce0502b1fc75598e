"""Titles and bodies of notifications, per event type, in Vietnamese and English.

These are data texts (like procedure names), kept here in both languages rather
than in the gettext catalogue: one template per event type, chosen by the
recipient's language (`User.language`), not by the request that caused it.

Every `EventType` has a decision here: a template in `TEMPLATES`, or an explicit
"no push" in `NOT_NOTIFIED` (tests/notifications/test_texts_and_payload.py fails
on a type with neither, or with both).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from dossiers.events import EventType
from notifications.models import Category

BUSINESS_ZONE = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")
REASON_MAX_CHARS = 300


@dataclass(frozen=True)
class Template:
    category: str
    urgent: bool
    vi: tuple[str, str]  # title, body
    en: tuple[str, str]
    sms_vi: str = ""
    sms_en: str = ""


S = Category.STATUS_CHANGES
R = Category.ACTION_REQUESTS
D = Category.DELIVERY_UPDATES

TEMPLATES: dict[str, Template] = {
    EventType.DOSSIER_SUBMITTED: Template(
        S,
        False,
        ("Đã nộp hồ sơ", "Hồ sơ {code} ({procedure}) đã được gửi đến {agency}."),
        ("Dossier submitted", "Dossier {code} ({procedure}) was sent to {agency}."),
    ),
    EventType.DOSSIER_WITHDRAWN: Template(
        S,
        False,
        ("Đã rút hồ sơ", "Hồ sơ {code} đã được rút theo yêu cầu."),
        ("Dossier withdrawn", "Dossier {code} was withdrawn as requested."),
    ),
    EventType.DOSSIER_SUPPLEMENT_SUBMITTED: Template(
        S,
        False,
        ("Đã gửi giấy tờ bổ sung", "Giấy tờ bổ sung của hồ sơ {code} đã được gửi đến {agency}."),
        ("Supplement sent", "The additional papers of dossier {code} were sent to {agency}."),
    ),
    EventType.DOSSIER_RATED: Template(
        S,
        False,
        ("Đã gửi đánh giá", "Đánh giá mức độ hài lòng với hồ sơ {code} đã được gửi."),
        ("Rating sent", "The satisfaction rating of dossier {code} was sent."),
    ),
    EventType.DOSSIER_ACCEPTED: Template(
        S,
        False,
        (
            "Hồ sơ đã được tiếp nhận",
            "Hồ sơ {code} đã được {agency} tiếp nhận. Ngày hẹn trả kết quả: {appointment}.",
        ),
        (
            "Dossier accepted",
            "Dossier {code} was accepted by {agency}. Result expected on {appointment}.",
        ),
    ),
    EventType.DOSSIER_REFUSED: Template(
        S,
        False,
        ("Hồ sơ không được tiếp nhận", "Hồ sơ {code} không được tiếp nhận.{reason}"),
        ("Dossier refused", "Dossier {code} was not accepted.{reason}"),
    ),
    EventType.DOSSIER_PROCESSING_STARTED: Template(
        S,
        False,
        ("Hồ sơ đang được xử lý", "{agency} đang xử lý hồ sơ {code}."),
        ("Dossier in progress", "{agency} is processing dossier {code}."),
    ),
    EventType.DOSSIER_SUPPLEMENT_REQUESTED: Template(
        R,
        True,
        (
            "Cần bổ sung giấy tờ",
            "Hồ sơ {code} cần bổ sung giấy tờ. Mở ứng dụng để xem và gửi bổ sung.{reason}",
        ),
        (
            "Additional papers needed",
            "Dossier {code} needs additional papers. Open the app to see and send them.{reason}",
        ),
        "DVC: Ho so {code} can bo sung giay to. Mo ung dung Dich vu cong de xem chi tiet.",
        "DVC: Dossier {code} needs additional papers. Open the public services app.",
    ),
    EventType.DOSSIER_PAYMENT_REQUESTED: Template(
        R,
        True,
        (
            "Cần nộp phí, lệ phí",
            "Hồ sơ {code}: vui lòng thực hiện nghĩa vụ tài chính{amount}.",
        ),
        ("Payment needed", "Dossier {code}: please pay the fees{amount}."),
        "DVC: Ho so {code} can nop phi, le phi. Mo ung dung Dich vu cong de thanh toan.",
        "DVC: Dossier {code} has fees to pay. Open the public services app to pay.",
    ),
    EventType.DOSSIER_PAYMENT_RECEIVED: Template(
        S,
        False,
        (
            "Đã thanh toán phí, lệ phí",
            "Hồ sơ {code}: đã nhận thanh toán{amount}. Hồ sơ tiếp tục được xử lý.",
        ),
        ("Payment received", "Dossier {code}: payment received{amount}. Processing continues."),
    ),
    EventType.DOSSIER_COMPLETED: Template(
        S,
        True,
        ("Đã có kết quả", "Hồ sơ {code} ({procedure}) đã xử lý xong. Kết quả đã sẵn sàng."),
        ("Result ready", "Dossier {code} ({procedure}) is done. The result is ready."),
        "DVC: Ho so {code} da co ket qua. Mo ung dung Dich vu cong de xem.",
        "DVC: The result of dossier {code} is ready. Open the public services app.",
    ),
    EventType.DOSSIER_RESULT_REVOKED: Template(
        S,
        True,
        ("Kết quả bị thu hồi", "Cơ quan đã thu hồi kết quả điện tử của hồ sơ {code}.{reason}"),
        ("Result revoked", "The agency revoked the electronic result of dossier {code}.{reason}"),
        "DVC: Ket qua dien tu cua ho so {code} da bi thu hoi. Mo ung dung de xem.",
        "DVC: The electronic result of dossier {code} was revoked. Open the app.",
    ),
    # A draft has no code yet: the procedure names the dossier.
    EventType.DOSSIER_PAPER_REVOKED: Template(
        R,
        False,
        (
            "Giấy tờ đã bị thu hồi",
            "Một giấy tờ trong hồ sơ {procedure} là kết quả đã bị cơ quan cấp thu hồi. "
            "Mở ứng dụng để thay bằng giấy tờ khác.",
        ),
        (
            "A paper was revoked",
            "A paper of the {procedure} dossier is a result its issuing agency revoked. "
            "Open the app to replace it.",
        ),
    ),
    EventType.DOSSIER_HANDED_OVER: Template(
        S,
        False,
        ("Đã trả kết quả", "Kết quả của hồ sơ {code} đã được trả{method}."),
        ("Result handed over", "The result of dossier {code} was handed over{method}."),
    ),
    EventType.DOSSIER_STOPPED: Template(
        S,
        False,
        ("Hồ sơ bị dừng xử lý", "Hồ sơ {code} đã bị dừng xử lý.{reason}"),
        ("Processing stopped", "Processing of dossier {code} was stopped.{reason}"),
    ),
    EventType.DOSSIER_APOLOGISED: Template(
        S,
        False,
        (
            "Thư xin lỗi và hẹn lại",
            "{agency} xin lỗi vì hồ sơ {code} bị trễ hẹn. Ngày hẹn mới: {new_appointment}.",
        ),
        (
            "Apology and new date",
            "{agency} apologises for the delay of dossier {code}. New date: {new_appointment}.",
        ),
    ),
    EventType.DOSSIER_OVERDUE: Template(
        S,
        False,
        (
            "Hồ sơ đã quá hạn",
            "Hồ sơ {code} đã quá ngày hẹn trả kết quả. Cơ quan sẽ gửi thư xin lỗi và hẹn lại.",
        ),
        (
            "Dossier overdue",
            "Dossier {code} is past its due date. The agency will apologise and set a new date.",
        ),
    ),
    EventType.DELIVERY_BOOKED: Template(
        D,
        False,
        ("Đã đặt chuyển phát", "Đã đặt bưu chính chuyển phát cho hồ sơ {code}."),
        ("Delivery booked", "A postal delivery was booked for dossier {code}."),
    ),
    EventType.DELIVERY_CANCELLED: Template(
        D,
        False,
        ("Đã hủy chuyển phát", "Đơn chuyển phát của hồ sơ {code} đã bị hủy."),
        ("Delivery cancelled", "The postal delivery of dossier {code} was cancelled."),
    ),
    EventType.DELIVERY_PICKED_UP: Template(
        D,
        False,
        ("Bưu tá đã nhận hàng", "Bưu tá đã nhận bưu gửi của hồ sơ {code}."),
        ("Picked up", "The postal carrier picked up the parcel of dossier {code}."),
    ),
    EventType.DELIVERY_IN_TRANSIT: Template(
        D,
        False,
        ("Đang vận chuyển", "Bưu gửi của hồ sơ {code} đang được vận chuyển."),
        ("In transit", "The parcel of dossier {code} is on its way."),
    ),
    EventType.DELIVERY_OUT_FOR_DELIVERY: Template(
        D,
        False,
        ("Đang giao hàng", "Bưu tá đang giao bưu gửi của hồ sơ {code} đến bạn."),
        ("Out for delivery", "The parcel of dossier {code} is out for delivery."),
    ),
    EventType.DELIVERY_DELIVERED: Template(
        D,
        False,
        ("Đã giao thành công", "Bưu gửi của hồ sơ {code} đã được giao."),
        ("Delivered", "The parcel of dossier {code} was delivered."),
    ),
    EventType.DELIVERY_FAILED_ATTEMPT: Template(
        D,
        False,
        ("Giao hàng không thành công", "Bưu tá chưa giao được bưu gửi của hồ sơ {code}.{reason}"),
        ("Delivery attempt failed", "The carrier could not deliver dossier {code}.{reason}"),
    ),
    EventType.DELIVERY_RETURNED: Template(
        D,
        False,
        ("Bưu gửi bị hoàn trả", "Bưu gửi của hồ sơ {code} đã được hoàn trả về người gửi."),
        ("Parcel returned", "The parcel of dossier {code} was returned to the sender."),
    ),
}

# Internal monitoring signals that citizens do not receive (the agency acts on them;
# the citizen hears about the outcome: `dossier.overdue`, `dossier.apologised`).
NOT_NOTIFIED: frozenset[EventType] = frozenset({EventType.DOSSIER_DEADLINE_AT_RISK})

# Test pushes sent by staff from the admin.
TEST_TEMPLATE = Template(
    Category.ANNOUNCEMENTS,
    False,
    ("Thông báo thử", "Đây là thông báo thử từ bộ phận hỗ trợ. Bạn không cần làm gì."),
    ("Test notification", "This is a test notification from support. No action is needed."),
)

# Notices about the account itself (not a dossier), by notice type.
ACCOUNT_TEMPLATES: dict[str, Template] = {
    "account.support_reset": Template(
        Category.ANNOUNCEMENTS,
        True,
        (
            "Tài khoản đã được đặt lại",
            "Bộ phận hỗ trợ đã đặt lại tài khoản của bạn: bạn đã được đăng xuất trên mọi "
            "thiết bị. Mở ứng dụng và đặt mật khẩu mới để đăng nhập. Nếu bạn không yêu cầu, "
            "hãy gọi đường dây nóng ngay.",
        ),
        (
            "Your account was reset",
            "Support staff reset your account: you were signed out on every device. Open "
            "the app and choose a new password to sign in. If you did not ask for this, "
            "call the hotline now.",
        ),
    ),
}

HANDOVER_METHODS = {
    "in_person": ("trực tiếp tại bộ phận một cửa", "in person at the one-stop office"),
    "post": ("qua bưu chính", "by post"),
    "electronic": ("bản điện tử trên ứng dụng", "electronically in the app"),
}


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


def template_for(event_type: str) -> Template | None:
    if event_type in NOT_NOTIFIED:
        return None
    return TEMPLATES.get(event_type)


def _format_moment(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(BUSINESS_ZONE).strftime("%H:%M %d/%m/%Y")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return "—"


def _format_amount(value: Any, language: str) -> str:
    try:
        amount = int(value)
    except (TypeError, ValueError):
        return ""
    text = f"{amount:,}".replace(",", ".")
    return f" ({text} đồng)" if language == "vi" else f" ({text} VND)"


def render_context(
    *,
    language: str,
    code: str,
    procedure: str,
    agency: str,
    appointment: Any = None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> dict[str, str]:
    data = data or {}
    vi = language == "vi"
    reason = " ".join(message.split())[:REASON_MAX_CHARS]
    method = HANDOVER_METHODS.get(str(data.get("method", "")))
    return {
        "code": code,
        "procedure": procedure,
        "agency": agency,
        "appointment": _format_moment(appointment),
        "new_appointment": _format_moment(data.get("new_appointment_at")),
        "reason": (f" Lý do: {reason}" if vi else f" Reason: {reason}") if reason else "",
        "amount": _format_amount(data.get("amount", data.get("fee_amount")), language),
        "method": f" {method[0] if vi else method[1]}" if method else "",
    }


def render(template: Template, language: str, context: dict[str, str]) -> Rendered:
    title, body = template.en if language == "en" else template.vi
    return Rendered(title.format(**context), " ".join(body.format(**context).split()))


def render_sms(template: Template, language: str, context: dict[str, str]) -> str:
    text = template.sms_en if language == "en" else template.sms_vi
    return text.format(**context)
