"""Run one emulator until killed: `python -m tests.emulators runway --port 8765`.

Prints one JSON line on stdout: {"provider", "url", "key", "env"}; control it over
POST /_control (see tests/emulators/base.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from tests.emulators import EMULATORS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators")
    parser.add_argument("provider", choices=sorted(EMULATORS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=None)
    parser.add_argument("--polls-to-finish", type=int, default=None)
    parser.add_argument("--queued-polls", type=int, default=None)
    parser.add_argument("--seconds-to-finish", type=float, default=None)
    parser.add_argument("--queued-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    config = {
        k: v
        for k, v in {
            "polls_to_finish": args.polls_to_finish,
            "queued_polls": args.queued_polls,
            "seconds_to_finish": args.seconds_to_finish,
            "queued_seconds": args.queued_seconds,
        }.items()
        if v is not None
    }
    emu = EMULATORS[args.provider](key=args.key, port=args.port, **config).start()
    print(
        json.dumps({"provider": args.provider, "url": emu.url, "key": emu.key, "env": emu.env()}),
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
