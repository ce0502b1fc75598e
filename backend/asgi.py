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
from django.utils.module_loading import import_string  # noqa: E402

from backend.body_limits import BodyLimitMiddleware  # noqa: E402

# Named by path, like the routers in backend/urls.py: `backend` is the bottom
# layer and imports no app above it; the entry point only names what it serves.
WEBSOCKET_ROUTES = "tracking.routing.websocket_urlpatterns"
websocket_urlpatterns = import_string(WEBSOCKET_ROUTES)

# Origin and authentication are checked by the consumer itself: browsers must
# send an allowed Origin, native apps send none and present a one-time ticket.

application = ProtocolTypeRouter(
    {
        # Body limits are enforced while the body arrives, before Django reads it.
        "http": BodyLimitMiddleware(django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Last: everything a request needs is loaded; the garbage collector's full
# collections no longer walk it (backend/gc_freeze.py).
from backend.gc_freeze import freeze_startup_objects  # noqa: E402

freeze_startup_objects()
