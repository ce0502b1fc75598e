"""Signed electronic results (PAdES, with pyHanko): validate what agencies sign, sign
for those that let the server do it.

Two ways in, chosen by the agency per result (`signing` of the complete action):

- `agency`: the agency signed the PDF itself (a VGCA or licensed CA certificate).
  `validate_signed_pdf` checks the signature is intact, covers the whole file
  (nothing added or changed after signing), chains to a configured trust root
  (`RESULT_TRUST_ROOTS_FILE`, intermediates from `RESULT_INTERMEDIATES_FILE`), is
  not revoked according to the configured CRLs (`RESULT_CRL_FILES`), and that the
  signing time lies inside the certificate's validity and not in the future.
  Anything else is refused with a coded error.
- `server`: the PDF is unsigned; `sign_result` stamps a visible QR code with the
  verification code and link, then signs with the agency's PKCS#12 key from
  `RESULT_SIGNING_KEYS`.

Both ways refuse encrypted PDFs and PDFs with active content (JavaScript, launch
actions, embedded files), as attachments are. No network fetching happens at
validation unless `RESULT_VALIDATION_ALLOW_FETCHING` is on.

Validation is public (`POST /api/v1/verify`), so its cost is bounded whatever the
signature carries: pyHanko's path builder tries every ordering of certificates that
share a name, which is factorial work for a few self-named CA certificates. A
signature (or a timestamp token in it) with more than `RESULT_SIGNATURE_MAX_CERTS`
certificates, or two with the same subject, is refused before any path is built,
and the issuer look-ups of one validation are capped as well.

This module sits in `dossiers` because the agency API refuses a bad result
synchronously; `documents` only reads what it records (ResultDocument).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import io
import json
import logging
import secrets
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from asn1crypto import crl as asn1_crl
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.errors import ApiError, Conflict, Unprocessable
from dossiers.lookup_secrets import ALPHABET
from dossiers.uploads import inspect_pdf

logger = logging.getLogger(__name__)


# Refusals of a result, by the problem pyHanko reports.
SIGNATURE_ERRORS: dict[str, Any] = {
    "result_not_signed": _("The result must be signed: this PDF has no signature."),
    "signature_invalid": _("The signature does not match the document (it was altered)."),
    "signature_not_covering": _("The document was changed after it was signed."),
    "certificate_untrusted": _("The signing certificate does not chain to a trusted root."),
    "certificate_expired": _("The signing certificate has expired or is not yet valid."),
    "certificate_revoked": _("The signing certificate was revoked."),
    "signing_time_invalid": _(
        "The signing time is missing, in the future or outside the certificate's validity."
    ),
    "signature_certificates_refused": _(
        "The signature's certificates are too many or form too many possible chains "
        "(several with the same name): include only the signing certificate and its chain."
    ),
    "pdf_encrypted": _("Password-protected PDF files are not accepted."),
    "pdf_unreadable": _("This PDF file could not be read."),
}

# Issuer look-ups (one per candidate path step) a validation may make, timestamp and
# revocation checks included. A real chain takes a handful; a signature that passes
# the certificate checks below cannot need more, so only a tangle of configured and
# embedded certificates reaches this.
ISSUER_LOOKUPS_MAX = 200


class ResultRefused(Unprocessable):
    def __init__(self, code: str) -> None:
        super().__init__(code, SIGNATURE_ERRORS[code])


@dataclass(frozen=True)
class SignatureFacts:
    signer_name: str
    signer_organisation: str
    certificate_serial: str  # hex, as certificate viewers show it
    certificate_issuer: str
    signing_time: dt.datetime
    sha256: str


@dataclass(frozen=True)
class PreparedResult:
    data: bytes
    facts: SignatureFacts
    verification_code: str
    source: str  # "agency" | "server"


def new_verification_code() -> str:
    """12 characters in groups of four (`KQ7M-2XRP-9TDA`): about 59 bits."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def verify_url(code: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/verify/{code}"


# --- Trust configuration ---------------------------------------------------------------


def _certificates(path: str) -> list[asn1_x509.Certificate]:
    if not path:
        return []
    data = Path(path).read_bytes()
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


def _crls(paths: list[str]) -> list[asn1_crl.CertificateList]:
    lists = []
    for path in paths:
        data = Path(path).read_bytes()
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        lists.append(asn1_crl.CertificateList.load(data))
    return lists


class _BoundedIssuers:
    """The certificate registry as pyHanko's path builder sees it, with a budget.

    The path walker asks for the candidate issuers of each certificate on each path it
    tries; past `limit` questions it is told no path can be built (which pyHanko
    reports as an untrusted certificate) and `exhausted` is set, so the caller can
    refuse the signature for what it is.
    """

    def __init__(self, registry: Any, limit: int) -> None:
        self._registry = registry
        self.left = limit
        self.exhausted = False

    def find_potential_issuers(self, cert: Any, trust_manager: Any) -> Iterator[Any]:
        from pyhanko_certvalidator.errors import PathBuildingError

        # A generator: the walker calls this eagerly and only iterates inside its own
        # error handling, where a PathBuildingError ends the search.
        self.left -= 1
        if self.left < 0:
            self.exhausted = True
            raise PathBuildingError("Too many candidate paths")
        yield from self._registry.find_potential_issuers(cert, trust_manager)

    def fetch_missing_potential_issuers(self, cert: Any) -> Any:
        return self._registry.fetch_missing_potential_issuers(cert)


def validation_context(moment: dt.datetime | None = None) -> tuple[Any, _BoundedIssuers]:
    """pyHanko's validation context from the settings, and the budget its paths use."""
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import PathBuilder

    context = ValidationContext(
        trust_roots=_certificates(settings.RESULT_TRUST_ROOTS_FILE),
        other_certs=_certificates(settings.RESULT_INTERMEDIATES_FILE),
        crls=_crls(settings.RESULT_CRL_FILES),
        allow_fetching=settings.RESULT_VALIDATION_ALLOW_FETCHING,
        revocation_mode=settings.RESULT_REVOCATION_MODE,
        moment=moment,
    )
    # Every path pyHanko builds with this context (signer, timestamps, CRL issuers)
    # goes through `context.path_builder`; embedded certificates are still
    # registered in `context.certificate_registry`, which the budget reads from.
    issuers = _BoundedIssuers(context.certificate_registry, ISSUER_LOOKUPS_MAX)
    context.path_builder = PathBuilder(
        # Duck-typed: the walker only calls the two methods `_BoundedIssuers` has.
        trust_manager=context.path_builder.trust_manager,
        registry=cast(Any, issuers),
    )
    return context, issuers


def _certificate_sets(signed_data: Any) -> Iterator[list[Any]]:
    """The X.509 certificates of a CMS signature, then those of each timestamp token
    in it (pyHanko validates those with the same context; tokens inside tokens are
    not read by it, so not here either)."""
    yield [c.chosen for c in signed_data["certificates"] if c.name == "certificate"]
    for signer_info in signed_data["signer_infos"]:
        for attributes, kind in (
            (signer_info["signed_attrs"], "content_time_stamp"),
            (signer_info["unsigned_attrs"], "signature_time_stamp_token"),
        ):
            for attribute in attributes:
                if attribute["type"].native != kind:
                    continue
                for token in attribute["values"]:
                    content = token["content"]
                    yield [c.chosen for c in content["certificates"] if c.name == "certificate"]


def _refuse_tangled_certificates(signed_data: Any) -> None:
    """More certificates than a chain needs, or two sharing a subject, are refused:
    each same-named certificate multiplies the paths pyHanko tries (factorially)."""
    for certificates in _certificate_sets(signed_data):
        if len(certificates) > settings.RESULT_SIGNATURE_MAX_CERTS:
            raise ResultRefused("signature_certificates_refused")
        subjects = {cert.subject.hashable for cert in certificates}
        if len(subjects) < len(certificates):
            raise ResultRefused("signature_certificates_refused")


# --- Validation ---------------------------------------------------------------------------


def _parser_errors(*own: type[Exception]) -> tuple[type[Exception], ...]:
    """The libraries' `own` errors, and what else pypdf and pyHanko raise on a hostile
    or broken file (a trailer that is `null`, a digest OID no hash is known for, a
    structure nested too deep): a refusal of that file, never a server error."""
    return (*own, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, AssertionError)  # fmt: skip


def _log_refusal(code: str, exc: BaseException) -> None:
    """What failed and where, for the operator: the exception's type and the line that
    raised it, not its text, which can quote bytes of someone's document."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    logger.warning("result PDF refused (%s): %s at %s", code, type(exc).__name__, where)


def _refuse_unsafe(data: bytes) -> None:
    """Encrypted or active PDFs are refused before pyHanko parses them."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        encrypted = PdfReader(io.BytesIO(data), strict=False).is_encrypted
    except NotImplementedError as exc:
        # Opening raises this only from pypdf's /Encrypt reader: a security handler
        # it does not implement (public-key /PubSec, an unknown /V or crypt filter).
        _log_refusal("pdf_encrypted", exc)
        raise ResultRefused("pdf_encrypted") from exc
    except _parser_errors(PyPdfError) as exc:
        _log_refusal("pdf_unreadable", exc)
        raise ResultRefused("pdf_unreadable") from exc
    if encrypted:
        raise ResultRefused("pdf_encrypted")
    inspect_pdf(io.BytesIO(data), max_pages=settings.RESULT_PDF_MAX_PAGES)


def _name_part(name: asn1_x509.Name, key: str) -> str:
    value = name.native.get(key, "")
    return str(value[-1] if isinstance(value, list) else value)


def _problem(status: Any) -> str | None:
    """The refusal code for a signature pyHanko judged, or None when it is good."""
    from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    if not status.intact or not status.valid:
        return "signature_invalid"
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        return "signature_not_covering"
    if not status.trusted or status.revoked:
        indication = status.trust_problem_indic
        if status.revoked or indication in {
            AdESFailure.REVOKED,
            AdESIndeterminate.REVOKED_NO_POE,
            AdESIndeterminate.REVOKED_CA_NO_POE,
        }:
            return "certificate_revoked"
        if indication in {
            AdESIndeterminate.EXPIRED,
            AdESIndeterminate.NOT_YET_VALID,
            AdESFailure.NOT_YET_VALID,
            AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
            AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
        }:
            return "certificate_expired"
        return "certificate_untrusted"
    return None


def read_signature(data: bytes) -> SignatureFacts:
    """Validate the last signature of a signed PDF; the facts, or ResultRefused."""
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature

    _refuse_unsafe(data)
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except _parser_errors(PdfError, NotImplementedError) as exc:
        _log_refusal("pdf_unreadable", exc)
        raise ResultRefused("pdf_unreadable") from exc
    if not signatures:
        raise ResultRefused("result_not_signed")
    embedded = signatures[-1]
    context, issuers = validation_context()
    try:
        _refuse_tangled_certificates(embedded.signed_data)
        status = validate_pdf_signature(embedded, context)
    except _parser_errors(PdfError, NotImplementedError) as exc:
        # A signature pyHanko cannot evaluate (an unknown digest algorithm, a signer
        # identified in a way it does not support) cannot be shown to be valid.
        _log_refusal("signature_invalid", exc)
        raise ResultRefused("signature_invalid") from exc
    if issuers.exhausted:
        raise ResultRefused("signature_certificates_refused")
    problem = _problem(status)
    if problem:
        raise ResultRefused(problem)
    cert = status.signing_cert
    signed_at = status.signer_reported_dt
    now = timezone.now()
    skew = dt.timedelta(seconds=settings.RESULT_SIGNING_TIME_SKEW_SECONDS)
    if (
        signed_at is None
        or signed_at > now + skew
        or not (cert.not_valid_before <= signed_at <= cert.not_valid_after)
    ):
        raise ResultRefused("signing_time_invalid")
    return SignatureFacts(
        signer_name=_name_part(cert.subject, "common_name")[:255],
        signer_organisation=_name_part(cert.subject, "organization_name")[:255],
        certificate_serial=format(cert.serial_number, "X"),
        certificate_issuer=_name_part(cert.issuer, "common_name")[:255],
        signing_time=signed_at,
        sha256=hashlib.sha256(data).hexdigest(),
    )


# --- Server signing -----------------------------------------------------------------------


def _signer(agency_code: str) -> Any:
    config = settings.RESULT_SIGNING_KEYS.get(agency_code)
    if not config:
        return None
    return _load_signer(json.dumps(config, sort_keys=True))


@functools.cache
def _load_signer(config_json: str) -> Any:
    """Keys are loaded once per process and configuration (PKCS#12 decryption is slow)."""
    from pyhanko.sign import signers

    config = json.loads(config_json)
    if config.get("pkcs12_file"):
        data = Path(config["pkcs12_file"]).read_bytes()
    else:
        data = base64.b64decode(config["pkcs12_base64"])
    passphrase = config.get("passphrase")
    return signers.SimpleSigner.load_pkcs12_data(
        data, [], passphrase=passphrase.encode() if passphrase else None
    )


def has_signing_key(agency_code: str) -> bool:
    return bool(settings.RESULT_SIGNING_KEYS.get(agency_code))


def sign_result(agency_code: str, data: bytes, verification_code: str) -> bytes:
    """Stamp the QR code and verification code on page 1, then sign with the agency's key."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import QRStampStyle

    signer = _signer(agency_code)
    if signer is None:
        raise Conflict(
            "signing_not_configured",
            _("No signing key is configured for this agency: sign the result yourself."),
        )
    _refuse_unsafe(data)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if writer.prev.embedded_signatures:
            raise Unprocessable(
                "result_already_signed",
                _("This PDF is already signed: send it with signing=agency."),
            )
        out = io.BytesIO()
        pdf_signer = signers.PdfSigner(
            signers.PdfSignatureMetadata(field_name="KetQua", reason=verification_code),
            signer=signer,
            new_field_spec=fields.SigFieldSpec("KetQua", on_page=0, box=(20, 20, 320, 90)),
            stamp_style=QRStampStyle(
                stamp_text=(
                    f"Ma xac minh / Verification code: {verification_code}\n"
                    "Ky boi / Signed by: %(signer)s\n%(ts)s"
                ),
                border_width=0,
            ),
        )
        pdf_signer.sign_pdf(
            writer, appearance_text_params={"url": verify_url(verification_code)}, output=out
        )
    except ApiError:
        raise
    except _parser_errors(PdfError, NotImplementedError) as exc:
        _log_refusal("pdf_unreadable", exc)
        raise ResultRefused("pdf_unreadable") from exc
    return out.getvalue()


def prepare_result(agency_code: str, data: bytes, *, signing: str) -> PreparedResult:
    """What the complete action stores: validated (agency) or signed here (server)."""
    code = new_verification_code()
    if signing == "server":
        data = sign_result(agency_code, data, code)
    facts = read_signature(data)
    return PreparedResult(data=data, facts=facts, verification_code=code, source=signing)
