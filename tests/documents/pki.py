"""A throwaway PKI for tests: root, intermediate, agency leaves, a CRL; and PDFs to sign.

Built with `cryptography` once per test session (RSA-2048 keys take a moment).
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import io
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fpdf import FPDF

PASSPHRASE = b"test-passphrase"
CRL_URL = "http://ca.invalid/intermediate.crl"


def _name(common: str, organisation: str = "Ban Cơ yếu Chính phủ (thử nghiệm)") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issued:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _cert(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
    serial: int | None = None,
) -> Issued:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = (
            builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
            .add_extension(
                # Where the CRL lives, as on real CA certificates; tests hand the CRL
                # over locally (no fetching).
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(CRL_URL)],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                critical=False,
            )
        )
    signer = issuer.key if issuer else key
    return Issued(key, builder.sign(signer, hashes.SHA256()))


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    agency: Issued
    expired: Issued
    revoked: Issued
    other_root: Issued
    stranger: Issued  # a leaf under other_root
    crl: x509.CertificateRevocationList

    def write(self, directory: Path) -> dict[str, Path]:
        """Trust roots, intermediates, CRL and PKCS#12 files, as settings point to them."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "roots": directory / "roots.pem",
            "intermediates": directory / "intermediates.pem",
            "crl": directory / "intermediate.crl",
        }
        paths["roots"].write_bytes(self.root.pem)
        paths["intermediates"].write_bytes(self.intermediate.pem)
        paths["crl"].write_bytes(self.crl.public_bytes(serialization.Encoding.DER))
        for name in ("agency", "expired", "revoked", "stranger"):
            paths[name] = directory / f"{name}.p12"
            paths[name].write_bytes(self.pkcs12(name))
        return paths

    def pkcs12(self, name: str) -> bytes:
        leaf: Issued = getattr(self, name)
        chain = [self.intermediate.cert] if name != "stranger" else [self.other_root.cert]
        return pkcs12.serialize_key_and_certificates(
            name.encode(),
            leaf.key,
            leaf.cert,
            chain,
            serialization.BestAvailableEncryption(PASSPHRASE),
        )


def build_pki() -> Pki:
    now = dt.datetime.now(dt.UTC)
    year = dt.timedelta(days=365)
    root = _cert(
        _name("Root CA thử nghiệm"),
        _key(),
        None,
        ca=True,
        not_before=now - year,
        not_after=now + 10 * year,
    )
    intermediate = _cert(
        _name("CA cấp hai thử nghiệm"), _key(), root, ca=True,
        not_before=now - year, not_after=now + 5 * year,
    )  # fmt: skip
    agency_name = "UBND phường Thử Nghiệm"
    agency = _cert(
        _name("Nguyễn Văn Ký", agency_name), _key(), intermediate, ca=False,
        not_before=now - dt.timedelta(days=30), not_after=now + year,
    )  # fmt: skip
    expired = _cert(
        _name("Chứng thư hết hạn", agency_name), _key(), intermediate, ca=False,
        not_before=now - 2 * year, not_after=now - dt.timedelta(days=1),
    )  # fmt: skip
    revoked = _cert(
        _name("Chứng thư bị thu hồi", agency_name), _key(), intermediate, ca=False,
        not_before=now - dt.timedelta(days=30), not_after=now + year,
    )  # fmt: skip
    other_root = _cert(
        _name("Root CA lạ", "Không tin cậy"), _key(), None, ca=True,
        not_before=now - year, not_after=now + 10 * year,
    )  # fmt: skip
    stranger = _cert(
        _name("Người lạ", agency_name), _key(), other_root, ca=False,
        not_before=now - dt.timedelta(days=30), not_after=now + year,
    )  # fmt: skip
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(intermediate.cert.subject)
        .last_update(now - dt.timedelta(hours=1))
        .next_update(now + dt.timedelta(days=7))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.cert.serial_number)
            .revocation_date(now - dt.timedelta(days=2))
            .build()
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate.key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(intermediate.key, hashes.SHA256())
    )
    return Pki(root, intermediate, agency, expired, revoked, other_root, stranger, crl)


def make_pdf(pages: int = 2, text: str = "Giấy chứng nhận đăng ký kết hôn") -> bytes:
    pdf = FPDF()
    pdf.set_compression(False)  # tests flip one byte of visible text
    for page in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", size=14)
        pdf.cell(text=f"Result page {page + 1}: {text.encode('ascii', 'ignore').decode()}")
    return bytes(pdf.output())


def sign_with(pki: Pki, name: str, data: bytes) -> bytes:
    """Sign `data` as the agency itself would (mode a), with pyHanko."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12_data(pki.pkcs12(name), [], passphrase=PASSPHRASE)
    assert signer is not None
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(data)),
        signers.PdfSignatureMetadata(field_name="Signature1"),
        signer=signer,
        output=out,
    )
    return out.getvalue()


def same_named_cas(count: int, name: str = "Loop CA") -> tuple[Issued, list[x509.Certificate]]:
    """A leaf issued by `name` and `count` CA certificates that all have `name` as
    subject and issuer, under one key: every ordering of them is a candidate path."""
    ca_key = _key()
    year = dt.timedelta(days=365)
    now = dt.datetime.now(dt.UTC)
    cas = [
        _cert(_name(name), ca_key, None, ca=True, not_before=now - year, not_after=now + year)
        for _ in range(count)
    ]
    leaf = _cert(
        _name("Người ký lạ"), _key(), cas[0], ca=False,
        not_before=now - dt.timedelta(days=1), not_after=now + year,
    )  # fmt: skip
    return leaf, [issued.cert for issued in cas]


def sign_carrying(leaf: Issued, certificates: list[x509.Certificate], data: bytes) -> bytes:
    """Sign `data` with `leaf`, embedding exactly `certificates` besides it."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def der(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    key = leaf.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        signing_cert=der(leaf.cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore.from_certs([der(c) for c in certificates]),
    )
    out = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(data)),
        signers.PdfSignatureMetadata(field_name="Signature1"),
        signer=signer,
        output=out,
    )
    return out.getvalue()


@functools.cache
def session_pki() -> tuple[Pki, dict[str, Path]]:
    """One PKI per test process, its files in a temporary folder removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="test-pki-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    pki = build_pki()
    return pki, pki.write(directory)


def configure(settings: Any, *signing_agencies: str, leaf: str = "agency") -> Pki:
    """Point the result settings at the test PKI; give `signing_agencies` the `leaf` key."""
    pki, paths = session_pki()
    settings.RESULT_TRUST_ROOTS_FILE = str(paths["roots"])
    settings.RESULT_INTERMEDIATES_FILE = str(paths["intermediates"])
    settings.RESULT_CRL_FILES = [str(paths["crl"])]
    settings.RESULT_SIGNING_KEYS = {
        code: {"pkcs12_file": str(paths[leaf]), "passphrase": PASSPHRASE.decode()}
        for code in signing_agencies
    }
    return pki
