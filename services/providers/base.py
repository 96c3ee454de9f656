"""The interface every provider implements: capabilities, create, poll, cancel.

Adding a provider = one module here + one line in `registry.py`; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from services.config import Settings
from services.errors import ConfigError, ErrorKind, ProviderError
from services.models import Availability, ProviderCapabilities, ProviderUpdate, TaskOptions


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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = settings.provider(self.id)

    @abstractmethod
    def capabilities(self) -> ProviderCapabilities: ...

    def availability(self) -> Availability:
        """Default for keyed HTTP providers: a key and a base URL are needed."""
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
