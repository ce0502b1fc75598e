"""The shape of a push: one FCM v1 message per (notification, device).

Every backend (FCM, file, console) sends exactly what `build_message` returns,
so the development outbox shows the payload a phone would get.

firebase-admin's encoder (which also validates) runs once per push's content, not
once per device: a push's `untargeted` message (a placeholder target) is kept on
it, its size is measured on that (`fit`), and `Push.to` gives the push to another
device with the same content and that encoding; `wire_message` sets the target.
(A send job encoded each push twice per device, once to measure it and once to send
it: a tenth of the worker's CPU per delivery.)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from django.conf import settings
from firebase_admin import messaging

from notifications.models import Category

ELLIPSIS = "…"
TARGET_PLACEHOLDER = "-"  # the encoder wants a target; the size leaves it out

# Android notification channels the app creates (documented in mobile_api_docs/push.md).
CHANNEL_URGENT = "action_required"
CHANNELS: dict[str, str] = {
    Category.STATUS_CHANGES: "dossier_updates",
    Category.ACTION_REQUESTS: CHANNEL_URGENT,
    Category.DELIVERY_UPDATES: "delivery_updates",
    Category.ANNOUNCEMENTS: "announcements",
}


@dataclass(frozen=True)
class Push:
    token: str
    title: str
    body: str
    data: dict[str, str]
    collapse_id: str  # one per dossier: the phone keeps only the latest state
    urgent: bool
    badge: int
    channel_id: str

    @cached_property
    def untargeted(self) -> dict[str, Any]:
        """The FCM v1 message of this push as firebase-admin encodes it, with a placeholder
        target (TARGET_PLACEHOLDER): everything but the token. Encoded once, kept; never
        changed (`wire_message` and `payload_size` copy it)."""
        return encode(build_message(replace(self, token=TARGET_PLACEHOLDER)))

    def to(self, token: str) -> Push:
        """This push for another device: the same content, and its encoding if made.

        (`dataclasses.replace` makes a push whose content may differ, so it keeps no
        encoding; only the target changes here, which `untargeted` leaves out.)"""
        push = replace(self, token=token)
        if "untargeted" in self.__dict__:
            push.__dict__["untargeted"] = self.__dict__["untargeted"]
        return push


def channel_for(category: str, urgent: bool) -> str:
    return CHANNEL_URGENT if urgent else CHANNELS.get(category, "dossier_updates")


def build_message(push: Push) -> messaging.Message:
    priority = "high" if push.urgent else "normal"
    with warnings.catch_warnings():
        # firebase-admin 7.7 deprecates `token` for Firebase installation ids (`fid`);
        # the apps register FCM registration tokens, which FCM v1 still targets.
        warnings.simplefilter("ignore", DeprecationWarning)
        return _message(push, priority)


def _message(push: Push, priority: str) -> messaging.Message:
    return messaging.Message(
        token=push.token,
        notification=messaging.Notification(title=push.title, body=push.body),
        data=dict(push.data),
        android=messaging.AndroidConfig(
            collapse_key=push.collapse_id,
            priority=priority,
            notification=messaging.AndroidNotification(
                tag=push.collapse_id, channel_id=push.channel_id
            ),
        ),
        apns=messaging.APNSConfig(
            headers={
                "apns-collapse-id": push.collapse_id,
                "apns-priority": "10" if push.urgent else "5",
                "apns-push-type": "alert",
            },
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    badge=push.badge,
                    thread_id=push.collapse_id,
                    sound="default" if push.urgent else None,
                )
            ),
        ),
        webpush=messaging.WebpushConfig(
            headers={"Urgency": priority, "Topic": push.collapse_id.rsplit("-", 1)[-1][:32]}
        ),
    )


def encode(message: messaging.Message) -> dict[str, Any]:
    """The JSON object FCM v1 receives as `message` (firebase-admin's own encoder)."""
    encoded: dict[str, Any] = messaging._MessagingService.encode_message(message)
    return encoded


def wire_message(push: Push) -> dict[str, Any]:
    """The JSON object FCM v1 receives as `message` for `push`: `encode(build_message(
    push))`, from the push's `untargeted` encoding. A push without a token is encoded
    whole, so that the encoder refuses it (ValueError) as it would."""
    if not push.token:
        return encode(build_message(push))
    return {**push.untargeted, "token": push.token}


def payload_size(push: Push) -> int:
    """Bytes of the message as FCM counts them: everything but the target token."""
    body = {key: value for key, value in push.untargeted.items() if key != "token"}
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())


def _shorten(text: str, keep: int) -> str:
    return text if keep >= len(text) else text[: max(keep, 0)].rstrip() + ELLIPSIS


def _with_text(push: Push, field: str, text: str) -> Push:
    return replace(push, body=text) if field == "body" else replace(push, title=text)


def fit(push: Push, limit: int | None = None) -> Push:
    """`push` with its body (then title) shortened until the payload fits `limit`.

    Never fails: a message that cannot fit even with empty texts is sent as small
    as it gets, and FCM's answer is recorded on the delivery.
    """
    limit = limit or settings.PUSH_PAYLOAD_MAX_BYTES
    if payload_size(push) <= limit:
        return push
    for field in ("body", "title"):
        text: str = getattr(push, field)
        if payload_size(_with_text(push, field, "")) > limit:
            push = _with_text(push, field, "")
            continue
        low, high = 0, len(text)  # the longest prefix that fits
        while low < high:
            middle = (low + high + 1) // 2
            if payload_size(_with_text(push, field, _shorten(text, middle))) <= limit:
                low = middle
            else:
                high = middle - 1
        shortened = _with_text(push, field, _shorten(text, low))
        return shortened if payload_size(shortened) <= limit else _with_text(push, field, "")
    return push
