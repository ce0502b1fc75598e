"""State changes of notifications: devices, the inbox, preferences, fan-out of events."""

from __future__ import annotations

import datetime as dt
import json
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from auth.actions import support
from auth.models import DeviceSession, User
from backend.any_of import array
from backend.jobs import defer_many
from dossiers.audience import recipients_for
from dossiers.models import Dossier, DossierEvent
from notifications.delivery import (
    create_deliveries,
    deactivate_devices,
    queue_deliveries,
    sendable_devices,
    session_ending_notice_devices,
)
from notifications.models import Delivery, Device, Notification, Preference
from notifications.templates import (
    ACCOUNT_TEMPLATES,
    TEST_TEMPLATE,
    Rendered,
    Template,
    render,
    render_context,
    render_sms,
    template_for,
)

logger = logging.getLogger(__name__)


# --- Devices ------------------------------------------------------------------------


def register_device(
    user: User,
    session: DeviceSession,
    *,
    token: str,
    platform: str,
    app_version: str = "",
    locale: str = "",
    installation_id: str = "",
) -> tuple[Device, bool]:
    """Register (or refresh) the FCM token of the app installation behind `session`.

    Returns the device and whether it is new. A token still active for another
    user moves to `user` (the phone changed hands); the installation's and the
    session's older tokens are retired, and so is the least recently seen device
    beyond DEVICE_MAX_PER_USER.
    """
    installation_id = installation_id or session.device_id
    for attempt in range(2):
        try:
            return _register(user, session, token, platform, app_version, locale, installation_id)
        except IntegrityError:
            # A twin request registered the same token between our read and insert.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _register(
    user: User,
    session: DeviceSession,
    token: str,
    platform: str,
    app_version: str,
    locale: str,
    installation_id: str,
) -> tuple[Device, bool]:
    now = timezone.now()
    with transaction.atomic():
        # One registration of a user at a time: the rules below (a token per
        # installation and per session, DEVICE_MAX_PER_USER) read the user's active
        # devices, and a twin registering another token for the same installation
        # (the app asks again when FCM rotates the token) cannot see our uncommitted
        # row: both would stay active and the phone would get every push twice.
        # NO KEY: rows referring to the user (sessions, inbox) are not held up.
        list(User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk"))
        device = Device.objects.select_for_update().filter(token=token, active=True).first()
        if device is not None and device.user_id != user.pk:
            deactivate_devices([device.pk], "moved_to_other_user")
            device = None
        created = device is None
        if device is None:
            device = Device(user=user, token=token)
        device.session = session
        device.platform = platform
        device.app_version = app_version
        device.locale = locale
        device.installation_id = installation_id
        device.last_seen_at = now
        device.save()
        replaced = (
            Device.objects.filter(user=user, active=True)
            .filter(Q(installation_id=installation_id) | Q(session=session))
            .exclude(pk=device.pk)
            .values_list("pk", flat=True)
        )
        deactivate_devices(replaced, "replaced")
        over_limit = (
            Device.objects.filter(user=user, active=True)
            .exclude(pk=device.pk)
            .order_by("-last_seen_at", "-pk")
            .values_list("pk", flat=True)[max(settings.DEVICE_MAX_PER_USER - 1, 0) :]
        )
        deactivate_devices(list(over_limit), "over_limit")
    return device, created


def remove_device(device: Device) -> None:
    """The user removed this device: it gets no more pushes."""
    deactivate_devices([device.pk], "removed_by_user")


# --- Inbox ----------------------------------------------------------------------------


def mark_read(notification: Notification) -> Notification:
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
    return notification


def mark_all_read(user: User, *, up_to_id: int | None = None) -> int:
    """Mark the user's unread entries read (only those up to `up_to_id`, if given)."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if up_to_id is not None:
        unread = unread.filter(pk__lte=up_to_id)
    return unread.update(read_at=timezone.now())


# --- Preferences -------------------------------------------------------------------------


def preference_for(user: User) -> Preference:
    """The user's saved preferences, or the defaults (unsaved) if they never changed them."""
    return Preference.objects.filter(user=user).first() or Preference(user=user)


def update_preferences(user: User, changes: dict[str, Any]) -> Preference:
    with transaction.atomic():
        preference, _ = Preference.objects.select_for_update().get_or_create(user=user)
        for name, value in changes.items():
            setattr(preference, name, value)
        zoneinfo.ZoneInfo(preference.timezone)  # validated by the schema; fail loudly here
        preference.save()
    return preference


# --- Fan-out of dossier events ----------------------------------------------------------


def _context(dossier: Dossier, event: DossierEvent, language: str) -> dict[str, str]:
    english = language == "en"
    return render_context(
        language=language,
        code=dossier.code or "",
        procedure=(dossier.procedure.name_en if english else "") or dossier.procedure.name,
        agency=(dossier.agency.name_en if english else "") or dossier.agency.name,
        appointment=dossier.appointment_at,
        message=event.message,
        data=event.data,
    )


def _deep_link(event: DossierEvent, dossier: Dossier, template: Template) -> dict[str, str]:
    return {
        "type": event.type,
        "category": str(template.category),
        "urgent": "true" if template.urgent else "false",
        "event_id": str(event.pk),
        "dossier_id": str(dossier.pk),
        "dossier_code": dossier.code or "",
    }


# Rows per INSERT of a fan-out (inbox entries, deliveries) and send jobs per INSERT
# into the job queue: a fan-out to a province's audience is a few statements, not one
# per recipient. (Django lowers it further where the database needs it: SQLite.)
FAN_OUT_INSERT_ROWS = 1000


def notify_event(event_id: int) -> int:
    """Inbox entries for every recipient of a dossier event, and their pushes.

    Runs as the EVENT_SUBSCRIBERS job. Each recipient (dossiers.audience) gets one
    inbox entry in their language; their sendable devices get one delivery each,
    deferred now, or at the end of their quiet hours for non-urgent events. An
    urgent event for someone with no device to push to gets an SMS instead. The
    person who caused the event (a citizen's own action) gets the entry, already
    read, and no push. Running twice creates nothing twice: the event's row is
    locked first and an event that has entries is done (the unique constraint on
    user and event stands behind that).

    Set-based: a fixed number of queries whatever the audience (the recipients,
    their preferences and devices read once; the texts rendered once per language;
    entries, deliveries, send jobs and SMS jobs inserted FAN_OUT_INSERT_ROWS at a
    time), in one transaction, so the send jobs start when it commits.
    """
    with transaction.atomic():
        event = (
            DossierEvent.objects.select_for_update(of=("self",))
            .select_related("dossier__procedure", "dossier__agency")
            .filter(pk=event_id)
            .first()
        )
        if event is None or Notification.objects.filter(event=event).exists():
            return 0
        template = template_for(event.type)
        if template is None:
            logger.info("event type %s has no notification", event.type)
            return 0
        dossier = event.dossier
        users = list(
            User.objects.filter(pk__in=recipients_for(dossier), is_active=True)
            .only("pk", "language")
            .order_by("pk")
        )
        if not users:
            return 0
        user_ids = [user.pk for user in users]
        preferences = {p.user_id: p for p in Preference.objects.filter(user_id__in=user_ids)}
        default_preference = Preference()
        devices: dict[Any, list[int]] = defaultdict(list)
        for device_id, user_id in (
            sendable_devices()
            .filter(user_id__in=user_ids)
            .order_by("pk")
            .values_list("pk", "user_id")
        ):
            devices[user_id].append(device_id)
        now = timezone.now()
        texts: dict[str, Texts] = {}
        entries: list[tuple[Any, str]] = []  # (user, language)
        sms_pending: set[Any] = set()  # the users who get the fallback SMS instead
        # Per user: the devices the entry is pushed to and when (None: now).
        pushes: dict[Any, tuple[list[int], dt.datetime | None]] = {}
        for user in users:
            if user.language not in texts:
                context = _context(dossier, event, user.language)
                sms_text = render_sms(template, user.language, context) if template.urgent else ""
                texts[user.language] = Texts(render(template, user.language, context), sms_text)
            entries.append((user.pk, user.language))
            preference = preferences.get(user.pk, default_preference)
            if event.actor_user_id != user.pk and preference.allows(template.category):
                if devices[user.pk]:
                    # A held row says when it may go (the send job refuses it before
                    # then), so a push for an earlier event of the dossier knows this
                    # one is not due yet.
                    not_before = None if template.urgent else preference.quiet_hours_end(now)
                    pushes[user.pk] = (devices[user.pk], not_before)
                elif template.urgent and texts[user.language].sms:
                    sms_pending.add(user.pk)
        entry_of = _create_entries(event, template, texts, entries, sms_pending, now)
        deliveries = [
            (entry_of[user_id], device_id, not_before)
            for user_id, (device_ids, not_before) in pushes.items()
            for device_id in device_ids
        ]
        pending = create_deliveries(deliveries, batch_size=FAN_OUT_INSERT_ROWS)
        for not_before, ids in pending.items():
            queue_deliveries(ids, not_before=not_before, spread=settings.WORKER_CONCURRENCY)
        sms = sorted(entry_of[user_id] for user_id in sms_pending)
        if sms:
            defer_many("notifications.send_fallback_sms", [{"notification_id": pk} for pk in sms])
        return len(users)


@dataclass(frozen=True)
class Texts:
    """What an event's entry says in one language."""

    entry: Rendered
    sms: str


# The inbox entries of an event's fan-out, in the order of `entries`, `FAN_OUT_INSERT_ROWS`
# a statement (PostgreSQL). The texts go once per language, and each row names its
# language by its place among them; the entry of the person who caused the event is
# read, those of the users whose pushes fall back to SMS are pending. Only the model's
# table name goes into the SQL; the values travel as parameters.
_CREATE_ENTRIES_SQL = (
    "INSERT INTO {table} (user_id, event_id, dossier_id, type, category, urgent, title, body, "
    "sms_text, data, created_at, read_at, sms_status) "
    "SELECT v.user_id, %s, %s, %s, %s, %s, (%s::text[])[v.language], (%s::text[])[v.language], "
    "(%s::text[])[v.language], %s::jsonb, %s, CASE WHEN v.user_id = %s::uuid THEN %s END, "
    "CASE WHEN v.user_id = ANY(%s::uuid[]) THEN %s ELSE %s END "
    "FROM unnest(%s::uuid[], %s::int[]) WITH ORDINALITY AS v(user_id, language, n) "
    "ORDER BY v.n "
    "RETURNING id, user_id"
)


def _create_entries(
    event: DossierEvent,
    template: Template,
    texts: dict[str, Texts],
    entries: list[tuple[Any, str]],
    sms_pending: set[Any],
    now: dt.datetime,
) -> dict[Any, int]:
    """Insert the inbox entries of `event` for `entries` (user, language); their ids
    by user. (`bulk_create` of 1,000 entries made an instance of each, prepared its 14
    fields one by one and had psycopg escape every text of every row: half of a
    fan-out's CPU. The embedded default, SQLite, still uses it.)"""
    link = _deep_link(event, event.dossier, template)
    if connection.vendor != "postgresql":
        made = Notification.objects.bulk_create(
            [
                Notification(
                    user_id=user_id,
                    event=event,
                    dossier=event.dossier,
                    type=event.type,
                    category=template.category,
                    urgent=template.urgent,
                    title=texts[language].entry.title,
                    body=texts[language].entry.body,
                    data=link,
                    read_at=now if event.actor_user_id == user_id else None,
                    sms_text=texts[language].sms,
                    sms_status=Notification.SmsStatus.PENDING
                    if user_id in sms_pending
                    else Notification.SmsStatus.NONE,
                )
                for user_id, language in entries
            ],
            batch_size=FAN_OUT_INSERT_ROWS,
        )
        return {entry.user_id: entry.pk for entry in made}
    languages = list(texts)
    place = {language: index for index, language in enumerate(languages, start=1)}
    sql = _CREATE_ENTRIES_SQL.format(table=connection.ops.quote_name(Notification._meta.db_table))
    created: dict[Any, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(entries), FAN_OUT_INSERT_ROWS):
            batch = entries[start : start + FAN_OUT_INSERT_ROWS]
            cursor.execute(
                sql,
                [
                    event.pk,
                    event.dossier_id,
                    event.type,
                    str(template.category),
                    template.urgent,
                    [texts[language].entry.title for language in languages],
                    [texts[language].entry.body for language in languages],
                    [texts[language].sms for language in languages],
                    json.dumps(link),
                    now,
                    event.actor_user_id,
                    now,
                    array(sorted(sms_pending)),
                    str(Notification.SmsStatus.PENDING),
                    str(Notification.SmsStatus.NONE),
                    array(user_id for user_id, _ in batch),
                    array(place[language] for _, language in batch),
                ],
            )
            created.update((user_id, pk) for pk, user_id in cursor.fetchall())
    return created


# --- Notices about the account -----------------------------------------------------------


def notify_account(user_id: str, *, kind: str, session_ids: list[str], reference: str = "") -> int:
    """An inbox entry about the account (e.g. `account.support_reset`) and its pushes.

    Runs as an ACCOUNT_NOTICE_SUBSCRIBERS job. The pushes go to the devices of
    `session_ids` (the sessions live before the change; a support reset revokes them
    in the same transaction: the delivery claim lets this notice type through).
    Security notices ignore preferences and quiet hours; the SMS was sent by the
    accounts app, so there is no fallback SMS. Returns the number of deliveries;
    running twice for the same `reference` creates nothing twice.
    """
    notice_type = f"account.{kind}"
    template = ACCOUNT_TEMPLATES.get(notice_type)
    if template is None:
        logger.info("account notice %s has no notification", notice_type)
        return 0
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            return 0
        data = {
            "type": notice_type,
            "category": str(template.category),
            "urgent": "true" if template.urgent else "false",
            "reference": reference,
        }
        if (
            reference
            and Notification.objects.filter(
                user=user, type=notice_type, data__reference=reference
            ).exists()
        ):
            return 0
        title, body = template.en if user.language == "en" else template.vi
        notification = Notification.objects.create(
            user=user,
            type=notice_type,
            category=template.category,
            urgent=template.urgent,
            title=title,
            body=body,
            data=data,
        )
        devices = list(session_ending_notice_devices(session_ids).filter(user=user).order_by("pk"))
        rows = Delivery.objects.bulk_create(
            [Delivery(notification=notification, device=d) for d in devices]
        )
        queue_deliveries([row.pk for row in rows])
        return len(rows)


# --- Support ------------------------------------------------------------------------------


def send_test_push(
    devices: Iterable[Device], *, staff: User, context: support.Context | None = None
) -> list[Notification]:
    """A test notification to each selected active device (support diagnostics), each
    one in the audit trail (staff wrote to the citizen's inbox and phone).

    Ignores preferences and quiet hours: staff and the citizen are testing now.
    """
    by_user: dict[Any, list[Device]] = defaultdict(list)
    for device in devices:
        if device.active:
            by_user[device.user_id].append(device)
    created = []
    with transaction.atomic():
        for user in User.objects.filter(pk__in=list(by_user)):
            title, body = TEST_TEMPLATE.en if user.language == "en" else TEST_TEMPLATE.vi
            notification = Notification.objects.create(
                user=user,
                type="test",
                category=TEST_TEMPLATE.category,
                title=title,
                body=body,
                data={"type": "test", "category": str(TEST_TEMPLATE.category), "urgent": "false"},
            )
            rows = Delivery.objects.bulk_create(
                [Delivery(notification=notification, device=d) for d in by_user[user.pk]]
            )
            queue_deliveries([row.pk for row in rows])
            support.record_staff_change(
                staff,
                user,
                context=context or support.Context(),
                on="notification",
                object_id=notification.pk,
                action="test_push_sent",
            )
            created.append(notification)
        logger.info("staff %s sent %s test push(es)", staff.pk, len(created))
    return created
