"""Forms of the catalog's admin pages. They parse what was typed; the services decide the rules
(a slug no framework has, an item code new to its framework, a mapping to an existing item, numbers
the figure's unit allows) and their errors come back next to the field they name."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from governance.controls import registry
from governance.controls.catalog import FrameworkInfo
from governance.forms import AccessibleForm
from governance.validators import validate_single_line


def _line_field(label: str, *, max_length: int, required: bool = True, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=max_length,
        required=required,
        help_text=help_text,
        validators=[validate_single_line],
    )


class FrameworkForm(AccessibleForm):
    name = _line_field(
        "Name", max_length=150, help_text="As the framework names itself, e.g. “Bank IT security standard”."
    )
    slug = _line_field(
        "Id",
        max_length=60,
        help_text="A short id for its address and for mappings: letters, digits and hyphens, e.g. “it-sec-std”.",
    )
    publisher = _line_field("Publisher", max_length=150, required=False)
    version = _line_field("Version or edition", max_length=40, required=False)
    source_url = forms.CharField(
        label="Source",
        max_length=500,
        help_text="The web address where the framework's text is published (https://…).",
        validators=[validate_single_line],
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What it covers: auditors read it on the framework's page.",
    )


class FrameworkItemForm(AccessibleForm):
    code = _line_field("Code", max_length=40, help_text="The item's id as the framework writes it, e.g. SEC-04.")
    title = _line_field("Title", max_length=300)
    description = forms.CharField(
        label="Description", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


def item_value(slug: str, code: str) -> str:
    """A framework item as the mapping form's choice names it (framework slugs hold no colon)."""
    return f"{slug}:{code}"


def _option_text(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def item_choices(infos: list[FrameworkInfo]) -> list[tuple[str, Any]]:
    """Every item of every framework, grouped by framework, for a select that works without script."""
    groups: list[tuple[str, Any]] = [("", "Choose a framework item")]
    for info in infos:
        options = [(item_value(info.slug, item.code), _option_text(f"{item.code} {item.title}")) for item in info.items]
        if options:
            groups.append((info.name, options))
    return groups


class MappingForm(AccessibleForm):
    control_id = forms.ChoiceField(label="Control")
    item = forms.ChoiceField(
        label="Framework item", help_text="Items of the built-in frameworks and of the organisation's own."
    )
    note = forms.CharField(
        label="Why the control answers it",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown beside the mapping on the control's and the framework's pages.",
    )

    def __init__(self, *args: Any, infos: list[FrameworkInfo], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        control_field = cast(forms.ChoiceField, self.fields["control_id"])
        item_field = cast(forms.ChoiceField, self.fields["item"])
        control_field.choices = [("", "Choose a control")] + [
            (control.id, f"{control.title} ({control.id})") for control in registry.controls()
        ]
        item_field.choices = item_choices(infos)

    def item_parts(self) -> tuple[str, str]:
        """(framework slug, item code) of the chosen item."""
        slug, _, code = self.cleaned_data["item"].partition(":")
        return slug, code


class MappingRemoveForm(AccessibleForm):
    reason = forms.CharField(label="Why", required=False, max_length=1000)


class ThresholdForm(AccessibleForm):
    """One figure's threshold. ``prefix`` is the figure's key, so each figure's form on the page
    keeps its own input."""

    # Help texts are given here so the inputs point at them; ``__init__`` words them for the figure.
    met = forms.FloatField(label="Met from", help_text="The value the figure must reach to be met.")
    partly = forms.FloatField(label="Partly met from", required=False, help_text="Leave empty for no partly-met band.")
    reason = _line_field("Why the organisation sets it", max_length=1000)

    def __init__(self, *args: Any, figure: registry.Figure, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        unit = "" if figure.unit == "count" else f" ({figure.unit})"
        if figure.better == registry.HIGHER:
            self.fields["met"].help_text = f"Met when the figure is at least this{unit}."
            self.fields[
                "partly"
            ].help_text = f"Partly met when at least this{unit}; below the met bound. Empty: no band."
        else:
            self.fields["met"].help_text = f"Met when the figure is at most this{unit}."
            self.fields[
                "partly"
            ].help_text = f"Partly met when at most this{unit}; above the met bound. Empty: no band."


class ThresholdClearForm(AccessibleForm):
    reason = _line_field("Why", max_length=1000, required=False)
