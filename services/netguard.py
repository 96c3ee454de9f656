"""Refuse URLs that would make this machine fetch from itself, its network or a cloud
metadata service (server-side request forgery).

Two layers: `check_url` vets a URL before each request and each redirect hop, and
`guarded_transport` re-vets the address actually dialled, so a host whose DNS answer changes
between the check and the connection (DNS rebinding) still cannot reach a private address.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from functools import cache
from urllib.parse import urlsplit

import httpcore
import httpx

from services.errors import InputError

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


def _blocked_reason(ip: IPAddress, *, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise InputError with a sentence unless `url` is an http(s) URL to a public host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InputError(f"This is not a valid link: {url!r}.") from exc
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "no scheme"
        raise InputError(
            f"Only http:// and https:// links can be fetched, not {scheme}. "
            "Upload the file instead, or give a web link to it."
        )
    host = parts.hostname
    if not host:
        raise InputError(f"The link {url!r} has no host name.")
    if parts.username is not None or parts.password is not None:
        raise InputError(
            "Links with a user name or password in them are not fetched; "
            "use a plain public link to the file."
        )
    if host.lower().rstrip(".") in _METADATA_HOSTS:
        raise InputError(
            f"The link points to a cloud metadata service ({host}), which this app does not "
            "fetch from. Use a public http(s) link to the file."
        )
    default_port = 443 if parts.scheme.lower() == "https" else 80
    check_addresses(host, _resolve(host, port or default_port), allow_private=allow_private)


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
            addresses = _resolve(host, port)
            check_addresses(host, addresses, allow_private=self.allow_private)
        except InputError as exc:
            # httpx maps ConnectError to httpx.ConnectError; the sentence travels in args.
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


@cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s of CPU: every download shares one context (the
    monitor archives results one client each)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def guarded_transport(*, allow_private: bool) -> httpx.HTTPTransport:
    """An httpx transport whose every TCP connection goes through the address check.

    Proxies from the environment are not used: a proxy would dial the target itself,
    out of reach of the check.
    """
    transport = httpx.HTTPTransport(retries=0, verify=_tls_context())
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.ConnectionPool):
        # httpx has no public hook for the network backend; swap the pool it built for an
        # identical one with our backend (ssl context and http/1.1 defaults kept).
        transport._pool = httpcore.ConnectionPool(
            ssl_context=pool._ssl_context,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )
    return transport


def blocked_sentence(exc: BaseException) -> str | None:
    """The netguard sentence carried by an httpx.ConnectError raised by the guarded backend."""
    text = str(exc)
    if "which this app does not fetch from" in text or "could not be found" in text:
        return text
    return None
