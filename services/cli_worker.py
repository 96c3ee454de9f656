"""`reenact worker`: render local-engine jobs recorded in the shared database
(REENACT_RENDER_WORKERS=external on the app), on this machine, until stopped."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.cli import Ctx


def register(
    add: Callable[[str, Callable[[Ctx], int], str], argparse.ArgumentParser],
    json_flag: Callable[[argparse.ArgumentParser], None],
) -> None:
    p = add(
        "worker",
        cmd_worker,
        "render local-engine jobs from the shared database (the app runs with "
        "REENACT_RENDER_WORKERS=external); SIGTERM finishes the current job, then stops",
    )
    p.add_argument(
        "--once", action="store_true", help="stop when no job is waiting instead of waiting"
    )
    p.add_argument(
        "--lease",
        type=_seconds,
        metavar="S",
        help="seconds a job stays this worker's without a heartbeat (default 30); a killed "
        "worker's job is taken over after this long",
    )
    json_flag(p)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 1.0 <= seconds <= 3600.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds from 1 to 3600")
    return seconds


def cmd_worker(ctx: Ctx) -> int:
    from services.config import load_settings
    from services.engine.render_queue import LEASE_S, RenderWorker

    settings = load_settings()
    settings.ensure_dirs()
    worker = RenderWorker(settings, lease_s=ctx.args.lease or LEASE_S)

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ctx.note(f"Render worker {worker.holder} waiting for jobs.")
    rendered = worker.serve(once=ctx.args.once)
    ctx.note(f"Rendered {rendered} job(s).")
    ctx.emit({"worker": str(worker.holder), "rendered": rendered})
    return 0
