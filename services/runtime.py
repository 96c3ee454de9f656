"""One runtime per process: the settings, the providers, one Store, one Studio and one
Monitor, built by one constructor — by the app server's lifespan and by the CLI alike.

Each part is built on first use, so `reenact providers` opens no database and a CLI command
that never waits builds no monitor. Close the runtime once, when the process is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from services.config import Settings, load_settings

if TYPE_CHECKING:
    from services.monitor import Monitor
    from services.providers.catalog import ProviderCatalog
    from services.store import Store
    from services.studio import Studio

T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._parts: dict[str, Any] = {}
        # Pages, routes and the monitor's threads may ask at once: each part is built once.
        self._lock = threading.RLock()
        self._closed = False

    def _part(self, name: str, build: Callable[[], T]) -> T:
        part = self._parts.get(name)
        if part is None:
            with self._lock:
                part = self._parts.get(name)
                if part is None:
                    part = self._parts[name] = build()
        return part

    @property
    def catalog(self) -> ProviderCatalog:
        from services.providers.catalog import ProviderCatalog

        return self._part("catalog", lambda: ProviderCatalog(self.settings))

    @property
    def store(self) -> Store:
        from services.store import Store

        return self._part("store", lambda: Store.open(self.settings))

    @property
    def studio(self) -> Studio:
        from services.studio import Studio

        return self._part("studio", lambda: Studio(self.settings, self.store, self.catalog))

    @property
    def monitor(self) -> Monitor:
        from services.monitor import Monitor

        return self._part("monitor", lambda: Monitor(self.studio))

    def monitor_running(self) -> bool:
        monitor = self._parts.get("monitor")
        return monitor is not None and monitor.is_alive()

    def close(self) -> None:
        """Stop the monitor and close what was opened; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            parts = self._parts
            if "monitor" in parts:
                parts["monitor"].stop()
            if "catalog" in parts:
                parts["catalog"].close()
            if "store" in parts:
                parts["store"].close()


_process: Runtime | None = None
_process_lock = threading.Lock()


def process_runtime() -> Runtime:
    """This process's runtime — the one accessor pages, routes and the server's lifespan use,
    so a server process holds one Store, one Studio and one Monitor whoever asks first."""
    global _process
    if _process is None:
        with _process_lock:
            if _process is None:
                _process = Runtime()
    return _process


def close_process_runtime() -> None:
    """At server shutdown: stop the monitor and close the store (a later call builds anew)."""
    global _process
    with _process_lock:
        runtime, _process = _process, None
    if runtime is not None:
        runtime.close()
