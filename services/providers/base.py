"""The interface every provider implements: capabilities, create, poll, cancel.

Adding a provider = one module here + one line in `registry.py`; nothing else changes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.config import Settings
from services.errors import ConfigError, ErrorKind, InputError, ProviderError
from services.models import Availability, ProviderCapabilities, ProviderUpdate, TaskOptions

# What any provider's task id may be made of. An id is pasted by a person ("Track a task made
# elsewhere") or read back from the database, so it is never trusted to stay in its URL
# segment: UUIDs and prefixed ids ("task_runway_act_two_1765166238716") fit, with room for
# base64-ish or e-mail-like ids, but never a character that changes how a URL or a header is
# read (/ \ ? # % &, blanks, control characters), and the first is a letter or digit so "."
# and ".." (dot segments) are impossible. What remains is still percent-encoded in a path.
SAFE_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:~+=@-]{0,127}")
SAFE_TASK_ID_WORDS = (
    "letters, digits and - _ . : ~ + = @, starting with a letter or digit, at most 128 long"
)
UUID_TASK_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class CreateRequest(BaseModel):
    """What a create call needs. Media values are absolute local paths or http(s) URLs;
    each provider turns local paths into what it accepts (data URI, upload, served URL)."""

    model_config = ConfigDict(frozen=True)

    video: str
    image: str | None = None
    character_video: str | None = None
    options: TaskOptions = Field(default_factory=TaskOptions)
    # Where the provider may POST the result; None = polling only. Never a third party's
    # placeholder: without REENACT_PUBLIC_URL use a `.invalid` host (RFC 2606).
    callback_url: str | None = None
    # Stable per task: providers that support idempotency keys send it.
    idempotency_key: str | None = None


class Provider(ABC):
    id: ClassVar[str]
    name: ClassVar[str]
    # The provider's own task ids (checked with fullmatch, within SAFE_TASK_ID) and how to
    # describe them in the sentence that refuses another.
    task_id_format: ClassVar[re.Pattern[str]] = SAFE_TASK_ID
    task_id_words: ClassVar[str] = SAFE_TASK_ID_WORDS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.provider(self.id)

    @abstractmethod
    def capabilities(self) -> ProviderCapabilities: ...

    def availability(self) -> Availability:
        """Default for keyed HTTP providers: a key and a base URL are needed."""
        if self.config.key_error:
            return Availability(
                available=False, reason=self.config.key_error, key_source=self.config.key_source
            )
        if self.config.api_key is None:
            return Availability(
                available=False,
                reason=f"{self.name} is not configured: set {self.config.key_variable}.",
            )
        if not self.base_url:
            return Availability(
                available=False,
                reason=f"{self.name} has no base URL: set REENACT_{self.id.upper()}_BASE_URL.",
                key_source=self.config.key_source,
            )
        return Availability(available=True, key_source=self.config.key_source)

    @property
    def base_url(self) -> str | None:
        return self.config.base_url or self.default_base_url

    default_base_url: ClassVar[str | None] = None

    def require_available(self) -> None:
        """Raise ConfigError (CLI exit 2) with the sentence naming what to set."""
        av = self.availability()
        if not av.available:
            raise ConfigError(av.reason or f"{self.name} is not available.")

    def check_task_id(self, provider_task_id: str) -> str:
        """The id as given if it looks like one of this provider's, else InputError (CLI exit
        1) with a sentence; nothing is sent either way. Used where a person pastes an id."""
        if not (
            SAFE_TASK_ID.fullmatch(provider_task_id)
            and self.task_id_format.fullmatch(provider_task_id)
        ):
            raise InputError(self.bad_task_id_sentence(provider_task_id))
        return provider_task_id

    def bad_task_id_sentence(self, provider_task_id: str) -> str:
        # The id itself is not repeated: it may hold line breaks or markup.
        return (
            f"That does not look like a {self.name} task id ({_id_problem(provider_task_id)}; "
            f"its ids are {self.task_id_words}): paste the id exactly as the provider shows it."
        )

    @abstractmethod
    def create(self, request: CreateRequest) -> str:
        """Submit; return the provider's task id. Raise ProviderError on refusal."""

    @abstractmethod
    def poll(self, provider_task_id: str) -> ProviderUpdate:
        """One status read, normalized. Raise ProviderError when the read itself failed."""

    def cancel(self, provider_task_id: str) -> None:
        raise ProviderError(
            ErrorKind.INVALID_INPUT,
            f"{self.name} does not support canceling a task.",
            provider=self.id,
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def _id_problem(value: str) -> str:
    if any(ch in "\r\n" for ch in value):
        return "it contains a line break"
    if any(not ch.isprintable() for ch in value):
        return "it contains a control character"
    if any(ch.isspace() for ch in value):
        return "it contains a space"
    odd = sorted({ch for ch in value if not SAFE_TASK_ID.fullmatch(f"a{ch}")})
    if odd:
        return "it contains " + " and ".join(f"'{ch}'" for ch in odd[:3])
    if len(value) > 128:
        return f"it is {len(value)} characters long"
    if not SAFE_TASK_ID.fullmatch(value):
        return "it does not start with a letter or digit"
    return "it has another shape"
