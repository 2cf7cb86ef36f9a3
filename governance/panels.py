"""The kernel's navigation entries and home-page panels (registered in ``GovernanceConfig.ready``).

Each ``build`` and ``count`` runs a fixed number of queries: a sliced list and, where shown, one
COUNT.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from governance import portal
from governance.actors import SYSTEM_USERNAME
from governance.anchoring import email_key_prefix
from governance.models import (
    AuditChainCheck,
    AuditCheckpoint,
    AuditEvent,
    EmailStatus,
    OutboundEmail,
    User,
)
from governance.permissions import can_view_outbox
from governance.roles import ASSIGNABLE_GROUPS, Role, has_role, is_read_only
from governance.selectors import api_tokens_of, audit_events_for
from governance.services.tokens import PERSONAL_TOKEN_DAYS
from governance.targets import attach_target_links
from governance.web import signed_in

LIST_SIZE = 8


def my_api_tokens(request: HttpRequest) -> dict[str, Any] | None:
    """The person's usable tokens (prefix, name, expiry, last use) with the form that makes a new
    one, or for a read-only auditor a note on how to get one: one query."""
    user = signed_in(request)
    now = timezone.now()
    tokens = list(
        api_tokens_of(user)
        .filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("expires_at", "-created_at")[:LIST_SIZE]
    )
    soon = now + timedelta(days=14)
    return {
        "tokens": [
            {"token": token, "expires_soon": token.expires_at is not None and token.expires_at <= soon}
            for token in tokens
        ],
        "may_create": not is_read_only(user),
        "lifetimes": PERSONAL_TOKEN_DAYS,
        "default_days": min(PERSONAL_TOKEN_DAYS, key=lambda days: abs(days - settings.API_TOKEN_DEFAULT_DAYS)),
    }


# A checkpoint is signed every hour; older than this, the worker is probably not running.
CHECKPOINT_STALE_AFTER = timedelta(hours=2)


def latest_audit_events(request: HttpRequest) -> dict[str, Any] | None:
    events = list(audit_events_for(request.user).order_by("-id")[:LIST_SIZE])
    attach_target_links(request.user, events, type_attr="target_type", id_attr="target_id", repr_attr="target_repr")
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
        {
            **witness,
            "status": emails.get(witness["target"], witness["status"])
            if witness["kind"] == "email"
            else witness["status"],
        }
        for witness in checkpoint.witnesses
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
    attach_target_links(request.user, events, type_attr="target_type", id_attr="target_id", repr_attr="target_repr")
    return {"events": events}


def failed_email_count(request: HttpRequest) -> int:
    return OutboundEmail.objects.filter(status=EmailStatus.FAILED).count()


NAV = (
    portal.NavEntry(label="Home", url_name="home", order=0),
    portal.NavEntry(
        label="Audit trail",
        url_name="audit-list",
        order=90,
        visible=lambda user: has_role(user, Role.AUDITOR, Role.IAM_ADMIN, Role.REVIEWER),
        group=portal.OVERSIGHT,
    ),
    portal.NavEntry(
        label="Outbox",
        url_name="outbox",
        order=92,
        visible=can_view_outbox,
        count=failed_email_count,
        group=portal.ADMINISTRATION,
    ),
    # Django's admin site, for the staff accounts it admits.
    portal.NavEntry(
        label="Admin site",
        url_name="admin:index",
        order=99,
        visible=lambda user: user.is_staff,
        group=portal.ADMINISTRATION,
    ),
)

_AUDITORS = frozenset({Role.AUDITOR})
_IAM_ADMINS = frozenset({Role.IAM_ADMIN})

# (key, template, build, order, roles: empty for everyone)
PANELS = (
    portal.HomePanel("audit-latest", "governance/panels/audit_latest.html", latest_audit_events, 10, _AUDITORS),
    portal.HomePanel("outbox-health", "governance/panels/outbox_health.html", outbox_health, 70, _IAM_ADMINS),
    portal.HomePanel(
        "users-without-roles", "governance/panels/users_without_roles.html", users_without_roles, 71, _IAM_ADMINS
    ),
    portal.HomePanel(
        "recently-deactivated", "governance/panels/recently_deactivated.html", recently_deactivated, 72, _IAM_ADMINS
    ),
    portal.HomePanel("my-api-tokens", "governance/panels/api_tokens.html", my_api_tokens, 95),
)


def register() -> None:
    for entry in NAV:
        portal.register_nav(entry)
    for panel in PANELS:
        portal.register_panel(panel)
