"""Forms of campaign pages: they parse input only; rules live in ``services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group

from approvals.campaigns.models import (
    DEFINITION_M2M_FIELDS,
    ApplyMode,
    CampaignDefinition,
    DefaultAction,
    Granularity,
    ItemDecision,
    ReviewerRule,
    SecondStage,
)
from governance.forms import AccessibleForm
from governance.selectors import people
from inventory.choices import IntegrationKind, RiskTier, Sensitivity
from inventory.selectors import resource_systems


class DayListField(forms.CharField):
    """ "7, 1" -> [7, 1]: the text is cleaned as text, then read as whole numbers."""

    def clean(self, value: Any) -> list[int]:
        text = super().clean(value)
        if not text:
            return []
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError as exc:
            raise forms.ValidationError("Whole numbers of days separated by commas, e.g. 7, 1.") from exc

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(days) for days in value)
        return value


class VendorListField(forms.CharField):
    """ "Acme, Initech" -> ["Acme", "Initech"]."""

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        return [name.strip() for name in (text or "").split(",") if name.strip()]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value


class DefinitionForm(AccessibleForm):
    name = forms.CharField(max_length=150)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    owner = forms.ModelChoiceField(queryset=people(), help_text="Accountable for the campaigns of this definition.")
    is_active = forms.BooleanField(required=False, initial=True)
    risk_tiers = forms.MultipleChoiceField(
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every tier.",
    )
    kinds = forms.MultipleChoiceField(
        choices=IntegrationKind.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    vendors = VendorListField(required=False, help_text="Comma-separated vendor names; empty: any vendor.")
    sensitivities = forms.MultipleChoiceField(
        choices=Sensitivity.choices, required=False, widget=forms.CheckboxSelectMultiple, label="Scope sensitivity"
    )
    resource_systems = forms.ModelMultipleChoiceField(queryset=resource_systems(), required=False)
    business_owners = forms.ModelMultipleChoiceField(queryset=people(), required=False, label="Business owners")
    not_reviewed_days = forms.IntegerField(min_value=1, required=False, label="Not reviewed for (days)")
    reviewer_rule = forms.ChoiceField(choices=ReviewerRule.choices)
    reviewer_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    fallback_user = forms.ModelChoiceField(queryset=people(), required=False)
    fallback_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    forbid_self_review = forms.BooleanField(
        required=False, initial=True, label="An integration's only owner never reviews it alone"
    )
    granularity = forms.ChoiceField(choices=Granularity.choices)
    second_stage = forms.ChoiceField(choices=SecondStage.choices)
    second_stage_group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        help_text="Confirms keeps on critical items; empty: IAM admins.",
    )
    duration_days = forms.IntegerField(min_value=1, initial=14)
    default_action = forms.ChoiceField(choices=DefaultAction.choices)
    escalation_grace_days = forms.IntegerField(min_value=0, initial=7)
    apply_mode = forms.ChoiceField(choices=ApplyMode.choices, label="Apply revocations")
    reminder_days = DayListField(required=False, help_text="Days before the deadline, e.g. 7, 1.")
    escalate_days_before = forms.IntegerField(min_value=1, required=False)
    recurrence = forms.CharField(max_length=100, required=False, help_text="Cron (UTC); quarterly: 0 6 1 1,4,7,10 *")

    @classmethod
    def initial_from(cls, definition: CampaignDefinition) -> dict[str, Any]:
        data = {name: getattr(definition, name) for name in cls.base_fields if name not in DEFINITION_M2M_FIELDS}
        for name in DEFINITION_M2M_FIELDS:
            data[name] = list(getattr(definition, name).all())
        return data


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=ItemDecision.choices)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    items = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raw = self.data.getlist("items") if hasattr(self.data, "getlist") else self.data.get("items", [])
        items = self.fields["items"]
        assert isinstance(items, forms.TypedMultipleChoiceField)
        items.choices = [(value, value) for value in raw]
