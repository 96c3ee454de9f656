"""Process liveness, shared by everything that must tell a dead owner from a slow one."""

from __future__ import annotations

import os
from pathlib import Path


def process_running(pid: int | None) -> bool:
    """Alive and not a zombie (a finished child nobody has reaped still answers kill 0)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill 0
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
