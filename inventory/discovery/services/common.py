"""What the decision services share: who may act, the finding re-read under lock with its state
checked, status moves, the catalog scopes a provider's scopes map to, and who answers for what
the portal does by itself."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from governance.actors import SYSTEM_USERNAME, Actor
from governance.audit import accountable_human
from governance.exceptions import Conflict, IllegalTransition
from governance.models import User
from governance.roles import Role, is_iam_admin, is_read_only
from inventory.discovery.choices import FindingKind, FindingStatus
from inventory.discovery.models import DiscoveredApp, Finding, ScopeMapping
from inventory.models import Integration, Scope

# A decision that ends a finding closes it (``closed_at``): the next import opens a new finding
# for the same app only if it finds something new. A revocation, an escalation or a scope review
# keeps it unclosed: the next import still watches it (the app gone confirms a revocation; the
# extra scopes granted end a drift).
CLOSING_STATUSES = frozenset(
    {FindingStatus.CLAIMED, FindingStatus.SANCTIONED, FindingStatus.DISMISSED, FindingStatus.RESOLVED}
)


def admin_actor(actor: Actor | User) -> Actor:
    """``actor`` as an ``Actor``, once it is an IAM admin (or the system): only they decide on
    findings; everyone else gets ``PermissionDenied``."""
    resolved = Actor.coerce(actor)
    if resolved.is_system:
        return resolved
    if not is_iam_admin(resolved.user) or is_read_only(resolved.user):
        raise PermissionDenied("Only IAM admins act on discovery findings.")
    return resolved


def human_of(actor: Actor) -> User:
    """The person who answers for ``actor``'s decision (the acting admin, or whom the system
    acts for); the system acting for nobody may not decide."""
    person = accountable_human(actor)
    if person is None:
        raise PermissionDenied("The system must name the person it acts for.")
    return person


def finding_locked(finding: Finding, *, kinds: Collection[str], statuses: Collection[str], what: str) -> Finding:
    """``finding`` re-read under lock, once it is of one of ``kinds`` and in one of ``statuses``:
    a stale caller gets a conflict naming the state it is in, never a quiet success."""
    locked = Finding.objects.select_for_update().get(pk=finding.pk)
    if locked.kind not in kinds:
        raise Conflict(f"A {FindingKind(locked.kind).label.split(':')[0].lower()} finding cannot be {what}.")
    if locked.status not in statuses:
        raise IllegalTransition(f"This finding is {FindingStatus(locked.status).label.lower()}; it cannot be {what}.")
    return locked


def app_of(finding: Finding) -> DiscoveredApp:
    if finding.app is None:
        raise Conflict("This finding names no app the provider still shows.")
    return finding.app


def finding_move(finding: Finding, status: str, **changes: Any) -> None:
    """Set the locked ``finding``'s status (closing it when the status ends it) and ``changes``."""
    now = timezone.now()
    finding.status = status
    finding.updated_at = now
    fields = ["status", "updated_at", *changes]
    for name, value in changes.items():
        setattr(finding, name, value)
    if status in CLOSING_STATUSES and finding.closed_at is None:
        finding.closed_at = now
        fields.append("closed_at")
    finding.save(update_fields=fields)


def mapped_scopes(source: str, names: Iterable[str]) -> list[Scope]:
    """The active catalog scopes the provider's scope ``names`` map to (IAM's mappings), each
    once, by code. An unmapped scope maps to nothing: it is never guessed into the catalog."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    rows = (
        ScopeMapping.objects.filter(source=source, provider_scope__in=wanted, scope__is_active=True)
        .select_related("scope")
        .order_by("scope__code")
    )
    return list({row.scope_id: row.scope for row in rows}.values())


def iam_admins() -> QuerySet[User]:
    """The active people who hold the IAM admin role (superusers count as IAM admins)."""
    return (
        User.objects.filter(Q(groups__name=Role.IAM_ADMIN) | Q(is_superuser=True))
        .filter(is_active=True, is_service_account=False)
        .exclude(username=SYSTEM_USERNAME)
        .distinct()
        .order_by("date_joined", "pk")
    )


def accountable_for(finding: Finding) -> User | None:
    """Who answers for what the portal does by itself about ``finding`` (a deadline's default
    action): the owner it was assigned to, else who ran the import that opened it, else the
    person scheduled pulls act for (``DISCOVERY_PULL_OWNER``), else the longest-standing IAM
    admin."""
    if finding.assigned_owner_id is not None:
        return finding.assigned_owner
    imp = finding.opened_by_import
    if imp is not None and imp.started_by_id is not None and imp.started_by is not None:
        return imp.started_by
    return default_owner()


def default_owner() -> User | None:
    named = getattr(settings, "DISCOVERY_PULL_OWNER", "")
    if named:
        person = User.objects.filter(username=named, is_active=True).first()
        if person is not None:
            return person
    return iam_admins().first()


def integration_of(finding: Finding) -> Integration:
    """The registered integration a drift finding is about."""
    integration = finding.integration or (finding.app.integration if finding.app is not None else None)
    if integration is None:
        raise Conflict("This finding names no registered integration.")
    return integration
