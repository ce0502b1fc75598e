"""Public verification of signed results, revocation, and the holder's view."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from dossiers.models import Agency, Dossier, DossierEvent, ResultDocument
from notifications.actions import notify_event
from notifications.models import Notification
from tests.conftest import ApiClient, make_user, sign_in
from tests.documents.broken import broken_result
from tests.documents.pki import configure, make_pdf, same_named_cas, sign_carrying, sign_with
from tests.dossiers.conftest import AgencyClient
from tests.factories import make_dossier, make_procedure

pytestmark = pytest.mark.django_db


def issue(agency: Agency, client: AgencyClient, settings, **fields: str) -> tuple[Dossier, bytes]:
    configure(settings, agency.code)
    dossier = make_dossier(
        make_user(password=None, full_name="Phạm Thị Riêng Tư"),
        make_procedure(agency),
        status=Dossier.Status.PROCESSING,
    )
    response = client.post(
        f"/api/v1/agency/dossiers/{dossier.code}/complete",
        multipart={
            "result_file": ContentFile(make_pdf(), name="kq.pdf"),
            "signing": "server",
            **fields,
        },
    )
    assert response.status_code == 200, response
    dossier.refresh_from_db()
    return dossier, dossier.result_file.open("rb").read()


def upload(data: bytes):
    return ApiClient().client.post("/api/v1/verify", {"file": ContentFile(data, name="x.pdf")})


def test_verification_by_code_shows_issuer_procedure_and_time_only(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    dossier, _ = issue(agency, agency_client, settings)
    result = ResultDocument.objects.get(dossier=dossier)
    response = ApiClient().get(f"/api/v1/verify/{result.verification_code.lower()}")
    assert response.status_code == 200, response
    body = response.json()
    assert body["genuine"] is True
    assert body["state"] == "valid"
    assert body["agency"]["code"] == agency.code
    assert body["procedure"]["code"] == dossier.procedure.code
    assert dt.datetime.fromisoformat(body["issued_at"]) == result.signing_time
    assert body["certificate_serial"] == result.certificate_serial
    assert body["verify_url"].endswith(f"/verify/{result.verification_code}")
    raw = response.content.decode()
    for private in ("Riêng Tư", dossier.code, str(dossier.pk)):
        assert private not in raw


def test_unknown_code_is_not_found(api: ApiClient) -> None:
    response = api.get("/api/v1/verify/AAAA-BBBB-CCCC")
    assert response.status_code == 404
    assert response.json()["code"] == "verification_not_found"


def test_the_issued_file_verifies_and_a_tampered_copy_does_not(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    dossier, data = issue(agency, agency_client, settings)
    good = upload(data)
    assert good.status_code == 200
    assert good.json()["genuine"] is True
    assert good.json()["verification_code"] == dossier.results.get().verification_code
    tampered = bytearray(data)
    tampered[tampered.index(b"Result page 2")] = ord("X")
    bad = upload(bytes(tampered))
    assert bad.status_code == 200
    assert bad.json()["genuine"] is False
    assert (bad.json()["state"], bad.json()["problem"]) == ("invalid", "signature_invalid")
    assert bad.json()["agency"] is None


def test_a_validly_signed_file_never_issued_here_is_unknown(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    pki = configure(settings)
    body = upload(sign_with(pki, "agency", make_pdf(text="not issued"))).json()
    assert (body["genuine"], body["state"], body["problem"]) == (
        False,
        "unknown",
        "not_issued_here",
    )


def test_an_unsigned_file_is_invalid(settings, db) -> None:
    configure(settings)
    body = upload(make_pdf()).json()
    assert (body["genuine"], body["state"], body["problem"]) == (
        False,
        "invalid",
        "result_not_signed",
    )


def test_a_file_signed_with_a_tangle_of_same_named_certificates_is_invalid(settings, db) -> None:
    configure(settings)
    leaf, cas = same_named_cas(3)
    body = upload(sign_carrying(leaf, cas, make_pdf())).json()
    assert (body["genuine"], body["state"], body["problem"]) == (
        False,
        "invalid",
        "signature_certificates_refused",
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("unknown_digest_oid", "signature_invalid"),
        ("trailer_null", "pdf_unreadable"),
        ("encrypt_pubsec", "pdf_encrypted"),
    ],
)
def test_a_file_the_parsers_choke_on_is_an_answer_not_an_error(
    settings, db, name: str, problem: str
) -> None:
    data = broken_result(configure(settings), name)
    response = upload(data)
    assert response.status_code == 200
    body = response.json()
    assert (body["genuine"], body["state"], body["problem"]) == (False, "invalid", problem)


def test_a_file_with_too_many_pages_is_an_invalid_answer_not_an_error(settings, db) -> None:
    """results.md: a failed file check is `problem`, not an HTTP error."""
    configure(settings)
    settings.RESULT_PDF_MAX_PAGES = 2
    response = upload(make_pdf(pages=3))
    assert response.status_code == 200
    body = response.json()
    assert (body["genuine"], body["state"], body["problem"]) == (
        False,
        "invalid",
        "pdf_too_many_pages",
    )


def test_a_file_over_the_result_limit_is_413_file_too_large(settings, db) -> None:
    configure(settings)
    data = make_pdf()
    settings.RESULT_FILE_MAX_BYTES = len(data) - 1
    response = upload(data)
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


def test_expired_result(agency: Agency, agency_client: AgencyClient, settings) -> None:
    yesterday = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    dossier, data = issue(agency, agency_client, settings, valid_until=yesterday)
    code = dossier.results.get().verification_code
    assert ApiClient().get(f"/api/v1/verify/{code}").json()["state"] == "expired"
    assert upload(data).json()["state"] == "expired"


def test_revocation_is_reported_and_the_holder_is_notified(
    agency: Agency, agency_client: AgencyClient, other_agency_client: AgencyClient, settings
) -> None:
    dossier, data = issue(agency, agency_client, settings)
    code = dossier.results.get().verification_code
    url = f"/api/v1/agency/results/{code}/revoke"
    # Another agency cannot see it, let alone revoke it.
    response = other_agency_client.post(url, {"reason": "Sai thông tin"})
    assert response.status_code == 404
    assert ResultDocument.objects.get(verification_code=code).revoked_at is None
    response = agency_client.post(url, {"reason": "Cấp nhầm, đã cấp lại"})
    assert response.status_code == 200, response
    assert response.json()["revoked_at"] is not None
    body = ApiClient().get(f"/api/v1/verify/{code}").json()
    assert (body["genuine"], body["state"]) == (True, "revoked")
    assert upload(data).json()["state"] == "revoked"
    event = DossierEvent.objects.get(dossier=dossier, type="dossier.result_revoked")
    assert event.data == {"verification_code": code}
    notify_event(event.pk)
    notice = Notification.objects.get(event=event)
    assert notice.user == dossier.applicant
    assert notice.urgent is True
    assert dossier.code in notice.body
    assert "Cấp nhầm" in notice.body
    again = agency_client.post(url, {"reason": "x"})
    assert again.status_code == 409
    assert again.json()["code"] == "already_revoked"


def test_verification_attempts_are_capped_per_ip(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    dossier, data = issue(agency, agency_client, settings)
    settings.VERIFY_MAX_ATTEMPTS_PER_IP_PER_HOUR = 3
    code = dossier.results.get().verification_code
    assert ApiClient().get(f"/api/v1/verify/{code}").status_code == 200
    assert upload(data).status_code == 200
    assert ApiClient().get(f"/verify/{code}").status_code == 200
    response = ApiClient().get(f"/api/v1/verify/{code}")
    assert response.status_code == 429
    assert response.json()["code"] == "verify_rate_limited"
    assert upload(data).status_code == 429


def test_verification_attempts_count_an_ipv6_host_by_its_network(settings) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    settings.VERIFY_MAX_ATTEMPTS_PER_IP_PER_HOUR = 2

    def verify(address: str) -> int:
        headers = {"X-Forwarded-For": address}
        return ApiClient().get("/api/v1/verify/NOPE", headers=headers).status_code

    assert [verify("2001:db8:1:2::1"), verify("2001:db8:1:2::2")] == [404, 404]
    assert verify("2001:db8:1:2:ffff::3") == 429
    assert verify("2001:db8:1:3::1") == 404


def test_the_public_page(agency: Agency, agency_client: AgencyClient, settings) -> None:
    dossier, _ = issue(agency, agency_client, settings)
    code = dossier.results.get().verification_code
    page = ApiClient(language="vi").client.get(f"/verify/{code}")
    assert page.status_code == 200
    html = page.content.decode()
    for shown in (agency.name, dossier.procedure.name, code):
        assert shown in html
    assert "Phạm Thị" not in html
    assert ApiClient().client.get("/verify/NOPE").status_code == 404


def test_the_holder_sees_the_code_and_others_get_404(
    agency: Agency, agency_client: AgencyClient, settings
) -> None:
    dossier, _ = issue(agency, agency_client, settings)
    url = f"/api/v1/dossiers/{dossier.pk}/results"
    mine = ApiClient(token=sign_in(dossier.applicant)[1].access_token).get(url)
    assert mine.status_code == 200
    (item,) = mine.json()
    assert item["verification_code"] == dossier.results.get().verification_code
    assert item["state"] == "valid"
    other = ApiClient(token=sign_in(make_user())[1].access_token).get(url)
    assert other.status_code == 404
