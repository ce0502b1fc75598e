"""Signed results through the agency API: validated (mode a) or signed here (mode b)."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.files.base import ContentFile
from pypdf import PdfReader, PdfWriter

from dossiers.models import Agency, Dossier, DossierEvent, ResultDocument
from dossiers.result_signatures import read_signature
from tests.conftest import make_user
from tests.documents.broken import broken_result
from tests.documents.pki import configure, make_pdf, same_named_cas, sign_carrying, sign_with
from tests.dossiers.attachments import samples
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db


def processing(agency: Agency) -> Dossier:
    return make_dossier(
        make_user(password=None), make_procedure(agency), status=Dossier.Status.PROCESSING
    )


def complete(client: AgencyClient, dossier: Dossier, data: bytes, **fields: str):
    return client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/complete",
        multipart={"result_file": ContentFile(data, name="kq.pdf"), **fields},
    )


def assert_refused(response, code: str, dossier: Dossier) -> None:
    assert response.status_code == 422, response
    assert response.json()["code"] == code
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.PROCESSING
    assert not dossier.result_file
    assert not ResultDocument.objects.filter(dossier=dossier).exists()
    assert not DossierEvent.objects.filter(dossier=dossier).exists()


def test_an_agency_signed_result_is_validated_and_recorded(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    signed = sign_with(pki, "agency", make_pdf())
    dossier = processing(agency)
    response = complete(agency_client, dossier, signed, valid_until="2031-12-31")
    assert response.status_code == 200, response
    result = ResultDocument.objects.get(dossier=dossier)
    assert result.source == "agency"
    assert result.signer_name == "Nguyễn Văn Ký"
    assert result.signer_organisation == "UBND phường Thử Nghiệm"
    assert result.certificate_serial == format(pki.agency.cert.serial_number, "X")
    assert result.certificate_issuer == "CA cấp hai thử nghiệm"
    import hashlib

    assert result.sha256 == hashlib.sha256(signed).hexdigest()
    assert str(result.valid_until) == "2031-12-31"
    assert len(result.verification_code) == 14
    dossier.refresh_from_db()
    assert dossier.result_file.name == result.file
    with dossier.result_file.open("rb") as stored:
        assert stored.read() == signed  # the agency's bytes, untouched
    event = DossierEvent.objects.get(dossier=dossier, type="dossier.completed")
    assert event.data["verification_code"] == result.verification_code


def test_the_server_stamps_a_qr_code_and_signs_an_unsigned_result(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings, agency.code)
    dossier = processing(agency)
    response = complete(agency_client, dossier, make_pdf(), signing="server")
    assert response.status_code == 200, response
    result = ResultDocument.objects.get(dossier=dossier)
    assert result.source == "server"
    assert result.certificate_serial == format(pki.agency.cert.serial_number, "X")
    dossier.refresh_from_db()
    stored = dossier.result_file.open("rb").read()
    # Signed and valid under the same checks as an agency's own signature.
    facts = read_signature(stored)
    assert facts.sha256 == result.sha256
    # A visible stamp on page 1 carries the verification code and the QR code.
    reader = PdfReader(io.BytesIO(stored))
    (annotation,) = [a.get_object() for a in reader.pages[0]["/Annots"]]
    assert annotation["/FT"] == "/Sig"
    appearance = annotation["/AP"]["/N"].get_object()
    xobjects = appearance["/Resources"]["/XObject"]
    contents = (
        b"".join(xobjects[name].get_object().get_data() for name in xobjects)
        + appearance.get_data()
    )
    # pyHanko writes "-" in PDF strings as the octal escape \055.
    assert result.verification_code.replace("-", "\\055").encode() in contents
    assert len(reader.pages) == 2


def test_server_signing_without_a_configured_key_is_a_conflict(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    configure(settings)  # trust, but no key for this agency
    dossier = processing(agency)
    response = complete(agency_client, dossier, make_pdf(), signing="server")
    assert response.status_code == 409
    assert response.json()["code"] == "signing_not_configured"
    assert not ResultDocument.objects.exists()


@pytest.mark.parametrize(
    ("leaf", "code"),
    [
        ("expired", "certificate_expired"),
        ("revoked", "certificate_revoked"),
        ("stranger", "certificate_untrusted"),  # chains to a root nobody configured
    ],
)
def test_untrustworthy_certificates_are_refused(
    agency: Agency, agency_client: AgencyClient, settings, leaf: str, code: str
) -> None:
    pki = configure(settings)
    dossier = processing(agency)
    assert_refused(
        complete(agency_client, dossier, sign_with(pki, leaf, make_pdf())), code, dossier
    )


def test_a_wrong_root_refuses_even_the_agency_certificate(
    agency: Agency, agency_client: AgencyClient, settings, tmp_path
) -> None:
    pki = configure(settings)
    other = tmp_path / "other-root.pem"
    other.write_bytes(pki.other_root.pem)
    settings.RESULT_TRUST_ROOTS_FILE = str(other)
    dossier = processing(agency)
    signed = sign_with(pki, "agency", make_pdf())
    assert_refused(complete(agency_client, dossier, signed), "certificate_untrusted", dossier)


def test_one_byte_changed_after_signing_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    signed = bytearray(sign_with(pki, "agency", make_pdf()))
    index = signed.index(b"Result page 2")
    signed[index] = ord("X")
    dossier = processing(agency)
    assert_refused(complete(agency_client, dossier, bytes(signed)), "signature_invalid", dossier)


def test_a_revision_appended_after_signing_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    signed = sign_with(pki, "agency", make_pdf())
    writer = PdfWriter(io.BytesIO(signed), incremental=True)
    writer.add_metadata({"/Title": "changed"})
    out = io.BytesIO()
    writer.write(out)
    dossier = processing(agency)
    assert_refused(
        complete(agency_client, dossier, out.getvalue()), "signature_not_covering", dossier
    )


def test_an_unsigned_pdf_in_agency_mode_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    configure(settings, agency.code)
    dossier = processing(agency)
    assert_refused(complete(agency_client, dossier, make_pdf()), "result_not_signed", dossier)


@pytest.mark.parametrize("signing", ["agency", "server"])
def test_an_encrypted_pdf_is_refused(
    agency: Agency, agency_client: AgencyClient, settings, signing: str
) -> None:
    configure(settings, agency.code)
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf()))
    writer.encrypt(user_password="", owner_password="owner")  # opens without a password
    out = io.BytesIO()
    writer.write(out)
    dossier = processing(agency)
    assert_refused(
        complete(agency_client, dossier, out.getvalue(), signing=signing), "pdf_encrypted", dossier
    )


@pytest.mark.parametrize("signing", ["agency", "server"])
def test_a_pdf_with_javascript_is_refused(
    agency: Agency, agency_client: AgencyClient, settings, signing: str
) -> None:
    pki = configure(settings, agency.code)
    data = samples.pdf_with_javascript_open_action()
    if signing == "agency":
        data = sign_with(pki, "agency", data)
    dossier = processing(agency)
    assert_refused(
        complete(agency_client, dossier, data, signing=signing), "pdf_active_content", dossier
    )


def test_a_signed_pdf_sent_for_server_signing_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings, agency.code)
    dossier = processing(agency)
    signed = sign_with(pki, "agency", make_pdf())
    assert_refused(
        complete(agency_client, dossier, signed, signing="server"),
        "result_already_signed",
        dossier,
    )


def test_without_configured_roots_nothing_is_trusted(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    settings.RESULT_TRUST_ROOTS_FILE = ""  # never the operating system's TLS roots
    dossier = processing(agency)
    signed = sign_with(pki, "agency", make_pdf())
    assert_refused(complete(agency_client, dossier, signed), "certificate_untrusted", dossier)


def test_a_signature_carrying_same_named_ca_certificates_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    # Each same-named CA multiplies the orderings pyHanko's path builder would try
    # (9 of them: minutes of CPU); refused from the certificate list alone.
    configure(settings)
    leaf, cas = same_named_cas(3)
    dossier = processing(agency)
    signed = sign_carrying(leaf, cas, make_pdf())
    assert_refused(
        complete(agency_client, dossier, signed), "signature_certificates_refused", dossier
    )


def test_a_signature_carrying_more_certificates_than_allowed_is_refused(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    settings.RESULT_SIGNATURE_MAX_CERTS = 1  # the agency's signature carries two
    dossier = processing(agency)
    signed = sign_with(pki, "agency", make_pdf())
    assert_refused(
        complete(agency_client, dossier, signed), "signature_certificates_refused", dossier
    )


def test_path_building_stops_at_its_budget(
    agency: Agency, agency_client: AgencyClient, settings, tmp_path
) -> None:
    # The tangle sits in the configured intermediates, so the certificate checks of
    # the signature pass: 6 same-named CAs are about 2,000 candidate path steps.
    configure(settings)
    leaf, cas = same_named_cas(6)
    bundle = tmp_path / "intermediates.pem"
    bundle.write_bytes(b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in cas))
    settings.RESULT_INTERMEDIATES_FILE = str(bundle)
    dossier = processing(agency)
    signed = sign_carrying(leaf, [], make_pdf())
    assert_refused(
        complete(agency_client, dossier, signed), "signature_certificates_refused", dossier
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("unknown_digest_oid", "signature_invalid"),
        ("trailer_null", "pdf_unreadable"),
        ("encrypt_pubsec", "pdf_encrypted"),
    ],
)
def test_files_the_parsers_choke_on_are_refused_with_a_code(
    agency: Agency, agency_client: AgencyClient, settings, caplog, name: str, code: str
) -> None:
    data = broken_result(configure(settings), name)
    dossier = processing(agency)
    assert_refused(complete(agency_client, dossier, data), code, dossier)
    refusals = [r for r in caplog.records if r.name == "dossiers.result_signatures"]
    assert [r.levelname for r in refusals] == ["WARNING"]
    assert f"({code})" in refusals[0].getMessage()
