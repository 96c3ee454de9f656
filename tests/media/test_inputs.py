"""check_inputs(): what `reenact check PATH_OR_URL... [--provider ID]` runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.config import Settings
from services.errors import ConfigError
from services.media import check_inputs
from services.models import MediaRole
from tests.media.conftest import MediaServer


def test_paths_get_roles_from_their_kind(media: dict[str, Path], settings: Settings) -> None:
    reports = check_inputs([str(media["v16x9"]), str(media["i16x9"])], None, settings)
    assert [r.role for r in reports] == [MediaRole.DRIVING_VIDEO, MediaRole.CHARACTER_IMAGE]
    assert not any(r.failed for r in reports)
    assert all(c.provider is None for r in reports for c in r.report.checks)
    assert reports[0].source == "path" and reports[0].path == str(media["v16x9"])


def test_provider_limits_apply(media: dict[str, Path], settings: Settings) -> None:
    [report] = check_inputs([str(media["v9x16"])], ["cometapi", "runway"], settings)
    assert report.failed
    failing = {(c.id, c.provider) for c in report.report.failing()}
    assert failing == {("aspect", "cometapi")}
    providers = {c.provider for c in report.report.checks}
    assert {"cometapi", "runway"} <= providers


def test_unknown_provider_is_a_usage_error(media: dict[str, Path], settings: Settings) -> None:
    with pytest.raises(ConfigError, match="Unknown provider 'nope'"):
        check_inputs([str(media["v16x9"])], ["nope"], settings)


def test_bad_files_become_reports(bad_files: dict[str, Path], settings: Settings) -> None:
    items = [str(p) for p in bad_files.values()] + ["/no/such/file.mp4"]
    reports = check_inputs(items, ["runway"], settings)
    assert len(reports) == len(items)
    assert all(r.failed for r in reports)
    doc = json.loads(json.dumps([r.model_dump(mode="json") for r in reports]))
    assert doc[-1]["report"]["checks"][0]["sentence"].endswith("does not exist. Check the path.")
    assert doc[-1]["role"] == "driving_video"  # guessed from the name


def test_urls_are_fetched_then_checked(
    server: MediaServer, media: dict[str, Path], settings: Settings
) -> None:
    video = server.add("/perf.mp4", body=media["v16x9"].read_bytes())
    image = server.add("/face.png", body=media["i16x9"].read_bytes())
    page = server.add("/watch", body=b"<!DOCTYPE html><html>video page</html>" * 3)
    reports = check_inputs([video, image, page], ["cometapi"], settings)
    assert [r.source for r in reports] == ["url", "url", "url"]
    assert reports[0].role is MediaRole.DRIVING_VIDEO and not reports[0].failed
    assert Path(reports[0].path).parent == settings.uploads_dir
    assert reports[1].role is MediaRole.CHARACTER_IMAGE and not reports[1].failed
    assert reports[2].failed and reports[2].report.checks[0].id == "fetch"
    assert "web page" in reports[2].report.checks[0].sentence


def test_refused_url_is_a_report(strict_settings: Settings) -> None:
    [report] = check_inputs(["http://127.0.0.1:9/clip.mp4"], None, strict_settings)
    assert report.failed and "loopback" in report.report.checks[0].sentence
