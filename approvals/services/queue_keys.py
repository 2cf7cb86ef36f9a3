"""The queue's copies of what it sorts and filters by: each open assignment carries the rank of
its request's risk tier and the integration's risk score (``StepAssignment.risk_rank`` and
``risk_score``), so the reviewer queue sorted by risk or filtered by tier is one range scan of a
partial index. They are set when an assignment is created and rewritten, in the inventory's
transaction, when an integration is rescored; a change request (no integration) keeps its own
tier."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, QuerySet, Subquery, Value, When
from django.db.models.expressions import OuterRef
from django.db.models.functions import Coalesce

from approvals.models import AccessRequest, RequestStep, StepAssignment
from inventory.choices import RISK_TIER_ORDER
from inventory.models import Integration

NO_RANK = -1


def queue_keys_of(req: AccessRequest) -> tuple[int, int]:
    """(risk rank, risk score) of the request's assignments: its integration's tier and score,
    else the request's own tier and no score."""
    if req.integration is not None:
        return RISK_TIER_ORDER.get(req.integration.risk_tier, NO_RANK), req.integration.risk_score
    return RISK_TIER_ORDER.get(req.risk_tier, NO_RANK), 0


def assignments_rescore(integration: Integration) -> int:
    """Rewrite the keys of the open assignments of ``integration``'s requests that differ from
    its tier and score now, in one statement; returns how many changed."""
    rank = RISK_TIER_ORDER.get(integration.risk_tier, NO_RANK)
    score = integration.risk_score
    stale = StepAssignment.objects.filter(is_open=True, step__request__integration=integration).exclude(
        risk_rank=rank, risk_score=score
    )
    return stale.update(risk_rank=rank, risk_score=score)


def queue_keys_fill(assignments: QuerySet[StepAssignment] | None = None) -> int:
    """Set the keys of ``assignments`` (every open one by default) from their requests in one
    set-based UPDATE (for rows written without them, e.g. seeded in bulk)."""
    qs = StepAssignment.objects.filter(is_open=True) if assignments is None else assignments
    of_step = RequestStep.objects.filter(pk=OuterRef("step_id"))
    rank = Case(
        *(
            When(
                Q(request__integration__risk_tier=tier) | Q(request__integration__isnull=True, request__risk_tier=tier),
                then=Value(value),
            )
            for tier, value in RISK_TIER_ORDER.items()
        ),
        default=Value(NO_RANK),
        output_field=IntegerField(),
    )
    return qs.update(
        risk_rank=Coalesce(Subquery(of_step.annotate(rank=rank).values("rank")[:1]), Value(NO_RANK)),
        risk_score=Coalesce(Subquery(of_step.values("request__integration__risk_score")[:1]), Value(0)),
    )
