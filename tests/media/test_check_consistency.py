"""Checks that do not contradict each other (issue 11, item 7): a fix says what it will
produce and the one that keeps enough pixels comes first; sentences name the file the way the
page does; a link without a scheme says what to type; an expected bad file logs no traceback.
Real files from tests/mediagen.py, real fixes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.errors import InputError
from services.media import apply_fix, probe, run_checks
from services.media.checks import MIN_SIDE_WARN, Check, CheckReport
from services.media.inputs import check_inputs
from services.models import MediaRole, ProviderCapabilities
from services.netguard import check_url
from services.providers.registry import get_provider
from tests.media.conftest import make_settings
from tests.mediagen import make_video

V = MediaRole.DRIVING_VIDEO


@pytest.fixture(scope="module")
def cometapi(tmp_path_factory: pytest.TempPathFactory) -> ProviderCapabilities:
    provider = get_provider(
        "cometapi", make_settings(tmp_path_factory.mktemp("d"), allow_private=False)
    )
    try:
        return provider.capabilities()
    finally:
        provider.close()


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "phone-clip.mp4", size=(360, 640))


@pytest.fixture(scope="module")
def tall_hd_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Tall enough that a 16:9 crop keeps more than the resolution minimum.
    return make_video(
        tmp_path_factory.mktemp("media") / "tall-hd.mp4", size=(720, 1280), seconds=1.0
    )


def _aspect(report: CheckReport) -> Check:
    return next(c for c in report.checks if c.id == "aspect")


def test_a_small_tall_clip_offers_the_pad_first_and_says_what_each_fix_makes(
    phone_clip: Path, cometapi: ProviderCapabilities, tmp_path: Path
) -> None:
    check = _aspect(run_checks(phone_clip, V, [cometapi]))
    assert check.status == "fail"
    assert check.fixes == ["pad_16_9", "crop_16_9"], "the crop would be too small: pad first"
    assert check.fix_labels["crop_16_9"] == "Crop to 16:9 → 360×202"
    assert check.fix_labels["pad_16_9"] == "Pad to 16:9 → 1138×640"
    assert "360×202" in check.sentence and "1138×640" in check.sentence
    assert check.sentence.index("Pad") < check.sentence.index("cropping")

    # What the label promised is what the fixes produce, and the pad's result passes the
    # resolution check that the crop's would not.
    for fix, label in check.fix_labels.items():
        made = probe(apply_fix(phone_clip, fix, tmp_path))
        assert label.endswith(f"{made.width}×{made.height}")
    cropped = run_checks(apply_fix(phone_clip, "crop_16_9", tmp_path), V, [])
    padded = run_checks(apply_fix(phone_clip, "pad_16_9", tmp_path), V, [])
    assert next(c for c in cropped.checks if c.id == "resolution").status == "warn"
    assert next(c for c in padded.checks if c.id == "resolution").status == "ok"
    made = probe(apply_fix(phone_clip, "crop_16_9", tmp_path))
    assert min(made.width, made.height) < MIN_SIDE_WARN


def test_a_large_tall_clip_keeps_the_crop_first(
    tall_hd_clip: Path, cometapi: ProviderCapabilities
) -> None:
    check = _aspect(run_checks(tall_hd_clip, V, [cometapi]))
    assert check.fixes == ["crop_16_9", "pad_16_9"]
    assert check.fix_labels["crop_16_9"] == "Crop to 16:9 → 720×404"
    assert check.fix_labels["pad_16_9"] == "Pad to 16:9 → 1280×720"


def test_sentences_name_the_file_as_the_page_does(
    phone_clip: Path, cometapi: ProviderCapabilities, tmp_path: Path
) -> None:
    # After a fix the stored file is "phone-clip.crop_16_9.<tag>.mp4"; the page still calls
    # it by the creator's name, and so do the sentences when given that name.
    fixed = apply_fix(phone_clip, "crop_16_9", tmp_path)
    report = run_checks(fixed, V, [cometapi], name="phone-clip.mp4")
    named = [c.sentence for c in report.checks if "'" in c.sentence]
    assert named, "some sentence names the file"
    assert all("'phone-clip.mp4'" in s for s in named)
    assert not any(fixed.name in s for s in named)

    broken = tmp_path / "stored-by-hash.mp4"
    broken.write_bytes(phone_clip.read_bytes()[:2000])
    unreadable = run_checks(broken, V, [], name="my take.mp4")
    assert unreadable.failed
    assert "'my take.mp4'" in unreadable.checks[0].sentence
    assert "stored-by-hash" not in unreadable.checks[0].sentence


@pytest.mark.parametrize(
    ("link", "sentence"),
    [
        ("example.com/clip.mp4", "Add https:// to the link: https://example.com/clip.mp4"),
        (
            "cdn.example.com:8443/a.mp4",
            "Add https:// to the link: https://cdn.example.com:8443/a.mp4",
        ),
        ("ftp://example.com/a.mp4", "Only http:// and https:// links can be fetched, not ftp://"),
    ],
)
def test_a_link_without_a_scheme_says_what_to_type(link: str, sentence: str) -> None:
    with pytest.raises(InputError) as info:
        check_url(link, allow_private=False)
    assert str(info.value).startswith(sentence)
    assert "no scheme" not in str(info.value)


def test_reenact_check_of_a_schemeless_link_says_add_https(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", allow_private=False)
    [report] = check_inputs(["example.com/take.mp4"], None, settings)
    assert report.failed
    assert report.report.checks[0].sentence == (
        "Add https:// to the link: https://example.com/take.mp4"
    )


def test_a_bad_file_is_checked_without_a_traceback_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("Just some notes, not a video.\n" * 200)
    with caplog.at_level(logging.DEBUG):
        report = run_checks(notes, V, [])
    assert report.failed and "notes.mp4" in report.checks[0].sentence
    loud = [r for r in caplog.records if r.levelno >= logging.INFO and r.exc_info]
    assert loud == [], "an expected bad file must not log a traceback"
    assert "Traceback" not in caplog.text
