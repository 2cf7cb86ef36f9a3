"""The control registry. Each app declares the controls it implements from its
``AppConfig.ready`` (``register_control``), beside the code that implements them, the same way it
registers home-page panels; the kernel imports none of them.

A control's ``evidence()`` returns its figures, measured now from the portal's data in a fixed
number of queries however large the inventory. A figure carries its default thresholds; the
organisation may set its own (``EvidenceThreshold``), and ``evaluate`` turns value and thresholds
into a status. A figure without a value (nothing to measure: no active integration, no campaign
yet) is not applicable, and says why in ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import TextChoices


class Status(TextChoices):
    MET = "met", "Met"
    PARTLY = "partly", "Partly met"
    NOT_MET = "not_met", "Not met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


# Worst first: a control is as good as its weakest applicable figure; gaps sort first.
STATUS_ORDER = (Status.NOT_MET, Status.PARTLY, Status.MET, Status.NOT_APPLICABLE)

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Threshold:
    """``met``: the value a figure must reach (at least, or at most when lower is better);
    ``partly``: the weaker bound below which it is not met (None: no partly band)."""

    met: float
    partly: float | None = None


@dataclass(frozen=True)
class Figure:
    """One measured number of a control's evidence.

    ``key`` is unique across the catalog (``"<control id>.<name>"``); ``unit`` is ``"%"``,
    ``"count"``, ``"hours"`` or ``"days"``; ``better`` says which way is good. ``detail`` is the
    sentence behind the number ("812 of 840 active integrations"). ``records_url`` links to the
    portal's list of the records behind it; ``records`` yields those records as flat dicts for
    the evidence pack (streamed, read only when the pack is built).
    """

    key: str
    label: str
    value: float | None
    threshold: Threshold
    unit: str = "%"
    better: str = HIGHER
    detail: str = ""
    records_url: str = ""
    records: Callable[[], Iterable[Mapping[str, Any]]] | None = field(default=None, compare=False, repr=False)
    # Set by ``evaluate``: the threshold in force (the organisation's or the default) and status.
    status: str = Status.NOT_APPLICABLE
    threshold_is_default: bool = True


@dataclass(frozen=True)
class Control:
    """``id`` is stable (the mapping file refers to it): lower-case words joined by hyphens."""

    id: str
    title: str
    description: str
    app: str
    evidence: Callable[[], list[Figure]]
    order: int = 50


@dataclass(frozen=True)
class ControlResult:
    control: Control
    figures: list[Figure]
    status: str


_CONTROLS: dict[str, Control] = {}


def register_control(control: Control) -> None:
    _CONTROLS[control.id] = control


def controls() -> list[Control]:
    return sorted(_CONTROLS.values(), key=lambda c: (c.order, c.id))


def control(control_id: str) -> Control | None:
    return _CONTROLS.get(control_id)


def figure_status(value: float | None, threshold: Threshold, better: str) -> str:
    if value is None:
        return Status.NOT_APPLICABLE

    def reaches(bound: float) -> bool:
        return value >= bound if better == HIGHER else value <= bound

    if reaches(threshold.met):
        return Status.MET
    if threshold.partly is not None and reaches(threshold.partly):
        return Status.PARTLY
    return Status.NOT_MET


def worst(statuses: Iterable[str]) -> str:
    """A control's status: its worst applicable figure's; not applicable when none applies."""
    found = set(statuses)
    for status in STATUS_ORDER:
        if status in found:
            return status
    return Status.NOT_APPLICABLE


def evaluate(control: Control, thresholds: Mapping[str, Threshold]) -> ControlResult:
    """Measure ``control`` now and judge each figure against ``thresholds`` (figure key → the
    organisation's threshold; a figure absent from it keeps its default)."""
    figures = []
    for figure in control.evidence():
        own = thresholds.get(figure.key)
        threshold = own or figure.threshold
        status = figure_status(figure.value, threshold, figure.better)
        figures.append(replace(figure, threshold=threshold, status=status, threshold_is_default=own is None))
    return ControlResult(control=control, figures=figures, status=worst(f.status for f in figures))


def evaluate_all(thresholds: Mapping[str, Threshold]) -> Iterator[ControlResult]:
    for registered in controls():
        yield evaluate(registered, thresholds)
