"""The two meanings of "a link": fetchable (http/https) versus typed with some scheme."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import InputError
from services.links import is_web_link, looks_like_link, looks_like_web_address
from services.studio import Studio


@pytest.mark.parametrize(
    ("value", "web", "link"),
    [
        ("https://example.com/a.mp4", True, True),
        ("HTTP://example.com/a.mp4", True, True),
        ("file:///etc/passwd", False, True),  # a link (refused with a sentence), not a path
        ("ftp://example.com/a.mp4", False, True),
        ("http://[::1/a.mp4", True, True),  # malformed host: still a link, fetching says why
        ("/home/me/a.mp4", False, False),
        ("C:\\clips\\a.mp4", False, False),  # a drive letter is not a scheme
        ("C://clips/a.mp4", False, False),
        ("clips/a:b.mp4", False, False),
        ("example.com/a.mp4", False, False),
    ],
)
def test_web_link_and_any_link(value: str, web: bool, link: bool) -> None:
    assert is_web_link(value) is web
    assert looks_like_link(value) is link


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com/clip.mp4", True),
        ("www.example.com", True),
        ("example.com:8080/clip.mp4", True),
        ("https://example.com/clip.mp4", False),  # already a link
        ("clips/clip.mp4", False),
        ("clip.mp4", False),
    ],
)
def test_web_address_without_scheme(value: str, expected: bool) -> None:
    assert looks_like_web_address(value) is expected


def test_studio_keeps_web_links_and_refuses_other_schemes(tmp_path: Path) -> None:
    env = {"REENACT_DATA_DIR": str(tmp_path / "data")}
    studio = Studio(load_settings(env=env, secrets={}))
    try:
        kept = studio.prepare_inputs("HTTPS://example.com/clip.mp4")
        assert kept.video == "HTTPS://example.com/clip.mp4"
        with pytest.raises(InputError, match="must be a local file or an http\\(s\\) link"):
            studio.prepare_inputs("ftp://example.com/clip.mp4")
        # A path that merely contains "://" further on is still a path: "not found", not
        # "must be a link".
        with pytest.raises(InputError, match="file was not found"):
            studio.prepare_inputs(str(tmp_path / "odd://name.mp4"))
    finally:
        studio.close()
