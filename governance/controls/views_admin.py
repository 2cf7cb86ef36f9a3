"""The catalog's admin pages, for IAM admins only (anyone else, auditors included, gets a 404):
add the organisation's own framework and its items, map a control to a framework item (built-in or
the organisation's own) or remove such a mapping, and set or clear the threshold of a control's
evidence figure. Views parse input and call the services, which decide again who may act; a
refused form comes back with everything typed and the error beside its field. After a change the
browser goes to the framework's or the control's page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST

from governance.controls import catalog, overview, registry, services
from governance.controls.forms import (
    FrameworkForm,
    FrameworkItemForm,
    MappingForm,
    MappingRemoveForm,
    ThresholdClearForm,
    ThresholdForm,
    item_value,
)
from governance.controls.models import ControlMapping, EvidenceThreshold, Framework
from governance.exceptions import DomainError, NotAllowed, NotFound, ValidationFailed
from governance.roles import is_read_only
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest

T = TypeVar("T")


def _require_manager(request: AuthenticatedHttpRequest) -> None:
    """The admin pages are IAM admins'. An auditor, who reads everything, sees that they exist and
    may not use them (403); to anyone else they are not there (404)."""
    if catalog.may_manage(request.user):
        return
    if is_read_only(request.user):
        raise PermissionDenied
    raise Http404


def page_url(name: str, *args: str, anchor: str = "", fallback: str = "") -> str:
    """The address of a catalog page, or ``fallback`` when that page is not installed."""
    try:
        return reverse(name, args=list(args)) + (f"#{anchor}" if anchor else "")
    except NoReverseMatch:
        return fallback


def _attempt(form: Any, call: Callable[[], T]) -> tuple[bool, T | None]:
    """Run a service call: (True, what it returned), or (False, None) with the refusal on
    ``form`` beside its field. Not-allowed and not-found propagate: the error pages answer them."""
    try:
        return True, call()
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        form.add_service_errors(exc)
        return False, None


@login_required
@require_http_methods(["GET", "POST"])
def framework_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The form that adds an organisation's own framework, and the ones it has."""
    _require_manager(request)
    # Bound on every POST (an empty one too: ``request.POST or None`` would leave it unbound and
    # answer 400 with no error shown).
    form = FrameworkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        done, framework = _attempt(form, lambda: services.framework_create(actor=request.user, **form.cleaned_data))
        if done and framework is not None:
            messages.success(request, f"{framework.name} was added. Add its items next.")
            items_page = reverse("framework-item-add", args=[framework.slug])
            return redirect(page_url("framework-detail", framework.slug, fallback=items_page))
    own = Framework.objects.annotate(item_count=Count("items")).order_by("name", "id")
    return render(
        request,
        "controls/admin/framework_create.html",
        {"form": form, "own": own},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def framework_item_add(request: AuthenticatedHttpRequest, slug: str) -> HttpResponse:
    """The form that adds an item to one of the organisation's own frameworks (a built-in one
    changes only in its data file: its address here is not found)."""
    _require_manager(request)
    framework = get_object_or_404(Framework, slug=slug)
    form = FrameworkItemForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        done, item = _attempt(
            form, lambda: services.framework_item_add(actor=request.user, framework=framework, **form.cleaned_data)
        )
        if done and item is not None:
            messages.success(request, f"{item.code} was added to {framework.name}.")
            here = reverse("framework-item-add", args=[framework.slug])
            return redirect(
                page_url("framework-detail", framework.slug, anchor=catalog.item_anchor(item.code), fallback=here)
            )
    return render(
        request,
        "controls/admin/framework_item_add.html",
        {"form": form, "framework": framework, "items": framework.items.order_by("order", "code")},
        status=400 if request.method == "POST" else 200,
    )


def _mapping_initial(request: AuthenticatedHttpRequest) -> dict[str, str]:
    """The mapping form prefilled from a link (``?control=<id>&item=<slug>:<code>``)."""
    initial = {"control_id": request.GET.get("control", "")}
    if request.GET.get("item"):
        initial["item"] = request.GET["item"]
    elif request.GET.get("framework") and request.GET.get("code"):
        initial["item"] = item_value(request.GET["framework"], request.GET["code"])
    return initial


# The service names the framework and the item apart; the form chooses both in one field.
_MAPPING_FIELDS = {"framework_slug": "item", "item_code": "item"}


def _mapping_add(
    request: AuthenticatedHttpRequest, *, control_id: str, slug: str, code: str, note: str
) -> ControlMapping:
    """``services.mapping_add``, its refusals naming the form's fields (``item`` for the
    service's ``framework_slug`` and ``item_code``) so each shows beside the field at fault."""
    try:
        return services.mapping_add(
            actor=request.user, control_id=control_id, framework_slug=slug, item_code=code, note=note
        )
    except ValidationFailed as exc:
        errors: dict[str, list[str]] = {}
        for name, found in exc.errors.items():
            errors.setdefault(_MAPPING_FIELDS.get(name, name), []).extend(found)
        exc.errors = errors
        raise


@login_required
@require_http_methods(["GET", "POST"])
def mapping_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The form that maps a control to a framework item, and the organisation's own mappings
    (each with its remove button). The data file's mappings are not listed: they are not rows."""
    _require_manager(request)
    infos = catalog.frameworks()
    if request.method == "POST":
        form = MappingForm(request.POST, infos=infos)
    else:
        form = MappingForm(initial=_mapping_initial(request), infos=infos)
    if request.method == "POST" and form.is_valid():
        slug, code = form.item_parts()
        data = form.cleaned_data
        done, mapping = _attempt(
            form,
            lambda: _mapping_add(request, control_id=data["control_id"], slug=slug, code=code, note=data["note"]),
        )
        if done and mapping is not None:
            messages.success(request, f"{mapping.control_id} now answers {code}.")
            default = page_url("control-detail", mapping.control_id, fallback=reverse("mapping-add"))
            return redirect(safe_next(request, default))
    names = {info.slug: info.name for info in infos}
    own = [
        {"mapping": row, "framework_name": names.get(row.framework_slug, row.framework_slug)}
        for row in ControlMapping.objects.select_related("created_by").order_by(
            "control_id", "framework_slug", "item_code"
        )
    ]
    return render(
        request,
        "controls/admin/mapping_add.html",
        {"form": form, "own": own, "next": safe_next(request, "")},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def mapping_remove(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Remove one of the organisation's own mappings; back to its control's page."""
    _require_manager(request)
    mapping = get_object_or_404(ControlMapping, pk=pk)
    form = MappingRemoveForm(request.POST)
    default = page_url("control-detail", mapping.control_id, fallback=reverse("mapping-add"))
    if not form.is_valid():
        # A reason that cannot be kept refuses the removal: the trail never loses the reason given.
        problems = "; ".join(str(message) for found in form.errors.values() for message in found)
        messages.error(request, f"The mapping was kept: {problems}")
        return redirect(safe_next(request, default))
    try:
        services.mapping_remove(actor=request.user, mapping=mapping, reason=form.cleaned_data["reason"])
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{mapping.control_id} no longer answers {mapping.item_code}.")
    return redirect(safe_next(request, default))


def _prefix(figure_key: str) -> str:
    return "f-" + slugify(figure_key.replace(".", "-"))


def _figure_rows(
    control: registry.Control, bound: dict[str, Any], own: dict[str, EvidenceThreshold]
) -> list[dict[str, Any]]:
    """Each figure of ``control`` (measured once) with its default threshold, the organisation's
    (if set), its status under the threshold in force, and its forms (``bound`` holds the one
    the request posted, keeping what was typed)."""
    rows = []
    for figure in control.evidence():
        row = own.get(figure.key)
        in_force = registry.Threshold(met=row.met, partly=row.partly) if row is not None else figure.threshold
        initial = {"met": row.met, "partly": row.partly, "reason": row.reason} if row is not None else {}
        default = {"met": figure.threshold.met, "partly": figure.threshold.partly}
        prefix = _prefix(figure.key)
        status = registry.figure_status(figure.value, in_force, figure.better)
        rows.append(
            {
                "figure": figure,
                "value_text": "—" if figure.value is None else overview.with_unit(figure.value, figure.unit),
                "default_text": overview.threshold_text(figure.threshold, figure.unit, figure.better),
                "own_text": overview.threshold_text(in_force, figure.unit, figure.better) if row is not None else "",
                "anchor": prefix,
                "own": row,
                "in_force": in_force,
                "status": status,
                "status_label": registry.Status(status).label,
                "set_form": bound.get(f"set:{figure.key}")
                or ThresholdForm(initial=initial or default, prefix=prefix, figure=figure),
                "clear_form": bound.get(f"clear:{figure.key}") or ThresholdClearForm(prefix=f"{prefix}-clear"),
            }
        )
    return rows


def _threshold_post(
    request: AuthenticatedHttpRequest, control: registry.Control
) -> tuple[HttpResponse | None, dict[str, Any]]:
    """Apply the posted set or clear of one figure's threshold: a redirect when it was done,
    else the bound form with its errors (keyed ``set:<key>`` or ``clear:<key>``)."""
    figure_key = request.POST.get("figure", "")
    figure = next((fig for fig in control.evidence() if fig.key == figure_key), None)
    if figure is None:
        raise Http404
    prefix = _prefix(figure.key)
    done = False
    if request.POST.get("action") == "clear":
        form: Any = ThresholdClearForm(request.POST, prefix=f"{prefix}-clear")
        bound_key = f"clear:{figure.key}"
        if form.is_valid():
            reason = form.cleaned_data["reason"]
            done, _nothing = _attempt(
                form, lambda: services.threshold_clear(actor=request.user, figure_key=figure.key, reason=reason)
            )
    else:
        form = ThresholdForm(request.POST, prefix=prefix, figure=figure)
        bound_key = f"set:{figure.key}"
        if form.is_valid():
            data = form.cleaned_data
            done, _row = _attempt(
                form,
                lambda: services.threshold_set(
                    actor=request.user,
                    figure_key=figure.key,
                    met=data["met"],
                    partly=data["partly"],
                    reason=data["reason"],
                ),
            )
    if not done:
        return None, {bound_key: form}
    what = "cleared: its default applies again" if bound_key.startswith("clear") else "set"
    messages.success(request, f"The threshold of “{figure.label}” was {what}.")
    here = reverse("threshold-edit", args=[control.id])
    return redirect(page_url("control-detail", control.id, fallback=here)), {}


@login_required
@require_http_methods(["GET", "POST"])
def threshold_edit(request: AuthenticatedHttpRequest, control_id: str) -> HttpResponse:
    """Each figure of one control with its default threshold and the organisation's, and the
    forms that set or clear the organisation's."""
    _require_manager(request)
    control = registry.control(control_id)
    if control is None:
        raise Http404
    bound: dict[str, Any] = {}
    if request.method == "POST":
        response, bound = _threshold_post(request, control)
        if response is not None:
            return response
    own = {
        row.figure_key: row
        for row in EvidenceThreshold.objects.filter(figure_key__startswith=f"{control.id}.").select_related(
            "updated_by"
        )
    }
    return render(
        request,
        "controls/admin/thresholds.html",
        {
            "control": control,
            "rows": _figure_rows(control, bound, own),
            "control_url": page_url("control-detail", control.id),
            "has_errors": bool(bound),
        },
        status=400 if bound else 200,
    )
