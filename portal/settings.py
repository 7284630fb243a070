"""Hangar settings: everything that varies between deployments comes from the environment, read here only."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from celery.schedules import crontab
from django.contrib.messages import constants as message_constants
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from portal.env import (
    env_bind_url,
    env_bool,
    env_database,
    env_int,
    env_list,
    env_networks,
    env_secret,
    env_str,
    env_url_scheme,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HANGAR_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", generated_file=VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Links in e-mails. Unless set, the address the web server binds: what `make run HOST=… PORT=…` gives web, worker and
# beat alike, and what it serves.
SITE_URL = (env_str("SITE_URL", "") or env_bind_url("GUNICORN_BIND", "127.0.0.1:8000")).rstrip("/")
if "://" not in SITE_URL:
    raise ImproperlyConfigured(f"SITE_URL={SITE_URL!r} must be an absolute URL such as https://hangar.example.com.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "tenants",
    "compute",
    "compute.network",
    "compute.storage",
    "compute.monitoring",
    "compute.stacks",
    "billing",
]

MIDDLEWARE = [
    "portal.logging.RequestLogMiddleware",  # first: the request id and the one log line cover everything
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ApiErrorMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "tenants.middleware.RequestContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenants.middleware.SessionActivityMiddleware",
    "portal.middleware.LoginRequiredMiddleware",
    "tenants.middleware.TenantMiddleware",
    "tenants.middleware.TwoFactorRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        # Django's, leaving no reference cycle behind a rendering (portal/templating.py).
        "BACKEND": "portal.templating.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenancy",
                "billing.context_processors.banners",
                "portal.logging.request_id",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------------------------
# SQLite runs in WAL mode with IMMEDIATE transactions and a busy timeout so that web, worker and beat can all
# write to the one file without "database is locked" errors.
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        f"sqlite:///{VAR_DIR / 'hangar.sqlite3'}",
        sqlite_options={
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        },
        # PostgreSQL prepares each hot statement (portal.sql.prepared_cursor) once a connection has run it this many
        # times: parsed and planned once per connection, not on every run. 0 never prepares, for a pooler that does
        # not keep prepared statements across transactions (PgBouncer in transaction mode before 1.21).
        prepare_threshold=env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0),
    )
}
DATABASE_IS_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads of each web process that run requests (portal/asgi.py); each keeps its own database connection.
WEB_THREADS = env_int("WEB_THREADS", 8, minimum=1)

# --- Cache (rate-limit counters, worker heartbeat) --------------------------------------------------------------
CACHE_URL = env_url_scheme("CACHE_URL", f"file://{VAR_DIR / 'cache'}", allowed=("file", "redis", "rediss", "locmem"))
if CACHE_URL.startswith("redis"):
    # The URL goes to redis-py whole (ACL user name, password, database, TLS options in the query): checked here,
    # never rewritten. (django-cache-url rebuilds it, losing the user name, the query and an IPv6 host's brackets.)
    _cache = urlsplit(CACHE_URL)
    try:
        _cache.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} has an invalid port.") from None
    if not _cache.hostname:
        raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} names no Redis host.")
    CACHES = {"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL.startswith("locmem"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    _cache_folder = CACHE_URL.removeprefix("file://")
    if not _cache_folder:
        raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} names no folder.")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": _cache_folder}}

# --- Auth ------------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 3

# Log-in throttling: five failures lock out the account and, separately, the address, for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_USERNAME_FORM_FIELD = "username"  # the log-in form posts the e-mail address as "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "tenants/accounts/locked_out.html"
AXES_VERBOSE = False
# Two-factor log-in (django-otp): the name authenticator apps show next to the account.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Hangar")
EMAIL_VERIFICATION_TTL = timedelta(days=env_int("EMAIL_VERIFICATION_TTL_DAYS", 3, minimum=1))

# --- Tenancy ---------------------------------------------------------------------------------------------------
INVITATION_TTL = timedelta(days=env_int("INVITATION_TTL_DAYS", 7, minimum=1))
ACTIVITY_RETENTION_DAYS = env_int("ACTIVITY_RETENTION_DAYS", 400, minimum=1)
DEFAULT_QUOTA = {
    "instances": env_int("QUOTA_INSTANCES", 10, minimum=0),
    "vcpus": env_int("QUOTA_VCPUS", 32, minimum=0),
    "ram_mib": env_int("QUOTA_RAM_MIB", 65536, minimum=0),
    "volume_gb": env_int("QUOTA_VOLUME_GB", 1000, minimum=0),
    "volumes": env_int("QUOTA_VOLUMES", 10, minimum=0),
    "public_ips": env_int("QUOTA_PUBLIC_IPS", 5, minimum=0),
}

# --- Compute ---------------------------------------------------------------------------------------------------
HYPERVISOR_DRIVER = env_str("HYPERVISOR_DRIVER", "simulated")  # the driver new hosts get by default
from compute.drivers import DRIVERS as _DRIVERS  # noqa: E402  (a plain module: no models, safe to import here)

if HYPERVISOR_DRIVER not in _DRIVERS:
    raise ImproperlyConfigured(f"HYPERVISOR_DRIVER={HYPERVISOR_DRIVER!r} must be one of: {', '.join(_DRIVERS)}.")
# Transitional work with no sign of progress for this long is re-enqueued by the reconciler (lost message).
COMPUTE_TASK_GRACE_SECONDS = env_int("COMPUTE_TASK_GRACE_SECONDS", 90, minimum=1)
# Before re-sending unclaimed work whose queue is empty, the reconciler waits this long for a worker that has just
# taken its message to claim it (portal.queue.wait_for_claims).
TASK_CLAIM_WAIT_SECONDS = env_int("TASK_CLAIM_WAIT_SECONDS", 2, minimum=0)

# --- The interactive console (compute/console) ------------------------------------------------------------------
# The channel layer tells a console session that another one took the machine over. In memory under `make run` (one
# machine; a takeover across web processes is still noticed within a second through the cache); Redis in production.
CHANNEL_LAYER_URL = env_url_scheme("CHANNEL_LAYER_URL", "memory://", allowed=("memory", "redis", "rediss"))
if CHANNEL_LAYER_URL.startswith("redis"):
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [CHANNEL_LAYER_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# A console session ends after this long without a key typed, and after this long in any case.
CONSOLE_IDLE_TIMEOUT = timedelta(minutes=env_int("CONSOLE_IDLE_TIMEOUT_MINUTES", 15, minimum=1))
CONSOLE_MAX_DURATION = timedelta(hours=env_int("CONSOLE_MAX_HOURS", 4, minimum=1))
# Alert webhooks may not target loopback, private or link-local addresses unless this is on (compute/monitoring).
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)

# --- Internationalisation --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
BILLING_CURRENCY = env_str("BILLING_CURRENCY", "EUR").upper()
if len(BILLING_CURRENCY) != 3 or not BILLING_CURRENCY.isalpha():
    raise ImproperlyConfigured(f"BILLING_CURRENCY={BILLING_CURRENCY!r} must be a three-letter ISO 4217 code.")
# Invoices of a month are finalized this long after it ends (late usage data, operator review).
BILLING_FINALIZE_GRACE_HOURS = env_int("BILLING_FINALIZE_GRACE_HOURS", 24, minimum=0)
# A tenant past its credit limit is on hold this long before it is suspended (machines stopped).
BILLING_SUSPEND_GRACE_HOURS = env_int("BILLING_SUSPEND_GRACE_HOURS", 72, minimum=0)
# The provider printed as the sender of every invoice (docs/billing.md#the-invoices-sender).
BILLING_PROVIDER_NAME = env_str("BILLING_PROVIDER_NAME", "Hangar Cloud Ltd")
# Lines of the address may be separated by a literal "\\n" in the variable (one line of a .env file).
BILLING_PROVIDER_ADDRESS = env_str(
    "BILLING_PROVIDER_ADDRESS", "1 Example Street\nLondon EC1A 1AA\nUnited Kingdom"
).replace("\\n", "\n")
BILLING_PROVIDER_REGISTRATION = env_str("BILLING_PROVIDER_REGISTRATION", "")
BILLING_PROVIDER_VAT_ID = env_str("BILLING_PROVIDER_VAT_ID", "")
BILLING_PROVIDER_EMAIL = env_str("BILLING_PROVIDER_EMAIL", "billing@hangar.local")

# --- Payments (billing/payments, docs/billing.md#payments) -----------------------------------------------------
# Stripe is used when both keys are set; otherwise the offline test provider (test cards only) takes payments.
# PAYMENTS_PROVIDER=none switches self-service payment off (operators record credit in the admin).
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
if bool(STRIPE_SECRET_KEY) != bool(STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set together (or neither).")
PAYMENTS_PROVIDER = env_str("PAYMENTS_PROVIDER", "stripe" if STRIPE_SECRET_KEY else "test")
if PAYMENTS_PROVIDER not in ("test", "stripe", "none"):
    raise ImproperlyConfigured(f"PAYMENTS_PROVIDER={PAYMENTS_PROVIDER!r} must be test, stripe or none.")
if PAYMENTS_PROVIDER == "stripe" and not STRIPE_SECRET_KEY:
    raise ImproperlyConfigured("PAYMENTS_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.")
# Top-ups, in whole units of BILLING_CURRENCY.
PAYMENTS_TOPUP_MIN = env_int("PAYMENTS_TOPUP_MIN", 5, minimum=1)
PAYMENTS_TOPUP_MAX = env_int("PAYMENTS_TOPUP_MAX", 5000, minimum=1)
if PAYMENTS_TOPUP_MAX < PAYMENTS_TOPUP_MIN:
    raise ImproperlyConfigured("PAYMENTS_TOPUP_MAX must not be below PAYMENTS_TOPUP_MIN.")

# --- libvirt hosts (compute/drivers/libvirt.py, docs/hypervisors.md) -------------------------------------------
# Images (scripts/build-demo-image writes here) and, in its instances/ folder, the "hangar" storage pool that holds
# instance disks and console logs on a local host. "qemu" is software emulation; set "kvm" where /dev/kvm works.
HANGAR_IMAGE_DIR = Path(env_str("HANGAR_IMAGE_DIR", str(VAR_DIR / "images"))).resolve()
LIBVIRT_DOMAIN_TYPE = env_str("LIBVIRT_DOMAIN_TYPE", "qemu")
if LIBVIRT_DOMAIN_TYPE not in ("qemu", "kvm"):
    raise ImproperlyConfigured(f"LIBVIRT_DOMAIN_TYPE={LIBVIRT_DOMAIN_TYPE!r} must be qemu or kvm.")
LIBVIRT_SHUTDOWN_TIMEOUT = env_int("LIBVIRT_SHUTDOWN_TIMEOUT", 60, minimum=1)  # seconds of ACPI before power-off

# --- Static files ----------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = VAR_DIR / "media"

# --- E-mail ----------------------------------------------------------------------------------------------------
EMAIL_URL = env_url_scheme("EMAIL_URL", "console://", allowed=("console", "smtp", "smtp+tls", "smtp+ssl", "locmem"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Hangar <hangar@localhost>")
if EMAIL_URL.startswith("console"):
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif EMAIL_URL.startswith("locmem"):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
else:
    # Parsed here: dj-email-url knows none of smtp+tls, smtp+ssl or locmem, and reads a bare smtp:// as localhost.
    _email = urlsplit(EMAIL_URL)
    if not _email.hostname:
        raise ImproperlyConfigured(f"EMAIL_URL={EMAIL_URL!r} names no SMTP host.")
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname
    try:
        EMAIL_PORT = _email.port or (465 if _email.scheme == "smtp+ssl" else 587 if _email.scheme == "smtp+tls" else 25)
    except ValueError:
        raise ImproperlyConfigured(f"EMAIL_URL={EMAIL_URL!r} has an invalid port.") from None
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = _email.scheme == "smtp+tls"
    EMAIL_USE_SSL = _email.scheme == "smtp+ssl"

# --- Security --------------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)

MESSAGE_TAGS = {message_constants.ERROR: "error"}

# --- Celery ----------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_url_scheme(
    "CELERY_BROKER_URL", "filesystem://", allowed=("filesystem", "redis", "rediss", "amqp", "amqps", "memory")
)
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    # The embedded broker: a folder both web and worker can reach, polled every 0.1 s.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    # Every process (web sends, worker consumes, beat sends) needs the folders before its first message.
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep their database connection from task to task, as the web's threads do from request to request
# (CONN_MAX_AGE and the health check apply: portal/celery.py checks the connections around every task as Django does
# around a request). Without it Celery's Django fix-up closes every connection before and after each task, and each
# task that reads the database connected again: more of a build's CPU than its statements. The fix-up still closes
# them after this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    # Every 30 s (WORKER_HEARTBEAT_SECONDS; /healthz calls the worker stale after 90 s without one).
    "worker-heartbeat": {
        "task": "portal.tasks.heartbeat",
        "schedule": float(env_int("WORKER_HEARTBEAT_SECONDS", 30, minimum=1)),
    },
    # Every minute (COMPUTE_RECONCILE_SECONDS: the fault tests run it every few seconds).
    "compute-reconcile": {
        "task": "compute.tasks.reconcile",
        "schedule": float(env_int("COMPUTE_RECONCILE_SECONDS", 60, minimum=1)),
    },
    "compute-usage-repair": {"task": "compute.tasks.usage_repair", "schedule": crontab(minute=41)},
    "network-sample-traffic": {"task": "network.tasks.sample_traffic", "schedule": 60.0},
    "network-sync-hosts": {"task": "network.tasks.sync_hosts", "schedule": 300.0},
    "api-idempotency-keys-purge": {"task": "tenants.tasks.idempotency_keys_purge", "schedule": 3600.0},
    "activity-purge": {"task": "tenants.tasks.activity_purge", "schedule": crontab(hour=3, minute=30)},
    "sessions-purge": {"task": "tenants.tasks.sessions_purge", "schedule": crontab(hour=3, minute=45)},
    "billing-meter": {"task": "billing.tasks.meter", "schedule": 300.0},
    "billing-finalize-due": {"task": "billing.tasks.finalize_due", "schedule": crontab(minute=15)},
    "billing-accounts-check": {"task": "billing.tasks.accounts_check", "schedule": 600.0},
    "billing-budgets-check": {"task": "billing.tasks.budgets_check", "schedule": 900.0},
    "billing-payments-expire": {"task": "billing.tasks.payments_expire", "schedule": 3600.0},
    "monitoring-sample": {"task": "compute.monitoring.tasks.sample", "schedule": 60.0},
    "monitoring-purge": {"task": "compute.monitoring.tasks.purge", "schedule": crontab(minute=7)},
    # Each machine's daily backup starts at its own minute of its hour: beat looks for due ones every minute.
    "storage-backups-due": {
        "task": "compute.storage.tasks.backups_run_due",
        "schedule": float(env_int("BACKUPS_DUE_SECONDS", 60, minimum=1)),
    },
    "stacks-resume": {"task": "compute.stacks.tasks.resume", "schedule": 60.0},
}
# Task modules autodiscovery does not find (it imports each app's `tasks` only).
CELERY_IMPORTS = ("compute.storage.backup_tasks",)
# Periodic tasks (heartbeat, reconciler, metering, …) have a queue of their own: a backlog of builds never holds up the
# reconciler, nor makes a busy worker look dead. A worker consumes both queues unless told otherwise (-Q); where
# builds are long, a small worker of its own for the control queue (`-Q control`) keeps it prompt.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CONTROL_QUEUE = "control"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, CONTROL_QUEUE)]
CELERY_TASK_ROUTES = {entry["task"]: {"queue": CONTROL_QUEUE} for entry in CELERY_BEAT_SCHEDULE.values()}

# --- REST API --------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.HangarAutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.BearerTokenAuthentication",
        "portal.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.api.permissions.TokenScopePermission",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.PagePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "portal.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [],  # portal.api.ratelimit counts requests (with RateLimit-* headers) instead
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "URL_FORMAT_OVERRIDE": None,  # content types are chosen by Accept only; ?format= is just another parameter
}
# Requests per credential (token, else session user, else client address); POSTs also count against writes_*.
API_RATE_LIMITS = {
    "per_hour": env_int("API_RATE_LIMIT_PER_HOUR", 3600, minimum=1),
    "burst_per_minute": env_int("API_RATE_LIMIT_BURST_PER_MINUTE", 300, minimum=1),
    "writes_per_hour": env_int("API_RATE_LIMIT_WRITES_PER_HOUR", 600, minimum=1),
    "writes_burst_per_minute": env_int("API_RATE_LIMIT_WRITES_BURST_PER_MINUTE", 60, minimum=1),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hangar API",
    "DESCRIPTION": "Launch and manage virtual machines, keys and billing for your organisation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "EventResultEnum": "tenants.models.EventResult",
        # Snapshots, backups and private images go through the same states.
        "CopyStateEnum": "compute.storage.models.SnapshotState",
        "StackRunStateEnum": "compute.stacks.models.RunState",
        "StackRunKindEnum": "compute.stacks.models.RunKind",
        "BackupKindEnum": "compute.storage.backup_models.BackupKind",
        "CreditEntryKindEnum": "billing.models.CreditEntry.Kind",
    },
}

# --- Metrics (portal/metrics.py) -------------------------------------------------------------------------------
# /metrics answers to these networks, or to `Authorization: Bearer <METRICS_TOKEN>` from anywhere.
METRICS_TOKEN = env_secret("METRICS_TOKEN") if env_str("METRICS_TOKEN", "") or env_str("METRICS_TOKEN_FILE", "") else ""
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"])

# --- Logging ---------------------------------------------------------------------------------------------------
LOG_FORMAT = env_str("LOG_FORMAT", "plain")  # plain text, or one JSON object per line (portal/logging.py)
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "portal.logging.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "portal.logging.JsonFormatter"},
    },
    "filters": {
        "heartbeat_at_debug": {"()": "portal.tasks.HeartbeatAtDebug"},
        # Request id, tenant, user or token (and task) on every line.
        "context": {"()": "portal.logging.ContextFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Cutting a font down for every invoice PDF logs a dozen lines at INFO (every glyph kept, by name).
        "fontTools": {"level": "WARNING"},
        # At DEBUG these would print WebSocket frames, and so what people type in a console: never below INFO.
        "websockets": {"level": "INFO"},
        "uvicorn.protocols": {"level": "INFO"},
        # Where beat logs a task sent, and a worker one received and one done.
        **{
            name: {"filters": ["heartbeat_at_debug"]}
            for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace", "hangar.task")
        },
        # portal.logging's line per request says it already; server errors still come with their traceback.
        "django.request": {"level": "ERROR"},
    },
}
