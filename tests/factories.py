"""Factories for domain rows. Tests build state with these plus the real actions."""

from __future__ import annotations

import itertools
from typing import Any

from django.db import connection
from django.utils import timezone
from procrastinate.contrib.django import app as job_app

from auth.models import Membership, Organisation, User
from dossiers.models import Agency, Dossier, Procedure, RequiredDocument
from payments.models import Payment, PaymentRequest
from tests.conftest import make_user

_counter = itertools.count(1)

__all__ = [
    "make_agency",
    "make_dossier",
    "make_job",
    "make_organisation",
    "make_paid_payment",
    "make_procedure",
    "make_team",
    "make_user",
]

DEFAULT_FORM_SPEC: list[dict[str, Any]] = [
    {
        "name": "full_name",
        "type": "text",
        "label": "Họ và tên",
        "label_en": "Full name",
        "required": True,
        "max_length": 100,
    },
    {
        "name": "birth_date",
        "type": "date",
        "label": "Ngày sinh",
        "label_en": "Date of birth",
        "required": True,
    },
]


def make_agency(code: str | None = None, **extra: Any) -> Agency:
    n = next(_counter)
    defaults: dict[str, Any] = {
        "name": f"UBND phường thử nghiệm {n}",
        "name_en": f"Test ward people's committee {n}",
        "level": Agency.Level.COMMUNE,
        "province_code": "01",
        "commune_code": "00004",
    }
    defaults.update(extra)
    return Agency.objects.create(code=code or f"T{n:03d}", **defaults)


def make_procedure(agency: Agency | None = None, *, documents: int = 1, **extra: Any) -> Procedure:
    n = next(_counter)
    defaults: dict[str, Any] = {
        "name": f"Thủ tục thử nghiệm số {n}",
        "name_en": f"Test procedure {n}",
        "field": "Hộ tịch",
        "field_en": "Civil status",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 3,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "form_spec": DEFAULT_FORM_SPEC,
        "postal_return_allowed": True,
    }
    defaults.update(extra)
    procedure = Procedure.objects.create(
        code=f"9.{n:06d}", agency=agency or make_agency(), **defaults
    )
    for index in range(documents):
        RequiredDocument.objects.create(
            procedure=procedure,
            code=f"doc-{index + 1}",
            name=f"Giấy tờ {index + 1}",
            name_en=f"Document {index + 1}",
            mandatory=True,
            accepted_kinds=["photo", "pdf"],
            min_files=1,
            max_files=3,
            position=index,
        )
    return procedure


def make_organisation(
    owner: User | None = None, *, tax_code: str | None = None, **extra: Any
) -> Organisation:
    n = next(_counter)
    organisation = Organisation.objects.create(
        tax_code=tax_code or f"01{n:08d}", name=extra.pop("name", f"Công ty TNHH Thử {n}"), **extra
    )
    if owner is not None:
        Membership.objects.create(organisation=organisation, user=owner, role=Membership.Role.OWNER)
    return organisation


def make_team(*names: str) -> tuple[Organisation, dict[str, User]]:
    """An organisation and one user per name: "owner" is an owner, "admin" an admin,
    any other name (the applicant, whoever booked...) a plain member."""
    organisation = make_organisation()
    roles = {"owner": Membership.Role.OWNER, "admin": Membership.Role.ADMIN}
    people = {name: make_user() for name in names}
    for name, user in people.items():
        Membership.objects.create(
            organisation=organisation, user=user, role=roles.get(name, Membership.Role.MEMBER)
        )
    return organisation, people


def make_dossier(
    applicant: User | None = None,
    procedure: Procedure | None = None,
    *,
    status: int = Dossier.Status.DRAFT,
    **extra: Any,
) -> Dossier:
    """A dossier row in any status, for read-side tests (state changes use actions)."""
    procedure = procedure or make_procedure()
    applicant = applicant or make_user()
    n = next(_counter)
    if status != Dossier.Status.DRAFT:
        extra.setdefault("code", f"{procedure.agency.code}-{timezone.localdate():%y%m%d}-{n:04d}")
        extra.setdefault("submitted_at", timezone.now())
    return Dossier.objects.create(
        procedure=procedure, agency=procedure.agency, applicant=applicant, status=status, **extra
    )


def make_paid_payment(citizen: User, dossier: Dossier, order_ref: str) -> Payment:
    """A payment as the gateway's settlement leaves it: paid, counted, with a receipt."""
    request = PaymentRequest.objects.create(
        dossier=dossier,
        source=PaymentRequest.Source.SUBMISSION,
        amount=50_000,
        status=PaymentRequest.Status.PAID,
        lines=[{"kind": "charge", "label": "Lệ phí", "amount": 50_000}],
        paid_at=timezone.now(),
    )
    return Payment.objects.create(
        request=request,
        dossier=dossier,
        payer=citizen,
        gateway="vnpay",
        order_ref=order_ref,
        amount=50_000,
        status=Payment.Status.PAID,
        checkout_url="https://sandbox.vnpayment.vn/pay",
        counted=True,
        expires_at=timezone.now(),
        paid_at=timezone.now(),
        receipt_number=f"BL-{order_ref}",
    )


def make_job(status: str = "todo", **args: Any) -> int:
    """A job of the queue in `status` ("todo", "doing", "failed", ...), deferred through
    the Django connection: in a `db` test it stays in the test's transaction, so no
    worker sees it and it is gone with the test. Its task is never run."""
    deferrer = job_app.configure_task("tests.admin_job", queue="tests-admin")
    job_id = deferrer.defer(**args)
    if status != "todo":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE procrastinate_jobs SET status = %s WHERE id = %s", [status, job_id]
            )
    return job_id
