"""Settings for healthorch: every knob comes from the environment (see .env.example).

Invalid values fail here, at start, with a message naming the variable (healthorch.config).
Defaults are the embedded, zero-setup ones: SQLite in ./var, a filesystem Celery broker and an
in-process cache, so `make run` needs no server. Production sets DATABASE_URL (PostgreSQL),
CELERY_BROKER_URL and CACHE_URL (Redis).
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from healthorch import config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(config.string("HEALTHORCH_VAR_DIR", str(BASE_DIR / "var")))

# An optional .env file beside manage.py; real environment variables win over it.
_env_file = BASE_DIR / ".env"
if _env_file.exists():
    import environ

    environ.Env.read_env(str(_env_file), overwrite=False)

DEBUG = config.boolean("DEBUG", False)

# A dev default only when DEBUG is on, so a production process can never run on a known key.
SECRET_KEY = config.string("SECRET_KEY", None)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off")
    SECRET_KEY = "dev-insecure-healthorch-key-only-for-debug-0123456789abcdefghij"  # noqa: S105

ALLOWED_HOSTS = config.str_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is off")
CSRF_TRUSTED_ORIGINS = config.str_list("CSRF_TRUSTED_ORIGINS", [])

DJANGO_APPS = [
    # Django's admin with healthorch's site (dashboard, tenant members, organization switcher).
    "apps.console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "djstripe",
    # Accounts in the browser: sign-up with email verification, login by email, password
    # reset, TOTP and passkeys (docs/decisions/0019-accounts-with-allauth.md).
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Single sign-on per organization through its OpenID Connect provider (apps.accounts.sso).
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]
# Bottom floor first, in the order of the import contract (docs/architecture.md): each app may
# import only those listed before it.
LOCAL_APPS = [
    "apps.core",
    "apps.audit",
    "apps.plans",
    "apps.tenants",
    "apps.monitors",
    "apps.telemetry",
    "apps.incidents",
    "apps.alerts",
    "apps.healing",
    "apps.reports",
    "apps.billing",
    "apps.statuspages",
    "apps.accounts",
    "apps.console.apps.ConsoleConfig",
    # Last: connects every app's listeners to the seams they hear (healthorch/wiring.py).
    "healthorch.apps.HealthorchConfig",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # http_requests_total / http_request_duration_seconds by route (apps/core/middleware.py).
    "apps.core.middleware.RequestMetricsMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    # Every /api/ error in the one JSON shape; query strings with NUL or surrogates are a 400.
    "apps.core.middleware.ApiErrorMiddleware",
    # A locked, full or unreachable database: 503 with Retry-After, not a 500 (any path).
    "apps.core.middleware.DatabaseFaultMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware: an /api/ path answers with or without its trailing slash.
    "apps.core.middleware.ApiSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Remembers the request so audit-log entries know who acted (apps/audit/context.py).
    "apps.audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Members of an organization that requires a second factor set one up before the console.
    "apps.accounts.middleware.SecondFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

if not DEBUG:
    # Serves collected static files (the admin's) under gunicorn; runserver does it in DEBUG.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "healthorch.urls"
WSGI_APPLICATION = "healthorch.wsgi.application"
ASGI_APPLICATION = "healthorch.asgi.application"

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

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": config.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'healthorch.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"].endswith("sqlite3"):
    # SQLite is only the laptop default. IMMEDIATE transactions + WAL + a busy timeout stop
    # "database is locked" when web, worker and beat write at once
    # (docs/decisions/0003-embedded-default-needs-no-server.md).
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        # How long a write waits for another process's lock before "database is locked"
        # (answered 503 `database_busy`, docs/operations/failures.md).
        "timeout": config.integer("SQLITE_BUSY_TIMEOUT_SECONDS", 20, minimum=1),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _db["CONN_MAX_AGE"] = 0
    # A test database in a file, not in memory, so `pytest --reuse-db` keeps it: creating it
    # runs dj-stripe's migrations (~500 operations, about a minute) every time otherwise.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test_healthorch.sqlite3")}
else:
    # Persistent connections: ~2.5x the request rate of a connection per request
    # (docs/decisions/0004-persistent-database-connections.md).
    _db["CONN_MAX_AGE"] = config.integer("CONN_MAX_AGE", 60, minimum=0)
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {})["connect_timeout"] = config.integer(
        "DATABASE_CONNECT_TIMEOUT", 5, minimum=1
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (throttling, rate limits) ---------------------------------------------------------
# Rate limits and login throttles count here, so every process must see the same cache: Redis
# (CACHE_URL) in production; without it, a SQLite file of its own in VAR_DIR that all the
# processes of this machine share (docs/decisions/0015-rate-limit-counters.md).
if config.string("CACHE_URL", ""):
    CACHES = {"default": config.cache("CACHE_URL", "")}
else:
    CACHES = {
        "default": {
            # A full disk or a held lock makes it miss, as an unreachable Redis does.
            "BACKEND": "apps.core.cache.ResilientSQLiteCache",
            "LOCATION": str(VAR_DIR / "cache.sqlite3"),
        }
    }
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # While Redis cannot be reached, reads miss (and fall back to the database), writes are
    # dropped and rate limits are not counted; the outage is logged once (apps/core/cache.py).
    CACHES["default"]["BACKEND"] = "apps.core.cache.ResilientRedisCache"
    # A request waits at most this long for an unreachable cache before treating it as a miss.
    _cache_wait = config.integer("CACHE_SOCKET_TIMEOUT_SECONDS", 1, minimum=1)
    CACHES["default"].setdefault("OPTIONS", {}).update(
        socket_connect_timeout=_cache_wait, socket_timeout=_cache_wait
    )

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# One sign-in for the console and the account pages: allauth's, by email (apps/accounts).
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"
AUTHENTICATION_BACKENDS = [
    # The API's login authenticates by username (the email) with Django's own backend.
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "apps.accounts.forms.LoginForm",
    "signup": "apps.accounts.forms.SignupForm",
}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False  # a link scanner's GET must not confirm the address
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[healthorch] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
ACCOUNT_ALLOW_SIGNUP = config.boolean("ACCOUNT_ALLOW_SIGNUP", True)
# Failed logins are counted by healthorch's own throttles, shared with the API's login
# (apps/tenants/throttling.py); allauth's other limits (sign-up, reset mails) stay on.
ACCOUNT_RATE_LIMITS = {"login_failed": False}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "healthorch"
# Passkeys need a secure origin; http://127.0.0.1 counts as one only in DEBUG.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
# Single sign-on: the providers are the organizations' own configurations (never rows of
# allauth's SocialApp, whose secret is stored in clear): apps.accounts.sso.SocialAccountAdapter.
SOCIALACCOUNT_ADAPTER = "apps.accounts.sso.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"  # the provider vouches for its verified domain
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True  # an existing account of that address signs in
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production values; `manage.py check --deploy` is clean with DEBUG off) ----------
SECURE_SSL_REDIRECT = config.boolean("SECURE_SSL_REDIRECT", not DEBUG)
# Health probes come from load balancers and kubelets over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$", r"^live$", r"^metrics$"]
SESSION_COOKIE_SECURE = config.boolean("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = config.boolean("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = config.integer("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = config.boolean("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if config.boolean("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a deliberate opt-in (SECURE_HSTS_PRELOAD); it is hard to undo.
    "security.W021",
]

# --- Email ----------------------------------------------------------------------------------
_email = config.email("EMAIL_URL", "consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT", 25) or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = config.string("DEFAULT_FROM_EMAIL", "healthorch <alerts@healthorch.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------------------------
# (A host, although the filesystem transport ignores it, keeps kombu from warning on each start.)
CELERY_BROKER_URL = config.broker("CELERY_BROKER_URL", "filesystem://localhost//")
# How long a message a worker took stays invisible before Redis hands it to another worker
# (below); the embedded filesystem broker has no such timeout.
CELERY_VISIBILITY_TIMEOUT_SECONDS = config.integer(
    "CELERY_VISIBILITY_TIMEOUT_SECONDS", 90, minimum=30
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport needs no server: in and out must be the same folder, and the
    # control folder must be explicit for broadcast commands (inspect ping) to work.
    _queue_dir = VAR_DIR / "celery" / "queue"
    _control_dir = VAR_DIR / "celery" / "control"
    for _d in (_queue_dir, _control_dir):
        _d.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_control_dir),
    }
else:
    # Redis: a message a worker took but never acknowledged (the worker was killed) goes back
    # to its queue once it has been out this long. It must be longer than any late-acknowledged
    # task may run, or a task still running is handed to a second worker; tasks that may run
    # longer acknowledge on receipt (their next scheduled run redoes them), and a countdown is
    # shortened to fit (healthorch/celery.py). The sweep for such messages runs every 5 s, so a
    # killed worker's batch runs again within this plus 5 seconds, not kombu's default hour.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS,
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        # An unreachable broker fails a connect in seconds, not after the system's TCP timeout.
        "socket_connect_timeout": 5,
    }
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE

# --- API ------------------------------------------------------------------------------------
# Bounds of an API request body (apps/core/parsers.py): larger is a 413, deeper a 400.
API_MAX_BODY_BYTES = config.integer("API_MAX_BODY_BYTES", 2_621_440, minimum=1024)
API_MAX_JSON_DEPTH = config.integer("API_MAX_JSON_DEPTH", 64, minimum=8)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES  # Django's own read of a body stops there too

# --- Telemetry ------------------------------------------------------------------------------
# A live log tail (GET /api/v1/logs/tail, server-sent events) stays open at most this long, then
# ends and the client reconnects: under gunicorn's sync workers each open tail holds a worker.
TELEMETRY_TAIL_SECONDS = config.integer("TELEMETRY_TAIL_SECONDS", 25, minimum=1)
# How often an open tail asks the database for new lines (seconds).
TELEMETRY_TAIL_POLL_SECONDS = config.integer("TELEMETRY_TAIL_POLL_SECONDS", 1, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.tenants.authentication.ApiKeyAuthentication",
        "apps.tenants.authentication.BearerTokenAuthentication",
        "apps.tenants.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "register": config.rate("REGISTER_THROTTLE_RATE", "20/hour"),
        "bootstrap": "60/hour",
    },
    # Behind N trusted proxies, the client is the Nth address from the right of
    # X-Forwarded-For; with 0, REMOTE_ADDR (X-Forwarded-For is then ignored, so it can't be
    # spoofed to dodge throttles).
    "NUM_PROXIES": config.integer("NUM_PROXIES", 0, minimum=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "healthorch API",
    "DESCRIPTION": (
        "Multi-tenant uptime monitoring. Authenticate with `X-API-Key: hk_...` (or "
        "`Authorization: Bearer hk_...`) or a user token (`Authorization: Token ...`). "
        "Users in several organizations pick one with `X-Organization: <slug>`."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/(v1/)?",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `kind` or `status`; name each choice set once.
    "ENUM_NAME_OVERRIDES": {
        "MonitorKindEnum": "apps.monitors.models.MonitorKind",
        "MonitorStatusEnum": "apps.monitors.models.MonitorStatus",
        "IncidentStatusEnum": "apps.incidents.models.IncidentStatus",
        "AlertRuleKindEnum": "apps.incidents.models.RuleKind",
        "WindowKindEnum": "apps.incidents.models.WindowKind",
        "RecurrenceEnum": "apps.incidents.models.Recurrence",
        "SeverityEnum": "apps.incidents.models.Severity",
        "ChannelKindEnum": "apps.alerts.models.ChannelKind",
        "NotificationKindEnum": "apps.alerts.models.NotificationKind",
        "NotificationStatusEnum": "apps.alerts.models.NotificationStatus",
        "HealingDecisionEnum": "apps.healing.models.Decision",
        "HealingAttemptStatusEnum": "apps.healing.models.AttemptStatus",
        "HealingVerificationEnum": "apps.healing.models.Verification",
        "AuditActorKindEnum": "apps.audit.models.ActorKind",
        "IncidentUpdateStatusEnum": "apps.statuspages.models.UpdateStatus",
    },
}

# --- Product knobs --------------------------------------------------------------------------
HEALTHORCH_DEV_BOOTSTRAP = config.boolean("HEALTHORCH_DEV_BOOTSTRAP", False)
# API keys record their last use at most this often, so verifying a key is a read, not a write.
API_KEY_LAST_USED_RESOLUTION_SECONDS = config.integer(
    "API_KEY_LAST_USED_RESOLUTION_SECONDS", 60, minimum=1
)
# Failed logins allowed per window before 429: per (client, email) and per client.
LOGIN_FAILURES_PER_EMAIL = config.integer("LOGIN_FAILURES_PER_EMAIL", 5, minimum=1)
LOGIN_FAILURES_PER_CLIENT = config.integer("LOGIN_FAILURES_PER_CLIENT", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = config.integer("LOGIN_FAILURE_WINDOW_SECONDS", 300, minimum=1)
# Fernet keys for secrets at rest (newest first); empty = derived from SECRET_KEY.
HEALTHORCH_ENCRYPTION_KEYS = config.str_list("HEALTHORCH_ENCRYPTION_KEYS", [])
# Let monitors target loopback/private addresses. Off for a hosted service (SSRF guard); the
# embedded default and the tests turn it on because their targets live on 127.0.0.1.
HEALTHORCH_ALLOW_PRIVATE_TARGETS = config.boolean("HEALTHORCH_ALLOW_PRIVATE_TARGETS", DEBUG)
# Run each check worker's check loop in a child process of its own, beside the process that
# loads and records (apps.monitors.checkproc; decision 0027). On for check workers on hosts
# with a core to spare for it; off keeps everything in one process (the embedded default).
HEALTHORCH_CHECK_PROCESS = config.boolean("HEALTHORCH_CHECK_PROCESS", False)
# `migrate` on a database without tables builds it from the final state in one step.
HEALTHORCH_BUILD_EMPTY_DATABASE = config.boolean("HEALTHORCH_BUILD_EMPTY_DATABASE", True)
# Check regions: each is a Celery queue `checks.<region>` served by its own workers.
HEALTHORCH_REGIONS = config.str_list("HEALTHORCH_REGIONS", ["default"])
# Watching the watcher: before recording failures, workers fetch this URL (a target known to
# be up, outside the customers' services); if it fails too, the failures are the checker's
# own uplink and are recorded as inconclusive. Empty: off.
HEALTHORCH_CANARY_URL = config.string("HEALTHORCH_CANARY_URL", "")
# Beat pings this URL every minute (an outside heartbeat service) so someone notices when
# healthorch itself stops; the ping is withheld while dispatch is stale (below). Empty: off.
HEALTHORCH_SELF_HEARTBEAT_URL = config.string("HEALTHORCH_SELF_HEARTBEAT_URL", "")
# Dispatch is stale when a due check has waited this long without being claimed (beat, the
# worker running the dispatch, or the broker stopped): /health answers 503 naming the
# scheduler, and the self heartbeat goes quiet. The dispatcher runs every 2 s.
HEALTHORCH_SCHEDULER_STALE_SECONDS = config.integer(
    "HEALTHORCH_SCHEDULER_STALE_SECONDS", 30, minimum=5
)
# The public status page the front page links to as an example (empty: no link).
HEALTHORCH_DEMO_STATUS_PAGE = config.string("HEALTHORCH_DEMO_STATUS_PAGE", "/status/demo/")
READY_CHECK_TIMEOUT_SECONDS = config.integer("READY_CHECK_TIMEOUT_SECONDS", 3, minimum=1)

# --- Alerts ---------------------------------------------------------------------------------
# Delivery attempts per notification before it is `dead`; the wait after attempt n is
# ALERTS_RETRY_BASE_SECONDS * 2**(n-1), +-20% jitter (6 attempts: 1+2+4+8+16 = ~31 min).
ALERTS_MAX_ATTEMPTS = config.integer("ALERTS_MAX_ATTEMPTS", 6, minimum=1)
ALERTS_RETRY_BASE_SECONDS = config.integer("ALERTS_RETRY_BASE_SECONDS", 60, minimum=1)
# Opened notices for one organization and channel within this window are grouped: the first
# goes out at once, later ones are held ALERTS_GROUP_HOLD_SECONDS and sent as one message.
ALERTS_GROUP_WINDOW_SECONDS = config.integer("ALERTS_GROUP_WINDOW_SECONDS", 60, minimum=0)
ALERTS_GROUP_HOLD_SECONDS = config.integer("ALERTS_GROUP_HOLD_SECONDS", 5, minimum=1)
# A row left `sending` this long belongs to a worker that died (the task's hard limit is 60 s).
ALERTS_SENDING_LEASE_SECONDS = config.integer("ALERTS_SENDING_LEASE_SECONDS", 120, minimum=30)
# Links in notifications point here (e.g. https://healthorch.example.com); empty: no link.
HEALTHORCH_PUBLIC_URL = config.string("HEALTHORCH_PUBLIC_URL", "")

# --- Status pages ---------------------------------------------------------------------------
# Public pages are rendered at most this often per page (0: never cached) and sent with
# `Cache-Control: public, max-age=` this; private pages are never cached.
STATUS_PAGE_CACHE_SECONDS = config.integer("STATUS_PAGE_CACHE_SECONDS", 30, minimum=0)
# Badges: `Cache-Control: public, max-age=` this.
BADGE_CACHE_SECONDS = config.integer("BADGE_CACHE_SECONDS", 60, minimum=0)
# Email subscriptions a client (IP address) may request per minute.
STATUS_SUBSCRIBE_PER_MINUTE = config.integer("STATUS_SUBSCRIBE_PER_MINUTE", 5, minimum=1)

# --- Healing and root-cause analysis ---------------------------------------------------------
# An Ollama-compatible server (`POST <url>/api/generate`) that rewrites the root-cause evidence
# as prose. Empty (the default): off, the deterministic summary is returned.
ROOT_CAUSE_LLM_URL = config.string("ROOT_CAUSE_LLM_URL", "")
ROOT_CAUSE_LLM_MODEL = config.string("ROOT_CAUSE_LLM_MODEL", "llama3.2")
ROOT_CAUSE_LLM_TIMEOUT_SECONDS = config.integer("ROOT_CAUSE_LLM_TIMEOUT_SECONDS", 10, minimum=1)

# --- Stripe / dj-stripe (used only by apps.billing) -----------------------------------------
STRIPE_LIVE_MODE = config.boolean("STRIPE_LIVE_MODE", False)
STRIPE_TEST_SECRET_KEY = config.string("STRIPE_TEST_SECRET_KEY", "") or config.string(
    "STRIPE_SECRET_KEY", ""
)
STRIPE_LIVE_SECRET_KEY = config.string("STRIPE_LIVE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = config.string("STRIPE_PUBLISHABLE_KEY", "")
if _stripe_host := config.string("STRIPE_API_HOST", ""):
    STRIPE_API_HOST = _stripe_host
DJSTRIPE_WEBHOOK_SECRET = config.string("DJSTRIPE_WEBHOOK_SECRET", "")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
# The organization, not the user, pays: one subscription per tenant.
DJSTRIPE_SUBSCRIBER_MODEL = "tenants.Organization"
DJSTRIPE_SUBSCRIBER_MODEL_MIGRATION_DEPENDENCY = "0001_initial"
# Where Checkout and the Billing Portal send the customer back (Stripe replaces
# {CHECKOUT_SESSION_ID} itself).
BILLING_SUCCESS_URL = config.string(
    "BILLING_SUCCESS_URL", "http://localhost:8000/billing/done?session_id={CHECKOUT_SESSION_ID}"
)
BILLING_CANCEL_URL = config.string("BILLING_CANCEL_URL", "http://localhost:8000/billing/cancelled")
BILLING_PORTAL_RETURN_URL = config.string("BILLING_PORTAL_RETURN_URL", "http://localhost:8000/")
# A subscription whose payment failed (past_due) keeps its plan this long, then goes free.
BILLING_GRACE_DAYS = config.integer("BILLING_GRACE_DAYS", 7, minimum=0)
# Stripe calls made while a user waits: fail fast and answer 503 instead of hanging a worker.
BILLING_STRIPE_TIMEOUT_SECONDS = config.integer("BILLING_STRIPE_TIMEOUT_SECONDS", 10, minimum=1)
BILLING_STRIPE_MAX_RETRIES = config.integer("BILLING_STRIPE_MAX_RETRIES", 1, minimum=0)

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = config.choice(
    "LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], upper=True
)
LOG_FORMAT = config.choice("LOG_FORMAT", "json", ["json", "console"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "healthorch.logging.ContextFilter"},
        # A task or beat tick failing on a locked, full or unreachable database: one line, no
        # traceback per failure for the length of the outage (apps/core/dbfaults.py).
        "database_faults": {"()": "apps.core.dbfaults.QuietDatabaseFaults"},
    },
    "formatters": {
        "json": {"()": "healthorch.logging.JsonFormatter"},
        "console": {
            "format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "database_faults"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"level": LOG_LEVEL, "propagate": True},
        # Request logging is ours (RequestIdMiddleware); Django's own would log every 4xx twice.
        "django.request": {"level": "ERROR", "propagate": True},
        "django.db.backends": {"level": "INFO", "propagate": True},
        "celery": {"level": LOG_LEVEL, "propagate": True},
        # The stripe library logs two INFO lines per API call; our billing logs say what matters.
        "stripe": {"level": "WARNING", "propagate": True},
    },
}

PROMETHEUS_EXPORT_MIGRATIONS = False
