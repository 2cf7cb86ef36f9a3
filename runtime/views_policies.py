"""Policy pages (under ``/runtime/policies/``): every version of the runtime policy set; one
version's text (an editor while it is a draft), its diff against the enforced version, its tests
and replay reports, and the buttons that move it; a replay's report.

Readers are IAM admins, reviewers and auditors (``runtime.permissions.can_read_policies``):
anyone else gets 404, as for anything they may not see. Only IAM admins see forms and buttons;
each button is a small POST view calling one service, which decides who may act. A refused save
or request shows the page again with what was typed and the errors next to it.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.models import OPEN_STATUSES
from governance.exceptions import DomainError, NotAllowed, NotFound
from governance.forms import AccessibleForm
from governance.web import AuthenticatedHttpRequest, attempt
from runtime import selectors
from runtime.models import PolicyReplay, PolicyStatus, PolicyVersion, ReplayStatus
from runtime.permissions import can_manage_policies, can_read_policies
from runtime.policy.source import PolicyError
from runtime.services import policies as services
from runtime.services.replays import replay_start

# --- Forms -----------------------------------------------------------------------------------------


class PolicyDraftForm(AccessibleForm):
    title = forms.CharField(max_length=200, help_text="What this version changes, in one line.")
    cedar_text = forms.CharField(
        label="Cedar policies",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code-input"}),
        help_text='Every policy carries @id("…") and @description("…"). The numbered text is shown below.',
    )
    tests = forms.CharField(
        label="Policy tests (JSON)",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "code-input"}),
        help_text="A JSON list of named requests with the decision each expects "
        '({"name": …, "action": …, "expect": "allow"}).',
    )

    def clean_tests(self) -> list[Any]:
        raw = self.cleaned_data["tests"]
        if not raw.strip():
            return []
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}.") from exc
        except RecursionError as exc:  # lists or objects nested deeper than the decoder goes
            raise ValidationError("The tests nest too deeply: each test is one flat object.") from exc
        if not isinstance(value, list):
            raise ValidationError("The tests are a JSON list, one object per test.")
        return value


class JustificationForm(AccessibleForm):
    justification = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why, for the IAM admin who will decide.",
    )


class ReplayForm(AccessibleForm):
    limit = forms.IntegerField(
        label="Decisions to replay",
        min_value=1,
        max_value=settings.RUNTIME_REPLAY_MAX_LIMIT,
        help_text=f"The newest ones; at most {settings.RUNTIME_REPLAY_MAX_LIMIT:,}.",
    )


# --- Reading ---------------------------------------------------------------------------------------


def _reader(request: AuthenticatedHttpRequest) -> None:
    """Only readers reach these pages: for anyone else, nothing here exists."""
    if not can_read_policies(request.user):
        raise Http404


def _version(request: AuthenticatedHttpRequest, pk: int) -> PolicyVersion:
    _reader(request)
    return get_object_or_404(selectors.policy_version_detail(request.user), pk=pk)


def _writer(request: AuthenticatedHttpRequest) -> None:
    if not can_manage_policies(request.user):
        raise NotAllowed("Only IAM admins may write policy versions.")


# --- The list ----------------------------------------------------------------------------------------


def _rollback_target(versions: list[PolicyVersion], enforced: PolicyVersion | None) -> PolicyVersion | None:
    """The version a rollback would bring back, read off the listed rows (no query): the retired
    one enforced last before the current one. ``policy_rollback_request`` decides for itself."""
    if enforced is None or enforced.enforced_at is None:
        return None
    earlier = [
        version
        for version in versions
        if version.status == PolicyStatus.RETIRED
        and version.enforced_at is not None
        and version.enforced_at < enforced.enforced_at
    ]
    return max(earlier, key=lambda version: (version.enforced_at, version.number), default=None)


def _list_page(
    request: AuthenticatedHttpRequest, rollback_form: JustificationForm | None = None, status: int = 200
) -> HttpResponse:
    _reader(request)
    versions = list(selectors.policy_versions_listed(request.user))
    enforced = next((version for version in versions if version.status == PolicyStatus.ENFORCED), None)
    writer = can_manage_policies(request.user)
    rollback_to = _rollback_target(versions, enforced)
    return render(
        request,
        "runtime/policies/list.html",
        {
            "versions": versions,
            "open_statuses": list(OPEN_STATUSES),
            "enforced": enforced,
            "rollback_to": rollback_to,
            "can_write": writer,
            "rollback_form": rollback_form or JustificationForm(auto_id="rollback_%s"),
            # A refused rollback comes back with its justification, even with nothing to roll back to.
            "show_rollback": writer and (rollback_form is not None or rollback_to is not None),
        },
        status=status,
    )


@login_required
@require_GET
def policy_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _list_page(request)


@login_required
@require_POST
def policy_rollback(request: AuthenticatedHttpRequest) -> HttpResponse:
    _reader(request)
    form = JustificationForm(request.POST, auto_id="rollback_%s")
    if form.is_valid():
        try:
            services.policy_rollback_request(actor=request.user, justification=form.cleaned_data["justification"])
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "The rollback was asked for: a second IAM admin decides it.")
            return redirect("runtime:policies")
    messages.error(request, "The rollback could not be asked for.")
    return _list_page(request, form, status=400)


# --- Writing a draft -----------------------------------------------------------------------------------


def _draft_initial(version: PolicyVersion | None, *, title: str = "") -> dict[str, Any]:
    if version is None:
        return {"title": title}
    return {"title": title, "cedar_text": version.cedar_text, "tests": json.dumps(version.tests, indent=2)}


def _draft_save(
    request: AuthenticatedHttpRequest,
    form: PolicyDraftForm,
    version: PolicyVersion | None,
    based_on: PolicyVersion | None,
) -> tuple[PolicyVersion | None, list[PolicyError]]:
    """Create (``version`` None) or update a draft; on refusal the errors go on the form and the
    policy text's errors come back to be shown beside their lines."""
    if not form.is_valid():
        return None, []
    data = form.cleaned_data
    values = {"title": data["title"], "cedar_text": data["cedar_text"], "tests": data["tests"]}
    try:
        if version is None:
            saved = services.policy_draft_create(actor=request.user, based_on=based_on, **values)
        else:
            saved = services.policy_draft_update(actor=request.user, version=version, **values)
    except services.PolicyTextRejected as rejected:
        count = len(rejected.policy_errors)
        form.add_error(
            "cedar_text", f"The policy text has {count} error{'s' if count != 1 else ''}, shown beside the lines."
        )
        return None, rejected.policy_errors
    except (NotAllowed, NotFound):
        raise
    except DomainError as exc:
        form.add_service_errors(exc)
        return None, []
    return saved, []


@login_required
@require_http_methods(["GET", "POST"])
def policy_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    """A new draft, starting from the enforced version's text and tests."""
    _reader(request)
    _writer(request)
    enforced = selectors.enforced_version()
    errors: list[PolicyError] = []
    if request.method == "POST":
        form = PolicyDraftForm(request.POST)
        saved, errors = _draft_save(request, form, None, enforced)
        if saved is not None:
            messages.success(request, f"Draft v{saved.number} was saved.")
            return redirect("runtime:policy-detail", saved.pk)
    else:
        form = PolicyDraftForm(initial=_draft_initial(enforced))
    return render(
        request,
        "runtime/policies/new.html",
        {"form": form, "based_on": enforced, **_numbered(_typed_text(form), errors)},
        status=400 if request.method == "POST" else 200,
    )


# --- One version -------------------------------------------------------------------------------------


def _typed_text(form: PolicyDraftForm) -> str:
    """The text the form shows: what was typed, or what it started with."""
    value = form.data.get("cedar_text") if form.is_bound else form.initial.get("cedar_text")
    # Browsers send \r\n; the service counts lines in the text with \n line ends.
    return str(value or "").replace("\r\n", "\n")


@dataclass(frozen=True)
class NumberedLine:
    number: int
    text: str
    errors: list[PolicyError]


def _numbered(text: str, errors: list[PolicyError]) -> dict[str, Any]:
    """The text line by line with each error beside its line (errors past the end on the last)."""
    lines = text.split("\n") or [""]
    by_line: dict[int, list[PolicyError]] = {}
    for error in errors:
        by_line.setdefault(min(max(error.line, 1), len(lines)), []).append(error)
    numbered = [NumberedLine(index, line, by_line.get(index, [])) for index, line in enumerate(lines, start=1)]
    return {"numbered": numbered, "policy_errors": errors}


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "header", "hunk", "add", "remove" or "same"
    text: str


def diff_lines(base: PolicyVersion | None, version: PolicyVersion) -> list[DiffLine]:
    """The unified diff of ``version`` against ``base`` (the enforced version), line by line."""
    if base is None or base.pk == version.pk:
        return []
    diff = difflib.unified_diff(
        base.cedar_text.splitlines(),
        version.cedar_text.splitlines(),
        fromfile=f"v{base.number} (enforced)",
        tofile=f"v{version.number}",
        lineterm="",
    )
    lines: list[DiffLine] = []
    for line in diff:
        if line.startswith(("---", "+++")):
            kind = "header"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "add", "-": "remove"}.get(line[:1], "same")
        lines.append(DiffLine(kind, line))
    return lines


def freshness(replay: PolicyReplay, fresh: PolicyReplay | None) -> str:
    """How a replay's report stands: "fresh" for the one that counts for enforcement
    (``fresh_replay``), "stale" for a report on another text, "superseded" for any other
    finished one, "" while it has no report."""
    if replay.status != ReplayStatus.DONE:
        return ""
    if fresh is not None and replay.pk == fresh.pk:
        return "fresh"
    return "stale" if replay.candidate_sha256 != replay.candidate.sha256 else "superseded"


@dataclass(frozen=True)
class ReplayRow:
    replay: PolicyReplay
    freshness: str


def _replays(version: PolicyVersion) -> list[ReplayRow]:
    fresh = services.fresh_replay(version)
    replays: list[PolicyReplay] = getattr(version, "recent_replays", [])
    for replay in replays:
        replay.candidate = version
    return [ReplayRow(replay, freshness(replay, fresh)) for replay in replays]


@dataclass
class DetailForms:
    """The forms of a version's page; a refused one comes back bound with its errors."""

    draft: PolicyDraftForm | None = None
    policy_errors: list[PolicyError] | None = None
    enforce: JustificationForm | None = None
    replay: ReplayForm | None = None


def _detail_page(
    request: AuthenticatedHttpRequest, version: PolicyVersion, given: DetailForms | None = None, status: int = 200
) -> HttpResponse:
    given = given or DetailForms()
    writer = can_manage_policies(request.user)
    editable = writer and version.status == PolicyStatus.DRAFT
    draft = given.draft or (PolicyDraftForm(initial=_draft_initial(version, title=version.title)) if editable else None)
    enforced = selectors.enforced_version()
    blockers = services.promotion_blockers(version) if writer else []
    results = sorted(version.test_results or [], key=lambda result: bool(result.get("passed")))
    text = _typed_text(draft) if draft is not None else version.cedar_text
    context = {
        "version": version,
        "enforced": enforced,
        "can_write": writer,
        "draft_form": draft,
        **_numbered(text, given.policy_errors or []),
        "diff": diff_lines(enforced, version),
        "test_results": results,
        "tests_failed": sum(1 for result in results if not result.get("passed")),
        "replays": _replays(version),
        "replay_form": given.replay or ReplayForm(initial={"limit": settings.RUNTIME_REPLAY_DEFAULT_LIMIT}),
        "enforce_form": given.enforce or JustificationForm(auto_id="enforce_%s"),
        "blockers": blockers,
        "can_shadow": writer and version.status == PolicyStatus.DRAFT,
        "can_retire": writer and version.status in (PolicyStatus.DRAFT, PolicyStatus.SHADOW),
        # A refused request comes back with the justification typed, whatever blocks it now.
        "can_ask_enforcement": writer and (not blockers or given.enforce is not None),
        "change_request_url": reverse("approvals:request-detail", args=[version.change_request_id])
        if version.change_request_id
        else "",
    }
    return render(request, "runtime/policies/detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def policy_detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The version's page; a POST saves the draft's edits."""
    version = _version(request, pk)
    if request.method == "GET":
        return _detail_page(request, version)
    _writer(request)
    form = PolicyDraftForm(request.POST)
    saved, errors = _draft_save(request, form, version, None)
    if saved is not None:
        messages.success(request, f"Draft v{saved.number} was saved.")
        return redirect("runtime:policy-detail", saved.pk)
    return _detail_page(request, version, DetailForms(draft=form, policy_errors=errors), status=400)


# --- The buttons -------------------------------------------------------------------------------------


@login_required
@require_POST
def policy_tests_run(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    results = attempt(
        request, lambda: services.policy_tests_run(actor=request.user, version=version), success="The tests were run."
    )
    if results is not None and any(not result.get("passed") for result in results):
        messages.warning(request, "Some tests fail: see them at the top of the list.")
    return redirect(reverse("runtime:policy-detail", args=[version.pk]) + "#h-tests")


@login_required
@require_POST
def policy_shadow(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    attempt(
        request,
        lambda: services.policy_shadow(actor=request.user, version=version),
        success=f"v{version.number} is now evaluated beside the enforced version and logged, never applied.",
    )
    return redirect("runtime:policy-detail", version.pk)


@login_required
@require_POST
def policy_retire(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    attempt(
        request,
        lambda: services.policy_retire(actor=request.user, version=version),
        success=f"v{version.number} was retired.",
    )
    return redirect("runtime:policy-detail", version.pk)


@login_required
@require_POST
def policy_enforcement_request(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    form = JustificationForm(request.POST, auto_id="enforce_%s")
    if form.is_valid():
        try:
            services.policy_enforcement_request(
                actor=request.user, version=version, justification=form.cleaned_data["justification"]
            )
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Enforcing v{version.number} was asked for: a second IAM admin decides it.")
            return redirect("runtime:policy-detail", version.pk)
    messages.error(request, "Enforcement could not be asked for.")
    return _detail_page(request, version, DetailForms(enforce=form), status=400)


@login_required
@require_POST
def policy_replay_start(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    version = _version(request, pk)
    form = ReplayForm(request.POST)
    if form.is_valid():
        try:
            replay = replay_start(actor=request.user, version=version, limit=form.cleaned_data["limit"])
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Replaying the last {replay.limit:,} decisions with v{version.number}.")
            return redirect("runtime:policy-replay", version.pk, replay.pk)
    return _detail_page(request, version, DetailForms(replay=form), status=400)


# --- A replay's report ---------------------------------------------------------------------------------


def _breakdown(table: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """A breakdown table's rows, most changes first."""
    rows = [{"key": key, **values} for key, values in table.items()]
    return sorted(rows, key=lambda row: (-(row["allow_to_deny"] + row["deny_to_allow"]), row["key"]))


@login_required
@require_GET
def policy_replay(request: AuthenticatedHttpRequest, pk: int, rid: int) -> HttpResponse:
    version = _version(request, pk)
    replay = get_object_or_404(PolicyReplay.objects.filter(candidate=version).select_related("requested_by"), pk=rid)
    replay.candidate = version
    breakdown = replay.breakdown or {}
    return render(
        request,
        "runtime/policies/replay.html",
        {
            "version": version,
            "replay": replay,
            "freshness": freshness(replay, services.fresh_replay(version)),
            "in_progress": replay.status in (ReplayStatus.QUEUED, ReplayStatus.RUNNING),
            "by_policy": _breakdown(breakdown.get("policy", {})),
            "by_integration": _breakdown(breakdown.get("integration", {})),
            "by_owner": _breakdown(breakdown.get("owner", {})),
        },
    )
