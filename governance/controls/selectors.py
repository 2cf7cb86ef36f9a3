"""Reads of the control catalog's rows."""

from __future__ import annotations

from governance.controls.models import EvidenceThreshold
from governance.controls.registry import Threshold


def thresholds() -> dict[str, Threshold]:
    """The organisation's thresholds by figure key: one query."""
    return {row.figure_key: Threshold(met=row.met, partly=row.partly) for row in EvidenceThreshold.objects.all()}
