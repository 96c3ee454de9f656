"""URL vetting: what may be fetched and what is refused, with the sentence a person sees."""

from __future__ import annotations

import httpx
import pytest

from services.errors import InputError
from services.netguard import check_url, guarded_transport
from tests.media.conftest import MediaServer


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "Only http:// and https://"),
        ("ftp://127.0.0.1/a.mp4", "Only http:// and https://"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("http:///nohost.mp4", "no host name"),
        ("http://127.0.0.1:8080/a.mp4", "loopback"),
        ("http://localhost/a.mp4", "loopback"),
        ("http://[::1]/a.mp4", "loopback"),
        ("http://[::ffff:127.0.0.1]/a.mp4", "loopback"),
        ("http://10.1.2.3/a.mp4", "private network"),
        ("http://192.168.0.10/a.mp4", "private network"),
        ("http://172.16.5.5/a.mp4", "private network"),
        ("http://169.254.1.1/a.mp4", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("http://224.0.0.1/a.mp4", "multicast"),
        ("http://0.0.0.0/a.mp4", "unspecified"),
        ("http://100.64.0.1/a.mp4", "reserved"),
        ("http://user:pw@127.0.0.1/a.mp4", "user name or password"),
        ("http://no-such-host.invalid/a.mp4", "could not be found"),
        ("http://[::1/a.mp4", "not a valid link"),
    ],
)
def test_refused_by_default(url: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        check_url(url, allow_private=False)
    assert fragment in str(err.value)
    assert str(err.value).endswith(".")


def test_loopback_allowed_when_private_urls_allowed() -> None:
    check_url("http://127.0.0.1:9/a.mp4", allow_private=True)
    check_url("https://localhost/a.mp4", allow_private=True)
    check_url("http://10.0.0.1/a.mp4", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
        "http://224.0.0.1/",
    ],
)
def test_metadata_and_multicast_refused_even_when_private_allowed(url: str) -> None:
    with pytest.raises(InputError):
        check_url(url, allow_private=True)


def test_public_literal_address_passes() -> None:
    # A literal public address needs no DNS, so this stays offline.
    check_url("https://93.184.216.34/video.mp4", allow_private=False)


def test_connect_time_guard_refuses_even_without_the_url_check(server: MediaServer) -> None:
    """The transport vets the address it dials, so a DNS answer that changes after
    check_url (rebinding) still cannot reach a private address."""
    url = server.add("/secret", body=b"internal")
    with (
        httpx.Client(transport=guarded_transport(allow_private=False)) as client,
        pytest.raises(httpx.ConnectError) as err,
    ):
        client.get(url)
    assert "loopback" in str(err.value)
    assert server.hits == {}
    with httpx.Client(transport=guarded_transport(allow_private=True)) as client:
        assert client.get(url).content == b"internal"
