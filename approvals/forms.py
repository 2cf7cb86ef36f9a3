"""Forms of the approvals pages: a reviewer's decision and the IAM admins' workflow and expiry
settings. They parse input only; the services validate the rules and save."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.db.models import QuerySet

from approvals.models import MAX_EXPIRY_DAYS, WORKFLOW_STEP_FIELDS, DecisionKind, PoolKind, Rule, WorkflowStep
from governance.forms import AccessibleErrorsMixin, AccessibleForm
from governance.selectors import people
from inventory.choices import RiskTier


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


def _offer(field: forms.Field, queryset: QuerySet[Any]) -> None:
    """Limit a model choice field to ``queryset``."""
    if isinstance(field, forms.ModelChoiceField):
        field.queryset = queryset


class WorkflowStepForm(AccessibleErrorsMixin, forms.ModelForm):
    only_for_tiers = forms.MultipleChoiceField(
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Skip the step for other tiers; none ticked: the step always runs.",
    )
    pool_users = forms.ModelMultipleChoiceField(
        queryset=people(),
        required=False,
        help_text="For a pool of named people.",
    )
    # The named people are chosen right after the group, with the rest of the pool.
    field_order = [*WORKFLOW_STEP_FIELDS[: WORKFLOW_STEP_FIELDS.index("pool_group") + 1], "pool_users"]

    class Meta:
        model = WorkflowStep
        fields = WORKFLOW_STEP_FIELDS
        help_texts = {
            "pool_kind": "Who decides: " + "; ".join(str(label) for _, label in PoolKind.choices) + ".",
            "rule": "; ".join(str(label) for _, label in Rule.choices) + ".",
            "sla_hours": "Reviewers are reminded at half, and the step escalates when it passes.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offer(self.fields["pool_group"], Group.objects.order_by("name"))
        _offer(self.fields["escalation_group"], Group.objects.order_by("name"))
        _offer(self.fields["escalation_user"], people())


class ExpiryPolicyForm(AccessibleForm):
    risk_tier = forms.ChoiceField(choices=RiskTier.choices)
    days = forms.IntegerField(
        min_value=1, max_value=MAX_EXPIRY_DAYS, help_text="Default lifetime of a grant for this tier."
    )
