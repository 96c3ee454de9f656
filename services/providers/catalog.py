"""The providers one process uses: each built once, its capabilities read once, all closed
together. Needs only the settings — listing providers opens no database."""

from __future__ import annotations

import threading

from pydantic import BaseModel

from services.config import PROVIDER_IDS, Settings
from services.models import Availability, ProviderCapabilities
from services.providers.base import Provider
from services.providers.registry import get_provider


class ProviderInfo(BaseModel):
    id: str
    name: str
    capabilities: ProviderCapabilities
    availability: Availability


class ProviderCatalog:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._providers: dict[str, Provider] = {}
        self._caps: dict[str, ProviderCapabilities] = {}
        # Pages, the monitor's poll threads and the routes ask at once: one build per id.
        self._lock = threading.Lock()

    def get(self, provider_id: str) -> Provider:
        provider = self._providers.get(provider_id)
        if provider is None:
            with self._lock:
                provider = self._providers.get(provider_id)
                if provider is None:
                    provider = get_provider(provider_id, self.settings)
                    self._providers[provider_id] = provider
        return provider

    def capabilities(self, provider_id: str) -> ProviderCapabilities:
        """What a provider accepts and how it is timed (fixed for the life of the process)."""
        caps = self._caps.get(provider_id)
        if caps is None:
            caps = self._caps[provider_id] = self.get(provider_id).capabilities()
        return caps

    def infos(self) -> list[ProviderInfo]:
        """Every provider with what it takes and whether it is configured (no network)."""
        return [
            ProviderInfo(
                id=pid,
                name=self.get(pid).name,
                capabilities=self.capabilities(pid),
                availability=self.get(pid).availability(),
            )
            for pid in PROVIDER_IDS
        ]

    def close(self) -> None:
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            provider.close()
