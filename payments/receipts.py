"""The electronic receipt (biên lai điện tử) of a paid payment, as a PDF.

Drawn with fpdf2 in Noto Sans (SIL Open Font License), which the PyPI package
`fontpkg-noto-sans` ships: Vietnamese diacritics need a TrueType font that has
them, and the font is embedded (subset) in every receipt. `PAYMENT_RECEIPT_FONT`
points at another .ttf if wanted. The PDF is drawn from the payment's rows on
each download (the same rows always give the same text), so nothing is stored.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from fpdf import FPDF

from backend.errors import NotFound
from backend.pdf import font_path as pdf_font_path
from payments.amounts import vnd_in_figures, vnd_in_words
from payments.models import Payment

LINE_KINDS = {"fee": "Phí", "charge": "Lệ phí", "postage": "Cước bưu chính"}
GATEWAY_NAMES = {
    "vnpay": "VNPay",
    "national": "Nền tảng thanh toán Cổng Dịch vụ công quốc gia",
}


def font_path() -> str:
    """PAYMENT_RECEIPT_FONT, or the project's PDF font (backend/pdf.py)."""
    return str(settings.PAYMENT_RECEIPT_FONT or pdf_font_path())


def _pdf() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=12)
    # The variable font's default instance (regular). Instancing other weights
    # (fpdf2's `variations`) costs about ten seconds of CPU per weight, so headings
    # stand out by size and case instead of a bold weight.
    pdf.add_font("Noto", "", font_path())
    return pdf


def _row(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("Noto", "", 9)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(38, 6, label)
    pdf.set_font("Noto", "", 10)
    pdf.set_text_color(0, 0, 0)
    pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")


def receipt_lines(payment: Payment) -> list[dict[str, Any]]:
    return [
        {
            "kind": str(line.get("kind", "fee")),
            "label": str(line.get("label") or ""),
            "amount": int(line.get("amount") or 0),
        }
        for line in payment.request.lines
    ]


def render(payment: Payment) -> bytes:
    """The receipt PDF. Only for a counted paid (or later refunded) payment."""
    dossier = payment.dossier
    agency = dossier.agency
    paid_at = timezone.localtime(payment.paid_at) if payment.paid_at else None
    pdf = _pdf()
    if paid_at is not None:
        pdf.set_creation_date(paid_at)
    pdf.set_title(f"Biên lai {payment.receipt_number}")
    pdf.set_author(agency.name)
    pdf.add_page()
    pdf.set_font("Noto", "", 10)
    pdf.multi_cell(0, 5, agency.name.upper(), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Noto", "", 15)
    pdf.multi_cell(0, 7, "BIÊN LAI THU PHÍ, LỆ PHÍ", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Noto", "", 9)
    pdf.multi_cell(
        0, 5, "(Biên lai điện tử — Electronic receipt)", align="C", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(3)
    _row(pdf, "Số biên lai:", str(payment.receipt_number))
    _row(pdf, "Người nộp:", payment.payer.full_name or str(payment.payer.phone))
    _row(pdf, "Mã hồ sơ:", dossier.code or str(dossier.pk))
    _row(pdf, "Thủ tục:", dossier.procedure.name)
    pdf.ln(2)
    pdf.set_font("Noto", "", 9)
    pdf.cell(30, 6, "Loại", border=1)
    pdf.cell(pdf.epw - 30 - 34, 6, "Nội dung", border=1)
    pdf.cell(34, 6, "Số tiền (VND)", border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Noto", "", 9)
    for line in receipt_lines(payment):
        pdf.cell(30, 6, LINE_KINDS.get(line["kind"], line["kind"]), border=1)
        pdf.cell(pdf.epw - 30 - 34, 6, line["label"][:60], border=1)
        pdf.cell(
            34,
            6,
            f"{line['amount']:,}".replace(",", "."),
            border=1,
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)
    _row(pdf, "Tổng cộng:", vnd_in_figures(payment.amount))
    _row(pdf, "Bằng chữ:", vnd_in_words(payment.amount))
    _row(
        pdf,
        "Hình thức:",
        f"Thanh toán trực tuyến qua {GATEWAY_NAMES.get(payment.gateway, payment.gateway)}",
    )
    _row(pdf, "Mã giao dịch:", payment.gateway_reference or "-")
    _row(pdf, "Mã đơn hàng:", payment.order_ref)
    if paid_at is not None:
        _row(pdf, "Thời gian:", paid_at.strftime("%H:%M:%S ngày %d/%m/%Y"))
    return bytes(pdf.output())


def receipt_response(payment: Payment) -> HttpResponse:
    if not payment.receipt_number or payment.status not in (
        Payment.Status.PAID,
        Payment.Status.REFUNDED,
    ):
        raise NotFound("no_receipt", _("This payment has no receipt (it is not paid)."))
    response = HttpResponse(render(payment), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="bien-lai-{payment.receipt_number}.pdf"'
    )
    return response
