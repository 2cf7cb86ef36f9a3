"""Forms of campaign pages: they parse input only; rules live in ``services``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from governance.fields import IdMultipleChoiceField
from governance.forms import AccessibleForm, PersonField
from governance.models import User
from governance.selectors import people
from governance.validators import validate_single_line
from inventory.choices import IntegrationKind, RiskTier, Sensitivity
from inventory.selectors import resource_systems

# Suggestions for a box of several usernames: ``campaign_definition.js`` fills it as one types,
# as ``inventory/people.js`` fills the one list (``PEOPLE_DATALIST_ID``) of single person boxes.
PEOPLE_LIST_DATALIST_ID = "people-list-options"
GROUPS_DATALIST_ID = "group-options"


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


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.replace(";", ",").split(",") if name.strip()]


class PeopleListField(forms.CharField):
    """Several people by username, comma-separated, with suggestions for the name being typed.
    Cleans to a list of ``User``; every unknown name is named in the error."""

    def __init__(self, **kwargs: Any) -> None:
        attrs = {"list": PEOPLE_LIST_DATALIST_ID, "autocomplete": "off", "spellcheck": "false", "data-people-list": ""}
        kwargs.setdefault("widget", forms.TextInput(attrs))
        super().__init__(**kwargs)
        self.validators.append(validate_single_line)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(person.username if isinstance(person, User) else str(person) for person in value)
        return value

    def clean(self, value: Any) -> list[User]:
        names = _split_names(super().clean(value) or "")
        found = {person.username: person for person in people().filter(username__in=names)}
        unknown = [name for name in names if name not in found]
        if unknown:
            raise forms.ValidationError(f"No active person has the username: {', '.join(unknown)}.")
        return [found[name] for name in dict.fromkeys(names)]


class GroupField(forms.CharField):
    """A group by name, picked from the page's list of groups (type to search it)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("widget", forms.TextInput({"list": GROUPS_DATALIST_ID, "autocomplete": "off"}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return value.name if isinstance(value, Group) else value

    def clean(self, value: Any) -> Group | None:
        name = (super().clean(value) or "").strip()
        if not name:
            return None
        group = Group.objects.filter(name=name).first()
        if group is None:
            raise forms.ValidationError(f"No group is named “{name}”: pick one from the list.")
        return group


@dataclass(frozen=True)
class Section:
    key: str
    legend: str
    help: str
    fields: tuple[str, ...]


# The definition form's sections, in the order an admin thinks them through.
DEFINITION_SECTIONS = (
    Section(
        "about",
        "About this definition",
        "A name reviewers recognise in their emails, and the person who answers for its campaigns.",
        ("name", "description", "owner", "is_active"),
    ),
    Section(
        "selection",
        "What is reviewed",
        "The active grants a campaign covers. An empty criterion selects every value of it; "
        "all empty selects every active grant.",
        (
            "risk_tiers",
            "kinds",
            "vendors",
            "sensitivities",
            "resource_systems",
            "business_owners",
            "not_reviewed_days",
            "granularity",
        ),
    ),
    Section(
        "reviewers",
        "Who reviews",
        "Who decides each item, who takes over when nobody can, and who confirms keeps of critical items.",
        (
            "reviewer_rule",
            "reviewer_group",
            "fallback_user",
            "fallback_group",
            "forbid_self_review",
            "second_stage",
            "second_stage_group",
        ),
    ),
    Section(
        "schedule",
        "Schedule",
        "When new campaigns start by themselves, and how long reviewers have.",
        ("recurrence", "duration_days"),
    ),
    Section(
        "reminders",
        "Reminders and escalation",
        "Emails to reviewers who still have items, and when their manager is told.",
        ("reminder_days", "escalate_days_before"),
    ),
    Section(
        "deadline",
        "What happens at the deadline",
        "What is done with the items nobody decided, and when revocations take effect.",
        ("default_action", "escalation_grace_days", "apply_mode"),
    ),
)

# Fields that apply only when another field has a given value: shown only then in the browser
# (all of them without script; the service ignores what does not apply).
SHOWN_WHEN: dict[str, tuple[str, str]] = {
    "reviewer_group": ("reviewer_rule", ReviewerRule.GROUP),
    "second_stage_group": ("second_stage", SecondStage.CRITICAL_KEEPS),
    "escalation_grace_days": ("default_action", DefaultAction.ESCALATE),
}


class DefinitionForm(AccessibleForm):
    name = forms.CharField(max_length=150)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    owner = PersonField(help_text="Accountable for the campaigns of this definition. Type part of a name.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active (scheduled runs start)")
    risk_tiers = forms.MultipleChoiceField(
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every tier.",
    )
    kinds = forms.MultipleChoiceField(
        choices=IntegrationKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None: every kind.",
    )
    vendors = VendorListField(required=False, help_text="Comma-separated vendor names; empty: any vendor.")
    sensitivities = forms.MultipleChoiceField(
        choices=Sensitivity.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Scope sensitivity",
        help_text="None ticked: every sensitivity.",
    )
    resource_systems = IdMultipleChoiceField(
        queryset=resource_systems(),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"data-filterable": ""}),
        help_text="None ticked: every system.",
    )
    business_owners = PeopleListField(
        required=False,
        label="Business owners",
        help_text="Only integrations these people own: usernames separated by commas; empty: any owner.",
    )
    not_reviewed_days = forms.IntegerField(
        min_value=1,
        required=False,
        label="Not reviewed for (days)",
        help_text="Only integrations with no decided review in this many days; empty: regardless.",
    )
    granularity = forms.ChoiceField(choices=Granularity.choices, label="Items")
    reviewer_rule = forms.ChoiceField(choices=ReviewerRule.choices, label="Reviewer")
    reviewer_group = GroupField(label="Reviewing group", help_text="Type to search the groups.")
    fallback_user = PersonField(
        required=False,
        label="Fallback person",
        help_text="Reviews when the rule finds nobody, and takes over escalations when a reviewer has no manager.",
    )
    fallback_group = GroupField(label="Fallback group", help_text="Used when no fallback person is named.")
    forbid_self_review = forms.BooleanField(
        required=False, initial=True, label="An integration's only owner never reviews it alone"
    )
    second_stage = forms.ChoiceField(choices=SecondStage.choices, label="Second stage")
    second_stage_group = GroupField(
        label="Confirming group", help_text="Confirms keeps on critical items; empty: IAM admins."
    )
    recurrence = forms.CharField(
        max_length=100,
        required=False,
        label="Repeats (cron, UTC)",
        help_text="minute hour day-of-month month day-of-week, e.g. 0 9 * 1,4,7,10 1#1 "
        "(the first Monday of each quarter at 09:00). Empty: launched by hand.",
    )
    duration_days = forms.IntegerField(min_value=1, initial=14, label="Reviewers have (days)")
    reminder_days = DayListField(
        required=False, label="Remind (days before the deadline)", help_text="e.g. 7, 1. Empty: no reminder."
    )
    escalate_days_before = forms.IntegerField(
        min_value=1,
        required=False,
        label="Tell reviewers' managers (days before the deadline)",
        help_text="Empty: nobody is told before the deadline.",
    )
    default_action = forms.ChoiceField(choices=DefaultAction.choices, label="Undecided items")
    escalation_grace_days = forms.IntegerField(
        min_value=0, initial=7, label="Grace after escalation (days)", help_text="Then what is still open is revoked."
    )
    apply_mode = forms.ChoiceField(choices=ApplyMode.choices, label="Apply revocations")

    @classmethod
    def initial_from(cls, definition: CampaignDefinition) -> dict[str, Any]:
        data = {name: getattr(definition, name) for name in cls.base_fields if name not in DEFINITION_M2M_FIELDS}
        for name in DEFINITION_M2M_FIELDS:
            data[name] = list(getattr(definition, name).all())
        return data

    def sections(self) -> list[dict[str, Any]]:
        """The bound fields by section, each with the field and value it depends on, if any."""
        return [
            {
                "key": section.key,
                "legend": section.legend,
                "help": section.help,
                "fields": [(self[name], SHOWN_WHEN.get(name)) for name in section.fields],
            }
            for section in DEFINITION_SECTIONS
        ]

    def recurrence_value(self) -> str:
        """The recurrence as typed (a bound form) or as saved, for its description in words."""
        value = self["recurrence"].value()
        return str(value or "")


REVIEW_ACTIONS = ("each", "ticked", "accept-ticked", "accept-page")
_MAX_ID_DIGITS = 18


def _ids(values: list[str]) -> list[int]:
    """Posted item ids; anything that is not one (text, a number beyond 64 bits) is left out."""
    return list(dict.fromkeys(int(value) for value in values if value.isdigit() and len(value) <= _MAX_ID_DIGITS))


@dataclass(frozen=True)
class ReviewPost:
    """What the review page posted: which button (``action``), the items the page showed, the
    ticked ones, each item's own choice and comment, and the decision and comment for the
    ticked items. A post with ``items`` and ``decision`` but no button decides the ticked
    items (the API-like form older pages sent)."""

    action: str
    shown: list[int]
    ticked: list[int]
    choices: dict[int, str]
    comments: dict[int, str]
    bulk_decision: str
    bulk_comment: str

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ReviewPost:
        getlist = getattr(data, "getlist", lambda key: list(data.get(key, [])))
        shown, ticked = _ids(getlist("shown")), _ids(getlist("items"))
        choices = {
            pk: data.get(f"decision-{pk}", "") for pk in shown if data.get(f"decision-{pk}", "") in ItemDecision.values
        }
        comments = {pk: str(data.get(f"comment-{pk}", "")) for pk in shown}
        action = str(data.get("action", ""))
        if action not in REVIEW_ACTIONS:
            action = "ticked" if ticked and not shown else "each"
        return cls(
            action=action,
            shown=shown,
            ticked=ticked,
            choices=choices,
            comments=comments,
            bulk_decision=str(data.get("decision", "")),
            bulk_comment=str(data.get("comment", "")),
        )

    def wanted(self) -> list[int]:
        """Every item the post names, shown or ticked."""
        return list(dict.fromkeys([*self.shown, *self.ticked]))
