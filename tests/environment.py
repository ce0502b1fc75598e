"""Test defaults: the suite runs against real PostgreSQL and Redis, never SQLite.

Loaded as a pytest plugin (`-p tests.environment`) so it runs before
pytest-django reads the settings. Override with the same variables (for
example TEST_DATABASE_NAME and REDIS_URL=.../3 to run two suites side by side).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/citizen")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("JOBS_INLINE", "0")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SMS_BACKEND", "file")
os.environ.setdefault("PUSH_BACKEND", "file")
# A test's own transaction stays open while it waits on a fake or a subprocess.
os.environ.setdefault("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "300")
