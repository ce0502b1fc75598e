"""WebSocket routes (mounted by backend/asgi.py)."""

from django.urls import path

from tracking.consumers import EventStreamConsumer

websocket_urlpatterns = [
    path("ws/v1/events", EventStreamConsumer.as_asgi()),
]
