"""The one HTTP base every provider talks through (shaped after the official runwayml SDK's
base client): explicit timeouts, a total deadline per call, retries with exponential backoff
and jitter that honour `Retry-After`, and HTTP failures turned into `ProviderError`s whose
`str()` is a sentence for a creator.

The rule that keeps creators from paying twice: a *create* (non-idempotent) call is repeated
only when the request provably never reached the provider (connect errors) or the provider
refused it before accepting (429, 503). When a create was sent and no answer came, this raises
`TransportError(sent=True)`; the studio then records the task as `unknown` and never re-sends.

Headers are never logged (they carry the key), and the key is scrubbed from every message.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from services.curl_transport import IDEMPOTENT
from services.errors import ConfigError, ErrorKind, ProviderError, TransportError
from services.links import is_web_link
from services.netconf import ProxyRoutes, ca_file, tls_context

if TYPE_CHECKING:
    # The type httpx's own `cookies` setter takes; named only in httpx's private module.
    from httpx._types import CookieTypes

log = logging.getLogger("reenact.http")

_IDEMPOTENT = {IDEMPOTENT: True}  # lets a poll sent as a POST take the libcurl path

# Gateways that gave up waiting on the provider: for a create, the provider may have accepted it.
GATEWAY_TIMEOUTS = frozenset({504, 524})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts and retry policy. Tests pass a no-op `sleep` and small timeouts."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    pool_timeout: float = 10.0
    deadline: float = 120.0  # total seconds for one call, retries included
    max_retries: int = 2
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5  # up to +50 % on top of each backoff wait
    max_retry_after: float = 60.0  # a longer Retry-After is returned to the caller instead
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # None: libcurl polls + httpx, through the environment's proxies (services/netconf.py).
    # A transport given here carries every request as is, proxies included (httpx's rule).
    transport: httpx.BaseTransport | None = None

    def with_(self, **changes: Any) -> HttpOptions:
        return replace(self, **changes)


# Inspects every response (body parsed when it is JSON, else None) and returns the provider's
# own reading of it as an error, or None to fall back to the generic status mapping. It sees
# 2xx answers too: some providers put errors inside HTTP-200 bodies.
ErrorMapper = Callable[[httpx.Response, Any], ProviderError | None]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype", "<html", "<?xml", "<head", "<body")) or "<html" in head


def message_of(body: Any) -> str | None:
    """The human words in a typical JSON error body, whatever the provider's shape."""
    if isinstance(body, str):
        return body or None
    if not isinstance(body, dict):
        return None
    for key in ("error", "message", "msg", "detail", "failMsg", "fail_reason"):
        value = body.get(key)
        if isinstance(value, dict):
            inner = message_of(value)
            if inner:
                return inner
        elif isinstance(value, str) and value.strip():
            return value.strip()
        elif isinstance(value, list) and value:
            inner = message_of(value[0])
            if inner:
                return inner
    return None


def field_of(body: Any, known_fields: tuple[str, ...] = ()) -> str | None:
    """The input field an error body blames, from structured keys or from the message text."""
    if isinstance(body, dict):
        for key in ("field", "param"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        err = body.get("error")
        if isinstance(err, dict):
            inner = field_of(err, ())
            if inner:
                return inner
        for key in ("issues", "errors", "detail"):
            items = body.get(key)
            if isinstance(items, list) and items and isinstance(items[0], dict):
                path = items[0].get("path") or items[0].get("loc")
                if isinstance(path, list) and path:
                    return ".".join(str(p) for p in path if p != "body")
                if isinstance(path, str) and path:
                    return path
    text = message_of(body) or ""
    # Longest first so "reference.uri" wins over "reference".
    for name in sorted(known_fields, key=len, reverse=True):
        if name and name.lower() in text.lower():
            return name
    return None


def _provider_transport(proxy: httpx.Proxy | None) -> httpx.BaseTransport:
    """Polls over libcurl, the rest over httpx's own pool (see services/curl_transport.py),
    both through `proxy` (None: direct)."""
    from services.curl_transport import CurlPollTransport

    fallback = httpx.HTTPTransport(
        verify=tls_context(),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        proxy=proxy,
    )
    return CurlPollTransport(fallback, ca_file=ca_file(), proxy=proxy)


@lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """httpx re-parses and re-validates a str URL on every request (a tenth of a loopback
    poll's CPU); a poll asks the same few thousand task URLs again every interval."""
    return httpx.URL(url)


class _Cookies(httpx.Cookies):
    """The client's cookie jar, minus the cost of adapting every response to urllib's cookie
    API (a fifth of a poll's CPU: 0.28 → 0.23 ms on loopback) when the response sets no
    cookie: there is nothing to store then."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


class _Client(httpx.Client):
    """httpx's client with `_Cookies` as its jar. `cookies` is the client's public jar
    property, which httpx reads for every response; tests/providers/test_httpx_reliance.py fails
    if a response without cookies is adapted for urllib again (the saving gone) or a cookie
    is no longer kept (the jar bypassed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reenact_jar = _Cookies(kwargs.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        return self._reenact_jar

    @cookies.setter
    def cookies(self, cookies: CookieTypes) -> None:
        self._reenact_jar = _Cookies(cookies)


class HttpClient:
    """One provider's connection: base URL, key, retries, error mapping."""

    def __init__(
        self,
        *,
        provider_id: str,
        provider_name: str,
        base_url: str,
        api_key: SecretStr | None,
        key_variable: str | None = None,
        headers: Mapping[str, str] | None = None,
        options: HttpOptions | None = None,
        error_mapper: ErrorMapper | None = None,
        refused_codes: frozenset[int] = frozenset({429, 503}),
        known_fields: tuple[str, ...] = (),
    ) -> None:
        self.provider_id = provider_id
        self.provider_name = provider_name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.key_variable = key_variable or f"REENACT_{provider_id.upper()}_API_KEY"
        self.options = options or HttpOptions()
        self.error_mapper = error_mapper
        self.refused_codes = refused_codes
        self.known_fields = known_fields
        self._headers = dict(headers or {})
        # Built once, not per call: the header set with and without the key, and the usual
        # timeouts (a call's own deadline shortens them only near its end).
        self._request_headers: dict[bool, httpx.Headers] = {}
        o = self.options
        self._full_timeout = httpx.Timeout(
            connect=o.connect_timeout,
            read=o.read_timeout,
            write=o.write_timeout,
            pool=o.pool_timeout,
        )
        self._longest_timeout = max(
            o.connect_timeout, o.read_timeout, o.write_timeout, o.pool_timeout
        )
        self._client: httpx.Client | None = None
        self._routes: ProxyRoutes | None = None  # the environment's proxies, when in use

    # ---- plumbing ----------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            transport = self.options.transport
            if transport is None:
                # Proxies as HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY say (services/netconf.py),
                # read when the client is built; a transport given in the options is used as is.
                self._routes = ProxyRoutes.from_environment()
                transport = self._routes.transport(_provider_transport)
            self._client = _Client(
                timeout=self._full_timeout,
                follow_redirects=False,  # a redirect means a wrong path; Runway forbids them too
                transport=transport,
                headers={"User-Agent": "reenact-studio/0.1", "Accept": "application/json"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def scrub(self, text: str | None) -> str | None:
        """Remove the key from anything a provider echoed back."""
        if text is None or self._api_key is None:
            return text
        secret = self._api_key.get_secret_value()
        return text.replace(secret, "[redacted]") if secret else text

    def _url(self, path: str) -> str:
        if is_web_link(path):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _headers_for(self, authenticated: bool) -> httpx.Headers:
        with_key = authenticated and self._api_key is not None
        headers = self._request_headers.get(with_key)
        if headers is None:
            values = dict(self._headers)
            if with_key:
                assert self._api_key is not None
                values["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
            headers = self._request_headers[with_key] = httpx.Headers(values)
        return headers

    def _timeout(self, remaining: float) -> httpx.Timeout:
        if remaining >= self._longest_timeout:
            return self._full_timeout
        o = self.options
        r = max(0.001, remaining)
        return httpx.Timeout(
            connect=min(o.connect_timeout, r),
            read=min(o.read_timeout, r),
            write=min(o.write_timeout, r),
            pool=min(o.pool_timeout, r),
        )

    # ---- the call ----------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        authenticated: bool = True,
        expect_json: bool = True,
        deadline: float | None = None,
    ) -> Any:
        """Send one logical request; return the parsed JSON body (None when empty).

        Raises ProviderError (mapped), TransportError (network), ConfigError (bad base URL).
        """
        o = self.options
        budget = o.deadline if deadline is None else deadline
        started = time.monotonic()
        url = self._url(path)
        headers = self._headers_for(authenticated)
        attempt = 0
        while True:
            remaining = budget - (time.monotonic() - started)
            try:
                response = self.client.request(
                    method,
                    _parsed_url(url),
                    json=json_body,
                    params=params,
                    data=data,
                    files=files,
                    headers=headers,
                    timeout=self._timeout(remaining),
                    extensions=_IDEMPOTENT if idempotent else None,
                )
                log.debug("%s %s -> %s (attempt %d)", method, path, response.status_code, attempt)
                err, body = self._check(response, expect_json)
                if err is None:
                    return body
                if not self._may_retry_error(err, idempotent):
                    raise self._final(err, idempotent)
                wait = self._wait(attempt, err.retry_after)
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.PoolTimeout,
                httpx.ProxyError,
            ) as exc:
                # Never reached the provider (a proxy that would not open the tunnel
                # included): repeating is safe even for a create.
                log.debug(
                    "%s %s not sent: %s (attempt %d)", method, path, type(exc).__name__, attempt
                )
                err = self._not_sent(exc, url)
                wait = self._wait(attempt, None)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                raise ConfigError(
                    f"The address for {self.provider_name} is not a valid http(s) URL: check "
                    f"REENACT_{self.provider_id.upper()}_BASE_URL."
                ) from exc
            except httpx.LocalProtocolError as exc:
                # The request itself could not be written (a header value with a line break):
                # nothing left this machine, and repeating it cannot help. Keys are checked at
                # load (services.config), so only a key handed in another way gets here.
                raise ConfigError(
                    f"The request to {self.provider_name} could not be sent: a header holds a "
                    f"line break or another character headers cannot carry. Check "
                    f"{self.key_variable} and set it again."
                ) from exc
            except httpx.TransportError as exc:
                # Sent (or partly sent) and no usable answer: the provider may have acted on it.
                log.debug(
                    "%s %s sent, no answer: %s (attempt %d)",
                    method,
                    path,
                    type(exc).__name__,
                    attempt,
                )
                err = self._sent_no_answer(exc)
                if not idempotent:
                    raise err from exc
                wait = self._wait(attempt, None)
            attempt += 1
            remaining = budget - (time.monotonic() - started)
            # Leave room for the next attempt itself, not just the wait before it.
            if attempt > o.max_retries or wait is None or wait >= remaining:
                raise self._final(err, idempotent)
            o.sleep(wait)

    def _may_retry_error(self, err: ProviderError, idempotent: bool) -> bool:
        if not err.retryable:
            return False
        if idempotent:
            return True
        return err.kind is ErrorKind.RATE_LIMITED or err.status_code in self.refused_codes

    def _final(self, err: ProviderError, idempotent: bool) -> ProviderError:
        """A create that a gateway timed out on may have been accepted: its outcome is unknown."""
        if not idempotent and err.status_code in GATEWAY_TIMEOUTS:
            return TransportError(
                f"{self.provider_name} did not confirm the request in time (HTTP "
                f"{err.status_code} from its gateway); it may or may not have been accepted.",
                provider=self.provider_id,
                sent=True,
            )
        if (
            not idempotent
            and err.kind is ErrorKind.UNEXPECTED
            and err.status_code is not None
            and 200 <= err.status_code < 300
        ):
            # "OK" with an unreadable body: the provider may well have accepted the create.
            return TransportError(
                f"{err.sentence} It may or may not have accepted the task.",
                provider=self.provider_id,
                sent=True,
            )
        return err

    def _wait(self, attempt: int, retry_after: float | None) -> float | None:
        o = self.options
        if retry_after is not None:
            return None if retry_after > o.max_retry_after else retry_after
        base = min(o.backoff_max, o.backoff_initial * (2**attempt))
        return base * (1 + o.jitter * o.rng.random())

    # ---- outcomes ----------------------------------------------------------------------------
    def _not_sent(self, exc: Exception, url: str) -> TransportError:
        host = urlsplit(url).netloc
        via = self._routes.describe(url) if self._routes is not None else None
        if isinstance(exc, httpx.ProxyError):
            # libcurl says "CONNECT tunnel failed, response 403", httpcore "403 Forbidden".
            code = re.search(r"\b[1-5]\d\d\b", str(exc))
            answered = f" (it answered HTTP {code.group()})" if code else ""
            sentence = (
                f"Could not reach {self.provider_name} at {host}: {via or 'the proxy'} would "
                f"not connect to it{answered}. Check the proxy setting, or ask whoever runs "
                f"the proxy to allow {urlsplit(url).hostname}."
            )
        else:
            reason = (
                "it did not answer the connection"
                if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
                else "the connection was refused or the name did not resolve"
            )
            if via is not None:
                sentence = (
                    f"Could not reach {self.provider_name} at {host} through {via} "
                    f"({reason}). Check the proxy setting and the internet connection, then "
                    "try again."
                )
            else:
                sentence = (
                    f"Could not reach {self.provider_name} at {host} ({reason}). Check the "
                    f"internet connection and REENACT_{self.provider_id.upper()}_BASE_URL, "
                    "then try again."
                )
        return TransportError(sentence, provider=self.provider_id, sent=False)

    def _sent_no_answer(self, exc: Exception) -> TransportError:
        what = (
            "did not answer in time"
            if isinstance(exc, httpx.TimeoutException)
            else "dropped the connection before answering"
        )
        return TransportError(
            f"{self.provider_name} {what}. Try again in a few minutes.",
            provider=self.provider_id,
            sent=True,
        )

    def _check(
        self, response: httpx.Response, expect_json: bool
    ) -> tuple[ProviderError | None, Any]:
        """(None, body) when the response is a usable success; else (the error, body)."""
        body: Any = None
        not_json = False
        if response.content:
            try:
                body = json.loads(response.content)
            except (ValueError, UnicodeDecodeError):
                not_json = True
        if self.error_mapper is not None:
            mapped = self.error_mapper(response, body)
            if mapped is not None:
                return self._clean(mapped), body
        status = response.status_code
        if 200 <= status < 300:
            if expect_json and not_json:
                return self._unexpected(response), None
            return None, (body if expect_json else None)
        return self._clean(self.map_status(response, body, not_json)), body

    def _clean(self, err: ProviderError) -> ProviderError:
        """Scrub the key out of whatever the provider echoed, whoever built the error."""
        scrubbed = self.scrub(err.sentence) or ""
        if scrubbed != err.sentence:
            err.sentence = scrubbed
            err.args = (scrubbed,)
        err.detail = self.scrub(err.detail)
        if err.provider is None:
            err.provider = self.provider_id
        return err

    def _unexpected(self, response: httpx.Response) -> ProviderError:
        text = response.text[:2000]
        if looks_like_html(text) or "html" in response.headers.get("content-type", ""):
            sentence = (
                f"{self.provider_name} answered with a web page instead of data (HTTP "
                f"{response.status_code}). Check REENACT_{self.provider_id.upper()}_BASE_URL "
                "points at the API; if it does, the provider may be having trouble — try again "
                "later."
            )
        else:
            sentence = (
                f"{self.provider_name} answered with unreadable text instead of data (HTTP "
                f"{response.status_code}). Try again later; if it persists, the provider may "
                "have changed its API."
            )
        return ProviderError(
            ErrorKind.UNEXPECTED,
            sentence,
            provider=self.provider_id,
            status_code=response.status_code,
        )

    def map_status(self, response: httpx.Response, body: Any, not_json: bool) -> ProviderError:
        """The generic reading of a non-2xx answer."""
        status = response.status_code
        # A page where JSON was expected (wrong path, a proxy's error page) says nothing about
        # the request itself; auth, rate limits and 5xx keep their meaning whatever the body.
        keeps_meaning = status in (401, 403, 429) or status >= 500
        if not_json and not keeps_meaning:
            return self._unexpected(response)
        detail = None
        if not_json and not looks_like_html(response.text[:2000]):
            detail = self.scrub(response.text[:300].strip()) or None
        return self.map_code(
            status,
            body if not not_json else detail,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def map_code(
        self, status: int, body: Any, *, retry_after: float | None = None
    ) -> ProviderError:
        """An HTTP-like status code (from the status line or a body `code`) as an error."""
        detail = self.scrub(message_of(body))
        name = self.provider_name
        pid = self.provider_id
        if status in (401, 403):
            return ProviderError(
                ErrorKind.AUTHENTICATION,
                f"The provider rejected the API key: {name} did not accept the key in "
                f"{self.key_variable}. Check it in Settings (or the environment variable) and "
                "try again.",
                provider=pid,
                detail=detail,
                status_code=status,
            )
        if status == 402:
            return ProviderError(
                ErrorKind.INSUFFICIENT_CREDITS,
                f"{name} says the account has run out of credits. Top up the account, then "
                "submit again.",
                provider=pid,
                detail=detail,
                status_code=status,
            )
        if status in (404, 410):
            return ProviderError(
                ErrorKind.NOT_FOUND,
                f"{name} does not know this task (or this address). Check the task id.",
                provider=pid,
                detail=detail,
                status_code=status,
            )
        if status == 429:
            return ProviderError(
                ErrorKind.RATE_LIMITED,
                f"{name} is limiting how fast requests may be made. Wait a minute and try again.",
                provider=pid,
                detail=detail,
                status_code=status,
                retryable=True,
                retry_after=retry_after,
            )
        if status in (400, 409, 413, 415, 422):
            return self.invalid_input(body, detail, status)
        if status >= 500:
            err = body.get("error") if isinstance(body, dict) else None
            code = (
                err.get("code")
                if isinstance(err, dict)
                else (body.get("code") if isinstance(body, dict) else None)
            )
            if code == "invalid_request":
                return self.invalid_input(body, detail, status)
            return ProviderError(
                ErrorKind.UNAVAILABLE,
                f"{name} is unavailable right now (HTTP {status}). Try again in a few minutes.",
                provider=pid,
                detail=detail,
                status_code=status,
                retryable=status in RETRY_STATUSES,
                retry_after=retry_after,
            )
        return ProviderError(
            ErrorKind.UNEXPECTED,
            f"{name} answered HTTP {status}, which this app does not understand. Try again "
            "later; if it persists, the provider may have changed its API.",
            provider=pid,
            detail=detail,
            status_code=status,
        )

    def invalid_input(self, body: Any, detail: str | None, status: int) -> ProviderError:
        fld = field_of(body, self.known_fields)
        where = f" the field '{fld}'" if fld else " the inputs"
        return ProviderError(
            ErrorKind.INVALID_INPUT,
            f"{self.provider_name} refused{where}. Check the video and image against its "
            "limits and try again.",
            provider=self.provider_id,
            detail=detail,
            field=fld,
            status_code=status,
        )
