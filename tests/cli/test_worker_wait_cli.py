"""`reenact submit --wait` with REENACT_RENDER_WORKERS=external and no worker running: the
status line says the render waits for a render worker, not only "queued"."""

from __future__ import annotations

from tests.cli.support import run


def test_wait_says_a_local_render_waits_for_a_render_worker(env, video, image) -> None:
    env["REENACT_RENDER_WORKERS"] = "external"
    argv = ["submit", "--provider", "local", "--video", video, "--image", image, "--wait"]
    r = run([*argv, "--timeout", "1.5"], env)
    assert r.code == 3, r.output  # nobody renders it: the wait gives up, the task stays
    assert ": queued (waiting for a render worker) 0%" in r.stderr, r.stderr
