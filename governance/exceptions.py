"""Domain errors. Services raise these; one handler maps them to problem details for the API
(``governance.api.problems``) and one middleware to an error page or form message for the web
(``governance.middleware.DomainErrorMiddleware``). Services never raise Http404 or DRF errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str = "", *, errors: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = {k: list(v) for k, v in (errors or {}).items()}


class ValidationFailed(DomainError):
    """Input breaks a rule; ``errors`` names the field(s) at fault."""

    status = 400
    title = "Invalid input"
    type_slug = "validation-error"

    @classmethod
    def on(cls, field: str, message: str) -> ValidationFailed:
        return cls(message, errors={field: [message]})


class Unprocessable(ValidationFailed):
    """Input that is well formed — it matches the API's published schema — but cannot be acted on:
    it names something that does not exist (a username, a scope code, an id) or breaks a rule the
    schema cannot state (approved scopes must be among the requested ones, an expiry within the
    tier's maximum). The API answers 422, keeping 400 for input that breaks the schema itself;
    the web shows it like any other invalid input."""

    status = 422
    title = "Unprocessable content"
    type_slug = "unprocessable"


class NotAllowed(DomainError):
    """The caller can see the object but may not take this action on it."""

    status = 403
    title = "Not allowed"
    type_slug = "not-allowed"


class NotFound(DomainError):
    """The object does not exist or the caller may not see it (the two look the same)."""

    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DomainError):
    """The object changed under the caller (already decided, withdrawn, suspended...)."""

    status = 409
    title = "Conflict"
    type_slug = "conflict"


class IllegalTransition(Conflict):
    title = "Illegal state transition"
    type_slug = "illegal-transition"


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"
    type_slug = "rate-limited"

    def __init__(self, detail: str = "", *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
