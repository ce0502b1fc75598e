"""The submission receipt (giấy tiếp nhận và hẹn trả kết quả) as a PDF.

For the applicant only: it prints the lookup secret. Built on demand from the
dossier (nothing stored), so it always shows the current appointment date.
"""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from backend.pdf import FONT, new_document, qr_image, set_bold
from dossiers.deadlines import business_tz
from dossiers.lookup_secrets import display
from dossiers.models import Attachment, Dossier
from tracking.lookup import lookup_url


def _local(moment):  # type: ignore[no-untyped-def]
    return timezone.localtime(moment, business_tz()) if moment else None


def bold(pdf, size: int) -> None:  # type: ignore[no-untyped-def]
    pdf.set_font(FONT, "", size)
    set_bold(pdf, True)


def plain(pdf, size: int) -> None:  # type: ignore[no-untyped-def]
    pdf.set_font(FONT, "", size)
    set_bold(pdf, False)


def received_documents(dossier: Dossier) -> list[tuple[str, int]]:
    """(document name, files received) for each required document with files."""
    counts = dict(
        Attachment.objects.filter(dossier=dossier)
        .values("document_code")
        .annotate(n=Count("id"))
        .values_list("document_code", "n")
    )
    return [
        (document.name, counts[document.code])
        for document in dossier.procedure.documents.all()
        if counts.get(document.code)
    ]


def build_receipt(dossier: Dossier, secret: str) -> bytes:
    """The receipt of a submitted dossier, with its lookup secret and QR code."""
    title = _("Receipt and appointment slip")
    pdf = new_document(f"{title} {dossier.code}")
    width = pdf.epw
    bold(pdf, 12)
    pdf.multi_cell(width, 6, dossier.agency.name.upper(), align="C")
    pdf.ln(4)
    bold(pdf, 15)
    pdf.multi_cell(width, 8, _("RECEIPT OF DOSSIER AND APPOINTMENT FOR THE RESULT"), align="C")
    pdf.ln(4)
    plain(pdf, 11)
    submitted = _local(dossier.submitted_at)
    appointment = _local(dossier.appointment_at)
    rows = [
        (_("Dossier code"), dossier.code or ""),
        (_("Procedure"), f"{dossier.procedure.name} ({dossier.procedure.code})"),
        (_("Applicant"), dossier.applicant.full_name),
        (_("Submitted at"), f"{submitted:%H:%M %d/%m/%Y}" if submitted else ""),
        (_("Appointment for the result"), f"{appointment:%H:%M %d/%m/%Y}" if appointment else ""),
    ]
    for label, value in rows:
        bold(pdf, 11)
        pdf.cell(55, 7, f"{label}:")
        plain(pdf, 11)
        pdf.multi_cell(width - 55, 7, value)
    pdf.ln(3)
    bold(pdf, 11)
    pdf.cell(width, 7, _("Documents received:"), new_x="LMARGIN", new_y="NEXT")
    plain(pdf, 11)
    documents = received_documents(dossier)
    for index, (name, files) in enumerate(documents, start=1):
        files_label = _("file(s)")  # outside the f-string, where makemessages finds it
        pdf.multi_cell(width, 6, f"{index}. {name} ({files} {files_label})")
    if not documents:
        pdf.multi_cell(width, 6, "-")
    pdf.ln(4)
    top = pdf.get_y()
    bold(pdf, 11)
    pdf.multi_cell(width - 50, 7, _("Lookup secret:"))
    bold(pdf, 16)
    pdf.multi_cell(width - 50, 9, display(secret))
    plain(pdf, 10)
    pdf.multi_cell(
        width - 50,
        5,
        _(
            "Scan the QR code, or open the lookup page and enter the dossier code and this "
            "secret, to follow the dossier without signing in. Keep it like a key."
        ),
    )
    pdf.image(
        qr_image(lookup_url(dossier.code or "", secret)), x=pdf.l_margin + width - 45, y=top, w=45
    )
    return bytes(pdf.output())
