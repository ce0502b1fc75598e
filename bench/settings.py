"""Bench-only settings: the production settings plus a URLconf with a hello endpoint."""

from backend.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
