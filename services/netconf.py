"""How this process reaches the network: the one TLS context every client shares, and the proxy
each request goes through, as the standard environment variables say.

Proxies are read the way httpx and curl read them: `HTTPS_PROXY` for https URLs, `HTTP_PROXY`
for http URLs, `ALL_PROXY` for either when its own is unset (lower-case names win over
upper-case ones; `HTTP_PROXY` is ignored inside a CGI request, as urllib does, because a client
can set that header). A proxy URL without a scheme is an http:// proxy. `NO_PROXY` lists hosts
reached directly, with curl's rules (CURLOPT_NOPROXY): `*` turns proxies off; a name
matches itself and every subdomain (`example.com` and `.example.com` both cover
`www.example.com` and `example.com`); an IP address matches itself and a CIDR block (`10.0.0.0/8`,
`127.0.0.0/8`, `::1/128`) every address in it, with or without brackets; a `:port` after an
entry is ignored. Loopback is proxied like any other host unless `NO_PROXY` says otherwise
(`localhost,127.0.0.1,::1` is the usual way), as in httpx and curl.

The decision is made here once per request (`ProxyRoutes.proxy_for`) and handed to whichever
transport carries the request — httpx's or libcurl's — as an explicit setting, so they can never
disagree and neither reads the environment itself.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import httpx

from services.errors import ConfigError

_VARIABLE = {"http": "HTTP_PROXY", "https": "HTTPS_PROXY", "all": "ALL_PROXY"}
_SUPPORTED = ("http", "https")


@cache
def tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s of CPU; every client in the process shares one."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def ca_file() -> str:
    """The same CA bundle as a file, for libcurl."""
    import certifi

    return certifi.where()


@dataclass(frozen=True)
class _Bypass:
    """The hosts NO_PROXY sends direct."""

    everything: bool = False
    names: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, value: str) -> _Bypass:
        names: list[str] = []
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in re.split(r"[,\s]+", value):
            entry = raw.strip().lower()
            if entry == "*":
                return cls(everything=True)
            entry = entry.split("://", 1)[-1]
            if entry.startswith("["):  # [::1] or [::1]:8080
                entry = entry[1:].split("]", 1)[0]
            elif entry.count(":") == 1:  # name:port or 1.2.3.4:port
                entry = entry.split(":", 1)[0]
            entry = entry.removeprefix("*").strip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.append(entry)
        return cls(names=tuple(names), networks=tuple(networks))

    def covers(self, host: str) -> bool:
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return any(host == n or host.endswith("." + n) for n in self.names)
        return any(ip in net for net in self.networks)


@dataclass(frozen=True)
class ProxyRoutes:
    """Which proxy (if any) each URL goes through. Build it with `from_environment()`."""

    by_scheme: Mapping[str, httpx.Proxy]
    sources: Mapping[str, str]  # scheme -> the variable its proxy came from
    bypass: _Bypass = _Bypass()

    @classmethod
    def from_environment(cls) -> ProxyRoutes:
        """The routes the environment asks for now. ConfigError names a variable holding a
        proxy this app cannot use, when a request of ours would go through it."""
        found = urllib.request.getproxies()
        bypass = _Bypass.parse(found.get("no", ""))
        by_scheme: dict[str, httpx.Proxy] = {}
        sources: dict[str, str] = {}
        if bypass.everything:
            return cls({}, {}, bypass)
        built: dict[str, httpx.Proxy] = {}  # one Proxy (so one pool) per distinct URL
        for scheme in _SUPPORTED:
            key = scheme if found.get(scheme) else "all"
            value = found.get(key, "").strip()
            if not value:
                continue
            if value not in built:
                built[value] = _proxy(value, _VARIABLE[key])
            by_scheme[scheme] = built[value]
            sources[scheme] = _VARIABLE[key]
        return cls(by_scheme, sources, bypass)

    def __bool__(self) -> bool:
        return bool(self.by_scheme)

    def proxy_for(self, url: httpx.URL) -> httpx.Proxy | None:
        """The proxy this URL goes through, or None for a direct connection."""
        proxy = self.by_scheme.get(url.scheme)
        if proxy is None or self.bypass.covers(url.raw_host.decode("ascii")):
            return None
        return proxy

    def describe(self, url: str | httpx.URL) -> str | None:
        """For sentences: "the proxy proxy.corp:3128 (HTTPS_PROXY)" when `url` goes through
        one, else None. The proxy's user name and password are never part of it."""
        url = httpx.URL(url)
        proxy = self.proxy_for(url)
        if proxy is None:
            return None
        return f"the proxy {proxy.url.netloc.decode('ascii')} ({self.sources[url.scheme]})"

    def transport(
        self, build: Callable[[httpx.Proxy | None], httpx.BaseTransport]
    ) -> httpx.BaseTransport:
        """`build(proxy)` for every route, behind one transport that picks per request; the
        direct transport itself when no proxy is set (no cost per request then)."""
        if not self:
            return build(None)
        return RoutedTransport(self, build)


class RoutedTransport(httpx.BaseTransport):
    """Hands each request to the transport built for its proxy (or the direct one)."""

    def __init__(
        self, routes: ProxyRoutes, build: Callable[[httpx.Proxy | None], httpx.BaseTransport]
    ) -> None:
        self.routes = routes
        self._direct = build(None)
        self._proxied: dict[int, httpx.BaseTransport] = {}  # one per distinct proxy
        for proxy in routes.by_scheme.values():
            if id(proxy) not in self._proxied:
                self._proxied[id(proxy)] = build(proxy)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.routes.proxy_for(request.url)
        transport = self._direct if proxy is None else self._proxied[id(proxy)]
        return transport.handle_request(request)

    def close(self) -> None:
        self._direct.close()
        for transport in self._proxied.values():
            transport.close()


def _proxy(value: str, variable: str) -> httpx.Proxy:
    url = value if "://" in value else f"http://{value}"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or not parsed.host:
        raise ConfigError(
            f"{variable} does not hold a proxy address this app can read. Set it to a URL such "
            "as http://proxy.example.com:3128, or unset it."
        )
    if parsed.scheme not in _SUPPORTED:
        shown = parsed.copy_with(username=None, password=None)
        raise ConfigError(
            f"{variable} names a {parsed.scheme} proxy ({shown}); this app reaches providers "
            "and links through http:// or https:// proxies only. Set an HTTP proxy there, or "
            "unset it."
        )
    # TLS to an https:// proxy is verified against the same CA bundle as everything else.
    return httpx.Proxy(parsed, ssl_context=tls_context() if parsed.scheme == "https" else None)
