"""Fetching files over HTTP safely: user links (`ingest_url`) and provider results (`download`).

Both stream to disk with a size cap, follow at most five redirects re-checking every hop
against `netguard`, and sniff the first bytes so a web page or an image dressed up as `.mp4`
is refused with a sentence instead of being handed to a provider or archived as a result.
They go through the proxy the environment names (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, minus
NO_PROXY), with the guard vetting the target's addresses before each request all the same;
see services/netguard.py for what a proxy changes about DNS-rebinding protection.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal
from urllib.parse import unquote, urlsplit

import httpx

from services.archive import fsync_path as _fsync_dir
from services.config import Settings
from services.errors import (
    DiskFullError,
    ErrorKind,
    InputError,
    ProviderError,
    ensure_free_space,
    is_disk_full,
)
from services.media.sniff import IMAGE_EXTS, SNIFF_BYTES, VIDEO_EXTS, Sniffed, sniff
from services.netguard import blocked_sentence, check_url, guarded_transport

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 512 * MiB
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
CHUNK = 1 * MiB
USER_AGENT = "ReenactStudio/0.1 (+media fetch)"
# A server that drips one byte every 29 s never trips the read timeout; this bounds the whole.
INGEST_DEADLINE_S = 600.0
DOWNLOAD_DEADLINE_S = 900.0
RETRY_AFTER_CAP_S = 60.0

Expect = Literal["video", "image"] | None


# ---------------------------------------------------------------- shared plumbing


def _client(settings: Settings, timeout: httpx.Timeout) -> httpx.Client:
    return httpx.Client(
        # Proxies from the environment are the transport's business (it vets the target
        # before handing a request to one); httpx must not add its own from the environment.
        transport=guarded_transport(allow_private=settings.allow_private_urls),
        timeout=timeout,
        follow_redirects=False,  # followed by hand so every hop is checked
        trust_env=False,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def download_client(settings: Settings) -> httpx.Client:
    """A client to hand to `download` again and again (the monitor's archive workers share
    one): its connections to a result host stay open between files. Thread-safe."""
    return _client(settings, TIMEOUT)


def _open(client: httpx.Client, url: str, *, allow_private: bool) -> httpx.Response:
    """GET `url` (streaming), following up to MAX_REDIRECTS, each hop re-checked.

    The caller closes the returned response.
    """
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private=allow_private)
        try:
            resp = client.send(client.build_request("GET", url), stream=True)
        except httpx.ConnectError as exc:
            sentence = blocked_sentence(exc)
            if sentence:
                raise InputError(sentence) from exc
            raise
        if not resp.is_redirect:
            return resp
        location = resp.headers.get("location")
        resp.close()
        if not location:
            raise InputError(f"The server redirected {url} without saying where to.")
        url = str(resp.url.join(location))
    raise InputError(
        f"The link redirected more than {MAX_REDIRECTS} times; use the final, direct link "
        "to the file."
    )


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _human(n: int) -> str:
    return f"{n / MiB:.0f} MB" if n >= MiB else f"{n} bytes"


class _Oversize(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def _stream(
    resp: httpx.Response,
    fh: BinaryIO,
    *,
    max_bytes: int,
    deadline: float,
    on_head: Callable[[Sniffed], None],
    hasher: hashlib._Hash | None = None,
) -> int:
    """Copy the body to `fh`, judging the content by its first bytes before writing more."""
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _Oversize(max_bytes)
    head = b""
    judged = False
    total = 0
    for chunk in resp.iter_bytes(CHUNK):
        if not judged:
            head += chunk[: SNIFF_BYTES - len(head)]
            if len(head) >= SNIFF_BYTES:
                on_head(sniff(head))
                judged = True
        total += len(chunk)
        if total > max_bytes:
            raise _Oversize(max_bytes)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the whole transfer took too long")
        fh.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
    if not judged:
        on_head(sniff(head))
    return total


def _url_ext(url: str) -> str:
    return PurePosixPath(unquote(urlsplit(url).path)).suffix.lower()


# ---------------------------------------------------------------- provider results


def download(
    url: str,
    dest: Path,
    settings: Settings,
    *,
    max_bytes: int,
    expect: Expect = "video",
    attempts: int = 4,
    backoff_s: float = 1.0,
    timeout: httpx.Timeout = TIMEOUT,
    client: httpx.Client | None = None,
) -> Path:
    """Stream `url` to `dest` atomically (via `dest.with_suffix(".part")`), return `dest`.
    `client` (`download_client`) is used instead of a new one for this file.

    403/404/410 → ProviderError(NOT_FOUND): result links expire and retrying cannot help.
    429, 5xx, timeouts and dropped connections are retried (`attempts` in all) with
    exponential backoff, honouring Retry-After; the last failure is raised as a retryable
    ProviderError. A web page or garbage instead of the expected media → InputError. No room
    on the disk (a known size that cannot fit, or ENOSPC/EDQUOT while writing) →
    DiskFullError, the `.part` removed; retrying at once cannot help, so it is not retried.
    """
    dest = Path(dest)
    try:
        return _download(
            url, dest, settings, max_bytes, expect, attempts, backoff_s, timeout, client
        )
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError() from exc
        raise


def _download(
    url: str,
    dest: Path,
    settings: Settings,
    max_bytes: int,
    expect: Expect,
    attempts: int,
    backoff_s: float,
    timeout: httpx.Timeout,
    shared: httpx.Client | None,
) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S

    def judge(found: Sniffed) -> None:
        if expect is None:
            if found.kind in ("video", "image"):
                return
            wanted = "a video or an image"
        elif found.kind == expect:
            return
        else:
            wanted = "an image" if expect == "image" else "a video"
        if found.kind == "html":
            raise InputError(
                f"The result link returned a web page instead of {wanted}; the provider may "
                "have expired the link or answered with an error page."
            )
        raise InputError(f"The result link returned {found.describe()} instead of {wanted}.")

    last: ProviderError | None = None
    own = _client(settings, timeout) if shared is None else contextlib.nullcontext(shared)
    with own as client:
        for attempt in range(max(1, attempts)):
            if attempt:
                wait = backoff_s * 2 ** (attempt - 1)
                if last is not None and last.retry_after is not None:
                    wait = min(max(wait, last.retry_after), RETRY_AFTER_CAP_S)
                time.sleep(wait)
            try:
                return _download_once(client, url, dest, part, settings, max_bytes, deadline, judge)
            except ProviderError as err:
                if not err.retryable:
                    raise
                last = err
            finally:
                part.unlink(missing_ok=True)
    assert last is not None
    raise last


def _download_once(
    client: httpx.Client,
    url: str,
    dest: Path,
    part: Path,
    settings: Settings,
    max_bytes: int,
    deadline: float,
    judge: Callable[[Sniffed], None],
) -> Path:
    try:
        resp = _open(client, url, allow_private=settings.allow_private_urls)
    except httpx.TimeoutException as exc:
        raise ProviderError(
            ErrorKind.TIMEOUT, "The result link did not answer in time.", retryable=True
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderError(
            ErrorKind.UNAVAILABLE,
            "The server holding the result could not be reached.",
            retryable=True,
        ) from exc
    with contextlib.closing(resp):
        code = resp.status_code
        if code in (403, 404, 410):
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                f"The result link has expired or is gone (HTTP {code}); the provider no "
                "longer serves this file.",
                status_code=code,
            )
        if code == 429 or code >= 500:
            kind = ErrorKind.RATE_LIMITED if code == 429 else ErrorKind.UNAVAILABLE
            raise ProviderError(
                kind,
                f"The server holding the result answered HTTP {code}; try again later.",
                retryable=True,
                retry_after=_retry_after(resp),
                status_code=code,
            )
        if code != 200:
            raise ProviderError(
                ErrorKind.UNEXPECTED,
                f"The result link answered HTTP {code} instead of the file.",
                status_code=code,
            )
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) <= max_bytes:
            # A size that cannot fit is refused before a byte is written, instead of filling
            # the disk to the last byte (and starving the database) and failing anyway.
            ensure_free_space(dest.parent, int(declared))
        try:
            with part.open("wb") as fh:
                _stream(resp, fh, max_bytes=max_bytes, deadline=deadline, on_head=judge)
                fh.flush()
                os.fsync(fh.fileno())
        except _Oversize as exc:
            raise InputError(
                f"The result file is larger than the {_human(exc.limit)} limit, so it was "
                "not downloaded."
            ) from exc
        except httpx.TimeoutException as exc:
            raise ProviderError(
                ErrorKind.TIMEOUT, "Downloading the result took too long.", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderError(
                ErrorKind.UNAVAILABLE,
                "The connection dropped while downloading the result.",
                retryable=True,
            ) from exc
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return dest


# ---------------------------------------------------------------- user links


def _url_index(settings: Settings, url: str) -> Path:
    return settings.uploads_dir / ".by-url" / hashlib.sha256(url.encode()).hexdigest()


def stored_copy(url: str, settings: Settings) -> Path | None:
    """The file a link gave when it was ingested, if it is still in the uploads dir."""
    index = _url_index(settings, url.strip())
    try:
        known = settings.uploads_dir / index.read_text().strip()
    except OSError:
        return None
    return known if known.is_file() else None


def ingest_url(url: str, settings: Settings, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Fetch a user's video or image link into the uploads dir; return the stored path.

    Files are named by the SHA-256 of their content, and each URL remembers what it gave,
    so the same link (or the same file behind two links) is stored, and fetched, once.
    Raises InputError with a sentence for every refusal.
    """
    url = url.strip()
    check_url(url, allow_private=settings.allow_private_urls)
    index = _url_index(settings, url)
    known = stored_copy(url, settings)
    if known is not None:
        return known

    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.uploads_dir / f".ingest-{uuid.uuid4().hex}.part"
    named = _url_ext(url)
    found: list[Sniffed] = []

    def judge(s: Sniffed) -> None:
        found.append(s)
        if s.kind == "html":
            raise InputError(
                "The link leads to a web page, not to a video or image file. Open the page, "
                "copy the direct link to the file itself (it usually ends in .mp4, .png or "
                ".jpg), and try again."
            )
        if s.kind == "text":
            raise InputError("The link leads to a text document, not a video or image file.")
        if s.kind not in ("video", "image"):
            raise InputError(
                "The file behind the link is not a video or image this app can read; "
                "it may be damaged or of another kind."
            )
        if named in VIDEO_EXTS and s.kind != "video":
            raise InputError(
                f"The link is named like a video ({named}) but the file is {s.describe()}. "
                "Check that it is the right link."
            )
        if named in IMAGE_EXTS and s.kind != "image":
            raise InputError(
                f"The link is named like an image ({named}) but the file is {s.describe()}. "
                "Check that it is the right link."
            )

    hasher = hashlib.sha256()
    deadline = time.monotonic() + INGEST_DEADLINE_S
    try:
        with _client(settings, TIMEOUT) as client:
            resp = _open(client, url, allow_private=settings.allow_private_urls)
            with contextlib.closing(resp):
                _check_ingest_status(resp)
                with tmp.open("wb") as fh:
                    _stream(
                        resp,
                        fh,
                        max_bytes=max_bytes,
                        deadline=deadline,
                        on_head=judge,
                        hasher=hasher,
                    )
                    fh.flush()
                    os.fsync(fh.fileno())
        final = settings.uploads_dir / f"{hasher.hexdigest()}{found[0].ext}"
        if final.exists():
            tmp.unlink()
        else:
            os.replace(tmp, final)
            _fsync_dir(final.parent)
    except _Oversize as exc:
        raise InputError(
            f"The file behind the link is larger than the {_human(exc.limit)} limit. "
            "Use a shorter or smaller file."
        ) from exc
    except httpx.TimeoutException as exc:
        raise InputError(
            "The server behind the link did not answer in time. Try again, or download the "
            "file and upload it."
        ) from exc
    except httpx.ProxyError as exc:
        host = urlsplit(url).hostname or url
        raise InputError(
            f"Could not fetch the link: the proxy would not connect to {host} ({exc}). Check "
            "the proxy setting (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), or ask whoever runs the "
            "proxy to allow the site."
        ) from exc
    except httpx.TransportError as exc:
        host = urlsplit(url).hostname or url
        raise InputError(
            f"Could not fetch the link: the connection to {host} failed. Check the link."
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)

    index.parent.mkdir(parents=True, exist_ok=True)
    index_tmp = index.with_suffix(".tmp")
    index_tmp.write_text(final.name)
    os.replace(index_tmp, index)
    return final


def _check_ingest_status(resp: httpx.Response) -> None:
    code = resp.status_code
    if code == 200:
        return
    if code in (404, 410):
        msg = f"The link answered 'not found' (HTTP {code}). Check that it is still valid."
    elif code in (401, 403):
        msg = (
            f"The server refused access to the file (HTTP {code}); it may be private or the "
            "link may have expired."
        )
    elif code == 429:
        msg = "The server behind the link is limiting requests (HTTP 429). Try again later."
    elif code >= 500:
        msg = f"The server behind the link had an error (HTTP {code}). Try again later."
    else:
        msg = f"The link answered HTTP {code} instead of the file."
    raise InputError(msg)
