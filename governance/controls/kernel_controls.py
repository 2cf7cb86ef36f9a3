"""The kernel's own controls (audit trail, webhooks and ticketing): registered from
``ControlsConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register the kernel's controls with the registry."""
