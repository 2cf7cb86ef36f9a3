"""Discovery's vocabulary: what its models store and its services, pages and API read."""

from __future__ import annotations

from django.db import models

from inventory.choices import DiscoverySource

Source = DiscoverySource


class ImportMethod(models.TextChoices):
    UPLOAD = "upload", "Upload"
    PULL = "pull", "Pull from the provider"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ConsentType(models.TextChoices):
    ADMIN = "admin", "Admin consent for everyone"
    USER = "user", "One person's consent"


class ConsentResponse(models.TextChoices):
    """What the person who consented said when asked about a shadow app."""

    NOT_ASKED = "not_asked", "Not asked"
    PENDING = "pending", "Waiting for an answer"
    CLAIMED = "claimed", "Claimed: uses it for work"
    NOT_NEEDED = "not_needed", "Not needed"
    DEFAULTED = "defaulted", "No answer by the deadline"


class FindingKind(models.TextChoices):
    SHADOW = "shadow", "Shadow: not registered"
    DRIFT = "drift", "Drift: scopes beyond its grants"
    STALE = "stale", "Stale: the provider no longer lists it"
    GONE = "gone", "Gone: no longer present"


class FindingStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed: registration in approval"
    REVIEW_OPENED = "review_opened", "Scope review opened"
    REVOKE_REQUESTED = "revoke_requested", "Revocation requested"
    REVOKED = "revoked", "Revoked at the provider"
    SANCTIONED = "sanctioned", "Sanctioned for everyone"
    ESCALATED = "escalated", "Escalated to IAM"
    DISMISSED = "dismissed", "Dismissed"
    RESOLVED = "resolved", "Resolved"


# A finding in one of these states still needs someone to act; the others are closed.
ACTIVE_FINDING_STATUSES = (
    FindingStatus.OPEN,
    FindingStatus.ESCALATED,
    FindingStatus.REVOKE_REQUESTED,
)


class DefaultAction(models.TextChoices):
    """What happens to a shadow app's consent nobody answered for by the deadline."""

    REVOKE = "revoke", "Request its revocation"
    ESCALATE = "escalate", "Escalate to IAM"


class RemediationStatus(models.TextChoices):
    REQUESTED = "requested", "Requested (for the ticketing system)"
    DONE = "done", "Revoked at the provider"
    FAILED = "failed", "The provider call failed"
