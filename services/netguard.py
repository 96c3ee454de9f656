"""Refuse URLs that would make this machine fetch from itself, its network or a cloud
metadata service (server-side request forgery).

Two layers: `check_url` vets a URL before each request and each redirect hop, and
`guarded_transport` re-vets the address actually dialled, so a host whose DNS answer changes
between the check and the connection (DNS rebinding) still cannot reach a private address.

Through a proxy (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, unless NO_PROXY exempts the host; see
services/netconf.py) this machine dials the proxy, not the target, so the second layer
changes: right before each request is handed to the proxy, the target's name is resolved here
and every address it has is vetted, as at connect time; a refused target never reaches the
proxy. The proxy then resolves the name again itself, and that answer cannot be seen from
here: a DNS answer that flips in between (rebinding) is caught only by the proxy's own egress
rules. The vetted address is deliberately not pinned into the request (CONNECT 203.0.113.7:443
instead of the name), because corporate proxies allow, log and inspect traffic by host name.
The proxy itself is the operator's choice and is not vetted (it is often on a private
network). A machine that cannot resolve names itself (only the proxy can) therefore cannot
fetch links: the guard refuses what it cannot check rather than let it through unchecked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpcore
import httpx

from services.errors import InputError
from services.netconf import ProxyRoutes, tls_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints: refused even when private addresses are allowed,
# because reaching them leaks credentials and there is no test that needs them.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IPv6
    )
)
_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})

# IPv6 prefixes whose last 32 bits are an IPv4 address a gateway will dial for us: NAT64
# (RFC 6052 well-known prefix, RFC 8215 local-use prefix) and IPv4-compatible (::a.b.c.d).
_IPV4_IN_LAST_32 = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)
# A host whose last label is a number is an IPv4 address to WHATWG URL parsers and to
# inet_aton (which getaddrinfo uses), in octal, hex or as fewer than four parts.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to a v4 host: IPv4-mapped, 6to4 (2002::/16,
    bits 16-48), NAT64 and IPv4-compatible (last 32 bits); None for any other address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
        return None  # unspecified and loopback themselves, not ::0.0.0.0 / ::0.0.0.1
    if any(ip in net for net in _IPV4_IN_LAST_32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _blocked_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        # Judged as the IPv4 address it reaches, like any IPv4 address.
        ip = embedded_ipv4(ip) or ip
    if ip in _METADATA_ADDRESSES:
        return "a cloud metadata service"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "this machine (loopback)"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise InputError(
            f"The address {host} could not be found. Check the link for typos."
        ) from exc
    out: list[IPAddress] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        out.append(ipaddress.ip_address(addr))
    return out


def check_addresses(host: str, addresses: Iterable[IPAddress], *, allow_private: bool) -> None:
    addresses = list(addresses)
    if not addresses:
        raise InputError(f"The address {host} could not be found. Check the link for typos.")
    for ip in addresses:
        reason = _blocked_reason(ip, allow_private=allow_private)
        if reason:
            raise InputError(
                f"The link points to {reason} ({host}), which this app does not fetch from. "
                "Use a public http(s) link to the file, or upload the file instead."
            )


def scheme_sentence(url: str, scheme: str) -> str:
    """Why a link that is not http(s) is not fetched, and what to type instead. A link typed
    without "https://" ("example.com/clip.mp4", or "example.com:8080/…", whose host reads as
    a scheme) gets the link to try."""
    after = url.split(":", 1)[1] if scheme else ""
    if not scheme or "." in scheme or ("://" not in url and after[:1].isdigit()):
        return f"Add https:// to the link: https://{url.removeprefix('//')}"
    shown = f"{scheme}://" if "://" in url else f"{scheme}:"
    return (
        f"Only http:// and https:// links can be fetched, not {shown} links. "
        "Upload the file instead, or give a web link to it."
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise InputError with a sentence unless `url` is an http(s) URL to a public host.

    The host judged is the one the HTTP client will dial (httpx's IDNA-encoded form), and
    spellings that parsers read differently (a tab dropped by one, octal digits read by
    another) are refused outright rather than guessed at.
    """
    url = url.strip()
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        # urlsplit silently drops tabs and line breaks; httpx refuses them: never guess.
        raise InputError(
            "The link contains a tab, a line break or another control character. Copy it "
            "again so that it is one line with nothing hidden in it."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"This is not a valid link: {url!r}.") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError(scheme_sentence(url, parts.scheme))
    host = parts.hostname
    if not host:
        raise InputError(f"The link {url!r} has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "Links with a user name or password in them are not fetched; "
            "use a plain public link to the file."
        )
    host = _client_host(url, host)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    vet_host(host, port or default_port, allow_private=allow_private)


def vet_host(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Resolve `host` (the ASCII form a client dials) and return its addresses, or raise
    InputError with a sentence when it is a metadata name or any address is refused."""
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise InputError(
            f"The link points to a cloud metadata service ({host}), which this app does not "
            "fetch from. Use a public http(s) link to the file."
        )
    addresses = _resolve(host, port)
    check_addresses(host, addresses, allow_private=allow_private)
    return addresses


def _client_host(url: str, host: str) -> str:
    """The ASCII host httpx will connect to, or InputError when it cannot use the link."""
    if host.isascii():
        _refuse_odd_ipv4(host)
    try:
        raw = httpx.URL(url).raw_host.decode("ascii")
    except httpx.InvalidURL as exc:
        if any(ch.isdigit() and not ch.isascii() for ch in host):
            raise InputError(
                f"The link's address ({host}) is written with non-ASCII digits. Type it with "
                "ordinary digits 0-9, or use the site's name."
            ) from exc
        raise InputError(f"This is not a valid link ({exc}).") from exc
    _refuse_odd_ipv4(raw)  # IDNA mapping may have made one (a full-width dot is a dot)
    return raw


def _refuse_odd_ipv4(host: str) -> None:
    if ":" in host or not _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        return
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise InputError(
            f"The link's address ({host}) is a number written in an unusual way (octal, "
            "hexadecimal, a single number or fewer than four parts). Write it as four "
            "decimal numbers such as 203.0.113.7, or use the site's name."
        ) from None


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves, vets and dials one address, so what was checked is what is connected to."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = vet_host(host, port, allow_private=self.allow_private)
        except InputError as exc:
            # Mapped to httpx.ConnectError below; the sentence travels in args.
            raise httpcore.ConnectError(str(exc)) from exc
        # TLS still verifies against the original host name (httpcore passes the origin's
        # host as server_hostname), so dialling the IP keeps certificate checks intact.
        # Every address was vetted above; try them in order like create_connection would.
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for ip in dict.fromkeys(addresses):
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last


# httpcore's failures as httpx's, most specific first (the table httpx's own transport keeps).
_HTTPCORE_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _HTTPCORE_ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc), request=request) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors(self._request):
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with _as_httpx_errors(self._request):
                close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over httpcore's public API (a connection pool with the vetting
    network backend, or an HTTP proxy pool) that never lets a refused address be reached.

    Direct: every TCP connection is resolved, vetted and dialled by `_GuardedBackend`.
    Through `proxy`: the target is resolved and vetted before each request goes to the
    proxy (see the module docstring for what that leaves to the proxy).
    """

    def __init__(self, *, allow_private: bool, proxy: httpx.Proxy | None = None) -> None:
        self.allow_private = allow_private
        self.proxy = proxy
        self._pool: httpcore.ConnectionPool | httpcore.HTTPProxy
        if proxy is None:
            self._pool = httpcore.ConnectionPool(
                ssl_context=tls_context(),
                keepalive_expiry=5.0,  # httpx's default, for the same reuse as before
                network_backend=_GuardedBackend(allow_private=allow_private),
            )
        else:
            self._pool = httpcore.HTTPProxy(
                proxy_url=httpcore.URL(
                    scheme=proxy.url.raw_scheme,
                    host=proxy.url.raw_host,
                    port=proxy.url.port,
                    target=proxy.url.raw_path,
                ),
                proxy_auth=proxy.raw_auth,
                proxy_headers=proxy.headers.raw,
                ssl_context=tls_context(),
                proxy_ssl_context=proxy.ssl_context,
                keepalive_expiry=5.0,
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self.proxy is not None:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                vet_host(url.raw_host.decode("ascii"), port, allow_private=self.allow_private)
            except InputError as exc:
                raise httpx.ConnectError(str(exc), request=request) from exc
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def guarded_transport(*, allow_private: bool) -> httpx.BaseTransport:
    """An httpx transport whose every request goes through the address check: direct, or
    through the proxy the environment names (services/netconf.py), with the target vetted.
    ConfigError when that proxy cannot be used."""
    return ProxyRoutes.from_environment().transport(
        lambda proxy: GuardedTransport(allow_private=allow_private, proxy=proxy)
    )


def blocked_sentence(exc: BaseException) -> str | None:
    """The netguard sentence carried by an httpx.ConnectError raised by the guarded backend."""
    text = str(exc)
    if "which this app does not fetch from" in text or "could not be found" in text:
        return text
    return None
