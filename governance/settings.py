"""Settings for the governance portal.

Every setting that differs between a laptop and production comes from the environment
(see README "Configuration"). Two shapes are supported:

* embedded (default): SQLite file in the project folder, django-q2 ORM broker, mail written to
  files under ``var/mail`` that the user can read;
* production (``DJANGO_ENV=production``): PostgreSQL, Redis broker and cache, SMTP, and the
  security settings that make ``manage.py check --deploy`` clean.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env file is optional; the environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
TESTING = env.bool("GOVERNANCE_TESTING", default=False)

INSECURE_DEV_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEV_KEY)
if PRODUCTION and (SECRET_KEY == INSECURE_DEV_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured(
        "DJANGO_ENV=production needs a real SECRET_KEY (at least 50 random characters), "
        "for example: python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )

DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ENV=production needs ALLOWED_HOSTS (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The public address used in links inside emails and webhooks. ``make run ADDR=...`` (runportal)
# passes its address to the web server and the worker when SITE_URL is not set.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Demo mode lists the demo accounts on the login page; never in production.
DEMO_MODE = env.bool("DEMO_MODE", default=not PRODUCTION)

INSTALLED_APPS = [
    # Django's admin with the portal's site: own password changes go through the audited service.
    "governance.admin_config.PortalAdminConfig",
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
    "guardian",
    "django_q",
    "social_django",
    "simple_history",
    # Failed sign-in counting and lockouts (governance/login_throttle.py).
    "axes",
    "governance",
    "governance.webhooks",
    "governance.controls",
    "inventory",
    "inventory.discovery",
    "approvals",
    "approvals.campaigns",
    "runtime",
]

MIDDLEWARE = [
    # First, so that its request latencies include every other middleware (governance.observability).
    "governance.observability.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "governance.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Body size (413) and NUL characters, before anything reads the request.
    "governance.request_limits.RequestLimitsMiddleware",
    # Idempotency-Key on /api/v1/ POSTs (needs the session user, so after authentication).
    "governance.api.idempotency.IdempotencyMiddleware",
    # One transaction per write request; an error response rolls it back (after the key's claim).
    "governance.transactions.AtomicWriteRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "social_django.middleware.SocialAuthExceptionMiddleware",
    "governance.middleware.AuditorReadOnlyMiddleware",
    "governance.middleware.DomainErrorMiddleware",
    # The portal's 404 page also with DEBUG on (after CommonMiddleware's trailing-slash redirect).
    "governance.middleware.PortalNotFoundMiddleware",
    # Last, as axes asks: turns a sign-in that just locked (or is locked) into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"

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
                "social_django.context_processors.backends",
                "governance.context_processors.portal",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Without these, concurrent web + worker writes log "database is locked" and django-q2
    # silently drops task results. IMMEDIATE also serialises writers the way
    # select_for_update does on PostgreSQL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # Each developer or CI job can point tests at its own test database name.
    if env.str("TEST_DATABASE_NAME", default=""):
        DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and background work --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Deployments (or test runs) sharing one Redis database keep their cache entries apart by prefix.
    CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "governance"}}

Q_CLUSTER: dict[str, object] = {
    # The queue's name: every web process and worker of one deployment must share it; deployments
    # (or test runs) sharing one Redis keep their queues apart with different names.
    "name": env.str("Q_NAME", default="governance"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    # retry must exceed timeout, otherwise a slow task is handed out twice.
    "retry": env.int("Q_TIMEOUT", default=300) + 60,
    "max_attempts": 5,
    "catch_up": False,
    "save_limit": 500,
    "queue_limit": 50,
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1
# Connections a campaign's deadline uses on PostgreSQL (its task's own aside): one writes a
# chunk's items and grants while another appends the chunk before it to the audit trail. Two
# keep a database core and the task's core busy; 1 writes the chunks one after the other.
CAMPAIGN_DEADLINE_WORKERS = env.int("CAMPAIGN_DEADLINE_WORKERS", default=2)
# The only functions the worker runs: the public functions of these modules and the periodic
# tasks the apps register in code (governance/scheduling.py). A task or Schedule naming anything
# else (say "subprocess.getoutput") fails with TaskRefused before it is called.
Q_TASK_MODULES = (
    "governance.tasks",
    "governance.webhooks.tasks",
    "governance.controls.tasks",
    "governance.observability.tasks",
    "inventory.tasks",
    "inventory.discovery.tasks",
    "approvals.tasks",
    "approvals.campaigns.tasks",
    "runtime.tasks",
)

# --- Email ----------------------------------------------------------------------------------
MAIL_DIR = VAR_DIR / "mail"
_EMAIL_URL = env.str("EMAIL_URL", default="filemail://var/mail")
EMAIL_CONFIG = environ.Env.email_url_config(_EMAIL_URL)
vars().update(EMAIL_CONFIG)
if EMAIL_CONFIG.get("EMAIL_BACKEND", "").endswith("filebased.EmailBackend"):
    # django-environ drops the leading "/" of filemail:///abs/path, so read the path ourselves:
    # filemail://var/mail is relative to the project folder, filemail:///srv/mail absolute.
    _mail_path = _EMAIL_URL.split("://", 1)[1]
    EMAIL_FILE_PATH = str(BASE_DIR / _mail_path) if _mail_path else str(MAIL_DIR)
    # One readable .eml file per email (Django's writes a connection's messages into one file).
    EMAIL_BACKEND = "governance.mail.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AI Governance Portal <governance@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 10
# Outbox delivery: attempts before an email is marked failed, and the first retry delay.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=60)

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "governance.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out sign-in before any password is checked (governance/login_throttle.py).
    "axes.backends.AxesStandaloneBackend",
    "social_core.backends.open_id_connect.OpenIdConnectAuth",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # The default hasher costs ~0.4 s per check: a fast one for tests only, never in a deployment.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Generic OpenID Connect single sign-on, configured only from the environment.
OIDC_ENABLED = bool(env.str("OIDC_ISSUER", default=""))
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = env.str("OIDC_ISSUER", default="").rstrip("/")
SOCIAL_AUTH_OIDC_KEY = env.str("OIDC_CLIENT_ID", default="")
SOCIAL_AUTH_OIDC_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
SOCIAL_AUTH_OIDC_SCOPE = env.list("OIDC_SCOPES", default=["openid", "profile", "email", "groups"])
SOCIAL_AUTH_OIDC_USERNAME_KEY = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
# PKCE (S256) on the authorization code flow, so that a code intercepted on its way back cannot be
# redeemed by anyone but the browser session that asked for it. Providers that require it refuse
# requests without it; providers that do not know it ignore the parameters.
SOCIAL_AUTH_OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
# The claim that carries the user's IdP groups, and how IdP groups map to portal roles:
# "idp-group=role,idp-group=role" (roles: business_user, reviewer, iam_admin, auditor, and the
# reviewer pools iam_reviewers, security_reviewers).
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_GROUP_ROLE_MAP = env.dict(
    "OIDC_GROUP_ROLE_MAP",
    default={
        "ai-portal-users": "business_user",
        "ai-portal-reviewers": "reviewer",
        "ai-portal-iam-reviewers": "iam_reviewers",
        "ai-portal-security": "security_reviewers",
        "ai-portal-admins": "iam_admin",
        "ai-portal-auditors": "auditor",
    },
)
# Whether the first SSO login of someone without a portal account creates one (off: refused
# with a message; the IAM team creates accounts).
OIDC_CREATE_USERS = env.bool("OIDC_CREATE_USERS", default=True)
# A first SSO login reaches the existing portal account with the same username (a deactivated
# one stays refused) instead of creating a second account.
OIDC_LINK_BY_USERNAME = env.bool("OIDC_LINK_BY_USERNAME", default=True)
# Users who log in through the IdP with none of the mapped groups get this role ("" for none).
OIDC_DEFAULT_ROLE = env.str("OIDC_DEFAULT_ROLE", default="business_user")
SOCIAL_AUTH_LOGIN_ERROR_URL = "/accounts/login/"
SOCIAL_AUTH_RAISE_EXCEPTIONS = False
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "social"
# social-core 7's default pipeline (incl. social_names), plus: refuse an ID token from another
# issuer than OIDC_ISSUER, refuse a deactivated portal account before anything about it is updated,
# and sync roles from the IdP groups on every login.
SOCIAL_AUTH_PIPELINE = (
    "governance.sso.refuse_foreign_issuer",
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "governance.sso.refuse_inactive_user",
    "governance.sso.link_existing_account",
    "governance.sso.refuse_unknown_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "social_core.pipeline.user.user_details",
    "governance.sso.sync_roles_from_groups",
)

# --- Login throttling (django-axes; rules in governance/login_throttle.py) -----------------------
# Failed password sign-ins (portal and admin login alike) are counted per account name and per
# client address; past a limit sign-in is locked for LOGIN_LOCKOUT_SECONDS, doubling with each
# further failure up to LOGIN_LOCKOUT_MAX_SECONDS. Failures are forgotten a window after the last
# one. Single sign-on is never throttled here. Every lockout is an audit event (user.locked_out).
LOGIN_THROTTLE_ENABLED = env.bool("LOGIN_THROTTLE_ENABLED", default=True)
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env.int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=300)
LOGIN_LOCKOUT_MAX_SECONDS = env.int("LOGIN_LOCKOUT_MAX_SECONDS", default=3600)
LOGIN_FAILURE_WINDOW_HOURS = env.int("LOGIN_FAILURE_WINDOW_HOURS", default=24)
AXES_ENABLED = LOGIN_THROTTLE_ENABLED
AXES_HANDLER = "governance.login_throttle.PortalLockoutHandler"
AXES_FAILURE_LIMIT = "governance.login_throttle.failure_limit"
AXES_COOLOFF_TIME = "governance.login_throttle.failure_window"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "governance.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "governance.login_throttle.client_address"
AXES_WHITELIST_CALLABLE = "governance.login_throttle.is_single_sign_on"
# Attempts refused during a lockout neither count nor extend it; a success clears only the
# account's own failures (the handler does it, not axes' reset of every matching address).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
# Successful sign-ins are not logged by axes (the sessions are the portal's business); no axes
# pages in the admin: they would let staff unlock without an audit event. An operator clears a
# lockout with `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False

# --- Object permissions (guardian) ------------------------------------------------------------
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.TokenAuthentication",
        "governance.api.authentication.SessionAuthentication",
        # Last: an anonymous call from an address over its failed-authentication limit is a 429.
        "governance.api.authentication.AddressGate",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "governance.api.permissions.AuditorsReadOnly",
    ],
    "DEFAULT_PAGINATION_CLASS": "governance.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        # DRF's, but an unknown field is a 400 and the schema lists the fields (not silently ignored).
        "governance.api.ordering.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's, with a bound on nesting (a deep document is a 400, not a RecursionError).
    "DEFAULT_PARSER_CLASSES": ["governance.api.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per token, per user and per anonymous address (rates in API_RATE_LIMITS below), all checked
    # before any is counted: a call refused by one limit uses up none of the others.
    "DEFAULT_THROTTLE_CLASSES": ["governance.api.throttles.ApiRateThrottle"],
}
# API rate limits ("<n>/<sec|min|hour|day>", empty for none), counted in the cache (Redis in
# production). A call over a limit gets a 429 problem with Retry-After.
API_RATE_LIMITS = {
    "token": env.str("API_RATE_LIMIT_TOKEN", default="600/min"),
    "user": env.str("API_RATE_LIMIT_USER", default="1200/min"),
    "anon": env.str("API_RATE_LIMIT_ANON", default="60/min"),
    # Endpoints machines call on every request they serve (the decision API), per token and per
    # account, instead of the two limits above.
    "machine_token": env.str("API_RATE_LIMIT_MACHINE_TOKEN", default="300/sec"),
    "machine_user": env.str("API_RATE_LIMIT_MACHINE_USER", default="600/sec"),
    # Calls refused for their credentials (an invalid, expired or revoked token; no credentials
    # on an endpoint that needs them), per address. Over it, every call from that address that is
    # not already signed in gets the 429 before its token is even looked up.
    "auth_failure": env.str("API_RATE_LIMIT_AUTH_FAILURES", default="30/min"),
}
# Outbound webhooks: HTTP timeout per attempt, exponential backoff (base, cap) and how long a
# delivery is retried before it is given up (a day).
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
WEBHOOK_RETRY_HOURS = env.int("WEBHOOK_RETRY_HOURS", default=24)
# Outbound HTTP (governance.outbound, the one client for it): every request the portal makes
# (webhooks, key fetches, discovery) goes to public addresses only, on these ports, within a total
# time and a response size cap; redirects are not followed. OUTBOUND_ALLOWED_HOSTS
# ("host" or "host:port", comma-separated; empty by default) names hosts the operator trusts:
# for them the address rule is lifted (e.g. 127.0.0.1:8765 for a local receiver in development),
# and webhooks may use plain http; "host:port" also allows that port.
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
OUTBOUND_ALLOWED_PORTS = env.list("OUTBOUND_ALLOWED_PORTS", cast=int, default=[80, 443])
OUTBOUND_TIMEOUT_SECONDS = env.float("OUTBOUND_TIMEOUT_SECONDS", default=10.0)
OUTBOUND_MAX_RESPONSE_BYTES = env.int("OUTBOUND_MAX_RESPONSE_BYTES", default=1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Governance Portal API",
    "DESCRIPTION": (
        "Inventory, approvals, recertification and audit for AI integrations (non-human identities). "
        "Authenticate with the browser session or `Authorization: Token <key>`; errors are RFC 9457 "
        "problem details."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Docs pages use bundled assets: no CDN is reachable from an air-gapped deployment.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Problem-details responses and the Idempotency-Key header on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "governance.api.schema.postprocess_problem_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "AccessRequestStatusEnum": "approvals.models.RequestStatus",
        "RequestStepStatusEnum": "approvals.models.StepStatus",
        "AccessRequestDecisionEnum": "approvals.models.DecisionKind",
        "GrantStatusEnum": "inventory.models.GrantStatus",
        "CredentialTypeEnum": "inventory.models.CredentialType",
        "AccessRequestTypeEnum": "approvals.models.RequestType",
        # Scope sensitivity and risk tier share one choice set (low/medium/high/critical).
        "LevelEnum": "inventory.models.Sensitivity",
        "WebhookSubscriptionStatusEnum": "governance.webhooks.models.SubscriptionStatus",
        "WebhookDeliveryStatusEnum": "governance.webhooks.models.DeliveryStatus",
        "ReviewItemDecisionEnum": "approvals.campaigns.models.ItemDecision",
        "ReviewItemStatusEnum": "approvals.campaigns.models.ItemStatus",
        "CampaignStatusEnum": "approvals.campaigns.models.CampaignStatus",
        "IntegrationKindEnum": "inventory.models.IntegrationKind",
        "TokenOutcomeEnum": "runtime.models.TokenOutcome",
        "PolicyDecisionEnum": ["allow", "deny"],
        "PolicyActionEnum": "runtime.policy.schema.ACTIONS",
        "PolicyDecisionPointEnum": "runtime.models.PolicyDecisionPoint",
        "PolicyVersionStatusEnum": "runtime.models.PolicyStatus",
        "PolicyReplayStatusEnum": "runtime.models.ReplayStatus",
        "TrustedIssuerKindEnum": "inventory.choices.IssuerKind",
        # Roles and reviewer pools a campaign definition may name (governance.roles).
        "GroupNameEnum": "governance.api.schema.GROUP_NAMES",
        "DiscoverySourceEnum": "inventory.choices.DiscoverySource",
        "DiscoveryImportStatusEnum": "inventory.discovery.choices.ImportStatus",
        "FindingTypeEnum": "inventory.discovery.choices.FindingKind",
        "FindingStatusEnum": "inventory.discovery.choices.FindingStatus",
        "RemediationStatusEnum": "inventory.discovery.choices.RemediationStatus",
    },
}
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)
# Lists count their matches exactly up to this many; beyond, on PostgreSQL, they give the
# planner's estimate and say so ("about 12,000", count_is_estimate in the API).
PAGING_EXACT_COUNT_UP_TO = env.int("PAGING_EXACT_COUNT_UP_TO", default=10_000)

# --- Input limits (README "Limits") ------------------------------------------------------------
# The largest request body accepted, pages and API alike: beyond it a 413 (problem details on
# the API) before anything reads it (governance.request_limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("REQUEST_BODY_MAX_BYTES", default=1024 * 1024)
# Paths that take a file upload (multipart/form-data) larger than that, with their own limit:
# {path: bytes}. The file goes to a temporary file as it arrives, never into memory.
REQUEST_UPLOAD_PATHS: dict[str, int] = {}
# The most tags, credentials and invoked integrations one integration may list (a 400 naming
# the field beyond).
INTEGRATION_MAX_TAGS = env.int("INTEGRATION_MAX_TAGS", default=20)
INTEGRATION_MAX_CREDENTIALS = env.int("INTEGRATION_MAX_CREDENTIALS", default=20)
INTEGRATION_MAX_INVOKES = env.int("INTEGRATION_MAX_INVOKES", default=50)

# --- Audit anchoring (README "Security model") --------------------------------------------------
# The worker signs a checkpoint of the audit chain every hour with an Ed25519 key that must live
# outside the database: AUDIT_SIGNING_KEY (PEM, or base64 of the 32-byte seed) or a file holding
# it (AUDIT_SIGNING_KEY_FILE). Without either, development generates one into var/ on first use;
# production refuses to sign and says so.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_FILE = env.str("AUDIT_SIGNING_KEY_FILE", default="")
AUDIT_DEV_SIGNING_KEY_FILE = VAR_DIR / "audit-signing-key.pem"
# Public keys (PEM or base64 of the 32 raw bytes) that verify checkpoints without the private key
# (an auditor's machine) or that signed older checkpoints (after a key rotation).
AUDIT_VERIFY_KEYS = env.list("AUDIT_VERIFY_KEYS", default=[])
# External witnesses of each checkpoint: auditors' address(es) (through the outbox), an
# append-only JSON-lines file, a syslog destination ("/dev/log", "host:514"). Webhook
# subscriptions to "audit.checkpoint" are witnesses too.
AUDIT_WITNESS_EMAIL = env.list("AUDIT_WITNESS_EMAIL", default=[])
AUDIT_WITNESS_FILE = env.str("AUDIT_WITNESS_FILE", default="")
AUDIT_WITNESS_SYSLOG = env.str("AUDIT_WITNESS_SYSLOG", default="")

# --- Observability (README "Observability") -----------------------------------------------------
# /metrics in the Prometheus text format. Off (404) unless a bearer token or allowed networks are
# set; with both, a scrape needs both. METRICS_TOKEN: the scraper sends "Authorization: Bearer
# <token>" (32 random characters or more). METRICS_ALLOWED_NETWORKS: CIDRs ("10.0.0.0/8,
# 127.0.0.1/32") checked against the connection's own address (REMOTE_ADDR): behind a reverse
# proxy that is the proxy, so use the token there (or block /metrics at the proxy). A refused
# scrape is a 404, like the endpoint turned off.
# Surrounding whitespace (a secret file's trailing newline) is not part of the token.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="").strip()
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# Prometheus scraping the web process directly over plain HTTP on a private network: /metrics is
# exempt from the HTTPS redirect (production). The token then crosses that network in clear.
METRICS_PLAIN_HTTP = env.bool("METRICS_PLAIN_HTTP", default=False)
if METRICS_PLAIN_HTTP:
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# Several web processes (gunicorn workers) each keep their own request latencies: with this set
# (in the environment of every web process; an empty directory, emptied before each start) they
# write them to files there and a scrape of any one reads them all (prometheus-client's
# multiprocess mode).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# The audit trail streamed to a SIEM as JSON lines, every event once and in the chain's order
# (every minute by the worker, or `manage.py audit_stream --follow`). Empty: that sink is off.
# AUDIT_STREAM_FILE: a file (absolute, or relative to the project folder) rotated when the next
# line would take it past AUDIT_STREAM_FILE_MAX_BYTES (0: never), keeping AUDIT_STREAM_FILE_BACKUPS
# rotated files (at least 1) as FILE.1 (newest) ... FILE.N. AUDIT_STREAM_SYSLOG: a syslog
# collector, "udp://host:514" or "tcp://host:601" (RFC 5424; octet-counted frames over TCP).
AUDIT_STREAM_FILE = env.str("AUDIT_STREAM_FILE", default="")
AUDIT_STREAM_FILE_MAX_BYTES = env.int("AUDIT_STREAM_FILE_MAX_BYTES", default=100 * 1024 * 1024)
AUDIT_STREAM_FILE_BACKUPS = env.int("AUDIT_STREAM_FILE_BACKUPS", default=10)
AUDIT_STREAM_SYSLOG = env.str("AUDIT_STREAM_SYSLOG", default="")

# --- Runtime plane (README "Runtime") ------------------------------------------------------------
# The portal as an authorization server for integrations: its own issuer name (the iss of the
# access tokens it signs), the audience workload tokens must carry unless an issuer says
# otherwise (the token endpoint's URL), and lifetimes in seconds (never more than 15 minutes;
# shorter by the integration's risk tier).
RUNTIME_ISSUER = env.str("RUNTIME_ISSUER", default=SITE_URL)
RUNTIME_TOKEN_AUDIENCE = env.str("RUNTIME_TOKEN_AUDIENCE", default=f"{SITE_URL}/oauth/token")
RUNTIME_TOKEN_MAX_SECONDS = 900
RUNTIME_TOKEN_SECONDS_BY_TIER = {
    "low": env.int("RUNTIME_TOKEN_SECONDS_LOW", default=900),
    "medium": env.int("RUNTIME_TOKEN_SECONDS_MEDIUM", default=900),
    "high": env.int("RUNTIME_TOKEN_SECONDS_HIGH", default=600),
    "critical": env.int("RUNTIME_TOKEN_SECONDS_CRITICAL", default=300),
}
# Signing keys: the default algorithm, how often keys rotate, and the longest time a resource
# server may cache the portal's JWKS (a new key is published that long before it signs).
RUNTIME_SIGNING_ALGORITHM = env.str("RUNTIME_SIGNING_ALGORITHM", default="ES256")
RUNTIME_KEY_ROTATION_DAYS = env.int("RUNTIME_KEY_ROTATION_DAYS", default=30)
RUNTIME_JWKS_CACHE_SECONDS = env.int("RUNTIME_JWKS_CACHE_SECONDS", default=300)
# Keys that encrypt the signing keys' private parts at rest (Fernet keys, comma-separated; the
# first encrypts, all decrypt). Empty: derived from SECRET_KEY and SECRET_KEY_FALLBACKS.
RUNTIME_KEY_ENCRYPTION_KEYS = env.list("RUNTIME_KEY_ENCRYPTION_KEYS", default=[])
# Trusted workload issuers' keys: a refetch on an unknown kid waits this long after the last one;
# keys not refreshed for longer than the stale limit are no longer trusted (deny).
RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS = env.int("RUNTIME_KEY_REFETCH_COOLDOWN_SECONDS", default=30)
RUNTIME_ISSUER_KEYS_MAX_STALE_SECONDS = env.int("RUNTIME_ISSUER_KEYS_MAX_STALE_SECONDS", default=86400)
# The demo workload issuer's signing key (demo data only: seed_demo makes it, demo_workload_token
# signs with it).
RUNTIME_DEMO_KEY_FILE = VAR_DIR / "demo-workload-issuer.pem"
# Just-in-time elevation: how long an approved elevation's grant lasts.
RUNTIME_JIT_GRANT_MINUTES = env.int("RUNTIME_JIT_GRANT_MINUTES", default=60)
# Token requests per minute from one client address (0: no limit); the token log seals every minute.
RUNTIME_TOKEN_RATE_PER_MINUTE = env.int("RUNTIME_TOKEN_RATE_PER_MINUTE", default=3000)
# Runtime policy (Cedar): the time zone its business-hours rules read the clock in; the caller-
# supplied context attributes gateways may send, declared in the generated schema by name and
# Cedar type (Bool, Long or String; a JSON object in RUNTIME_POLICY_CONTEXT_ATTRIBUTES); how long
# the decision log is kept; and how many logged decisions a replay reads by default and at most.
RUNTIME_POLICY_TIME_ZONE = env.str("RUNTIME_POLICY_TIME_ZONE", default="UTC")
RUNTIME_POLICY_CONTEXT_ATTRIBUTES = env.json(
    "RUNTIME_POLICY_CONTEXT_ATTRIBUTES",
    default={"source_ip_trusted": "Bool", "tool": "String", "request_count": "Long"},
)
RUNTIME_DECISION_RETENTION_DAYS = env.int("RUNTIME_DECISION_RETENTION_DAYS", default=180)
RUNTIME_REPLAY_DEFAULT_LIMIT = env.int("RUNTIME_REPLAY_DEFAULT_LIMIT", default=100_000)
RUNTIME_REPLAY_MAX_LIMIT = 1_000_000

# --- Discovery of OAuth grants (README "Discovery") ---------------------------------------------
# Uploads: the largest file an IAM admin may upload, and the largest single JSON document (one
# page of a provider's answer, or one JSON line) in it. Uploaded and pulled data waits in the
# spool directory for the worker and is deleted once imported.
DISCOVERY_UPLOAD_MAX_BYTES = env.int("DISCOVERY_UPLOAD_MAX_BYTES", default=512 * 1024 * 1024)
# The two upload paths (the page and the API) take the file's size plus the form's few fields.
REQUEST_UPLOAD_PATHS.update(
    dict.fromkeys(("/discovery/imports/", "/api/v1/discovery/imports/"), DISCOVERY_UPLOAD_MAX_BYTES + 64 * 1024)
)
DISCOVERY_DOCUMENT_MAX_BYTES = env.int("DISCOVERY_DOCUMENT_MAX_BYTES", default=16 * 1024 * 1024)
DISCOVERY_SPOOL_DIR = env.path("DISCOVERY_SPOOL_DIR", default=VAR_DIR / "discovery")
# The people who consented to a shadow app are asked once per import (one digest each); what
# nobody answered for after this many days gets the default action ("revoke": a revocation
# request; "escalate": the finding goes to IAM).
DISCOVERY_RESPONSE_DAYS = env.int("DISCOVERY_RESPONSE_DAYS", default=14)
DISCOVERY_DEFAULT_ACTION = env.str("DISCOVERY_DEFAULT_ACTION", default="revoke")
# Pulls from the providers' APIs: when (cron, UTC), the longest one pull may take, and each
# source's base URL, tenant and credentials (bearer tokens; the write token, where given, lets
# the portal call the provider's revoke endpoint itself). A source without a read token is not
# pulled. Every request goes through the outbound client (OUTBOUND_* above).
DISCOVERY_PULL_CRON = env.str("DISCOVERY_PULL_CRON", default="30 2 * * *")
DISCOVERY_PULL_BUDGET_SECONDS = env.int("DISCOVERY_PULL_BUDGET_SECONDS", default=900)
DISCOVERY_PULL_RETRIES = env.int("DISCOVERY_PULL_RETRIES", default=4)
# The IAM admin (username) scheduled pulls act for: the accountable owner of their imports and
# findings. Empty, or not an active IAM admin: the oldest active IAM admin.
DISCOVERY_PULL_OWNER = env.str("DISCOVERY_PULL_OWNER", default="")
# Waits between tries of one request: after a 5xx or a timeout DISCOVERY_PULL_BACKOFF_SECONDS,
# doubling each retry; after a 429 what its Retry-After asks. No wait is longer than
# DISCOVERY_PULL_MAX_WAIT_SECONDS, and a wait that would end past the budget fails the pull.
DISCOVERY_PULL_BACKOFF_SECONDS = env.float("DISCOVERY_PULL_BACKOFF_SECONDS", default=2.0)
DISCOVERY_PULL_MAX_WAIT_SECONDS = env.float("DISCOVERY_PULL_MAX_WAIT_SECONDS", default=120.0)
_DISCOVERY_BASE_URLS = {
    "google": "https://admin.googleapis.com",
    "entra": "https://graph.microsoft.com",
    "slack": "https://slack.com",
    "github": "https://api.github.com",
    "okta": "",
}
DISCOVERY_CONNECTORS: dict[str, dict[str, str]] = {
    source: {
        "base_url": env.str(f"DISCOVERY_{source.upper()}_BASE_URL", default=base_url).rstrip("/"),
        "tenant": env.str(f"DISCOVERY_{source.upper()}_TENANT", default=""),
        "token": env.str(f"DISCOVERY_{source.upper()}_TOKEN", default=""),
        "write_token": env.str(f"DISCOVERY_{source.upper()}_WRITE_TOKEN", default=""),
    }
    for source, base_url in _DISCOVERY_BASE_URLS.items()
}

# --- Internationalisation, static -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp), the same in development as in production so that tests
# and browsers in development meet the policy production sends: scripts only from the portal's
# own static files (no inline script, no eval), no plugins, no framing, forms post only here (and
# to the IdP for single sign-on). The API docs pages widen styles and workers for themselves
# (governance/api/docs.py). CSP_REPORT_URI, when set, receives violation reports.
_FORM_ACTION = ["'self'"]
if OIDC_ENABLED:
    # Browsers apply form-action to the redirect after the SSO button's POST as well.
    from urllib.parse import urlsplit as _urlsplit

    _issuer = _urlsplit(SOCIAL_AUTH_OIDC_OIDC_ENDPOINT)
    _FORM_ACTION.append(f"{_issuer.scheme}://{_issuer.netloc}")
_FORM_ACTION += env.list("CSP_FORM_ACTION_EXTRA", default=[])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": _FORM_ACTION,
        **({"report-uri": [env.str("CSP_REPORT_URI")]} if env.str("CSP_REPORT_URI", default="") else {}),
    },
}
# The API schema and its docs pages: public in development, signed-in users only in production.
API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=not PRODUCTION)
# Client addresses in the audit trail come from REMOTE_ADDR unless a trusted proxy sets this.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
