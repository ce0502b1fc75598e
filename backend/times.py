"""The one way the API writes a moment: RFC 3339 in UTC, milliseconds, `Z`.

`2026-11-24T03:15:02.118Z`, everywhere: REST bodies (the JSON renderer of
backend.api), event `data` (the log, WebSocket frames, the timeline), WebSocket
`time`, push payloads. Business time (Asia/Ho_Chi_Minh) is for texts people read;
a client shows a moment in the user's zone. Dates without a time stay `YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder


def rfc3339(moment: dt.datetime) -> str:
    """`moment` (aware) as the API writes it."""
    if timezone.is_naive(moment):
        raise ValueError("a naive datetime has no place in the API")
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_or_none(moment: dt.datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


class ApiJSONEncoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime) and timezone.is_aware(o):
            return rfc3339(o)
        return super().default(o)


class ApiJSONRenderer(JSONRenderer):
    encoder_class = ApiJSONEncoder
