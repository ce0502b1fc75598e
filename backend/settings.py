"""Settings for the citizen backend: one place, read from the environment.

With no DATABASE_URL / REDIS_URL the project runs on an embedded default
(SQLite, in-memory channel layer, local-memory cache, jobs in the web process,
SMS and push written to files) so `make run` works on a bare machine.
Production (PRODUCTION=1) refuses the embedded backends and a default secret.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# --- Mode ---------------------------------------------------------------------
PRODUCTION = envbool("PRODUCTION", False)
DEBUG = envbool("DEBUG", not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when PRODUCTION=1.")

# Development only: the deploy checks below refuse it when PRODUCTION=1.
DEFAULT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105  # nosec B105
SECRET_KEY = env("SECRET_KEY", DEFAULT_SECRET_KEY)
# Old keys stay valid for verifying signatures while a new key is rolled out.
SECRET_KEY_FALLBACKS = envlist("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

# --- Applications -------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL")
DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
USING_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: requests and the in-process job worker write from several
    # threads. WAL lets readers go on while one writes; IMMEDIATE takes the write lock
    # at BEGIN (a deferred transaction upgrading to a writer fails at once when another
    # holds it); `timeout` is how long a writer waits for the lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if USING_POSTGRES:
    DATABASES["default"].setdefault("OPTIONS", {})
    # Fail fast when the database is unreachable instead of hanging requests.
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", envint("DATABASE_CONNECT_TIMEOUT", 3)
    )
    # Under ASGI every request runs its sync code in a thread of its own, so
    # DATABASE_CONN_MAX_AGE cannot keep a connection: a pool (psycopg_pool) can.
    if envbool("DATABASE_POOL", False):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": envint("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": envint("DATABASE_POOL_MAX_SIZE", 10),
            # Waiting for a free connection: as long as connecting may take.
            "timeout": envint("DATABASE_POOL_TIMEOUT", envint("DATABASE_CONNECT_TIMEOUT", 3)),
        }
    # The WebSocket stream sends an event only once every older write transaction
    # in the cluster has ended (tracking/stream.py): a session left idle inside a
    # transaction (a bug, or what a network cut leaves behind on the server's side
    # after a database outage) holds back every live update. The server ends such
    # a session after this many seconds (0: never).
    idle_in_transaction = envint("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 10)
    if idle_in_transaction > 0:
        DATABASES["default"]["OPTIONS"].setdefault(
            "options", f"-c idle_in_transaction_session_timeout={idle_in_transaction * 1000}"
        )
    if env("TEST_DATABASE_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}

# Migrations on a live database (README "Deploying"; backend/management/commands/
# migrate.py). On PostgreSQL `manage.py migrate` waits at most MIGRATION_LOCK_TIMEOUT_MS
# for a table's lock: a schema change queued behind a long transaction would otherwise
# queue every query of that table behind itself for as long. Then the migration rolls
# back and is tried again after a back-off (2 s, 4 s, 8 s, ... at most
# MIGRATION_LOCK_RETRY_MAX_WAIT_MS), MIGRATION_LOCK_RETRIES more times, before the
# command fails naming the long transactions. 0: no bound (Django's own migrate).
MIGRATION_LOCK_TIMEOUT_MS = max(0, envint("MIGRATION_LOCK_TIMEOUT_MS", 2000))
MIGRATION_LOCK_RETRIES = max(0, envint("MIGRATION_LOCK_RETRIES", 10))
MIGRATION_LOCK_RETRY_MAX_WAIT_MS = max(1, envint("MIGRATION_LOCK_RETRY_MAX_WAIT_MS", 10_000))

# The job queue lives in PostgreSQL. On the embedded SQLite default the same tasks
# go to procrastinate's in-memory queue, worked by a thread of the web process
# (backend/embedded_queue.py), once the transaction that deferred them commits.
JOBS_INLINE = envbool("JOBS_INLINE", not USING_POSTGRES)
if not JOBS_INLINE and not USING_POSTGRES and not PRODUCTION:
    raise ImproperlyConfigured("The job queue needs PostgreSQL: set DATABASE_URL.")

# The web and worker processes freeze what they load at startup out of the garbage
# collector's full collections (backend/gc_freeze.py): 110 ms pauses otherwise.
GC_FREEZE_AT_STARTUP = envbool("GC_FREEZE_AT_STARTUP", True)

INSTALLED_APPS = [
    "auth.apps.StaffAdminConfig",  # django.contrib.admin with the TOTP sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "backend.apps.BackendConfig",
    "auth.apps.AccountsConfig",
    "dossiers.apps.DossiersConfig",
    "tracking.apps.TrackingConfig",
    "notifications.apps.NotificationsConfig",
    "postal.apps.PostalConfig",
    "documents.apps.DocumentsConfig",
    "payments.apps.PaymentsConfig",
]
if not JOBS_INLINE:
    INSTALLED_APPS.insert(
        INSTALLED_APPS.index("backend.apps.BackendConfig"), "procrastinate.contrib.django"
    )

AUTH_USER_MODEL = "accounts.User"

MIDDLEWARE = [
    "backend.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "backend.middleware.RequestLimitsMiddleware",
    "backend.middleware.MultipartFrameMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "backend.middleware.ApiErrorShapeMiddleware",
]

ROOT_URLCONF = "backend.urls"
ASGI_APPLICATION = "backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "backend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        # Django's default attributes (username, first_name, ...) do not exist on this
        # user model: without these, a password could be the user's own name.
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {
            "user_attributes": (
                "full_name",
                "full_name_unaccented",
                "phone",
                "phone_national",
                "citizen_id",
            )
        },
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time --------------------------------------------------------
LANGUAGE_CODE = "vi"
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Ho_Chi_Minh"
USE_TZ = True

# --- Redis: channel layer, cache, atomic counters -------------------------------
REDIS_URL = env("REDIS_URL")
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "2"))
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "cb")
# A pooled connection that Redis dropped (a restart, a failover, an idle timeout)
# fails its next command: try it again on a fresh connection, right away. Only on
# connection errors, where the command did not run: a timeout may have run it.
# redis-py retries nothing when handed options for a pool (Django's cache, the
# channel layer, Redis.from_url), whatever the Redis() default says.
REDIS_RETRIES = envint("REDIS_RETRIES", 1)
REDIS_RETRY = Retry(NoBackoff(), REDIS_RETRIES, supported_errors=(RedisConnectionError,))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "retry": REDIS_RETRY,
            },
        }
    }
    # The core layer's blocking reads wait up to 5 s (BZPOPMIN); redis-py's
    # default 5 s socket timeout would cut them off and kill idle sockets.
    CHANNEL_HOSTS = [
        {
            "address": REDIS_URL,
            "socket_timeout": 15,
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
            # The layer's connections are asyncio ones: an asyncio Retry.
            "retry": AsyncRetry(
                NoBackoff(), REDIS_RETRIES, supported_errors=(RedisConnectionError,)
            ),
        }
    ]
    # Live updates are hints (the event log is the truth), so the pub/sub layer
    # fits: a group message is one PUBLISH that Redis pushes to the subscribed
    # server processes at once, where the core layer takes four round trips
    # and a blocking pop per message. It is the default; backend.channel_layer
    # makes channels_redis's pub/sub layer recover from a Redis restart (one
    # party reconnects and re-subscribes every channel). CHANNEL_LAYER=core
    # selects channels_redis's core layer (with a waiting pool) instead.
    CHANNEL_LAYER = env("CHANNEL_LAYER", "pubsub")
    if CHANNEL_LAYER not in ("pubsub", "core"):
        raise ImproperlyConfigured("CHANNEL_LAYER must be pubsub or core.")
    if CHANNEL_LAYER == "pubsub":
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "backend.channel_layer.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": CHANNEL_HOSTS, "prefix": f"{CACHE_KEY_PREFIX}:asgi"},
            }
        }
    else:
        # backend.channel_layer: the core layer whose pool waits for a free
        # connection (the stock one fails a burst of group changes at once).
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "backend.channel_layer.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [
                        {
                            **CHANNEL_HOSTS[0],
                            "max_connections": envint("CHANNEL_LAYER_MAX_CONNECTIONS", 100),
                            "timeout": float(env("CHANNEL_LAYER_POOL_TIMEOUT", "20")),
                        }
                    ],
                    "prefix": f"{CACHE_KEY_PREFIX}:asgi",
                    "capacity": envint("CHANNEL_CAPACITY", 200),
                    "expiry": 30,
                },
            }
        }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Static and uploaded files --------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
# Uploaded papers are never served from a public path: no MEDIA_URL is routed.
MEDIA_URL = "/private-media-not-served/"
# Several web and worker processes on several hosts share one object store: in
# production STORAGE_BACKEND=s3 (django-storages' S3 backend; any S3-speaking
# store: AWS, MinIO, a Vietnamese cloud's S3). Objects stay private: downloads go
# through our own signed routes (dossiers/downloads.py), never the store's URLs.
S3_STORAGE = "storages.backends.s3.S3Storage"
STORAGE_BACKEND = env("STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
if STORAGE_BACKEND == "s3":
    STORAGE_BACKEND = S3_STORAGE
STORAGE_OPTIONS: dict[str, Any] = {}
if STORAGE_BACKEND == S3_STORAGE:
    STORAGE_OPTIONS = {
        "bucket_name": env("S3_BUCKET"),
        "endpoint_url": env("S3_ENDPOINT_URL") or None,
        "region_name": env("S3_REGION") or None,
        "access_key": env("S3_ACCESS_KEY_ID") or None,
        "secret_key": env("S3_SECRET_ACCESS_KEY") or None,
        # "path" for MinIO and most S3-compatible stores, "virtual" for AWS.
        "addressing_style": env("S3_ADDRESSING_STYLE", "path") or None,
        "signature_version": "s3v4",
        "default_acl": None,  # the bucket's policy: private
        "querystring_auth": True,
        # Names are random (dossiers/storage_names): no existence check per save.
        "file_overwrite": True,
        "location": env("S3_PREFIX"),
    }
    if not STORAGE_OPTIONS["bucket_name"]:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_BUCKET.")
STORAGES = {
    "default": {"BACKEND": STORAGE_BACKEND, "OPTIONS": STORAGE_OPTIONS},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    },
}

# --- Request limits -----------------------------------------------------------
# A JSON body larger than this is refused with 413 before it is parsed.
API_MAX_JSON_BODY_BYTES = envint("API_MAX_JSON_BODY_BYTES", 256 * 1024)
# Multipart uploads: one file plus form overhead.
API_MAX_UPLOAD_BODY_BYTES = envint("API_MAX_UPLOAD_BODY_BYTES", 11 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_UPLOAD_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- API conventions ----------------------------------------------------------
API_PAGE_SIZE_DEFAULT = envint("API_PAGE_SIZE_DEFAULT", 20)
API_PAGE_SIZE_MAX = envint("API_PAGE_SIZE_MAX", 100)
IDEMPOTENCY_KEY_TTL_SECONDS = envint("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600)
# An in-flight record older than this belongs to a crashed request and may be taken over.
IDEMPOTENCY_LOCK_SECONDS = envint("IDEMPOTENCY_LOCK_SECONDS", 60)

# Client IPs: X-Forwarded-For is trusted only for this many proxy hops in front
# of the app (0 = use the socket address, never the header).
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
# Per-IP limits count an IPv6 client by its network of this prefix length: one host
# usually holds a whole /64 and may use any address in it (backend.middleware.
# rate_limit_address). Audit rows keep the full address.
RATE_LIMIT_IPV6_PREFIX = envint("RATE_LIMIT_IPV6_PREFIX", 64)
if not 1 <= RATE_LIMIT_IPV6_PREFIX <= 128:
    raise ImproperlyConfigured("RATE_LIMIT_IPV6_PREFIX must be between 1 and 128.")

# --- Outboxes and delivery backends ----------------------------------------------
OUTBOX_DIR = Path(env("OUTBOX_DIR", str(BASE_DIR / "var" / "outbox")))
SMS_BACKEND = env("SMS_BACKEND", "file")
PUSH_BACKEND = env("PUSH_BACKEND", "file")

# --- Security headers (checked by `manage.py check --deploy`) -------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if envbool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging ------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "backend.logging.RedactingFilter"},
        "request_id": {"()": "backend.logging.RequestIdFilter"},
    },
    "formatters": {
        "json": {"()": "backend.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's defaults attach their own console handler to "django" (printing
        # every record a second time, unredacted, when DEBUG is on: signed links in
        # "Not Found: ..." lines, tracebacks) and to "django.server": send both to ours.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "procrastinate": {"level": env("PROCRASTINATE_LOG_LEVEL", "WARNING")},
        # fpdf2 embeds font subsets (receipts): fontTools logs every glyph at INFO.
        "fontTools": {"level": "WARNING"},
        # pyHanko logs every refused signature with a traceback at WARNING; the
        # refusal is answered with its code, so keep only its errors.
        "pyhanko": {"level": "ERROR"},
        # uvicorn's own handlers would print request lines (a WebSocket URL carries
        # its single-use ticket) unredacted: its loggers go through ours instead.
        "uvicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- Job queue (procrastinate) ----------------------------------------------------
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"
PROCRASTINATE_READONLY_MODELS = True
# `manage.py worker` (the Procfile's worker): jobs run at once, and how long it may
# take to wind down after it lost its database before it exits anyway (status 1).
WORKER_CONCURRENCY = envint("WORKER_CONCURRENCY", 8)
# Called (dotted paths) once when `manage.py worker` starts, before it listens for
# jobs: what the first job would otherwise build while the clock of its event runs
# (the FCM client: firebase-admin's app and messaging service, the sender's event
# loop, aiohttp session and TLS context took 2 s of a fan-out's first pushes on the
# busy 2-core machine; the national holiday calendar, 60-270 ms of the first deadline
# scan). A failure is logged; the job builds it again.
WORKER_WARM_UP: list[str] = ["notifications.fcm.warm_up", "dossiers.deadlines.warm_up"]
WORKER_EXIT_TIMEOUT_SECONDS = envint("WORKER_EXIT_TIMEOUT_SECONDS", 15)
# A job that fails on an infrastructure error (Redis, PostgreSQL, network) is retried
# with capped exponential backoff; the defaults span about four hours of outage.
JOB_RETRY_MAX_ATTEMPTS = envint("JOB_RETRY_MAX_ATTEMPTS", 50)
JOB_RETRY_BASE_SECONDS = envint("JOB_RETRY_BASE_SECONDS", 2)
JOB_RETRY_MAX_SECONDS = envint("JOB_RETRY_MAX_SECONDS", 300)
# Recovery after a worker died (backend/recovery.py): workers beat every
# WORKER_HEARTBEAT_SECONDS; a running job whose worker has not beaten for
# JOB_STALLED_SECONDS is retried; every worker looks every JOB_RECOVERY_SECONDS and
# then runs each app's JOB_RECOVERERS (rows no job will look at again).
WORKER_HEARTBEAT_SECONDS = float(env("WORKER_HEARTBEAT_SECONDS", "2"))
JOB_STALLED_SECONDS = float(env("JOB_STALLED_SECONDS", "8"))
JOB_RECOVERY_SECONDS = float(env("JOB_RECOVERY_SECONDS", "2"))
JOB_RECOVERERS: list[str] = ["notifications.delivery.recover_pushes"]
# The job admin (backend/job_admin.py) calls this with the request and a job's personal
# arguments when a superuser opens a job that has some: their audited look-up.
JOB_ADMIN_LOOK_UP = "auth.admin_roles.record_job_look_up"

# --- Production guard rails -------------------------------------------------------
if PRODUCTION:
    problems = []
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY must be set to a long random value")
    if not USING_POSTGRES:
        problems.append("DATABASE_URL must point to PostgreSQL")
    if not REDIS_URL:
        problems.append("REDIS_URL must be set")
    if JOBS_INLINE:
        problems.append("JOBS_INLINE must be off (run the worker process)")
    if SMS_BACKEND in {"file", "console"}:
        problems.append("SMS_BACKEND must be a real gateway, not file/console")
    if PUSH_BACKEND in {"file", "console"}:
        problems.append("PUSH_BACKEND must be fcm, not file/console")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))

# --- Accounts -------------------------------------------------------------------
ACCESS_TOKEN_TTL_SECONDS = envint("ACCESS_TOKEN_TTL_SECONDS", 15 * 60)
REFRESH_TOKEN_TTL_DAYS = envint("REFRESH_TOKEN_TTL_DAYS", 30)
# A refresh retried within this many seconds (its answer was lost) gets the same pair
# back instead of ending the session as a reused token; 0: every reuse ends it.
REFRESH_TOKEN_RETRY_SECONDS = envint("REFRESH_TOKEN_RETRY_SECONDS", 30)
REAUTH_WINDOW_HOURS = envint("REAUTH_WINDOW_HOURS", 24)
# A device session ends this long after its sign-in, however often its tokens are
# refreshed (OWASP ASVS 3.3.2's absolute lifetime; 30 days is its level 2 figure). It
# is not a revocation: the device stays known, the password alone signs it in again.
SESSION_MAX_AGE_DAYS = envint("SESSION_MAX_AGE_DAYS", 30)
if SESSION_MAX_AGE_DAYS < 1:
    raise ImproperlyConfigured(
        "SESSION_MAX_AGE_DAYS must be at least 1: a session cannot live forever."
    )
# Support functions (admin pages and API) need a sign-in with the authenticator code
# at most this old.
SUPPORT_SIGN_IN_MAX_AGE_HOURS = envint("SUPPORT_SIGN_IN_MAX_AGE_HOURS", 12)
# Citizen-ID entries (PATCH /auth/me/identity) per account and per client address.
CITIZEN_ID_CHANGES_PER_USER_PER_DAY = envint("CITIZEN_ID_CHANGES_PER_USER_PER_DAY", 5)
CITIZEN_ID_CHANGES_PER_IP_PER_DAY = envint("CITIZEN_ID_CHANGES_PER_IP_PER_DAY", 20)
# One-time codes sent by SMS (NIST SP 800-63B-4 / OWASP ASVS 5 numbers).
OTP_TTL_SECONDS = envint("OTP_TTL_SECONDS", 5 * 60)
OTP_MAX_ATTEMPTS_PER_CODE = envint("OTP_MAX_ATTEMPTS_PER_CODE", 5)
# Finished or expired SMS-code challenges and national sign-ins (they hold a phone
# number and an IP) are deleted this long after they expire (hourly job).
AUTH_FLOW_RETENTION_HOURS = envint("AUTH_FLOW_RETENTION_HOURS", 7 * 24)
# Consecutive wrong codes (OTP, TOTP, recovery) per account before a lockout;
# a new code does not reset the count, only a right code does.
OTP_MAX_FAILURES = envint("OTP_MAX_FAILURES", 10)
OTP_LOCKOUT_SECONDS = envint("OTP_LOCKOUT_SECONDS", 15 * 60)
OTP_FAILURE_WINDOW_SECONDS = envint("OTP_FAILURE_WINDOW_SECONDS", 24 * 3600)
# Wrong authenticator (TOTP) and recovery codes per account within the window above,
# across lockouts; beyond, the authenticator is refused until the window passes.
OTP_MAX_AUTHENTICATOR_FAILURES = envint("OTP_MAX_AUTHENTICATOR_FAILURES", 30)
# SMS pumping guards: resend delay, per number, per client IP, whole system.
SMS_RESEND_SECONDS = envint("SMS_RESEND_SECONDS", 60)
SMS_PER_NUMBER_PER_HOUR = envint("SMS_PER_NUMBER_PER_HOUR", 5)
SMS_PER_NUMBER_PER_DAY = envint("SMS_PER_NUMBER_PER_DAY", 10)
SMS_PER_IP_PER_DAY = envint("SMS_PER_IP_PER_DAY", 30)
SMS_GLOBAL_PER_DAY = envint("SMS_GLOBAL_PER_DAY", 50000)
# Wrong passwords per phone number before a cool-off, and per client IP per hour.
# Wrong passwords: per (number, client IP) before that client is locked out of the
# number; per number from everywhere before a right password must be followed by a
# second factor; per client IP over all numbers per hour. The app and the admin
# count apart (auth.actions.sign_in.LoginCounters).
LOGIN_MAX_FAILURES = envint("LOGIN_MAX_FAILURES", 5)
LOGIN_MAX_FAILURES_PER_NUMBER = envint("LOGIN_MAX_FAILURES_PER_NUMBER", 50)
LOGIN_LOCKOUT_SECONDS = envint("LOGIN_LOCKOUT_SECONDS", 15 * 60)
LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = envint("LOGIN_MAX_FAILURES_PER_IP_PER_HOUR", 100)
ADMIN_LOGIN_MAX_FAILURES = envint("ADMIN_LOGIN_MAX_FAILURES", 5)
ADMIN_LOGIN_MAX_FAILURES_PER_NUMBER = envint("ADMIN_LOGIN_MAX_FAILURES_PER_NUMBER", 20)
ADMIN_LOGIN_LOCKOUT_SECONDS = envint("ADMIN_LOGIN_LOCKOUT_SECONDS", 15 * 60)
ADMIN_LOGIN_MAX_FAILURES_PER_IP_PER_HOUR = envint("ADMIN_LOGIN_MAX_FAILURES_PER_IP_PER_HOUR", 50)
TOTP_ISSUER = env("TOTP_ISSUER", "Dịch vụ công")
RECOVERY_CODE_COUNT = envint("RECOVERY_CODE_COUNT", 10)
# Brand-name SMS gateway (SMS_BACKEND=http; eSMS.vn-style JSON API).
SMS_HTTP_URL = env(
    "SMS_HTTP_URL",
    "https://rest.esms.vn/MainService.svc/json/SendMultipleMessage_V4_post_json/",
)
SMS_API_KEY = env("SMS_API_KEY")
SMS_SECRET_KEY = env("SMS_SECRET_KEY")
SMS_BRANDNAME = env("SMS_BRANDNAME")
SMS_HTTP_TIMEOUT_SECONDS = float(env("SMS_HTTP_TIMEOUT_SECONDS", "10"))
# Auto-fill of SMS codes (auth/sms.py, `CodeSmsTemplate`): empty is off. The Android
# app's 11-character SMS Retriever hash (from its package name and signing
# certificate), and the host name the Web OTP line binds a code to
# (`@dichvucong.gov.vn #123456`). A system check refuses malformed values.
SMS_ANDROID_APP_HASH = env("SMS_ANDROID_APP_HASH").strip()
SMS_WEB_OTP_DOMAIN = env("SMS_WEB_OTP_DOMAIN").strip()
# Organisations and support resets.
ORGANISATION_INVITATION_TTL_DAYS = envint("ORGANISATION_INVITATION_TTL_DAYS", 7)
SUPPORT_RESET_APPROVAL_TTL_HOURS = envint("SUPPORT_RESET_APPROVAL_TTL_HOURS", 72)
# National sign-in (VNeID through the national portal's OpenID Connect SSO).
# Empty issuer: national sign-in is off (routes answer 503 national_id_disabled).
# `make run` points it at the fake provider (`python -m fakes.identity_provider`).
NATIONAL_ID_ISSUER = env("NATIONAL_ID_ISSUER").rstrip("/")
NATIONAL_ID_CLIENT_ID = env("NATIONAL_ID_CLIENT_ID", "dichvucong-app")
NATIONAL_ID_CLIENT_SECRET = env("NATIONAL_ID_CLIENT_SECRET", "dev-national-id-secret")
# The app link the provider sends the browser back to (the app intercepts it).
NATIONAL_ID_REDIRECT_URI = env(
    "NATIONAL_ID_REDIRECT_URI", "https://app.dichvucong.example/national-id/callback"
)
NATIONAL_ID_SCOPES = env("NATIONAL_ID_SCOPES", "openid profile phone citizen_id")
NATIONAL_ID_TIMEOUT_SECONDS = float(env("NATIONAL_ID_TIMEOUT_SECONDS", "5"))
NATIONAL_ID_METADATA_CACHE_SECONDS = envint("NATIONAL_ID_METADATA_CACHE_SECONDS", 3600)
NATIONAL_ID_FLOW_TTL_SECONDS = envint("NATIONAL_ID_FLOW_TTL_SECONDS", 600)
NATIONAL_ID_CLOCK_SKEW_SECONDS = envint("NATIONAL_ID_CLOCK_SKEW_SECONDS", 60)
# Sensitive actions that ask for a national sign-in accept one this recent.
NATIONAL_ID_STEP_UP_MINUTES = envint("NATIONAL_ID_STEP_UP_MINUTES", 15)
# Business registry (tax code verification). Empty: organisations stay unverified.
BUSINESS_REGISTRY_URL = env("BUSINESS_REGISTRY_URL").rstrip("/")
BUSINESS_REGISTRY_API_KEY = env("BUSINESS_REGISTRY_API_KEY")
BUSINESS_REGISTRY_TIMEOUT_SECONDS = float(env("BUSINESS_REGISTRY_TIMEOUT_SECONDS", "5"))
if (
    PRODUCTION
    and NATIONAL_ID_ISSUER
    and (
        not NATIONAL_ID_ISSUER.startswith("https://")
        or NATIONAL_ID_CLIENT_SECRET == "dev-national-id-secret"  # noqa: S105  # nosec B105
    )
):
    raise ImproperlyConfigured(
        "Refusing to start in production: NATIONAL_ID_ISSUER must be https and "
        "NATIONAL_ID_CLIENT_SECRET set"
    )

# --- Demo data (`make run`) -------------------------------------------------------
DEMO_LOADERS = ["auth.demo.load"]
DEMO_LOGINS = [
    "Demo citizen: +84912345678 / demo-Passw0rd!",
    "Demo admin:   +84900000001 / demo-Passw0rd! (admin site)",
]

# --- Dossiers -------------------------------------------------------------------
# Attachments (photos and PDFs of the papers a procedure requires).
ATTACHMENT_MAX_FILE_BYTES = envint("ATTACHMENT_MAX_FILE_BYTES", 10 * 1024 * 1024)
# Decoded size limit, judged from the header before any pixel is decoded.
ATTACHMENT_MAX_PIXELS = envint("ATTACHMENT_MAX_PIXELS", 40_000_000)
# Longest side of a decoded image, also from the header: memory grows with the rows
# as well as the pixels (about 43 bytes a row over the pipeline's copies: 1.8 GB for a
# 1 x 40,000,000 PNG). 65,535 is the most a JPEG can have, far above any phone's
# long screenshot, and keeps that overhead under 3 MB.
ATTACHMENT_MAX_SIDE_PIXELS = envint("ATTACHMENT_MAX_SIDE_PIXELS", 65_535)
ATTACHMENT_MAX_PER_DOSSIER = envint("ATTACHMENT_MAX_PER_DOSSIER", 20)
ATTACHMENT_QUOTA_BYTES_PER_USER = envint("ATTACHMENT_QUOTA_BYTES_PER_USER", 200 * 1024 * 1024)
ATTACHMENT_IMAGE_MAX_SIDE = envint("ATTACHMENT_IMAGE_MAX_SIDE", 2560)
ATTACHMENT_THUMBNAIL_SIDE = envint("ATTACHMENT_THUMBNAIL_SIDE", 320)
ATTACHMENT_JPEG_QUALITY = envint("ATTACHMENT_JPEG_QUALITY", 85)
# Pillow memory blocks (each at most 16 MB) a process keeps for the next photo
# instead of giving them back to the system: the two frames of a 12 MP photo's
# pipeline (12 MB each) are then not page-faulted in afresh every time. Costs up
# to 2 x 16 MB resident per process once it has processed a photo; 0 keeps none.
ATTACHMENT_IMAGE_BLOCKS_KEPT = envint("ATTACHMENT_IMAGE_BLOCKS_KEPT", 2)
# Largest embedded colour profile used to convert a photo to sRGB; a bigger one is
# ignored (the pixels are taken as sRGB). Phones embed a few KB.
ATTACHMENT_ICC_PROFILE_MAX_BYTES = envint("ATTACHMENT_ICC_PROFILE_MAX_BYTES", 1024 * 1024)
# Scans a JPEG may have (libjpeg decodes each over the whole image, with no limit of
# its own): phones write one (baseline), libjpeg's progressive script about ten.
ATTACHMENT_JPEG_MAX_SCANS = envint("ATTACHMENT_JPEG_MAX_SCANS", 32)
ATTACHMENT_PDF_MAX_PAGES = envint("ATTACHMENT_PDF_MAX_PAGES", 50)
# Work the active-content check of a PDF (attachments, wallet, results, verify) may
# do: objects read and bytes parsed (counted again where objects overlap). A file
# that needs more is refused (422 pdf_unreadable, details.reason too_complex).
PDF_MAX_OBJECTS = envint("PDF_MAX_OBJECTS", 50_000)
PDF_MAX_PARSED_BYTES = envint("PDF_MAX_PARSED_BYTES", 4 * 1024 * 1024)
# Lifetime of a signed download URL.
ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS = envint("ATTACHMENT_DOWNLOAD_URL_TTL_SECONDS", 300)
# Longest value a citizen may type into one form field (drafts and submission).
DOSSIER_FORM_VALUE_MAX_CHARS = envint("DOSSIER_FORM_VALUE_MAX_CHARS", 2000)
# Digits a form number may have before its decimal point (15: what a double holds).
DOSSIER_FORM_NUMBER_MAX_DIGITS = envint("DOSSIER_FORM_NUMBER_MAX_DIGITS", 15)
# Drafts one user may keep at once (creating one more is refused with 409).
DOSSIER_OPEN_DRAFTS_MAX = envint("DOSSIER_OPEN_DRAFTS_MAX", 50)
# Longest satisfaction comment.
DOSSIER_RATING_COMMENT_MAX_CHARS = envint("DOSSIER_RATING_COMMENT_MAX_CHARS", 1000)
# Longest catalogue search text.
CATALOGUE_SEARCH_MAX_CHARS = envint("CATALOGUE_SEARCH_MAX_CHARS", 100)
# Procedures whose required documents each web process keeps in memory (dossier
# reads); keyed by procedure version, so an edit is seen at once by every process.
CATALOGUE_DOCUMENTS_CACHE_SIZE = envint("CATALOGUE_DOCUMENTS_CACHE_SIZE", 4096)
DEMO_LOADERS = [*DEMO_LOADERS, "dossiers.demo.load", "dossiers.demo.load_agency_credentials"]
# Functions returning more demo login lines (`load_demo --print-logins`, `make run`).
DEMO_LOGIN_SOURCES = ["dossiers.demo.credential_logins"]
# Agency back-office API (dossiers/agency/): signed requests whose
# X-Timestamp is further than this from our clock are refused (stale_timestamp).
AGENCY_SIGNATURE_MAX_SKEW_SECONDS = envint("AGENCY_SIGNATURE_MAX_SKEW_SECONDS", 300)
# An appointment an agency gives is at most this far ahead (accept, apology).
AGENCY_APPOINTMENT_MAX_DAYS = envint("AGENCY_APPOINTMENT_MAX_DAYS", 730)
# After a rotation the previous secret keeps working this long.
AGENCY_PREVIOUS_SECRET_HOURS = envint("AGENCY_PREVIOUS_SECRET_HOURS", 72)
# Stored answers to agency event ids (replays, backend/idempotency.py) are kept this long.
AGENCY_REQUEST_RETENTION_DAYS = envint("AGENCY_REQUEST_RETENTION_DAYS", 30)
# Download links of attachments in the agency feed expire after this.
AGENCY_FILE_URL_TTL_SECONDS = envint("AGENCY_FILE_URL_TTL_SECONDS", 300)
# The feed only shows changes older than this, so a slow transaction that commits
# late can never slip behind a cursor that already moved past its updated_at.
AGENCY_FEED_SETTLE_SECONDS = envint("AGENCY_FEED_SETTLE_SECONDS", 10)
# Electronic result files (complete action).
RESULT_FILE_MAX_BYTES = envint("RESULT_FILE_MAX_BYTES", 10 * 1024 * 1024)
RESULT_PDF_MAX_PAGES = envint("RESULT_PDF_MAX_PAGES", 200)
# Signed results (dossiers/result_signatures.py). Trust anchors (PEM bundle, e.g.
# the VGCA root and licensed public CAs' roots), intermediates, and CRLs read from
# files (comma-separated): validation never fetches from the network unless
# RESULT_VALIDATION_ALLOW_FETCHING is on.
RESULT_TRUST_ROOTS_FILE = env("RESULT_TRUST_ROOTS_FILE")
RESULT_INTERMEDIATES_FILE = env("RESULT_INTERMEDIATES_FILE")
RESULT_CRL_FILES = envlist("RESULT_CRL_FILES")
RESULT_VALIDATION_ALLOW_FETCHING = envbool("RESULT_VALIDATION_ALLOW_FETCHING", False)
# pyHanko's revocation policy: soft-fail (revoked if a CRL says so), hard-fail
# (revocation information required for every certificate), require.
RESULT_REVOCATION_MODE = env("RESULT_REVOCATION_MODE", "soft-fail")
# Certificates one signature (or a timestamp token in it) may carry: a real chain is
# the signer, one or two intermediates and perhaps the root; more, or two with the
# same subject, only make pyHanko's path search explode (factorially).
RESULT_SIGNATURE_MAX_CERTS = envint("RESULT_SIGNATURE_MAX_CERTS", 10)
# A signing time later than now plus this is refused.
RESULT_SIGNING_TIME_SKEW_SECONDS = envint("RESULT_SIGNING_TIME_SKEW_SECONDS", 300)
# Server-side signing keys per agency code (JSON):
# {"HN-PXB": {"pkcs12_file": "/etc/keys/pxb.p12", "passphrase": "..."}} or
# {"HN-PXB": {"pkcs12_base64": "...", "passphrase": "..."}}.
# Public verification of results (documents/): attempts per client IP and hour.
VERIFY_MAX_ATTEMPTS_PER_IP_PER_HOUR = envint("VERIFY_MAX_ATTEMPTS_PER_IP_PER_HOUR", 60)
# Document wallet (documents/wallet.py): papers per owner (a person or an
# organisation) and bytes of kept papers (issued results do not count).
WALLET_MAX_ITEMS = envint("WALLET_MAX_ITEMS", 100)
WALLET_QUOTA_BYTES = envint("WALLET_QUOTA_BYTES", 200 * 1024 * 1024)
# The nightly sweep of the wallet's orphaned objects leaves those younger than this:
# a paper being kept stores its file before its row commits.
WALLET_ORPHAN_GRACE_SECONDS = envint("WALLET_ORPHAN_GRACE_SECONDS", 3600)
RESULT_SIGNING_KEYS: dict[str, dict[str, str]] = json.loads(env("RESULT_SIGNING_KEYS") or "{}")


# --- Tracking -------------------------------------------------------------------
# Jobs deferred (in the event's transaction) for every new dossier event; each
# is a procrastinate task taking `event_id`.
EVENT_SUBSCRIBERS: list[str] = [
    "postal.tasks.on_dossier_event",
    "notifications.tasks.fan_out_event",
    "documents.tasks.on_dossier_event",
    "payments.tasks.on_dossier_event",
]
# WebSocket stream (/ws/v1/events). Browsers must send an Origin from this list;
# native apps send none and are admitted by their ticket alone.
WS_ALLOWED_ORIGINS = envlist("WS_ALLOWED_ORIGINS")
# A ticket is valid this long (never more than 60 s) and works once.
WS_TICKET_TTL_SECONDS = min(envint("WS_TICKET_TTL_SECONDS", 30), 60)
WS_TICKETS_PER_MINUTE = envint("WS_TICKETS_PER_MINUTE", 30)
# Heartbeat frame interval (at most 30 s); the session is re-checked at each beat.
WS_HEARTBEAT_SECONDS = min(float(env("WS_HEARTBEAT_SECONDS", "25")), 30.0)
# While committed events wait for an event with an earlier id (its transaction
# still open, or rolled back), the server looks at the log first after
# WS_RECHECK_FIRST_SECONDS, then at intervals each WS_RECHECK_GROWTH times the one
# before (at least 1), up to WS_RECHECK_SECONDS (one look per server process,
# however many sockets wait). A frame held d seconds
# arrives by about d × WS_RECHECK_GROWTH + the first interval.
WS_RECHECK_SECONDS = float(env("WS_RECHECK_SECONDS", "1"))
WS_RECHECK_FIRST_SECONDS = float(env("WS_RECHECK_FIRST_SECONDS", "0.002"))
WS_RECHECK_GROWTH = max(float(env("WS_RECHECK_GROWTH", "1.25")), 1.0)
# A resume from an event older than this answers `resync`.
WS_RESUME_RETENTION_SECONDS = envint("WS_RESUME_RETENTION_SECONDS", 7 * 24 * 3600)
WS_REPLAY_BATCH = envint("WS_REPLAY_BATCH", 200)
WS_MAX_INBOUND_BYTES = envint("WS_MAX_INBOUND_BYTES", 64 * 1024)
# Inbound token bucket per socket: refill rate (frames/s) and burst; after
# WS_INBOUND_MAX_DROPPED refused frames in a row the socket closes with 1008.
WS_INBOUND_RATE = float(env("WS_INBOUND_RATE", "2"))
WS_INBOUND_BURST = envint("WS_INBOUND_BURST", 10)
WS_INBOUND_MAX_DROPPED = envint("WS_INBOUND_MAX_DROPPED", 10)
WS_MAX_SOCKETS_PER_USER = envint("WS_MAX_SOCKETS_PER_USER", 5)
# The stream's read of the log runs as a prepared statement on the reader's own
# connection (planning it took five times longer than running it). Off behind a
# pooler that cannot keep prepared statements (PgBouncer before 1.21 in
# transaction mode).
WS_PREPARED_STATEMENTS = envbool("WS_PREPARED_STATEMENTS", True)
# Public lookup by dossier code and the receipt's secret (tracking/lookup.py).
# Characters of a new secret (alphabet of 30: 10 give about 49 bits).
LOOKUP_SECRET_LENGTH = envint("LOOKUP_SECRET_LENGTH", 10)
# PBKDF2 rounds of the stored hash: a lookup costs one hash, known code or not.
LOOKUP_SECRET_HASH_ITERATIONS = envint("LOOKUP_SECRET_HASH_ITERATIONS", 20000)
# Lookups one client IP may try per hour, right or wrong.
LOOKUP_MAX_ATTEMPTS_PER_IP_PER_HOUR = envint("LOOKUP_MAX_ATTEMPTS_PER_IP_PER_HOUR", 30)
# Wrong secrets for one dossier code (known or not) before a lockout, its length,
# and how long failures are remembered.
LOOKUP_MAX_FAILURES_PER_CODE = envint("LOOKUP_MAX_FAILURES_PER_CODE", 5)
LOOKUP_LOCKOUT_SECONDS = envint("LOOKUP_LOCKOUT_SECONDS", 900)
LOOKUP_FAILURE_WINDOW_SECONDS = envint("LOOKUP_FAILURE_WINDOW_SECONDS", 3600)
# Absolute address of the public site, printed in QR codes (receipt lookup,
# result verification): `{PUBLIC_BASE_URL}/lookup?code=...`.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


# --- Notifications ----------------------------------------------------------------
# FCM HTTP v1 (PUSH_BACKEND=fcm): a service-account JSON file and the project id
# (read from the file when empty). FCM_API_BASE points at another FCM-compatible
# endpoint (the loopback fake server of fakes/fcm.py); empty = Google.
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE", env("GOOGLE_APPLICATION_CREDENTIALS"))
FCM_PROJECT_ID = env("FCM_PROJECT_ID")
FCM_API_BASE = env("FCM_API_BASE")
FCM_TIMEOUT_SECONDS = envint("FCM_TIMEOUT_SECONDS", 10)
# Messages per send job (FCM's send_each takes at most 500) and requests in flight.
FCM_BATCH_SIZE = min(envint("FCM_BATCH_SIZE", 500), 500)
FCM_CONCURRENCY = envint("FCM_CONCURRENCY", 50)
# Connections to FCM one process keeps at most, shared by all its send jobs
# (notifications/fcm_sender.py); a send waits for a free one beyond that.
FCM_MAX_CONNECTIONS = max(1, envint("FCM_MAX_CONNECTIONS", 100))
# A send job records FCM's answers as they come, those of this many milliseconds
# together: a crash then leaves unknown only the requests still waiting for theirs.
FCM_RECORD_GATHER_MS = max(0, envint("FCM_RECORD_GATHER_MS", 10))
# Tries per delivery before it becomes a permanent failure (10 tries with the
# default backoff span about three hours of FCM outage); backoff between them.
PUSH_MAX_ATTEMPTS = envint("PUSH_MAX_ATTEMPTS", 10)
PUSH_RETRY_BASE_SECONDS = envint("PUSH_RETRY_BASE_SECONDS", 30)
PUSH_RETRY_MAX_SECONDS = envint("PUSH_RETRY_MAX_SECONDS", 3600)
# FCM asks for at least a minute after QUOTA_EXCEEDED (or its Retry-After, if longer).
PUSH_QUOTA_MIN_WAIT_SECONDS = envint("PUSH_QUOTA_MIN_WAIT_SECONDS", 60)
# A send job waits out a pause this short itself (keeping its claim on the rest of
# its batch) instead of giving the rows back for a job queued at the pause's end.
PUSH_PAUSE_WAIT_SECONDS = envint("PUSH_PAUSE_WAIT_SECONDS", 5)
# FCM refuses messages over 4096 bytes; texts are shortened to stay under this.
PUSH_PAYLOAD_MAX_BYTES = envint("PUSH_PAYLOAD_MAX_BYTES", 4000)
# A delivery left in `sending` this long belongs to a crashed worker.
PUSH_STALE_SENDING_MINUTES = envint("PUSH_STALE_SENDING_MINUTES", 15)
# A send job's claim on rows it has not yet handed to FCM, renewed before each
# slice; after it, a crashed worker's rows are queued again (by every worker's
# recovery, see JOB_RECOVERY_SECONDS, and by a periodic job, PUSH_RECOVERY_CRON,
# with an optional sixth field for seconds). A claimable row that no queued or
# running job names (its job failed for good) is queued again once it is
# PUSH_ORPHAN_GRACE_SECONDS old. A lapsed lease moves rows, never sends one twice.
PUSH_CLAIM_LEASE_SECONDS = envint("PUSH_CLAIM_LEASE_SECONDS", 8)
# A push waits this long at most for the earlier push of its dossier to its device
# to be answered (the per-pair lock of `dossier_push_order`), then goes back to the
# queue, tried again as long after: a worker frozen mid-send (stopped, stuck
# network) holds its locks until its database session ends. 0: never wait. Below
# PUSH_CLAIM_LEASE_SECONDS, so a job waiting keeps its claim.
PUSH_ORDER_LOCK_TIMEOUT_SECONDS = max(0, envint("PUSH_ORDER_LOCK_TIMEOUT_SECONDS", 5))
PUSH_RECOVERY_CRON = env("PUSH_RECOVERY_CRON", "* * * * *")
PUSH_ORPHAN_GRACE_SECONDS = envint("PUSH_ORPHAN_GRACE_SECONDS", 10)
# Tokens unseen this long get no pushes; after DEVICE_PRUNE_DAYS they are deleted.
DEVICE_STALE_DAYS = envint("DEVICE_STALE_DAYS", 30)
DEVICE_PRUNE_DAYS = envint("DEVICE_PRUNE_DAYS", 270)
# Active devices per user; registering one more retires the least recently seen.
DEVICE_MAX_PER_USER = envint("DEVICE_MAX_PER_USER", 10)
# Default quiet hours (local time of the user's preference time zone).
NOTIFICATIONS_QUIET_START = env("NOTIFICATIONS_QUIET_START", "22:00")
NOTIFICATIONS_QUIET_END = env("NOTIFICATIONS_QUIET_END", "07:00")
# Jobs deferred (in the same transaction) when support staff reset an account; each
# is a procrastinate task taking user_id, kind, session_ids (sessions live before
# the reset revoked them) and reference (the reset id).
ACCOUNT_NOTICE_SUBSCRIBERS: list[str] = ["notifications.tasks.account_notice"]


# --- Postal -----------------------------------------------------------------------
# Carriers the app can book with (name -> adapter class); the first is the default.
POSTAL_CARRIERS = {"vnpost": "postal.carriers.vnpost.VNPostAdapter"}
POSTAL_DEFAULT_CARRIER = env("POSTAL_DEFAULT_CARRIER", "vnpost")
# Tariffs per carrier (zones x weight classes): a JSON file, see postal/tariffs.json.
POSTAL_TARIFF_FILE = env("POSTAL_TARIFF_FILE", str(BASE_DIR / "postal" / "tariffs.json"))
# Declared weight of a parcel: a result (papers, certificate) or a paper dossier.
POSTAL_RESULT_WEIGHT_GRAMS = envint("POSTAL_RESULT_WEIGHT_GRAMS", 200)
POSTAL_PICKUP_WEIGHT_GRAMS = envint("POSTAL_PICKUP_WEIGHT_GRAMS", 500)
POSTAL_MAX_ADDRESSES_PER_USER = envint("POSTAL_MAX_ADDRESSES_PER_USER", 20)
# Old (pre-July-2025) addresses converted to the 2025 units (backend/old_addresses.py).
ADDRESS_TEXT_MAX_CHARS = envint("ADDRESS_TEXT_MAX_CHARS", 300)
ADDRESS_SUGGESTIONS_MAX = envint("ADDRESS_SUGGESTIONS_MAX", 5)
ADDRESS_CONVERSIONS_PER_MINUTE = envint("ADDRESS_CONVERSIONS_PER_MINUTE", 30)
ADDRESS_AGENCY_BATCH_MAX = envint("ADDRESS_AGENCY_BATCH_MAX", 100)
# VNPost HTTP API (the carrier's order API) and its webhook secret.
POSTAL_VNPOST_BASE_URL = env("POSTAL_VNPOST_BASE_URL", "http://127.0.0.1:8900")
POSTAL_VNPOST_API_KEY = env("POSTAL_VNPOST_API_KEY")
POSTAL_VNPOST_TIMEOUT_SECONDS = float(env("POSTAL_VNPOST_TIMEOUT_SECONDS", "10"))
# Extra in-call attempts for idempotent carrier calls (5xx, timeouts), then the job retries.
POSTAL_VNPOST_HTTP_RETRIES = envint("POSTAL_VNPOST_HTTP_RETRIES", 2)
POSTAL_VNPOST_HTTP_RETRY_BACKOFF_MS = envint("POSTAL_VNPOST_HTTP_RETRY_BACKOFF_MS", 500)
# With no secret set, every webhook of that carrier is refused (401).
POSTAL_WEBHOOK_SECRETS = {"vnpost": env("POSTAL_VNPOST_WEBHOOK_SECRET")}
# A webhook whose timestamp is further than this from now is refused (replay window).
POSTAL_WEBHOOK_TOLERANCE_SECONDS = envint("POSTAL_WEBHOOK_TOLERANCE_SECONDS", 300)
# Carrier jobs (create order, request collection, cancel): attempts and backoff base.
POSTAL_JOB_MAX_ATTEMPTS = envint("POSTAL_JOB_MAX_ATTEMPTS", 10)
POSTAL_JOB_BACKOFF_SECONDS = envint("POSTAL_JOB_BACKOFF_SECONDS", 3)


# --- Payments ---------------------------------------------------------------------
# Gateways (name -> adapter class) and the one new payments use. Secrets come from
# the environment (a gateway without its secret refuses checkouts with 503 and every
# callback as unsigned); outside production the defaults match the fake gateway
# (`python -m fakes.payment_gateway`, port 8910), so the demo can pay.
PAYMENT_GATEWAYS = {
    "vnpay": "payments.gateways.vnpay.VNPayAdapter",
    "national": "payments.gateways.national.NationalPlatformAdapter",
}
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", "vnpay")
_FAKE_GATEWAY = env("PAYMENT_FAKE_GATEWAY_URL", "http://127.0.0.1:8910")
PAYMENT_VNPAY_TMN_CODE = env("PAYMENT_VNPAY_TMN_CODE", "" if PRODUCTION else "DEMO0001")
PAYMENT_VNPAY_HASH_SECRET = env(
    "PAYMENT_VNPAY_HASH_SECRET", "" if PRODUCTION else "demo-vnpay-hash-secret"
)
PAYMENT_VNPAY_PAY_URL = env("PAYMENT_VNPAY_PAY_URL", f"{_FAKE_GATEWAY}/paymentv2/vpcpay.html")
PAYMENT_VNPAY_API_URL = env(
    "PAYMENT_VNPAY_API_URL", f"{_FAKE_GATEWAY}/merchant_webapi/api/transaction"
)
PAYMENT_NATIONAL_MERCHANT_ID = env("PAYMENT_NATIONAL_MERCHANT_ID", "" if PRODUCTION else "DEMO-DVC")
PAYMENT_NATIONAL_SECRET = env(
    "PAYMENT_NATIONAL_SECRET", "" if PRODUCTION else "demo-national-secret"
)
PAYMENT_NATIONAL_BASE_URL = env("PAYMENT_NATIONAL_BASE_URL", f"{_FAKE_GATEWAY}/national")
PAYMENT_GATEWAY_TIMEOUT_SECONDS = float(env("PAYMENT_GATEWAY_TIMEOUT_SECONDS", "10"))
# Our server's public address, sent in VNPay's querydr (vnp_IpAddr).
PAYMENT_SERVER_IP = env("PAYMENT_SERVER_IP", "127.0.0.1")
# Base of the return and callback URLs given to the gateway (e.g. https://api.example.vn);
# empty: taken from the checkout request.
PAYMENT_PUBLIC_BASE_URL = env("PAYMENT_PUBLIC_BASE_URL")
# Where the browser is sent after the gateway (the app's deep link).
PAYMENT_APP_RETURN_URL = env(
    "PAYMENT_APP_RETURN_URL", "dichvucong://payments/{payment_id}?status={status}"
)
# Wholly-online procedures whose fee is paid when submitting (catalogue fee_timing
# "before") are submitted only once the fee is paid (409 payment_required before).
PAYMENT_REQUIRED_BEFORE_SUBMISSION = envbool("PAYMENT_REQUIRED_BEFORE_SUBMISSION", True)
# Callables run by dossiers.actions.submit_dossier on the locked draft before it is
# submitted (a lower app calling checks of higher ones without importing them).
SUBMISSION_CHECKS: list[str] = (
    ["payments.submission.fee_paid_before_submission"] if PAYMENT_REQUIRED_BEFORE_SUBMISSION else []
)
# A checkout is payable this long (sent to the gateway as its expiry).
PAYMENT_TTL_MINUTES = envint("PAYMENT_TTL_MINUTES", 15)
# Payments pending longer than this are queried at the gateway (lost callbacks);
# how often that runs, how many per run, and when the daily report is made.
PAYMENT_RECONCILE_AFTER_MINUTES = envint("PAYMENT_RECONCILE_AFTER_MINUTES", 20)
PAYMENT_RECONCILE_CRON = env("PAYMENT_RECONCILE_CRON", "*/5 * * * *")
PAYMENT_RECONCILE_BATCH = envint("PAYMENT_RECONCILE_BATCH", 500)
PAYMENT_REPORT_CRON = env("PAYMENT_REPORT_CRON", "30 1 * * *")
# Another TrueType font for receipts (must have Vietnamese glyphs); empty: Noto Sans.
PAYMENT_RECEIPT_FONT = env("PAYMENT_RECEIPT_FONT")
