"""Helpers of the inventory and discovery evidence tests: a control's figures as the portal
judges them, integrations made active with their grants, and which names a list page shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from governance.actors import Actor
from governance.controls import registry
from governance.controls.registry import Figure, Threshold
from governance.models import User
from inventory import services
from inventory.models import Grant, Integration


def figures(control_id: str, thresholds: Mapping[str, Threshold] | None = None) -> dict[str, Figure]:
    """The control's figures, judged against ``thresholds`` (the defaults for the others)."""
    control = registry.control(control_id)
    assert control is not None, f"{control_id} is not registered"
    return {figure.key: figure for figure in registry.evaluate(control, thresholds or {}).figures}


def activate(integration: Integration, approver: User, *, expires_at: datetime | None = None) -> list[Grant]:
    """Make it active with a grant of each requested scope, as approvals does on approval."""
    actor = Actor.system(on_behalf_of=integration.business_owner)
    integration.refresh_from_db()
    if integration.status == "draft":
        services.integration_transition(actor=actor, integration=integration, to_status="pending")
    services.integration_transition(actor=actor, integration=integration, to_status="active")
    with transaction.atomic():
        return services.grant_create_many(
            actor=actor,
            integration=integration,
            scopes=list(integration.requested_scopes.all()),
            source_type="tests",
            source_id="1",
            approvers=[approver],
            expires_at=expires_at,
        )


def records_of(figure: Figure) -> list[Mapping[str, Any]]:
    """Every record behind ``figure``."""
    assert figure.records is not None
    return list(figure.records())


def record_names(figure: Figure, column: str = "name") -> set[Any]:
    """The ``column`` of every record behind ``figure``."""
    return {record[column] for record in records_of(figure)}


def names_listed(client: Any, url: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` the page at ``url`` lists as a link."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    page = response.content.decode()
    return {name for name in names if f">{name}</a>" in page}
