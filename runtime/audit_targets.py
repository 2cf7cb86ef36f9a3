"""How the audit trail names and links runtime policy versions (governance.targets)."""

from __future__ import annotations

from django.urls import reverse


def register() -> None:
    from governance.targets import register_target
    from runtime import selectors
    from runtime.models import PolicyVersion

    register_target(
        PolicyVersion._meta.label_lower,
        visible=selectors.policy_versions_for,
        label=lambda obj: f"Policy version {obj.number} — {obj.title}",
        url=lambda obj: reverse("runtime:policy-detail", args=[obj.pk]),
    )
