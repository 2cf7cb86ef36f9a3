"""What the control catalog's pages and API show: each control measured now, with the framework
items it answers, and each framework's items with the controls that answer them and how well.

Reads only. Each function evaluates every control it shows once (its evidence runs once), reads
the organisation's thresholds once, the mappings once and the frameworks once, so a page or an
endpoint runs a fixed number of queries however many integrations, controls or items there are.

An item's status follows from the controls mapped to it: met when every applicable one is met,
not met when none is met or partly met, partly met in between; not applicable when none of them
has anything to measure; "no control" when nothing in the catalog answers it (a gap as well).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governance.controls import catalog, registry, selectors
from governance.controls.catalog import FrameworkInfo, Item, MappingNote
from governance.controls.models import EvidenceThreshold
from governance.controls.registry import HIGHER, Control, ControlResult, Figure, Status, Threshold

# An item nothing in the catalog answers.
NO_CONTROL = "no_control"
ITEM_STATUS_LABELS = {**{str(value): str(label) for value, label in Status.choices}, NO_CONTROL: "No control"}
# Gaps first: nothing answers the item or what answers it is not met, then partly met; then what
# cannot be measured yet; what is met last.
ITEM_STATUS_ORDER = (Status.NOT_MET, NO_CONTROL, Status.PARTLY, Status.NOT_APPLICABLE, Status.MET)
CONTROL_STATUS_ORDER = registry.STATUS_ORDER
# Filters the pages and the API offer: one status, or every gap at once.
GAPS = "gaps"
GAP_STATUSES = frozenset({Status.NOT_MET, Status.PARTLY, NO_CONTROL})

UNIT_WORDS = {"hours": ("hour", "hours"), "days": ("day", "days")}


def number_text(value: float) -> str:
    """A figure's number as people read it: whole numbers without decimals, others to one."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def with_unit(value: float, unit: str) -> str:
    text = number_text(value)
    if unit == "%":
        return f"{text} %"
    if unit in UNIT_WORDS:
        one, many = UNIT_WORDS[unit]
        return f"{text} {one if value == 1 else many}"
    return text


def threshold_text(threshold: Threshold, unit: str, better: str) -> str:
    """The target in words: "at least 98 % (partly met from 90 %)", "at most 0"."""
    bound = "at least" if better == HIGHER else "at most"
    text = f"{bound} {with_unit(threshold.met, unit)}"
    if threshold.partly is not None:
        direction = "from" if better == HIGHER else "up to"
        text += f" (partly met {direction} {with_unit(threshold.partly, unit)})"
    return text


@dataclass(frozen=True)
class FigureView:
    """A judged figure with the words the pages show."""

    figure: Figure
    value_text: str
    threshold_text: str
    status_label: str
    # Who set the organisation's threshold, when and why (read on a control's own page only).
    set_by: str = ""
    set_at: datetime | None = None
    reason: str = ""

    @classmethod
    def of(cls, figure: Figure, setters: Mapping[str, EvidenceThreshold] | None = None) -> FigureView:
        row = (setters or {}).get(figure.key) if not figure.threshold_is_default else None
        return cls(
            figure=figure,
            value_text="—" if figure.value is None else with_unit(figure.value, figure.unit),
            threshold_text=threshold_text(figure.threshold, figure.unit, figure.better),
            status_label=Status(figure.status).label,
            set_by=row.updated_by.label if row is not None else "",
            set_at=row.updated_at if row is not None else None,
            reason=row.reason if row is not None else "",
        )


@dataclass(frozen=True)
class MappedItem:
    """A framework item a control answers. ``item`` is None when the item no longer exists in
    the framework (an organisation's mapping to an item since removed)."""

    framework: FrameworkInfo | None
    code: str
    item: Item | None
    why: str
    builtin: bool

    @property
    def framework_slug(self) -> str:
        return self.framework.slug if self.framework else ""

    @property
    def title(self) -> str:
        return self.item.title if self.item else ""

    @property
    def anchor(self) -> str:
        return catalog.item_anchor(self.code)


@dataclass(frozen=True)
class ControlView:
    result: ControlResult
    figures: tuple[FigureView, ...]
    items: tuple[MappedItem, ...]

    @property
    def control(self) -> Control:
        return self.result.control

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def status_label(self) -> str:
        return Status(self.result.status).label

    @property
    def is_gap(self) -> bool:
        return self.result.status in GAP_STATUSES

    def items_by_framework(self) -> list[tuple[FrameworkInfo | None, list[MappedItem]]]:
        """The items it answers grouped by framework, in the frameworks' order (an item of a
        framework since removed comes last, under None)."""
        groups: dict[str, tuple[FrameworkInfo | None, list[MappedItem]]] = {}
        for mapped in self.items:
            groups.setdefault(mapped.framework_slug, (mapped.framework, []))[1].append(mapped)
        return list(groups.values())


@dataclass(frozen=True)
class ItemView:
    item: Item
    status: str
    controls: tuple[ControlView, ...]
    unknown_controls: tuple[str, ...] = ()  # mapped ids no app registers (shown, not judged)

    @property
    def status_label(self) -> str:
        return ITEM_STATUS_LABELS[self.status]

    @property
    def anchor(self) -> str:
        return catalog.item_anchor(self.item.code)

    @property
    def is_gap(self) -> bool:
        return self.status in GAP_STATUSES


@dataclass(frozen=True)
class FrameworkView:
    framework: FrameworkInfo
    items: tuple[ItemView, ...]  # in the framework's own order

    @property
    def coverage(self) -> dict[str, int]:
        """How many items are met, partly met, not met, not applicable, and have no control."""
        counts = dict.fromkeys(ITEM_STATUS_LABELS, 0)
        for item in self.items:
            counts[item.status] += 1
        return counts

    @property
    def gap_count(self) -> int:
        return sum(1 for item in self.items if item.is_gap)

    def items_gaps_first(self) -> list[ItemView]:
        """Gaps first (not met, no control, partly met), then not applicable, then met; in the
        framework's order within each."""
        rank: dict[str, int] = {status: index for index, status in enumerate(ITEM_STATUS_ORDER)}
        return sorted(self.items, key=lambda view: rank[view.status])


def item_status(statuses: Iterable[str]) -> str:
    """The status of an item from those of the registered controls mapped to it."""
    found = list(statuses)
    if not found:
        return NO_CONTROL
    applicable = [status for status in found if status != Status.NOT_APPLICABLE]
    if not applicable:
        return Status.NOT_APPLICABLE
    if all(status == Status.MET for status in applicable):
        return Status.MET
    if all(status == Status.NOT_MET for status in applicable):
        return Status.NOT_MET
    return Status.PARTLY


def gaps_first(views: Iterable[ControlView]) -> list[ControlView]:
    """Controls whose evidence falls short first, then the rest, each in catalog order."""
    rank: dict[str, int] = {status: index for index, status in enumerate(CONTROL_STATUS_ORDER)}
    return sorted(views, key=lambda view: rank[view.status])


def _mapped_items(notes: Sequence[MappingNote], frameworks: Mapping[str, FrameworkInfo]) -> dict[str, list[MappedItem]]:
    """Control id → the items it answers, in the frameworks' order, then by code."""
    order = {slug: index for index, slug in enumerate(frameworks)}
    found: dict[str, dict[tuple[str, str], MappedItem]] = defaultdict(dict)
    for note in notes:
        info = frameworks.get(note.framework)
        mapped = MappedItem(
            framework=info,
            code=note.code,
            item=info.item(note.code) if info else None,
            why=note.why,
            builtin=note.builtin,
        )
        # The data file's reason wins over a repeated organisation's row for the same item.
        found[note.control_id].setdefault((note.framework, note.code), mapped)
    return {
        control_id: sorted(items.values(), key=lambda m: (order.get(m.framework_slug, len(order)), _item_rank(m)))
        for control_id, items in found.items()
    }


def _item_rank(mapped: MappedItem) -> tuple[int, str]:
    if mapped.framework is None or mapped.item is None:
        return (10**6, mapped.code)
    return (mapped.framework.items.index(mapped.item), mapped.code)


def _view(result: ControlResult, items: Sequence[MappedItem], setters: Mapping[str, Any] | None = None) -> ControlView:
    return ControlView(
        result=result,
        figures=tuple(FigureView.of(figure, setters) for figure in result.figures),
        items=tuple(items),
    )


def control_views() -> list[ControlView]:
    """Every registered control, measured now, with the items it answers; gaps first. Queries:
    the thresholds, the mappings, the organisation's frameworks (two) and each control's own."""
    thresholds = selectors.thresholds()
    frameworks = {info.slug: info for info in catalog.frameworks()}
    mapped = _mapped_items(catalog.mapping_notes(), frameworks)
    views = [_view(result, mapped.get(result.control.id, [])) for result in registry.evaluate_all(thresholds)]
    return gaps_first(views)


def control_view(control_id: str) -> ControlView | None:
    """One control measured now, with who set each organisation's threshold and the items it
    answers; None when no app registers it."""
    found = registry.control(control_id)
    if found is None:
        return None
    rows = {
        row.figure_key: row
        for row in EvidenceThreshold.objects.filter(figure_key__startswith=f"{found.id}.").select_related("updated_by")
    }
    thresholds = {key: Threshold(met=row.met, partly=row.partly) for key, row in rows.items()}
    frameworks = {info.slug: info for info in catalog.frameworks()}
    mapped = _mapped_items(catalog.mapping_notes(), frameworks)
    return _view(registry.evaluate(found, thresholds), mapped.get(found.id, []), rows)


def _framework_view(
    info: FrameworkInfo, notes: Sequence[MappingNote], judged: Mapping[str, ControlView]
) -> FrameworkView:
    by_item: dict[str, set[str]] = defaultdict(set)
    for note in notes:
        if note.framework == info.slug:
            by_item[note.code].add(note.control_id)
    items = []
    for item in info.items:
        ids = sorted(by_item.get(item.code, ()))
        controls = tuple(judged[control_id] for control_id in ids if control_id in judged)
        items.append(
            ItemView(
                item=item,
                status=item_status(view.status for view in controls),
                controls=controls,
                unknown_controls=tuple(control_id for control_id in ids if control_id not in judged),
            )
        )
    return FrameworkView(framework=info, items=tuple(items))


def _judge(control_ids: set[str], mapped: Mapping[str, Sequence[MappedItem]] | None = None) -> dict[str, ControlView]:
    """The named registered controls, each measured once (with the items they answer when
    ``mapped`` is given)."""
    thresholds = selectors.thresholds()
    judged = {}
    for control in registry.controls():
        if control.id in control_ids:
            judged[control.id] = _view(registry.evaluate(control, thresholds), (mapped or {}).get(control.id, []))
    return judged


def framework_views() -> list[FrameworkView]:
    """Every framework with each item's status: every mapped control measured once."""
    infos = catalog.frameworks()
    frameworks = {info.slug: info for info in infos}
    notes = catalog.mapping_notes()
    judged = _judge({note.control_id for note in notes}, _mapped_items(notes, frameworks))
    return [_framework_view(info, notes, judged) for info in infos]


def framework_view(slug: str) -> FrameworkView | None:
    """One framework with each item's status; only the controls mapped to it are measured."""
    info = catalog.framework(slug)
    if info is None:
        return None
    notes = catalog.mapping_notes()
    wanted = {note.control_id for note in notes if note.framework == info.slug}
    judged = _judge(wanted)
    return _framework_view(info, notes, judged)


def filter_items(items: Iterable[ItemView], status: str) -> list[ItemView]:
    """``status`` is an item status, ``gaps`` (not met, partly met, no control) or empty (all)."""
    if not status:
        return list(items)
    if status == GAPS:
        return [view for view in items if view.is_gap]
    return [view for view in items if view.status == status]


def filter_controls(views: Iterable[ControlView], *, status: str = "", app: str = "") -> list[ControlView]:
    """``status`` is a control status or ``gaps`` (not met or partly met); ``app`` an app label."""
    found = list(views)
    if status == GAPS:
        found = [view for view in found if view.is_gap]
    elif status:
        found = [view for view in found if view.status == status]
    if app:
        found = [view for view in found if view.control.app == app]
    return found
