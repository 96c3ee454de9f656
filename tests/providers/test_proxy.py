"""Proxies from the environment (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY) for provider
calls — creates over httpx, polls over libcurl — and for link fetches, whose address guard
still vets the target. A real forward proxy and real emulators, all on 127.0.0.1."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.config import Settings, load_settings
from services.errors import ConfigError, InputError, ProviderError, TransportError
from services.fetch import download, ingest_url
from services.netconf import ProxyRoutes
from services.netguard import guarded_transport
from tests.emulators import EMULATORS, Emulator
from tests.emulators.media import tiny_mp4
from tests.providers.conftest import MakeHarness, build_provider
from tests.providers.forward_proxy import ForwardProxy, Seen

# tests/conftest.py clears the proxy variables for the whole run; each test here sets exactly
# the ones it is about (monkeypatch takes them away again).


@pytest.fixture(autouse=True)
def not_a_cgi_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUEST_METHOD", raising=False)  # urllib then skips HTTP_PROXY


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as p:
        yield p


@pytest.fixture
def media() -> Iterator[Emulator]:
    """Any emulator serves /files/<name>: here, the server behind the links."""
    emu = EMULATORS["runway"]().start()
    yield emu
    emu.stop()


def _by_libcurl(seen: Seen) -> bool:
    # libcurl adds Proxy-Connection to what it sends a proxy; httpcore does not. The request's
    # own headers are the same on both paths (the poll transport sends httpx's exactly).
    return "proxy-connection" in seen.headers


# ---- provider calls ------------------------------------------------------------------------


@pytest.mark.parametrize(("provider_id", "poll_method"), [("runway", "GET"), ("cometapi", "POST")])
def test_create_over_httpx_and_polls_over_libcurl_both_go_through_the_proxy(
    harness: MakeHarness,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    provider_id: str,
    poll_method: str,
) -> None:
    # Upper-case HTTP_PROXY: libcurl alone ignores it (the "httpoxy" rule), httpx honours it.
    # Both paths use it here, because libcurl is told the proxy rather than left to look.
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    h = harness(provider_id, polls_to_finish=2)
    task_id = h.start_task()
    updates = h.poll_until_done(task_id)
    assert updates[-1].status.value == "succeeded"

    seen = [s for s in proxy.seen if "/files/" not in s.target]
    creates = [s for s in seen if not _by_libcurl(s)]
    polls = [s for s in seen if _by_libcurl(s)]
    assert creates and all(s.method == "POST" for s in creates)
    assert len(polls) == len(updates)
    assert {s.method for s in polls} == {poll_method}
    assert all(s.target.startswith(h.emu.url + "/") for s in seen)
    assert not any(s.refused for s in seen)


@pytest.mark.parametrize(
    "no_proxy",
    ["127.0.0.1", "localhost,127.0.0.0/8", " example.com , 127.0.0.1:1", "::1,127.0.0.1", "*"],
)
def test_no_proxy_sends_the_provider_direct(
    harness: MakeHarness, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    h = harness("runway", polls_to_finish=1)
    updates = h.poll_until_done(h.start_task())
    assert updates[-1].status.value == "succeeded"
    assert proxy.seen == []


def test_lower_case_names_win_and_all_proxy_fills_in(
    harness: MakeHarness,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    monkeypatch.setenv("ALL_PROXY", f"127.0.0.1:{closed_port}")  # no scheme: an http proxy
    monkeypatch.setenv("all_proxy", proxy.url)
    h = harness("runway", polls_to_finish=1)
    h.poll_until_done(h.start_task())
    assert proxy.seen and all(s.target.startswith(h.emu.url) for s in proxy.seen)


def test_proxy_credentials_go_to_the_proxy_on_both_paths_and_never_into_a_sentence(
    harness: MakeHarness, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url.replace("http://", "http://pat:s3cret%21@"))
    h = harness("runway", polls_to_finish=1)
    h.poll_until_done(h.start_task())
    expected = "Basic " + base64.b64encode(b"pat:s3cret!").decode()
    assert {_by_libcurl(s) for s in proxy.seen} == {True, False}
    assert {s.headers.get("proxy-authorization") for s in proxy.seen} == {expected}
    h.emu.stop()  # now the proxy answers 502 for the provider
    with pytest.raises(ProviderError) as err:
        h.provider.poll("gone")
    assert err.value.status_code == 502
    assert "s3cret" not in f"{err.value} {err.value.detail}"


def test_an_https_provider_is_reached_through_a_connect_tunnel_on_both_paths(
    tmp_path: Path, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator speaks plain HTTP, so TLS fails after the tunnel opens: enough to see
    both paths ask the proxy for the same tunnel, and fail as "not sent"."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with EMULATORS["runway"]() as emu:
        tunnel = f"CONNECT 127.0.0.1:{emu.port}"
        env = {**emu.env(), "REENACT_RUNWAY_BASE_URL": f"https://127.0.0.1:{emu.port}"}
        provider = build_provider("runway", tmp_path, env, [], max_retries=0)
        try:
            with pytest.raises(TransportError) as polled:
                provider.poll("task-1")
            with pytest.raises(TransportError) as created:
                provider.http.call("POST", "/v1/character_performance", idempotent=False)
        finally:
            provider.close()
    assert [(_by_libcurl(s), f"{s.method} {s.target}") for s in proxy.seen] == [
        (True, tunnel),
        (False, tunnel),
    ]
    for err in (polled.value, created.value):
        assert err.sent is False
        assert f"through the proxy 127.0.0.1:{proxy.port} (HTTPS_PROXY)" in str(err)


def test_a_proxy_refusing_the_tunnel_means_not_sent_on_both_paths(
    tmp_path: Path, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test proxy refuses every host but 127.0.0.1 without dialling it; `.invalid` names
    # never resolve anywhere.
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    env = {
        "REENACT_RUNWAY_API_KEY": "key",
        "REENACT_RUNWAY_BASE_URL": "https://provider.invalid",
    }
    provider = build_provider("runway", tmp_path, env, [], max_retries=0)
    try:
        with pytest.raises(TransportError) as polled:
            provider.poll("task-1")
        with pytest.raises(TransportError) as created:
            provider.http.call("POST", "/v1/character_performance", idempotent=False)
    finally:
        provider.close()
    for err in (polled.value, created.value):
        assert err.sent is False  # the create may be retried: nothing reached the provider
        assert str(err) == (
            f"Could not reach Runway at provider.invalid: the proxy 127.0.0.1:{proxy.port} "
            "(HTTPS_PROXY) would not connect to it (it answered HTTP 403). Check the proxy "
            "setting, or ask whoever runs the proxy to allow provider.invalid."
        )
    assert [s.refused for s in proxy.seen] == [True, True]


def test_a_socks_proxy_is_a_config_sentence(
    harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@127.0.0.1:1080")
    h = harness("runway")
    with pytest.raises(ConfigError) as err:
        h.provider.poll("task-1")
    assert "ALL_PROXY names a socks5 proxy" in str(err.value)
    assert "pw" not in str(err.value)
    assert h.emu.stats()["routes"] == {}


# ---- link fetches --------------------------------------------------------------------------


def _settings(tmp_path: Path, allow_private: bool) -> Settings:
    env = {"REENACT_DATA_DIR": str(tmp_path / "data")}
    if allow_private:
        env["REENACT_ALLOW_PRIVATE_URLS"] = "1"
    return load_settings(env=env, secrets={})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_link_fetch_through_the_proxy_still_refuses_a_loopback_target(
    tmp_path: Path,
    proxy: ForwardProxy,
    media: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = media.add_file("clip.mp4", tiny_mp4(), "video/mp4").replace("127.0.0.1", host)
    settings = _settings(tmp_path, allow_private=False)
    with pytest.raises(InputError, match=r"this machine \(loopback\)"):
        ingest_url(url, settings)
    # The transport's own check, without the link check in front of it: the target is
    # vetted before the request is handed to the proxy.
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(httpx.ConnectError, match=r"this machine \(loopback\)"),
    ):
        client.get(url)
    assert proxy.seen == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/"]
)
def test_metadata_stays_refused_through_the_proxy_with_private_addresses_allowed(
    proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with (
        httpx.Client(transport=guarded_transport(allow_private=True)) as client,
        pytest.raises(httpx.ConnectError, match="cloud metadata"),
    ):
        client.get(url)
    assert proxy.seen == []


def test_allowed_links_and_results_are_fetched_through_the_proxy(
    tmp_path: Path, proxy: ForwardProxy, media: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    data = tiny_mp4()
    url = media.add_file("clip.mp4", data, "video/mp4")
    settings = _settings(tmp_path, allow_private=True)
    stored = ingest_url(url, settings)
    assert stored.read_bytes() == data
    result = download(url, tmp_path / "result.mp4", settings, max_bytes=1 << 20, expect="video")
    assert result.read_bytes() == data
    assert proxy.targets() == [f"GET {url}", f"GET {url}"]


def test_no_proxy_sends_a_link_fetch_direct(
    tmp_path: Path, proxy: ForwardProxy, media: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("no_proxy", "127.0.0.0/8")
    url = media.add_file("clip.mp4", tiny_mp4(), "video/mp4")
    assert ingest_url(url, _settings(tmp_path, allow_private=True)).is_file()
    assert proxy.seen == []


# ---- the decision itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "url", "direct"),
    [
        ("example.com", "https://example.com/a", True),
        ("example.com", "https://api.example.com/a", True),
        ("example.com", "https://badexample.com/a", False),
        (".example.com", "https://example.com/a", True),
        ("*.example.com", "https://www.example.com/a", True),
        ("EXAMPLE.com", "https://Example.COM./a", True),
        ("10.0.0.0/8", "http://10.20.30.40/a", True),
        ("10.0.0.0/8", "http://11.0.0.1/a", False),
        ("127.0.0.1", "http://localhost/a", False),  # no lookups: a name is not its address
        ("localhost", "http://127.0.0.1/a", False),
        ("[::1]", "http://[::1]:8080/a", True),
        ("::1", "http://[::1]/a", True),
        ("fd00::/8", "http://[fd12::1]/a", True),
        ("api.example.com:8443", "https://api.example.com/a", True),  # the port is ignored
        ("", "https://example.com/a", False),
    ],
)
def test_no_proxy_follows_curls_rules(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, direct: bool
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    routes = ProxyRoutes.from_environment()
    assert (routes.proxy_for(httpx.URL(url)) is None) is direct


def test_http_proxy_is_ignored_inside_a_cgi_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CGI request's "Proxy:" header arrives as HTTP_PROXY; urllib (and so httpx) skip it.
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    assert not ProxyRoutes.from_environment()
