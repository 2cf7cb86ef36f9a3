"""The control catalog's audit_targets, registered from ``ControlsConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register them."""
