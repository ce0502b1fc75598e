"""Background jobs of notifications (procrastinate tasks).

`fan_out_event` is listed in settings.EVENT_SUBSCRIBERS: `record_event` defers it
in the event's transaction, so a committed event always gets its notifications
and a rolled-back one never does.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app

from backend.jobs import RETRY_ON_INFRASTRUCTURE

QUEUE = "notifications"


@app.task(queue=QUEUE, name="notifications.fan_out_event", retry=RETRY_ON_INFRASTRUCTURE)
def fan_out_event(event_id: int) -> int:
    from notifications.actions import notify_event

    return notify_event(event_id)


@app.task(queue=QUEUE, name="notifications.account_notice", retry=RETRY_ON_INFRASTRUCTURE)
def account_notice(user_id: str, kind: str, session_ids: list[str], reference: str = "") -> int:
    """Listed in settings.ACCOUNT_NOTICE_SUBSCRIBERS (deferred by auth.actions.support)."""
    from notifications.actions import notify_account

    return notify_account(user_id, kind=kind, session_ids=session_ids, reference=reference)


@app.task(queue=QUEUE, name="notifications.send_pushes", retry=RETRY_ON_INFRASTRUCTURE)
def send_pushes_job(delivery_ids: list[int]) -> int:
    from notifications.delivery import send_pushes

    return send_pushes(delivery_ids)


@app.task(queue=QUEUE, name="notifications.send_fallback_sms", retry=RETRY_ON_INFRASTRUCTURE)
def send_fallback_sms_job(notification_id: int) -> bool:
    from notifications.delivery import send_fallback_sms

    return send_fallback_sms(notification_id)


@app.periodic(cron="*/5 * * * *")
@app.task(queue="maintenance", name="notifications.housekeeping", retry=RETRY_ON_INFRASTRUCTURE)
def housekeeping(timestamp: int) -> int:
    """Fail deliveries abandoned by a crashed worker; retire ended sessions' tokens."""
    from notifications.delivery import fail_stale_sending, retire_devices_of_ended_sessions

    return fail_stale_sending() + retire_devices_of_ended_sessions()


@app.periodic(cron=settings.PUSH_RECOVERY_CRON)
@app.task(
    queue="maintenance",
    name="notifications.recover_pushes",
    pass_context=True,
    retry=RETRY_ON_INFRASTRUCTURE,
)
async def recover_pushes(context: JobContext, timestamp: int) -> int:
    """After a worker died: retry its stalled jobs (every queue), requeue the push
    deliveries no job will send (see backend.recovery). A backstop of the check every
    `manage.py worker` runs every few seconds."""
    from backend.recovery import recover

    return await recover(context.app.job_manager)


@app.periodic(cron="41 3 * * *")
@app.task(queue="maintenance", name="notifications.prune_devices", retry=RETRY_ON_INFRASTRUCTURE)
def prune_devices(timestamp: int) -> int:
    from notifications.delivery import prune_devices as run

    return run()
