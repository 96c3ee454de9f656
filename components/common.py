"""What every page shares: one Studio per server process, URLs of served files, and the rule
that a failure becomes a sentence on the page (never a traceback)."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
from pydantic import ValidationError

from components.format import plain
from services.config import PROJECT_ROOT, load_settings
from services.errors import (
    DISK_FULL_SUBMIT,
    ErrorKind,
    ReenactError,
    default_sentence,
    is_disk_full,
)
from services.models import Task
from services.runtime import process_runtime
from services.studio import Studio

log = logging.getLogger("reenact.ui")

# What a full disk stopped, by the action it interrupted (the rest get the general sentence).
# A submit writes its row before anything is sent, so a full disk there sent nothing.
_DISK_FULL_SENTENCES = {"submitting": DISK_FULL_SUBMIT, "starting the retry": DISK_FULL_SUBMIT}

GENERIC_SENTENCE = (
    "Something went wrong while {action}. Nothing was charged twice and your tasks are safe; "
    "try again, and if it keeps happening the server log has the details."
)


def get_studio() -> Studio:
    """The process's one Studio (services.runtime), shared by every session, the routes and
    the monitor (the store is thread-safe)."""
    return process_runtime().studio


@contextmanager
def sentences(action: str = "doing that") -> Iterator[None]:
    """Show any failure inside the block as a sentence: ReenactError speaks for itself;
    anything else is logged for the operator and summarised for the creator."""
    try:
        yield
    except ReenactError as err:
        # Expected (a bad file, a bad link, a refusal): the sentence says it all, so the log
        # gets one line, never a traceback.
        log.info("Refused while %s: %s", action, err)
        # Sentences quote what came from outside (a provider's words, a file name, an id).
        st.error(plain(str(err)), icon=":material/error:")
    except ValidationError as err:
        errors = err.errors()
        msg = errors[0]["msg"] if errors else "invalid value"
        log.info("A value was not accepted while %s: %s", action, msg)
        st.error(plain(f"That value was not accepted: {msg}."))
    except Exception as err:
        if _disk_full(err):
            log.warning("The disk is full (while %s): %s", action, err)
            sentence = _DISK_FULL_SENTENCES.get(action, default_sentence(ErrorKind.DISK_FULL))
            st.error(sentence, icon=":material/error:")
            return
        log.exception("Unexpected error while %s", action)
        st.error(GENERIC_SENTENCE.format(action=action), icon=":material/error:")


def _disk_full(err: Exception) -> bool:
    try:
        # The settings alone, not the Studio: opening the database may be what failed.
        data_dir = load_settings().data_dir
    except Exception:
        data_dir = None
    return is_disk_full(err, data_dir)


def app_base_url() -> str:
    """The app's address as the browser sees it (so media URLs work behind any host/port)."""
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{prefix}" if prefix else ""
    url = st.context.url
    if url:
        # Only scheme and host: the rest of the browser's URL names the current page.
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}{prefix}"
    port = st.get_option("server.port") or 8501
    return f"http://localhost:{port}{prefix}"


def result_url(task: Task, *, download: bool = False) -> str:
    suffix = Path(task.result_path or "result.mp4").suffix or ".mp4"
    url = f"{app_base_url()}/files/{task.id}/result{suffix}"
    return url + "?download=1" if download else url


@cache
def upload_limit_mb() -> int:
    """server.maxUploadSize as configured (the page states it; Streamlit enforces it)."""
    try:
        value = st.get_option("server.maxUploadSize")
        if value:
            return int(value)
    except Exception:
        log.debug("server.maxUploadSize not readable from the runtime", exc_info=True)
    try:
        with (PROJECT_ROOT / ".streamlit" / "config.toml").open("rb") as fh:
            return int(tomllib.load(fh)["server"]["maxUploadSize"])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
        return 200


def human_mb(mb: int) -> str:
    return f"{mb / 1024:g} GB" if mb >= 1024 else f"{mb} MB"
