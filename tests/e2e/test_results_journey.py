"""Receipt, lookup, signed result, public verification, wallet and reuse: the real stack.

The agency's signing key and the trust roots are a throwaway PKI
(tests/documents/pki.py) handed to the web and worker processes through their
environment, as an operator would configure them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from fakes.harness import wait_until
from tests.documents.pki import PASSPHRASE, build_pki, make_pdf
from tests.dossiers.attachments.samples import jpeg_bytes
from tests.e2e.clients import (
    AGENCY_CODE,
    BA_DINH,
    PROCEDURE_CODE,
    Agency,
    pay_submission_fee,
    sign_up,
)
from tests.e2e.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

PHONE = "+84987650002"
DOCUMENT = "divorce-paper"
FORM = {
    "applicant_name": "Trần Văn Minh",
    "applicant_citizen_id": "001090012345",
    "applicant_phone": "0987650002",
    "birth_date": "1990-03-12",
    "residence_commune": BA_DINH,
    "marital_status": "single",
    "purpose": "marriage",
    "pledge": True,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, e2e_template: str) -> Iterator[Stack]:
    workdir = Path(tmp_path_factory.mktemp("results-stack"))
    paths = build_pki().write(workdir / "pki")
    env = {
        "RESULT_TRUST_ROOTS_FILE": str(paths["roots"]),
        "RESULT_INTERMEDIATES_FILE": str(paths["intermediates"]),
        "RESULT_CRL_FILES": str(paths["crl"]),
        "RESULT_SIGNING_KEYS": json.dumps(
            {AGENCY_CODE: {"pkcs12_file": str(paths["agency"]), "passphrase": PASSPHRASE.decode()}}
        ),
    }
    with running_stack(workdir, template=e2e_template, extra_env=env) as running:
        # The catalogue editor says what the result is and that the procedure's
        # paper may come from the wallet (as the admin would).
        running.python(
            "from dossiers.models import DocumentType, Procedure;"
            "from dossiers.catalogue import procedure_changed;"
            "t = DocumentType.objects.create(code='xac-nhan-hon-nhan',"
            " name='Giấy xác nhận tình trạng hôn nhân');"
            f"p = Procedure.objects.get(code='{PROCEDURE_CODE}');"
            "p.result_type = t; p.save();"
            f"d = p.documents.get(code='{DOCUMENT}');"
            "d.accepted_kinds = ['photo', 'pdf']; d.save(); d.accepted_types.add(t);"
            "procedure_changed(p)"
        )
        yield running


def new_dossier(app, name: str) -> str:
    procedure = next(
        p
        for p in app.get(
            "/api/v1/catalogue/procedures", params={"q": "tình trạng hôn nhân"}
        ).json()["items"]
        if p["code"] == PROCEDURE_CODE
    )
    draft = app.post(
        "/api/v1/dossiers",
        {"procedure_id": procedure["id"], "form": FORM},
        headers={"Idempotency-Key": f"draft-{name}"},
    )
    assert draft.status_code == 201, draft.text
    return draft.json()["id"]


def test_result_signed_verified_kept_and_reused(stack: Stack) -> None:
    app = sign_up(stack, PHONE)
    agency = Agency(stack, AGENCY_CODE)
    public = httpx.Client(base_url=stack.base_url, timeout=15)

    # Submit a dossier; the receipt carries the lookup secret; anyone can look it up.
    first = new_dossier(app, "first")
    upload = app.post(
        f"/api/v1/dossiers/{first}/attachments",
        files={"file": ("IMG_1.jpg", jpeg_bytes(gps=True), "image/jpeg")},
        data={"document_code": DOCUMENT},
        headers={"Idempotency-Key": "upload-first"},
    )
    assert upload.status_code == 201, upload.text
    pay_submission_fee(app, first)
    submitted = app.post(f"/api/v1/dossiers/{first}/submit")
    assert submitted.status_code == 200, submitted.text
    code = submitted.json()["code"]
    secret = app.get(f"/api/v1/dossiers/{first}/lookup-secret").json()["secret"]
    receipt = app.get(f"/api/v1/dossiers/{first}/receipt")
    assert receipt.status_code == 200
    receipt_text = PdfReader(io.BytesIO(receipt.content)).pages[0].extract_text()
    assert code in receipt_text
    assert secret in receipt_text
    looked_up = public.post("/api/v1/lookup", json={"code": code, "secret": secret})
    assert looked_up.status_code == 200, looked_up.text
    assert looked_up.json()["status"] == 1
    assert "Trần Văn Minh" not in looked_up.text

    # The agency accepts and completes with an unsigned PDF the service signs.
    assert agency.post(f"/api/v1/agency/dossiers/{code}/accept", {}).status_code == 200
    completed = agency.post(
        f"/api/v1/agency/dossiers/{code}/complete",
        {"message": "Đã cấp", "signing": "server"},
        files={"result_file": ("kq.pdf", make_pdf(), "application/pdf")},
    )
    assert completed.status_code == 200, completed.text
    [issued] = app.get(f"/api/v1/dossiers/{first}/results").json()
    verification_code = issued["verification_code"]

    # Anyone verifies it, by code and by the file itself; a tampered copy fails.
    by_code = public.get(f"/api/v1/verify/{verification_code}")
    assert by_code.status_code == 200, by_code.text
    assert (by_code.json()["genuine"], by_code.json()["state"]) == (True, "valid")
    assert by_code.json()["agency"]["code"] == AGENCY_CODE
    result_pdf = app.get(f"/api/v1/dossiers/{first}/result").content
    by_file = public.post("/api/v1/verify", files={"file": ("kq.pdf", result_pdf)})
    assert by_file.json()["genuine"] is True
    tampered = bytearray(result_pdf)
    tampered[tampered.index(b"Result page 1")] = ord("X")
    forged = public.post("/api/v1/verify", files={"file": ("kq.pdf", bytes(tampered))})
    assert (forged.json()["genuine"], forged.json()["problem"]) == (False, "signature_invalid")

    # The worker put the result into the citizen's wallet.
    item = wait_until(
        lambda: next(iter(app.get("/api/v1/wallet/items").json()["items"]), None),
        timeout=30,
        what="the result in the wallet",
    )
    assert item["source"] == "result"
    assert item["verification_code"] == verification_code

    # A second dossier uses it from the wallet: no upload, same bytes.
    second = new_dossier(app, "second")
    offers = app.get(f"/api/v1/dossiers/{second}/wallet-offers").json()
    offered = next(o for o in offers if o["document_code"] == DOCUMENT)
    assert [i["id"] for i in offered["items"]] == [item["id"]]
    attached = app.post(
        f"/api/v1/dossiers/{second}/wallet-attachments",
        {"wallet_item_id": item["id"], "document_code": DOCUMENT},
        headers={"Idempotency-Key": "from-wallet"},
    )
    assert attached.status_code == 201, attached.text
    assert attached.json()["sha256"] == item["sha256"]
    pay_submission_fee(app, second)
    resubmitted = app.post(f"/api/v1/dossiers/{second}/submit")
    assert resubmitted.status_code == 200, resubmitted.text
    copy = app.get(f"/api/v1/dossiers/{second}/attachments/{attached.json()['id']}/download")
    assert copy.content == result_pdf
