"""ASGI entry point: HTTP through Django, WebSocket through channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

if settings.JOBS_INLINE:
    # The embedded default has no worker process: its jobs run on a thread of this one.
    from backend import embedded_queue

    embedded_queue.start()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from tracking.routing import websocket_urlpatterns  # noqa: E402

# Origin and authentication are checked by the consumer itself: browsers must
# send an allowed Origin, native apps send none and present a one-time ticket.

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
