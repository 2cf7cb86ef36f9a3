"""Inventory pages. Views parse input, fetch through the selectors (an unseen object is a 404)
and call a service, which checks who may act; domain errors from a form's service come back
next to the field, input kept."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from governance.csv_export import csv_response
from governance.exceptions import DomainError, NotAllowed, NotFound, ValidationFailed
from governance.history import history_readable
from governance.models import User
from governance.paging import EstimatedCountPaginator
from governance.roles import sees_everything
from governance.selectors import people_suggested
from governance.targets import attach_target_links
from governance.web import AuthenticatedHttpRequest, attempt
from inventory import extensions, issuer_keys, permissions, risk, selectors, services, timeline
from inventory.choices import SUBMITTABLE_STATUSES, IntegrationStatus, TransferStatus
from inventory.filters import ORDERING_FIELDS, IntegrationFilter, ordered_for_search
from inventory.forms import (
    CredentialFormSet,
    IntegrationForm,
    IssuerForm,
    ResourceSystemForm,
    ScopeForm,
    TransferForm,
    WorkloadBindingForm,
    apply_service_errors,
    binding_initial,
    credentials_initial,
    forget_refused_secrets,
    integration_initial,
    issuer_initial,
    people_options,
)
from inventory.models import Integration, ResourceSystem, TrustedIssuer

PAGE_SIZE = 25
# An issuer page lists this many of its bound integrations (by name) and says how many there are.
ISSUER_BINDINGS_SHOWN = 50


def _ordering(request: AuthenticatedHttpRequest) -> str:
    value = request.GET.get("ordering", "name")
    return value if value.lstrip("-") in ORDERING_FIELDS else "name"


def _order_terms(ordering: str) -> tuple[str, str]:
    """The sort and its tie-break, in the same direction: each (field, id) index then serves it
    forwards or backwards."""
    return ordering, "-id" if ordering.startswith("-") else "id"


@login_required
def integration_list(request: AuthenticatedHttpRequest) -> HttpResponse | StreamingHttpResponse:
    base = selectors.integrations_for(request.user)
    filt = IntegrationFilter(request.GET, queryset=base)
    ordering = _ordering(request)
    qs = filt.qs.order_by(*_order_terms(ordering))
    listed = selectors.integrations_listed(request.user)
    if request.GET.get("format") == "csv":
        return _csv(
            selectors.active_grants_annotated(listed.filter(pk__in=qs.values("pk")).order_by(*_order_terms(ordering)))
        )
    ids = ordered_for_search(qs.values_list("pk", flat=True), request.GET.get("q", ""))
    # Counted up to a bound, estimated beyond it ("about 12,000"): see governance.paging.
    page = EstimatedCountPaginator(ids, PAGE_SIZE, estimate_first=sees_everything(request.user)).get_page(
        request.GET.get("page")
    )
    page.object_list = selectors.rows_for_page(listed, list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = query.copy()
    sort_query.pop("ordering", None)
    return render(
        request,
        "inventory/list.html",
        {
            "filter": filt,
            "page": page,
            "query": query.urlencode(),
            "sort_query": sort_query.urlencode(),
            "ordering": ordering,
            "can_register": permissions.can_register(request.user),
        },
    )


def _username(user: User | None) -> str:
    return user.username if user else ""


# The export's columns: each one's header and how a row's cell is read.
CSV_COLUMNS: dict[str, Callable[[Integration], object]] = {
    "id": attrgetter("pk"),
    "name": attrgetter("name"),
    "kind": attrgetter("kind"),
    "status": attrgetter("status"),
    "risk_tier": attrgetter("risk_tier"),
    "risk_score": attrgetter("risk_score"),
    "vendor": attrgetter("vendor"),
    "environment": attrgetter("environment"),
    "business_owner": lambda integ: _username(integ.business_owner),
    "technical_owner": lambda integ: _username(integ.technical_owner),
    "backup_owner": lambda integ: _username(integ.backup_owner),
    "data_classifications": lambda integ: " ".join(integ.data_classifications or []),
    "requested_scopes": lambda integ: " ".join(scope.code for scope in integ.requested_scopes.all()),
    "active_grants": attrgetter("active_grants"),
    "orphaned": attrgetter("orphaned"),
    "ticket_ref": attrgetter("ticket_ref"),
    "created_at": lambda integ: integ.created_at.isoformat(),
    "updated_at": lambda integ: integ.updated_at.isoformat(),
}


def _csv(qs: QuerySet[Integration]) -> StreamingHttpResponse:
    """Streamed in chunks: the export of 100,000 rows never sits in memory."""
    rows = ([cell(integ) for cell in CSV_COLUMNS.values()] for integ in qs.iterator(chunk_size=1000))
    return csv_response("integrations.csv", CSV_COLUMNS, rows)


def _visible(request: AuthenticatedHttpRequest, pk: int) -> Integration:
    return get_object_or_404(selectors.integration_detail(request.user), pk=pk)


# --- Registering and changing an integration ---------------------------------------------------


def _form_page(request: AuthenticatedHttpRequest, integration: Integration | None) -> HttpResponse:
    """The registration form (``integration`` None) or the change form. Saving is the service's
    to allow or refuse; showing the form, to someone who could not save it, is refused here."""
    user = request.user
    visible = selectors.integrations_for(user)
    if request.method == "POST":
        form = IntegrationForm(request.POST, user=user, visible=visible, instance=integration)
        formset = CredentialFormSet(request.POST, prefix="cred")
        saved = _form_save(request, integration, form, formset)
        if saved is not None:
            return redirect("inventory:detail", saved.pk)
        # The page comes back with its errors: without any refused secret-looking value.
        for refused in (form, *formset.forms):
            forget_refused_secrets(refused)
    else:
        form = IntegrationForm(
            initial=integration_initial(integration), user=user, visible=visible, instance=integration
        )
        formset = CredentialFormSet(initial=credentials_initial(integration), prefix="cred")
    _form_allowed(user, integration)
    cred_errors = any(f.errors for f in formset.forms) or bool(formset.non_form_errors())
    return render(
        request,
        "inventory/form.html",
        {
            "form": form,
            "formset": formset,
            "integration": integration,
            "has_errors": bool(form.errors) or cred_errors,
            "can_submit": integration is None or integration.status in SUBMITTABLE_STATUSES,
        },
        status=400 if request.method == "POST" else 200,
    )


def _form_allowed(user: User, integration: Integration | None) -> None:
    if integration is None and not permissions.can_register(user):
        raise NotAllowed("You may not register integrations.")
    if integration is not None and not permissions.can_edit(user, integration):
        raise NotAllowed("Only the integration's owners and IAM admins may change it.")


def _form_save(
    request: AuthenticatedHttpRequest, integration: Integration | None, form: IntegrationForm, formset: Any
) -> Integration | None:
    """Save valid input through the services; None (errors put on the form) when refused."""
    if not (form.is_valid() and formset.is_valid()):
        return None
    values = form.values()
    values["credentials"] = formset.values()
    submit = request.POST.get("action") == "submit"
    try:
        saved = _integration_save(request.user, integration, values, submit=submit)
    except ValidationFailed as exc:
        apply_service_errors(exc, form, formset)
        return None
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        form.add_error(None, exc.detail)
        form.mark_errors()
        return None
    messages.success(request, f"{saved.name} was {'submitted for approval' if submit else 'saved'}.")
    _tell_waiting_owners(request, saved)
    return saved


def _integration_save(
    user: User, integration: Integration | None, values: dict[str, Any], *, submit: bool
) -> Integration:
    if integration is None:
        return services.integration_register(actor=user, values=values, submit=submit)
    saved = services.integration_update(actor=user, integration=integration, values=values)
    if submit and saved.status in SUBMITTABLE_STATUSES:
        saved = services.integration_submit(actor=user, integration=saved)
    return saved


def _tell_waiting_owners(request: AuthenticatedHttpRequest, integration: Integration) -> None:
    """Say which owner roles wait for the named person's consent (``integration_register`` /
    ``integration_update`` proposed them instead of assigning them)."""
    waiting = integration.transfers.filter(status=TransferStatus.PROPOSED).select_related("to_user").order_by("pk")
    for transfer in waiting:
        messages.info(
            request,
            f"{transfer.to_user.label} was asked to become the {transfer.get_role_display().lower()}; "
            "the role is theirs once they accept.",
        )


@login_required
@require_GET
def people_search(request: AuthenticatedHttpRequest) -> JsonResponse:
    """Suggestions for the person fields (``inventory/people.js``): at most 10 active people
    whose username or name contains ``q`` (2 characters or more), or, without ``q``, the
    caller's colleagues. Only usernames and display names; never the whole directory."""
    found = people_suggested(request.user, query=request.GET.get("q", "")[:100], limit=10)
    return JsonResponse({"results": [{"username": p.username, "label": p.label} for p in found]})


@login_required
def integration_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _form_page(request, None)


@login_required
def integration_edit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _form_page(request, _visible(request, pk))


# --- One integration ----------------------------------------------------------------------------


@login_required
def integration_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _visible(request, pk))


def _detail_page(
    request: AuthenticatedHttpRequest,
    integ: Integration,
    binding_form: WorkloadBindingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The integration's page; ``binding_form`` is a refused binding form to show again."""
    user = request.user
    can_edit = permissions.can_edit(user, integ)
    moves = services.INTEGRATION_TRANSITIONS[integ.status]
    grants = list(selectors.grants_of(integ))
    # What justified each grant (its access request), named and linked for this viewer.
    attach_target_links(user, grants, type_attr="source_type", id_attr="source_id", into="source_link")
    return render(
        request,
        "inventory/detail.html",
        {
            "integration": integ,
            **_chain_context(user, integ),
            **_identity_context(integ, can_edit and integ.status != IntegrationStatus.RETIRED, binding_form),
            "grants": grants,
            "used_vs_granted": selectors.used_vs_granted(grants),
            "credentials": [
                {"credential": cred, "rotation": risk.rotation_status(cred)} for cred in integ.credentials.all()
            ],
            **_timeline_context(request, integ),
            # What the apps above the inventory show about it (runtime activity, elevations, ...).
            "sections": extensions.integration_sections(request, integ),
            "transfers": list(integ.transfers.select_related("to_user", "from_user").order_by("-created_at")[:10]),
            "can_edit": can_edit and integ.status != IntegrationStatus.RETIRED,
            "can_submit": can_edit and integ.status in SUBMITTABLE_STATUSES,
            "can_suspend": can_edit and IntegrationStatus.SUSPENDED in moves,
            "can_reactivate": can_edit and integ.status == IntegrationStatus.SUSPENDED,
            "can_retire": can_edit and IntegrationStatus.RETIRED in moves,
            "transfer_form": TransferForm(),
            "people_options": people_options(user, integ.business_owner, integ.technical_owner, integ.backup_owner)
            if can_edit
            else [],
        },
        status=status,
    )


# The detail page shows this many changes of the timeline, and links to the older and newer ones.
TIMELINE_PAGE_SIZE = 50


def _timeline_context(request: AuthenticatedHttpRequest, integration: Integration) -> dict[str, Any]:
    """A page of the integration's timeline, cut on time at the ``changes`` cursor (one that
    cannot be read shows the newest page), with the cursors of the older and newer pages."""
    try:
        cursor = timeline.Cursor.decode(request.GET["changes"]) if request.GET.get("changes") else None
    except timeline.MalformedCursor:
        cursor = None
    page = timeline.timeline_page(integration, size=TIMELINE_PAGE_SIZE, cursor=cursor)
    return {
        "timeline": history_readable(page.entries, model=Integration),
        "timeline_older": page.older.encode() if page.older else "",
        "timeline_newer": page.newer.encode() if page.newer else "",
    }


def _identity_context(integration: Integration, can_bind: bool, form: WorkloadBindingForm | None) -> dict[str, Any]:
    """The workload identity section: its status, the binding, and (for owners and IAM admins)
    the form that binds or changes it."""
    binding = selectors.binding_of(integration)
    if can_bind and form is None:
        form = WorkloadBindingForm(initial=binding_initial(binding), issuers=selectors.issuers_bindable())
    return {
        "identity_status": selectors.identity_status_of(integration),
        "binding": binding,
        "binding_claims": sorted(binding.required_claims.items()) if binding else [],
        "binding_form": form if can_bind else None,
    }


def _chain_context(user: User, integration: Integration) -> dict[str, Any]:
    return selectors.delegation_chain(user, integration)


def _action(
    request: AuthenticatedHttpRequest, pk: int, run: Callable[[Integration, str], object], success: str
) -> HttpResponse:
    """One button of the detail page: the service's answer becomes a message on that page."""
    integ = _visible(request, pk)
    reason = request.POST.get("reason", "").strip()
    attempt(request, lambda: run(integ, reason), success=success.format(name=integ.name))
    return redirect("inventory:detail", integ.pk)


@login_required
@require_POST
def integration_submit(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda integ, reason: services.integration_submit(actor=request.user, integration=integ, reason=reason),
        "{name} was submitted for approval.",
    )


@login_required
@require_POST
def integration_suspend(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda integ, reason: services.integration_suspend(actor=request.user, integration=integ, reason=reason),
        "{name} was suspended; every active grant was revoked.",
    )


@login_required
@require_POST
def integration_reactivate(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda integ, reason: services.integration_reactivate(actor=request.user, integration=integ, reason=reason),
        "Reactivation of {name} was requested; it is pending approval.",
    )


@login_required
@require_POST
def integration_retire(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda integ, reason: services.integration_retire(actor=request.user, integration=integ, reason=reason),
        "{name} was retired.",
    )


@login_required
@require_POST
def integration_binding(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Bind (or change) the workload identity; a refusal shows the page again with the input."""
    integ = _visible(request, pk)
    form = WorkloadBindingForm(request.POST, issuers=selectors.issuers_bindable())
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.workload_binding_set(
                actor=request.user,
                integration=integ,
                issuer=data["issuer"],
                subject=data["subject"],
                required_claims=data["required_claims"],
            )
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"The workload identity of {integ.name} was saved.")
            return redirect(reverse("inventory:detail", args=[integ.pk]) + "#h-identity")
    elif not permissions.can_edit(request.user, integ):
        raise NotAllowed("Only the integration's owners and IAM admins may change its workload identity.")
    return _detail_page(request, integ, form, status=400)


@login_required
@require_POST
def integration_binding_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    integ = _visible(request, pk)
    reason = request.POST.get("reason", "").strip()
    attempt(
        request,
        lambda: services.workload_binding_remove(actor=request.user, integration=integ, reason=reason),
        success=f"The workload binding of {integ.name} was removed; it cannot obtain tokens until bound again.",
    )
    return redirect(reverse("inventory:detail", args=[integ.pk]) + "#h-identity")


# --- Ownership ------------------------------------------------------------------------------------


@login_required
@require_POST
def integration_transfer(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    integ = _visible(request, pk)
    form = TransferForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect("inventory:detail", integ.pk)
    to_user = form.cleaned_data["to_user"]
    attempt(
        request,
        lambda: services.ownership_transfer_propose(
            actor=request.user,
            integration=integ,
            to_user=to_user,
            role=form.cleaned_data["role"],
            reason=form.cleaned_data["reason"],
        ),
        success=f"The transfer was proposed to {to_user.label}; it waits for their answer.",
    )
    return redirect("inventory:detail", integ.pk)


@login_required
def transfer_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    transfer = get_object_or_404(
        selectors.transfers_for(request.user).select_related("integration", "to_user", "from_user", "proposed_by"),
        pk=pk,
    )
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        decision = request.POST.get("decision")
        if decision == "accept":
            attempt(
                request,
                lambda: services.ownership_transfer_accept(actor=request.user, transfer=transfer, reason=reason),
                success=f"You now are the {transfer.get_role_display().lower()} of {transfer.integration.name}.",
            )
        elif decision == "decline":
            attempt(
                request,
                lambda: services.ownership_transfer_decline(actor=request.user, transfer=transfer, reason=reason),
                success="You declined the transfer.",
            )
        return redirect("inventory:transfer", transfer.pk)
    return render(
        request, "inventory/transfer.html", {"transfer": transfer, "mine": transfer.to_user_id == request.user.pk}
    )


@login_required
def orphans(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not permissions.sees_orphan_list(request.user):
        raise Http404
    page = Paginator(selectors.orphaned_for(request.user).order_by("name", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "inventory/orphans.html", {"page": page, "query": ""})


# --- The scope catalog ------------------------------------------------------------------------


@login_required
def catalog(request: AuthenticatedHttpRequest) -> HttpResponse:
    systems = list(selectors.systems_for(request.user))
    return render(
        request,
        "inventory/catalog.html",
        {"systems": systems, "can_manage": permissions.can_manage_catalog(request.user)},
    )


def _catalog_form_allowed(user: User) -> None:
    """A catalog form is shown only to the people who keep it. Saving it is the service's to
    allow or refuse."""
    if not permissions.can_manage_catalog(user):
        raise NotAllowed("Only IAM admins keep the scope catalog.")


@login_required
def system_form(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    system = get_object_or_404(selectors.systems_for(request.user), pk=pk) if pk else None
    if request.method == "POST":
        form = ResourceSystemForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.resource_system_save(
                    actor=request.user,
                    system=system,
                    owners=data["owners"],
                    values={k: data[k] for k in services.SYSTEM_FIELDS},
                )
            except ValidationFailed as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"{data['name']} was saved.")
                return redirect("inventory:catalog")
    else:
        form = ResourceSystemForm(initial=_system_initial(system))
    _catalog_form_allowed(request.user)
    title = f"Edit {system.name}" if system else "New resource system"
    return render(request, "inventory/catalog_form.html", {"form": form, "title": title})


def _system_initial(system: ResourceSystem | None) -> dict[str, Any]:
    if system is None:
        return {}
    return {**{f: getattr(system, f) for f in services.SYSTEM_FIELDS}, "owners": list(system.owners.all())}


@login_required
def scope_form(request: AuthenticatedHttpRequest, system_pk: int | None = None, pk: int | None = None) -> HttpResponse:
    scope = get_object_or_404(selectors.scopes_for(request.user), pk=pk) if pk else None
    system = scope.system if scope else get_object_or_404(selectors.systems_for(request.user), pk=system_pk)
    if request.method == "POST":
        form = ScopeForm(request.POST, fixed_name=scope.name if scope else None)
        if form.is_valid():
            data = dict(form.cleaned_data)
            if scope is not None:
                data.pop("name")
            try:
                services.scope_save(actor=request.user, values=data, system=system, scope=scope)
            except ValidationFailed as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "The scope was saved.")
                return redirect(reverse("inventory:catalog") + f"#system-{system.code}")
    else:
        initial = {f: getattr(scope, f) for f in services.SCOPE_FIELDS} if scope else {"is_active": True}
        form = ScopeForm(initial=initial, fixed_name=scope.name if scope else None)
    _catalog_form_allowed(request.user)
    title = f"Edit {scope.code}" if scope else f"New scope in {system.name}"
    return render(request, "inventory/catalog_form.html", {"form": form, "title": title})


# --- Trusted workload issuers -----------------------------------------------------------------


def _issuer_visible(request: AuthenticatedHttpRequest, pk: int) -> TrustedIssuer:
    return get_object_or_404(selectors.issuers_for(request.user), pk=pk)


@login_required
def issuer_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not permissions.sees_issuers(request.user):
        raise Http404
    page = Paginator(selectors.issuers_listed(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(issuer, issuer_keys.status(issuer)) for issuer in page]
    return render(
        request,
        "inventory/issuers/list.html",
        {"page": page, "rows": rows, "can_manage": permissions.can_manage_issuers(request.user)},
    )


@login_required
def issuer_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    issuer = _issuer_visible(request, pk)
    bound = selectors.issuer_bindings(request.user, issuer)
    return render(
        request,
        "inventory/issuers/detail.html",
        {
            "issuer": issuer,
            "keys": issuer_keys.status(issuer),
            "discovery_url": services.discovery_url_of(issuer) if issuer.kind == "oidc" else "",
            "bindings": list(bound[:ISSUER_BINDINGS_SHOWN]),
            "bindings_total": bound.count(),
            "can_manage": permissions.can_manage_issuers(request.user),
        },
    )


@login_required
def issuer_form(request: AuthenticatedHttpRequest, pk: int | None = None) -> HttpResponse:
    if not permissions.sees_issuers(request.user):
        raise Http404
    issuer = _issuer_visible(request, pk) if pk else None
    fixed_kind = issuer.kind if issuer else None
    if request.method == "POST":
        form = IssuerForm(request.POST, fixed_kind=fixed_kind)
        if form.is_valid():
            saved = _issuer_save(request, form, issuer)
            if saved is not None:
                return redirect("inventory:issuer", saved.pk)
    else:
        form = IssuerForm(initial=issuer_initial(issuer), fixed_kind=fixed_kind)
    if not permissions.can_manage_issuers(request.user):
        raise NotAllowed("Only IAM admins keep the trusted workload issuers.")
    title = f"Edit {issuer.name}" if issuer else "New trusted issuer"
    return render(request, "inventory/issuers/form.html", {"form": form, "title": title, "issuer": issuer})


def _issuer_save(
    request: AuthenticatedHttpRequest, form: IssuerForm, issuer: TrustedIssuer | None
) -> TrustedIssuer | None:
    """Call the service with the form's values; its field errors go back on the form (None)."""
    values = {field: form.cleaned_data[field] for field in services.ISSUER_INPUT_FIELDS}
    values["allowed_algorithms"] = list(values["allowed_algorithms"])
    try:
        if issuer is None:
            saved = services.trusted_issuer_create(actor=request.user, values=values)
        else:
            values.pop("kind")
            saved = services.trusted_issuer_update(actor=request.user, issuer=issuer, values=values)
    except ValidationFailed as exc:
        form.add_service_errors(exc)
        return None
    if issuer is None and not saved.jwks:
        issuer_keys.refresh(saved)  # show at once whether its keys can be fetched
    messages.success(request, f"{saved.name} was saved.")
    return saved


@login_required
@require_POST
def issuer_refresh(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    issuer = _issuer_visible(request, pk)
    problem = issuer_keys.refresh_asked(actor=request.user, issuer=issuer)
    if problem:
        messages.error(request, f"The keys could not be refreshed: {problem}")
    else:
        messages.success(request, "The keys were refreshed.")
    return redirect("inventory:issuer", issuer.pk)


@login_required
@require_POST
def issuer_set_active(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    issuer = _issuer_visible(request, pk)
    active = request.POST.get("active") == "true"
    attempt(
        request,
        lambda: services.trusted_issuer_set_active(
            actor=request.user, issuer=issuer, active=active, reason=request.POST.get("reason", "")
        ),
        success=f"{issuer.name} is now {'active' if active else 'inactive'}.",
    )
    return redirect("inventory:issuer", issuer.pk)
