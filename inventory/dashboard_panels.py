"""This app's dashboard panels and daily metrics (governance.dashboard), registered from its ``AppConfig.ready``."""

from __future__ import annotations


def register() -> None:
    """Register them."""
