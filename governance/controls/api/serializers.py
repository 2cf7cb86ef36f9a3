"""API shapes of the control catalog: a control with its live evidence (figures judged against
the organisation's thresholds) and the framework items it answers; a framework with its
coverage; a framework's items with the controls that answer them. Read only: they serialize the
views of ``governance.controls.overview``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from governance.controls import overview
from governance.controls.overview import FigureView
from governance.controls.registry import HIGHER, LOWER, Status

APP_PATTERN = "^[a-z][a-z0-9_.-]{0,99}$"
CONTROL_STATUSES = [str(value) for value in Status.values]
ITEM_STATUSES = [str(value) for value in overview.ITEM_STATUS_ORDER]


class NamedChoiceField(serializers.ChoiceField):
    """A choice field published as a named enum component of its own (``enum_name``): several
    components share one status set without drf-spectacular's enum naming guessing a name."""

    def __init__(self, *, enum_name: str, choices: list[str], description: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        self.enum_description = description
        super().__init__(choices=choices, **kwargs)


class NamedChoiceFieldSchema(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        field = self.target
        component = ResolvedComponent(
            name=field.enum_name,
            type=ResolvedComponent.SCHEMA,
            object=field.enum_name,
            schema={"type": "string", "enum": list(field.choices), "description": field.enum_description},
        )
        auto_schema.registry.register_on_missing(component)
        ref: dict[str, Any] = component.ref
        return ref


def control_status(**kwargs: Any) -> NamedChoiceField:
    return NamedChoiceField(
        enum_name="ControlStatusEnum",
        choices=CONTROL_STATUSES,
        description="met, partly (partly met), not_met, or not_applicable (nothing to measure yet).",
        **kwargs,
    )


class ControlThresholdSerializer(serializers.Serializer[FigureView]):
    met = serializers.FloatField(source="figure.threshold.met", help_text="The value the figure must reach.")
    partly = serializers.FloatField(
        source="figure.threshold.partly",
        allow_null=True,
        help_text="Below ``met`` but reaching this is partly met (null: no partly band).",
    )
    is_default = serializers.BooleanField(
        source="figure.threshold_is_default",
        help_text="True: the control's default; false: the organisation set its own.",
    )


class ControlFigureSerializer(serializers.Serializer[FigureView]):
    key = serializers.CharField(source="figure.key", help_text="Unique across the catalog: <control id>.<name>.")
    # A declared field named like Field.label: DRF's metaclass takes it out of the class attributes.
    label = serializers.CharField(source="figure.label")  # type: ignore[assignment]
    value = serializers.FloatField(
        source="figure.value", allow_null=True, help_text="Null when there is nothing to measure (see detail)."
    )
    unit = serializers.CharField(source="figure.unit", help_text="%, count, hours or days.")
    better = NamedChoiceField(
        source="figure.better",
        enum_name="FigureBetterEnum",
        choices=[HIGHER, LOWER],
        description="Which way is good: higher or lower.",
    )
    threshold = ControlThresholdSerializer(source="*")
    status = control_status(source="figure.status")
    detail = serializers.CharField(source="figure.detail", help_text="The sentence behind the number.")
    records_url = serializers.SerializerMethodField(
        help_text="The portal page listing the records behind the figure (empty when there is none)."
    )

    @extend_schema_field(serializers.CharField())
    def get_records_url(self, view: FigureView) -> str:
        url = view.figure.records_url
        request = self.context.get("request")
        return request.build_absolute_uri(url) if url and request is not None else url


class ControlMappedItemSerializer(serializers.Serializer[overview.MappedItem]):
    framework = serializers.CharField(source="framework_slug", help_text="The framework's slug.")
    code = serializers.CharField(help_text="The item's id as the framework writes it, with its edition.")
    title = serializers.CharField(help_text="Empty when the item is no longer in the framework.")
    why = serializers.CharField(help_text="Why the control answers the item.")
    builtin = serializers.BooleanField(help_text="True: the portal's mapping file; false: added by the organisation.")


class ControlSerializer(serializers.Serializer[overview.ControlView]):
    id = serializers.CharField(source="control.id")
    title = serializers.CharField(source="control.title")
    description = serializers.CharField(source="control.description")
    app = serializers.CharField(source="control.app", help_text="The app that implements it.")
    status = control_status(help_text="Its worst applicable figure's status.")
    figures = ControlFigureSerializer(many=True)
    mapped_items = ControlMappedItemSerializer(source="items", many=True, help_text="The framework items it answers.")


class FrameworkItemControlSerializer(serializers.Serializer[overview.ControlView]):
    id = serializers.CharField(source="control.id")
    title = serializers.CharField(source="control.title")
    app = serializers.CharField(source="control.app")
    status = control_status()
    figures = ControlFigureSerializer(many=True)


class FrameworkCoverageSerializer(serializers.Serializer[dict[str, int]]):
    met = serializers.IntegerField(min_value=0)
    partly = serializers.IntegerField(min_value=0)
    not_met = serializers.IntegerField(min_value=0)
    not_applicable = serializers.IntegerField(min_value=0)
    no_control = serializers.IntegerField(min_value=0, help_text="Items no control answers.")


class FrameworkSerializer(serializers.Serializer[overview.FrameworkView]):
    slug = serializers.CharField(source="framework.slug")
    name = serializers.CharField(source="framework.name")
    publisher = serializers.CharField(source="framework.publisher")
    version = serializers.CharField(source="framework.version", help_text="The edition.")
    source_url = serializers.CharField(source="framework.source_url", help_text="Where its text is published.")
    builtin = serializers.BooleanField(
        source="framework.builtin", help_text="True: a public framework; false: the organisation's own."
    )
    item_count = serializers.SerializerMethodField()
    coverage = FrameworkCoverageSerializer(
        help_text="How many items are met, partly met, not met, not applicable, and have no control."
    )

    @extend_schema_field(serializers.IntegerField(min_value=0))
    def get_item_count(self, view: overview.FrameworkView) -> int:
        return len(view.items)


class FrameworkItemSerializer(serializers.Serializer[overview.ItemView]):
    code = serializers.CharField(source="item.code")
    title = serializers.CharField(source="item.title")
    group = serializers.CharField(source="item.group", help_text="The function, layer or category it belongs to.")
    description = serializers.CharField(source="item.description")
    status = NamedChoiceField(
        enum_name="FrameworkItemStatusEnum",
        choices=ITEM_STATUSES,
        description="met (every applicable control met), partly, not_met, not_applicable, or no_control.",
    )
    controls = FrameworkItemControlSerializer(many=True, help_text="The registered controls mapped to it.")


class FrameworkDetailSerializer(FrameworkSerializer):
    description = serializers.CharField(source="framework.description")
    items = serializers.SerializerMethodField(help_text="Every item, gaps first (or those of ?status=).")

    @extend_schema_field(FrameworkItemSerializer(many=True))
    def get_items(self, view: overview.FrameworkView) -> Any:
        items = overview.filter_items(view.items_gaps_first(), self.context.get("item_status", ""))
        listed: serializers.ListSerializer[overview.ItemView] = serializers.ListSerializer(
            child=FrameworkItemSerializer(), context=self.context
        )
        return listed.to_representation(items)


class ControlQuerySerializer(serializers.Serializer[dict[str, str]]):
    status = serializers.ChoiceField(choices=[overview.GAPS, *CONTROL_STATUSES], required=False, allow_blank=True)
    # \Z, not $: Python's $ also matches before a final newline (the schema publishes APP_PATTERN).
    app = serializers.RegexField(r"^[a-z][a-z0-9_.-]{0,99}\Z", required=False, allow_blank=True, trim_whitespace=False)


class FrameworkItemQuerySerializer(serializers.Serializer[dict[str, str]]):
    status = serializers.ChoiceField(choices=[overview.GAPS, *ITEM_STATUSES], required=False, allow_blank=True)
