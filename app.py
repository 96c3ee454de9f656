"""Server entry point: `streamlit run app.py`.

`st.App` gives one lifespan per server process, which starts the process's one runtime
(services/runtime.py: a Store, a Studio and the background monitor polling providers and
archiving results) whether or not a browser is open. The extra routes
serve files from disk (results, published uploads) and take provider callbacks; pages never
call providers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Route
from streamlit.runtime.pages_manager import PagesManager

from server.exposure import LocalOnlyWithoutSignIn
from server.lifespan import RuntimeHost
from server.routes import (
    PublishedUploadsMiddleware,
    batch_export,
    download_result,
    health,
    provider_hook,
    run_export,
    run_reference,
    stream_upload,
)
from server.security import SecurityHeaders

log = logging.getLogger("reenact.app")

# `ui.py`'s st.navigation is the only router. Streamlit would otherwise treat the `pages/`
# folder as an old-style multipage app until some visitor's first run reaches st.navigation
# — so a deep link opened first after a (re)start ran the page file directly: no top bar,
# no wide layout, no sign-in gate. tests/e2e/test_navigation.py holds this in place.
PagesManager.uses_pages_directory = False


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    # Pages and routes reach the runtime through services.runtime.process_runtime().
    host = RuntimeHost().start()
    try:
        yield None
    finally:
        host.stop()


class _ExpectedErrorsInOneLine(logging.Filter):
    """Streamlit logs every exception that leaves a page with its traceback before
    `on_script_error` runs. A ReenactError is expected input (a bad file, a bad link) with
    its own sentence, so its record loses the traceback; bugs keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_expected(exc):
            record.msg, record.args = "Refused on a page: %s", (exc,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def _is_expected(exc: BaseException) -> bool:
    from services.errors import ReenactError

    return isinstance(exc, ReenactError)


logging.getLogger("streamlit.error_util").addFilter(_ExpectedErrorsInOneLine())


def on_script_error(exc: Exception) -> bool:
    """Last line of defence: components already turn failures into sentences, so reaching
    here is a bug. Log it for the operator and show the creator a sentence, never a trace.

    A ReenactError that escaped (a bad file or link said outside `sentences()`) is expected
    input, not a bug: one log line and its own sentence; the traceback is kept for bugs."""
    from components.format import plain  # the page's modules load after the server starts

    if _is_expected(exc):
        # Streamlit has already logged it, in one line (_ExpectedErrorsInOneLine).
        st.error(plain(str(exc)), icon=":material/error:")
        return True
    # Streamlit has logged the traceback just before ("Uncaught app execution"): once is
    # enough, this line ties it to the sentence the creator saw.
    log.error("Unhandled error on a page (traceback above): %r", exc)
    st.error(
        "Something went wrong on this page. Reload it; your tasks are safe and keep running. "
        "If it happens again, the server log has the details."
    )
    return True


app = st.App(
    "ui.py",
    lifespan=lifespan,
    routes=[
        Route("/files/{task_id}/{filename}", download_result, methods=["GET", "HEAD"]),
        Route("/runs/{run_id}/reference", run_reference, methods=["GET", "HEAD"]),
        Route("/uploads/{digest}/{filename}", stream_upload, methods=["GET", "HEAD"]),
        Route("/exports/{run_id}/{filename}", run_export, methods=["GET", "HEAD"]),
        Route("/batches/{batch_id}/{filename}", batch_export, methods=["GET", "HEAD"]),
        Route("/hooks/{provider}/{token}", provider_hook, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ],
    # Streamlit reserves /media/ for its own files; published uploads share that prefix
    # (services.publish), so they are answered by a middleware ahead of Streamlit's router.
    # Security headers first (outermost), so even a refusal below carries them.
    middleware=[
        Middleware(SecurityHeaders),
        Middleware(LocalOnlyWithoutSignIn),
        Middleware(PublishedUploadsMiddleware),
    ],
    on_script_error=on_script_error,
)
