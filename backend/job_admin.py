"""The job queue in the admin: procrastinate's job admin, its actions gated and logged.

procrastinate's admin (`procrastinate.contrib.django.admin`, as of procrastinate 3.10)
offers Retry, Cancel and Abort to anyone who may see the job list: the actions declare
no permission, so Django runs them for the "view" permission alone, and its
`has_change_permission` says no to everyone, superusers included (the rows are never
edited in a form). Retrying, cancelling or aborting jobs is a change: here it needs the
change permission of jobs (`procrastinate.change_procrastinatejob`, which superusers
hold), checked where Django offers the action and again when it runs. Each job an
action changes is written to the admin's log (a LogEntry under the staff member's id:
the job's history page, "Recent actions"), with what changed.

Only the actions are replaced, each running procrastinate's own (relied on: the admin
class `ProcrastinateJobAdmin` with the methods `retry`, `cancel` and `abort`: a version
without them fails at import, loudly). Seeing the jobs is procrastinate's rule unchanged
(the "view" permission).

A job's arguments hold personal data (an SMS notice's number and text): staff other
than superusers see the arguments a task declares personal (`backend.jobs.personal_args`)
masked, on the list, the job's page and its history, wherever the job is written out
(its text, `str(job)`, is the call with its arguments: the page's title, the
breadcrumbs, the action checkbox's label). The jobs a page shows are masked once
loaded, in memory (`masked_job`): procrastinate's models are read-only, nothing is
saved. Every argument of a job whose task is not registered (any more) is withheld,
its personal arguments unknown. Superusers see them masked on the list too (a list is
no look-up, and one record per row shown would drown the trail) and whole on the job's
page and its history: opening a job that has personal arguments is an audited look-up
of the citizen they belong to (`settings.JOB_ADMIN_LOOK_UP`, in the accounts app, which
this one may not import), as opening any citizen's row is.

A job's locks (`lock`, `queueing_lock`) are withheld from them too: they see that a job
has one ("•••", on its page and in the list's summary), not what it says. Today's locks
hold no personal data (`postal-booking-<booking id>`, whose id the job's arguments show
anyway, and the constant `dossiers.scan_deadlines`), but a lock is free text built
where the job is deferred, which no declaration covers as `personal_args` covers
arguments: a key built from a number or a citizen ID would reach every viewer whole.
Superusers, who diagnose a job stuck behind a lock, see them.

Nor do they filter jobs by anything but the filters the list offers (status, queue,
task, scheduled time, priority): Django's admin accepts in the URL a filter on any
field of the model itself (it checks only lookups across a relation against the filters
offered), so `?args__to__startswith=+8491` would tell a number digit by digit and
`?lock__startswith=` a lock character by character; any other lookup is refused (400)
to them. Superusers filter by any field but the arguments (masked on their list too: a
filter by a number would be a look-up without a record). Task names, ids, statuses,
queues and the other arguments stay readable, to diagnose a job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.module_loading import import_string
from procrastinate.contrib.django import app as job_app
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateJob

from backend.jobs import PERSONAL_ARGS, withheld

logger = logging.getLogger(__name__)

CHANGE_JOBS = "procrastinate.change_procrastinatejob"

# What a job action may change, as recorded: status, abort requested, attempts.
State = tuple[str, bool, int]
Upstream = Callable[[ProcrastinateJobAdmin, HttpRequest, QuerySet[ProcrastinateJob]], Any]


def _states(jobs: QuerySet[ProcrastinateJob]) -> dict[int, tuple[str, State]]:
    """Each job's task name and state."""
    rows = jobs.values_list("pk", "task_name", "status", "abort_requested", "attempts")
    return {pk: (task, (status, abort, attempts)) for pk, task, status, abort, attempts in rows}


def _describe(name: str, before: State, after: State) -> str:
    changes = []
    if before[0] != after[0]:
        changes.append(f"status {before[0]} → {after[0]}")
    if before[1] != after[1]:
        changes.append("abort requested" if after[1] else "abort request cleared")
    if before[2] != after[2]:
        changes.append(f"attempts {before[2]} → {after[2]}")
    return f"{name} (admin action): {', '.join(changes)}"


def masked_args(task_name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A job's arguments as staff other than superusers see them: those its task
    declares personal masked, all of them withheld if its task is not registered."""
    if task_name not in job_app.tasks:
        return {name: withheld(value) for name, value in args.items()}
    masks = PERSONAL_ARGS.get(task_name, {})
    shown = dict(args)
    for name, mask in masks.items():
        if name in shown:
            value = shown[name]
            shown[name] = mask(value) if isinstance(value, str) else withheld(value)
    return shown


def personal_values(task_name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A job's personal arguments that hold something: those its task declares, every
    one of a task not registered (what they are is unknown)."""
    personal = args if task_name not in job_app.tasks else PERSONAL_ARGS.get(task_name, {})
    return {name: args[name] for name in personal if args.get(name)}


def masked_job(job: ProcrastinateJob, *, locks: bool = True) -> ProcrastinateJob:
    """`job` with its arguments masked and (with `locks`) its locks withheld, to show
    (never saved: the model is read-only). A job without a lock still shows none."""
    job.args = masked_args(job.task_name, job.args)
    if locks:
        job.lock = withheld(job.lock) if job.lock else None
        job.queueing_lock = withheld(job.queueing_lock) if job.queueing_lock else None
    return job


class JobAdmin(ProcrastinateJobAdmin):
    actions = ["retry", "cancel", "abort"]
    # procrastinate's filters but its locks': a sidebar listing every lock of the table
    # (one per booking sent, `postal-booking-<id>`) serves no diagnosis and would show
    # whatever a lock may one day be made of to everyone who sees the list. Superusers
    # still see a job's locks on its page and filter by them in the URL (`?lock=`).
    list_filter = [
        name for name in ProcrastinateJobAdmin.list_filter if name not in ("lock", "queueing_lock")
    ]

    def masks_args(self, request: HttpRequest) -> bool:
        return not request.user.is_superuser

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> ProcrastinateJob | None:
        # The job's page, its history: whatever the page writes of it is masked.
        job = super().get_object(request, object_id, from_field)
        if job is not None and self.masks_args(request):
            masked_job(job)
        return job

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        if request.method != "POST":  # refused: jobs are never edited in a form
            self.record_look_up(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        # Its title is the job, written out with its arguments.
        self.record_look_up(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def record_look_up(self, request: HttpRequest, object_id: str) -> None:
        """A superuser opening a job whose personal arguments hold something reads them
        whole: an audited look-up (others see them masked, nothing to record)."""
        if self.masks_args(request):
            return
        job = self.get_object(request, unquote(object_id))
        if job is None or not self.has_view_or_change_permission(request, job):
            return  # Django refuses the page or sends to the list: nothing shown
        if personal := personal_values(job.task_name, job.args):
            import_string(settings.JOB_ADMIN_LOOK_UP)(request, personal)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # The page's rows, loaded here (with their events, as the page would) and shown
        # from this list: personal arguments masked to everyone, superusers included (a
        # list is no look-up); locks withheld from all but superusers.
        locks = self.masks_args(request)
        changelist.result_list = [masked_job(job, locks=locks) for job in changelist.result_list]
        return changelist

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # Django's own rule lets any field of the job through (args, lock, id...): to
        # staff who see a field masked, a filter on it would read it out. Everyone sees
        # the arguments masked on the list.
        field = lookup.split(LOOKUP_SEP)[0]
        masked = request is None or self.masks_args(request) or field == "args"
        if masked and field not in self.offered_filters(request):
            return False
        return super().lookup_allowed(lookup, value, request)

    def offered_filters(self, request: HttpRequest | None) -> set[str]:
        """The fields the list offers a filter on (a field's name each: the lookups of
        their filters, a choice's `status__exact`, a date's `scheduled_at__gte` and
        `__lt`, start there). A filter of another kind would be refused to staff until
        added here: the test following every offered filter's links says so."""
        filters = self.get_list_filter(request) if request is not None else self.list_filter
        return {item.split(LOOKUP_SEP)[0] for item in filters if isinstance(item, str)}

    @admin.display(description="Args")
    def pretty_args(self, instance: ProcrastinateJob) -> str:
        # procrastinate's, with the text as it is: a masked number ("+8491•••5678") or a
        # Vietnamese text, not \u escapes.
        indent = 2 if len(instance.args) > 1 or len(str(instance.args)) > 30 else None
        pretty_json = json.dumps(instance.args, indent=indent, ensure_ascii=False)
        if len(pretty_json) > 2000:
            pretty_json = pretty_json[:2000] + "..."
        return format_html('<pre style="margin: 0">{}</pre>', pretty_json)

    def has_change_jobs_permission(self, request: HttpRequest) -> bool:
        # The rows are never edited in a form (procrastinate's has_change_permission
        # says no), but retrying, cancelling or aborting a job changes it: "view" is
        # not enough.
        return request.user.has_perm(CHANGE_JOBS)

    def _run(
        self,
        request: HttpRequest,
        queryset: QuerySet[ProcrastinateJob],
        upstream: Upstream,
        name: str,
    ) -> None:
        # Checked again here: an action runs for whoever reaches the change list.
        if not self.has_change_jobs_permission(request):
            raise PermissionDenied
        with transaction.atomic():
            # The selected jobs are locked while the action runs (a worker skips them,
            # or waits to finish one), so what changed is what the action did.
            locked = ProcrastinateJob._default_manager.select_for_update().filter(
                pk__in=queryset.values("pk")
            )
            before = _states(locked.order_by("pk"))
            upstream(self, request, queryset)
            after = _states(ProcrastinateJob._default_manager.filter(pk__in=list(before)))
            content_type = ContentType.objects.get_for_model(ProcrastinateJob)
            changed = []
            for pk, (task, state) in before.items():
                new_state = after[pk][1]
                if new_state == state:
                    continue
                changed.append(pk)
                LogEntry.objects.create(
                    user_id=str(request.user.pk),  # signed in: it passed the permission check
                    content_type=content_type,
                    object_id=str(pk),
                    # The task's name, never str(job): that shows the arguments
                    # (phone numbers, texts of SMS).
                    object_repr=f"{task} #{pk}",
                    action_flag=CHANGE,
                    change_message=_describe(name, state, new_state),
                )
        logger.info("staff %s: %s changed job(s) %s", request.user.pk, name, changed)

    @admin.action(
        description=ProcrastinateJobAdmin.retry.short_description,  # type: ignore[attr-defined]
        permissions=["change_jobs"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[ProcrastinateJob]) -> None:
        self._run(request, queryset, ProcrastinateJobAdmin.retry, "Retry")

    @admin.action(
        description=ProcrastinateJobAdmin.cancel.short_description,  # type: ignore[attr-defined]
        permissions=["change_jobs"],
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[ProcrastinateJob]) -> None:
        self._run(request, queryset, ProcrastinateJobAdmin.cancel, "Cancel")

    @admin.action(
        description=ProcrastinateJobAdmin.abort.short_description,  # type: ignore[attr-defined]
        permissions=["change_jobs"],
    )
    def abort(self, request: HttpRequest, queryset: QuerySet[ProcrastinateJob]) -> None:
        self._run(request, queryset, ProcrastinateJobAdmin.abort, "Abort")


admin.site.unregister(ProcrastinateJob)
admin.site.register(ProcrastinateJob, JobAdmin)
