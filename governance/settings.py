"""Settings for the governance portal.

Every setting that differs between a laptop and production comes from the environment
(see README "Configuration"). Two shapes are supported (DESIGN.md "Deployment shapes"):

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

# The public address used in links inside emails and webhooks.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Demo mode lists the demo accounts on the login page; never in production.
DEMO_MODE = env.bool("DEMO_MODE", default=not PRODUCTION)

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
    "guardian",
    "django_q",
    "social_django",
    "simple_history",
    "governance",
    "governance.webhooks",
    "inventory",
    "approvals",
    "approvals.campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "governance.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idempotency-Key on /api/v1/ POSTs (needs the session user, so after authentication).
    "governance.webhooks.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "social_django.middleware.SocialAuthExceptionMiddleware",
    "governance.middleware.AuditorReadOnlyMiddleware",
    "governance.middleware.DomainErrorMiddleware",
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
    # silently drops results (PITFALLS.md). IMMEDIATE also serialises writers the way
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
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "governance"}}

Q_CLUSTER: dict[str, object] = {
    "name": "governance",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=300),
    # retry must exceed timeout, otherwise a slow task is handed out twice (PITFALLS.md).
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
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AI Governance Portal <governance@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = 10
# Outbox delivery: attempts before an email is marked failed, and the first retry delay.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=8)
OUTBOX_RETRY_BASE_SECONDS = env.int("OUTBOX_RETRY_BASE_SECONDS", default=60)

# --- Authentication -------------------------------------------------------------------------
AUTH_USER_MODEL = "governance.User"
AUTHENTICATION_BACKENDS = [
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
    # The default hasher costs ~0.4 s per check on this machine (PITFALLS.md); tests only.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Generic OpenID Connect single sign-on, configured only from the environment.
OIDC_ENABLED = bool(env.str("OIDC_ISSUER", default=""))
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = env.str("OIDC_ISSUER", default="").rstrip("/")
SOCIAL_AUTH_OIDC_KEY = env.str("OIDC_CLIENT_ID", default="")
SOCIAL_AUTH_OIDC_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
SOCIAL_AUTH_OIDC_SCOPE = env.list("OIDC_SCOPES", default=["openid", "profile", "email", "groups"])
SOCIAL_AUTH_OIDC_USERNAME_KEY = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
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
# social-core 7's default pipeline (incl. social_names), plus: refuse a deactivated portal account
# before anything about it is updated, and sync roles from the IdP groups on every login.
SOCIAL_AUTH_PIPELINE = (
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

# --- Object permissions (guardian) ------------------------------------------------------------
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api.authentication.TokenAuthentication",
        "governance.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "governance.api.permissions.AuditorsReadOnly",
    ],
    "DEFAULT_PAGINATION_CLASS": "governance.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Per token, per user and per anonymous address; rates in API_RATE_LIMITS below.
    "DEFAULT_THROTTLE_CLASSES": [
        "governance.webhooks.throttles.TokenRateThrottle",
        "governance.webhooks.throttles.UserRateThrottle",
        "governance.webhooks.throttles.AnonRateThrottle",
    ],
}
# API rate limits ("<n>/<sec|min|hour|day>", empty for none), counted in the cache (Redis in
# production). A call over a limit gets a 429 problem with Retry-After.
API_RATE_LIMITS = {
    "token": env.str("API_RATE_LIMIT_TOKEN", default="600/min"),
    "user": env.str("API_RATE_LIMIT_USER", default="1200/min"),
    "anon": env.str("API_RATE_LIMIT_ANON", default="60/min"),
}
# Outbound webhooks: HTTP timeout per attempt, exponential backoff (base, cap) and how long a
# delivery is retried before it is given up (a day).
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", default=10)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_MAX_SECONDS = env.int("WEBHOOK_RETRY_MAX_SECONDS", default=3600)
WEBHOOK_RETRY_HOURS = env.int("WEBHOOK_RETRY_HOURS", default=24)
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
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
        "ReviewItemDecisionEnum": "approvals.campaigns.models.Decision",
        "ReviewItemStatusEnum": "approvals.campaigns.models.ItemStatus",
        "CampaignStatusEnum": "approvals.campaigns.models.CampaignStatus",
    },
}
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)

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
