"""`reenact spend` and the caps from a script: the installed command against the Runway
emulator and the local engine, each command its own process on one data folder."""

from __future__ import annotations

from tests.cli.support import run
from tests.emulators import RunwayEmulator


def test_spend_shows_runways_reported_cost_and_the_local_engines_zero(
    env, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env(), REENACT_RUNWAY_SPEND_CAP_DAY_USD="5")
    runway_emulator.configure(credits=25)
    for provider in ("runway", "local"):
        r = run(
            ["submit", "--provider", provider, "--video", video, "--image", image, "--wait"],
            env,
            timeout=180,
        )
        assert r.code == 0, r.output

    r = run(["spend", "--json"], env)
    assert r.code == 0, r.output
    doc = r.json()
    assert doc["timezone"] == "UTC"
    runway = doc["providers"]["runway"]
    # 25 credits at $0.01 (what Runway said it charged), not the $0.20 estimate.
    assert (runway["reported_usd"], runway["estimated_usd"], runway["source"]) == (
        0.25,
        0.0,
        "reported",
    )
    assert doc["providers"]["local"]["total_usd"] == 0.0
    assert doc["total"]["total_usd"] == 0.25
    (today,) = doc["days"]
    assert today["total"]["total_usd"] == 0.25
    (cap,) = doc["caps"]
    assert (cap["period"], cap["scope"], cap["cap_usd"], cap["spent_usd"], cap["left_usd"]) == (
        "day",
        "runway",
        5.0,
        0.25,
        4.75,
    )
    assert cap["source"] == "REENACT_RUNWAY_SPEND_CAP_DAY_USD"

    text = run(["spend"], env)
    assert text.code == 0, text.output
    assert "Runway" in text.stdout and "$0.25" in text.stdout
    assert "Today's Runway cap $5.00: $0.25 spent, $4.75 left" in text.stdout

    assert run(["spend", "--month", "2026-13"], env).code == 2
    earlier = run(["spend", "--json", "--month", "2001-01"], env)
    assert earlier.code == 0 and earlier.json()["providers"] == {}


def test_a_submit_over_the_cap_is_refused_with_the_sentence_and_sends_nothing(
    env, video, image, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env(), REENACT_RUNWAY_SPEND_CAP_DAY_USD="0.10")
    r = run(["submit", "--provider", "runway", "--video", video, "--image", image, "--json"], env)
    assert r.code == 1, r.output
    sentence = (
        "Today's Runway cap is $0.10: $0.00 spent, this would add $0.20; $0.10 left. "
        "Raise the cap in Settings → Spending, or wait until tomorrow (UTC)."
    )
    assert sentence in r.stderr and r.json() == {"error": sentence}
    assert "Traceback" not in r.output
    assert runway_emulator.create_count == 0
    # A comparison with the free engine is refused as a whole: the engine is not started.
    c = run(["compare", "--providers", "local,runway", "--video", video, "--image", image], env)
    assert c.code == 1 and sentence in c.stderr
    listed = run(["list", "--json"], env)
    assert listed.json() == []
