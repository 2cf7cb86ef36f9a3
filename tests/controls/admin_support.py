"""A control registered for the catalog's admin tests only: two figures, a share where higher is
better and a count where lower is, with known values and defaults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from governance.controls import registry
from governance.controls.registry import LOWER, Control, Figure, Threshold

TEST_CONTROL_ID = "test-catalog-control"
SHARE_KEY = f"{TEST_CONTROL_ID}.share"
OPEN_KEY = f"{TEST_CONTROL_ID}.open_items"


def _evidence() -> list[Figure]:
    return [
        Figure(key=SHARE_KEY, label="Share owned", value=95.0, threshold=Threshold(met=98, partly=90), unit="%"),
        Figure(
            key=OPEN_KEY,
            label="Open items",
            value=3,
            threshold=Threshold(met=0, partly=5),
            unit="count",
            better=LOWER,
        ),
    ]


@pytest.fixture
def catalog_control(monkeypatch: pytest.MonkeyPatch) -> Iterator[Control]:
    control = Control(
        id=TEST_CONTROL_ID,
        title="Test catalog control",
        description="A control the admin tests register.",
        app="tests",
        evidence=_evidence,
        order=99,
    )
    monkeypatch.setitem(registry._CONTROLS, TEST_CONTROL_ID, control)
    yield control
