"""URL ingestion and result downloads against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from services import fetch
from services.config import Settings
from services.errors import ErrorKind, InputError, ProviderError
from tests.media.conftest import MediaServer

MP4 = {"Content-Type": "video/mp4"}


@pytest.fixture(scope="module")
def clip_bytes(media: dict[str, Path]) -> bytes:
    return media["short2s"].read_bytes()


@pytest.fixture(scope="module")
def png_bytes(media: dict[str, Path]) -> bytes:
    return media["i16x9"].read_bytes()


# ------------------------------------------------------------------ ingest_url


def test_ingest_stores_by_content_hash_and_fetches_once(
    server: MediaServer, settings: Settings, clip_bytes: bytes
) -> None:
    url = server.add("/clip.mp4", body=clip_bytes, headers=MP4)
    path = fetch.ingest_url(url, settings)
    assert path.parent == settings.uploads_dir
    assert path.name == hashlib.sha256(clip_bytes).hexdigest() + ".mp4"
    assert path.read_bytes() == clip_bytes
    assert fetch.ingest_url(url, settings) == path
    assert server.hits["/clip.mp4"] == 1
    # The same bytes behind another link: fetched (new link) but stored once.
    other = server.add("/copy-of-clip", body=clip_bytes, headers=MP4)
    assert fetch.ingest_url(other, settings) == path
    stored = [p for p in settings.uploads_dir.iterdir() if p.is_file()]
    assert stored == [path]


def test_ingest_image_gets_image_suffix(
    server: MediaServer, settings: Settings, png_bytes: bytes
) -> None:
    url = server.add("/face?size=big", body=png_bytes, headers={"Content-Type": "image/png"})
    assert fetch.ingest_url(url, settings).suffix == ".png"


def test_ingest_follows_redirects(
    server: MediaServer, settings: Settings, clip_bytes: bytes
) -> None:
    server.add("/final.mp4", body=clip_bytes, headers=MP4)
    server.add("/hop2", status=302, headers={"Location": "/final.mp4"})
    url = server.add("/hop1", status=301, headers={"Location": server.url("/hop2")})
    assert fetch.ingest_url(url, settings).read_bytes() == clip_bytes


def test_loopback_refused_by_default(
    server: MediaServer, strict_settings: Settings, clip_bytes: bytes
) -> None:
    url = server.add("/clip.mp4", body=clip_bytes, headers=MP4)
    with pytest.raises(InputError, match="loopback"):
        fetch.ingest_url(url, strict_settings)
    assert server.hits == {}


def test_metadata_address_refused(settings: Settings) -> None:
    with pytest.raises(InputError, match="cloud metadata"):
        fetch.ingest_url("http://169.254.169.254/latest/meta-data/iam", settings)


def test_file_url_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Only http:// and https://"):
        fetch.ingest_url(f"file://{tmp_path}/x.mp4", settings)


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("http://224.1.1.1/a.mp4", "multicast"),
        ("file:///etc/passwd", "Only http:// and https://"),
    ],
)
def test_redirect_targets_are_rechecked(
    server: MediaServer, settings: Settings, location: str, fragment: str
) -> None:
    # Loopback is allowed here so the first hop is reachable; the redirect's target is
    # then vetted again, and refused.
    url = server.add("/redir", status=302, headers={"Location": location})
    with pytest.raises(InputError, match=fragment):
        fetch.ingest_url(url, settings)
    assert server.hits["/redir"] == 1


def test_too_many_redirects(server: MediaServer, settings: Settings) -> None:
    url = server.add("/loop", status=302, headers={"Location": "/loop"})
    with pytest.raises(InputError, match="redirected more than 5 times"):
        fetch.ingest_url(url, settings)
    assert server.hits["/loop"] == 6


def test_oversize_declared(server: MediaServer, settings: Settings, clip_bytes: bytes) -> None:
    url = server.add("/big.mp4", body=clip_bytes, headers=MP4)
    with pytest.raises(InputError, match="larger than the 1000 bytes limit"):
        fetch.ingest_url(url, settings, max_bytes=1000)
    assert not any(settings.uploads_dir.glob("*.part"))


def test_oversize_undeclared_is_cut_while_streaming(
    server: MediaServer, settings: Settings, clip_bytes: bytes
) -> None:
    body = clip_bytes + b"\0" * (3 * 1024 * 1024)
    url = server.add("/stream.mp4", body=body, headers=MP4, send_length=False)
    with pytest.raises(InputError, match="larger than the 2 MB limit"):
        fetch.ingest_url(url, settings, max_bytes=2 * 1024 * 1024)
    assert [p for p in settings.uploads_dir.iterdir() if p.is_file()] == []


def test_html_page_refused(server: MediaServer, settings: Settings) -> None:
    page = b"<!doctype html><html><body>Sign in to view this video</body></html>" * 3
    url = server.add("/watch.mp4", body=page, headers={"Content-Type": "text/html"})
    with pytest.raises(InputError, match="web page, not to a video or image"):
        fetch.ingest_url(url, settings)


def test_image_named_mp4_refused(server: MediaServer, settings: Settings, png_bytes: bytes) -> None:
    url = server.add("/clip.mp4", body=png_bytes, headers=MP4)
    with pytest.raises(InputError, match=r"named like a video \(\.mp4\) but the file is"):
        fetch.ingest_url(url, settings)


def test_random_bytes_refused(server: MediaServer, settings: Settings) -> None:
    url = server.add("/blob", body=bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a video or image"):
        fetch.ingest_url(url, settings)


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(404, "not found"), (403, "refused access"), (500, "had an error"), (418, "HTTP 418")],
)
def test_http_errors_have_sentences(
    server: MediaServer, settings: Settings, status: int, fragment: str
) -> None:
    url = server.add("/x.mp4", status=status, body=b"nope")
    with pytest.raises(InputError, match=fragment):
        fetch.ingest_url(url, settings)


def test_unreachable_host_sentence(settings: Settings) -> None:
    srv = MediaServer()
    url = srv.url("/gone.mp4")
    srv.close()
    with pytest.raises(InputError, match=r"connection to 127\.0\.0\.1 failed"):
        fetch.ingest_url(url, settings)


# ------------------------------------------------------------------ download


def test_download_atomic(
    server: MediaServer, settings: Settings, clip_bytes: bytes, tmp_path: Path
) -> None:
    url = server.add("/result.mp4", body=clip_bytes, headers=MP4)
    dest = tmp_path / "out" / "task1.mp4"
    assert fetch.download(url, dest, settings, max_bytes=10**8) == dest
    assert dest.read_bytes() == clip_bytes
    assert not dest.with_suffix(".part").exists()


@pytest.mark.parametrize("status", [403, 404, 410])
def test_download_expired_link(
    server: MediaServer, settings: Settings, tmp_path: Path, status: int
) -> None:
    url = server.add("/r.mp4", status=status, body=b"<Error>AccessDenied</Error>")
    with pytest.raises(ProviderError) as err:
        fetch.download(url, tmp_path / "r.mp4", settings, max_bytes=10**8, backoff_s=0)
    assert err.value.kind is ErrorKind.NOT_FOUND
    assert f"HTTP {status}" in str(err.value)
    assert "expired or is gone" in str(err.value)
    assert server.hits["/r.mp4"] == 1  # never retried
    assert not (tmp_path / "r.mp4").exists()


def test_download_retries_5xx_and_429(
    server: MediaServer, settings: Settings, clip_bytes: bytes, tmp_path: Path
) -> None:
    url = server.add(
        "/r.mp4",
        body=clip_bytes,
        headers=MP4,
        before=[(503, {}, b"busy"), (429, {"Retry-After": "0"}, b"slow down")],
    )
    dest = fetch.download(url, tmp_path / "r.mp4", settings, max_bytes=10**8, backoff_s=0.01)
    assert dest.read_bytes() == clip_bytes
    assert server.hits["/r.mp4"] == 3


def test_download_gives_up_with_retryable_error(
    server: MediaServer, settings: Settings, tmp_path: Path
) -> None:
    url = server.add("/r.mp4", status=502, body=b"bad gateway")
    with pytest.raises(ProviderError) as err:
        fetch.download(
            url, tmp_path / "r.mp4", settings, max_bytes=10**8, attempts=3, backoff_s=0.01
        )
    assert err.value.retryable
    assert err.value.kind is ErrorKind.UNAVAILABLE
    assert "HTTP 502" in str(err.value)
    assert server.hits["/r.mp4"] == 3


def test_download_timeout_is_retried_then_reported(
    server: MediaServer, settings: Settings, clip_bytes: bytes, tmp_path: Path
) -> None:
    url = server.add("/slow.mp4", body=clip_bytes, headers=MP4, delay_s=30)
    with pytest.raises(ProviderError) as err:
        fetch.download(
            url,
            tmp_path / "s.mp4",
            settings,
            max_bytes=10**8,
            attempts=2,
            backoff_s=0.01,
            timeout=httpx.Timeout(0.3),
        )
    assert err.value.kind is ErrorKind.TIMEOUT
    assert err.value.retryable
    assert server.hits["/slow.mp4"] == 2


def test_download_html_instead_of_video(
    server: MediaServer, settings: Settings, tmp_path: Path
) -> None:
    url = server.add("/r.mp4", body=b"<html><body>Service error</body></html>" * 4)
    with pytest.raises(InputError, match="web page instead of a video"):
        fetch.download(url, tmp_path / "r.mp4", settings, max_bytes=10**8)
    assert list(tmp_path.iterdir()) == []


def test_download_expect_image(
    server: MediaServer, settings: Settings, png_bytes: bytes, clip_bytes: bytes, tmp_path: Path
) -> None:
    img = server.add("/a.png", body=png_bytes)
    vid = server.add("/b.mp4", body=clip_bytes)
    assert fetch.download(img, tmp_path / "a.png", settings, max_bytes=10**8, expect="image")
    with pytest.raises(InputError, match="instead of an image"):
        fetch.download(vid, tmp_path / "b.png", settings, max_bytes=10**8, expect="image")
    assert fetch.download(vid, tmp_path / "c.mp4", settings, max_bytes=10**8, expect=None)


def test_download_oversize(
    server: MediaServer, settings: Settings, clip_bytes: bytes, tmp_path: Path
) -> None:
    url = server.add("/r.mp4", body=clip_bytes, send_length=False)
    with pytest.raises(InputError, match="larger than"):
        fetch.download(url, tmp_path / "r.mp4", settings, max_bytes=1024)
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_private_by_default(
    server: MediaServer, strict_settings: Settings, clip_bytes: bytes, tmp_path: Path
) -> None:
    url = server.add("/r.mp4", body=clip_bytes)
    with pytest.raises(InputError, match="loopback"):
        fetch.download(url, tmp_path / "r.mp4", strict_settings, max_bytes=10**8)
    assert server.hits == {}
