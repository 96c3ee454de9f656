"""`--public-figure-threshold` on submit and compare: Runway's create carries it, a provider
that does not take it is told nothing and the creator is told so."""

from __future__ import annotations

from tests.cli.support import run
from tests.emulators import CometApiEmulator, RunwayEmulator

NOT_SENT = "Note: CometAPI does not take --public-figure-threshold; not sent there."


def test_submit_to_runway_sends_it(env, video, image, runway_emulator: RunwayEmulator) -> None:
    env.update(runway_emulator.env())
    args = ["submit", "--provider", "runway", "--video", video, "--image", image]
    r = run([*args, "--public-figure-threshold", "low", "--json"], env)
    assert r.code == 0, r.output
    assert r.json()["options"]["public_figure_threshold"] == "low"
    [sent] = [t.body for t in runway_emulator.tasks.values()]
    assert sent["contentModeration"] == {"publicFigureThreshold": "low"}
    assert "does not take" not in r.stderr

    plain = run([*args, "--seed", "3"], env)
    assert plain.code == 0, plain.output
    bodies = [t.body for t in runway_emulator.tasks.values()]
    assert len(bodies) == 2 and sum("contentModeration" in b for b in bodies) == 1


def test_compare_sends_it_to_runway_only(
    env,
    video_url,
    image_url,
    runway_emulator: RunwayEmulator,
    cometapi_emulator: CometApiEmulator,
) -> None:
    env.update({**runway_emulator.env(), **cometapi_emulator.env()})
    r = run(
        [
            "compare",
            "--providers",
            "runway,cometapi",
            "--video",
            video_url,
            "--image",
            image_url,
            "--public-figure-threshold",
            "auto",
        ],
        env,
    )
    assert r.code == 0, r.output
    assert NOT_SENT in r.stderr
    [to_runway] = [t.body for t in runway_emulator.tasks.values()]
    [to_comet] = [t.body for t in cometapi_emulator.tasks.values()]
    assert to_runway["contentModeration"] == {"publicFigureThreshold": "auto"}
    assert "contentModeration" not in str(to_comet) and "publicFigure" not in str(to_comet)


def test_submit_elsewhere_says_it_is_not_sent(
    env, video_url, image_url, cometapi_emulator: CometApiEmulator
) -> None:
    env.update(cometapi_emulator.env())
    args = ["submit", "--provider", "cometapi", "--video", video_url, "--image", image_url]
    r = run([*args, "--public-figure-threshold", "low"], env)
    assert r.code == 0, r.output
    assert NOT_SENT in r.stderr
    [sent] = [t.body for t in cometapi_emulator.tasks.values()]
    assert "publicFigure" not in str(sent)


def test_a_value_runway_does_not_know_is_a_usage_error(env, video, image) -> None:
    args = ["submit", "--provider", "runway", "--video", video, "--image", image]
    r = run([*args, "--public-figure-threshold", "medium"], env)
    assert r.code == 2
    assert "--public-figure-threshold: invalid choice: 'medium'" in r.stderr
