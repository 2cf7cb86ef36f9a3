"""The control catalog's nav, registered from ``ControlsConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register them."""
