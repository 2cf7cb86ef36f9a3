"""Short-lived, per-process copies of configuration the token endpoint reads on every exchange
(trusted issuers, resource systems, running campaigns' deadlines). Each is kept a few seconds
and dropped at once in this process when its row is saved here (``runtime.apps`` connects the
model signals); another process sees a change within the entry's lifetime.

Only configuration is kept here, never what decides access at the moment of the exchange: the
integration's status, its owner, its binding, its grants and an issuer's ``is_active`` are read
fresh on every exchange, so the kill switch, a revocation or a deactivated issuer bite on the
very next request in every process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")
_ALL: list[TtlCache[Any]] = []


class TtlCache(Generic[Value]):
    """Values by key, each kept ``seconds`` after it was loaded. Thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        self._lock = threading.Lock()
        _ALL.append(self)

    def get(self, key: Hashable, load: Callable[[], Value]) -> Value:
        # The wall clock (the one the tests move); a clock set back makes every entry stale.
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and 0 <= now - entry[0] < self.seconds:
            return entry[1]
        value = load()
        with self._lock:
            self._entries[key] = (now, value)
        return value

    def clear(self, *_: Any, **__: Any) -> None:
        """Forget everything (also usable as a signal receiver)."""
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    for cache in _ALL:
        cache.clear()
