"""What apps above approvals plug in. Approvals may not import them, so a change request whose
outcome belongs to another app (a runtime policy version to enforce or roll back) is applied by
the handler that app registers here for the request's type, from its ``AppConfig.ready``::

    register_change_kind(RequestType.POLICY_CHANGE, on_decided=policy_change_decided)

The decision services call ``on_decided(request, status, actor)`` once, inside the transaction
that gives the request its final status — ``"approved"`` after the last step approves,
``"rejected"``, ``"withdrawn"`` or ``"cancelled"`` — with the request already saved in that
status. A handler that raises a ``governance.exceptions.DomainError`` rolls the whole decision
back and the reviewer sees the error. A request of a type with no handler cannot reach a final
status (nothing would apply it): it is refused with a conflict."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from approvals.models import CHANGE_TYPES

if TYPE_CHECKING:
    from approvals.models import AccessRequest
    from governance.actors import Actor

ChangeHandler = Callable[["AccessRequest", str, "Actor"], None]

_HANDLERS: dict[str, ChangeHandler] = {}


def _checked_type(type: str) -> str:
    if type not in CHANGE_TYPES:
        raise ValueError(f"'{type}' is not a change request type (known: {', '.join(sorted(CHANGE_TYPES))}).")
    return str(type)


def register_change_kind(type: str, *, on_decided: ChangeHandler) -> None:
    """Make ``on_decided`` the handler of change requests of ``type`` (a later registration
    replaces an earlier one, so a repeated ``ready()`` is harmless)."""
    _HANDLERS[_checked_type(type)] = on_decided


def unregister_change_kind(type: str) -> None:
    """Forget the handler of ``type`` (if any)."""
    _HANDLERS.pop(_checked_type(type), None)


@contextmanager
def change_kind_registered(type: str, *, on_decided: ChangeHandler) -> Iterator[ChangeHandler]:
    """``on_decided`` handles ``type`` inside the block; whatever was registered before is back
    afterwards (for tests, which must not leave their handler behind)."""
    key = _checked_type(type)
    previous = _HANDLERS.get(key)
    _HANDLERS[key] = on_decided
    try:
        yield on_decided
    finally:
        if previous is None:
            _HANDLERS.pop(key, None)
        else:
            _HANDLERS[key] = previous


def change_handler(type: str) -> ChangeHandler | None:
    """The handler registered for ``type``, or None."""
    return _HANDLERS.get(type)
