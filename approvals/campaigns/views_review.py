"""The reviewer's page of campaigns: their items grouped by integration, each with a
recommendation shown as a hint (nothing is chosen for them), and its buttons — record the items
given a decision, decide the ticked items together, or accept the recommendations of the ticked
items or of the whole page. A refused post shows the page again with every choice kept. Views
parse input, fetch through the selectors (unseen -> 404) and call services."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from approvals.campaigns import permissions, selectors, services
from approvals.campaigns.forms import ReviewPost
from approvals.campaigns.models import UNDECIDED, ItemDecision, ReviewItem
from approvals.campaigns.recommend import advise_items
from governance.exceptions import DomainError, NotAllowed, NotFound
from governance.models import User
from governance.urls_safety import safe_next
from governance.web import AuthenticatedHttpRequest

PAGE_SIZE = 50


def _shown(qs: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    """What the review page shows of each item, in its order."""
    return qs.select_related(
        "campaign", "integration__business_owner", "reviewer", "reviewer_group", "decided_by"
    ).order_by("campaign__deadline", "integration__name", "integration_id", "pk")


def review_rows(
    items: list[ReviewItem], kept: ReviewPost | None = None, errors: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """Items grouped by integration, with what each grant allows, who approved it and when, how
    much it was used lately, the credential's last rotation and a recommendation — in a fixed
    number of queries. After a refused post, each item keeps the choice, comment and tick the
    reviewer gave it, and shows its error."""
    errors = errors or {}
    rotated = selectors.last_rotations({item.integration_id for item in items})
    groups: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for advice in advise_items(items, now=timezone.now()):
        item = advice.item
        group = groups.setdefault(
            item.integration_id,
            {"integration": item.integration, "last_rotated": rotated.get(item.integration_id), "items": []},
        )
        group["items"].append(
            {
                "item": item,
                "grants": advice.grants,
                "rec": advice.rec,
                "chosen": kept.choices.get(item.pk, "") if kept else "",
                "comment": kept.comments.get(item.pk, "") if kept else "",
                "ticked": bool(kept and item.pk in kept.ticked),
                "error": errors.get(item.pk, ""),
            }
        )
    return list(groups.values())


def _review_page(
    request: AuthenticatedHttpRequest,
    page: Any,
    *,
    state: str = "open",
    campaign_id: str = "",
    kept: ReviewPost | None = None,
    errors: dict[int, str] | None = None,
    bulk_error: str = "",
    next_url: str = "",
) -> HttpResponse:
    items = list(page.object_list)
    return render(
        request,
        "campaigns/review.html",
        {
            "page": page,
            "shown_count": len(items),
            "groups": review_rows(items, kept, errors),
            "state": state,
            "campaign_id": campaign_id,
            "read_only": not permissions.can_write(request.user),
            "decisions": ItemDecision.choices,
            "bulk_decision": kept.bulk_decision if kept else "",
            "bulk_comment": kept.bulk_comment if kept else "",
            "bulk_error": bulk_error,
            # Where a decision returns to: this page, or after a refused post the page it came from.
            "next_url": next_url or request.get_full_path(),
        },
    )


@login_required
@require_GET
def review(request: AuthenticatedHttpRequest) -> HttpResponse:
    """My undecided items (or, with ?state=decided, the ones I decided), grouped by integration."""
    state = request.GET.get("state", "open")
    if state == "decided":
        qs = selectors.review_items_for(request.user).filter(decided_by=request.user)
    else:
        qs = selectors.my_open_items(request.user)
    campaign_id = request.GET.get("campaign", "")
    if campaign_id.isdigit():
        qs = qs.filter(campaign_id=int(campaign_id))
    page = Paginator(_shown(qs), PAGE_SIZE).get_page(request.GET.get("page"))
    return _review_page(request, page, state=state, campaign_id=campaign_id)


def _decide_each(user: User, posted: ReviewPost, items: dict[int, ReviewItem]) -> tuple[list[int], dict[int, str]]:
    """Each item the reviewer chose a decision for, with its own comment; the others stay open."""
    decided: list[int] = []
    errors: dict[int, str] = {}
    for pk, decision in posted.choices.items():
        try:
            services.review_item_decide(actor=user, item=items[pk], decision=decision, comment=posted.comments[pk])
            decided.append(pk)
        except (NotAllowed, NotFound):
            raise
        except DomainError as exc:
            errors[pk] = exc.detail
    return decided, errors


def _apply_review_post(
    user: User, posted: ReviewPost, items: dict[int, ReviewItem]
) -> tuple[list[int], dict[int, str], str]:
    """Run the button the reviewer pressed: the items decided, each refused item's error, and
    what was wrong with the post as a whole (nothing chosen, nothing ticked)."""
    if posted.action == "each":
        if not posted.choices:
            return [], {}, "Nothing was decided: choose Certify or Revoke for an item, or accept the recommendations."
        decided, errors = _decide_each(user, posted, items)
        return decided, errors, ""
    if posted.action == "accept-page":
        targets = [items[pk] for pk in posted.shown]
    else:
        targets = [items[pk] for pk in posted.ticked]
    if not targets:
        return [], {}, "Tick at least one item first."
    if posted.action == "ticked":
        if posted.bulk_decision not in ItemDecision.values:
            return [], {}, "Choose Certify or Revoke for the ticked items."
        result = services.review_items_decide_many(
            actor=user, items=targets, decision=posted.bulk_decision, comment=posted.bulk_comment
        )
    else:
        result = services.review_items_accept_recommendations(actor=user, items=targets)
    problem = next(iter(result.failed.values()), "") if posted.action == "ticked" else ""
    return result.decided, result.failed, problem


def _decided_message(user: User, decided: Iterable[int], accepted: bool) -> str:
    count = len(list(decided))
    waiting = selectors.my_open_items(user).count()
    how = " as recommended" if accepted else ""
    if waiting == 1:
        left = "1 item still waits for your decision."
    elif waiting:
        left = f"{waiting} items still wait for your decision."
    else:
        left = "Nothing else waits for your decision."
    return f"{count} item{'s' if count != 1 else ''} decided{how}. {left}"


@login_required
@require_POST
def review_decide(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The review page's buttons: record the items given a decision (the others stay open),
    decide the ticked items together, or accept the recommendations of the ticked items or of
    every item on the page. A refusal shows the page again with every choice kept."""
    back = safe_next(request, reverse("campaigns:review"))
    posted = ReviewPost.parse(request.POST)
    wanted = posted.wanted()
    if not wanted:
        messages.error(request, "Nothing to decide: choose Certify or Revoke for an item, or tick items first.")
        return redirect(back)
    items = {item.pk: item for item in _shown(selectors.review_items_for(request.user).filter(pk__in=wanted))}
    if len(items) != len(wanted):
        raise Http404
    decided, errors, problem = _apply_review_post(request.user, posted, items)
    if decided:
        messages.success(request, _decided_message(request.user, decided, posted.action.startswith("accept")))
    if not errors and not problem:
        return redirect(back)
    for pk, error in errors.items():
        messages.error(request, f"Item #{pk}: {error}")
    if problem and posted.action == "each":
        messages.error(request, problem)
    still_open = _shown(
        selectors.review_items_for(request.user).filter(pk__in=posted.shown or posted.ticked, status__in=UNDECIDED)
    )
    page = Paginator(still_open, PAGE_SIZE).get_page(1)
    return _review_page(request, page, kept=posted, errors=errors, bulk_error=problem, next_url=back)
