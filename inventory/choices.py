"""The inventory's vocabulary: the choices its models store and its services, pages and other
apps read. Kept apart from the models so pages elsewhere can name a status without reaching into
the inventory's tables."""

from __future__ import annotations

from django.db import models

from governance.choices import LEVEL_ORDER, Level

# A scope's sensitivity and an integration's risk tier use the portal's one four-step scale.
Sensitivity = Level
RiskTier = Level
RISK_TIER_ORDER = LEVEL_ORDER


class AccessLevel(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    ADMIN = "admin", "Admin"


class IntegrationKind(models.TextChoices):
    CHATBOT = "chatbot", "Chatbot"
    AGENT = "agent", "Agent"
    PLUGIN = "plugin", "Plugin"
    AUTOMATION = "automation", "Automation"
    EMBEDDED_MODEL = "embedded_model", "Embedded model"
    OTHER = "other", "Other"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"


class DataClassification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class Autonomy(models.TextChoices):
    SUGGEST_ONLY = "suggest_only", "Suggests only"
    HUMAN_IN_LOOP = "human_in_loop", "Human in the loop"
    AUTONOMOUS = "autonomous", "Autonomous"


class IntegrationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending approval"
    ACTIVE = "active", "Active"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"
    RETIRED = "retired", "Retired"


class CredentialType(models.TextChoices):
    API_KEY = "api_key", "API key"
    OAUTH_CLIENT = "oauth_client", "OAuth client"
    OAUTH_GRANT = "oauth_grant", "OAuth grant"
    SERVICE_ACCOUNT = "service_account", "Service account"
    CERTIFICATE = "certificate", "Certificate"
    WORKLOAD_IDENTITY_TOKEN = "workload_identity_token", "Workload identity token"


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class OwnerRole(models.TextChoices):
    BUSINESS = "business_owner", "Business owner"
    TECHNICAL = "technical_owner", "Technical owner"
    BACKUP = "backup_owner", "Backup owner"


class TransferStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    CANCELLED = "cancelled", "Cancelled"


class IssuerKind(models.TextChoices):
    OIDC = "oidc", "OpenID Connect issuer"
    SPIFFE = "spiffe", "SPIFFE trust domain"
    STATIC_JWKS = "static_jwks", "Static JWKS"


# Signature algorithms a workload issuer may use. "none" and every HMAC algorithm are never
# accepted, whatever an issuer's configuration says; EdDSA is refused for SPIFFE JWT-SVIDs.
DEFAULT_ISSUER_ALGORITHMS = ("RS256", "ES256", "ES384", "PS256")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")
SPIFFE_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512")


class IdentityStatus(models.TextChoices):
    """Where an integration stands in proving what it is."""

    PROVEN = "proven", "Proven"
    BOUND = "bound", "Bound, not yet proven"
    DECLARED = "declared", "Declared only"
    NONE = "none", "None"


# What an owner may submit for approval: a draft, or one the reviewers rejected.
SUBMITTABLE_STATUSES = (IntegrationStatus.DRAFT, IntegrationStatus.REJECTED)


class DiscoverySource(models.TextChoices):
    """The identity providers and SaaS suites whose OAuth grants discovery imports. An
    integration's external app ids name one of these with the provider's own app key."""

    GOOGLE = "google", "Google Workspace"
    ENTRA = "entra", "Microsoft Entra ID"
    SLACK = "slack", "Slack Enterprise"
    GITHUB = "github", "GitHub organisation"
    OKTA = "okta", "Okta"
