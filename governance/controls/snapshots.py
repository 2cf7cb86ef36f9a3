"""The control catalog's snapshots, registered from ``ControlsConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register them."""
