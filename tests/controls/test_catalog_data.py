"""The framework catalog's data files hold together: every framework with its publisher, edition
and https source, every item id as the framework writes it (with the edition where its ids carry
one), every mapping naming a control of the portal and an item that exists, with a reason; and the
items the portal does not address stay unmapped."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from governance.controls import catalog, registry

# The controls the portal implements (stable ids: the mapping file and the evidence use them).
CONTROL_IDS = frozenset(
    {
        "named-owners",
        "risk-tiering",
        "time-bound-grants",
        "orphan-handling",
        "kill-switch",
        "workload-identity",
        "shadow-discovery",
        "risk-sized-approval",
        "separation-of-duties",
        "approval-sla",
        "recertification",
        "jit-credentials",
        "policy-as-code",
        "audit-trail",
        "webhooks-ticketing",
    }
)
BUILTIN_SLUGS = [
    "owasp-agentic-2026",
    "owasp-nhi-2025",
    "owasp-llm-2025",
    "owasp-llm-2026",
    "csa-maestro",
    "nist-ai-rmf-1.0",
    "nist-csf-2.0",
]
AI_RMF_CATEGORIES = [
    *(f"GOVERN {n}" for n in range(1, 7)),
    *(f"MAP {n}" for n in range(1, 6)),
    *(f"MEASURE {n}" for n in range(1, 5)),
    *(f"MANAGE {n}" for n in range(1, 5)),
]
CSF_CATEGORIES = (
    "GV.OC GV.RM GV.RR GV.PO GV.OV GV.SC ID.AM ID.RA ID.IM PR.AA PR.AT PR.DS PR.PS PR.IR "
    "DE.CM DE.AE RS.MA RS.AN RS.CO RS.MI RC.RP RC.CO"
).split()
CSF_SUBCATEGORIES = (
    "PR.AA-01 PR.AA-02 PR.AA-03 PR.AA-04 PR.AA-05 PR.AA-06 GV.RR-01 GV.RR-02 GV.RR-03 GV.RR-04 "
    "GV.SC-04 GV.SC-06 GV.SC-07 GV.SC-10 ID.AM-02 ID.AM-04 ID.AM-08 ID.RA-07 PR.PS-04 DE.CM-03 "
    "DE.CM-06 DE.CM-09 GV.PO-01"
).split()


def _load(name: str) -> dict[str, Any]:
    with (catalog.DATA_DIR / name).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _item(slug: str, code: str) -> catalog.Item:
    info = catalog.framework(slug)
    item = info.item(code) if info is not None else None
    assert item is not None, (slug, code)
    return item


def _codes(slug: str) -> list[str]:
    info = catalog.framework(slug)
    assert info is not None, slug
    return [item.code for item in info.items]


def test_data_files_are_versioned() -> None:
    for name in ("frameworks.json", "mappings.json"):
        assert re.fullmatch(r"\d{4}\.\d+\.\d+", _load(name)["version"]), name
    assert catalog.CATALOG_VERSION == _load("frameworks.json")["version"]


def test_the_builtin_frameworks_are_the_seven_asked_for_in_order() -> None:
    assert [info.slug for info in catalog.builtin_frameworks()] == BUILTIN_SLUGS
    assert all(info.builtin for info in catalog.builtin_frameworks())


@pytest.mark.parametrize("slug", BUILTIN_SLUGS)
def test_every_framework_says_who_publishes_it_which_edition_and_where(slug: str) -> None:
    info = catalog.framework(slug)
    assert info is not None
    assert info.name and info.publisher and info.version and info.description
    assert info.source_url.startswith("https://")
    assert info.items
    codes = [item.code for item in info.items]
    assert len(codes) == len(set(codes)), Counter(codes).most_common(3)
    assert all(item.title and item.framework == slug for item in info.items)


def test_owasp_lists_carry_their_ids_and_edition() -> None:
    assert _codes("owasp-agentic-2026") == [f"ASI{n:02d}" for n in range(1, 11)]
    assert _codes("owasp-nhi-2025") == [f"NHI{n}:2025" for n in range(1, 11)]
    assert _codes("owasp-llm-2025") == [f"LLM{n:02d}:2025" for n in range(1, 11)]
    assert _codes("owasp-llm-2026") == [f"LLM{n:02d}:2026" for n in range(1, 11)]


def test_the_2026_llm_edition_is_renumbered_not_copied() -> None:
    assert _item("owasp-llm-2025", "LLM06:2025").title == "Excessive Agency"
    assert _item("owasp-llm-2026", "LLM03:2026").title == "Excessive Agency"
    assert _item("owasp-llm-2026", "LLM06:2026").title == "Unbounded Consumption"
    assert _item("owasp-llm-2026", "LLM08:2026").title == "Hidden Context Exposure"


def test_maestro_has_its_seven_layers() -> None:
    assert _codes("csa-maestro") == [f"L{n}" for n in range(1, 8)]


def test_ai_rmf_has_all_19_categories_and_the_relevant_subcategories() -> None:
    codes = _codes("nist-ai-rmf-1.0")
    categories = [code for code in codes if "." not in code]
    assert categories == AI_RMF_CATEGORIES
    assert {"GOVERN 1.6", "GOVERN 1.7", "GOVERN 2.1", "GOVERN 6.1", "MEASURE 2.4", "MEASURE 2.7"} <= set(codes)


def test_ai_rmf_items_whose_text_is_not_nists_say_so() -> None:
    info = catalog.framework("nist-ai-rmf-1.0")
    assert info is not None
    manage_2_4 = info.item("MANAGE 2.4")
    assert manage_2_4 is not None and manage_2_4.description.startswith("Unconfirmed")
    for code in ("GOVERN 1.7", "GOVERN 2.1", "GOVERN 6.1", "MEASURE 2.4"):
        item = info.item(code)
        assert item is not None and "not NIST's wording" in item.description, code
    for item in info.items:
        if "\u2026" in item.title:
            assert "excerpt" in item.description, item.code


def test_csf_has_its_22_categories_and_the_identity_subcategories() -> None:
    codes = _codes("nist-csf-2.0")
    assert [code for code in codes if "-" not in code] == CSF_CATEGORIES
    assert sorted(code for code in codes if "-" in code) == sorted(CSF_SUBCATEGORIES)
    assert _item("nist-csf-2.0", "PR.AA-05").title.endswith("least privilege and separation of duties")


def test_every_mapping_names_a_portal_control_and_an_existing_item_with_a_reason() -> None:
    data = _load("mappings.json")["controls"]
    assert set(data) == CONTROL_IDS, "every control answers at least one item, and no other id is used"
    for control_id, rows in data.items():
        items = [row["item"] for row in rows]
        assert len(items) == len(set(items)), f"{control_id} maps an item twice"
        for row in rows:
            slug, _, code = row["item"].partition(":")
            info = catalog.framework(slug)
            assert info is not None, row
            assert info.item(code) is not None, row
            assert row["why"].strip(), row


def test_the_registered_controls_are_the_mapped_ones() -> None:
    registered = {control.id for control in registry.controls()}
    assert registered <= CONTROL_IDS, registered - CONTROL_IDS


def test_gaps_stay_honest_what_the_portal_does_not_address_is_unmapped() -> None:
    table = catalog.builtin_mappings()
    for slug, code in [
        ("owasp-llm-2025", "LLM09:2025"),
        ("owasp-llm-2026", "LLM07:2026"),
        ("owasp-llm-2025", "LLM01:2025"),
        ("owasp-agentic-2026", "ASI01"),
        ("nist-ai-rmf-1.0", "GOVERN 3"),
        ("nist-csf-2.0", "PR.AA-06"),
    ]:
        assert catalog.controls_for_item(slug, code, table) == [], (slug, code)


def test_items_the_portal_exists_for_are_mapped() -> None:
    table = catalog.builtin_mappings()
    assert "workload-identity" in catalog.controls_for_item("nist-csf-2.0", "PR.AA-02", table)
    assert "jit-credentials" in catalog.controls_for_item("owasp-nhi-2025", "NHI7:2025", table)
    assert "shadow-discovery" in catalog.controls_for_item("nist-csf-2.0", "ID.AM-04", table)
    assert "kill-switch" in catalog.controls_for_item("owasp-agentic-2026", "ASI10", table)
    assert "separation-of-duties" in catalog.controls_for_item("nist-csf-2.0", "PR.AA-05", table)
    for code in ("LLM06:2025", "LLM03:2026"):
        slug = "owasp-llm-" + code[-4:]
        assert "jit-credentials" in catalog.controls_for_item(slug, code, table)
    unmapped = {
        (info.slug, item.code)
        for info in catalog.builtin_frameworks()
        for item in info.items
        if not catalog.controls_for_item(info.slug, item.code, table)
    }
    nhi = {code for slug, code in unmapped if slug == "owasp-nhi-2025"}
    assert nhi == set(), "the portal is an NHI governance portal: every NHI risk has a control"
