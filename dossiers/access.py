"""Who may see which dossier. Handlers never fetch a dossier any other way."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db import connection, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, JSONField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.sql.compiler import SQLCompiler
from django.utils.translation import gettext_lazy as _

from auth.access import MANAGERS, identity_level
from auth.models import Membership, User
from backend.any_of import AnyOf
from backend.errors import NotFound, PermissionDenied
from backend.joined_read import JoinedRead
from dossiers.models import RESULTS_PREFIX, Attachment, Dossier, ResultDocument

M = TypeVar("M", bound=models.Model)

# What `dossiers.api.dossier_out` shows, and nothing more: a dossier read is the
# app's most frequent request (status polling), and every column costs on it.
READ_FIELDS = (
    *("id", "code", "status", "channel", "form_data", "version", "created_at", "updated_at"),
    *("applicant", "organisation", "procedure", "agency"),
    *("submitted_at", "appointment_at", "finished_at", "handed_over_at"),
    *("satisfaction", "satisfaction_comment", "rated_at"),
)
READ_RELATED = {
    "procedure": ("id", "code", "name", "name_en", "version"),
    "agency": ("id", "code", "name", "name_en"),
    "applicant": ("id", "full_name"),
}


def visible_dossiers(user: User) -> QuerySet[Dossier]:
    """The applicant's own dossiers and those of organisations they belong to."""
    return Dossier.objects.filter(visible_to(user))


def visible_to(user: User, path: str = "") -> Q:
    """The condition of `visible_dossiers` on a dossier (`path`: how to reach it from
    another model, e.g. "dossier__" from its events).

    No join to memberships (which needed a DISTINCT) and no `IN (subquery)` in the
    OR (a sequential scan of every dossier): the organisations come as an array
    (`AnyOf`), so the OR is two index scans, on the applicant's and on the
    organisations' dossiers (see docs/performance.md, Queries at scale).
    """
    organisations = Membership.objects.filter(user=user).values("organisation_id")
    return Q(**{f"{path}applicant": user}) | Q(AnyOf(f"{path}organisation_id", organisations))


def handled_by_officer(user: User, dossiers: QuerySet[Dossier]) -> QuerySet[Dossier]:
    """`dossiers` narrowed to those of the agencies `user` works for as an officer (all
    of them for a superuser): the one rule of every admin page."""
    if user.is_superuser:
        return dossiers
    return dossiers.filter(agency__officers__user_id=user.pk)


def officer_dossiers(user: User) -> QuerySet[Dossier]:
    """The dossiers an agency officer handles in the admin: the submitted dossiers of
    the agencies they work for (every submitted one for a superuser)."""
    return handled_by_officer(user, Dossier.objects.exclude(status=Dossier.Status.DRAFT))


def officer_rows(user: User, rows: QuerySet[M], path: str) -> QuerySet[M]:
    """The rows of another app's admin that belong to a dossier `user` handles as an
    officer (`path` leads from the row to its dossier, e.g. "booking__dossier"); all of
    them for a superuser. Rows of no dossier are for superusers only."""
    if user.is_superuser:
        return rows
    return rows.filter(**{f"{path}__in": officer_dossiers(user).values("pk")})


def first_visible(user: User, rows: QuerySet[Dossier], count: int) -> QuerySet[Dossier]:
    """`rows` (ordered, filtered, after the cursor) narrowed to what `user` may see,
    for reading the first `count` of them: the list route's page.

    `visible_to` is right but reads every dossier of the user's organisations (a
    BitmapOr, then a sort for the first page): thousands for a large organisation.
    On PostgreSQL the page is instead merged from one top-`count` per source, each
    read in order from its own index: the applicant's dossiers on
    (applicant, -created_at), and each organisation's on (organisation, -created_at)
    through a LATERAL over the user's organisations. The outer query reads those few
    ids by primary key and orders them: the first `count` of the union of the
    sources' first `count` are the first `count` of the whole. Same rows, same order.
    """
    if connection.vendor != "postgresql":
        return rows.filter(visible_to(user))
    own_sql, own_params = rows.filter(applicant=user).values("pk")[:count].query.sql_with_params()
    organisation_rows = rows.filter(organisation_id=RawSQL("o.organisation_id", ()))  # nosec B611
    per_sql, per_params = organisation_rows.values("pk")[:count].query.sql_with_params()
    organisations = Membership.objects.filter(user=user).values("organisation_id")
    member_sql, member_params = organisations.query.sql_with_params()
    column = (
        f"{connection.ops.quote_name(Dossier._meta.db_table)}.{connection.ops.quote_name('id')}"
    )
    # Only SQL compiled by the ORM from the model's fields, with parameters.
    condition = RawSQL(  # noqa: S611  # nosec B611
        f"{column} = ANY(ARRAY(({own_sql}) UNION ALL "  # noqa: S608  # nosec B608
        f"SELECT x.pk FROM unnest(ARRAY({member_sql})) AS o(organisation_id) "
        f"CROSS JOIN LATERAL ({per_sql}) x))",
        (*own_params, *member_params, *per_params),
        output_field=BooleanField(),
    )
    return rows.filter(condition)


def access_dossier(user: User, dossier_id: uuid.UUID | str, *, for_update: bool = False) -> Dossier:
    """The dossier if `user` may see it; 404 otherwise (never 403: no existence leak).

    With `for_update`, the row is locked until the transaction ends (call it
    inside `transaction.atomic()`); that serialises state changes of one dossier.
    """
    queryset = Dossier.objects.select_related("procedure", "agency", "applicant")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    return _visible_one(user, queryset, dossier_id)


# A change of a dossier's papers (an upload, a removal, the wallet's attach): its row
# lock with what the checks, the new attachment and its `can_remove` read, and the
# version the change bumps (the rest is deferred), in a statement compiled once
# (prepared with the pool), no joins.
_LOCKED_FOR_PAPERS = JoinedRead(
    Dossier, ("status", "applicant", "organisation", "procedure", "version"), for_update=True
)


def lock_for_papers(user: User, dossier_id: uuid.UUID | str) -> Dossier:
    """`access_dossier(..., for_update=True)` for adding or removing a paper: the same
    checks (404 unless `user` may see it), but only `status`, `applicant`,
    `organisation`, `procedure` (its id) and `version` are loaded, no related rows.
    Inside `transaction.atomic()`."""
    return _visible_one(user, _LOCKED_FOR_PAPERS, dossier_id)


def read_dossier(user: User, dossier_id: uuid.UUID | str) -> Dossier:
    """`access_dossier` for showing a dossier (`dossiers.api.dossier_out`), in one query.

    Loads only `READ_FIELDS` and `READ_RELATED` (other fields are deferred), plus
    `attachment_codes`: the document code of each of its attachments (a list, or
    None when there are none). Read-only: never save it.
    """
    return _visible_one(user, _READABLE, dossier_id)


def _visible_one(
    user: User, reader: QuerySet[Dossier] | JoinedRead[Dossier], dossier_id: uuid.UUID | str
) -> Dossier:
    try:
        key = uuid.UUID(str(dossier_id))
    except ValueError as exc:
        raise NotFound() from exc
    # One primary-key read (get(): no ORDER BY to compile), then the same rule as
    # `visible_dossiers` checked on the row: cheaper to plan and run than the
    # subquery on every read (see bench/).
    try:
        dossier = reader.get(pk=key)
    except Dossier.DoesNotExist as exc:
        raise NotFound() from exc
    if not _may_see(user, dossier):
        raise NotFound()
    return dossier


def _may_see(user: User, dossier: Dossier) -> bool:
    if dossier.applicant_id == user.pk:
        return True
    return role_in_organisation(user, dossier) is not None


# Where `role_in_organisation` keeps what it read, on the dossier instance itself.
_ROLES = "_roles_in_organisation"


def role_in_organisation(user: User, dossier: Dossier) -> str | None:
    """`user`'s role in the dossier's organisation; None for a dossier of no organisation
    or someone who is not a member.

    Read once per dossier instance and user, then kept on the instance: seeing the
    dossier and then `may_act_for` on each of a page of its papers (`can_remove`) ask
    the same question, and the answer is one query, not one per row. An instance lives
    for one request or one action (read again under its lock for every change), so a
    role changed meanwhile is seen by the next one.
    """
    if dossier.organisation_id is None:
        return None
    known: dict[Any, str | None] = dossier.__dict__.setdefault(_ROLES, {})
    if user.pk not in known:
        known[user.pk] = (
            Membership.objects.filter(organisation_id=dossier.organisation_id, user=user)
            .values_list("role", flat=True)
            .first()
        )
    return known[user.pk]


def may_act_for(user: User, dossier: Dossier, *, made_by_id: uuid.UUID | None = None) -> bool:
    """Whether `user` may act for others on `dossier` (a dossier they can see): take
    back what someone did on it (cancel a booking, remove a paper, cancel a payment:
    `made_by_id` is who did it) or speak in its applicant's name (submit, send the
    supplement, rate, delete the draft).

    Whoever did the thing, the applicant, and the owners and admins of the dossier's
    organisation may. Its other members see the dossier and may add to it (papers, a
    booking, a payment), but never undo a colleague's work or speak for the applicant.
    """
    if user.pk in (dossier.applicant_id, made_by_id):
        return True
    return role_in_organisation(user, dossier) in MANAGERS


def require_may_act_for(
    user: User,
    dossier: Dossier,
    *,
    code: str = "not_applicant",
    message: Any = None,
    made_by_id: uuid.UUID | None = None,
) -> None:
    """403 `code` unless `may_act_for`. Call after the 404 of `access_dossier` (or of the
    access helper that found the thing): only someone who may see it learns it exists."""
    if not may_act_for(user, dossier, made_by_id=made_by_id):
        raise PermissionDenied(
            code,
            message
            if message is not None
            else _(
                "Only the dossier's applicant and the organisation's owners and "
                "administrators can do this."
            ),
        )


# Marks, in `AttachmentCodes`, the code of a paper that is a result revoked since it was
# attached (`dossiers.results.result_revoked_at`); no document code has it (a slug).
REVOKED_MARK = "!"


class AttachmentCodes(Func):
    """The document codes of a dossier's attachments as a JSON array (one per file),
    `REVOKED_MARK` before the code of a revoked result's paper.

    A correlated subquery written out: the ORM's `Subquery` of an aggregate costs
    more to compile than the separate query it replaces. Only a paper stored as a
    result probes the results' digest index.
    """

    output_field = JSONField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        *,
        aggregate: str = "JSONB_AGG",  # jsonb: decoded like any JSONField column
        **extra_context: Any,
    ) -> Any:
        quote = connection.ops.quote_name
        meta = Attachment._meta
        table = quote(meta.db_table)
        code = quote(meta.get_field("document_code").column)
        dossier = quote(meta.get_field("dossier").column)
        file, sha256 = quote("file"), quote("sha256")
        results = quote(ResultDocument._meta.db_table)
        revoked_at = quote(ResultDocument._meta.get_field("revoked_at").column)
        # Only the models' own table and column names, quoted, and constants: nothing
        # from a request. CASE tries its conditions in order: a paper not stored as a
        # result never probes the results.
        prefix = f"substr(a.{file}, 1, {len(RESULTS_PREFIX)})"
        marked = (
            f"CASE WHEN {prefix} <> '{RESULTS_PREFIX}' "  # noqa: S608
            f"THEN a.{code} WHEN EXISTS (SELECT 1 FROM {results} r WHERE r.{sha256} = "
            f"a.{sha256} AND r.{file} = a.{file} AND r.{revoked_at} IS NOT NULL) "
            f"THEN '{REVOKED_MARK}' || a.{code} ELSE a.{code} END"  # nosec B608
        )
        template = (
            f"(SELECT {aggregate}({marked}) FROM {table} a WHERE a.{dossier} = %(expressions)s)"  # noqa: S608  # nosec B608
        )
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> Any:
        return self.as_sql(compiler, connection, aggregate="JSON_GROUP_ARRAY", **extra_context)


_READABLE = JoinedRead(
    Dossier,
    READ_FIELDS,
    related=READ_RELATED,
    annotations={"attachment_codes": AttachmentCodes(F("pk"))},
)


def require_identity_level(user: User, level: int) -> None:
    """Procedures may need a national identity (VNeID) of at least `level`: a 403 with
    `identity_level_too_low` tells the app to ask for a national sign-in at that level."""
    if level <= 0:
        return
    current = identity_level(user)
    if current < level:
        raise PermissionDenied(
            "identity_level_too_low",
            _(
                "This procedure needs a national identity (VNeID) of level %(level)s. "
                "Sign in with VNeID."
            )
            % {"level": level},
            details={"required_level": level, "identity_level": current, "sign_in": "national"},
        )
