"""The demo workload issuer's key: made once, owner-only, and the same key afterwards."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from runtime import demo


def test_the_demo_key_is_made_owner_only_and_kept(settings: Any, tmp_path: Path) -> None:
    settings.RUNTIME_DEMO_KEY_FILE = tmp_path / "demo.pem"
    first = demo.private_key()

    assert stat.S_IMODE((tmp_path / "demo.pem").stat().st_mode) == 0o600
    assert demo.private_key().private_numbers() == first.private_numbers()
    assert demo.public_jwks(first)["keys"][0]["kid"] == demo.DEMO_KEY_ID
