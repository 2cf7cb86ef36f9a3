"""An integration's external app ids: how the identity providers and SaaS suites name it
(``source`` + the provider's app key). Discovery matches the apps it imports against them, so a
(source, app key) belongs to one integration at most."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction

from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, Unprocessable, ValidationFailed
from governance.models import User
from governance.validators import has_control_characters
from inventory import permissions
from inventory.choices import DiscoverySource, IntegrationStatus
from inventory.credentials import secret_problem
from inventory.models import ExternalAppId, Integration
from inventory.selectors import integrations_for
from inventory.services.lifecycle import integration_locked_for

FIELD = "external_app_ids"
# The model's column; an app key is the provider's id of the app, never longer.
APP_KEY_MAX_LENGTH = ExternalAppId._meta.get_field("app_key").max_length or 200
# An integration is one app, registered at a few providers: more than this is a mistake.
EXTERNAL_APP_IDS_MAX = 20

ExternalIds = list[tuple[str, str]]


def external_app_ids_normalise(ids: Iterable[tuple[str, str]]) -> ExternalIds:
    """``ids`` as stored: each (source, app key) with the key trimmed, duplicates dropped, in the
    order given. Raises ``ValidationFailed`` on field ``external_app_ids`` naming every pair that
    breaks a rule (an unknown source; a key that is blank, too long or not on one line; too
    many), or ``Unprocessable`` when a key looks like a secret (a client secret pasted for the
    client id)."""
    invalid: list[str] = []
    refused: list[str] = []
    kept: dict[tuple[str, str], None] = {}
    for number, (source, key) in enumerate(ids, start=1):
        key = str(key).strip()
        problem = _pair_problem(str(source), key)
        if problem:
            invalid.append(f"Item {number}: {problem}")
            continue
        secret = secret_problem(key, check_entropy=False)
        if secret:
            refused.append(f"Item {number}: {secret}")
            continue
        kept[(source, key)] = None
    if len(kept) > EXTERNAL_APP_IDS_MAX:
        invalid.append(f"At most {EXTERNAL_APP_IDS_MAX} per integration ({len(kept)} given).")
    if invalid:
        raise ValidationFailed(f"{FIELD}: {invalid[0]}", errors={FIELD: invalid + refused})
    if refused:
        raise Unprocessable(f"{FIELD}: {refused[0]}", errors={FIELD: refused})
    return list(kept)


def external_app_id_problem(source: str, key: str) -> str | None:
    """Why (``source``, ``key``) cannot be an external app id, or None: the rules of
    ``external_app_ids_normalise`` for one pair (a form checks each line with it)."""
    key = key.strip()
    return _pair_problem(source, key) or secret_problem(key, check_entropy=False)


def _pair_problem(source: str, key: str) -> str | None:
    if source not in DiscoverySource.values:
        return f"Unknown source '{source[:40]}'; choose one of: {', '.join(DiscoverySource.values)}."
    if not key:
        return f"Give the app key {_label(source)} shows for the app."
    if len(key) > APP_KEY_MAX_LENGTH:
        return f"An app key is at most {APP_KEY_MAX_LENGTH} characters."
    if has_control_characters(key):
        return "An app key is one line: no line breaks, tabs or other control characters."
    return None


def _label(source: str) -> str:
    return str(DiscoverySource(source).label)


def external_ids_snapshot(integration: Integration) -> list[str]:
    """The integration's external app ids as the audit trail records them: ``source: app key``
    (as the form takes them), sorted."""
    rows = integration.external_app_ids.order_by("source", "app_key").values_list("source", "app_key")
    return [f"{source}: {key}" for source, key in rows]


def external_app_ids_set(
    *, actor: Actor | User, integration: Integration, ids: Sequence[tuple[str, str]]
) -> list[ExternalAppId]:
    """Replace ``integration``'s external app ids with ``ids`` (pairs of source and app key);
    audited ``integration.external_app_ids_changed`` with the ids before and after, when they
    changed. Rules: the integration's owners, co-owners and IAM admins only; a retired one is
    frozen; each pair is well formed (``external_app_ids_normalise``); a (source, app key) held
    by another integration is refused, whoever holds it. Nothing changes on an error."""
    resolved = Actor.coerce(actor)
    with transaction.atomic():
        locked = integration_locked_for(
            resolved, integration, permissions.can_edit, "Only the integration's owners and IAM admins may change it."
        )
        if locked.status == IntegrationStatus.RETIRED:
            raise Conflict(f"{locked.name} is retired; it cannot be changed.")
        return external_ids_write(resolved, locked, ids)


def external_ids_write(actor: Actor, integration: Integration, ids: Sequence[tuple[str, str]]) -> list[ExternalAppId]:
    """The change itself, for the services that already checked who may change ``integration``
    and hold its row (registration, a change of the integration): validate, replace, audit."""
    wanted = external_app_ids_normalise(ids)
    current = {(row.source, row.app_key): row for row in integration.external_app_ids.all()}
    kept = set(wanted)
    added = [pair for pair in wanted if pair not in current]
    removed = [row.pk for pair, row in current.items() if pair not in kept]
    if not added and not removed:
        return [current[pair] for pair in wanted]
    _held_elsewhere_refuse(actor, integration, added)
    before = external_ids_snapshot(integration)
    ExternalAppId.objects.filter(pk__in=removed).delete()
    try:
        # A savepoint: another integration taking the same key at this moment makes the insert
        # fail on the unique constraint, refused like a key held before.
        with transaction.atomic():
            ExternalAppId.objects.bulk_create(
                [ExternalAppId(integration=integration, source=source, app_key=key) for source, key in added]
            )
    except IntegrityError:
        raise Unprocessable.on(FIELD, "One of these app keys was just recorded for another integration.") from None
    after = external_ids_snapshot(integration)
    audit_record(
        actor=actor,
        action="integration.external_app_ids_changed",
        target=integration,
        owner=integration.business_owner,
        before={FIELD: before},
        after={FIELD: after},
    )
    # Fresh rows, and the integration's prefetched ones (if any) forgotten: they changed.
    getattr(integration, "_prefetched_objects_cache", {}).pop("external_app_ids", None)
    by_pair = {(row.source, row.app_key): row for row in integration.external_app_ids.all()}
    return [by_pair[pair] for pair in wanted]


def _held_elsewhere_refuse(actor: Actor, integration: Integration, pairs: ExternalIds) -> None:
    """Refuse the pairs another integration already holds (one query; the holder is named to
    someone who may see it)."""
    if not pairs:
        return
    wanted = set(pairs)
    candidates = ExternalAppId.objects.filter(
        source__in={source for source, _ in pairs}, app_key__in={key for _, key in pairs}
    ).exclude(integration=integration)
    held = [row for row in candidates.select_related("integration") if (row.source, row.app_key) in wanted]
    if not held:
        return
    messages = [_held_message(actor, row) for row in held]
    raise Unprocessable(f"{FIELD}: {messages[0]}", errors={FIELD: messages})


def _held_message(actor: Actor, row: ExternalAppId) -> str:
    pair = f"{row.source}: {row.app_key}"
    holder = row.integration
    if actor.is_system or integrations_for(actor.user).filter(pk=holder.pk).exists():
        return f"{pair} is already the external app id of {holder.name} (#{holder.pk})."
    return f"{pair} is already the external app id of another integration."
