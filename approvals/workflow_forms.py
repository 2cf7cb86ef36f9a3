"""The IAM admins' form for one workflow step, in sections with help, in words rather than stored
values: groups by their names in words, people by username with suggestions as one types. It
says which fields apply to which choice (``APPLIES_WHEN``): the page shows only those
(``approvals/step-form.js``; without script every field shows with its help saying when it
applies), and the service clears the rest. It parses input only; the service validates and saves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from approvals.models import WORKFLOW_STEP_FIELDS, PoolKind, Rule, WorkflowStep
from governance.forms import AccessibleErrorsMixin, PersonField, PersonSearchInput
from governance.models import User
from governance.roles import group_label
from governance.selectors import people
from inventory.choices import RiskTier

# The id of the <datalist> of groups a step form's group fields suggest from.
GROUP_DATALIST_ID = "group-options"

# A field that applies only when another field has a value: (that field, that value).
APPLIES_WHEN: dict[str, tuple[str, str]] = {
    "pool_group": ("pool_kind", PoolKind.GROUP),
    "pool_users": ("pool_kind", PoolKind.USERS),
    "quorum": ("rule", Rule.QUORUM),
}

# (legend, what the section decides, fields) in the order the page shows them.
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("The step", "", ("name", "order")),
    ("Who decides", "The people whose decision this step waits for.", ("pool_kind", "pool_group", "pool_users")),
    ("How many must approve", "", ("rule", "quorum")),
    (
        "Deadline and escalation",
        "Reviewers are reminded when half the time has passed; when it has all passed, the step "
        "escalates to the group or person named here.",
        ("sla_hours", "sla_minutes", "escalation_group", "escalation_user"),
    ),
    ("When the step runs", "", ("only_for_tiers",)),
)


def groups() -> QuerySet[Group]:
    return Group.objects.order_by("name")


class GroupSearchInput(forms.TextInput):
    """A group's name in words, with the page's ``<datalist>`` of groups as suggestions (the
    browser filters them as one types)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"list": GROUP_DATALIST_ID, "autocomplete": "off", "spellcheck": "false"} | (attrs or {}))


class GroupField(forms.CharField):
    """A group named in words ("IAM reviewers"), by its stored name or by its id; cleans to a
    ``Group`` (or None when left empty). An unknown name is an error next to the field."""

    widget = GroupSearchInput
    default_error_messages = {"unknown": "No group is called “%(value)s”. Type part of its name and pick a suggestion."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int):
            value = groups().filter(pk=value).first()
        return group_label(value.name) if isinstance(value, Group) else value

    def clean(self, value: Any) -> Group | None:
        text = (super().clean(value) or "").strip()
        if not text:
            return None
        for group in groups():
            if text.casefold() in (group.name.casefold(), group_label(group.name).casefold()):
                return group
        # A group's id is taken too (what a form without the suggestions, or a script, may post).
        by_id = groups().filter(pk=int(text)).first() if text.isdigit() else None
        if by_id is not None:
            return by_id
        raise forms.ValidationError(self.error_messages["unknown"], code="unknown", params={"value": text})


class PeopleInputs(forms.Widget):
    """One username box per person, each with the page's people suggestions
    (``inventory/people.js``), and empty boxes to add more; ``approvals/step-form.js`` adds a
    box on demand. The boxes share the field's name: the form reads the list."""

    empty_boxes = 2
    input_type = "people"  # the page renders the boxes as one group, under a legend

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name) or []
        return [value.strip() for value in values if isinstance(value, str) and value.strip()]

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        usernames = [item.username if isinstance(item, User) else str(item) for item in (value or [])]
        merged = self.build_attrs(self.attrs, attrs)
        base_id = merged.pop("id", None) or f"id_{name}"
        boxes = [*usernames, *([""] * self.empty_boxes)]
        # Each box carries the field's own attributes: its help and error (aria-describedby) and
        # aria-invalid when refused.
        search = PersonSearchInput(merged)
        inputs = format_html_join(
            "",
            "<li>{}</li>",
            (
                (search.render(name, username, {"id": f"{base_id}_{index}", "aria-label": f"Person {index + 1}"}),)
                for index, username in enumerate(boxes)
            ),
        )
        return format_html(
            '<ul class="people-inputs plain" id="{}">{}</ul>'
            '<button type="button" class="link people-add" data-people-add="{}" hidden>Add another person</button>',
            base_id,
            inputs,
            base_id,
        )


class PeopleField(forms.Field):
    """People named by username (one per box); cleans to the list of ``User``. Unknown, inactive
    or service accounts are an error next to the field."""

    widget = PeopleInputs
    default_error_messages = {"unknown": "No active person has the username(s) %(value)s."}

    def clean(self, value: Any) -> list[User]:
        usernames = list(dict.fromkeys(value or []))
        if self.required and not usernames:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        found = {person.username: person for person in people().filter(username__in=usernames)}
        unknown = [username for username in usernames if username not in found]
        if unknown:
            raise forms.ValidationError(
                self.error_messages["unknown"], code="unknown", params={"value": ", ".join(f"“{u}”" for u in unknown)}
            )
        return [found[username] for username in usernames]


class WorkflowStepForm(AccessibleErrorsMixin, forms.ModelForm):
    pool_kind = forms.ChoiceField(
        label="Who decides",
        choices=PoolKind.choices,
        widget=forms.RadioSelect,
        help_text="The scopes' system owners and the requester's manager are found for each request.",
    )
    pool_group = GroupField(label="Group", help_text="Its members decide. Applies when a group decides.")
    pool_users = PeopleField(
        label="People", required=False, help_text="Usernames, one per box. Applies when named people decide."
    )
    rule = forms.ChoiceField(label="How many must approve", choices=Rule.choices, widget=forms.RadioSelect)
    quorum = forms.IntegerField(
        label="Approvals needed",
        min_value=1,
        required=False,
        help_text="At least 2. Applies when a quorum of reviewers decides.",
    )
    escalation_group = GroupField(label="Escalate to group", help_text="Empty: the IAM admins.")
    escalation_user = PersonField(
        label="Escalate to person", required=False, help_text="Optional: one person who takes over as well."
    )
    only_for_tiers = forms.MultipleChoiceField(
        label="Run only for these risk tiers",
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the step always runs.",
    )

    class Meta:
        model = WorkflowStep
        fields = WORKFLOW_STEP_FIELDS
        labels = {
            "order": "Position",
            "name": "Step name",
            "sla_hours": "SLA (hours)",
            "sla_minutes": "SLA (minutes)",
        }
        help_texts = {
            "order": "Steps run in this order, the first being 1.",
            "name": "What reviewers and requesters see, such as “Security review”.",
            "sla_hours": "Time the reviewers have to decide.",
            "sla_minutes": "Optional, for decisions due fast: when set, it replaces the hours.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["pool_users"] = list(self.instance.pool_users.order_by("username"))
        if int(self.initial.get("quorum") or 0) < 2:
            # A quorum of one is "any one reviewer": when someone picks a quorum, offer 2.
            self.initial["quorum"] = 2

    def clean_quorum(self) -> int:
        # The quorum is kept only for a quorum rule (the service clears it otherwise).
        return self.cleaned_data.get("quorum") or 1

    def sections(self) -> list[dict[str, Any]]:
        """The page's fieldsets: each field with the choice it applies to, if any."""
        return [
            {
                "legend": legend,
                "help": help_text,
                "fields": [(self[name], *APPLIES_WHEN.get(name, ("", ""))) for name in names],
            }
            for legend, help_text, names in SECTIONS
        ]

    def group_options(self) -> Iterable[str]:
        return [group_label(group.name) for group in groups()]
