"""run_checks(): generic checks, each provider's limits, and the bad-file corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.config import Settings
from services.media import CheckReport, run_checks
from services.media.checks import Check, nearest_ratio
from services.models import MediaRole, ProviderCapabilities, SizeCaps
from services.providers.registry import get_provider

V = MediaRole.DRIVING_VIDEO
I = MediaRole.CHARACTER_IMAGE  # noqa: E741
CV = MediaRole.CHARACTER_VIDEO


@pytest.fixture(scope="module")
def caps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProviderCapabilities]:
    from tests.media.conftest import make_settings

    settings: Settings = make_settings(tmp_path_factory.mktemp("d"), allow_private=True)
    out = {}
    for pid in ("cometapi", "runway", "liangxin", "local"):
        provider = get_provider(pid, settings)
        out[pid] = provider.capabilities()
        provider.close()
    return out


def by_id(report: CheckReport, check_id: str, provider: str | None = None) -> Check:
    found = [c for c in report.checks if c.id == check_id and c.provider == provider]
    assert len(found) == 1, f"{check_id}/{provider}: {[c.id for c in report.checks]}"
    return found[0]


def test_good_driving_video_passes_every_provider(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities]
) -> None:
    report = run_checks(media["v16x9"], V, list(caps.values()))
    assert not report.failed, [c.sentence for c in report.failing()]
    assert report.role is V
    assert by_id(report, "faces").status == "ok"
    assert by_id(report, "scene_cut").status == "ok"
    assert by_id(report, "aspect", "cometapi").status == "ok"
    assert by_id(report, "reference_duration", "runway").status == "ok"
    assert by_id(report, "format").sentence == "MP4 H.264 video, with aac audio."
    assert len(report.faces) == 1
    x, _, w, _ = report.faces[0]
    # The sprite is centred: the face box sits around the middle, in display pixels.
    assert 100 < x + w / 2 < 220 and w > 30


def test_generic_checks_only_without_providers(media: dict[str, Path]) -> None:
    report = run_checks(media["v9x16"], V, [])
    assert not report.failed
    assert all(c.provider is None for c in report.checks)
    assert {c.id for c in report.checks} >= {"format", "resolution", "fps", "duration", "faces"}


@pytest.mark.parametrize("clip", ["v9x16", "phone", "v4x3"])
def test_cometapi_wants_16_9(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities], clip: str
) -> None:
    report = run_checks(media[clip], V, [caps["cometapi"]])
    check = by_id(report, "aspect", "cometapi")
    assert check.status == "fail"
    # These clips are small: a 16:9 crop would fall below the resolution check's minimum,
    # so the pad (which keeps every pixel) is offered first.
    assert check.fix == "pad_16_9" and check.fixes == ["pad_16_9", "crop_16_9"]
    assert "16:9" in check.sentence and "CometAPI" in check.sentence
    label = "4:3" if clip == "v4x3" else "9:16"
    assert f"is {label}" in check.sentence


def test_cometapi_image_wants_16_9_too(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities]
) -> None:
    assert (
        by_id(run_checks(media["i16x9"], I, [caps["cometapi"]]), "aspect", "cometapi").status
        == "ok"
    )
    bad = by_id(run_checks(media["i9x16_exif"], I, [caps["cometapi"]]), "aspect", "cometapi")
    assert bad.status == "fail" and "9:16 (360×640)" in bad.sentence


def test_act_two_duration_limits(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities]
) -> None:
    long = by_id(run_checks(media["long45s"], V, [caps["runway"]]), "reference_duration", "runway")
    assert long.status == "fail" and long.fix == "trim_30s"
    assert "45.0 s" in long.sentence and "3–30 s" in long.sentence
    short = by_id(run_checks(media["short2s"], V, [caps["runway"]]), "reference_duration", "runway")
    assert short.status == "fail" and short.fix is None
    assert "at least 3 s" in short.sentence


def test_act_two_nearest_ratio_is_named(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities]
) -> None:
    wide = by_id(run_checks(media["i16x9"], I, [caps["runway"]]), "ratio", "runway")
    assert wide.status == "ok" and "1280:720" in wide.sentence
    tall = by_id(run_checks(media["i9x16_exif"], I, [caps["runway"]]), "ratio", "runway")
    assert tall.status == "ok" and "720:1280" in tall.sentence
    four3 = by_id(run_checks(media["i4x3"], I, [caps["runway"]]), "ratio", "runway")
    assert "1104:832" in four3.sentence


def test_nearest_ratio() -> None:
    ratios = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
    assert nearest_ratio(16 / 9, ratios) == "1280:720"
    assert nearest_ratio(1.0, ratios) == "960:960"
    assert nearest_ratio(2.35, ratios) == "1584:672"
    assert nearest_ratio(0.8, ratios) == "832:1104"


def test_character_video_only_where_accepted(
    media: dict[str, Path], caps: dict[str, ProviderCapabilities]
) -> None:
    report = run_checks(media["v16x9"], CV, [caps["cometapi"], caps["runway"]])
    assert by_id(report, "character_video", "cometapi").status == "fail"
    assert not [c for c in report.checks if c.id == "character_video" and c.provider == "runway"]


def test_role_must_match_kind(media: dict[str, Path]) -> None:
    check = by_id(run_checks(media["i16x9"], V, []), "role")
    assert check.status == "fail"
    assert "is an image, but the driving video must be a video" in check.sentence


def test_no_face(media: dict[str, Path]) -> None:
    for path, role in ((media["noface"], V), (media["i_noface"], I)):
        check = by_id(run_checks(path, role, []), "faces")
        assert check.status == "fail" and "No face was found" in check.sentence


def test_several_faces(media: dict[str, Path]) -> None:
    for path, role in ((media["twofaces"], V), (media["i_twofaces"], I)):
        report = run_checks(path, role, [])
        check = by_id(report, "faces")
        assert check.status == "fail" and "shows 2 faces" in check.sentence
        assert len(report.faces) == 2


def test_face_too_small(media: dict[str, Path]) -> None:
    report = run_checks(media["tinyface"], V, [])
    check = by_id(report, "faces")
    assert check.status == "warn" and "very small" in check.sentence
    assert len(report.faces) == 1
    x, _, w, h = report.faces[0]
    assert h < 0.1 * 720 and 0.15 * 1280 < x + w / 2 < 0.45 * 1280


def test_scene_cut_warns(media: dict[str, Path]) -> None:
    check = by_id(run_checks(media["cut"], V, []), "scene_cut")
    assert check.status == "warn" and "change shot" in check.sentence


def test_scene_cut_only_for_driving_video(media: dict[str, Path]) -> None:
    report = run_checks(media["cut"], CV, [])
    assert not [c for c in report.checks if c.id == "scene_cut"]


def test_low_fps_and_resolution_warn(media: dict[str, Path]) -> None:
    report = run_checks(media["v16x9"], V, [])
    assert by_id(report, "fps").status == "warn"  # the fixtures run at 10 fps
    assert by_id(report, "resolution").status == "warn"  # and are 320x180
    assert not report.failed and report.warned


def test_non_h264_warns_with_transcode_fix(media: dict[str, Path]) -> None:
    for clip in ("mpeg4", "vp9"):
        check = by_id(run_checks(media[clip], V, []), "format")
        assert check.status == "warn" and check.fix == "transcode_h264"


def test_size_caps_depend_on_how_the_file_travels(media: dict[str, Path]) -> None:
    size = media["v16x9"].stat().st_size
    cap = ProviderCapabilities(
        id="tiny",
        name="Tiny",
        size_caps=SizeCaps(url_video=size - 1, data_uri_video=size + 1, upload_min=512),
    )
    by_url = by_id(run_checks(media["v16x9"], V, [cap], source="url"), "size", "tiny")
    assert by_url.status == "fail" and "by link" in by_url.sentence
    local = by_id(run_checks(media["v16x9"], V, [cap], source="upload"), "size", "tiny")
    assert (
        local.status == "ok" and "within the" in local.sentence and "as an upload" in local.sentence
    )
    nolimit = ProviderCapabilities(id="free", name="Free")
    free = by_id(run_checks(media["v16x9"], V, [nolimit]), "size", "free")
    assert free.status == "ok" and "states no size limit" in free.sentence
    cap2 = cap.model_copy(update={"size_caps": SizeCaps(upload_max=size // 2)})
    big = by_id(run_checks(media["v16x9"], V, [cap2], source="path"), "size", "tiny")
    assert big.status == "fail" and "as an upload" in big.sentence


def test_letterboxed_16_9_warns(tmp_path: Path, caps: dict[str, ProviderCapabilities]) -> None:
    """A 9:16 picture inside black bars is 16:9 only in name: the frame is measured."""
    from PIL import Image

    from tests.mediagen import make_image

    inner = make_image(tmp_path / "inner.png", size=(180, 320))
    canvas = Image.new("RGB", (640, 360))
    canvas.paste(Image.open(inner).resize((202, 360)), (219, 0))
    path = tmp_path / "boxed.png"
    canvas.save(path)
    check = by_id(run_checks(path, I, [caps["cometapi"]]), "aspect", "cometapi")
    assert check.status == "warn" and "black bars" in check.sentence


BAD = ["zero_bytes", "truncated_mp4", "html_as_mp4", "png_as_mp4", "random_bytes",
       "png_bomb", "weird_name", "gif"]  # fmt: skip


@pytest.mark.parametrize("name", BAD)
def test_every_bad_file_fails_with_a_sentence(
    bad_files: dict[str, Path], caps: dict[str, ProviderCapabilities], name: str
) -> None:
    report = run_checks(bad_files[name], V, list(caps.values()))
    assert report.failed
    for check in report.failing():
        assert check.sentence[0].isupper() or check.sentence.startswith("'")
        assert check.sentence.rstrip().endswith(".")
    json.dumps(report.model_dump(mode="json"))
    if name == "gif":
        assert by_id(report, "format").status == "fail"
        assert "GIF" in by_id(report, "format").sentence
    else:
        assert report.info is None and [c.id for c in report.checks] == ["readable"]


def test_missing_file_is_a_report(tmp_path: Path) -> None:
    report = run_checks(tmp_path / "gone.mp4", V, [])
    assert report.failed and "does not exist" in report.checks[0].sentence


def test_report_is_json(media: dict[str, Path], caps: dict[str, ProviderCapabilities]) -> None:
    report = run_checks(media["phone"], V, [caps["cometapi"]])
    data = json.loads(json.dumps(report.model_dump(mode="json")))
    assert data["info"]["width"] == 180 and data["role"] == "driving_video"
    assert data["failed"] is True and data["warned"] is True
    assert CheckReport.model_validate(data).failed


def test_bad_files_keep_memory_flat(bad_files: dict[str, Path]) -> None:
    """The 60000x60000 PNG would need 10 GB decoded: it must be refused from its header."""
    import psutil

    proc = psutil.Process()
    for path in bad_files.values():  # warm the imports and caches first
        run_checks(path, V, [])
    before = proc.memory_info().rss
    for _ in range(3):
        for path in bad_files.values():
            assert run_checks(path, V, []).failed
    assert proc.memory_info().rss - before < 50 * 2**20
