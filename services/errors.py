"""The error taxonomy: every failure a creator can meet, each with one sentence and what to do.

Code raises these; pages and the CLI show `str(err)` (the sentence) and never a traceback.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    AUTHENTICATION = "authentication"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    RATE_LIMITED = "rate_limited"
    INVALID_INPUT = "invalid_input"
    MODERATION = "moderation"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    UNEXPECTED = "unexpected"
    TIMEOUT = "timeout"
    CANCELED = "canceled"


_DEFAULT_SENTENCES: dict[ErrorKind, str] = {
    ErrorKind.AUTHENTICATION: "The provider rejected the API key. Check the key in Settings "
    "(or the environment variable) and try again.",
    ErrorKind.INSUFFICIENT_CREDITS: "The provider says the account has run out of credits. "
    "Top up the account, then submit again.",
    ErrorKind.RATE_LIMITED: "The provider is limiting how fast requests may be made. "
    "Wait a minute and try again.",
    ErrorKind.INVALID_INPUT: "The provider refused the inputs. Check the video and image "
    "against the provider's limits and try again.",
    ErrorKind.MODERATION: "The provider's content moderation refused this input. Use a "
    "different video or image; retrying the same input will not help.",
    ErrorKind.UNAVAILABLE: "The provider is unavailable right now. Try again in a few minutes.",
    ErrorKind.NOT_FOUND: "The provider does not know this task. Check the task id.",
    ErrorKind.UNEXPECTED: "The provider sent an answer this app does not understand. "
    "Try again later; if it persists, the provider may have changed its API.",
    ErrorKind.TIMEOUT: "The provider did not answer in time. Try again in a few minutes.",
    ErrorKind.CANCELED: "The task was canceled.",
}


class ReenactError(Exception):
    """Base of every error meant for a person. `str(err)` is the sentence to show."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence

    def __str__(self) -> str:
        return self.sentence


class ConfigError(ReenactError):
    """Configuration is missing or wrong (unknown provider, missing key). CLI exit code 2."""


class InputError(ReenactError):
    """A file or URL the user gave cannot be used. CLI exit code 1."""


class ProviderError(ReenactError):
    """A provider refused or failed a request.

    `retryable` tells the HTTP layer whether repeating the same request may succeed;
    `accepted` is False when the provider provably did not accept a create request
    (so a retry cannot charge twice).
    """

    def __init__(
        self,
        kind: ErrorKind,
        sentence: str | None = None,
        *,
        provider: str | None = None,
        detail: str | None = None,
        field: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        base = sentence or _DEFAULT_SENTENCES[kind]
        if field and sentence is None and kind is ErrorKind.INVALID_INPUT:
            base = f"The provider refused the field '{field}'. " + base
        if detail and detail not in base:
            base = f"{base} (The provider said: {_clip(detail)})"
        super().__init__(base)
        self.kind = kind
        self.provider = provider
        self.detail = detail
        self.field = field
        self.retryable = retryable
        self.retry_after = retry_after
        self.status_code = status_code


class TransportError(ProviderError):
    """The request could not be completed at the network level.

    `sent` is False only when the request provably never left this machine (DNS failure,
    connection refused): only then is repeating a create call safe.
    """

    def __init__(self, sentence: str, *, provider: str | None = None, sent: bool) -> None:
        super().__init__(
            ErrorKind.UNAVAILABLE if not sent else ErrorKind.TIMEOUT,
            sentence,
            provider=provider,
            retryable=True,
        )
        self.sent = sent


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_sentence(kind: ErrorKind) -> str:
    return _DEFAULT_SENTENCES[kind]
