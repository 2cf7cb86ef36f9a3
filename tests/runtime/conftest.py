"""Runtime fixtures: a live workload-token issuer the portal may fetch keys from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from inventory import issuer_keys
from tests.runtime.issuer_support import TestIssuer


@pytest.fixture(autouse=True)
def _fresh_issuer_key_cache() -> Iterator[None]:
    """Each test starts without keys cached in the process (ids repeat across tests)."""
    issuer_keys.forget()
    yield
    issuer_keys.forget()


@pytest.fixture
def make_test_issuer(settings: Any) -> Iterator[Callable[..., TestIssuer]]:
    """Start live issuers (``make_test_issuer("RS256")``); each is allow-listed for outbound
    fetches and stopped at the end of the test."""
    started: list[TestIssuer] = []

    def make(algorithm: str = "ES256") -> TestIssuer:
        issuer = TestIssuer(algorithm)
        started.append(issuer)
        settings.OUTBOUND_ALLOWED_HOSTS = [*settings.OUTBOUND_ALLOWED_HOSTS, issuer.host]
        return issuer

    yield make
    for issuer in started:
        issuer.stop()


@pytest.fixture
def test_issuer(make_test_issuer: Callable[..., TestIssuer]) -> TestIssuer:
    """A live ES256 issuer (discovery + JWKS over HTTP on 127.0.0.1), allow-listed for fetches."""
    return make_test_issuer()
