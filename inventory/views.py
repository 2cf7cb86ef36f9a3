"""Inventory pages. Views parse input, fetch through the selectors (unseen -> 404) and call a
service; domain errors from a form's service come back next to the field, input kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from governance.csv_export import CsvRowWriter
from governance.exceptions import DomainError, NotAllowed, ValidationFailed
from governance.roles import is_auditor, is_iam_admin
from governance.selectors import people_suggested
from inventory import permissions, risk, selectors, services
from inventory.api.serializers import rotation_status
from inventory.filters import ORDERING_FIELDS, IntegrationFilter
from inventory.forms import (
    CredentialFormSet,
    IntegrationForm,
    ReasonForm,
    ResourceSystemForm,
    ScopeForm,
    TransferForm,
    apply_service_errors,
    forget_refused_secrets,
    people_options,
)
from inventory.models import Integration, IntegrationStatus, ResourceSystem, Scope, TransferStatus

PAGE_SIZE = 25


def _ordering(request: HttpRequest) -> str:
    value = request.GET.get("ordering", "name")
    return value if value.lstrip("-") in ORDERING_FIELDS else "name"


@login_required
def integration_list(request: HttpRequest) -> HttpResponse:
    base = selectors.integrations_for(request.user)
    filt = IntegrationFilter(request.GET, queryset=base)
    ordering = _ordering(request)
    qs = filt.qs.order_by(ordering, "id")
    listed = selectors.integrations_listed(request.user)
    if request.GET.get("format") == "csv":
        return _csv(selectors.active_grants_annotated(listed.filter(pk__in=qs.values("pk")).order_by(ordering, "id")))
    page = Paginator(qs.values_list("pk", flat=True), PAGE_SIZE).get_page(request.GET.get("page"))
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


CSV_COLUMNS = [
    "id",
    "name",
    "kind",
    "status",
    "risk_tier",
    "risk_score",
    "vendor",
    "environment",
    "business_owner",
    "technical_owner",
    "backup_owner",
    "data_classifications",
    "requested_scopes",
    "active_grants",
    "orphaned",
    "ticket_ref",
    "created_at",
    "updated_at",
]


def _csv(qs: Any) -> StreamingHttpResponse:
    """Streamed in chunks: the export of 100,000 rows never sits in memory."""
    writer = CsvRowWriter()  # neutralises formula cells (CSV injection)

    def rows() -> Iterator[str]:
        yield writer.writerow(CSV_COLUMNS)
        for i in qs.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    i.pk,
                    i.name,
                    i.kind,
                    i.status,
                    i.risk_tier,
                    i.risk_score,
                    i.vendor,
                    i.environment,
                    i.business_owner.username,
                    i.technical_owner.username if i.technical_owner else "",
                    i.backup_owner.username if i.backup_owner else "",
                    " ".join(i.data_classifications or []),
                    " ".join(s.code for s in i.requested_scopes.all()),
                    i.active_grants,
                    i.orphaned,
                    i.ticket_ref,
                    i.created_at.isoformat(),
                    i.updated_at.isoformat(),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="integrations.csv"'
    return response


def _visible(request: HttpRequest, pk: int) -> Integration:
    return get_object_or_404(selectors.integration_detail(request.user), pk=pk)


def _form_page(request: HttpRequest, integration: Integration | None) -> HttpResponse:
    user = request.user
    visible = selectors.integrations_for(user)
    if integration is not None and not permissions.can_edit(user, integration):
        raise NotAllowed("Only the integration's owners and IAM admins may change it.")
    if integration is None and not permissions.can_register(user):
        raise NotAllowed("You may not register integrations.")
    if request.method == "POST":
        form = IntegrationForm(request.POST, user=user, visible=visible, instance=integration)
        formset = CredentialFormSet(request.POST, prefix="cred")
        submit = request.POST.get("action") == "submit"
        if form.is_valid() and formset.is_valid():
            values = form.values()
            values["credentials"] = formset.values()
            try:
                if integration is None:
                    saved = services.integration_register(actor=user, values=values, submit=submit)
                else:
                    saved = services.integration_update(actor=user, integration=integration, values=values)
                    if submit and saved.status in (IntegrationStatus.DRAFT, IntegrationStatus.REJECTED):
                        saved = services.integration_submit(actor=user, integration=saved)
            except ValidationFailed as exc:
                apply_service_errors(exc, form, formset)
            except DomainError as exc:
                form.add_error(None, exc.detail)
                form.mark_errors()
            else:
                messages.success(request, f"{saved.name} was {'submitted for approval' if submit else 'saved'}.")
                _tell_waiting_owners(request, saved)
                return redirect("inventory:detail", saved.pk)
        # The page comes back with its errors: without any refused secret-looking value.
        forget_refused_secrets(form)
        for credential_form in formset.forms:
            forget_refused_secrets(credential_form)
    else:
        initial: dict[str, Any] = {}
        cred_initial: list[dict[str, Any]] = []
        if integration is not None:
            initial = {
                f: getattr(integration, f)
                for f in (
                    "name",
                    "kind",
                    "purpose",
                    "vendor",
                    "environment",
                    "data_classifications",
                    "acts_for_users",
                    "autonomy",
                    "workload_identity",
                    "ticket_ref",
                    "business_owner",
                    "technical_owner",
                    "backup_owner",
                )
            }
            initial["tags"] = ", ".join(integration.tags or [])
            initial["requested_scopes"] = list(integration.requested_scopes.all())
            initial["invokes"] = list(integration.invokes.all())
            cred_initial = [
                {
                    "type": c.type,
                    "identifier": c.identifier,
                    "created_at": c.created_at.date() if c.created_at else None,
                    "expires_at": c.expires_at.date() if c.expires_at else None,
                    "last_rotated_at": c.last_rotated_at.date() if c.last_rotated_at else None,
                }
                for c in integration.credentials.all()
            ]
        form = IntegrationForm(initial=initial, user=user, visible=visible, instance=integration)
        formset = CredentialFormSet(initial=cred_initial, prefix="cred")
    cred_errors = any(f.errors for f in formset.forms) or bool(formset.non_form_errors())
    return render(
        request,
        "inventory/form.html",
        {
            "form": form,
            "formset": formset,
            "integration": integration,
            "has_errors": bool(form.errors) or cred_errors,
            "can_submit": integration is None
            or integration.status in (IntegrationStatus.DRAFT, IntegrationStatus.REJECTED),
        },
        status=400 if request.method == "POST" else 200,
    )


def _tell_waiting_owners(request: HttpRequest, integration: Integration) -> None:
    """Say which owner roles wait for the named person's consent (``integration_register`` /
    ``integration_update`` proposed them instead of assigning them)."""
    for t in integration.transfers.filter(status=TransferStatus.PROPOSED).select_related("to_user").order_by("pk"):
        messages.info(
            request,
            f"{t.to_user.label} was asked to become the {t.get_role_display().lower()}; "
            "the role is theirs once they accept.",
        )


@login_required
@require_GET
def people_search(request: HttpRequest) -> JsonResponse:
    """Suggestions for the person fields (``inventory/people.js``): at most 10 active people
    whose username or name contains ``q`` (2 characters or more), or, without ``q``, the
    caller's colleagues. Only usernames and display names; never the whole directory."""
    found = people_suggested(request.user, query=request.GET.get("q", "")[:100], limit=10)
    return JsonResponse({"results": [{"username": p.username, "label": p.label} for p in found]})


@login_required
def integration_create(request: HttpRequest) -> HttpResponse:
    return _form_page(request, None)


@login_required
def integration_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _form_page(request, _visible(request, pk))


@login_required
def integration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    integ = _visible(request, pk)
    user = request.user
    downstream = risk.chain_reach([i.pk for i in integ.invokes.all()], exclude=integ.pk)
    upstream_ids = risk.upstream_ids(integ.pk)
    upstream = list(
        selectors.integrations_for(user).filter(pk__in=upstream_ids).only("id", "name", "status", "risk_tier")
    )
    visible_down = set(
        selectors.integrations_for(user)
        .filter(pk__in=[i.pk for i in downstream.integrations])
        .values_list("pk", flat=True)
    )
    credentials = [{"c": c, "rotation": rotation_status(c)} for c in integ.credentials.all()]
    can_edit = permissions.can_edit(user, integ)
    return render(
        request,
        "inventory/detail.html",
        {
            "i": integ,
            "grants": list(selectors.grants_of(integ)),
            "credentials": credentials,
            "downstream": downstream,
            "visible_down": visible_down,
            "upstream": upstream,
            "upstream_hidden": len(upstream_ids) - len(upstream),
            "timeline": selectors.integration_timeline(integ),
            "transfers": list(integ.transfers.select_related("to_user", "from_user").order_by("-created_at")[:10]),
            "can_edit": can_edit and integ.status != IntegrationStatus.RETIRED,
            "can_submit": can_edit and integ.status in (IntegrationStatus.DRAFT, IntegrationStatus.REJECTED),
            "can_suspend": can_edit and integ.status in (IntegrationStatus.ACTIVE, IntegrationStatus.PENDING),
            "can_reactivate": can_edit and integ.status == IntegrationStatus.SUSPENDED,
            "can_retire": can_edit and integ.status != IntegrationStatus.RETIRED,
            "reason_form": ReasonForm(),
            "transfer_form": TransferForm(),
            "people_options": people_options(user, integ.business_owner, integ.technical_owner, integ.backup_owner)
            if can_edit
            else [],
        },
    )


def _action(request: HttpRequest, pk: int, run: Any, success: str, needs_reason: bool = True) -> HttpResponse:
    integ = _visible(request, pk)
    reason = request.POST.get("reason", "").strip()
    try:
        run(integ, reason)
    except (ValidationFailed, NotAllowed, DomainError) as exc:
        if isinstance(exc, NotAllowed):
            raise
        messages.error(request, exc.detail)
    else:
        messages.success(request, success.format(name=integ.name))
    return redirect("inventory:detail", integ.pk)


@login_required
@require_POST
def integration_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda i, r: services.integration_submit(actor=request.user, integration=i, reason=r),
        "{name} was submitted for approval.",
    )


@login_required
@require_POST
def integration_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda i, r: services.integration_suspend(actor=request.user, integration=i, reason=r),
        "{name} was suspended; every active grant was revoked.",
    )


@login_required
@require_POST
def integration_reactivate(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda i, r: services.integration_reactivate(actor=request.user, integration=i, reason=r),
        "Reactivation of {name} was requested; it is pending approval.",
    )


@login_required
@require_POST
def integration_retire(request: HttpRequest, pk: int) -> HttpResponse:
    return _action(
        request,
        pk,
        lambda i, r: services.integration_retire(actor=request.user, integration=i, reason=r),
        "{name} was retired.",
    )


@login_required
@require_POST
def integration_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    integ = _visible(request, pk)
    form = TransferForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()))
        return redirect("inventory:detail", integ.pk)
    try:
        services.ownership_transfer_propose(
            actor=request.user,
            integration=integ,
            to_user=form.cleaned_data["to_user"],
            role=form.cleaned_data["role"],
            reason=form.cleaned_data["reason"],
        )
    except NotAllowed:
        raise
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request, f"The transfer was proposed to {form.cleaned_data['to_user'].label}; it waits for their answer."
        )
    return redirect("inventory:detail", integ.pk)


@login_required
def transfer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    transfer = get_object_or_404(
        selectors.transfers_for(request.user).select_related("integration", "to_user", "from_user", "proposed_by"),
        pk=pk,
    )
    if request.method == "POST":
        decision = request.POST.get("decision")
        try:
            if decision == "accept":
                services.ownership_transfer_accept(
                    actor=request.user, transfer=transfer, reason=request.POST.get("reason", "")
                )
                messages.success(
                    request, f"You now are the {transfer.get_role_display().lower()} of {transfer.integration.name}."
                )
            elif decision == "decline":
                services.ownership_transfer_decline(
                    actor=request.user, transfer=transfer, reason=request.POST.get("reason", "")
                )
                messages.success(request, "You declined the transfer.")
        except NotAllowed:
            raise
        except DomainError as exc:
            messages.error(request, exc.detail)
        return redirect("inventory:transfer", transfer.pk)
    return render(request, "inventory/transfer.html", {"t": transfer, "mine": transfer.to_user_id == request.user.pk})


@login_required
def orphans(request: HttpRequest) -> HttpResponse:
    # The IAM work list: admins act on it, auditors read it.
    if not (is_iam_admin(request.user) or is_auditor(request.user)):
        raise Http404
    page = Paginator(selectors.orphaned_for(request.user).order_by("name", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "inventory/orphans.html", {"page": page, "query": ""})


# --- The scope catalog ------------------------------------------------------------------------


@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    systems = list(selectors.systems_for(request.user))
    return render(
        request,
        "inventory/catalog.html",
        {"systems": systems, "can_manage": permissions.can_manage_catalog(request.user)},
    )


def _catalog_guard(request: HttpRequest) -> None:
    if not permissions.can_manage_catalog(request.user):
        raise NotAllowed("Only IAM admins keep the scope catalog.")


@login_required
def system_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    _catalog_guard(request)
    system = get_object_or_404(ResourceSystem, pk=pk) if pk else None
    if request.method == "POST":
        form = ResourceSystemForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.resource_system_save(
                    actor=request.user,
                    system=system,
                    owners=data["owners"],
                    values={k: data[k] for k in ("code", "name", "description")},
                )
            except ValidationFailed as exc:
                for field, msgs in exc.errors.items():
                    form.add_error(field if field in form.fields else None, msgs[0])
                form.mark_errors()
            else:
                messages.success(request, f"{data['name']} was saved.")
                return redirect("inventory:catalog")
    else:
        initial = {}
        if system:
            initial = {
                "code": system.code,
                "name": system.name,
                "description": system.description,
                "owners": list(system.owners.all()),
            }
        form = ResourceSystemForm(initial=initial)
    return render(
        request,
        "inventory/catalog_form.html",
        {"form": form, "title": f"Edit {system.name}" if system else "New resource system"},
    )


@login_required
def scope_form(request: HttpRequest, system_pk: int | None = None, pk: int | None = None) -> HttpResponse:
    _catalog_guard(request)
    scope = get_object_or_404(Scope.objects.select_related("system"), pk=pk) if pk else None
    system = scope.system if scope else get_object_or_404(ResourceSystem, pk=system_pk)
    if request.method == "POST":
        form = ScopeForm(request.POST)
        if scope is not None:
            form.fields["name"].disabled = True
            form.fields["name"].initial = scope.name
        if form.is_valid():
            data = dict(form.cleaned_data)
            if scope is not None:
                data.pop("name")
            try:
                services.scope_save(actor=request.user, values=data, system=system, scope=scope)
            except ValidationFailed as exc:
                for field, msgs in exc.errors.items():
                    form.add_error(field if field in form.fields else None, msgs[0])
                form.mark_errors()
            else:
                messages.success(request, "The scope was saved.")
                return redirect(reverse("inventory:catalog") + f"#system-{system.code}")
    else:
        initial = {"is_active": True}
        if scope:
            initial = {f: getattr(scope, f) for f in ("name", "description", "sensitivity", "access", "is_active")}
        form = ScopeForm(initial=initial)
        if scope is not None:
            form.fields["name"].disabled = True
    title = f"Edit {scope.code}" if scope else f"New scope in {system.name}"
    return render(request, "inventory/catalog_form.html", {"form": form, "title": title})
