"""Discovery pages: the dashboard, the work list of findings, a finding with its people, scopes,
risk, history and the decisions IAM admins take on it, the claim form, the imports (history and
upload), the scope mappings, and a person's own connected apps ("mine").

IAM admins act; reviewers and auditors read; anyone else sees only their own apps (and the
findings of those, to claim them): every other page answers 404. Views parse input, fetch through
the selectors and call the services, which decide again who may act; a refused form comes back
with everything typed and the error beside its field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.exceptions import DomainError, NotAllowed, NotFound, ValidationFailed
from governance.forms import AccessibleForm, people_options
from governance.history import audit_changes, history_readable
from governance.roles import is_iam_admin, is_read_only
from governance.web import AuthenticatedHttpRequest, attempt
from inventory.discovery import importer, scopes, selectors, services
from inventory.discovery.chart import weekly_chart
from inventory.discovery.choices import ACTIVE_FINDING_STATUSES, ConsentResponse, FindingKind, FindingStatus
from inventory.discovery.forms import (
    AssignForm,
    ClaimForm,
    FindingFilterForm,
    NotNeededForm,
    ReasonForm,
    RevokeForm,
    ScopeMappingForm,
    UploadForm,
)
from inventory.discovery.models import DiscoveredConsent, Finding

PAGE_SIZE = 25
# A finding's page lists its people this many at a time (a popular app has thousands).
PEOPLE_PAGE_SIZE = 50
MAPPINGS_PAGE_SIZE = 50
# An import's page lists the findings it opened, most people affected first, up to this many.
IMPORT_FINDINGS_SHOWN = 20
# The work list's sort orders as its caption says them.
ORDERING_WORDS = {
    "-people": "most people affected first",
    "people": "fewest people affected first",
    "-risk": "highest risk first",
    "risk": "lowest risk first",
    "-opened": "newest first",
    "opened": "oldest first",
    "title": "name, A to Z",
    "-title": "name, Z to A",
}
# The work list's sortable columns: the ordering key each header toggles to (descending first).
SORT_COLUMNS = {"title": "title", "people": "-people", "risk": "-risk", "opened": "-opened"}


def _require_reader(request: AuthenticatedHttpRequest) -> None:
    """Discovery as a whole is IAM's to act on and reviewers' and auditors' to read."""
    if not selectors.sees_discovery(request.user):
        raise Http404


def _require_actor(request: AuthenticatedHttpRequest) -> None:
    """Decisions on findings, imports and scope mappings are IAM admins' (the services check
    again); a form is not even taken from anyone else."""
    _require_reader(request)
    if not is_iam_admin(request.user):
        raise NotAllowed("Only IAM admins act on discovery.")


def _finding_or_404(request: AuthenticatedHttpRequest, pk: int) -> Finding:
    return get_object_or_404(selectors.finding_detail(request.user), pk=pk)


# --- Dashboard and work list ---------------------------------------------------------------------


@login_required
@require_GET
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    _require_reader(request)
    data = selectors.dashboard(request.user)
    return render(
        request,
        "discovery/dashboard.html",
        {**data, "chart": weekly_chart(data["weeks"]), "can_act": is_iam_admin(request.user)},
    )


def _sort_links(request: AuthenticatedHttpRequest, current: str) -> dict[str, dict[str, str]]:
    """Each sortable column's link (the other direction when it is the current sort) and its
    ``aria-sort`` state."""
    query = request.GET.copy()
    query.pop("page", None)
    links = {}
    for column, first in SORT_COLUMNS.items():
        ascending, descending = first.lstrip("-"), "-" + first.lstrip("-")
        if current in (ascending, descending):
            target = ascending if current == descending else descending
            state = "ascending" if current == ascending else "descending"
        else:
            target, state = first, "none"
        query["ordering"] = target
        links[column] = {"url": "?" + query.urlencode(), "state": state}
    return links


@login_required
@require_GET
def finding_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The work list: active findings by default, filtered and sorted, a page at a time (two
    queries: the count and the page, whatever the number of findings)."""
    _require_reader(request)
    form = FindingFilterForm(request.GET)
    filters = form.filters()
    page = Paginator(selectors.finding_list(request.user, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "discovery/finding_list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "ordering": ORDERING_WORDS.get(filters.ordering, ORDERING_WORDS[selectors.DEFAULT_ORDERING]),
            "sort": _sort_links(request, filters.ordering),
        },
    )


# --- One finding ---------------------------------------------------------------------------------


def _history(finding: Finding, remediation_ids: list[int]) -> list[Any]:
    events = selectors.finding_history(finding, remediation_ids)
    entries = [
        {
            "at": event.created_at,
            "who": event.actor_username,
            "source": "audit",
            "action": event.action,
            "reason": event.reason,
            "changes": audit_changes(event.before, event.after),
        }
        for event in events
    ]
    return history_readable(entries, model=Finding)


# Which decisions the page offers in which status (the services check the same again): a claim
# or a sanction while a shadow finding is active, a scope review or a dismissal while undecided,
# a revocation also while one is under way or the scopes are in review.
UNDECIDED = (FindingStatus.OPEN, FindingStatus.ESCALATED)
REVOCABLE = (*UNDECIDED, FindingStatus.REVOKE_REQUESTED, FindingStatus.REVIEW_OPENED)


def _revocable_consents(request: AuthenticatedHttpRequest, finding: Finding) -> list[DiscoveredConsent]:
    """The consents a revocation may name alone: the first of the app's present ones."""
    return list(selectors.finding_consents(request.user, finding).filter(present=True)[:PEOPLE_PAGE_SIZE])


def _action_forms(request: AuthenticatedHttpRequest, finding: Finding, bound: dict[str, Any]) -> dict[str, Any]:
    """The decisions an IAM admin may take on the finding now, each with its form (``bound``:
    a refused form to show again as it was sent). Nothing for anyone else, or once decided."""
    status = finding.status
    if not is_iam_admin(request.user) or status not in REVOCABLE + ACTIVE_FINDING_STATUSES:
        return {}
    shadow = finding.kind == FindingKind.SHADOW
    revocable = (
        finding.app_id is not None and finding.kind in (FindingKind.SHADOW, FindingKind.DRIFT) and status in REVOCABLE
    )
    revoke = None
    if revocable:
        revoke = bound.get("revoke") or RevokeForm(prefix="revoke", consents=_revocable_consents(request, finding))
    offered = {
        "assign": (bound.get("assign") or AssignForm(prefix="assign")) if status in ACTIVE_FINDING_STATUSES else None,
        "dismiss": (bound.get("dismiss") or ReasonForm(prefix="dismiss")) if status in UNDECIDED else None,
        "revoke": revoke,
        "can_claim": shadow and status in ACTIVE_FINDING_STATUSES,
        "can_sanction": shadow and status in ACTIVE_FINDING_STATUSES,
        "can_review": finding.kind == FindingKind.DRIFT and status in UNDECIDED and finding.integration_id is not None,
    }
    return offered if any(offered.values()) else {}


def _claimable_by_person(request: AuthenticatedHttpRequest, finding: Finding) -> bool:
    """A person who consented to a shadow app, or was assigned it, may claim it for themselves
    while it waits (the service's rule, so the page never offers what the service refuses)."""
    if finding.kind != FindingKind.SHADOW or finding.status not in ACTIVE_FINDING_STATUSES:
        return False
    return services.finding_may_claim_for_self(request.user, finding)


def _detail_page(
    request: AuthenticatedHttpRequest, finding: Finding, *, bound: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """The finding's page; ``bound`` holds a refused action form to show again, input kept."""
    user = request.user
    people = Paginator(selectors.finding_consents(user, finding), PEOPLE_PAGE_SIZE).get_page(request.GET.get("people"))
    consents = list(people.object_list)
    # Revocations name other people's consents and the history other people's decisions: for
    # those who read discovery as a whole.
    sees_everyone = selectors.sees_discovery(user)
    remediations = list(selectors.finding_remediations(finding)) if sees_everyone else []
    actions = _action_forms(request, finding, bound or {})
    return render(
        request,
        "discovery/finding_detail.html",
        {
            "finding": finding,
            "app": finding.app,
            "people": people,
            "consents": consents,
            "sees_everyone": sees_everyone,
            "scope_rows": scopes.scope_rows(finding.app) if finding.app is not None else [],
            "remediations": remediations,
            "history": _history(finding, [remediation.pk for remediation in remediations]) if sees_everyone else [],
            "actions": actions,
            "people_options": people_options(user, finding.assigned_owner) if actions.get("assign") else [],
            "can_claim_myself": not actions and _claimable_by_person(request, finding),
        },
        status=status,
    )


@login_required
@require_GET
def finding_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _finding_or_404(request, pk))


def _decide(
    request: AuthenticatedHttpRequest,
    finding: Finding,
    key: str,
    form: AccessibleForm,
    call: Callable[[dict[str, Any]], object],
    success: str,
) -> HttpResponse:
    """One decision from the finding's page: valid input goes to the service; refused input (the
    form's or the service's field errors) shows the page again with the form as it was sent; a
    refusal of the state (decided meanwhile) comes back as a message."""
    back = redirect("discovery:finding", finding.pk)
    if form.is_valid():
        try:
            call(form.cleaned_data)
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            if not exc.errors:
                messages.error(request, exc.detail)
                return back
            form.add_service_errors(exc)
        else:
            messages.success(request, success)
            return back
    return _detail_page(request, finding, bound={key: form}, status=400)


@login_required
@require_POST
def finding_assign(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    finding = _finding_or_404(request, pk)
    _require_actor(request)
    form = AssignForm(request.POST, prefix="assign")
    return _decide(
        request,
        finding,
        "assign",
        form,
        lambda data: services.finding_assign(actor=request.user, finding=finding, owner=data["owner"]),
        "The owner was assigned and told by email.",
    )


@login_required
@require_POST
def finding_dismiss(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    finding = _finding_or_404(request, pk)
    _require_actor(request)
    form = ReasonForm(request.POST, prefix="dismiss")
    return _decide(
        request,
        finding,
        "dismiss",
        form,
        lambda data: services.finding_dismiss(actor=request.user, finding=finding, reason=data["reason"]),
        "The finding was dismissed.",
    )


@login_required
@require_POST
def finding_revoke(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    finding = _finding_or_404(request, pk)
    _require_actor(request)
    present = _revocable_consents(request, finding)
    form = RevokeForm(request.POST, prefix="revoke", consents=present)
    chosen = {consent.pk: consent for consent in present}
    return _decide(
        request,
        finding,
        "revoke",
        form,
        lambda data: services.finding_revoke(
            actor=request.user,
            finding=finding,
            reason=data["reason"],
            consent=chosen.get(data["consent"]) if data["consent"] else None,
        ),
        "The revocation was requested: the ticketing system is told, and the provider is called where the portal may.",
    )


@login_required
@require_POST
def finding_review(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """A drift's extra scopes become a scope-expansion request of its integration."""
    finding = _finding_or_404(request, pk)
    _require_actor(request)
    attempt(
        request,
        lambda: services.finding_open_review(actor=request.user, finding=finding),
        success="A scope review was opened: the extra scopes wait for the approvers.",
    )
    return redirect("discovery:finding", finding.pk)


# --- Claim and sanction ----------------------------------------------------------------------------


def _claim_form(
    request: AuthenticatedHttpRequest, finding: Finding, *, with_owner: bool, prefill_owner: Any
) -> ClaimForm:
    if request.method == "POST":
        return ClaimForm(request.POST, with_owner=with_owner)
    initial = dict(services.claim_prefill(finding, prefill_owner))
    if with_owner:
        initial["owner"] = finding.assigned_owner
    return ClaimForm(initial=initial, with_owner=with_owner)


# The registration's owner roles are the claim form's one owner field.
OWNER_ROLE_FIELDS = ("business_owner", "technical_owner")


def _claim_refused(form: ClaimForm, exc: DomainError) -> None:
    """Put the service's refusal on the claim form: an owner role's error beside the owner."""
    if exc.errors and "owner" in form.fields:
        errors: dict[str, list[str]] = {}
        for name, found in exc.errors.items():
            errors.setdefault("owner" if name in OWNER_ROLE_FIELDS else name, []).extend(found)
        exc = ValidationFailed(exc.detail, errors=errors)
    form.add_service_errors(exc)


def _registration_page(
    request: AuthenticatedHttpRequest, finding: Finding, form: ClaimForm, *, mode: str
) -> HttpResponse:
    named = [form.initial.get("owner"), finding.assigned_owner]
    return render(
        request,
        "discovery/claim.html",
        {
            "finding": finding,
            "form": form,
            "mode": mode,
            "has_errors": bool(form.errors),
            "people_options": people_options(request.user, *named) if "owner" in form.fields else [],
        },
        status=400 if request.method == "POST" else 200,
    )


def _not_open(request: AuthenticatedHttpRequest, finding: Finding) -> HttpResponse | None:
    """A finding that no longer waits for a decision sends the visitor back to it."""
    if finding.kind == FindingKind.SHADOW and finding.status in ACTIVE_FINDING_STATUSES:
        return None
    messages.info(request, f"This finding is {finding.get_status_display().lower()}: it is not open for a claim.")
    return redirect("discovery:finding", finding.pk)


@login_required
@require_http_methods(["GET", "POST"])
def finding_claim(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Register the app as an integration, prefilled from what the provider shows, and send it
    for approval: an IAM admin on someone's behalf, a person who consented for themselves."""
    finding = _finding_or_404(request, pk)
    refused = _not_open(request, finding)
    if refused is not None:
        return refused
    on_behalf = is_iam_admin(request.user)
    if not on_behalf and not _claimable_by_person(request, finding):
        raise NotAllowed("Only IAM admins and the people who connected the app may claim it.")
    # A person claims for themselves; an IAM admin starts from whoever was assigned to answer.
    prefill_owner = (finding.assigned_owner or request.user) if on_behalf else request.user
    form = _claim_form(request, finding, with_owner=on_behalf, prefill_owner=prefill_owner)
    if request.method == "POST" and form.is_valid():
        owner = form.cleaned_data["owner"] if on_behalf else request.user
        try:
            integration = services.finding_claim(actor=request.user, finding=finding, owner=owner, values=form.values())
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            _claim_refused(form, exc)
        else:
            messages.success(request, f"{integration.name} was registered and sent for approval.")
            return redirect("inventory:detail", integration.pk)
    return _registration_page(request, finding, form, mode="claim")


@login_required
@require_http_methods(["GET", "POST"])
def finding_sanction(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Register an app everyone may use once, with the acting IAM admin as its owner."""
    finding = _finding_or_404(request, pk)
    _require_actor(request)
    refused = _not_open(request, finding)
    if refused is not None:
        return refused
    form = _claim_form(request, finding, with_owner=False, prefill_owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            integration = services.finding_sanction(actor=request.user, finding=finding, values=form.values())
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"{integration.name} was registered as sanctioned for everyone.")
            return redirect("discovery:finding", finding.pk)
    return _registration_page(request, finding, form, mode="sanction")


# --- Imports -------------------------------------------------------------------------------------


def _upload(request: AuthenticatedHttpRequest, form: UploadForm) -> HttpResponse | None:
    """Queue a valid upload; None (errors on the form) when it is refused."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    upload = data["file"]
    try:
        imp = importer.import_upload(
            actor=request.user,
            source=data["source"],
            tenant=data["tenant"],
            uploaded=upload,
            file_name=upload.name or "",
            complete=data["complete"],
        )
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        form.add_service_errors(exc)
        return None
    messages.success(request, f"{upload.name} was received; it is imported in the background.")
    return redirect("discovery:import", imp.pk)


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Past imports, newest first, and (for IAM admins) the upload form."""
    _require_reader(request)
    form: UploadForm | None = None
    if request.method == "POST":
        _require_actor(request)
        form = UploadForm(request.POST, request.FILES)
        done = _upload(request, form)
        if done is not None:
            return done
    elif is_iam_admin(request.user):
        form = UploadForm()
    page = Paginator(selectors.imports_for(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "discovery/import_list.html",
        {"page": page, "form": form, "query": "", "has_errors": bool(form is not None and form.errors)},
        status=400 if request.method == "POST" else 200,
    )


# What an import's counts are called on its page, in this order (``DiscoveryImport.counts``).
COUNT_LABELS = {
    "apps": "Apps",
    "apps_new": "New apps",
    "consents": "Consents",
    "consents_new": "New consents",
    "consents_changed": "Consents changed",
    "people_matched": "People matched to an account",
    "people_unmatched": "People without an account",
}


@login_required
@require_GET
def import_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    imp = get_object_or_404(selectors.imports_for(request.user), pk=pk)
    opened = selectors.findings_for(request.user).filter(opened_by_import=imp).select_related("app")
    counts = dict(imp.counts or {})
    by_kind = counts.get("findings") or {}
    return render(
        request,
        "discovery/import_detail.html",
        {
            "imp": imp,
            "counts": [(label, counts[key]) for key, label in COUNT_LABELS.items() if key in counts],
            "findings_opened": [(label, by_kind.get(kind, 0)) for kind, label in FindingKind.choices],
            "closed": counts.get("closed", 0),
            "opened": list(opened.order_by("-people_affected", "-risk_score", "id")[:IMPORT_FINDINGS_SHOWN]),
        },
    )


# --- Scope mappings ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def scope_mapping_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The mappings IAM keeps from providers' scopes to the catalog, and (for IAM admins) the
    form that adds or changes one (prefilled from a finding's unmapped scope)."""
    _require_reader(request)
    form: ScopeMappingForm | None = None
    if request.method == "POST":
        _require_actor(request)
        form = ScopeMappingForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                scopes.scope_mapping_save(
                    actor=request.user,
                    source=data["source"],
                    provider_scope=data["provider_scope"],
                    scope=data["scope"],
                )
            except (NotAllowed, NotFound):
                raise
            except DomainError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"{data['provider_scope']} now maps to {data['scope'].code}.")
                return redirect("discovery:scope-mappings")
    elif is_iam_admin(request.user):
        form = ScopeMappingForm(initial={key: request.GET.get(key, "") for key in ("source", "provider_scope")})
    page = Paginator(selectors.scope_mappings_for(request.user), MAPPINGS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "discovery/scope_mappings.html",
        {"page": page, "form": form, "query": "", "can_act": is_iam_admin(request.user)},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def scope_mapping_delete(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    mapping = get_object_or_404(selectors.scope_mappings_for(request.user), pk=pk)
    attempt(
        request,
        lambda: scopes.scope_mapping_delete(actor=request.user, mapping=mapping),
        success=f"The mapping of {mapping.provider_scope} was removed; the scope is estimated again.",
    )
    return redirect("discovery:scope-mappings")


# --- A person's own apps -------------------------------------------------------------------------

# The answers that close the question for the person.
ANSWERED = (ConsentResponse.CLAIMED, ConsentResponse.NOT_NEEDED, ConsentResponse.DEFAULTED)


def _mine_page(
    request: AuthenticatedHttpRequest, *, bound: NotNeededForm | None = None, status: int = 200
) -> HttpResponse:
    """The person's apps, a page at a time; ``bound``: a refused "Not needed" to show again as
    it was sent, its error beside the comment."""
    page = Paginator(selectors.consents_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    # An auditor reads their own apps too, and answers nothing (the services would refuse).
    may_answer = not is_read_only(request.user)
    for consent in page.object_list:
        status_of = getattr(consent, "shadow_finding_status", None)
        waiting = may_answer and status_of in ACTIVE_FINDING_STATUSES and consent.response not in ANSWERED
        prefix = f"c{consent.pk}"
        form = bound if bound is not None and bound.prefix == prefix else NotNeededForm(prefix=prefix)
        rows.append({"consent": consent, "waiting": waiting, "form": form})
    return render(request, "discovery/mine.html", {"page": page, "rows": rows, "query": ""}, status=status)


@login_required
@require_GET
def mine(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The apps the signed-in person connected with their work account; for each one nobody
    registered: Claim ("I use this for work") or Not needed."""
    return _mine_page(request)


@login_required
@require_POST
def consent_not_needed(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The person's "Not needed": a request to revoke their consent at the provider. A refused
    comment comes back on the page it was sent from, as typed."""
    consent = get_object_or_404(selectors.consents_of(request.user), pk=pk)
    form = NotNeededForm(request.POST, prefix=f"c{consent.pk}")
    if not form.is_valid():
        return _mine_page(request, bound=form, status=400)
    comment = form.cleaned_data["comment"]
    attempt(
        request,
        lambda: services.consent_not_needed(actor=request.user, consent=consent, comment=comment),
        success=f"Thank you: {consent.app.name} will be disconnected from your account.",
    )
    return redirect(reverse("discovery:mine"))
