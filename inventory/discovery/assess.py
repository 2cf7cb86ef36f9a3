"""The risk of a discovered app, by the same rules that score registered integrations.

An app nobody registered has no declared purpose, data classification or workload identity: what
is known is what the provider shows. So the rule input is built from that: its scopes (the
catalog scope where IAM mapped one, else an unsaved scope carrying the estimate from its name),
whether it acts for people (someone consented for themselves), who runs it (the publisher, else
the app's own name: a third party either way), and one credential, the OAuth grant itself, which
the provider keeps until someone revokes it.
"""

from __future__ import annotations

from inventory import risk
from inventory.choices import Autonomy, CredentialType
from inventory.discovery.models import DiscoveredApp
from inventory.discovery.scopes import estimated_scope, sensitive_marks
from inventory.models import Scope


def app_scopes(app: DiscoveredApp, mapped: dict[str, Scope | None]) -> list[Scope]:
    """The scopes the rules read for ``app``: each mapped catalog scope once, and an estimate for
    each scope nobody mapped."""
    flagged = sensitive_marks(app)
    scopes: list[Scope] = []
    seen: set[int] = set()
    for name in app.scopes or []:
        scope = mapped.get(name)
        if scope is None:
            scopes.append(estimated_scope(app.source, name, flagged=name in flagged))
        elif scope.pk not in seen:
            seen.add(scope.pk)
            scopes.append(scope)
    return scopes


def risk_input(app: DiscoveredApp, mapped: dict[str, Scope | None]) -> risk.RiskInput:
    """The rule input for ``app`` (``mapped``: its scopes' mappings, from ``scopes.mapping_for``).
    Nothing says how autonomous an unregistered app is, so that rule stays silent rather than
    guess."""
    return risk.RiskInput(
        name=app.name,
        acts_for_users=app.people_count > 0,
        autonomy=Autonomy.HUMAN_IN_LOOP,
        vendor=app.publisher or app.name,
        workload_identity="",
        data_classifications=[],
        scopes=app_scopes(app, mapped),
        credentials=[
            risk.CredentialFacts(
                type=CredentialType.OAUTH_GRANT,
                identifier=f"{app.source} grant {app.app_key}",
                created_at=app.first_seen,
                expires_at=None,
                last_rotated_at=None,
            )
        ],
        invokes_ids=[],
    )


def app_assessment(app: DiscoveredApp, mapped: dict[str, Scope | None]) -> risk.Assessment:
    """Score, tier and factors of ``app`` by ``inventory.risk.assess``."""
    return risk.assess(risk_input(app, mapped))
