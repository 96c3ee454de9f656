"""The provider ids are one list (services.config.PROVIDER_IDS); the registry finds each
one's class in the module of the same name."""

from __future__ import annotations

import pytest

from services.config import KEYED_PROVIDERS, PROVIDER_IDS
from services.errors import ConfigError
from services.providers.registry import provider_class


@pytest.mark.parametrize("provider_id", PROVIDER_IDS)
def test_every_listed_id_has_its_class(provider_id: str) -> None:
    cls = provider_class(provider_id)
    assert cls.id == provider_id
    assert cls.__module__ == f"services.providers.{provider_id}"


def test_keyed_providers_are_all_but_the_offline_engine() -> None:
    assert set(KEYED_PROVIDERS) == set(PROVIDER_IDS) - {"local"}


@pytest.mark.parametrize("provider_id", ["openai", "remote", "registry", "../config", ""])
def test_unknown_ids_get_a_sentence_and_import_nothing(provider_id: str) -> None:
    # "remote" and "registry" are modules in the package, not providers.
    with pytest.raises(ConfigError, match=r"Unknown provider .* Choose one of: local, runway"):
        provider_class(provider_id)
