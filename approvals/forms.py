"""Forms of the approvals pages: a reviewer's decision and the IAM admins' expiry settings (a
workflow step's form is in ``approvals.workflow_forms``). They parse input only; the services
validate the rules and save."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict

from approvals.models import MAX_EXPIRY_DAYS, AccessRequest, DecisionKind, RequestStep
from governance.fields import IdMultipleChoiceField
from governance.forms import AccessibleForm
from governance.validators import validate_single_line
from inventory.choices import RISK_TIER_ORDER, Autonomy, DataClassification, RiskTier
from inventory.credentials import secret_problem

if TYPE_CHECKING:
    from inventory.models import Scope

# Tiers whose requests are decided on purpose: no decision is pre-selected (a reviewer who
# submits without choosing is asked to choose), and a critical approval is confirmed.
DELIBERATE_TIERS = frozenset({RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL})
ACTION_LABELS = {
    DecisionKind.APPROVE: "Approve",
    DecisionKind.REJECT: "Reject",
    DecisionKind.REQUEST_CHANGES: "Request changes",
}
NO_ACTION_LABEL = "Submit decision"


def decision_tier(req: AccessRequest) -> str:
    """The tier a decision is taken at: the higher of the request's (when it was opened) and its
    integration's now (a change request has only its own)."""
    tiers = [req.risk_tier] + ([req.integration.risk_tier] if req.integration is not None else [])
    return max(tiers, key=lambda tier: RISK_TIER_ORDER.get(tier, 0))


def approve_label(count: int | None) -> str:
    """The approve button's words: with the number of ticked scopes when scopes are offered."""
    if count is None:
        return ACTION_LABELS[DecisionKind.APPROVE]
    return f"Approve {count} scope{'' if count == 1 else 's'}"


class DecisionForm(AccessibleForm):
    """One reviewer's decision on one step. ``decisions`` are the choices offered; ``scopes`` the
    scopes still in play, offered as ticks (None: not offered — the queue — and an approval
    takes every scope still requested). Bound to a refused POST it renders every choice made
    again. The form checks what a page must ask for (a choice, a comment to reject, a confirmed
    critical approval, a ticked scope); the decision service checks the rules again."""

    decision = forms.ChoiceField(widget=forms.RadioSelect, error_messages={"required": "Choose a decision."})
    approved_scopes = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Scopes to approve",
        help_text="Untick a scope to approve the others only.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Earlier expiry (optional)",
        error_messages={"invalid": "Enter a date and time like 2026-12-31 17:00."},
    )
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        help_text="Required to reject or to request changes.",
    )
    confirm = forms.BooleanField(
        required=False,
        label="I have read the risk factors and the scopes, and approve this critical request.",
        help_text="Required to approve a critical request.",
    )

    def __init__(
        self,
        data: Any = None,
        *,
        req: AccessRequest,
        step: RequestStep,
        decisions: list[tuple[str, str]],
        scopes: list[Scope] | None = None,
    ) -> None:
        # Every form of a queue page has its own ids.
        super().__init__(data, auto_id=f"d{step.pk}-%s")
        self.req, self.step = req, step
        self.tier = decision_tier(req)
        self.fields["decision"].choices = decisions  # type: ignore[attr-defined]
        self.scopes = None if req.is_change else scopes
        if self.scopes is None:
            del self.fields["approved_scopes"], self.fields["expires_at"]
        else:
            self.fields["approved_scopes"].choices = [(scope.code, scope.code) for scope in self.scopes]  # type: ignore[attr-defined]
        if self.tier != RiskTier.CRITICAL:
            del self.fields["confirm"]
        if self.tier not in DELIBERATE_TIERS and DecisionKind.APPROVE in dict(decisions):
            self.initial["decision"] = DecisionKind.APPROVE

    @property
    def offers_scopes(self) -> bool:
        return "approved_scopes" in self.fields

    @property
    def needs_confirmation(self) -> bool:
        return "confirm" in self.fields

    def chosen(self) -> str:
        """The decision to show selected: the one posted, else the pre-selected one (if any)."""
        return str(self["decision"].value() or "")

    def ticked(self) -> set[str]:
        """The scope codes to show ticked: those posted (all of them on a first render, or when
        the post came from a form that offered no ticks)."""
        if not self.offers_scopes:
            return set()
        codes = {scope.code for scope in self.scopes or []}
        if not self.is_bound or "scopes_offered" not in self.data:
            return codes
        posted = self["approved_scopes"].value() or []
        return {str(code) for code in posted} & codes

    def scope_rows(self) -> list[dict[str, Any]]:
        ticked = self.ticked()
        return [{"scope": scope, "ticked": scope.code in ticked} for scope in self.scopes or []]

    def submit_label(self) -> str:
        """The submit button names the action chosen (the script follows later changes)."""
        chosen = self.chosen()
        if chosen == DecisionKind.APPROVE:
            return approve_label(len(self.ticked()) if self.offers_scopes else None)
        return ACTION_LABELS.get(chosen, NO_ACTION_LABEL)  # type: ignore[call-overload]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        decision = cleaned.get("decision")
        if decision in (DecisionKind.REJECT, DecisionKind.REQUEST_CHANGES) and not cleaned.get("comment", "").strip():
            what = "reject" if decision == DecisionKind.REJECT else "request changes"
            self.add_error("comment", f"A comment is required to {what}: say why.")
        if decision == DecisionKind.APPROVE:
            if self.needs_confirmation and not cleaned.get("confirm"):
                self.add_error("confirm", "Confirm that you approve this critical request.")
            if self.offers_scopes and not self.ticked():
                self.add_error("approved_scopes", "Tick at least one scope to approve, or reject the request.")
        return cleaned

    def approved_codes(self) -> list[str] | None:
        """The scope codes to approve, or None for every scope still requested."""
        if not self.offers_scopes or "scopes_offered" not in self.data:
            return None
        return sorted(self.ticked())

    def first_error(self) -> str:
        """One message for a page that shows one line (the queue's script)."""
        for messages in self.errors.values():
            return str(messages[0])
        return "The decision was not recorded."


# What a resubmission may change of the integration: what reviewers judge it by.
RESUBMIT_FIELDS = ("purpose", "vendor", "data_classifications", "acts_for_users", "autonomy", "workload_identity")


class ResubmitForm(AccessibleForm):
    """After "changes requested": the integration's facts a reviewer judges it by (for someone
    who may change them: ``editable``), the scopes the request asks for, and a note to the
    reviewers. It parses input only; the inventory's and the approvals' services check it."""

    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What it does and for whom, in a sentence or two. Reviewers read this first.",
    )
    vendor = forms.CharField(
        max_length=120,
        required=False,
        validators=[validate_single_line],
        help_text="The company that provides it. Leave empty if it is built in-house.",
    )
    data_classifications = forms.MultipleChoiceField(
        choices=DataClassification.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Data it handles",
        help_text="Every classification of data it reads or writes.",
    )
    acts_for_users = forms.BooleanField(
        required=False,
        label="It acts as the signed-in user (delegated user context)",
        help_text="Tick if it uses the user's own permissions, e.g. reads their mailbox through an OAuth consent.",
    )
    autonomy = forms.ChoiceField(
        choices=Autonomy.choices,
        widget=forms.RadioSelect,
        help_text="Does a person approve what it does before it happens?",
    )
    workload_identity = forms.CharField(
        max_length=300,
        required=False,
        validators=[validate_single_line],
        help_text="A SPIFFE ID (spiffe://…) or an OIDC issuer and subject. Leave empty if none.",
    )
    requested_scopes = IdMultipleChoiceField(
        queryset=None,
        label="Scopes it needs",
        help_text="Pick only what it needs; each scope shows how sensitive it is. Nothing is granted until approved.",
    )
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="What you changed",
        help_text="Optional: a sentence for the reviewers about what is different now.",
    )

    def __init__(self, data: Any = None, *, scopes: QuerySet[Scope], editable: bool, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.scopes = scopes.filter(is_active=True).order_by("system__name", "name")
        field = self.fields["requested_scopes"]
        assert isinstance(field, IdMultipleChoiceField)
        field.queryset = self.scopes
        self.editable = editable
        if not editable:
            for name in RESUBMIT_FIELDS:
                del self.fields[name]

    def integration_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in RESUBMIT_FIELDS if name in self.fields]

    def integration_values(self) -> dict[str, Any] | None:
        """The integration's changed input for the inventory's change service (None: not offered)."""
        if not self.editable:
            return None
        return {name: self.cleaned_data[name] for name in RESUBMIT_FIELDS}

    def forget_refused_secrets(self) -> None:
        """Blank every refused field whose value looks like a secret: a pasted key must not travel
        back to the browser in the page. Everything else typed is kept."""
        refused = [name for name in self.errors if name in self.fields and name != "requested_scopes"]
        assert isinstance(self.data, QueryDict)  # a bound page form holds the posted data
        data = self.data.copy()
        for name in refused:
            value = data.get(name)
            if isinstance(value, str) and secret_problem(value, check_entropy=name != "purpose"):
                data[name] = ""
        self.data = data

    def scope_groups(self) -> list[dict[str, Any]]:
        """The scope picker (``inventory/_scope_picker.html``): active scopes by system, ticked
        as posted (or, on a first render, as the request asks)."""
        chosen = {str(getattr(code, "pk", code)) for code in (self["requested_scopes"].value() or [])}
        groups: dict[str, dict[str, Any]] = {}
        for scope in self.scopes:
            group = groups.setdefault(scope.system.code, {"system": scope.system, "scopes": []})
            group["scopes"].append({"scope": scope, "checked": str(scope.pk) in chosen})
        return list(groups.values())


class ExpiryPolicyForm(AccessibleForm):
    risk_tier = forms.ChoiceField(choices=RiskTier.choices)
    days = forms.IntegerField(
        min_value=1, max_value=MAX_EXPIRY_DAYS, help_text="Default lifetime of a grant for this tier."
    )
