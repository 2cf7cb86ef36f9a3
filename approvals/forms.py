from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group

from approvals.models import DecisionKind, PoolKind, Rule, WorkflowStep
from governance.models import User
from inventory.models import RiskTier


class AccessibleErrorsMixin:
    """Inputs with an error carry ``aria-invalid`` and point at their message (the templates
    render it with the id ``<auto_id>-error``)."""

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name in self.errors:  # type: ignore[attr-defined]
            if name in self.fields:  # type: ignore[attr-defined]
                bound = self[name]  # type: ignore[index]
                attrs = self.fields[name].widget.attrs  # type: ignore[attr-defined]
                attrs["aria-invalid"] = "true"
                attrs["aria-describedby"] = f"{bound.auto_id}-error"


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=DecisionKind.choices, widget=forms.RadioSelect)
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=5000,
        help_text="Required to reject or to request changes.",
    )
    approved_scopes = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all ticked to approve everything still requested.",
    )
    expires_at = forms.DateTimeField(required=False, help_text="Optional: an earlier expiry (YYYY-MM-DD HH:MM).")
    step = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, scope_codes: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["approved_scopes"].choices = [(c, c) for c in (scope_codes or [])]


class WorkflowStepForm(AccessibleErrorsMixin, forms.ModelForm):  # type: ignore[type-arg]
    only_for_tiers = forms.MultipleChoiceField(
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Skip the step for other tiers; none ticked: the step always runs.",
    )
    pool_users = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(is_active=True, is_service_account=False),
        required=False,
        help_text="For a pool of named people.",
    )

    class Meta:
        model = WorkflowStep
        fields = [
            "order",
            "name",
            "pool_kind",
            "pool_group",
            "pool_users",
            "rule",
            "quorum",
            "sla_hours",
            "escalation_group",
            "escalation_user",
            "only_for_tiers",
        ]
        help_texts = {
            "pool_kind": "Who decides: " + "; ".join(str(label) for _, label in PoolKind.choices) + ".",
            "rule": "; ".join(str(label) for _, label in Rule.choices) + ".",
            "sla_hours": "Reviewers are reminded at half, and the step escalates when it passes.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["pool_group"].queryset = Group.objects.order_by("name")
        self.fields["escalation_group"].queryset = Group.objects.order_by("name")
        self.fields["escalation_user"].queryset = User.objects.filter(is_active=True, is_service_account=False)


class ExpiryPolicyForm(AccessibleErrorsMixin, forms.Form):
    risk_tier = forms.ChoiceField(choices=RiskTier.choices)
    days = forms.IntegerField(min_value=1, max_value=3650, help_text="Default lifetime of a grant for this tier.")
