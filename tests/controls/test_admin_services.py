"""The catalog's services: only IAM admins add frameworks, items, mappings and thresholds; each
change is validated and audited in its own transaction (a failed audit leaves nothing behind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from governance.actors import Actor
from governance.controls import catalog, registry, selectors, services
from governance.controls.models import ControlMapping, EvidenceThreshold, Framework, FrameworkItem
from governance.exceptions import Conflict, ValidationFailed
from governance.models import AuditEvent, User
from tests.controls.admin_support import OPEN_KEY, SHARE_KEY, TEST_CONTROL_ID, catalog_control  # noqa: F401

pytestmark = pytest.mark.django_db

BANK = {"slug": "bank-std", "name": "Bank IT standard", "source_url": "https://intranet.example.com/std"}


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _before(event: AuditEvent) -> dict[str, Any]:
    assert isinstance(event.before, dict), event.before
    return event.before


def _after(event: AuditEvent) -> dict[str, Any]:
    assert isinstance(event.after, dict), event.after
    return event.after


def _field_error(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    return next(iter(exc.value.errors))


class AuditBroke(Exception):
    pass


@pytest.fixture
def broken_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: Any) -> None:
        raise AuditBroke

    monkeypatch.setattr(services, "audit_record", refuse)


@pytest.fixture
def bank(iam_admin: User) -> Framework:
    return services.framework_create(actor=iam_admin, **BANK)


# --- Frameworks and items ----------------------------------------------------------------------


def test_an_iam_admin_adds_a_framework_audited(iam_admin: User) -> None:
    framework = services.framework_create(
        actor=iam_admin, publisher="Bank CISO", version="3.1", description="Internal controls.", **BANK
    )
    assert framework.created_by == iam_admin
    [event] = _events("controls.framework_created")
    assert (event.target_type, event.target_id, event.actor_id) == (
        "controls.framework",
        str(framework.pk),
        iam_admin.pk,
    )
    assert _after(event)["slug"] == "bank-std" and _after(event)["source_url"] == BANK["source_url"]
    info = catalog.framework("bank-std")
    assert info is not None and not info.builtin and info.version == "3.1"


@pytest.mark.parametrize("who", ["outsider", "reviewer", "auditor", "owner"])
def test_only_iam_admins_add_frameworks(who: str, request: pytest.FixtureRequest) -> None:
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        services.framework_create(actor=user, **BANK)
    assert not Framework.objects.exists() and not AuditEvent.objects.filter(action__startswith="controls.").exists()


def test_a_superuser_and_the_system_acting_for_an_admin_may(make_user: Callable[..., User], iam_admin: User) -> None:
    root = make_user("root", is_superuser=True)
    services.framework_create(actor=root, **BANK)
    services.framework_create(actor=Actor.system(on_behalf_of=iam_admin), **{**BANK, "slug": "other"})
    with pytest.raises(PermissionDenied):
        services.framework_create(actor=Actor.system(on_behalf_of=None), **{**BANK, "slug": "third"})
    assert Framework.objects.count() == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "nist-csf-2.0"}, "slug"),
        ({"slug": "NIST-CSF-2.0"}, "slug"),
        ({"slug": "manage"}, "slug"),
        ({"slug": "bank std!"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"name": "  "}, "name"),
        ({"name": "Bank\nstandard"}, "name"),
        ({"source_url": "ftp://files.example.com/std"}, "source_url"),
        ({"source_url": "not a web address"}, "source_url"),
        ({"source_url": ""}, "source_url"),
        ({"version": "x" * 41}, "version"),
    ],
)
def test_a_framework_is_refused_naming_the_field(iam_admin: User, changes: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.framework_create(actor=iam_admin, **{**BANK, **changes})
    assert _field_error(exc) == field
    assert not Framework.objects.exists()


def test_a_framework_id_is_taken_once(iam_admin: User, bank: Framework) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.framework_create(actor=iam_admin, **{**BANK, "name": "Another"})
    assert _field_error(exc) == "slug"


def test_nothing_is_kept_when_the_audit_fails(iam_admin: User, broken_audit: None) -> None:
    with pytest.raises(AuditBroke):
        services.framework_create(actor=iam_admin, **BANK)
    assert not Framework.objects.exists()


def test_items_are_added_in_order_audited(iam_admin: User, bank: Framework) -> None:
    first = services.framework_item_add(actor=iam_admin, framework=bank, code="SEC-01", title="Inventory")
    second = services.framework_item_add(
        actor=iam_admin, framework=bank, code="SEC-02", title="Owners", description="Each system has an owner."
    )
    assert (first.order, second.order) == (0, 1)
    events = _events("controls.framework_item_added")
    assert [event.target_id for event in events] == [str(first.pk), str(second.pk)]
    assert _after(events[0])["framework_slug"] == "bank-std"
    info = catalog.framework("bank-std")
    assert info is not None and [item.code for item in info.items] == ["SEC-01", "SEC-02"]


def test_an_item_code_is_unique_in_its_framework_whatever_its_case(iam_admin: User, bank: Framework) -> None:
    services.framework_item_add(actor=iam_admin, framework=bank, code="SEC-01", title="Inventory")
    with pytest.raises(ValidationFailed) as exc:
        services.framework_item_add(actor=iam_admin, framework=bank, code="sec-01", title="Again")
    assert _field_error(exc) == "code"
    other = services.framework_create(actor=iam_admin, **{**BANK, "slug": "other"})
    services.framework_item_add(actor=iam_admin, framework=other, code="SEC-01", title="Same code elsewhere")
    assert FrameworkItem.objects.filter(code="SEC-01").count() == 2


@pytest.mark.parametrize(
    ("changes", "field"), [({"code": ""}, "code"), ({"title": ""}, "title"), ({"code": "A\tB"}, "code")]
)
def test_an_item_is_refused_naming_the_field(
    iam_admin: User, bank: Framework, changes: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.framework_item_add(actor=iam_admin, framework=bank, **{"code": "SEC-01", "title": "T", **changes})
    assert _field_error(exc) == field


def test_only_iam_admins_add_items(auditor: User, reviewer: User, bank: Framework) -> None:
    for user in (auditor, reviewer):
        with pytest.raises(PermissionDenied):
            services.framework_item_add(actor=user, framework=bank, code="SEC-01", title="Inventory")
    assert not FrameworkItem.objects.exists()


# --- Mappings ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_control")
def test_a_control_is_mapped_to_a_builtin_item_audited(iam_admin: User) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="nist-csf-2.0", item_code="RS.MA", note="Because."
    )
    [event] = _events("controls.mapping_added")
    assert event.target_type == "controls.controlmapping" and event.target_id == str(mapping.pk)
    assert event.after == {
        "control_id": TEST_CONTROL_ID,
        "framework_slug": "nist-csf-2.0",
        "item_code": "RS.MA",
        "note": "Because.",
    }
    assert catalog.controls_for_item("nist-csf-2.0", "RS.MA") == [TEST_CONTROL_ID]


@pytest.mark.usefixtures("catalog_control")
def test_a_control_is_mapped_to_an_item_of_the_organisations_framework(iam_admin: User, bank: Framework) -> None:
    services.framework_item_add(actor=iam_admin, framework=bank, code="SEC-01", title="Inventory")
    services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="bank-std", item_code="SEC-01")
    assert (("bank-std", "SEC-01")) in catalog.mappings()[TEST_CONTROL_ID]


@pytest.mark.usefixtures("catalog_control")
@pytest.mark.parametrize(
    ("control_id", "slug", "code", "field"),
    [
        ("no-such-control", "nist-csf-2.0", "RS.MA", "control_id"),
        (TEST_CONTROL_ID, "no-such-framework", "RS.MA", "framework_slug"),
        (TEST_CONTROL_ID, "", "RS.MA", "framework_slug"),
        (TEST_CONTROL_ID, "nist-csf-2.0", "RS.XX", "item_code"),
        (TEST_CONTROL_ID, "owasp-llm-2025", "LLM06:2026", "item_code"),
        ("kill-switch", "nist-csf-2.0", "RS.MI", "item_code"),
    ],
)
def test_a_mapping_is_refused_naming_the_field(
    iam_admin: User, control_id: str, slug: str, code: str, field: str
) -> None:
    if control_id == "kill-switch":
        assert registry.control(control_id) is not None, "the kill switch control is not registered"
    with pytest.raises(ValidationFailed) as exc:
        services.mapping_add(actor=iam_admin, control_id=control_id, framework_slug=slug, item_code=code)
    assert _field_error(exc) == field
    assert not ControlMapping.objects.exists()


@pytest.mark.usefixtures("catalog_control")
def test_a_mapping_is_added_once(iam_admin: User) -> None:
    services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3")
    with pytest.raises(ValidationFailed):
        services.mapping_add(actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3")
    assert ControlMapping.objects.count() == 1


@pytest.mark.usefixtures("catalog_control")
def test_only_iam_admins_map(auditor: User, outsider: User) -> None:
    for user in (auditor, outsider):
        with pytest.raises(PermissionDenied):
            services.mapping_add(actor=user, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3")
    assert not ControlMapping.objects.exists()


@pytest.mark.usefixtures("catalog_control")
def test_a_mapping_is_removed_audited_and_only_once(iam_admin: User, auditor: User) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3"
    )
    with pytest.raises(PermissionDenied):
        services.mapping_remove(actor=auditor, mapping=mapping)
    services.mapping_remove(actor=iam_admin, mapping=mapping, reason="Not what L3 means.")
    assert not ControlMapping.objects.exists()
    [event] = _events("controls.mapping_removed")
    assert event.target_id == str(mapping.pk) and event.reason == "Not what L3 means."
    assert _before(event)["item_code"] == "L3" and event.after is None
    with pytest.raises(Conflict):
        services.mapping_remove(actor=iam_admin, mapping=mapping)


@pytest.mark.usefixtures("catalog_control")
def test_a_removal_whose_audit_fails_keeps_the_mapping(iam_admin: User, monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = services.mapping_add(
        actor=iam_admin, control_id=TEST_CONTROL_ID, framework_slug="csa-maestro", item_code="L3"
    )

    def refuse(**_: Any) -> None:
        raise AuditBroke

    monkeypatch.setattr(services, "audit_record", refuse)
    with pytest.raises(AuditBroke):
        services.mapping_remove(actor=iam_admin, mapping=mapping)
    assert ControlMapping.objects.filter(pk=mapping.pk).exists()


# --- Thresholds --------------------------------------------------------------------------------


@pytest.mark.usefixtures("catalog_control")
def test_a_threshold_is_set_audited_and_judges_the_figure(iam_admin: User) -> None:
    row = services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, partly=85, reason="Pilot year.")
    assert (row.met, row.partly, row.updated_by) == (95, 85, iam_admin)
    [event] = _events("controls.threshold_set")
    assert event.before == {"default": True, "met": 98, "partly": 90}
    assert _after(event)["met"] == 95 and event.reason == "Pilot year."
    control = registry.control(TEST_CONTROL_ID)
    assert control is not None
    [share, _open] = registry.evaluate(control, selectors.thresholds()).figures
    assert share.status == registry.Status.MET and not share.threshold_is_default


@pytest.mark.usefixtures("catalog_control")
def test_setting_again_replaces_and_the_same_values_write_nothing(iam_admin: User) -> None:
    services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason="Pilot year.")
    services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=96, reason="Pilot year.")
    services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=96, reason="Pilot year.")
    events = _events("controls.threshold_set")
    assert len(events) == 2 and _before(events[1])["met"] == 95 and _after(events[1])["met"] == 96
    assert EvidenceThreshold.objects.get().met == 96


@pytest.mark.usefixtures("catalog_control")
@pytest.mark.parametrize(
    ("key", "met", "partly", "field"),
    [
        (SHARE_KEY, 101, None, "met"),
        (SHARE_KEY, -1, None, "met"),
        (SHARE_KEY, 90, 95, "partly"),
        (SHARE_KEY, 90, 90, "partly"),
        (SHARE_KEY, 90, 100.5, "partly"),
        (SHARE_KEY, float("nan"), None, "met"),
        (SHARE_KEY, "lots", None, "met"),
        (SHARE_KEY, None, None, "met"),
        (OPEN_KEY, -2, None, "met"),
        (OPEN_KEY, 5, 2, "partly"),
        (OPEN_KEY, float("inf"), None, "met"),
        (f"{TEST_CONTROL_ID}.no_such_figure", 1, None, "figure_key"),
        ("no-such-control.share", 1, None, "figure_key"),
    ],
)
def test_a_threshold_is_refused_naming_the_field(iam_admin: User, key: str, met: Any, partly: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.threshold_set(actor=iam_admin, figure_key=key, met=met, partly=partly, reason="Because.")
    assert _field_error(exc) == field
    assert not EvidenceThreshold.objects.exists()


@pytest.mark.usefixtures("catalog_control")
def test_a_count_where_lower_is_better_takes_its_partly_bound_above(iam_admin: User) -> None:
    row = services.threshold_set(actor=iam_admin, figure_key=OPEN_KEY, met=2, partly=10, reason="Backlog.")
    assert (row.met, row.partly) == (2, 10)


@pytest.mark.usefixtures("catalog_control")
def test_a_threshold_needs_a_reason(iam_admin: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason=" ")
    assert _field_error(exc) == "reason"


@pytest.mark.usefixtures("catalog_control")
def test_only_iam_admins_set_thresholds(auditor: User, reviewer: User, outsider: User) -> None:
    for user in (auditor, reviewer, outsider):
        with pytest.raises(PermissionDenied):
            services.threshold_set(actor=user, figure_key=SHARE_KEY, met=95, reason="Because.")
    assert not EvidenceThreshold.objects.exists()


@pytest.mark.usefixtures("catalog_control")
def test_clearing_restores_the_default_audited(iam_admin: User, auditor: User) -> None:
    row = services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason="Pilot year.")
    with pytest.raises(PermissionDenied):
        services.threshold_clear(actor=auditor, figure_key=SHARE_KEY)
    services.threshold_clear(actor=iam_admin, figure_key=SHARE_KEY, reason="Pilot over.")
    assert selectors.thresholds() == {}
    [event] = _events("controls.threshold_cleared")
    assert (event.target_type, event.target_id) == ("controls.evidencethreshold", str(row.pk))
    assert _before(event)["met"] == 95 and event.reason == "Pilot over."
    with pytest.raises(Conflict):
        services.threshold_clear(actor=iam_admin, figure_key=SHARE_KEY)


@pytest.mark.usefixtures("catalog_control")
def test_a_threshold_whose_audit_fails_is_not_kept(iam_admin: User, broken_audit: None) -> None:
    with pytest.raises(AuditBroke):
        services.threshold_set(actor=iam_admin, figure_key=SHARE_KEY, met=95, reason="Pilot year.")
    assert not EvidenceThreshold.objects.exists()
