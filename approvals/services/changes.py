"""Change requests: decisions about something that is not an integration (a runtime policy version
to enforce or roll back), opened by the app that owns it and decided through the same workflow
machinery as any access request — steps, named assignments, the reviewer queue, emails, SLA and
escalation, decisions and their audit trail. They ask for no scope and create no grant: when one
reaches its final status, the handler its app registered in ``approvals.extensions`` applies the
outcome in the same transaction. Separation of duties keeps out the requester and the people the
request names (the version's authors), even when they belong to the reviewer pool."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction

from approvals.extensions import change_handler
from approvals.models import CHANGE_TYPES, OPEN_STATUSES, AccessRequest, RequestStatus, RequestType
from approvals.permissions import can_cancel_change, can_open_change
from approvals.services.requests import apply_change_outcome, audit_after, check_transition, end_open_request
from approvals.services.routing import start_round
from governance.actors import Actor
from governance.audit import audit_record
from governance.exceptions import Conflict, NotAllowed, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters
from inventory.choices import RiskTier

# A change request is decided at this tier: a policy change can alter what every integration may
# do, so its workflow and its reviewers' SLA are those of a high-risk change.
CHANGE_RISK_TIER = RiskTier.HIGH
SUBJECT_LABEL_MAX = 200
SUBJECT_URL_MAX = 300
SUBJECT_KEY_MAX = 100


def _checked_label(subject_label: str) -> str:
    label = (subject_label or "").strip()
    if not label:
        raise ValidationFailed.on("subject_label", "Say what the change is about.")
    if len(label) > SUBJECT_LABEL_MAX:
        raise ValidationFailed.on("subject_label", f"At most {SUBJECT_LABEL_MAX} characters.")
    if has_control_characters(label):
        raise ValidationFailed.on("subject_label", SINGLE_LINE_MESSAGE)
    return label


def _checked_url(subject_url: str) -> str:
    """A path on the portal (pages and emails link to it): never another site or a script."""
    url = (subject_url or "").strip()
    if not url:
        return ""
    local = url.startswith("/") and not url.startswith("//") and "\\" not in url
    if not local or len(url) > SUBJECT_URL_MAX or any(ch.isspace() for ch in url) or has_control_characters(url):
        raise ValidationFailed.on(
            "subject_url", f"A path on the portal, such as /runtime/policies/7/ (at most {SUBJECT_URL_MAX} characters)."
        )
    return url


def _checked_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The payload as stored (plain JSON) and the subject key it names (its ``version_id``)."""
    if not isinstance(payload, Mapping):
        raise ValidationFailed.on("payload", "The payload is a JSON object.")
    try:
        stored = json.loads(json.dumps(dict(payload)))
    except (TypeError, ValueError) as exc:
        raise ValidationFailed.on("payload", "The payload must be plain JSON.") from exc
    version_id = stored.get("version_id")
    if isinstance(version_id, bool) or not isinstance(version_id, (int, str)) or str(version_id).strip() == "":
        raise ValidationFailed.on("payload", "The payload names what changes in its version_id.")
    key = str(version_id).strip()
    if len(key) > SUBJECT_KEY_MAX or has_control_characters(key):
        # The key is stored in a bounded column (PostgreSQL refuses a longer one with an error).
        raise ValidationFailed.on("payload", f"The version_id is one line of at most {SUBJECT_KEY_MAX} characters.")
    return stored, key


def _checked_type(type: str) -> str:
    if type not in CHANGE_TYPES:
        raise ValidationFailed.on("type", f"Not a change request type (known: {', '.join(sorted(CHANGE_TYPES))}).")
    if change_handler(type) is None:
        # Nothing would apply its outcome: better refused now than decided in vain.
        raise Conflict(f"Nothing is set up to apply a {RequestType(type).label.lower()}: it cannot be requested now.")
    return str(type)


def _refuse_second_open(type: str, key: str, label: str) -> None:
    existing = AccessRequest.objects.filter(type=type, subject_key=key, status__in=OPEN_STATUSES).first()
    if existing is not None:
        raise Conflict(f"{label}: request #{existing.pk} for the same change is still open.")


def change_request_open(
    *,
    actor: Actor | User,
    type: str,
    subject_label: str,
    subject_url: str,
    payload: Mapping[str, Any],
    justification: str = "",
    excluded_reviewers: Sequence[User] = (),
) -> AccessRequest:
    """Open a change request of ``type`` (``policy_change``) about ``subject_label`` and start
    round 1 of its own workflow; audited as ``access_request.created``, the requester (the
    actor, or whom the system acts for) accountable. ``payload`` is handed back to the type's
    handler when the request is decided; it names its subject in ``version_id``. Neither the
    requester nor ``excluded_reviewers`` may decide it, and they are never assigned.

    Refused: an unknown type, an empty or multi-line label, a link that is not a portal path, a
    payload without a one-line ``version_id`` of at most 100 characters or not plain JSON (400);
    an auditor (403); no handler
    registered for the type, or an open request of the same type for the same ``version_id``
    (409)."""
    resolved = Actor.coerce(actor)
    requester = resolved.on_behalf_of or resolved.user
    if not resolved.is_system and not can_open_change(resolved.user):
        raise NotAllowed("Auditors read; they cannot ask for a change.")
    checked_type = _checked_type(type)
    label = _checked_label(subject_label)
    url = _checked_url(subject_url)
    stored, key = _checked_payload(payload)
    excluded_ids = sorted({user.pk for user in excluded_reviewers} - {requester.pk})
    with transaction.atomic():
        _refuse_second_open(checked_type, key, label)
        try:
            # The unique index settles two requests opened at the same moment.
            with transaction.atomic():
                req = AccessRequest.objects.create(
                    type=checked_type,
                    integration=None,
                    requester=requester,
                    justification=justification,
                    risk_tier=CHANGE_RISK_TIER,
                    subject_label=label,
                    subject_url=url,
                    subject_key=key,
                    payload=stored,
                    excluded_reviewer_ids=excluded_ids,
                )
        except IntegrityError as exc:
            raise Conflict(f"{label}: a request for the same change was opened meanwhile.") from exc
        excluded_names = sorted(User.objects.filter(pk__in=excluded_ids).values_list("username", flat=True))
        audit_record(
            actor=resolved,
            action="access_request.created",
            target=req,
            owner=requester,
            after={**audit_after(req), "requester": requester.username, "excluded_reviewers": excluded_names},
            reason=justification,
        )
        start_round(req, actor=resolved)
    return req


def change_request_cancel(*, actor: Actor | User, request: AccessRequest, reason: str) -> AccessRequest:
    """Cancel an open change request without a decision (say, the version it names was edited or
    retired): its steps end, it is audited as ``access_request.cancelled`` and its handler hears
    ``"cancelled"`` in this transaction. The requester, an IAM admin or the system may.

    Refused: no reason (400), anyone else (403), a request that is not a change request (400) or
    no longer open (409)."""
    resolved = Actor.coerce(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed.on("reason", "Say why the request is cancelled.")
    with transaction.atomic():
        req = AccessRequest.objects.select_for_update().get(pk=request.pk)
        if not req.is_change:
            raise ValidationFailed.on("request", "Only a change request is cancelled this way.")
        if not resolved.is_system and not can_cancel_change(resolved.user, req):
            raise NotAllowed("Only the requester or an IAM admin can cancel this request.")
        check_transition(req, RequestStatus.CANCELLED)
        before = end_open_request(req, status=RequestStatus.CANCELLED, reason=reason, author=resolved.user)
        audit_record(
            actor=resolved,
            action="access_request.cancelled",
            target=req,
            owner=req.accountable_owner,
            before={"status": before},
            after=audit_after(req),
            reason=reason,
        )
        apply_change_outcome(req, status=RequestStatus.CANCELLED, actor=resolved)
    request.refresh_from_db()
    return req
