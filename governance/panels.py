"""The kernel's own home-page panels (registered in ``GovernanceConfig.ready``).

Each ``build`` runs a fixed number of queries: a sliced list and, where shown, one COUNT.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from governance import portal
from governance.actors import SYSTEM_USERNAME
from governance.anchoring import email_key_prefix
from governance.models import (
    ApiToken,
    AuditChainCheck,
    AuditCheckpoint,
    AuditEvent,
    EmailStatus,
    OutboundEmail,
    User,
)
from governance.roles import ASSIGNABLE_GROUPS, Role
from governance.selectors import audit_events_for

LIST_SIZE = 8


def my_api_tokens(request: HttpRequest) -> dict[str, Any] | None:
    now = timezone.now()
    tokens = list(
        ApiToken.objects.filter(user=request.user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("expires_at", "-created_at")[:LIST_SIZE]
    )
    soon = now + timedelta(days=14)
    return {
        "tokens": [{"token": t, "expires_soon": t.expires_at is not None and t.expires_at <= soon} for t in tokens],
    }


# A checkpoint is signed every hour; older than this, the worker is probably not running.
CHECKPOINT_STALE_AFTER = timedelta(hours=2)


def latest_audit_events(request: HttpRequest) -> dict[str, Any] | None:
    events = list(audit_events_for(request.user).order_by("-id")[:LIST_SIZE])
    checkpoint = AuditCheckpoint.objects.order_by("-sequence").first()
    return {
        "events": events,
        "check": AuditChainCheck.objects.order_by("-checked_at", "-id").first(),
        "checkpoint": checkpoint,
        "witnesses": _witnesses_now(checkpoint),
        "stale": checkpoint is not None and checkpoint.signed_at < timezone.now() - CHECKPOINT_STALE_AFTER,
    }


def _witnesses_now(checkpoint: AuditCheckpoint | None) -> list[dict[str, str]]:
    """The checkpoint's witnesses as recorded when it was signed, with where each email to the
    auditors stands now in the outbox (one query)."""
    if checkpoint is None:
        return []
    emails = dict(
        OutboundEmail.objects.filter(
            key__startswith=email_key_prefix(checkpoint.sequence, checkpoint.signature)
        ).values_list("to_address", "status")
    )
    return [
        {**w, "status": emails.get(w["target"], w["status"]) if w["kind"] == "email" else w["status"]}
        for w in checkpoint.witnesses
    ]


def outbox_health(request: HttpRequest) -> dict[str, Any] | None:
    failed = list(
        OutboundEmail.objects.filter(status=EmailStatus.FAILED).order_by("-created_at").select_related("recipient")[:5]
    )
    waiting = OutboundEmail.objects.filter(
        status__in=[EmailStatus.PENDING, EmailStatus.SENDING], attempts__gt=0
    ).count()
    return {"failed": failed, "retrying": waiting}


def users_without_roles(request: HttpRequest) -> dict[str, Any] | None:
    qs = (
        User.objects.filter(is_active=True, is_service_account=False, is_superuser=False)
        .exclude(username=SYSTEM_USERNAME)
        .exclude(groups__name__in=ASSIGNABLE_GROUPS)
        .order_by("-date_joined")
    )
    users = list(qs[: LIST_SIZE + 1])
    return {"users": users[:LIST_SIZE], "more": len(users) > LIST_SIZE}


def recently_deactivated(request: HttpRequest) -> dict[str, Any] | None:
    since = timezone.now() - timedelta(days=30)
    events = list(
        AuditEvent.objects.filter(action="user.deactivated", created_at__gte=since).order_by("-id")[:LIST_SIZE]
    )
    return {"events": events}


def register() -> None:
    P = portal.HomePanel
    portal.register_panel(
        P(
            key="audit-latest",
            template="governance/panels/audit_latest.html",
            build=latest_audit_events,
            order=10,
            roles=frozenset({Role.AUDITOR}),
        )
    )
    portal.register_panel(
        P(
            key="outbox-health",
            template="governance/panels/outbox_health.html",
            build=outbox_health,
            order=70,
            roles=frozenset({Role.IAM_ADMIN}),
        )
    )
    portal.register_panel(
        P(
            key="users-without-roles",
            template="governance/panels/users_without_roles.html",
            build=users_without_roles,
            order=71,
            roles=frozenset({Role.IAM_ADMIN}),
        )
    )
    portal.register_panel(
        P(
            key="recently-deactivated",
            template="governance/panels/recently_deactivated.html",
            build=recently_deactivated,
            order=72,
            roles=frozenset({Role.IAM_ADMIN}),
        )
    )
    portal.register_panel(
        P(key="my-api-tokens", template="governance/panels/api_tokens.html", build=my_api_tokens, order=95)
    )
