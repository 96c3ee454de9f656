"""The server's runtime (one Store, one Studio, one Monitor), started beside the web server
rather than before it.

Opening the database and importing the provider stack takes a second or more on a busy
machine; doing that in a thread lets the page server answer at once. The same thread then
imports what the first page needs, so the first visitor does not pay for it either. Pages and
routes reach the same runtime through `services.runtime.process_runtime()`.
"""

from __future__ import annotations

import importlib
import logging
import threading

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


class RuntimeHost:
    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reenact-start", daemon=True)

    def start(self) -> RuntimeHost:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            from services.runtime import process_runtime

            runtime = process_runtime()
            if self._stopping.is_set():
                return
            runtime.monitor.start()
        except Exception:
            log.exception("The background monitor could not start; tasks will not advance")
            return
        for name in WARM_MODULES:
            if self._stopping.is_set():
                return
            try:
                importlib.import_module(name)
            except Exception:
                log.debug("warm-up import of %s failed", name, exc_info=True)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)
        from services.runtime import close_process_runtime

        close_process_runtime()
