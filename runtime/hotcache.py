"""Short-lived, per-process copies of configuration the token endpoint reads on every exchange
(trusted issuers, resource systems, running campaigns' deadlines). Each is kept a few seconds
and dropped at once in this process when its row is saved here (``runtime.apps`` connects the
model signals); another process sees a change within the entry's lifetime.

Only configuration is kept here, never what decides access at the moment of the exchange: the
integration's status, its owner, its binding, its grants and an issuer's ``is_active`` are read
fresh on every exchange, so the kill switch, a revocation or a deactivated issuer bite on the
very next request in every process. An issuer's copy (its algorithms, audience, ages and keys
decide which tokens verify) is also confirmed current on every use by its ``updated_at``
(``runtime.workload``): a stale one is dropped and the token verified again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")
_ALL: list[TtlCache[Any]] = []


class TtlCache(Generic[Value]):
    """Values by key, each kept ``seconds`` after it was loaded, at most ``max_entries`` of them.
    Thread-safe. Keys may come from what a client sends (the ``iss`` of a token not verified
    yet), so the copies are bounded: when full, expired entries are dropped, and while still
    full a new value is returned without being kept."""

    def __init__(self, seconds: float, max_entries: int = 1000) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        self._lock = threading.Lock()
        _ALL.append(self)

    def _fresh(self, loaded_at: float, now: float) -> bool:
        # The wall clock (the one the tests move); a clock set back makes every entry stale.
        return 0 <= now - loaded_at < self.seconds

    def get(self, key: Hashable, load: Callable[[], Value]) -> Value:
        now = time.time()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and self._fresh(entry[0], now):
            return entry[1]
        value = load()
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.max_entries:
                self._entries = {kept: held for kept, held in self._entries.items() if self._fresh(held[0], now)}
            if key in self._entries or len(self._entries) < self.max_entries:
                self._entries[key] = (now, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self, *_: Any, **__: Any) -> None:
        """Forget everything (also usable as a signal receiver)."""
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    for cache in _ALL:
        cache.clear()
