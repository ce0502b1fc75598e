"""The dossier's row lock of an upload and of a removal: the lean one the wallet's
attach takes (`access.lock_for_papers`: the few fields the checks and the answer
read, no joins, a statement compiled once), not the whole joined read locked; and
an upload reads nothing of the dossier before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auth.models import Membership, User
from dossiers import access
from dossiers.models import Attachment, Dossier, Procedure
from tests.conftest import api_as
from tests.documents.test_attach_cost import shape
from tests.dossiers.attachments import samples
from tests.dossiers.attachments.conftest import citizen, upload_form
from tests.factories import make_dossier, make_organisation

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN and COMMIT

LOCK = "SELECT dossiers_dossier FOR UPDATE"


def captured(call: Callable[[], Any]) -> tuple[Any, list[str], list[str]]:
    """The call's answer, its statements' shapes and SQL."""
    with CaptureQueriesContext(connection) as queries:
        response = call()
    sql = [query["sql"] for query in queries.captured_queries]
    return response, [shape(text) for text in sql], sql


def assert_lean_lock(sql: str, dossier: Dossier) -> None:
    """The lock is `lock_for_papers`' statement: the dossier's own row, its few fields."""
    assert "JOIN" not in sql
    assert "form_data" not in sql
    compiled = access._LOCKED_FOR_PAPERS._compiled_for("default")
    assert compiled is not None  # compiled once, prepared with the pool
    assert sql.startswith(compiled.sql.split(" WHERE ")[0])
    assert dossier.pk.hex in sql


def test_an_upload_locks_the_dossier_with_its_few_fields(owner: User, dossier: Dossier) -> None:
    client = api_as(owner)
    response, shapes, sql = captured(
        lambda: client.post(
            f"/api/v1/dossiers/{dossier.pk}/attachments",
            data=upload_form(samples.png_bytes((50, 50))),
        )
    )
    assert response.status_code == 201, response
    assert response.json()["can_remove"] is True
    # No read of the dossier before its lock: every check is made under it.
    assert shapes == [
        "SELECT accounts_devicesession",
        "BEGIN",
        LOCK,
        # The document, whether it takes photos, the dossier's counts, the same bytes.
        "SELECT dossiers_requireddocument",
        "SELECT accounts_user FOR UPDATE",  # the quota, one upload at a time
        "SELECT ?",
        *("SAVEPOINT", "INSERT dossiers_attachment", "RELEASE SAVEPOINT"),
        "UPDATE dossiers_dossier",
        "COMMIT",
    ]
    assert_lean_lock(sql[2], dossier)
    assert sql[3].count('"dossiers_attachment"') == 3  # total, this document's, same bytes
    dossier.refresh_from_db()
    assert dossier.version == 2  # bumped once (ETag)


def test_a_removal_by_an_organisation_owner_locks_the_dossier_with_its_few_fields(
    procedure: Procedure,
) -> None:
    applicant, owner = citizen(), citizen()
    organisation = make_organisation()
    Membership.objects.create(organisation=organisation, user=applicant)
    Membership.objects.create(organisation=organisation, user=owner, role=Membership.Role.OWNER)
    dossier = make_dossier(applicant, procedure, organisation=organisation)
    base = f"/api/v1/dossiers/{dossier.pk}/attachments"
    uploaded = api_as(applicant).post(base, data=upload_form(samples.png_bytes((60, 40))))
    assert uploaded.status_code == 201, uploaded
    client = api_as(owner)

    response, shapes, sql = captured(lambda: client.delete(f"{base}/{uploaded.json()['id']}"))

    assert response.status_code == 204, response
    assert shapes == [
        "SELECT accounts_devicesession",
        "BEGIN",
        LOCK,
        "SELECT accounts_membership",  # the owner sees it (and may remove it): read once
        "SELECT dossiers_attachment",
        "DELETE ?",
        "UPDATE dossiers_dossier",
        "COMMIT",
    ]
    assert_lean_lock(sql[2], dossier)
    assert not Attachment.objects.exists()


def test_the_lean_lock_keeps_every_refusal(procedure: Procedure) -> None:
    applicant, member, stranger = citizen(), citizen(), citizen()
    organisation = make_organisation()
    Membership.objects.create(organisation=organisation, user=applicant)
    Membership.objects.create(organisation=organisation, user=member)
    dossier = make_dossier(applicant, procedure, organisation=organisation)
    base = f"/api/v1/dossiers/{dossier.pk}/attachments"
    uploaded = api_as(applicant).post(base, data=upload_form(samples.png_bytes((60, 40))))
    assert uploaded.status_code == 201, uploaded
    path = f"{base}/{uploaded.json()['id']}"
    other = samples.png_bytes((70, 30))

    # Someone who cannot see the dossier: 404 for a removal and for an upload.
    assert api_as(stranger).delete(path).status_code == 404
    assert api_as(stranger).post(base, data=upload_form(other)).status_code == 404
    # A plain member of its organisation: may add, may not remove a colleague's paper.
    refused = api_as(member).delete(path)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_uploader")
    # Once submitted: no change of its papers, by anyone.
    Dossier.objects.filter(pk=dossier.pk).update(status=Dossier.Status.NEW)
    locked = api_as(applicant).delete(path)
    assert (locked.status_code, locked.json()["code"]) == (409, "dossier_locked")
    kept = [str(pk) for pk in Attachment.objects.values_list("pk", flat=True)]
    assert kept == [uploaded.json()["id"]]
