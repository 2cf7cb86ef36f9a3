"""System checks of the observability settings (``manage.py check``, also before ``migrate`` and
``runserver``): a malformed network or syslog address, a file sink that would rotate lines away,
a guessable scrape token, a multiprocess directory that is not there."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from governance.observability import config

METRICS_TOKEN_MIN_LENGTH = 32


def register() -> None:
    checks.register(observability_settings, checks.Tags.security)


def observability_settings(**_: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for code, parse in (
        ("E101", config.metrics_networks),
        ("E102", config.file_sink_config),
        ("E103", config.syslog_address),
    ):
        try:
            parse()
        except ImproperlyConfigured as exc:
            messages.append(checks.Error(str(exc), id=f"governance.{code}"))
    if settings.METRICS_TOKEN and len(settings.METRICS_TOKEN) < METRICS_TOKEN_MIN_LENGTH:
        messages.append(
            checks.Warning(
                f"METRICS_TOKEN is shorter than {METRICS_TOKEN_MIN_LENGTH} characters: anyone who can reach "
                "/metrics could guess it.",
                hint="python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                id="governance.W101",
            )
        )
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    if directory and not os.path.isdir(directory):
        messages.append(
            checks.Error(
                f"PROMETHEUS_MULTIPROC_DIR {directory!r} is not a directory: create it (empty) before the web "
                "processes start.",
                id="governance.E104",
            )
        )
    return messages
