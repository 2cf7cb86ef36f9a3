"""Refusing secret values: the inventory records what a credential *is* (type, key id, client
id, fingerprint, dates), never the secret itself, so a value that looks like a secret is refused
wherever it is typed, before it is stored."""

from __future__ import annotations

import math
import re
from collections import Counter

# Well-known secret formats: vendor token prefixes, private keys, JWTs, inline passwords.
_KNOWN = [
    (re.compile(r"(?:^|[\s\"'=:])sk-[A-Za-z0-9_\-]{8,}"), "an API secret key (sk-…)"),
    (re.compile(r"(?:^|[\s\"'=:])sk_(?:live|test)_[A-Za-z0-9]{8,}"), "a Stripe secret key"),
    (
        re.compile(r"(?:^|[\s\"'=:])(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}"),
        "a GitHub token",
    ),
    (re.compile(r"(?:^|[\s\"'=:])xox[abposr]-[A-Za-z0-9\-]{8,}"), "a Slack token"),
    (re.compile(r"(?:^|[^A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?:$|[^A-Z0-9])"), "an AWS access key"),
    (re.compile(r"AIza[0-9A-Za-z_\-]{30,}"), "a Google API key"),
    (re.compile(r"-----BEGIN[ A-Z]*(?:PRIVATE KEY|CERTIFICATE|KEY)-----"), "a PEM key or certificate body"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.?[A-Za-z0-9_\-]*"), "a JWT or bearer token"),
    (
        re.compile(r"(?i)\b(?:password|passwd|pwd|secret|client_secret|api_key|apikey|token)\s*[=:]\s*\S+"),
        "an inline password or secret",
    ),
]
# A fingerprint is allowed: "SHA256:…", or hex pairs separated by colons.
_FINGERPRINT = re.compile(r"^(?:(?:SHA|sha)(?:1|256|384|512):\S+|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){7,})$")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-\.]{24,}")
ENTROPY_MIN_LENGTH = 24
ENTROPY_BITS_PER_CHAR = 4.0


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _high_entropy(token: str) -> bool:
    """A long random-looking string mixing cases and digits. Hex ids and UUIDs (≤ 4 bits per
    character, one case) and fingerprints pass; base64/base62 keys do not."""
    if len(token) < ENTROPY_MIN_LENGTH or _FINGERPRINT.match(token):
        return False
    classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return classes == 3 and shannon_entropy(token) > ENTROPY_BITS_PER_CHAR


def secret_problem(value: str, *, check_entropy: bool = True) -> str | None:
    """Why ``value`` looks like a secret, or None. ``check_entropy`` is off for free text
    (purpose), where only the known formats are refused."""
    if not value:
        return None
    for pattern, what in _KNOWN:
        if pattern.search(value):
            return f"This looks like {what}. Record only its id, name or fingerprint — never the secret value."
    if check_entropy and not _FINGERPRINT.match(value.strip()):
        for token in _TOKEN.findall(value):
            if _high_entropy(token):
                return (
                    "This looks like a secret (a long random string). Record only its id, name or "
                    "fingerprint — never the secret value."
                )
    return None
