"""NeonPro AI Chat settings.

Every value comes from the environment (or a `.env` file) through one
`environ.Env`; `.env.example` documents each variable. With no services
configured the project runs in its embedded default: SQLite, in-memory channel
layer, local-memory cache, Celery tasks executed in-process and the bundled
simulated AI provider. With `DEBUG` off the settings refuse to start without
real secrets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NEONPRO_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
_env_file = os.environ.get("NEONPRO_ENV_FILE", str(BASE_DIR / ".env"))
if os.path.exists(_env_file):
    environ.Env.read_env(_env_file)


def _secret(name: str, default: str = "") -> str:
    """A secret from `NAME` or from the file named by `NAME_FILE` (Docker/K8s secrets)."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text().strip()
    return env.str(name, default=default)


# --- Core --------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
APP_VERSION = "1.0.0"
ENVIRONMENT = env.str("ENVIRONMENT", default="development" if DEBUG else "production")
SERVICE_NAME = "ai-chat"

# Only ever used with DEBUG on; production refuses it (see _refuse_unsafe_production).
_DEV_ONLY_SECRET = "insecure-development-only-secret-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = _secret("SECRET_KEY", default=_DEV_ONLY_SECRET if DEBUG else "")
JWT_SECRET = _secret("JWT_SECRET", default=SECRET_KEY if DEBUG else "")
# One or more comma-separated keys: the first encrypts, all decrypt (rotation).
ENCRYPTION_KEYS = [k.strip() for k in _secret("ENCRYPTION_KEY").split(",") if k.strip()]
if not ENCRYPTION_KEYS and DEBUG:
    ENCRYPTION_KEYS = ["development-only-encryption-key-never-use-in-production"]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CORS_ORIGIN = env.str("CORS_ORIGIN", default="")
CORS_ALLOWED_ORIGINS = [o.strip() for o in CORS_ORIGIN.split(",") if o.strip()]
CSRF_TRUSTED_ORIGINS = list(CORS_ALLOWED_ORIGINS)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    # Refresh tokens are single-use: a rotated one is blacklisted (SIMPLE_JWT below).
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "csp",
    "corsheaders",
    "django_prometheus",
    "auditlog",
    "channels",
    # Our layers, bottom to top (each imports only those above it in this list, except
    # that chat comes before compliance: compliance's post_migrate handler gives the
    # staff groups chat's permissions, which must exist by then).
    "neonpro",
    "clinics",
    "chat",
    "compliance",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "neonpro.middleware.TraceContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Above everything that touches the database or Redis: an outage anywhere below
    # becomes a clean 503 `service_unavailable`, never a traceback.
    "neonpro.api_errors.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Turns a locked-out sign-in (web or admin form) into 429 with a clear message.
    "neonpro.login_protection.LoginLockoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # auditlog's middleware with the actor of JWT-authenticated API calls too.
    "compliance.middleware.AuditActorMiddleware",
    # Cache-Control: no-store on everything sent to a signed-in user (personal data).
    "compliance.middleware.PrivateResponseMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "neonpro.urls"
WSGI_APPLICATION = "neonpro.wsgi.application"
ASGI_APPLICATION = "neonpro.asgi.application"

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
                "django.template.context_processors.i18n",
                "chat.context_processors.provider_banner",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------
# Unset DATABASE_URL = embedded SQLite. Server-side
# cursors are off because production goes through PgBouncer in transaction
# pooling mode, where a connection is not ours between transactions.
_default_sqlite = f"sqlite:///{VAR_DIR / 'neonpro.sqlite3'}"
DATABASES = {"default": env.db("DATABASE_URL", default=_default_sqlite)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
else:
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.sqlite3"
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
# Kept open for a minute: through PgBouncer (transaction pooling) an idle client
# connection costs nothing on the server, and reconnecting per call costs latency.
DATABASES["default"]["CONN_MAX_AGE"] = env.int(
    "DATABASE_CONN_MAX_AGE", default=60 if DATABASES["default"]["ENGINE"].endswith("postgresql")
    else 0
)
# A kept connection is checked before its first use in each request or pool call, so
# one broken by a database restart or outage is replaced instead of failing a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Lets parallel test runs (or CI jobs) on one server use separate test databases.
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, rate limits, circuit breakers, Celery ------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # Each consumer waits on BZPOPMIN for up to 5 s; redis-py's default 5 s
                # socket timeout would race it and kill idle sockets under load. Connect
                # quickly, so an outage is reported at once rather than hanging, and ping
                # pooled connections idle for 2 s before use, so ones left over from
                # before a Redis restart reconnect instead of failing a request.
                # The pool cap (redis-py's default is 100) must cover a mass reconnect:
                # every socket joining or leaving its group at once takes a connection.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15,
                           "socket_connect_timeout": 2, "health_check_interval": 2,
                           "max_connections": 2000}],
                "prefix": "neonpro",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "neonpro.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "neonpro",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_ACKS_LATE = True
CELERY_TIMEZONE = "America/Sao_Paulo"

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Auth --------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Django's ModelBackend that first refuses a locked-out username or address, for
    # every door that signs in (web form, admin, API token).
    "neonpro.login_protection.LockoutBackend",
]
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
# CIDR networks). The client is the right-most forwarded address not in this list; empty
# (the default) = forwarded headers are ignored and the TCP peer is the client
# (neonpro.client_address).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR network") from None

# Brute-force protection: failed sign-ins counted per username and per client address
# in the cache (shared by every process); the window starts at the first failure.
LOGIN_FAILURE_LIMIT_PER_USERNAME = env.int("LOGIN_FAILURE_LIMIT_PER_USERNAME", default=5)
LOGIN_FAILURE_LIMIT_PER_IP = env.int("LOGIN_FAILURE_LIMIT_PER_IP", default=20)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=15 * 60)  # s
# Requests to the token endpoints (obtain and refresh) per client address per minute.
AUTH_RATE_LIMIT_PER_IP = env.int("AUTH_RATE_LIMIT_PER_IP", default=60)
# WebSocket connection attempts per minute, per client address and per user (0 = off).
WS_CONNECT_RATE_PER_IP = env.int("WS_CONNECT_RATE_PER_IP", default=300)
WS_CONNECT_RATE_PER_USER = env.int("WS_CONNECT_RATE_PER_USER", default=30)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat-home"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "neonpro.api_errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "SIGNING_KEY": JWT_SECRET,
    "ALGORITHM": "HS256",
    "ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(
        minutes=env.int("JWT_ACCESS_MINUTES", default=15)
    ),
    "REFRESH_TOKEN_LIFETIME": __import__("datetime").timedelta(
        days=env.int("JWT_REFRESH_DAYS", default=1)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    # A refresh token works once: reusing a rotated (possibly stolen) one gets 401.
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NeonPro AI Chat API",
    "VERSION": APP_VERSION,
    "DESCRIPTION": "Chat sessions, messages (JSON or SSE), consent and data-subject access.",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every endpoint and field: like the API it describes, it needs a
    # signed-in user (JWT or session), never an anonymous one.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # An answer's rating is one choice set, whether read from the message or posted.
    "ENUM_NAME_OVERRIDES": {"FeedbackRatingEnum": "chat.models.ChatMessage.Rating"},
}

# --- AI providers ------------------------------------------------------------
OPENAI_API_KEY = _secret("OPENAI_API_KEY")
ANTHROPIC_API_KEY = _secret("ANTHROPIC_API_KEY")
# Without keys the bundled simulated provider answers (run command starts it).
SIMULATED_PROVIDER_URL = env.str("SIMULATED_PROVIDER_URL", default="http://127.0.0.1:8765")
AI_SIMULATED = not OPENAI_API_KEY and not ANTHROPIC_API_KEY
OPENAI_BASE_URL = env.str(
    "OPENAI_BASE_URL", default=f"{SIMULATED_PROVIDER_URL}/v1" if AI_SIMULATED else ""
) or None
ANTHROPIC_BASE_URL = env.str(
    "ANTHROPIC_BASE_URL", default=SIMULATED_PROVIDER_URL if AI_SIMULATED else ""
) or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
ANTHROPIC_MODEL = env.str("ANTHROPIC_MODEL", default="claude-3-5-haiku-latest")
AI_PRIMARY_PROVIDER = env.str("AI_PRIMARY_PROVIDER", default="openai")
AI_SECONDARY_PROVIDER = env.str("AI_SECONDARY_PROVIDER", default="anthropic")
AI_PROVIDER_TIMEOUT = env.int("AI_PROVIDER_TIMEOUT", default=30000)  # ms
AI_MAX_TOKENS = env.int("AI_MAX_TOKENS", default=4000)
AI_SESSION_CAPACITY = env.int("AI_SESSION_CAPACITY", default=2500)
AI_SESSION_IDLE_TIMEOUT = env.int("AI_SESSION_IDLE_TIMEOUT", default=30 * 60)  # s
AI_MAX_INPUT_CHARS = env.int("AI_MAX_INPUT_CHARS", default=8000)
AI_MAX_FRAME_BYTES = env.int("AI_MAX_FRAME_BYTES", default=64 * 1024)
AI_HISTORY_MESSAGES = env.int("AI_HISTORY_MESSAGES", default=20)
# Threads (and so database connections) per web process for the chat pipeline's
# database steps and every other blocking call from async code (see neonpro.blocking).
AI_DB_THREADS = env.int("AI_DB_THREADS", default=8)
# How long a web process's event loop may hold the GIL while a database thread
# waits for it (see neonpro/asgi.py). CPython's default is 5 ms.
GIL_SWITCH_INTERVAL_MS = env.float("GIL_SWITCH_INTERVAL_MS", default=0.5)
if GIL_SWITCH_INTERVAL_MS <= 0:
    raise ImproperlyConfigured("GIL_SWITCH_INTERVAL_MS must be a positive number of ms.")
# Streamed tokens are coalesced into at most one WebSocket/SSE frame per this many ms
# (per answer); the first token always goes out at once.
AI_STREAM_COALESCE_MS = env.int("AI_STREAM_COALESCE_MS", default=30)
AI_SYSTEM_PROMPT = env.str(
    "AI_SYSTEM_PROMPT",
    default=(
        "Você é um assistente clínico para profissionais de clínicas de estética e saúde "
        "no Brasil. Responda em português do Brasil, de forma objetiva e segura. "
        "Marcadores como [NOME_1] ou [CPF_1] substituem dados pessoais: use-os como estão."
    ),
)
AI_CIRCUIT_FAILURE_THRESHOLD = env.int("AI_CIRCUIT_FAILURE_THRESHOLD", default=5)
AI_CIRCUIT_WINDOW = env.int("AI_CIRCUIT_WINDOW", default=60)  # s
AI_CIRCUIT_COOLDOWN = env.int("AI_CIRCUIT_COOLDOWN", default=30)  # s
# USD per million tokens, "model=input:output" pairs separated by commas.
AI_PRICE_TABLE = env.str(
    "AI_PRICE_TABLE",
    default="gpt-4o-mini=0.15:0.60,gpt-4o=2.50:10.00,claude-3-5-haiku-latest=0.80:4.00,"
    "claude-sonnet-4-5=3.00:15.00",
)

# --- Rate limits -------------------------------------------------------------
RATE_LIMIT_WINDOW = env.int("RATE_LIMIT_WINDOW", default=60000)  # ms
RATE_LIMIT_MAX = env.int("RATE_LIMIT_MAX", default=60)

# --- Compliance (LGPD) -------------------------------------------------------
PII_REDACTION_ENABLED = env.bool("PII_REDACTION_ENABLED", default=True)
# What replaces each type of personal data before a provider sees it: TYPE:policy
# pairs (tag, surrogate or block; "*:policy" sets the default, which is tag).
# Checked at start-up by the compliance app (compliance.redaction.policy).
PII_POLICY = env.str("PII_POLICY", default="")
AUDIT_LOGGING_ENABLED = env.bool("AUDIT_LOGGING_ENABLED", default=True)
CONSENT_VALIDATION_ENABLED = env.bool("CONSENT_VALIDATION_ENABLED", default=True)
CONSENT_TERMS_VERSION = env.str("CONSENT_TERMS_VERSION", default="2026-01")
DATA_RETENTION_DAYS = env.int("DATA_RETENTION_DAYS", default=365)
# Audit events outlive chat data: they are the evidence of how it was processed.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=1825)
# Sessions deleted per purge transaction: bounds lock time and transaction size.
RETENTION_PURGE_BATCH_SIZE = env.int("RETENTION_PURGE_BATCH_SIZE", default=1000)
# Signed checkpoints of the audit chain, kept outside the database
# (compliance.anchors). One or more comma-separated keys: the first signs, all
# verify (rotation). The database never holds them, so whoever can rewrite the
# audit table cannot forge an anchor. `make run` generates one into
# var/audit-anchor.key, which DEBUG runs read when the variable is unset.
_anchor_keys = _secret("AUDIT_ANCHOR_KEY")
if not _anchor_keys and DEBUG and (VAR_DIR / "audit-anchor.key").is_file():
    _anchor_keys = (VAR_DIR / "audit-anchor.key").read_text()
AUDIT_ANCHOR_KEYS = [k.strip() for k in _anchor_keys.split(",") if k.strip()]
# Append-only directory of anchor files: its own volume, never the database's.
AUDIT_ANCHOR_DIR = Path(env.str("AUDIT_ANCHOR_DIR", default="") or VAR_DIR / "audit-anchors")
# HMAC-SHA256 key that signs audit-trail export manifests; the auditor who checks an
# export offline receives it through another channel. Unset: derived from SECRET_KEY
# (exports still verify here, but an auditor would need SECRET_KEY: set a key of its own).
AUDIT_EXPORT_KEY = _secret("AUDIT_EXPORT_KEY", default="") or hashlib.sha256(
    b"neonpro.audit-export:" + SECRET_KEY.encode()).hexdigest()

# --- Monitoring --------------------------------------------------------------
MONITORING_ENABLED = env.bool("MONITORING_ENABLED", default=True)
MONITORING_TOKEN = _secret("MONITORING_TOKEN")
LOG_LEVEL = env.str("LOG_LEVEL", default="info").upper()
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- I18n --------------------------------------------------------------------
LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
# The project's catalogue first; then translations of third-party apps that ship no
# pt_BR catalogue (django-auditlog), kept apart so that makemessages never drops them.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale" / "vendor"]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

# Debug runs serve static files straight from the apps (no collectstatic needed).
WHITENOISE_USE_FINDERS = DEBUG
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

# --- Security ----------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^api/health", r"^api/metrics"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
# The UI reads the CSRF token from the page, never from the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not DEBUG:
    # __Host- cookies are refused by browsers unless Secure, host-only and Path=/,
    # so neither a subdomain nor plain HTTP can plant or read them.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere (templates, chat.js and the admin load files only).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    },
}
# Seconds a stopping web process (SIGTERM) lets in-flight answers finish before it
# stops them (kept, marked stopped); below the 10 s orchestrators wait by default.
SHUTDOWN_GRACE_SECONDS = env.float("SHUTDOWN_GRACE_SECONDS", default=7.0)

# --- Logging -----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "monitoring.logging.ContextFilter"},
        "redact_pii": {"()": "monitoring.logging.RedactPIIFilter"},
    },
    "formatters": {"json": {"()": "monitoring.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["context", "redact_pii"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The SDKs' HTTP stack logs every request at INFO: noise on the hot path.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "anthropic": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Replaces Django's own plain-text console handler, which would bypass the
        # PII filter in DEBUG runs.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "daphne": {"level": "WARNING"},
        "asyncio": {"level": "WARNING"},
    },
}


# --- Refuse unsafe production configuration ----------------------------------
def _refuse_unsafe_production() -> None:
    missing = [
        name
        for name, value in [
            ("SECRET_KEY", SECRET_KEY),
            ("JWT_SECRET", JWT_SECRET),
            ("ENCRYPTION_KEY", ENCRYPTION_KEYS),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("AUDIT_ANCHOR_KEY", AUDIT_ANCHOR_KEYS),
        ]
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"DEBUG is off and these required settings are missing: {', '.join(missing)}"
        )
    if not PII_REDACTION_ENABLED:
        raise ImproperlyConfigured(
            "PII_REDACTION_ENABLED=false is for development only; production refuses it."
        )
    if "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS='*' is refused in production.")
    if len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_ONLY_SECRET:
        raise ImproperlyConfigured("SECRET_KEY must be a random value of at least 50 characters.")
    if any(len(key) < 32 for key in AUDIT_ANCHOR_KEYS):
        raise ImproperlyConfigured(
            "AUDIT_ANCHOR_KEY must be a random value of at least 32 characters.")


if not DEBUG:
    _refuse_unsafe_production()
