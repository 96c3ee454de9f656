"""The offline local engine as a provider (registered; unavailable until the engine exists)."""

from __future__ import annotations

from services.errors import ErrorKind, ProviderError
from services.models import Availability, ProviderCapabilities, ProviderUpdate
from services.providers.base import CreateRequest, Provider


class LocalProvider(Provider):
    id = "local"
    name = "Local engine"

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(id=self.id, name=self.name, can_track=False)

    def availability(self) -> Availability:
        return Availability(available=False, reason="The local engine is not built yet.")

    def create(self, request: CreateRequest) -> str:
        raise ProviderError(ErrorKind.UNAVAILABLE, "The local engine is not built yet.")

    def poll(self, provider_task_id: str) -> ProviderUpdate:
        raise ProviderError(ErrorKind.UNAVAILABLE, "The local engine is not built yet.")
