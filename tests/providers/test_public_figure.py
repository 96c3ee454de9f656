"""Runway's content-moderation setting for public figures
(`contentModeration.publicFigureThreshold`): sent by Runway only when chosen, validated by
the emulator the way Runway does, declared by no other provider and sent to none."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.config import PROVIDER_IDS, load_settings
from services.errors import ErrorKind, ProviderError
from services.models import TaskOptions
from services.providers.registry import get_provider
from tests.emulators import RunwayEmulator
from tests.providers.conftest import MakeHarness


@pytest.mark.parametrize("threshold", ["auto", "low"])
def test_runway_sends_the_threshold_it_was_given(harness: MakeHarness, threshold: str) -> None:
    h = harness("runway")
    options = TaskOptions(public_figure_threshold=threshold, seed=7)  # type: ignore[arg-type]
    body = h.emu.task(h.provider.create(h.request(options=options))).body
    assert body["contentModeration"] == {"publicFigureThreshold": threshold}
    assert body["seed"] == 7


def test_runway_sends_no_moderation_field_unless_chosen(harness: MakeHarness) -> None:
    h = harness("runway")
    body = h.emu.task(h.provider.create(h.request(options=TaskOptions(seed=7)))).body
    assert "contentModeration" not in body


def test_an_unknown_value_is_refused_naming_the_field(harness: MakeHarness) -> None:
    h = harness("runway")
    # Past the model's own validation, as a newer or hand-edited row could be.
    odd = TaskOptions.model_construct(public_figure_threshold="medium")
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request(options=odd))
    err = info.value
    assert err.kind is ErrorKind.INVALID_INPUT
    assert err.field == "contentModeration.publicFigureThreshold"
    assert "Runway refused the public-figure moderation setting" in str(err)
    assert "Expected 'auto' | 'low'" in str(err)
    assert h.emu.create_count == 0


@pytest.mark.parametrize(
    ("moderation", "words"),
    [
        ("low", "contentModeration: Expected object."),
        ({"publicFigureThreshold": "LOW"}, "contentModeration.publicFigureThreshold: Invalid"),
        ({"nudity": "low"}, "Unrecognized key(s) in object: nudity"),
    ],
)
def test_the_emulator_validates_the_field_like_runway(moderation: object, words: str) -> None:
    with RunwayEmulator() as emu:
        body = {
            "model": "act_two",
            "character": {"type": "image", "uri": "https://example.com/face.png"},
            "reference": {"type": "video", "uri": "https://example.com/take.mp4"},
            "ratio": "1280:720",
            "contentModeration": moderation,
        }
        headers = {"Authorization": f"Bearer {emu.key}", "X-Runway-Version": "2024-11-06"}
        r = httpx.post(f"{emu.url}/v1/character_performance", json=body, headers=headers)
        assert r.status_code == 400 and words in r.json()["error"]
        body["contentModeration"] = {"publicFigureThreshold": "low"}
        accepted = httpx.post(f"{emu.url}/v1/character_performance", json=body, headers=headers)
        assert accepted.status_code == 200 and accepted.json()["id"]


def test_only_runway_declares_the_option(tmp_path: Path) -> None:
    settings = load_settings(env={"REENACT_DATA_DIR": str(tmp_path / "data")}, secrets={})
    declaring = []
    for pid in PROVIDER_IDS:
        provider = get_provider(pid, settings)
        try:
            if "public_figure_threshold" in provider.capabilities().options:
                declaring.append(pid)
        finally:
            provider.close()
    assert declaring == ["runway"]


@pytest.mark.parametrize("provider_id", ["cometapi", "liangxin"])
def test_other_providers_never_send_it(harness: MakeHarness, provider_id: str) -> None:
    h = harness(provider_id)
    options = TaskOptions(public_figure_threshold="low")
    body = h.emu.task(h.provider.create(h.request(options=options))).body
    text = str(body)
    assert "contentModeration" not in text and "publicFigure" not in text
    assert "'low'" not in text  # under no other name either
