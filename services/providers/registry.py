"""Provider ids → classes, imported lazily so `reenact providers` starts fast.

The ids are `services.config.PROVIDER_IDS`; each one's class is the `Provider` with that id
in `services/providers/<id>.py`, so adding a provider means one id and one module.
"""

from __future__ import annotations

import importlib

from services.config import PROVIDER_IDS, Settings
from services.errors import ConfigError
from services.providers.base import Provider


def provider_class(provider_id: str) -> type[Provider]:
    if provider_id not in PROVIDER_IDS:
        known = ", ".join(PROVIDER_IDS)
        raise ConfigError(f"Unknown provider '{provider_id}'. Choose one of: {known}.")
    module = importlib.import_module(f"{__package__}.{provider_id}")
    found = [
        cls
        for cls in vars(module).values()
        if isinstance(cls, type)
        and issubclass(cls, Provider)
        and cls.__module__ == module.__name__
        and getattr(cls, "id", None) == provider_id
    ]
    if len(found) != 1:
        # A programming error, not a user's: every listed id has exactly one class.
        raise RuntimeError(f"{module.__name__} must define one Provider with id {provider_id!r}")
    return found[0]


def get_provider(provider_id: str, settings: Settings) -> Provider:
    return provider_class(provider_id)(settings)
