"""Serving stored attachments: streamed responses and short-lived signed URLs.

A signed URL lets an image view or a PDF viewer fetch a file without the access
token (they cannot add headers). It names one attachment, one variant and the user
it was made for, is made by backend/signed_links.py (signed with SECRET_KEY) and
expires after ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS. Opening it checks again that this
user may see the dossier: a member who left the organisation meanwhile, or an
account since disabled, gets a 404 however fresh the link.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.conf import settings
from django.http import FileResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auth.models import User
from backend.errors import NotFound, PermissionDenied
from backend.signed_links import open_link, sign_link
from dossiers.attachments import access_attachment, read_stored
from dossiers.models import Attachment

Variant = Literal["file", "thumbnail"]
VARIANTS: tuple[Variant, ...] = ("file", "thumbnail")
_SALT = "dossiers.attachment-download"


def sign_download(attachment: Attachment, variant: Variant, user: User) -> tuple[str, dt.datetime]:
    """A token for `user` to fetch `attachment`'s `variant`, and when it stops working."""
    if variant == "thumbnail" and not attachment.thumbnail:
        raise _no_thumbnail()
    token = sign_link({"a": str(attachment.pk), "v": variant, "u": str(user.pk)}, purpose=_SALT)
    ttl = settings.ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS
    return token, timezone.now() + dt.timedelta(seconds=ttl)


def resolve_download(token: str) -> tuple[Attachment, Variant]:
    """The attachment and variant a token grants; 403 once expired, 404 if forged."""
    payload = open_link(
        token,
        purpose=_SALT,
        max_age=settings.ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS,
        expired=lambda: PermissionDenied(
            "download_url_expired", _("This download link has expired. Ask for a new one.")
        ),
    )
    if payload.get("v") not in VARIANTS:
        raise NotFound()
    attachment = Attachment.objects.filter(pk=str(payload.get("a"))).first()
    user = User.objects.filter(pk=str(payload.get("u")), is_active=True).first()
    if attachment is None or user is None:  # deleted since the link was made
        raise NotFound()
    # Whoever the link was made for must still see the dossier (404 otherwise).
    attachment = access_attachment(user, attachment.dossier_id, attachment.pk)
    variant: Variant = "thumbnail" if payload["v"] == "thumbnail" else "file"
    return attachment, variant


def _no_thumbnail() -> NotFound:
    return NotFound("no_thumbnail", _("This file has no thumbnail."))


def file_response(attachment: Attachment, variant: Variant) -> FileResponse:
    """Stream a stored file as a download that no browser will render inline."""
    if variant == "thumbnail":
        if not attachment.thumbnail:
            raise _no_thumbnail()
        name, content_type, suffix = attachment.thumbnail.name, "image/jpeg", "-thumbnail.jpg"
    else:
        name, content_type = attachment.file.name, attachment.content_type
        suffix = ".pdf" if attachment.kind == Attachment.Kind.PDF else ".jpg"
    # The download name is ours, never the uploaded one (no header injection, no
    # misleading extension).
    filename = f"{attachment.document_code}-{str(attachment.pk)[:8]}{suffix}"
    response = FileResponse(
        read_stored(name), as_attachment=True, filename=filename, content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
