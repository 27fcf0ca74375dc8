"""Settings for abusedesk, read from the environment only.

Defaults run `make run` and `make test` on a fresh clone (SQLite under ./var, a random-per-checkout
secret, DEBUG on). `ABUSEDESK_ENV=production` turns DEBUG off and refuses unsafe values loudly.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ABUSEDESK_VAR_DIR", BASE_DIR / "var"))
TESTING = "pytest" in sys.modules


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), not {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envsecret(name: str, *, production: bool, dev_default: str) -> str:
    """A secret from the environment; in production a missing or short one is an error."""
    value = os.environ.get(name, "")
    if value:
        if production and len(value) < 32:
            raise ImproperlyConfigured(f"{name} must be at least 32 characters in production")
        return value
    if production:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return dev_default


PRODUCTION = os.environ.get("ABUSEDESK_ENV", "development") == "production"
DEBUG = envbool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when ABUSEDESK_ENV=production")

SECRET_KEY = envsecret(
    "SECRET_KEY",
    production=PRODUCTION,
    dev_default="dev-only-insecure-key-" + str(BASE_DIR),
)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django's admin with the desk's site: TOTP required for superusers when configured.
    "moderation.staff.admin_apps.DeskAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "anymail",
    "django_htmx",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "abusedesk",
    "reports",
    "moderation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "abusedesk.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lock-out response.
    "axes.middleware.AxesMiddleware",
]

# The lock-out check runs before the password check (django-axes), on the desk's and admin's login.
AUTHENTICATION_BACKENDS = [
    "moderation.staff.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "abusedesk.urls"
WSGI_APPLICATION = "abusedesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# SQLite is the zero-setup default. WAL, IMMEDIATE transactions and a lock timeout are what keep
# the q-cluster and the web process from failing with "database is locked" (see STACK-NOTES).
SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'abusedesk.sqlite3'}")
try:
    _default_db = dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60))
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    if _default_db["NAME"] not in ("", ":memory:"):
        Path(_default_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _default_db["OPTIONS"] = {**SQLITE_OPTIONS, **_default_db.get("OPTIONS", {})}
    # Persistent like PostgreSQL's: a new connection runs the PRAGMAs above each time, about 1 ms
    # of every webhook request under gunicorn. `make run`'s runserver, which opens a thread per
    # request, is started with DB_CONN_MAX_AGE=0 (Procfile).
    _default_db.setdefault("TEST", {})
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = Path(os.environ.get("ABUSEDESK_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"

# Raw mail and attachments go through Django's storage API, so S3-compatible storage
# (django-storages) can back them by setting ABUSEDESK_STORAGE_BACKEND and its OPTIONS.
STORAGES = {
    "default": {
        "BACKEND": os.environ.get("ABUSEDESK_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "moderation:login"
LOGIN_REDIRECT_URL = "moderation:queue"

# Security headers; the cookies are secure whenever we are not on a developer's laptop.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", default=False)
if envbool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The abuse address: where reports arrive and what our replies come from.
ABUSEDESK_ADDRESS = os.environ.get("ABUSEDESK_ADDRESS", "abuse@abusedesk.localhost")
ABUSEDESK_NAME = os.environ.get("ABUSEDESK_NAME", "Abuse desk")
DEFAULT_FROM_EMAIL = f"{ABUSEDESK_NAME} <{ABUSEDESK_ADDRESS}>"
SERVER_EMAIL = ABUSEDESK_ADDRESS

# Intake limits (SECURITY.md section 3). Raw mail over ABUSEDESK_MAX_RAW_BYTES is stored
# but only its header block is parsed (a quarantined report); the webhook views accept bodies up
# to the hard cap.
ABUSEDESK_MAX_RAW_BYTES = envint("ABUSEDESK_MAX_RAW_BYTES", 50 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
ABUSEDESK_WEBHOOK_MAX_BYTES = envint("ABUSEDESK_WEBHOOK_MAX_BYTES", 70 * 1024 * 1024)
ABUSEDESK_PROCESS_MAX_ATTEMPTS = envint("ABUSEDESK_PROCESS_MAX_ATTEMPTS", 3)
# Messages threaded per transaction by the drain task (reports.tasks.process_pending).
ABUSEDESK_PROCESS_BATCH = max(1, envint("ABUSEDESK_PROCESS_BATCH", 200))
# After a batch that was not full, the drain waits this long (milliseconds, idle) for more mail
# before it claims again: mail arriving one by one (webhooks, SMTP) is then threaded ten at a time
# instead of one. Zero under pytest, where the cluster runs tasks inline.
ABUSEDESK_PROCESS_LINGER_MS = max(0, envint("ABUSEDESK_PROCESS_LINGER_MS", 0 if TESTING else 250))

# SMTP/LMTP intake (manage.py smtpd) and IMAP polling (manage.py fetch_mail).
ABUSEDESK_SMTP_HOST = os.environ.get("ABUSEDESK_SMTP_HOST", "127.0.0.1")
ABUSEDESK_SMTP_PORT = envint("ABUSEDESK_SMTP_PORT", 2525)
ABUSEDESK_SMTP_RECIPIENTS = envlist("ABUSEDESK_SMTP_RECIPIENTS", [])
ABUSEDESK_IMAP_URL = os.environ.get("ABUSEDESK_IMAP_URL", "")
# Receivers whose Authentication-Results the desk believes (reports/authn.py): "mx.desk.example"
# for every intake path, or "webhook:amazon_ses=amazonses.com" for one. Only a From with a DMARC
# pass from one of them counts as verified; a trusted flagger's mail is fast-tracked only then.
ABUSEDESK_AUTHSERV_IDS = envlist("ABUSEDESK_AUTHSERV_IDS", [])
ABUSEDESK_IMAP_FOLDER = os.environ.get("ABUSEDESK_IMAP_FOLDER", "INBOX")
ABUSEDESK_IMAP_DONE_FOLDER = os.environ.get("ABUSEDESK_IMAP_DONE_FOLDER", "")

# django-anymail: inbound webhooks need basic auth (WEBHOOK_SECRET "user:pass", comma-separated
# for rotation) and, where the provider signs, its signing key.
_webhook_secret = envlist("ANYMAIL_WEBHOOK_SECRET", [])
if PRODUCTION and not _webhook_secret:
    raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be set in production (user:password)")
ANYMAIL = {
    "WEBHOOK_SECRET": _webhook_secret or ["abusedesk:dev-webhook-secret"],
    "MAILGUN_WEBHOOK_SIGNING_KEY": os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY", ""),
    "MAILERSEND_INBOUND_SECRET": os.environ.get("MAILERSEND_INBOUND_SECRET", ""),
    "MANDRILL_WEBHOOK_KEY": os.environ.get("MANDRILL_WEBHOOK_KEY", ""),
    "MANDRILL_WEBHOOK_URL": os.environ.get("MANDRILL_WEBHOOK_URL", ""),
    "POSTAL_WEBHOOK_KEY": os.environ.get("POSTAL_WEBHOOK_KEY", ""),
    "RESEND_INBOUND_SECRET": os.environ.get("RESEND_INBOUND_SECRET", ""),
    "RESEND_API_KEY": os.environ.get("RESEND_API_KEY", ""),
    "BREVO_API_KEY": os.environ.get("BREVO_API_KEY", ""),
    "MAILTRAP_API_TOKEN": os.environ.get("MAILTRAP_API_TOKEN", ""),
    "MAILTRAP_INBOUND_SECRET": os.environ.get("MAILTRAP_INBOUND_SECRET", ""),
}
ANYMAIL = {key: value for key, value in ANYMAIL.items() if value}

# Outbound mail. Django 6.1's MAILERS replaces EMAIL_BACKEND; any anymail backend plugs in here.
MAILERS = {
    "default": {
        "BACKEND": os.environ.get(
            "ABUSEDESK_MAIL_BACKEND",
            "django.core.mail.backends.console.EmailBackend",
        ),
    },
}

# django-q2. The ORM broker needs nothing else; set REDIS_URL to scale out on Redis.
# save_limit=-1 stores no result row for successful tasks (the InboundMessage row already says
# what happened, and the per-task insert or pruning caps throughput); failures are always kept.
Q_CLUSTER = {
    "name": "abusedesk",
    "workers": envint("ABUSEDESK_Q_WORKERS", 2),
    "timeout": envint("ABUSEDESK_Q_TIMEOUT", 120),
    "retry": envint("ABUSEDESK_Q_TIMEOUT", 120) + 60,
    "max_attempts": envint("ABUSEDESK_Q_MAX_ATTEMPTS", 3),
    "save_limit": -1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    "label": "Tasks",
    "sync": envbool("ABUSEDESK_TASKS_SYNC", default=TESTING),
}
if os.environ.get("REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"

# The REST API at /api/v1/ (reports/api.py, moderation/api.py). API keys first: its Bearer
# challenge makes a request without credentials a 401. Each view names the one scope it needs.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "reports.api.ApiAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "moderation.integrations.apikeys.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["moderation.integrations.apikeys.HasRequiredScope"],
    "DEFAULT_THROTTLE_CLASSES": ["moderation.integrations.apikeys.ApiKeyThrottle"],
    # Per key; counted in the default cache, so several web processes need a shared cache (Redis).
    "DEFAULT_THROTTLE_RATES": {"api": f"{envint('ABUSEDESK_API_REQUESTS_PER_MINUTE', 600)}/min"},
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "reports.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "abusedesk API",
    "DESCRIPTION": (
        "The abuse desk's API for the platform's own systems. Authenticate with an API key: "
        "`Authorization: Bearer <prefix>.<secret>` (`manage.py create_api_key`); each operation needs "
        "one scope (read, blocklist, report, decide, audit). Every 4xx answer is "
        '`{"error": {"code", "message", "fields"}}`. Lists page with opaque cursors: follow `next`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes the API; it is no secret, and a bad key must not hide it.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "reports.models.Case.Status",
        "CasePriorityEnum": "reports.models.Case.Priority",
        "EntityKindEnum": "reports.models.Entity.Kind",
        "EntityStatusEnum": "reports.models.Entity.Status",
        "ReportKindEnum": "reports.models.Report.Kind",
        "InboundStateEnum": "reports.models.InboundMessage.State",
        "PolicyCategoryEnum": "moderation.models.PolicyCategory",
        "AuditActionEnum": "moderation.models.AuditAction",
        "DecisionKindEnum": "moderation.models.Decision.Kind",
        "BlocklistChangeKindEnum": "moderation.models.BlocklistChange.Kind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # aiosmtpd logs every SMTP command, envelope addresses included, at INFO.
    "loggers": {"django_q": {"level": "WARNING"}, "mail.log": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# Per-message processing budget (SECURITY rule 7) and the header our own mail carries.
ABUSEDESK_PROCESS_SECONDS = envint("ABUSEDESK_PROCESS_SECONDS", 10)
# Wall-clock budget for decoding one message's images into PDQ hashes, all of them together.
ABUSEDESK_MEDIA_HASH_SECONDS = envint("ABUSEDESK_MEDIA_HASH_SECONDS", 5)
ABUSEDESK_LOOP_MARKER = os.environ.get("ABUSEDESK_LOOP_MARKER", ABUSEDESK_ADDRESS)

# Replies to reporters. Acknowledgements of receipt are off unless enabled, and go to one
# address at most once per period; replies that fail are retried with back-off.
ABUSEDESK_ACKNOWLEDGE = envbool("ABUSEDESK_ACKNOWLEDGE", default=False)
ABUSEDESK_ACK_PERIOD_HOURS = envint("ABUSEDESK_ACK_PERIOD_HOURS", 24)
ABUSEDESK_REPLY_MAX_ATTEMPTS = envint("ABUSEDESK_REPLY_MAX_ATTEMPTS", 5)

# Enforcement webhooks (moderation/enforcement.py). Receivers on private, loopback or link-local
# addresses are refused (SECURITY rule 6) unless allowed: allowed by default in development and
# tests, where receivers run on localhost; set ABUSEDESK_WEBHOOK_ALLOW_PRIVATE=true in production
# only for a receiver inside your own network. Failed events are retried for RETRY_HOURS.
ABUSEDESK_WEBHOOK_ALLOW_PRIVATE = envbool("ABUSEDESK_WEBHOOK_ALLOW_PRIVATE", default=DEBUG or TESTING)
ABUSEDESK_WEBHOOK_RETRY_HOURS = envint("ABUSEDESK_WEBHOOK_RETRY_HOURS", 24)

# The audit log (moderation/audit/). Each entry's hash is an HMAC with a key the database never
# sees: ABUSEDESK_AUDIT_KEY is "<key id>:<secret>", required in production; entries record the key
# id, so after a rotation the retired keys stay listed in ABUSEDESK_AUDIT_RETIRED_KEYS (comma-
# separated, same form) for verification. The count and head hash of the log are written every
# few minutes to each place in ABUSEDESK_AUDIT_ANCHORS (file:/path, syslog:, syslog:/dev/log,
# syslog://host:514, https://...), outside the database, where verify_audit compares them.
_AUDIT_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


def _audit_key(name: str, value: str) -> tuple[str, str]:
    key_id, sep, secret = value.partition(":")
    if not sep or not _AUDIT_KEY_ID.fullmatch(key_id) or not secret:
        raise ImproperlyConfigured(f"{name} must be <key id>:<secret>, the id of letters, digits, '.', '_' or '-'")
    if PRODUCTION and len(secret) < 32:
        raise ImproperlyConfigured(f"{name}: the secret must be at least 32 characters in production")
    return key_id, secret


_audit_current = os.environ.get("ABUSEDESK_AUDIT_KEY", "")
if PRODUCTION and not _audit_current:
    raise ImproperlyConfigured("ABUSEDESK_AUDIT_KEY must be set in production (<key id>:<secret>)")
ABUSEDESK_AUDIT_KEY_ID, _audit_secret = _audit_key(
    "ABUSEDESK_AUDIT_KEY", _audit_current or "dev:dev-only-insecure-audit-key-" + str(BASE_DIR)
)
ABUSEDESK_AUDIT_KEYS = dict(
    _audit_key("ABUSEDESK_AUDIT_RETIRED_KEYS", item) for item in envlist("ABUSEDESK_AUDIT_RETIRED_KEYS", [])
)
ABUSEDESK_AUDIT_KEYS[ABUSEDESK_AUDIT_KEY_ID] = _audit_secret
ABUSEDESK_AUDIT_ANCHORS = envlist("ABUSEDESK_AUDIT_ANCHORS", [])
# Signs anchors POSTed to an http(s) place, as enforcement webhooks are signed. Not the audit key:
# whoever receives the anchors must not be able to forge entries.
ABUSEDESK_AUDIT_ANCHOR_SECRET = os.environ.get("ABUSEDESK_AUDIT_ANCHOR_SECRET", "")
if (
    any(place.startswith(("http:", "https:")) for place in ABUSEDESK_AUDIT_ANCHORS)
    and not ABUSEDESK_AUDIT_ANCHOR_SECRET
):
    raise ImproperlyConfigured("ABUSEDESK_AUDIT_ANCHOR_SECRET must be set to send audit anchors to an http(s) place")

# Staff login hardening. A superuser must pass a TOTP (or static backup) token to use admin when
# this is on; it is on by default in production. Other staff may register a TOTP device, and once
# they have one, admin asks for it too.
ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS = envbool("ABUSEDESK_REQUIRE_OTP_FOR_SUPERUSERS", default=PRODUCTION)
OTP_TOTP_ISSUER = ABUSEDESK_NAME

# django-axes: after N failed logins for one username from one address, that pair is locked out
# for a cool-off period (the desk's login and admin's alike). Behind a reverse proxy, set
# ABUSEDESK_TRUSTED_PROXIES to the number of proxies so the client address comes from
# X-Forwarded-For; otherwise the header is ignored, as anyone can send it.
AXES_FAILURE_LIMIT = envint("ABUSEDESK_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = envint("ABUSEDESK_LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
_trusted_proxies = envint("ABUSEDESK_TRUSTED_PROXIES", 0)
if _trusted_proxies:
    AXES_IPWARE_PROXY_COUNT = _trusted_proxies
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Transparency (moderation/transparency/). The public page and JSON feed at /transparency/ are off
# (404) until the operator publishes them; even then they name no entity unless PUBLISH_NAMES is
# set as well, and then only public channels, bots and sticker sets that are blocked still. The
# figures are cached for CACHE_SECONDS; each client address may make REQUESTS_PER_MINUTE requests.
ABUSEDESK_TRANSPARENCY_PUBLIC = envbool("ABUSEDESK_TRANSPARENCY_PUBLIC", default=False)
ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES = envbool("ABUSEDESK_TRANSPARENCY_PUBLISH_NAMES", default=False)
ABUSEDESK_TRANSPARENCY_CACHE_SECONDS = max(0, envint("ABUSEDESK_TRANSPARENCY_CACHE_SECONDS", 300))
ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE = max(1, envint("ABUSEDESK_TRANSPARENCY_REQUESTS_PER_MINUTE", 60))
