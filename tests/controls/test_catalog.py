"""The catalog merges the data file's frameworks and mappings with the organisation's rows in a
fixed number of queries, reading the data files once per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governance.controls import catalog
from governance.controls.models import ControlMapping, Framework, FrameworkItem
from governance.models import User

pytestmark = pytest.mark.django_db


def _own_framework(creator: User, slug: str, items: int) -> Framework:
    framework = Framework.objects.create(
        slug=slug, name=f"Standard {slug}", source_url="https://intranet.example.com/std", created_by=creator
    )
    FrameworkItem.objects.bulk_create(
        FrameworkItem(framework=framework, code=f"STD-{n:02d}", title=f"Requirement {n}", order=n) for n in range(items)
    )
    return framework


@pytest.mark.parametrize("size", [1, 15])
def test_frameworks_lists_builtin_then_own_in_two_queries(
    size: int, iam_admin: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    for n in range(size):
        _own_framework(iam_admin, f"own-{n:02d}", items=size)
    with django_assert_num_queries(2):
        infos = catalog.frameworks()
    builtin = [info for info in infos if info.builtin]
    own = [info for info in infos if not info.builtin]
    assert [info.slug for info in infos[: len(builtin)]] == [info.slug for info in catalog.builtin_frameworks()]
    assert len(own) == size
    assert all(len(info.items) == size for info in own)
    assert own[0].items[0] == catalog.Item(framework="own-00", code="STD-00", title="Requirement 0")


def test_framework_by_slug_builtin_needs_no_query_own_two(
    iam_admin: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    _own_framework(iam_admin, "bank-std", items=3)
    with django_assert_num_queries(0):
        info = catalog.framework("nist-csf-2.0")
    assert info is not None and info.builtin
    with django_assert_num_queries(2):
        own = catalog.framework("bank-std")
    assert own is not None and not own.builtin
    assert [item.code for item in own.items] == ["STD-00", "STD-01", "STD-02"]
    assert catalog.framework("nothing-here") is None
    assert catalog.framework("") is None


@pytest.mark.parametrize("size", [1, 30])
def test_mappings_merge_the_file_and_the_organisations_rows_in_one_query(
    size: int, iam_admin: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    for n in range(size):
        ControlMapping.objects.create(
            control_id="audit-trail", framework_slug="nist-csf-2.0", item_code=f"X-{n}", created_by=iam_admin
        )
    ControlMapping.objects.create(
        control_id="kill-switch", framework_slug="nist-csf-2.0", item_code="RS.MA", created_by=iam_admin, note="why"
    )
    with django_assert_num_queries(1):
        table = catalog.mappings()
    assert ("nist-csf-2.0", "RS.MA") in table["kill-switch"]
    assert ("nist-csf-2.0", "RS.MI") in table["kill-switch"], "the file's mapping is kept"
    assert ("nist-csf-2.0", "RS.MA") not in catalog.builtin_mappings()["kill-switch"]
    with django_assert_num_queries(0):
        assert catalog.controls_for_item("nist-csf-2.0", "RS.MA", table) == ["kill-switch"]
        assert "audit-trail" in catalog.controls_for_item("nist-csf-2.0", "PR.PS-04", table)
    notes = [note for note in catalog.mapping_notes() if note.code == "RS.MA"]
    assert len(notes) == 1 and not notes[0].builtin and notes[0].why == "why" and notes[0].pk is not None


def test_controls_for_item_without_a_table_reads_it(
    iam_admin: User, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(1):
        found = catalog.controls_for_item("owasp-nhi-2025", "NHI7:2025")
    assert found == sorted(found) and "jit-credentials" in found


def test_the_data_files_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    original = catalog._read

    def counting(name: str) -> dict[str, Any]:
        reads.append(name)
        return original(name)

    monkeypatch.setattr(catalog, "_read", counting)
    catalog._builtin_data.cache_clear()
    catalog._builtin_mapping_notes.cache_clear()
    for _ in range(3):
        catalog.builtin_frameworks()
        catalog.framework("csa-maestro")
        catalog.builtin_mappings()
    assert sorted(reads) == ["frameworks.json", "mappings.json"]


def test_who_may_see_and_who_may_change_the_catalog(
    iam_admin: User, reviewer: User, auditor: User, outsider: User, make_user: Callable[..., User]
) -> None:
    superuser = make_user("root", is_superuser=True)
    assert [catalog.may_see(user) for user in (iam_admin, reviewer, auditor, outsider, superuser)] == [
        True,
        True,
        True,
        False,
        True,
    ]
    assert [catalog.may_manage(user) for user in (iam_admin, reviewer, auditor, outsider, superuser)] == [
        True,
        False,
        False,
        False,
        True,
    ]


def test_item_anchor_matches_the_framework_page_row_ids() -> None:
    assert catalog.item_anchor("GOVERN 1.6") == "item-govern-16"
    assert catalog.item_anchor("NHI1:2025") == "item-nhi12025"
