"""What an import finds that needs a decision, opened and closed by rules the importer applies in
the import's own transaction (``findings_refresh``).

Apps are matched to integrations by the integrations' external app ids (the provider's app key,
or the second key it uses for the same app). Then, per app of the imported source and tenant:

* **shadow**: present and matched to no integration. The finding's ``extra_scopes`` are the app's
  scopes as last seen while nobody had decided about it; ``people_affected`` counts the people
  who consented for themselves (an admin's consent for everyone shows on the app). Closed when
  the app gets registered.
* **drift**: present, matched to an integration past approval (not a draft or pending one, whose
  approval is still deciding its scopes), and showing catalog-mapped scopes the integration holds
  no active grant for (``extra_scopes``, as the provider names them; unmapped scopes never count,
  nobody can say what they are). Closed when those scopes are granted.
* **gone** (complete imports only): an unclosed shadow or drift finding whose app the provider no
  longer lists is closed as resolved and a gone finding opened (``previous_kind``); where a
  revocation had been requested the gone finding is closed at once: the revocation is confirmed.
  A gone finding closes when the app comes back.
* **stale** (opened by complete imports only): an external app id of the source that no present
  app of the source lists, on an integration that is not retired. Closed when it is listed again
  or the integration no longer claims it.

A dismissed finding stays dismissed: the same kind is opened (or the unclosed dismissed finding
reopened) only when the app shows scopes it did not show when it was dismissed. Every opening and
closing is audited (``discovery.finding_opened``, ``discovery.finding_closed``) with the import's
accountable owner; the people, risk and ``last_import`` of findings still unclosed follow the data,
and nothing is written where nothing changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from governance.actors import Actor
from governance.audit import EventSpec, audit_record_many
from governance.models import User
from inventory.choices import GrantStatus, IntegrationStatus
from inventory.discovery.assess import app_assessment
from inventory.discovery.choices import FindingKind, FindingStatus
from inventory.discovery.models import DiscoveredApp, DiscoveryImport, Finding, Remediation
from inventory.discovery.scopes import mapping_for
from inventory.models import ExternalAppId, Grant, Integration, Scope

# Apps judged per batch: bounds the findings and apps held in memory however large the tenant.
BATCH = 2000
# Integrations whose approval is still deciding their scopes: no drift against them yet.
_UNDECIDED = (IntegrationStatus.DRAFT, IntegrationStatus.PENDING)
# Decisions that end a finding: closing it keeps them as its status.
_DECIDED = (FindingStatus.CLAIMED, FindingStatus.SANCTIONED, FindingStatus.DISMISSED)
# A finding in one of these states had its revocation asked for.
_REVOCATION_STATES = (FindingStatus.REVOKE_REQUESTED, FindingStatus.REVOKED)
_RISK_FIELDS = ("risk_score", "risk_tier", "risk_factors")
_UPDATABLE = (
    "status",
    "title",
    "integration",
    "app",
    "extra_scopes",
    "people_affected",
    *_RISK_FIELDS,
    "closed_at",
    "resolution",
    "updated_at",
    "last_import",
)


@dataclass
class _Judgement:
    """What one batch of apps decided: findings to create, rows to save, events to write."""

    imp: DiscoveryImport
    now: datetime
    unclosed: dict[tuple[str, str], Finding]
    last_closed: dict[tuple[str, str], Finding]
    asked_to_revoke: set[int]
    created: list[Finding] = field(default_factory=list)
    changed: dict[int, Finding] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    events: list[tuple[str, Finding, dict[str, Any] | None]] = field(default_factory=list)
    opened: Counter[str] = field(default_factory=Counter)
    closed: int = 0


def import_owner(imp: DiscoveryImport) -> User | None:
    """Who answers for what an import does: whoever started it (an upload's IAM admin, the
    owner a scheduled pull acts for)."""
    return imp.started_by


def findings_refresh(*, imp: DiscoveryImport, actor: Actor) -> dict[str, Any]:
    """Match the apps of ``imp``'s source and tenant to integrations and open, update and close
    findings by the rules of this module. Runs inside the import's transaction. Returns
    ``{"findings": {kind: opened}, "closed": n}``."""
    owner = import_owner(imp)
    links = _external_links(imp.source)
    total_opened: Counter[str] = Counter()
    total_closed = 0
    for batch in _app_batches(DiscoveredApp.objects.filter(source=imp.source, tenant=imp.tenant)):
        _link(batch, links)
        mapped = mapping_for(imp.source, {name for app in batch for name in app.scopes or []})
        _score(batch, mapped)
        judgement = _judgement_for(imp, [app.app_key for app in batch])
        integrations = _integrations({app.integration_id for app in batch if app.integration_id})
        for app in batch:
            _judge_app(judgement, app, mapped, integrations)
        _write(judgement, actor, owner)
        total_opened.update(judgement.opened)
        total_closed += judgement.closed
    stale = _stale(imp, links, actor, owner)
    total_opened.update(stale.opened)
    total_closed += stale.closed
    return {"findings": {str(kind): count for kind, count in sorted(total_opened.items())}, "closed": total_closed}


def rescore(source: str) -> int:
    """Recompute the risk of the source's present apps and of their unclosed shadow and drift
    findings (after IAM changed a scope mapping); returns how many findings changed. What the
    mapping changes about drift shows at the next import."""
    changed = 0
    for batch in _app_batches(DiscoveredApp.objects.filter(source=source, present=True)):
        mapped = mapping_for(source, {name for app in batch for name in app.scopes or []})
        _score(batch, mapped)
        by_app = {app.pk: app for app in batch}
        stale_risk = []
        for finding in Finding.objects.filter(
            app_id__in=list(by_app), kind__in=(FindingKind.SHADOW, FindingKind.DRIFT), closed_at__isnull=True
        ):
            app = by_app.get(finding.app_id or 0)
            if app is not None and _copy_risk(app, finding):
                finding.updated_at = timezone.now()
                stale_risk.append(finding)
        Finding.objects.bulk_update(stale_risk, [*_RISK_FIELDS, "updated_at"], batch_size=500)
        changed += len(stale_risk)
    return changed


def _app_batches(apps: QuerySet[DiscoveredApp]) -> Iterator[list[DiscoveredApp]]:
    """``apps`` in batches by id (each batch its own query: the rules write to these rows)."""
    after = 0
    while batch := list(apps.filter(pk__gt=after).order_by("pk")[:BATCH]):
        yield batch
        after = batch[-1].pk


def _external_links(source: str) -> dict[str, int]:
    """The source's external app ids: app key → integration id."""
    return dict(ExternalAppId.objects.filter(source=source).values_list("app_key", "integration_id"))


def _link(batch: Sequence[DiscoveredApp], links: dict[str, int]) -> None:
    """Point each app at the integration whose external app id names its key or second key."""
    moved = []
    for app in batch:
        integration_id = links.get(app.app_key) or (links.get(app.alt_key) if app.alt_key else None)
        if integration_id != app.integration_id:
            app.integration_id = integration_id
            moved.append(app)
    DiscoveredApp.objects.bulk_update(moved, ["integration"], batch_size=500)


def _score(batch: Sequence[DiscoveredApp], mapped: dict[str, Scope | None]) -> None:
    """Store each present app's risk where it changed."""
    rescored = []
    for app in batch:
        if not app.present:
            continue
        result = app_assessment(app, mapped)
        if (result.score, result.tier, result.factors) != (app.risk_score, app.risk_tier, app.risk_factors):
            app.risk_score, app.risk_tier, app.risk_factors = result.score, result.tier, list(result.factors)
            rescored.append(app)
    DiscoveredApp.objects.bulk_update(rescored, list(_RISK_FIELDS), batch_size=500)


def _integrations(ids: set[int]) -> dict[int, dict[str, Any]]:
    """Name, status and actively granted scope ids of each integration (two queries)."""
    if not ids:
        return {}
    found: dict[int, dict[str, Any]] = {
        pk: {"name": name, "status": status, "granted": set()}
        for pk, name, status in Integration.objects.filter(pk__in=ids).values_list("pk", "name", "status")
    }
    for integration_id, scope_id in Grant.objects.filter(integration_id__in=ids, status=GrantStatus.ACTIVE).values_list(
        "integration_id", "scope_id"
    ):
        found[integration_id]["granted"].add(scope_id)
    return found


def _judgement_for(imp: DiscoveryImport, app_keys: list[str]) -> _Judgement:
    """The findings the rules look at for these app keys: the unclosed ones, the last closed one
    of each kind (a dismissal), and which had a revocation asked for."""
    scope = Finding.objects.filter(source=imp.source, tenant=imp.tenant, app_key__in=app_keys)
    unclosed = {(f.app_key, f.kind): f for f in scope.filter(closed_at__isnull=True)}
    last_closed: dict[tuple[str, str], Finding] = {}
    closed = scope.filter(closed_at__isnull=False, kind__in=(FindingKind.SHADOW, FindingKind.DRIFT))
    for finding in closed.only("pk", "app_key", "kind", "status", "extra_scopes").order_by("closed_at", "pk"):
        last_closed[(finding.app_key, finding.kind)] = finding
    asked = {f.pk for f in unclosed.values() if f.status in _REVOCATION_STATES}
    asked |= set(
        Remediation.objects.filter(finding_id__in=[f.pk for f in unclosed.values()]).values_list(
            "finding_id", flat=True
        )
    )
    return _Judgement(imp=imp, now=timezone.now(), unclosed=unclosed, last_closed=last_closed, asked_to_revoke=asked)


def _judge_app(
    judgement: _Judgement, app: DiscoveredApp, mapped: dict[str, Scope | None], integrations: dict[int, dict[str, Any]]
) -> None:
    seen = app.last_import_id == judgement.imp.pk
    if not app.present:
        if judgement.imp.complete:
            _gone(judgement, app)
        return
    _close(judgement, judgement.unclosed.get((app.app_key, FindingKind.GONE)), "Listed by the provider again.")
    integration = integrations.get(app.integration_id) if app.integration_id else None
    if integration is None:
        _shadow(judgement, app, seen)
        _close(judgement, judgement.unclosed.get((app.app_key, FindingKind.DRIFT)), "No integration claims the app.")
        return
    _close(
        judgement, judgement.unclosed.get((app.app_key, FindingKind.SHADOW)), f"Registered as {integration['name']}."
    )
    extra: list[str] = []
    if integration["status"] not in _UNDECIDED:
        extra = sorted(
            name
            for name in app.scopes or []
            if (scope := mapped.get(name)) is not None and scope.pk not in integration["granted"]
        )
    if extra:
        _drift(judgement, app, extra, seen)
    else:
        _close(judgement, judgement.unclosed.get((app.app_key, FindingKind.DRIFT)), "Its scopes are all granted now.")


def _shadow(judgement: _Judgement, app: DiscoveredApp, seen: bool) -> None:
    scopes = sorted(app.scopes or [])
    _keep_open(judgement, app, FindingKind.SHADOW, scopes, seen)


def _drift(judgement: _Judgement, app: DiscoveredApp, extra: list[str], seen: bool) -> None:
    _keep_open(judgement, app, FindingKind.DRIFT, extra, seen)


def _keep_open(judgement: _Judgement, app: DiscoveredApp, kind: str, scopes: list[str], seen: bool) -> None:
    """Open a finding of ``kind`` for ``app``, or bring the unclosed one up to date; a dismissed
    one is reopened only for scopes it did not show when dismissed."""
    finding = judgement.unclosed.get((app.app_key, kind))
    if finding is None:
        last = judgement.last_closed.get((app.app_key, kind))
        if last is not None and last.status == FindingStatus.DISMISSED and set(scopes) <= set(last.extra_scopes or []):
            return
        _open(judgement, app, kind, scopes)
        return
    if finding.status == FindingStatus.DISMISSED:
        if not set(scopes) - set(finding.extra_scopes or []):
            _follow(judgement, finding, app, finding.extra_scopes, seen)
            return
        before = {"status": finding.status, "extra_scopes": finding.extra_scopes}
        finding.status, finding.resolution = FindingStatus.OPEN, ""
        _follow(judgement, finding, app, scopes, seen, reopened=True)
        judgement.events.append(("discovery.finding_opened", finding, before))
        judgement.opened[kind] += 1
        return
    _follow(judgement, finding, app, scopes, seen)


def _follow(
    judgement: _Judgement,
    finding: Finding,
    app: DiscoveredApp,
    scopes: list[str],
    seen: bool,
    *,
    reopened: bool = False,
) -> None:
    """Bring an unclosed finding's people, risk, scopes and integration up to the app's; one the
    import saw moves its ``last_import``."""
    different = _copy_risk(app, finding) or reopened
    for name, value in (
        ("title", app.name),
        ("extra_scopes", list(scopes)),
        ("people_affected", app.people_count),
        ("integration_id", app.integration_id),
    ):
        if getattr(finding, name) != value:
            setattr(finding, name, value)
            different = True
    if seen:
        finding.last_import_id = judgement.imp.pk
    if different:
        finding.updated_at = judgement.now
        judgement.changed[finding.pk] = finding
    elif seen:
        judgement.touched.add(finding.pk)


def _copy_risk(app: DiscoveredApp, finding: Finding) -> bool:
    values = (app.risk_score, app.risk_tier, list(app.risk_factors or []))
    if (finding.risk_score, finding.risk_tier, finding.risk_factors) == values:
        return False
    finding.risk_score, finding.risk_tier, finding.risk_factors = values
    return True


def _open(judgement: _Judgement, app: DiscoveredApp, kind: str, scopes: list[str]) -> Finding:
    finding = Finding(
        kind=kind,
        status=FindingStatus.OPEN,
        source=app.source,
        tenant=app.tenant,
        app_key=app.app_key,
        app=app,
        integration_id=app.integration_id,
        title=app.name,
        extra_scopes=list(scopes),
        risk_score=app.risk_score,
        risk_tier=app.risk_tier,
        risk_factors=list(app.risk_factors or []),
        people_affected=app.people_count,
        opened_at=judgement.now,
        updated_at=judgement.now,
        opened_by_import=judgement.imp,
        last_import=judgement.imp,
    )
    judgement.created.append(finding)
    judgement.events.append(("discovery.finding_opened", finding, None))
    judgement.opened[kind] += 1
    return finding


def _close(judgement: _Judgement, finding: Finding | None, resolution: str, *, status: str | None = None) -> None:
    """Close ``finding`` as resolved (``status`` unless given); a decision that already ended
    it (claimed, sanctioned, dismissed) stays its status."""
    if finding is None or finding.closed_at is not None:
        return
    before = {"status": finding.status}
    if status is not None:
        finding.status = status
    elif finding.status not in _DECIDED:
        finding.status = FindingStatus.RESOLVED
    finding.closed_at = finding.updated_at = judgement.now
    finding.resolution = resolution
    finding.last_import = judgement.imp
    judgement.changed[finding.pk] = finding
    judgement.events.append(("discovery.finding_closed", finding, before))
    judgement.closed += 1


def _gone(judgement: _Judgement, app: DiscoveredApp) -> None:
    """The provider's complete listing no longer has ``app``: close its shadow or drift finding
    and open a gone finding, closed at once where a revocation had been asked for."""
    for kind in (FindingKind.SHADOW, FindingKind.DRIFT):
        previous = judgement.unclosed.get((app.app_key, kind))
        if previous is None:
            continue
        if previous.status == FindingStatus.DISMISSED:
            _close(judgement, previous, "No longer listed by the provider.")
            continue
        revoked = previous.pk in judgement.asked_to_revoke
        text = (
            "Revocation confirmed: the provider no longer lists the app."
            if revoked
            else "No longer listed by the provider."
        )
        _close(judgement, previous, text, status=FindingStatus.RESOLVED)
        if (app.app_key, FindingKind.GONE) in judgement.unclosed:
            continue
        gone = Finding(
            kind=FindingKind.GONE,
            status=FindingStatus.RESOLVED if revoked else FindingStatus.OPEN,
            source=app.source,
            tenant=app.tenant,
            app_key=app.app_key,
            app=app,
            integration_id=previous.integration_id,
            title=previous.title,
            extra_scopes=list(previous.extra_scopes or []),
            previous_kind=kind,
            risk_score=previous.risk_score,
            risk_tier=previous.risk_tier,
            risk_factors=list(previous.risk_factors or []),
            people_affected=previous.people_affected,
            assigned_owner_id=previous.assigned_owner_id,
            opened_at=judgement.now,
            updated_at=judgement.now,
            closed_at=judgement.now if revoked else None,
            resolution=text if revoked else "",
            opened_by_import=judgement.imp,
            last_import=judgement.imp,
        )
        judgement.unclosed[(app.app_key, FindingKind.GONE)] = gone
        judgement.created.append(gone)
        judgement.events.append(("discovery.finding_opened", gone, None))
        judgement.opened[FindingKind.GONE] += 1
        if revoked:
            judgement.events.append(("discovery.finding_closed", gone, {"status": FindingStatus.OPEN}))
            judgement.closed += 1


def _write(judgement: _Judgement, actor: Actor, owner: User | None) -> None:
    """Save what the batch decided and audit it (after the inserts: events name the ids)."""
    Finding.objects.bulk_create(judgement.created, batch_size=500)
    Finding.objects.bulk_update(list(judgement.changed.values()), list(_UPDATABLE), batch_size=500)
    # Findings the import saw and nothing else changed about: only ``last_import`` moves.
    only_seen = judgement.touched - set(judgement.changed)
    if only_seen:
        Finding.objects.filter(pk__in=sorted(only_seen)).update(last_import=judgement.imp)
    if judgement.events:
        audit_record_many(
            actor=actor,
            events=[
                EventSpec(action=action, target=finding, owner=owner, before=before, after=finding_state(finding))
                for action, finding, before in judgement.events
            ],
        )


def finding_state(finding: Finding) -> dict[str, Any]:
    """A finding as its audit events and webhooks carry it."""
    return {
        "kind": finding.kind,
        "status": finding.status,
        "source": finding.source,
        "tenant": finding.tenant,
        "app_key": finding.app_key,
        "title": finding.title,
        "extra_scopes": list(finding.extra_scopes or []),
        "previous_kind": finding.previous_kind,
        "people_affected": finding.people_affected,
        "risk_tier": finding.risk_tier,
        "risk_score": finding.risk_score,
        "integration": finding.integration_id,
        "resolution": finding.resolution,
        "import": finding.last_import_id,
    }


def _stale(imp: DiscoveryImport, links: dict[str, int], actor: Actor, owner: User | None) -> _Judgement:
    """Stale findings of ``imp``'s tenant: closed when the key is listed again or no live
    integration claims it; opened by a complete import for each unlisted key of a live (not
    retired) integration. A key only another tenant of the source knows is that tenant's."""
    unclosed = list(
        Finding.objects.filter(source=imp.source, tenant=imp.tenant, kind=FindingKind.STALE, closed_at__isnull=True)
    )
    judgement = _Judgement(imp=imp, now=timezone.now(), unclosed={}, last_closed={}, asked_to_revoke=set())
    asked = set(links) | {finding.app_key for finding in unclosed}
    if not asked:
        return judgement
    listed: set[str] = set()
    known_here: set[str] = set()
    known_elsewhere: set[str] = set()
    apps_with_keys = DiscoveredApp.objects.filter(source=imp.source).filter(Q(app_key__in=asked) | Q(alt_key__in=asked))
    for tenant, app_key, alt_key, present in apps_with_keys.values_list("tenant", "app_key", "alt_key", "present"):
        keys = {app_key, alt_key} & asked
        if present:
            listed |= keys
        (known_here if tenant == imp.tenant else known_elsewhere).update(keys)
    live = dict(
        Integration.objects.filter(pk__in=set(links.values()))
        .exclude(status=IntegrationStatus.RETIRED)
        .values_list("pk", "name")
    )
    for finding in unclosed:
        judgement.unclosed[(finding.app_key, FindingKind.STALE)] = finding
        if finding.app_key in listed:
            _close(judgement, finding, "Listed by the provider again.")
        elif links.get(finding.app_key) not in live:
            _close(judgement, finding, "No live integration claims this app id any more.")
    if imp.complete:
        wanted = sorted(
            key
            for key, integration_id in links.items()
            if integration_id in live
            and key not in listed
            and (key, FindingKind.STALE) not in judgement.unclosed
            and (key in known_here or key not in known_elsewhere)
        )
        apps = {
            app.app_key: app
            for app in DiscoveredApp.objects.filter(source=imp.source, tenant=imp.tenant, app_key__in=wanted)
        }
        for key in wanted:
            _open_stale(judgement, key, apps.get(key), links[key], live[links[key]])
    _write(judgement, actor, owner)
    return judgement


def _open_stale(judgement: _Judgement, key: str, app: DiscoveredApp | None, integration_id: int, name: str) -> None:
    imp = judgement.imp
    finding = Finding(
        kind=FindingKind.STALE,
        status=FindingStatus.OPEN,
        source=imp.source,
        tenant=imp.tenant,
        app_key=key,
        app=app,
        integration_id=integration_id,
        title=name,
        opened_at=judgement.now,
        updated_at=judgement.now,
        opened_by_import=imp,
        last_import=imp,
    )
    judgement.created.append(finding)
    judgement.events.append(("discovery.finding_opened", finding, None))
    judgement.opened[FindingKind.STALE] += 1
