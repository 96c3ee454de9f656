"""Pieces of the HTTP base and the publish helpers that need no emulator."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import ConfigError, InputError
from services.http import field_of, message_of, parse_retry_after
from services.models import TaskStatus
from services.providers.remote import progress_fraction
from services.publish import (
    callback_url_for,
    link_for_file,
    public_url_for,
    safe_name,
    sha256_of,
)
from tests.providers.conftest import MakeHarness, build_provider


def test_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(30)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_retry_after_as_an_http_date_is_honoured(harness: MakeHarness) -> None:
    h = harness("runway")
    task_id = h.emu.add_task()
    when = datetime.now(UTC) + timedelta(seconds=3)
    h.emu.fault("rate_limit", route="poll", retry_after=format_datetime(when, usegmt=True))
    assert h.provider.poll(task_id).status is TaskStatus.QUEUED
    assert len(h.sleeps) == 1 and 0.5 < h.sleeps[0] <= 3.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42%", 0.42),
        ("0%", 0.0),
        ("100%", 1.0),
        (42, 0.42),
        (0.42, 0.42),
        ("0.5", 0.5),
        ("1", 1.0),
        (1, 1.0),
        (150, 1.0),
        (-3, 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        (True, None),
        ([1], None),
    ],
)
def test_progress_fraction(value: object, expected: float | None) -> None:
    assert progress_fraction(value) == expected


def test_message_and_field_from_the_usual_error_shapes() -> None:
    assert message_of({"error": {"message": "bad", "code": ""}}) == "bad"
    assert message_of({"error": "ratio: nope"}) == "ratio: nope"
    assert message_of({"code": 422, "msg": "input.seed invalid"}) == "input.seed invalid"
    assert field_of({"issues": [{"path": ["character", "uri"]}]}) == "character.uri"
    assert field_of({"error": {"param": "image"}}) == "image"
    assert (
        field_of({"error": "reference.uri: bad"}, ("reference", "reference.uri")) == "reference.uri"
    )
    assert field_of({"error": "no idea"}, ("seed",)) is None


def test_a_base_url_that_is_not_http_is_a_configuration_error(
    harness: MakeHarness,
) -> None:
    h = harness("runway")
    env = {**h.emu.env(), "REENACT_RUNWAY_BASE_URL": "ftp://127.0.0.1:21"}
    provider = build_provider("runway", h.tmp, env, h.sleeps)
    with pytest.raises(ConfigError, match="REENACT_RUNWAY_BASE_URL"):
        provider.poll("x")


def test_publish_without_a_public_url_says_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(env={"REENACT_DATA_DIR": str(tmp_path)}, secrets={})
    f = tmp_path / "a.mp4"
    f.write_bytes(b"x" * 10)
    with pytest.raises(InputError) as info:
        link_for_file(f, settings, provider_name="LiangXin")
    assert str(info.value) == (
        "LiangXin only accepts links: paste a URL for the video and image, or set "
        "REENACT_S3_BUCKET (with REENACT_S3_ENDPOINT_URL for R2 or MinIO, and "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) so your uploads are handed over as "
        "private links, or REENACT_PUBLIC_URL so this app serves them."
    )


def test_publish_is_content_addressed_and_linked_not_copied(tmp_path: Path) -> None:
    settings = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path / "d"), "REENACT_PUBLIC_URL": "https://s.example/"},
        secrets={},
    )
    a, b = tmp_path / "Take 1 (final).MP4", tmp_path / "copy.mp4"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    url = public_url_for(a, settings)
    digest = sha256_of(a)
    assert url == f"https://s.example/media/{digest}/Take-1-final.mp4"
    stored = settings.uploads_dir / digest / "Take-1-final.mp4"
    assert stored.read_bytes() == b"same bytes"
    assert os.stat(stored).st_ino == os.stat(a).st_ino  # a hard link: no second copy
    assert public_url_for(b, settings).startswith(f"https://s.example/media/{digest}/")
    assert public_url_for(a, settings) == url  # stable
    assert not list((settings.uploads_dir / digest).glob(".*.part"))


def test_safe_names() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("ça va?.png") == "a-va.png"
    assert safe_name(".hidden") == "file.hidden"  # never a dot-file
    assert safe_name("") == "file"


def test_callback_urls_never_point_at_a_third_party(tmp_path: Path) -> None:
    bare = load_settings(env={"REENACT_DATA_DIR": str(tmp_path)}, secrets={})
    assert (
        callback_url_for("cometapi", "t1", bare)
        == "https://callbacks.reenact.invalid/hooks/cometapi/t1"
    )
    public = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path), "REENACT_PUBLIC_URL": "https://me.example/"},
        secrets={},
    )
    assert callback_url_for("liangxin", "a/b", public) == "https://me.example/hooks/liangxin/a%2Fb"
