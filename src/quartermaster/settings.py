"""The one settings module. Everything that differs between machines comes from QM_* variables."""

from __future__ import annotations

import os
from typing import Any

from corsheaders.defaults import default_headers as cors_default_headers

from quartermaster.config import (
    data_dir,
    env_bool,
    env_float,
    env_int,
    env_money,
    parse_database_url,
    persistent_secret,
)
from quartermaster.core.i18n import LANGUAGES as I18N_LANGUAGES
from quartermaster.core.i18n import LOCALE_DIR as I18N_LOCALE_DIR
from quartermaster.core.i18n import SOURCE_LANGUAGE as I18N_SOURCE_LANGUAGE
from quartermaster.logs import configure_structlog
from quartermaster.logs import formatter as log_formatter

DEBUG = env_bool("QM_DEBUG")
SECRET_KEY = persistent_secret("QM_SECRET_KEY", "secret_key")
# Separate from SECRET_KEY and never stored in the database: whoever can write the audit table
# must not be able to recompute the chain.
AUDIT_KEY = persistent_secret("QM_AUDIT_KEY", "audit_key")
JWT_KEY = os.environ.get("QM_JWT_KEY") or SECRET_KEY
# Signs audit checkpoints (core.checkpoints): never in the database, so whoever rewrites the
# database cannot sign a checkpoint for the rewritten chain. Checkpoints go to a directory
# outside the database (or QM_CHECKPOINT_SINK, "module:factory", for another append-only store).
CHECKPOINT_KEY = persistent_secret("QM_CHECKPOINT_KEY", "checkpoint_key")
CHECKPOINT_DIR = os.environ.get("QM_CHECKPOINT_DIR") or str(data_dir() / "checkpoints")
CHECKPOINT_SINK = os.environ.get("QM_CHECKPOINT_SINK", "")
ACCESS_TOKEN_TTL_S = env_int("QM_ACCESS_TOKEN_TTL_S", 15 * 60)
REFRESH_TOKEN_TTL_S = env_int("QM_REFRESH_TOKEN_TTL_S", 7 * 24 * 3600)
IDEMPOTENCY_KEY_TTL_DAYS = env_int("QM_IDEMPOTENCY_KEY_TTL_DAYS", 30)
# A load received short by more than this (at list price) waits for a manager's approval.
LOAD_SHORTAGE_APPROVAL_MINOR = env_money("QM_LOAD_SHORTAGE_APPROVAL", "1000.00")

# Rate limits (core/ratelimit.py), counted where the cache below lives (Redis: shared by every
# process; otherwise this process only); 0 switches one off.
# Login (identity/ratelimits.py): after LOGIN_LOCKOUT_FAILURES failures for one username from one
# address, that pair is refused for LOGIN_LOCKOUT_BASE_S seconds, doubling with every further
# failure up to LOGIN_LOCKOUT_MAX_S (a locked pair answers 429 with Retry-After, even for the
# right password); nobody else is locked out. One address failing LOGIN_FAILURES_PER_IP times a
# window, whatever the usernames, is refused until the window closes.
LOGIN_LOCKOUT_FAILURES = env_int("QM_LOGIN_LOCKOUT_FAILURES", 5)
LOGIN_LOCKOUT_BASE_S = env_int("QM_LOGIN_LOCKOUT_BASE_S", 60)
LOGIN_LOCKOUT_MAX_S = env_int("QM_LOGIN_LOCKOUT_MAX_S", 3600)
LOGIN_FAILURES_PER_IP = env_int("QM_LOGIN_FAILURES_PER_IP", 20)
LOGIN_FAILURE_WINDOW_S = env_int("QM_LOGIN_FAILURE_WINDOW_S", 60)
# API: requests per authenticated user and per client address (a shop's tills share one).
# Self sign-up (POST /api/v1/auth/signup, seed 003): off unless QM_SIGNUP=1; it makes inactive
# accounts an admin approves. Attempts per client address per window, like failed logins.
SIGNUP = env_bool("QM_SIGNUP")
SIGNUPS_PER_IP = env_int("QM_SIGNUPS_PER_IP", 5)
SIGNUP_WINDOW_S = env_int("QM_SIGNUP_WINDOW_S", 3600)
API_REQUESTS_PER_USER = env_int("QM_API_REQUESTS_PER_USER", 600)
API_REQUESTS_PER_IP = env_int("QM_API_REQUESTS_PER_IP", 3000)
API_REQUEST_WINDOW_S = env_int("QM_API_REQUEST_WINDOW_S", 60)
# A device is listed online when heard from within this many seconds (a watching agent syncs
# every 30 s; last-seen moves at most once a minute per process).
DEVICE_ONLINE_S = env_int("QM_DEVICE_ONLINE_S", 120)
# Proxies in front of the server that append to X-Forwarded-For; 0 trusts none of it.
TRUSTED_PROXY_HOPS = env_int("QM_TRUSTED_PROXY_HOPS", 0)

# Who issues the documents (quartermaster.documents): printed at the top of invoices and slips.
DOCUMENT_ISSUER = os.environ.get("QM_DOCUMENT_ISSUER", "Quartermaster")
# The time zone documents print times in (the market's documents use the market's own).
DOCUMENT_TIMEZONE = os.environ.get("QM_DOCUMENT_TIMEZONE", "Asia/Kolkata")
# A truck's business day (day-ends) runs from local midnight to midnight in this zone.
DAY_END_TIMEZONE = os.environ.get("QM_DAY_END_TIMEZONE", DOCUMENT_TIMEZONE)
# How far (basis points, either way) staff may sell from an item's list price; further needs a
# manager (identity.permissions.authorize_unit_price). 1000 = 10 %.
MAX_STAFF_DISCOUNT_BP = env_int("QM_MAX_STAFF_DISCOUNT_BP", 1000)

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("QM_ALLOWED_HOSTS", "*").split(",") if h.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    # For its templates and static files: the API docs page loads Swagger UI from here, not a CDN.
    "ninja",
    "quartermaster.core",
    "quartermaster.identity",
    "quartermaster.inventory",
    "quartermaster.journal",
    "quartermaster.sales",
    "quartermaster.distribution",
    "quartermaster.dayend",
    "quartermaster.market",
    "quartermaster.media",
    "quartermaster.inspections",
    "quartermaster.notifications",
    "quartermaster.sync",
    "quartermaster.cluster",
    "quartermaster.documents",
]

MIDDLEWARE = [
    # Outermost, and the project's only one: the request id, metrics and access-log line of
    # every answer; CORS headers (a browser app cannot read an answer without them, a 429 or a
    # 401 included); the language of every error body; JSON error bodies; malformed headers and
    # per-address limits refused; 403s recorded as security events. One pass, in that order.
    "quartermaster.core.middleware.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's own, for the back office only (sessions, its user, messages): skipped on API
    # paths, which authenticate with bearer tokens (core.middleware.BackOfficeOnly).
    "quartermaster.core.middleware.BackOfficeSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "quartermaster.core.middleware.BackOfficeAuthenticationMiddleware",
    "quartermaster.core.middleware.BackOfficeMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "quartermaster.urls"
ASGI_APPLICATION = "quartermaster.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


# Page cache per SQLite connection (SQLite's default is 2 MiB: a batch of syncs then re-reads the
# indexes of the audit and feed tables from the OS for every statement once they outgrow it).
SQLITE_CACHE_KIB = env_int("QM_SQLITE_CACHE_KIB", 32768)


def _database_settings() -> dict[str, Any]:
    url = os.environ.get("QM_DATABASE_URL") or f"sqlite:///{data_dir() / 'quartermaster.sqlite3'}"
    parsed = parse_database_url(url)
    if parsed.engine == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parsed.name,
            "OPTIONS": {
                # IMMEDIATE: a write transaction takes the write lock at BEGIN, so a
                # read-then-write never dies on lock upgrade; WAL lets readers run alongside.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                    f" PRAGMA cache_size=-{SQLITE_CACHE_KIB};"
                ),
            },
            # Kept open per thread (a handful: asgiref's pool) instead of opened per request, so
            # a connection's page cache survives between requests; SQLite has no server-side
            # connection limit to exhaust (PostgreSQL uses a pool instead, below).
            "CONN_MAX_AGE": env_int("QM_SQLITE_CONN_MAX_AGE_S", 600),
            "TEST": {"NAME": os.environ.get("QM_TEST_SQLITE_NAME") or None},
        }
    options: dict[str, Any] = dict(parsed.options or {})
    # A pool per process, not persistent connections: under ASGI each request's sync code may run
    # on a fresh thread, and thread-bound persistent connections then pile up until PostgreSQL
    # refuses new ones (measured in bench/RESULTS.md: ~280 idle connections, failed requests).
    options.setdefault(
        "pool",
        {
            "min_size": env_int("QM_DB_POOL_MIN", 2),
            # Bounded per process; requests waiting to commit hold none (core.commands).
            "max_size": env_int("QM_DB_POOL_MAX", 4),
            "timeout": env_int("QM_DB_POOL_TIMEOUT_S", 10),
        },
    )
    follow = len(parsed.host.split(",")) > 1 or "target_session_attrs" in options
    if follow:
        _follow_the_primary(options)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.name,
        "HOST": parsed.host,
        "PORT": parsed.port,
        "USER": parsed.user,
        "PASSWORD": parsed.password,
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
        # The pool checks a connection (one round trip) before lending it: see below.
        "CONN_HEALTH_CHECKS": follow,
    }


def _follow_the_primary(options: dict[str, Any]) -> None:
    """Several nodes (pg_auto_failover): a dead host must not hold a connection attempt for
    long, and a pooled connection is checked before use (one round trip), so a request after a
    failover gets a live connection to the new primary instead of the old one's dead socket.
    With `target_session_attrs=read-write`, a process that reaches only a standby still serves
    reads (quartermaster.cluster.connection)."""
    from quartermaster.cluster.connection import FollowPrimaryConnection, give_back_standby

    options.setdefault("connect_timeout", str(env_int("QM_DB_CONNECT_TIMEOUT_S", 3)))
    if options.get("target_session_attrs") == "read-write":
        pool = options["pool"]
        pool.setdefault("connection_class", FollowPrimaryConnection)
        pool.setdefault("reset", give_back_standby)


DATABASES = {"default": _database_settings()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "identity.User"

PASSWORD_HASHERS = ["quartermaster.identity.hashers.Argon2Hasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

_cache_url = os.environ.get("QM_CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url.startswith("redis")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Live pokes over WebSocket: in-process by default; Redis so every server process hears every
# commit. Unset, it follows a Redis cache: one Redis URL shares everything several app processes
# must share (core.processes); "memory://" keeps it in-process whatever the cache.
_channel_layer_url = os.environ.get("QM_CHANNEL_LAYER_URL", "") or (
    _cache_url if _cache_url.startswith("redis") else ""
)
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # The layer's idle receive is a 5 s blocking pop on the server; redis-py 8 gives
            # every read a 5 s socket timeout by default, which the pop then loses and every
            # idle socket is closed (channels_redis#422). Longer than the pop, still finite:
            # a Redis that vanished is noticed.
            "CONFIG": {"hosts": [{"address": _channel_layer_url, "socket_timeout": 15}]},
        }
        if _channel_layer_url.startswith("redis")
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

# pg_auto_failover (issue 14): the monitor's URL, e.g.
# postgresql://autoctl_node@monitor:5431/pg_auto_failover?sslmode=require. When set, each server
# process watches it and records every change of primary on the audit chain (cluster.monitor).
CLUSTER_MONITOR_URL = os.environ.get("QM_CLUSTER_MONITOR_URL", "")
CLUSTER_FORMATION = os.environ.get("QM_CLUSTER_FORMATION", "default")
# How often the watcher reads the monitor's events besides its notifications.
CLUSTER_POLL_MS = env_int("QM_CLUSTER_POLL_MS", 1000)
# An open WebSocket re-checks its session, device and user this often (one statement each time):
# the longest a socket outlives a revocation announced in another process when the channel layer
# is in-process (with Redis every process hears the announcement and closes at once).
WS_ACCESS_RECHECK_S = env_int("QM_WS_ACCESS_RECHECK_S", 30)

# Batch sync runs consecutive ops of a bulk-capable type (sale.record, item.adjust) in one set of
# statements; "0" runs every op alone (the same answers, slower): for measuring, and for operators.
SYNC_BULK = os.environ.get("QM_SYNC_BULK", "1") != "0"

# Threads per server process that run Django for HTTP requests (`edge.WsgiEdge`): each keeps one
# database connection, so this bounds a process's connections too. Requests beyond it wait in
# the event loop; concurrent writes among them commit together (`core.group_commit`).
# On PostgreSQL a request waiting for the writer baton gives its pooled connection back, so more
# threads than connections make larger batches (measured in bench/RESULTS.md: 16 clients of
# PATCH, 4 threads 141-155/s, 8 threads 205-265/s on 4 connections); on SQLite every thread
# keeps its own connection and page cache, and 4 threads measured as well as 8.
HTTP_THREADS = env_int(
    "QM_HTTP_THREADS", 8 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 4
)
# "0": every command runs its own transaction at once, whatever else the process is running
# (the same answers; for measuring, and for tests that play several processes in one).
GROUP_COMMIT = os.environ.get("QM_GROUP_COMMIT", "1") != "0"
# The largest request body read (Django's default, 2.5 MiB); a larger one is 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("QM_MAX_BODY_BYTES", 2_621_440)

# Media (quartermaster.media): photos and signatures, uploaded by devices straight to storage.
# The local file system by default (this server serves the bytes through signed URLs); an
# S3-compatible bucket when QM_MEDIA_S3_BUCKET is set (credentials as boto3 reads them, or here).
MEDIA_DIR = os.environ.get("QM_MEDIA_DIR") or str(data_dir() / "media")
MEDIA_S3_BUCKET = os.environ.get("QM_MEDIA_S3_BUCKET", "")
MEDIA_S3_ENDPOINT_URL = os.environ.get("QM_MEDIA_S3_ENDPOINT_URL", "")
MEDIA_S3_REGION = os.environ.get("QM_MEDIA_S3_REGION", "us-east-1")
MEDIA_S3_ACCESS_KEY_ID = os.environ.get("QM_MEDIA_S3_ACCESS_KEY_ID", "")
MEDIA_S3_SECRET_ACCESS_KEY = os.environ.get("QM_MEDIA_S3_SECRET_ACCESS_KEY", "")
# An upload target works this long; an upload not confirmed by then is collected
# (`quartermaster media gc`, and the serve process every MEDIA_GC_INTERVAL_S; 0: never there).
MEDIA_UPLOAD_TTL_S = env_int("QM_MEDIA_UPLOAD_TTL_S", 3600)
MEDIA_GC_INTERVAL_S = env_int("QM_MEDIA_GC_INTERVAL_S", 3600)
# A download URL works this long.
MEDIA_URL_TTL_S = env_int("QM_MEDIA_URL_TTL_S", 300)
# Limits: bytes per file, bytes of media attached to one inspection, pixels per image (a
# decompression bomb is refused before it is decoded), upload requests per device a minute.
MEDIA_MAX_BYTES = env_int("QM_MEDIA_MAX_BYTES", 20 * 1024 * 1024)
MEDIA_MAX_BYTES_PER_INSPECTION = env_int("QM_MEDIA_MAX_BYTES_PER_INSPECTION", 200 * 1024 * 1024)
MEDIA_MAX_PIXELS = env_int("QM_MEDIA_MAX_PIXELS", 50_000_000)
MEDIA_UPLOADS_PER_MINUTE = env_int("QM_MEDIA_UPLOADS_PER_MINUTE", 60)
MEDIA_THUMBNAIL_PX = env_int("QM_MEDIA_THUMBNAIL_PX", 320)

# The outbox (core/outbox.py) and its worker (`quartermaster outbox work`). A failed attempt
# waits 1, 2, 4, 8, 16 s (jittered ±25 %), times OUTBOX_BACKOFF_SCALE, which scales every wait
# of the worker, a provider's Retry-After included (tests run at 0.01); after
# OUTBOX_MAX_ATTEMPTS the message is dead and its notification `failed`. A claim holds a
# message for OUTBOX_LEASE_S: a worker killed mid-send leaves it to be sent again after that.
OUTBOX_BACKOFF_SCALE = env_float("QM_OUTBOX_BACKOFF_SCALE", 1.0)
OUTBOX_MAX_ATTEMPTS = env_int("QM_OUTBOX_MAX_ATTEMPTS", 5)
OUTBOX_LEASE_S = env_float("QM_OUTBOX_LEASE_S", 60.0)
OUTBOX_POLL_S = env_float("QM_OUTBOX_POLL_S", 1.0)

# Notification providers (notifications/providers.py). Unset credentials switch a channel off:
# with none set, every notification goes to the `console` channel (the log). Never logged.
# WhatsApp Cloud API: template messages from the business number QM_WHATSAPP_PHONE_NUMBER_ID;
# status and inbound webhooks are verified with the app secret (X-Hub-Signature-256).
WHATSAPP_BASE_URL = os.environ.get("QM_WHATSAPP_BASE_URL", "https://graph.facebook.com/v21.0")
WHATSAPP_TOKEN = os.environ.get("QM_WHATSAPP_TOKEN", "")
WHATSAPP_PHONE_NUMBER_ID = os.environ.get("QM_WHATSAPP_PHONE_NUMBER_ID", "")
WHATSAPP_APP_SECRET = os.environ.get("QM_WHATSAPP_APP_SECRET", "")
WHATSAPP_VERIFY_TOKEN = os.environ.get("QM_WHATSAPP_VERIFY_TOKEN", "")
# SMS in Twilio's Messages API format: the fallback when WhatsApp fails for good.
SMS_BASE_URL = os.environ.get("QM_SMS_BASE_URL", "https://api.twilio.com")
SMS_ACCOUNT_SID = os.environ.get("QM_SMS_ACCOUNT_SID", "")
SMS_AUTH_TOKEN = os.environ.get("QM_SMS_AUTH_TOKEN", "")
SMS_FROM = os.environ.get("QM_SMS_FROM", "")
# One provider request, connect to last byte; must stay below the lease.
NOTIFY_TIMEOUT_S = env_float("QM_NOTIFY_TIMEOUT_S", 10.0)
# Numbers stored without a country code (a 10-digit Indian mobile) are sent with this one.
NOTIFY_DEFAULT_COUNTRY_CODE = os.environ.get("QM_NOTIFY_DEFAULT_COUNTRY_CODE", "91")
# E-mail (invoices with their PDF) through the outbox, over SMTP with Django's SMTP backend
# (notifications/smtp.py). No QM_SMTP_HOST: the email channel is off (an attempt fails for good,
# named). QM_SMTP_TLS: "starttls" (default with a user), "ssl" (implicit TLS, port 465) or "none".
SMTP_HOST = os.environ.get("QM_SMTP_HOST", "")
SMTP_PORT = env_int("QM_SMTP_PORT", 25)
SMTP_USER = os.environ.get("QM_SMTP_USER", "")
SMTP_PASSWORD = os.environ.get("QM_SMTP_PASSWORD", "")
SMTP_FROM = os.environ.get("QM_SMTP_FROM", "invoices@localhost")
SMTP_TLS = os.environ.get("QM_SMTP_TLS", "starttls" if SMTP_USER else "none")

# English and Tamil (core/i18n.py): error messages follow Accept-Language; the catalogue in
# core/locale is compiled at install (core/catalogues.py) and found first, before Django's own.
LANGUAGE_CODE = I18N_SOURCE_LANGUAGE
LANGUAGES = list(I18N_LANGUAGES)
LOCALE_PATHS = [I18N_LOCALE_DIR]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# The back office's CSS and the docs page's Swagger UI, served by the app itself (WhiteNoise):
# straight from the installed packages, so a fresh install needs no collectstatic; an operator
# who runs `quartermaster collectstatic` names the directory in QM_STATIC_ROOT.
STATIC_ROOT = os.environ.get("QM_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True

# Browser apps on these origins may call the API ("https://app.example.com,http://localhost:3000").
CORS_ALLOWED_ORIGINS = [
    origin.strip() for origin in os.environ.get("QM_CORS_ORIGINS", "").split(",") if origin.strip()
]
CORS_ALLOW_HEADERS = (*cors_default_headers, "idempotency-key", "if-match", "x-request-id")
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed", "Retry-After", "X-Request-ID"]

# Logs never carry secrets: no request bodies, no Authorization headers, no query strings
# (quartermaster.logs). One JSON object per line; QM_LOG_FORMAT=console for a terminal.
LOG_FORMAT = os.environ.get("QM_LOG_FORMAT", "json")
# One line per HTTP request (`serve --no-access-log` turns it off).
ACCESS_LOG = env_bool("QM_ACCESS_LOG", True)
configure_structlog()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": log_formatter(LOG_FORMAT)},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": os.environ.get("QM_LOG_LEVEL", "INFO")},
    # WeasyPrint logs every step of every document at INFO.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}

# /metrics (Prometheus): with a token, for `Authorization: Bearer <token>` only; without one,
# for callers on this machine only.
METRICS_TOKEN = os.environ.get("QM_METRICS_TOKEN", "")
