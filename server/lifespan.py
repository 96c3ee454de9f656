"""The server's one monitor, started beside the web server rather than before it.

Building the monitor opens the database and imports the provider stack (a second or more on
a busy machine); doing that in a thread lets the page server answer at once. The same thread
then imports what the first page needs, so the first visitor does not pay for it either.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import TYPE_CHECKING

from server.routes import set_monitor

if TYPE_CHECKING:
    from services.monitor import Monitor

log = logging.getLogger("reenact.app")

# What the Create page imports on its first run, in the order it needs them.
WARM_MODULES = (
    "services.studio",
    "services.providers.local",
    "services.providers.runway",
    "services.providers.cometapi",
    "services.providers.liangxin",
    "services.providers.makevid",
    "components.media_input",
    "components.provider_picker",
    "components.submit",
    "components.task_card",
    "services.media.checks",
    "services.media.thumbs",
)


class MonitorHost:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = False
        self._monitor: Monitor | None = None
        self._thread = threading.Thread(target=self._run, name="reenact-monitor-start", daemon=True)

    def start(self) -> MonitorHost:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            from services.monitor import lifespan_monitor

            monitor = lifespan_monitor()
        except Exception:
            log.exception("The background monitor could not start; tasks will not advance")
            return
        with self._lock:
            if self._stopping:
                monitor.stop()
                return
            self._monitor = monitor
            set_monitor(monitor)
        for name in WARM_MODULES:
            if self._stopping:
                return
            try:
                importlib.import_module(name)
            except Exception:
                log.debug("warm-up import of %s failed", name, exc_info=True)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        self._thread.join(timeout=60)
        with self._lock:
            monitor, self._monitor = self._monitor, None
        set_monitor(None)
        if monitor is not None:
            monitor.stop()
