"""The framework catalog: the public frameworks and their mappings to the portal's controls (a
versioned data file kept in the repository, ``data/frameworks.json`` and ``data/mappings.json``),
merged with what the organisation added in the portal (its own frameworks, items and mappings).

The data files are read once per process. A built-in framework's slug cannot be reused by an
organisation's framework (the services refuse it), so the merge never has to choose between two.
Item codes are written as the framework writes them, with the edition where the framework's ids
carry one (``LLM06:2025`` and ``LLM06:2026`` are different items).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from django.utils.text import slugify

from governance.roles import Role, has_role, is_read_only

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Item:
    """One item of a framework (a risk, a layer, a category or subcategory)."""

    framework: str
    code: str
    title: str
    group: str = ""
    description: str = ""


@dataclass(frozen=True)
class FrameworkInfo:
    """A framework: built in (from the data file) or the organisation's own (rows)."""

    slug: str
    name: str
    publisher: str
    version: str
    source_url: str
    description: str
    items: tuple[Item, ...]
    builtin: bool

    def item(self, code: str) -> Item | None:
        for candidate in self.items:
            if candidate.code == code:
                return candidate
        return None


@dataclass(frozen=True)
class MappingNote:
    """Why a control answers a framework item, and whether the organisation added it."""

    control_id: str
    framework: str
    code: str
    why: str
    builtin: bool
    # The organisation's row (None for the data file's): what its remove button names.
    pk: int | None = None


def _read(name: str) -> dict[str, Any]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def _builtin_data() -> tuple[str, tuple[FrameworkInfo, ...]]:
    data = _read("frameworks.json")
    found = []
    for entry in data["frameworks"]:
        slug = entry["slug"]
        items = tuple(
            Item(
                framework=slug,
                code=row["code"],
                title=row["title"],
                group=row.get("group", ""),
                description=row.get("description", ""),
            )
            for row in entry["items"]
        )
        found.append(
            FrameworkInfo(
                slug=slug,
                name=entry["name"],
                publisher=entry["publisher"],
                version=entry["version"],
                source_url=entry["source_url"],
                description=entry["description"],
                items=items,
                builtin=True,
            )
        )
    return str(data["version"]), tuple(found)


@cache
def _builtin_mapping_notes() -> tuple[str, tuple[MappingNote, ...]]:
    data = _read("mappings.json")
    notes = []
    for control_id, rows in data["controls"].items():
        for row in rows:
            slug, _, code = row["item"].partition(":")
            notes.append(
                MappingNote(control_id=control_id, framework=slug, code=code, why=row.get("why", ""), builtin=True)
            )
    return str(data["version"]), tuple(notes)


CATALOG_VERSION: str = _builtin_data()[0]
MAPPINGS_VERSION: str = _builtin_mapping_notes()[0]


def builtin_frameworks() -> list[FrameworkInfo]:
    """The public frameworks of the data file (no query)."""
    return list(_builtin_data()[1])


def builtin_slugs() -> frozenset[str]:
    return frozenset(info.slug for info in _builtin_data()[1])


def _own_frameworks(slug: str | None = None) -> list[FrameworkInfo]:
    """The organisation's frameworks (all, or the one named): two queries (frameworks, items)."""
    from governance.controls.models import Framework

    rows = Framework.objects.prefetch_related("items").order_by("name", "id")
    if slug is not None:
        rows = rows.filter(slug=slug)
    return [
        FrameworkInfo(
            slug=row.slug,
            name=row.name,
            publisher=row.publisher,
            version=row.version,
            source_url=row.source_url,
            description=row.description,
            items=tuple(
                Item(framework=row.slug, code=item.code, title=item.title, description=item.description)
                for item in row.items.all()
            ),
            builtin=False,
        )
        for row in rows
    ]


def frameworks() -> list[FrameworkInfo]:
    """Every framework: the built-in ones in the data file's order, then the organisation's by
    name (at most two queries)."""
    return builtin_frameworks() + _own_frameworks()


def framework(slug: str) -> FrameworkInfo | None:
    """One framework by slug: built in (no query) or the organisation's (at most two queries)."""
    for info in _builtin_data()[1]:
        if info.slug == slug:
            return info
    own = _own_frameworks(slug) if slug else []
    return own[0] if own else None


def mapping_notes() -> list[MappingNote]:
    """Every mapping with its reason: the data file's, then the organisation's (one query)."""
    from governance.controls.models import ControlMapping

    own = [
        MappingNote(
            control_id=row.control_id,
            framework=row.framework_slug,
            code=row.item_code,
            why=row.note,
            builtin=False,
            pk=row.pk,
        )
        for row in ControlMapping.objects.order_by("framework_slug", "item_code", "control_id")
    ]
    return list(_builtin_mapping_notes()[1]) + own


def builtin_mappings() -> dict[str, set[tuple[str, str]]]:
    """The data file's mappings alone (no query): control id → {(framework slug, item code)}."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for note in _builtin_mapping_notes()[1]:
        found[note.control_id].add((note.framework, note.code))
    return dict(found)


def mappings() -> dict[str, set[tuple[str, str]]]:
    """Control id → the framework items it answers, ``{(framework slug, item code)}``: the data
    file's mappings and the organisation's (one query)."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for note in mapping_notes():
        found[note.control_id].add((note.framework, note.code))
    return dict(found)


def controls_for_item(slug: str, code: str, mapping: Mapping[str, set[tuple[str, str]]] | None = None) -> list[str]:
    """The ids of the controls mapped to one framework item, sorted. Pass ``mapping`` (from
    ``mappings()``) when asking about many items: otherwise each call runs a query."""
    table = mappings() if mapping is None else mapping
    wanted = (slug, code)
    return sorted(control_id for control_id, items in table.items() if wanted in items)


def item_anchor(code: str) -> str:
    """The id of an item's row on its framework's page (``item-`` and the code slugified)."""
    return f"item-{slugify(code)}"


def may_see(user: Any) -> bool:
    """The catalog is read by IAM admins, reviewers and auditors (a superuser counts as an IAM
    admin)."""
    return has_role(user, Role.IAM_ADMIN, Role.REVIEWER, Role.AUDITOR)


def may_manage(user: Any) -> bool:
    """Only IAM admins (and superusers) change the catalog: add frameworks, items, mappings and
    thresholds. An auditor who is also nothing else is read-only whatever else is true."""
    return has_role(user, Role.IAM_ADMIN) and not is_read_only(user)
