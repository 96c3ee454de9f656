"""The error taxonomy: every failure a creator can meet, each with one sentence and what to do.

Code raises these; pages and the CLI show `str(err)` (the sentence) and never a traceback.
"""

from __future__ import annotations

import errno
import shutil
from enum import StrEnum
from pathlib import Path


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
    DISK_FULL = "disk_full"
    # A create whose outcome cannot be known (a crash or timeout mid-request).
    UNKNOWN_OUTCOME = "unknown_outcome"
    # A provider that cannot be used as configured (a missing key, a bad base URL).
    CONFIGURATION = "configuration"
    # What came back at the result link was not a usable video.
    INVALID_RESULT = "invalid_result"


# A refusal of the content itself: the same files are refused again, so the card offers other
# inputs instead of Retry (see `retry_helps`), and every moderation sentence ends the same way.
MODERATION_NO_RETRY = "a retry with the same inputs will be refused again."


def retry_helps(error_kind: str | None) -> bool:
    """Whether sending the same inputs again can succeed after a failure of this kind."""
    return error_kind != ErrorKind.MODERATION.value


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
    f"different video or image; {MODERATION_NO_RETRY}",
    ErrorKind.UNAVAILABLE: "The provider is unavailable right now. Try again in a few minutes.",
    ErrorKind.NOT_FOUND: "The provider does not know this task. Check the task id.",
    ErrorKind.UNEXPECTED: "The provider sent an answer this app does not understand. "
    "Try again later; if it persists, the provider may have changed its API.",
    ErrorKind.TIMEOUT: "The provider did not answer in time. Try again in a few minutes.",
    ErrorKind.CANCELED: "The task was canceled.",
    ErrorKind.DISK_FULL: "The disk is full, so that was not done: free some space and try again.",
}

# What a full disk stopped, said the same way on pages and in the CLI.
DISK_FULL_ARCHIVE = "The disk is full: free some space, then press Retry download."
DISK_FULL_SUBMIT = "The disk is full, so nothing was sent: free some space and submit again."
DISK_FULL_UPLOAD = (
    "The disk is full, so the file was not saved: free some space and add the file again."
)


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


class DiskFullError(ReenactError):
    """The data folder's disk (or the user's quota) has no room. Whatever was being written
    is removed; the same action works again once space is freed, so it is retryable."""

    kind = ErrorKind.DISK_FULL
    retryable = True
    retry_after: float | None = None

    def __init__(self, sentence: str = DISK_FULL_ARCHIVE) -> None:
        super().__init__(sentence)


# Room a write of known size leaves free beyond itself: the database still has to record the
# result (its WAL grows) and thumbnails follow, so the app is never what fills the last byte.
FREE_SPACE_MARGIN = 8 * 1024 * 1024
# An I/O error while less than this is free is the disk being full: SQLite says "disk I/O
# error", not "disk is full", when it cannot even create its shared-memory file.
_NEARLY_FULL = 1024 * 1024
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL, _SQLITE_IOERR = 13, 10  # primary result codes (the low byte of extended ones)


def free_space(folder: Path) -> int | None:
    """Bytes free to this process on `folder`'s disk (its nearest existing parent); None if
    that cannot be told."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def ensure_free_space(folder: Path, size: int, sentence: str = DISK_FULL_ARCHIVE) -> None:
    """Refuse, before a byte is written, a write of known `size` that cannot fit."""
    free = free_space(folder)
    if free is not None and free < size + FREE_SPACE_MARGIN:
        raise DiskFullError(sentence)


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether `exc`, or anything it wraps, means the disk is full: ENOSPC/EDQUOT, SQLite's
    "database or disk is full" (also inside SQLAlchemy's wrapper, by duck typing so nothing
    imports SQLAlchemy for this), or an I/O error while `folder`'s disk has next to no room."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        err = todo.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, DiskFullError):
            return True
        if isinstance(err, OSError) and err.errno in _FULL_ERRNOS:
            return True
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(code, int):
            if code & 0xFF == _SQLITE_FULL:
                return True
            if code & 0xFF == _SQLITE_IOERR and folder is not None:
                free = free_space(folder)
                if free is not None and free < _NEARLY_FULL:
                    return True
        todo.extend((getattr(err, "orig", None), err.__cause__, err.__context__))
    return False


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def default_sentence(kind: ErrorKind) -> str:
    return _DEFAULT_SENTENCES[kind]
