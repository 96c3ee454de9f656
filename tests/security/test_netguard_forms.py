"""The SSRF guard against the address forms that hide an IPv4 address (6to4, NAT64,
IPv4-compatible and IPv4-mapped IPv6) and the URL spellings parsers disagree on (tabs, octal,
hexadecimal, single-number and short IPv4, non-ASCII digits): each is one input's sentence,
and nothing is fetched from a private address.

The decision is tested on addresses and on numeric hosts only: nothing here resolves a
public name or connects anywhere but 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.errors import InputError
from services.netguard import check_addresses, check_url
from tests.cli.support import run
from tests.security.rawserver import RawServer


@pytest.fixture
def server() -> Iterator[RawServer]:
    """Where the odd spellings below would land: nothing may ever reach it."""
    with RawServer(b"not a video") as s:
        yield s


def _port(server: RawServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1:1234::5", "private network"),  # 6to4 of 10.0.0.1
        ("2002:c0a8:101::", "private network"),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 (RFC 6052) of 127.0.0.1
        ("64:ff9b::a00:1", "private network"),
        ("64:ff9b:1::a00:1", "private network"),  # local-use NAT64 (RFC 8215)
        ("::7f00:1", "loopback"),  # IPv4-compatible ::127.0.0.1
        ("::a00:1", "private network"),  # ::10.0.0.1
        ("::ffff:a00:1", "private network"),  # IPv4-mapped
        ("::ffff:7f00:1", "loopback"),
    ],
)
def test_embedded_private_ipv4_is_judged_as_the_ipv4(address: str, reason: str) -> None:
    with pytest.raises(InputError) as err:
        check_addresses("example.test", [ipaddress.ip_address(address)], allow_private=False)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    "address",
    ["2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "::a9fe:a9fe", "::ffff:a9fe:a9fe"],
)
def test_embedded_metadata_address_is_refused_even_with_private_urls_allowed(
    address: str,
) -> None:
    with pytest.raises(InputError, match="cloud metadata"):
        check_addresses("example.test", [ipaddress.ip_address(address)], allow_private=True)


@pytest.mark.parametrize("address", ["2002:808:808::", "64:ff9b::808:808", "2606:4700::1111"])
def test_embedded_public_ipv4_and_plain_public_ipv6_pass(address: str) -> None:
    check_addresses("example.test", [ipaddress.ip_address(address)], allow_private=False)


ODD_HOSTS = [
    ("0177.0.0.1", "unusual way"),  # octal
    ("0x7f.0.0.1", "unusual way"),  # hexadecimal
    ("2130706433", "unusual way"),  # one decimal number
    ("0x7f000001", "unusual way"),
    ("127.1", "unusual way"),  # short form
    ("127.0.0.1.", "unusual way"),  # trailing dot on a numeric address
    ("１２７.0.0.1", "non-ASCII digits"),  # full-width digits
    ("١٢٧.0.0.1", "non-ASCII digits"),  # Arabic-Indic digits
]


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(("host", "fragment"), ODD_HOSTS)
def test_odd_ipv4_spellings_are_a_sentence(host: str, fragment: str, allow_private: bool) -> None:
    with pytest.raises(InputError) as err:
        check_url(f"http://{host}:9/a.mp4", allow_private=allow_private)
    assert fragment in str(err.value)
    assert str(err.value).endswith(".")


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\t:9/a.mp4",
        "http://127.0.0.\t1:9/a.mp4",
        "http://127.0.0.1:9/a\t.mp4",
        "http://127.0.0.1:9/a.mp4\r\nX-Injected: 1",
        "http://127.0.0.1:9/a\x00.mp4",
    ],
)
def test_tabs_line_breaks_and_control_characters_are_a_sentence(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(InputError, match="tab, a line break or another control character"):
        check_url(url, allow_private=allow_private)


def test_a_fullwidth_dot_does_not_smuggle_loopback_past_the_guard() -> None:
    # IDNA maps U+3002 to '.', so this is 127.0.0.1 to the HTTP client.
    with pytest.raises(InputError, match="loopback"):
        check_url("http://127\u30020\u30020\u30021:9/a.mp4", allow_private=False)


def test_check_reports_each_odd_link_and_still_checks_the_other_inputs(
    env: dict[str, str], server: RawServer, video: str
) -> None:
    """`reenact check` with private URLs allowed (the worst case): every odd spelling of
    the loopback server's address is its own failed input, the real file is still checked,
    and the server never sees a request."""
    port = _port(server)
    bad = [f"http://{host}:{port}/a.mp4" for host, _ in ODD_HOSTS] + [
        f"http://127.0.0.1:{port}/a\t.mp4",
        f"http://127.0.0.1\t:{port}/a.mp4",
        "http://[::1/a.mp4",
    ]
    r = run(["check", *bad, video, "--json"], env)
    assert r.code == 1, r.output  # inputs failed: not a crash (that would say "went wrong")
    assert "went wrong" not in r.output
    reports = r.json()
    assert [rep["input"] for rep in reports] == [*bad, video]
    for rep in reports[:-1]:
        assert rep["failed"], rep
        (check,) = rep["report"]["checks"]
        assert check["id"] == "fetch" and check["status"] == "fail"
        assert check["sentence"].endswith("."), check
    assert not reports[-1]["failed"], reports[-1]
    assert Path(reports[-1]["path"]) == Path(video)
    assert server.requests() == []
