"""What the HTTP providers share: one lazily built `HttpClient`, media as links, callback
addresses, and the readings of progress and failure words every provider needs."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from services.config import Settings
from services.errors import (
    MODERATION_NO_RETRY,
    ErrorKind,
    InputError,
    ProviderError,
    TransportError,
)
from services.links import is_web_link, looks_like_link
from services.models import ProviderUpdate, TaskStatus
from services.providers.base import SAFE_TASK_ID, CreateRequest, Provider
from services.publish import INVALID_CALLBACK_BASE, link_for_file

if TYPE_CHECKING:
    # httpx and the HTTP base load on a provider's first call: `reenact providers` and the
    # first page run only read configuration (~30 ms of start-up saved).
    import httpx

    from services.http import HttpClient, HttpOptions

_MODERATION_WORDS = re.compile(
    r"safety|moderat|content polic|nsfw|inappropriate|violat|public figure", re.I
)


def progress_fraction(value: Any) -> float | None:
    """`"42%"`, `"0.42"`, `42`, `0.42` → 0.42; anything unreadable → None. Clamped to 0–1."""
    if value is None or isinstance(value, bool):
        return None
    percent = False
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            percent, text = True, text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            return None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if number != number:  # NaN
        return None
    if percent or number > 1:
        number /= 100
    return min(1.0, max(0.0, number))


def looks_like_moderation(*texts: str | None) -> bool:
    return any(t and _MODERATION_WORDS.search(t) for t in texts)


# Words a provider uses when its message is about one of the two inputs. Checked on the
# provider's own words (and failure code), so the advice names the input it blamed.
_IMAGE_WORDS = re.compile(
    r"\b(?:input[ _.-]?)?image\b|picture|photo|portrait|character|\.input\.image|"
    r"\bimg\b|promptimage|reference[ _]?image",
    re.I,
)
_VIDEO_WORDS = re.compile(
    r"\bvideo\b|driving|performance|\bclip\b|reference[ _]?video|\.input\.video|"
    r"frames?\b|duration",
    re.I,
)

Blamed = Literal["image", "video"]


def blamed_input(*texts: str | None) -> Blamed | None:
    """Which input the provider's words blame: "image", "video", or None (neither or both)."""
    said = " ".join(t for t in texts if t)
    image, video = bool(_IMAGE_WORDS.search(said)), bool(_VIDEO_WORDS.search(said))
    if image == video:
        return None
    return "image" if image else "video"


# What to change, by the input the provider blamed (None: it did not say which).
_OTHER_INPUT: dict[Blamed | None, str] = {
    "image": "Use a different character image",
    "video": "Use a different driving video",
    None: "Use a different video or image",
}
_CHECK_INPUT: dict[Blamed | None, str] = {
    "image": "Check the character image (one clear face, PNG or JPEG) against its limits",
    "video": "Check the driving video against its limits",
    None: "Check the video and image against its limits",
}
_RETRY_ADVICE: dict[Blamed | None, str] = {
    "image": "Try again; if it keeps failing, try a character image with one clear, "
    "front-facing face",
    "video": "Try again; if it keeps failing, try a shorter or steadier driving video",
    None: "Try again; if it keeps failing, try a shorter or steadier driving video",
}


def failed_update(
    name: str,
    reason: str | None,
    *,
    code: str | None = None,
    raw_status: str | None = None,
    kind: ErrorKind | None = None,
) -> ProviderUpdate:
    """A provider-side failure as a sentence for a creator that keeps the provider's words;
    the advice is about the input those words blame (the image or the video)."""
    said = (reason or "").strip()
    quoted = f" (the provider said: “{said}”)" if said else ""
    if kind is None and (looks_like_moderation(said) or (code or "").upper().startswith("SAFETY")):
        kind = ErrorKind.MODERATION
    blamed = blamed_input(said, code)
    if kind is ErrorKind.MODERATION:
        sentence = (
            f"{name}'s content moderation refused this task{quoted}. "
            f"{_OTHER_INPUT[blamed]}; {MODERATION_NO_RETRY}"
        )
    elif kind is ErrorKind.INVALID_INPUT:
        sentence = (
            f"{name} could not use the inputs{quoted}. {_CHECK_INPUT[blamed]}, then try again."
        )
    else:
        sentence = f"{name} could not finish the task{quoted}. {_RETRY_ADVICE[blamed]}."
    return ProviderUpdate(
        status=TaskStatus.FAILED,
        error=sentence,
        error_kind=kind,
        raw_status=raw_status,
    )


class HttpProvider(Provider):
    """A provider reached over HTTP through the one base client in services/http.py."""

    known_fields: ClassVar[tuple[str, ...]] = ()
    refused_codes: ClassVar[frozenset[int]] = frozenset({429, 503})

    def __init__(self, settings: Settings, *, http: HttpOptions | None = None) -> None:
        super().__init__(settings)
        self._http_options = http
        self._http: HttpClient | None = None
        self._http_lock = threading.Lock()

    # ---- hooks for subclasses -----------------------------------------------------------------
    def default_headers(self) -> dict[str, str]:
        return {}

    def map_error(self, response: httpx.Response, body: Any) -> ProviderError | None:
        """The provider's own reading of an answer (None = the generic mapping)."""
        return None

    # ---- plumbing ------------------------------------------------------------------------------
    @property
    def http_options(self) -> HttpOptions:
        if self._http_options is None:
            from services.http import HttpOptions

            self._http_options = HttpOptions()
        return self._http_options

    @property
    def http(self) -> HttpClient:
        self.require_available()
        with self._http_lock:
            if self._http is None:
                from services.http import HttpClient

                assert self.base_url is not None
                self._http = HttpClient(
                    provider_id=self.id,
                    provider_name=self.name,
                    base_url=self.base_url,
                    api_key=self.config.api_key,
                    key_variable=self.config.key_variable,
                    headers=self.default_headers(),
                    options=self.http_options,
                    error_mapper=self.map_error,
                    refused_codes=self.refused_codes,
                    known_fields=self.known_fields,
                )
            return self._http

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def stored_task_id(self, provider_task_id: str) -> str:
        """The id for a poll or cancel, refused unless it is inert in a URL, a query or a body.

        Defence in depth: whatever put an id in the database (a row from before ids were
        checked, a provider answering a create with something odd), it never steers an
        authenticated request. Only the shared charset is required here; the provider's own
        format is for ids a person pastes (`check_task_id`), and its 404 says the rest.
        NOT_FOUND: the monitor fails the task with this sentence once its grace is over.
        """
        if not SAFE_TASK_ID.fullmatch(provider_task_id):
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                self.bad_task_id_sentence(provider_task_id),
                provider=self.id,
            )
        return provider_task_id

    def task_segment(self, provider_task_id: str) -> str:
        """The id as exactly one percent-encoded URL path segment."""
        return quote(self.stored_task_id(provider_task_id), safe="")

    def link_for(self, value: str) -> str:
        """A link the provider can fetch: URLs pass through; local files are served by this
        the rule of services.publish.input_route (a presigned bucket link, or this app's
        REENACT_PUBLIC_URL; else an InputError says what to do)."""
        if is_web_link(value):
            return value
        if looks_like_link(value):
            raise InputError(f"{self.name} needs http(s) links; this is neither: {value}")
        return link_for_file(Path(value), self.settings, provider_name=self.name)

    def callback_for(self, request: CreateRequest) -> str:
        return request.callback_url or f"{INVALID_CALLBACK_BASE}/{self.id}"

    def unreadable(self, what: str, detail: str | None = None) -> ProviderError:
        return ProviderError(
            ErrorKind.UNEXPECTED,
            f"{self.name} sent {what} this app does not understand. Try again later; if it "
            "persists, the provider may have changed its API.",
            provider=self.id,
            detail=detail,
        )

    def unknown_create_outcome(self, detail: str | None = None) -> ProviderError:
        """A create answered 2xx without a readable task id: it may exist and cost money."""
        err = TransportError(
            f"{self.name} answered the request but its answer had no task id this app can "
            "read, so whether the task was accepted is unknown.",
            provider=self.id,
            sent=True,
        )
        err.detail = detail
        return err
