"""Bench-only ASGI module: the real application (backend.asgi) with a hello endpoint.

Served by `make bench` exactly like the Procfile's web command, with
DJANGO_SETTINGS_MODULE=bench.settings (production settings, URLconf bench.urls).
"""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from backend.asgi import application

__all__ = ["application"]
