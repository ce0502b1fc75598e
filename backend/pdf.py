"""Small PDF building blocks: a page with a Vietnamese-capable font, QR codes.

fpdf2 writes the PDF; the font is Noto Sans from the `fontpkg-noto-sans` wheel
(SIL Open Font License), embedded as a subset, so every Vietnamese diacritic
renders on any reader without fonts installed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import fontpkg
import qrcode
from fpdf import FPDF
from fpdf.enums import TextMode
from qrcode.constants import ERROR_CORRECT_M

FONT = "noto"


@functools.cache
def font_path() -> Path:
    return Path(fontpkg.path("Noto Sans"))


def new_document(title: str) -> FPDF:
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(title)
    pdf.set_creator("Dịch vụ công")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT, "", str(font_path()))
    pdf.add_page()
    pdf.set_font(FONT, "", 11)
    return pdf


def set_bold(pdf: FPDF, bold: bool) -> None:
    """Bold by stroking the glyph outlines: instancing the variable font's bold
    weight costs fontTools about 13 s per process, a stroke costs nothing."""
    pdf.text_mode = TextMode.FILL_STROKE if bold else TextMode.FILL
    pdf.set_line_width(0.25 if bold else 0.2)


def qr_image(data: str):  # type: ignore[no-untyped-def]  # a PIL image
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=2)
    code.add_data(data)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image()


def qr_png(data: str) -> bytes:
    import io

    buffer = io.BytesIO()
    qr_image(data).save(buffer, format="PNG")
    return buffer.getvalue()
