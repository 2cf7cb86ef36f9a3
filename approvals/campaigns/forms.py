"""Forms of campaign pages: they parse input only; rules live in ``services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import Group

from approvals.campaigns.models import (
    ApplyMode,
    CampaignDefinition,
    Decision,
    DefaultAction,
    Granularity,
    ReviewerRule,
    SecondStage,
)
from governance.models import User
from inventory.models import IntegrationKind, ResourceSystem, RiskTier, Sensitivity


class DayListField(forms.CharField):
    """ "7, 1" -> [7, 1]."""

    def to_python(self, value: Any) -> list[int]:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return []
        try:
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError as exc:
            raise forms.ValidationError("Whole numbers of days separated by commas, e.g. 7, 1.") from exc

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value


class VendorListField(forms.CharField):
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        return [v.strip() for v in (text or "").split(",") if v.strip()]

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        return value


def _people() -> Any:
    return User.objects.filter(is_active=True, is_service_account=False).exclude(username="system").order_by("username")


class DefinitionForm(forms.Form):
    name = forms.CharField(max_length=150)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    owner = forms.ModelChoiceField(queryset=_people(), help_text="Accountable for the campaigns of this definition.")
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
    resource_systems = forms.ModelMultipleChoiceField(queryset=ResourceSystem.objects.order_by("name"), required=False)
    business_owners = forms.ModelMultipleChoiceField(queryset=_people(), required=False, label="Business owners")
    not_reviewed_days = forms.IntegerField(min_value=1, required=False, label="Not reviewed for (days)")
    reviewer_rule = forms.ChoiceField(choices=ReviewerRule.choices)
    reviewer_group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), required=False)
    fallback_user = forms.ModelChoiceField(queryset=_people(), required=False)
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

    def mark_invalid(self) -> None:
        """Tie each error to its input for assistive technology (aria-invalid, aria-describedby)."""
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["aria-invalid"] = "true"
                widget.attrs["aria-describedby"] = f"id_{name}-error"

    @classmethod
    def initial_from(cls, d: CampaignDefinition) -> dict[str, Any]:
        data = {
            name: getattr(d, name) for name in cls.base_fields if name not in ("resource_systems", "business_owners")
        }
        data["resource_systems"] = list(d.resource_systems.all())
        data["business_owners"] = list(d.business_owners.all())
        return data


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    items = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raw = self.data.getlist("items") if hasattr(self.data, "getlist") else self.data.get("items", [])
        self.fields["items"].choices = [(v, v) for v in raw]
