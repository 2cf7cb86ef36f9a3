"""This app's controls (governance.controls.registry), registered from its ``AppConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register them."""
