"""Background jobs of notifications (procrastinate tasks).

`fan_out_event` is listed in settings.EVENT_SUBSCRIBERS: `record_event` defers it
in the event's transaction, so a committed event always gets its notifications
and a rolled-back one never does.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app

QUEUE = "notifications"


@app.task(queue=QUEUE, name="notifications.fan_out_event")
def fan_out_event(event_id: int) -> int:
    from notifications.actions import notify_event

    return notify_event(event_id)


@app.task(queue=QUEUE, name="notifications.account_notice")
def account_notice(user_id: str, kind: str, session_ids: list[str], reference: str = "") -> int:
    """Listed in settings.ACCOUNT_NOTICE_SUBSCRIBERS (deferred by auth.actions.support)."""
    from notifications.actions import notify_account

    return notify_account(user_id, kind=kind, session_ids=session_ids, reference=reference)


@app.task(queue=QUEUE, name="notifications.send_pushes")
def send_pushes_job(delivery_ids: list[int]) -> int:
    from notifications.delivery import send_pushes

    return send_pushes(delivery_ids)


@app.task(queue=QUEUE, name="notifications.send_fallback_sms")
def send_fallback_sms_job(notification_id: int) -> bool:
    from notifications.delivery import send_fallback_sms

    return send_fallback_sms(notification_id)


@app.periodic(cron="*/5 * * * *")
@app.task(queue="maintenance", name="notifications.housekeeping")
def housekeeping(timestamp: int) -> int:
    """Fail deliveries abandoned by a crashed worker; retire ended sessions' tokens."""
    from notifications.delivery import fail_stale_sending, retire_devices_of_ended_sessions

    return fail_stale_sending() + retire_devices_of_ended_sessions()


@app.periodic(cron=settings.PUSH_RECOVERY_CRON)
@app.task(queue="maintenance", name="notifications.recover_pushes", pass_context=True)
async def recover_pushes(context: JobContext, timestamp: int) -> int:
    """After a worker died: retry its stalled notification jobs, requeue the deliveries
    it had claimed but not handed to FCM (see notifications.delivery)."""
    from asgiref.sync import sync_to_async

    from notifications.delivery import recover_pushes as requeue

    manager = context.app.job_manager
    stalled = list(
        await manager.get_stalled_jobs(
            queue=QUEUE, seconds_since_heartbeat=settings.PUSH_STALLED_JOB_SECONDS
        )
    )
    for job in stalled:
        await manager.retry_job(job)
    return len(stalled) + await sync_to_async(requeue)()


@app.periodic(cron="41 3 * * *")
@app.task(queue="maintenance", name="notifications.prune_devices")
def prune_devices(timestamp: int) -> int:
    from notifications.delivery import prune_devices as run

    return run()
