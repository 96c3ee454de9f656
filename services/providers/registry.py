"""Provider ids → modules, imported lazily so `reenact providers` starts fast."""

from __future__ import annotations

import importlib

from services.config import PROVIDER_IDS, Settings
from services.errors import ConfigError
from services.providers.base import Provider

_MODULES: dict[str, str] = {
    "local": "services.providers.local:LocalProvider",
    "runway": "services.providers.runway:RunwayProvider",
    "cometapi": "services.providers.cometapi:CometApiProvider",
    "liangxin": "services.providers.liangxin:LiangXinProvider",
    "makevid": "services.providers.makevid:MakevidProvider",
}
assert set(_MODULES) == set(PROVIDER_IDS)


def provider_ids() -> tuple[str, ...]:
    return PROVIDER_IDS


def provider_class(provider_id: str) -> type[Provider]:
    target = _MODULES.get(provider_id)
    if target is None:
        known = ", ".join(PROVIDER_IDS)
        raise ConfigError(f"Unknown provider '{provider_id}'. Choose one of: {known}.")
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def get_provider(provider_id: str, settings: Settings) -> Provider:
    return provider_class(provider_id)(settings)


def all_providers(settings: Settings) -> list[Provider]:
    return [get_provider(pid, settings) for pid in PROVIDER_IDS]
