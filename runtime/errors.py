"""Why the token endpoint refuses: an RFC 6749 section 5.2 error code (``error``) with a sentence
for the client's developer (``error_description``) and the HTTP status that carries it."""

from __future__ import annotations

# The error codes the token endpoint answers (RFC 6749 section 5.2, RFC 8693 section 2.2.2).
INVALID_REQUEST = "invalid_request"
INVALID_CLIENT = "invalid_client"
INVALID_GRANT = "invalid_grant"
UNAUTHORIZED_CLIENT = "unauthorized_client"
UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
INVALID_SCOPE = "invalid_scope"
INVALID_TARGET = "invalid_target"
ACCESS_DENIED = "access_denied"
# Not a client error: the portal cannot sign right now (its keys are unusable).
TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"


class ExchangeRefused(Exception):
    """A token request the portal will not answer with a token. ``error`` is the RFC code,
    ``description`` says why in words a developer can act on (never a secret, never a token).
    ``reason`` is what the token log records, when it says more than the caller should read
    (the portal's own configuration); by default the description."""

    def __init__(self, error: str, description: str, *, status: int = 400, reason: str = "") -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.reason = reason or description
