"""How pages name and link the objects that audit events, histories and grants point at.

The audit trail stores a target as ``app_label.model`` and an id. The kernel imports no app above
it, so each app registers its own models here from ``AppConfig.ready``: which of them a person
may see, how to name one and where its page is. A page resolves every reference it shows at
once, one query per kind of object, however many rows it lists. A person who may not see the
object gets its recorded name without a link.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import QuerySet
from django.utils.text import capfirst

Reference = tuple[str, str]


@dataclass(frozen=True)
class TargetSpec:
    """One registered kind of object: ``visible(user)`` is the app's visibility gate (with what
    ``label`` and ``url`` read selected), ``label(obj)`` its name, ``url(obj)`` its page."""

    visible: Callable[[Any], QuerySet[Any]]
    label: Callable[[Any], str]
    url: Callable[[Any], str]


@dataclass(frozen=True)
class TargetLink:
    """What a page shows for a reference: the kind of object, its name, and its page when the
    viewer may open it (empty otherwise)."""

    kind: str
    text: str
    url: str = ""

    @property
    def prefix(self) -> str:
        """The kind to show before the name, unless the name already says it."""
        return "" if self.text.lower().startswith(self.kind.lower()) else self.kind


_TARGETS: dict[str, TargetSpec] = {}


def _absolute_url(obj: Any) -> str:
    return str(obj.get_absolute_url())


def register_target(
    model_label: str,
    *,
    visible: Callable[[Any], QuerySet[Any]],
    label: Callable[[Any], str] = str,
    url: Callable[[Any], str] = _absolute_url,
) -> None:
    """Name and link the objects of ``model_label`` (``app_label.model``, lower case) in the
    audit trail and histories. Call from the app's ``AppConfig.ready``."""
    _TARGETS[model_label.lower()] = TargetSpec(visible=visible, label=label, url=url)


def kind_name(model_label: str) -> str:
    """The kind of object as people say it ("Access request"), from the model's verbose name;
    an unknown label is made readable as it stands."""
    if not model_label:
        return ""
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError):
        return capfirst(model_label.rsplit(".", 1)[-1].replace("_", " "))
    return str(capfirst(model._meta.verbose_name))


def registered_kinds() -> list[tuple[str, str]]:
    """(model label, kind name) of every registered kind of object, by name: a filter's choices."""
    return sorted(((label, kind_name(label)) for label in _TARGETS), key=lambda pair: pair[1])


def _seen(user: Any, refs: Iterable[Reference]) -> dict[Reference, TargetLink]:
    """The references ``user`` may see, named and linked: one query per registered kind."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for model_label, object_id in refs:
        if model_label in _TARGETS and str(object_id).isdigit():
            wanted[model_label].add(int(object_id))
    found: dict[Reference, TargetLink] = {}
    for model_label, ids in wanted.items():
        spec = _TARGETS[model_label]
        kind = kind_name(model_label)
        for obj in spec.visible(user).filter(pk__in=ids):
            found[(model_label, str(obj.pk))] = TargetLink(kind=kind, text=spec.label(obj), url=spec.url(obj))
    return found


def target_links(user: Any, refs: Iterable[tuple[str, str, str]]) -> list[TargetLink]:
    """One link per ``(model label, id, recorded name)``, in order: named by the app and linked
    when ``user`` may see the object; otherwise the name recorded with it and no link."""
    rows = [(model_label.lower(), str(object_id), recorded) for model_label, object_id, recorded in refs]
    seen = _seen(user, [(model_label, object_id) for model_label, object_id, _ in rows])
    links = []
    for model_label, object_id, recorded in rows:
        link = seen.get((model_label, object_id))
        if link is None:
            number = f"#{object_id}" if object_id else ""
            link = TargetLink(kind=kind_name(model_label), text=recorded or number)
        links.append(link)
    return links


def attach_target_links(
    user: Any, rows: Iterable[Any], *, type_attr: str, id_attr: str, repr_attr: str = "", into: str = "target_link"
) -> None:
    """Set ``into`` on each object of ``rows`` to the ``TargetLink`` of the object it points at
    (``type_attr``/``id_attr``), resolved for all rows at once."""
    listed = list(rows)
    refs = [
        (getattr(row, type_attr), getattr(row, id_attr), getattr(row, repr_attr) if repr_attr else "") for row in listed
    ]
    for row, link in zip(listed, target_links(user, refs), strict=True):
        setattr(row, into, link)


def register_kernel_targets() -> None:
    """The kernel's own objects: people, linked to their admin page for those who may view it
    there (they have no portal page)."""
    from django.urls import reverse

    from governance.models import User

    def visible(user: Any) -> QuerySet[User]:
        allowed = getattr(user, "is_staff", False) and user.has_perm("governance.view_user")
        return User.objects.all() if allowed else User.objects.none()

    register_target(
        User._meta.label_lower,
        visible=visible,
        label=lambda obj: obj.label,
        url=lambda obj: reverse("admin:governance_user_change", args=[obj.pk]),
    )
