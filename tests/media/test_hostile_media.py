"""Hostile media (issue 10, item 6): decoding costs bounded memory, absurd lengths and
special files each get their own true sentence, and the local engine refuses what would
render without end.

Memory is measured in a child process (its own peak RSS before and after the call, from
getrusage), so neither this process's history nor other children count.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.config import Settings
from services.engine.config import EngineConfig, RenderLimits
from services.engine.media import DrivingReader
from services.engine.render import render
from services.errors import InputError
from services.media import probe, run_checks
from services.media.checks import Check, CheckReport
from services.media.metadata import DECODE_BUDGET, open_media
from services.models import MediaRole, ProviderCapabilities
from services.providers.registry import get_provider
from tests import mediagen
from tests.cli.support import base_env, run
from tests.media.conftest import make_settings
from tests.mediagen import make_character, make_driving_clip

ROOT = Path(__file__).resolve().parents[2]
V = MediaRole.DRIVING_VIDEO
I = MediaRole.CHARACTER_IMAGE  # noqa: E741
MB = 1_000_000


def _child(code: str, *args: str, timeout: float = 120.0) -> dict:
    """Run `code` in a fresh interpreter at the repo root; it prints one JSON line last."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# The child's peak RSS is read before and after the call; the modules a check uses (OpenCV,
# PyAV, Pillow) are imported first so only the call itself is measured.
_MEASURE = """
    import json, resource, sys, threading
    from services.media.checks import check_file
    from services.media.thumbs import thumbnail
    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    path, what, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    reports = []
    def one() -> None:
        if what == "check":
            reports.append(check_file(path, None, []))
        else:
            thumbnail(path)
    before = peak()
    threads = [threading.Thread(target=one) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    checks = [[c.id, c.status, c.sentence] for c in reports[0].checks] if reports else []
    print(json.dumps({"growth": peak() - before, "checks": checks}))
"""


def _measure(path: Path, what: str = "check", copies: int = 1) -> tuple[int, list[list[str]]]:
    out = _child(_MEASURE, str(path), what, str(copies))
    return out["growth"], out["checks"]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def caps(tmp_path_factory: pytest.TempPathFactory) -> list[ProviderCapabilities]:
    settings: Settings = make_settings(tmp_path_factory.mktemp("d"), allow_private=True)
    out = []
    for pid in ("cometapi", "runway", "liangxin", "local"):
        provider = get_provider(pid, settings)
        out.append(provider.capabilities())
        provider.close()
    return out


@pytest.fixture(scope="module")
def issue_png(media_dir: Path) -> Path:
    """The issue's example: a 249 KB all-zero 7999×8000 PNG (RGBA: 256 MB decoded)."""
    return mediagen.zero_png(media_dir / "zero.png", 7999, 8000)


def _failing(report: CheckReport, check_id: str) -> Check:
    found = [c for c in report.checks if c.id == check_id]
    assert len(found) == 1, [c.id for c in report.checks]
    assert found[0].status == "fail", found[0]
    return found[0]


# ------------------------------------------------------------------ images: memory


def test_issue_png_is_refused_from_its_header_at_no_memory_cost(issue_png: Path) -> None:
    assert 240_000 < issue_png.stat().st_size < 260_000  # the issue's 249 KB file
    growth, checks = _measure(issue_png)
    # Before: 765 MB of peak RSS for this one check (875 MB RSS in the issue).
    assert growth < 50 * MB, growth
    assert [c[:2] for c in checks] == [["readable", "fail"]]
    sentence = checks[0][2]
    assert "'zero.png' declares 7999×8000 pixels" in sentence
    assert "256 MB of memory" in sentence
    assert "Resize it to at most 5792×5792 pixels" in sentence


def test_eight_checks_at_once_stay_small(issue_png: Path) -> None:
    """The issue's server case: 8 checks of that file at once cost 5.5 GB."""
    growth, _ = _measure(issue_png, copies=8)
    assert growth < 50 * MB, growth


def test_large_allowed_image_is_held_once_not_copied(media_dir: Path) -> None:
    """5000×5000 RGBA fits the budget (95 MiB decoded). The checks and the thumbnail must
    not add full-size copies on top (before: 327 MB peak growth for the checks: the RGBA
    decode, an RGB conversion and a copy to shrink)."""
    path = mediagen.zero_png(media_dir / "big.png", 5000, 5000)
    decoded = 5000 * 5000 * 4
    assert decoded < DECODE_BUDGET
    growth, checks = _measure(path)
    assert ["readable", "fail"] not in [c[:2] for c in checks]
    assert ["format", "ok"] in [c[:2] for c in checks]
    assert growth < decoded + 45 * MB, growth
    growth, _ = _measure(path, "thumbnail")
    assert growth < decoded + 45 * MB, growth


def test_checks_keep_a_small_copy_and_find_the_face(tmp_path: Path) -> None:
    """A large palette PNG: shrunk band by band as soon as it is decoded (palette indices
    turned to colours first, never averaged), and the face is still found."""
    src = mediagen.make_image(tmp_path / "src.png", size=(3000, 1688))
    from PIL import Image

    with Image.open(src) as img:
        img.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    with open_media(tmp_path / "pal.png") as opened:
        assert opened.info.pixel_format == "P" and opened.info.width == 3000
        assert opened.image is not None and max(opened.image.size) <= 1024
    report = run_checks(tmp_path / "pal.png", I, [])
    assert [c.status for c in report.checks if c.id == "faces"] == ["ok"]


def test_fixes_decode_a_huge_jpeg_within_the_budget(tmp_path: Path) -> None:
    """Fixes ask for the full size; a JPEG too big for the budget is decoded at 1/2 scale by
    libjpeg instead of in full (made in a child: 135 MB to draw)."""
    path = tmp_path / "huge.jpg"
    _child(
        """
        import json, sys
        from PIL import Image
        Image.new("RGB", (5800, 5800), (90, 120, 150)).save(sys.argv[1], quality=60)
        print(json.dumps({}))
        """,
        str(path),
    )
    with open_media(path, image_max_side=None) as opened:
        assert opened.image is not None and opened.image.size == (2900, 2900)
        assert (opened.info.width, opened.info.height) == (5800, 5800)


# ------------------------------------------------------------------ videos: memory


def test_huge_video_frame_is_refused_before_any_decoding(tmp_path: Path) -> None:
    """8192×8192 H.264 (201 MB to decode a frame): av.open itself used to decode it (FFmpeg
    learns H.264's frame delay that way), 276 MB of peak growth before any check."""
    path = tmp_path / "huge.mp4"
    _child(
        """
        import json, sys
        from pathlib import Path
        from tests.mediagen import huge_h264
        huge_h264(Path(sys.argv[1]), 8192, 8192)
        print(json.dumps({}))
        """,
        str(path),
    )
    growth, checks = _measure(path)
    assert growth < 64 * MB, growth
    assert [c[:2] for c in checks] == [["readable", "fail"]]
    assert "declares 8192×8192 pixels, which would take 201 MB" in checks[0][2]
    with pytest.raises(InputError, match=r"The driving video huge\.mp4 declares 8192×8192"):
        DrivingReader(path)


def test_absurd_declared_video_size_is_refused_by_the_budget(tmp_path: Path) -> None:
    """An AVI whose header declares 8192×8192 over 64×64 raw frames: refused from the header
    (before: read as damaged, after trying to decode)."""
    import struct

    import av
    import numpy as np

    path = tmp_path / "liar.avi"
    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("rawvideo", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    struct.pack_into("<II", data, data.find(b"avih") + 8 + 32, 8192, 8192)
    struct.pack_into("<ii", data, data.find(b"strf") + 8 + 4, 8192, 8192)
    path.write_bytes(data)
    with pytest.raises(InputError, match="declares 8192×8192 pixels, which would take 201 MB"):
        probe(path)


# ------------------------------------------------------------------ durations


def test_header_claiming_136_years(tmp_path: Path, caps: list[ProviderCapabilities]) -> None:
    path = mediagen.mkv_clip(tmp_path / "ages.mkv", header_s=2**32)
    info = probe(path)
    assert info.header_duration_s == pytest.approx(2**32)
    assert info.duration_s is None  # never passed on as a length (cost estimates, trims)
    report = run_checks(path, V, caps)
    check = _failing(report, "duration")
    assert check.sentence == (
        "The header of 'ages.mkv' says it lasts 136 years, which cannot be right: "
        "re-export the video."
    )
    assert check.fix == "transcode_h264"
    # Before: "4294967296.0 seconds long", and "lasts 4294967296.0 s" per provider.
    assert not [c.sentence for c in report.checks if "4294967296" in c.sentence]


def test_negative_header_length(tmp_path: Path) -> None:
    path = mediagen.mkv_clip(tmp_path / "neg.mkv", header_s=-5.0)
    check = _failing(run_checks(path, V, []), "duration")
    assert check.sentence.startswith("The header of 'neg.mkv' says it lasts -5.0 s, which cannot")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_header_length_not_a_number(tmp_path: Path, value: float) -> None:
    """FFmpeg drops a NaN or infinite length: the header says nothing usable (before:
    "lasts 0.0 s, too short to carry a performance", for a 1 s clip)."""
    path = mediagen.mkv_clip(tmp_path / "nan.mkv", header_s=value)
    check = _failing(run_checks(path, V, []), "duration")
    assert "The header of 'nan.mkv' does not say how long the video lasts" in check.sentence
    assert "0.0 s" not in check.sentence


def test_mp4_length_unknown_uses_the_frames(tmp_path: Path) -> None:
    """All-ones in mdhd is ISO BMFF for "unknown" (136 years read literally): the index still
    tells the frames' own span."""
    path = mediagen.mp4_unknown_duration(tmp_path / "unknown.mp4")
    info = probe(path)
    assert info.header_duration_s is None
    assert info.duration_s == pytest.approx(1.0, abs=0.01)
    check = _failing(run_checks(path, V, []), "duration")
    assert "does not say how long the video lasts (its frames span 1.0 s)" in check.sentence


def test_three_frames_over_ten_hours(tmp_path: Path, caps: list[ProviderCapabilities]) -> None:
    path = mediagen.sparse_clip(tmp_path / "sparse.mp4", [0.0, 5 * 3600.0, 10 * 3600.0])
    report = run_checks(path, V, [c for c in caps if c.id == "local"])
    check = _failing(report, "duration")
    assert check.sentence == (
        "'sparse.mp4' has 3 frames spread over 10 hours: that is a slideshow, not a "
        "performance. Re-export it at 24–30 frames per second."
    )
    assert not [c for c in report.checks if c.id == "fps"]  # no "8.33e-05 fps" beside it


def test_engine_refuses_the_sparse_clip(tmp_path: Path) -> None:
    """Before: a 10-hour video rendered from 3 frames."""
    clip = mediagen.sparse_clip(tmp_path / "sparse.mp4", [0.0, 5 * 3600.0, 10 * 3600.0])
    character = make_character(tmp_path / "face.png").path
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="has 3 frames spread over 10 hours"):
        render(clip, character, out)
    assert not out.exists()


def test_engine_refuses_an_absurd_header(tmp_path: Path) -> None:
    clip = tmp_path / "ages.mkv"
    make_driving_clip(clip, seconds=1.0, audio=None)
    mediagen.set_mkv_duration(clip, 136 * mediagen.ONE_YEAR_S)
    character = make_character(tmp_path / "face.png").path
    with pytest.raises(InputError, match="says it lasts 136 years, which cannot be right"):
        render(clip, character, tmp_path / "out.mp4")


# The engine with a 1 s limit: short clips are enough to cross it.
ONE_SECOND = EngineConfig(limits=RenderLimits(max_render_s=1.0))


def test_engine_refuses_a_clip_longer_than_its_limit(tmp_path: Path) -> None:
    clip = tmp_path / "two.mp4"
    make_driving_clip(clip, seconds=2.0, audio=None)
    character = make_character(tmp_path / "face.png").path
    with pytest.raises(InputError, match=r"lasts 2\.0 s; the local engine renders at most 1 s"):
        render(clip, character, tmp_path / "out.mp4", config=ONE_SECOND)


def test_engine_stops_when_the_frames_outlast_the_header(tmp_path: Path) -> None:
    """The header says 0.5 s, the frames go on for 2 s: the count of frames actually decoded
    stops the render, whatever the header said."""
    clip = tmp_path / "liar.mkv"
    make_driving_clip(clip, seconds=2.0, audio=None)
    mediagen.set_mkv_duration(clip, 0.5)
    character = make_character(tmp_path / "face.png").path
    out = tmp_path / "out.mp4"
    frames: list[int] = []
    with pytest.raises(InputError, match="runs longer than the local engine renders"):
        render(clip, character, out, progress=lambda n, t: frames.append(n), config=ONE_SECOND)
    assert frames[-1] == 25  # ceil(1 s × 24 fps) + 1 frames, then stopped
    assert not out.exists()


# ------------------------------------------------------------------ special files


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[dict[str, tuple[Path, str]]]:
    """Each special path with the words its sentence must hold."""
    d = tmp_path / "in"
    d.mkdir()
    fifo = d / "stream.mp4"
    os.mkfifo(fifo)
    folder = d / "takes.mp4"
    folder.mkdir()
    broken = d / "gone.mp4"
    broken.symlink_to(d / "deleted.mp4")
    loop = d / "loop.mp4"
    loop.symlink_to(loop)
    sock_path = d / "sock.mp4"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        yield {
            "fifo": (fifo, "'stream.mp4' is not a file: it is a pipe (FIFO), and reading it"),
            "folder": (folder, "'takes.mp4' is not a file: it is a folder."),
            "device": (Path("/dev/zero"), "'zero' is not a file: it is a device."),
            "socket": (sock_path, "'sock.mp4' is not a file: it is a socket."),
            "broken": (broken, f"'gone.mp4' is a link to '{d / 'deleted.mp4'}', which does not"),
            "loop": (loop, "'loop.mp4' is a link that leads back to itself"),
        }
    finally:
        sock.close()


def test_special_files_each_get_their_sentence(specials: dict[str, tuple[Path, str]]) -> None:
    for kind, (path, words) in specials.items():
        with pytest.raises(InputError) as err:
            probe(path)
        assert words in str(err.value), kind
        report = run_checks(path, V, [])
        assert report.failed and words in report.checks[0].sentence, kind


def test_nul_in_a_path_is_a_sentence(tmp_path: Path) -> None:
    """Before: ValueError from os.stat, reported as a damaged file by the checks."""
    with pytest.raises(InputError, match="its name holds a NUL byte"):
        probe(tmp_path / "a\x00b.mp4")


def test_cli_check_names_each_special_file(
    specials: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    env = base_env(tmp_path / "data")
    for kind, (path, words) in specials.items():
        result = run(["check", str(path)], env)
        assert result.code == 1, (kind, result.output)
        assert words in result.output, (kind, result.output)
        assert "Traceback" not in result.stderr, kind


def test_engine_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    """Before: av.open / Image.open on a FIFO waits for a writer forever."""
    fifo = tmp_path / "drive.mp4"
    os.mkfifo(fifo)
    character = make_character(tmp_path / "face.png").path
    clip = tmp_path / "clip.mp4"
    make_driving_clip(clip, seconds=0.5, audio=None)
    out = _child(
        """
        import json, sys
        from services.engine.render import render
        from services.errors import InputError
        said = []
        for video, image in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[1])):
            try:
                render(video, image, sys.argv[4])
            except InputError as err:
                said.append(str(err))
        print(json.dumps({"said": said}))
        """,
        str(fifo),
        str(character),
        str(clip),
        str(tmp_path / "out.mp4"),
        timeout=60,
    )
    assert len(out["said"]) == 2
    assert all("'drive.mp4' is not a file: it is a pipe (FIFO)" in s for s in out["said"])


def test_relative_name_that_looks_like_a_protocol_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'pipe:0' in the current folder is that file, not FFmpeg's stdin (before: damaged)."""
    mediagen.make_video(tmp_path / "pipe:0", size=(160, 90), seconds=1.0, container_format="mp4")
    monkeypatch.chdir(tmp_path)
    info = probe(Path("pipe:0"))
    assert (info.kind, info.width) == ("video", 160)
