"""Helpers for django-simple-history where the ORM's bulk paths skip it."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models
from django.utils import timezone

from governance.models import User


def history_record_many(
    instances: Sequence[models.Model],
    *,
    user: User | None,
    reason: str = "",
    history_type: str = "~",
    batch_size: int = 1000,
) -> None:
    """Write one historical row per instance, as ``save()`` would, after a bulk ``update()``.

    django-simple-history's ``bulk_update_with_history`` saves row by row, far too slowly for the
    bulk jobs; this writes the historical rows with one ``bulk_create`` from the instances'
    current field values.
    """
    if not instances:
        return
    model = type(instances[0])
    # ``history`` is put on the model class at run time by django-simple-history (untyped).
    history_model = model.history.model  # type: ignore[attr-defined]
    tracked = {f.attname for f in history_model._meta.concrete_fields}
    now = timezone.now()
    rows = []
    for obj in instances:
        values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields if f.attname in tracked}
        rows.append(
            history_model(
                **values,
                history_date=now,
                history_type=history_type,
                history_user=user,
                history_change_reason=reason[:100] if reason else None,
            )
        )
    history_model.objects.bulk_create(rows, batch_size=batch_size)
