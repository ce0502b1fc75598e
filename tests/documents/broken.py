"""Result PDFs broken in the ways that once made pypdf or pyHanko raise past the
refusal codes (a 500 where a 422 belongs)."""

from __future__ import annotations

import re

from tests.documents.pki import Pki, make_pdf, sign_with
from tests.dossiers.attachments import samples


def with_unknown_digest_algorithm(signed: bytes) -> bytes:
    """The SHA-256 OID in the signature (DER, hex in /Contents) made one no hash has."""
    match = re.search(rb"/Contents <([0-9a-fA-F]+)>", signed)
    assert match is not None
    contents = match.group(1).lower()
    assert b"0609608648016503040201" in contents
    forged = contents.replace(b"0609608648016503040201", b"0609608648016503040263")
    return signed[: match.start(1)] + forged + signed[match.end(1) :]


def with_null_trailer(data: bytes) -> bytes:
    match = re.search(rb"trailer\s*<<.*?>>\s*startxref", data, re.S)
    assert match is not None
    return data[: match.start()] + b"trailer\nnull\nstartxref" + data[match.end() :]


def with_public_key_encryption(data: bytes) -> bytes:
    # Same length, so the cross-reference offsets still hold; pypdf implements only
    # the password (/Standard) handler.
    assert b"/Filter /Standard" in data
    return data.replace(b"/Filter /Standard", b"/Filter /PubSec  ")


def broken_result(pki: Pki, name: str) -> bytes:
    if name == "unknown_digest_oid":
        return with_unknown_digest_algorithm(sign_with(pki, "agency", make_pdf()))
    if name == "trailer_null":
        return with_null_trailer(samples.pdf_bytes(1))
    if name == "encrypt_pubsec":
        return with_public_key_encryption(samples.encrypted_pdf())
    raise ValueError(name)
