"""The observability settings, parsed and checked in one place: the scrape's allowed networks, the
audit stream's file and syslog destinations. A malformed value raises ``ImproperlyConfigured``
naming the setting, at ``manage.py check`` (``governance.observability.checks``) and again where
it is used, so a web process started without the checks still refuses loudly."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SYSLOG_DEFAULT_PORTS = {"udp": 514, "tcp": 601}


def metrics_enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS)


def metrics_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.METRICS_ALLOWED_NETWORKS))


@functools.cache
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    parsed = []
    for value in values:
        try:
            parsed.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {value!r} is not a network ({exc}).") from exc
    return tuple(parsed)


@dataclass(frozen=True)
class FileSinkConfig:
    path: Path
    max_bytes: int
    backups: int


def file_sink_config() -> FileSinkConfig | None:
    """The file sink's settings, or None when AUDIT_STREAM_FILE is empty."""
    if not settings.AUDIT_STREAM_FILE:
        return None
    path = Path(settings.AUDIT_STREAM_FILE)
    if not path.is_absolute():
        path = Path(settings.BASE_DIR) / path
    max_bytes, backups = settings.AUDIT_STREAM_FILE_MAX_BYTES, settings.AUDIT_STREAM_FILE_BACKUPS
    if max_bytes < 0:
        raise ImproperlyConfigured("AUDIT_STREAM_FILE_MAX_BYTES must be 0 (never rotate) or a positive size.")
    # Rotating without a backup would throw away the lines a SIEM agent may not have read yet.
    if max_bytes and backups < 1:
        raise ImproperlyConfigured("AUDIT_STREAM_FILE_BACKUPS must be at least 1 when the file rotates.")
    return FileSinkConfig(path=path, max_bytes=max_bytes, backups=backups)


@dataclass(frozen=True)
class SyslogAddress:
    transport: str  # "udp" or "tcp"
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def syslog_address() -> SyslogAddress | None:
    """The syslog sink's address, or None when AUDIT_STREAM_SYSLOG is empty."""
    value = settings.AUDIT_STREAM_SYSLOG
    if not value:
        return None
    parts = urlsplit(value)
    host = parts.hostname or ""
    problem = ""
    try:
        port = parts.port
    except ValueError:
        port, problem = None, "its port is not a number"
    if parts.scheme not in SYSLOG_DEFAULT_PORTS:
        problem = 'it must start with "udp://" or "tcp://"'
    elif not host:
        problem = "it names no host"
    elif parts.path not in ("", "/") or parts.query or parts.username:
        problem = "only a host and a port may follow the scheme"
    if problem:
        raise ImproperlyConfigured(f"AUDIT_STREAM_SYSLOG {value!r}: {problem} (e.g. udp://siem.example.com:514).")
    return SyslogAddress(parts.scheme, host, port or SYSLOG_DEFAULT_PORTS[parts.scheme])
