"""The comparison's exports: the side-by-side MP4 decoded back and checked tile by tile, and
the results ZIP read back member by member."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from services.compare.export import ExportTile, grid, results_zip, side_by_side
from services.errors import InputError

RGB = tuple[int, int, int]
RED: RGB = (200, 40, 40)
GREEN: RGB = (40, 190, 60)
BLUE: RGB = (40, 60, 210)
YELLOW: RGB = (230, 220, 40)
FPS = 10
SECONDS = 2.0
TILE = (320, 180)


def solid_clip(
    path: Path,
    colour: Callable[[int], RGB] | RGB,
    *,
    seconds: float = SECONDS,
    fps: int = FPS,
    size: tuple[int, int] = (320, 180),
    audio: str | None = None,
    faststart: bool = False,
) -> Path:
    """A clip of flat colour (frame index → colour), optionally with a tone in `audio` codec."""
    pick = colour if callable(colour) else (lambda _i: colour)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast"}
        # every stream must exist before the first packet is muxed
        stream = None
        if audio is not None:
            kwargs = {"layout": "mono"} if audio == "aac" else {}
            stream = out.add_stream(audio, rate=22050, **kwargs)
        for i in range(round(seconds * fps)):
            rgb = np.empty((size[1], size[0], 3), np.uint8)
            rgb[:] = pick(i)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(vs.encode(frame))
        out.mux(vs.encode(None))
        if stream is not None:
            rate = 22050
            fmt = "fltp" if audio == "aac" else "s16"
            total = int(seconds * rate)
            for start in range(0, total, 1024):
                t = np.arange(start, min(total, start + 1024)) / rate
                wave = 0.2 * np.sin(2 * np.pi * 440 * t)[None, :]
                data = wave.astype(np.float32) if fmt == "fltp" else (wave * 32767).astype("<i2")
                af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
                out.mux(stream.encode(af))
            out.mux(stream.encode(None))
    return path


def yuv_of(rgb: RGB) -> np.ndarray:
    """The Y, U, V values a clip of this colour decodes to (same conversion as solid_clip)."""
    frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), rgb, np.uint8), format="rgb24")
    flat = frame.to_ndarray(format="yuv420p").reshape(-1)
    return np.array([flat[0], flat[256], flat[256 + 64]], np.float64)


class Decoded:
    """Every frame of an MP4 as I420 planes, plus its stream facts."""

    def __init__(self, path: Path) -> None:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            self.codec = v.codec_context.name
            self.pix_fmt = v.codec_context.pix_fmt
            self.width, self.height = v.width, v.height
            self.fps = v.average_rate
            self.audio = [a.codec_context.name for a in c.streams.audio]
            self.colorspace = v.codec_context.colorspace
            self.frames = [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]
        self.duration = len(self.frames) / float(self.fps)

    def yuv(self, i: int, x: int, y: int) -> np.ndarray:
        """Mean Y, U, V of a small patch around (x, y) in frame i."""
        w, h = self.width, self.height
        flat = self.frames[i].reshape(-1)
        ys = flat[: w * h].reshape(h, w)
        us = flat[w * h : w * h * 5 // 4].reshape(h // 2, w // 2)
        vs = flat[w * h * 5 // 4 :].reshape(h // 2, w // 2)
        return np.array(
            [
                ys[y - 4 : y + 4, x - 4 : x + 4].mean(),
                us[y // 2 - 2 : y // 2 + 2, x // 2 - 2 : x // 2 + 2].mean(),
                vs[y // 2 - 2 : y // 2 + 2, x // 2 - 2 : x // 2 + 2].mean(),
            ]
        )

    def luma(self, i: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return self.frames[i][: self.height].reshape(self.height, self.width)[y0:y1, x0:x1]


def close_to(got: np.ndarray, rgb: RGB, tol: float = 8.0) -> bool:
    return bool(np.abs(got - yuv_of(rgb)).max() <= tol)


def centre(cell: int, cols: int, tile: tuple[int, int] = TILE) -> tuple[int, int]:
    tw, th = tile
    return (cell % cols) * tw + tw // 2, (cell // cols) * th + th // 2


def no_part_files(directory: Path) -> bool:
    return not any(p.name.endswith(".part") for p in directory.iterdir())


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    bad = d / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return {
        "reference": solid_clip(d / "reference.mp4", RED, audio="aac"),
        "silent_reference": solid_clip(d / "silent.mp4", RED),
        "pcm_reference": solid_clip(d / "pcm.mov", RED, audio="pcm_s16le"),
        # longer than the timeline, at another frame rate and another shape (portrait)
        "green": solid_clip(d / "green.mp4", GREEN, seconds=3.0, fps=15, size=(180, 320)),
        # 1 s: blue, its last frame yellow — what must be held after its end
        "short": solid_clip(d / "short.mp4", lambda i: YELLOW if i == 9 else BLUE, seconds=1.0),
        "corrupt": bad,
    }


@pytest.fixture(scope="module")
def five_tiles(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    """Driving clip + green + short blue + missing file + failed task (no file): 3×2 grid."""
    out = tmp_path_factory.mktemp("sbs") / "compare.mp4"
    tiles = [
        ExportTile(label="Runway", path=clips["green"]),
        ExportTile(label="Local engine", path=clips["short"]),
        ExportTile(label="Result C", path=out.parent / "gone.mp4"),
        ExportTile(label="Result D", status="Failed"),
    ]
    assert side_by_side(clips["reference"], tiles, out, tile_size=TILE) == out
    assert no_part_files(out.parent)
    return Decoded(out)


def test_side_by_side_is_the_driving_clips_timeline_in_h264(five_tiles: Decoded) -> None:
    got = five_tiles
    assert (got.codec, got.pix_fmt) == ("h264", "yuv420p")
    assert (got.width, got.height) == (3 * TILE[0], 2 * TILE[1])
    assert got.fps == FPS
    assert abs(got.duration - SECONDS) <= 1 / FPS
    assert got.audio == ["aac"]
    assert got.colorspace == 1  # BT.709


def test_side_by_side_tiles_show_their_sources(five_tiles: Decoded) -> None:
    got = five_tiles
    first = 2
    assert close_to(got.yuv(first, *centre(0, 3)), RED)
    assert close_to(got.yuv(first, *centre(1, 3)), GREEN)
    assert close_to(got.yuv(first, *centre(2, 3)), BLUE)
    # the portrait result is letterboxed: black beside it, not stretched
    x, y = centre(1, 3)
    assert got.yuv(first, x - TILE[0] // 2 + 10, y)[0] < 24
    for cell in (3, 4):  # missing file, failed task: dark status tiles
        tx, ty = (cell % 3) * TILE[0], (cell // 3) * TILE[1]
        tile = got.luma(first, tx, ty, tx + TILE[0], ty + TILE[1])
        assert tile.mean() < 60
        assert tile.max() > 150  # its status text (and label) are drawn on it
    # the sixth cell of the 3×2 grid is empty
    assert got.yuv(first, *centre(5, 3))[0] < 24


def test_shorter_result_holds_its_last_frame_marked_ended(five_tiles: Decoded) -> None:
    got = five_tiles
    tx, ty = TILE[0] * 2, 0
    # top-right corner of the short result's tile, where the "ended" mark goes
    corner = (tx + TILE[0] * 3 // 4, ty, tx + TILE[0], ty + TILE[1] // 5)
    assert close_to(got.yuv(8, *centre(2, 3)), BLUE)
    # frame 9 is its last frame, still on its own time: the corner is plain yellow, no mark
    assert close_to(got.yuv(9, *centre(2, 3)), YELLOW)
    assert np.ptp(got.luma(9, *corner)) < 12
    for i in (10, 15, len(got.frames) - 1):
        assert close_to(got.yuv(i, *centre(2, 3)), YELLOW)
        mark = got.luma(i, *corner)
        assert mark.min() < 120  # the mark's dark backing
        assert mark.max() > 200  # its text


def test_side_by_side_without_audio_and_with_audio_to_convert(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    tiles = [ExportTile(label="Runway", path=clips["green"])]
    silent = side_by_side(clips["silent_reference"], tiles, tmp_path / "silent.mp4")
    converted = side_by_side(clips["pcm_reference"], tiles, tmp_path / "pcm.mp4")
    a, b = Decoded(silent), Decoded(converted)
    assert a.audio == []
    assert b.audio == ["aac"]
    # one reference + one result: two across, default 640×360 tiles
    assert (a.width, a.height) == (1280, 360)
    assert close_to(a.yuv(3, *centre(1, 2, (640, 360))), GREEN)


def test_corrupt_result_is_a_status_tile_and_a_corrupt_reference_an_error(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = side_by_side(
        clips["silent_reference"],
        [ExportTile(label="Runway", path=clips["corrupt"])],
        tmp_path / "one.mp4",
        tile_size=TILE,
    )
    got = Decoded(out)
    assert got.luma(0, TILE[0], 0, 2 * TILE[0], TILE[1]).mean() < 60
    assert close_to(got.yuv(0, *centre(0, 2)), RED)

    # cut in the middle of its frames (its index is in front): shows what there is, then holds
    whole = solid_clip(tmp_path / "whole.mp4", GREEN, faststart=True)
    cut = tmp_path / "cut.mp4"
    with av.open(str(whole)) as c:
        half = [p for p in c.demux(video=0) if p.size][c.streams.video[0].frames // 2]
    cut.write_bytes(whole.read_bytes()[: half.pos + half.size])
    got = Decoded(
        side_by_side(
            clips["silent_reference"],
            [ExportTile(label="Cut", path=cut)],
            tmp_path / "two.mp4",
            tile_size=TILE,
        )
    )
    assert len(got.frames) == round(SECONDS * FPS)
    assert close_to(got.yuv(0, *centre(1, 2)), GREEN)
    assert close_to(got.yuv(len(got.frames) - 1, *centre(1, 2)), GREEN)

    with pytest.raises(InputError, match=r"driving video corrupt\.mp4") as info:
        side_by_side(clips["corrupt"], [], tmp_path / "bad.mp4")
    assert "Traceback" not in str(info.value)
    assert not (tmp_path / "bad.mp4").exists()
    assert no_part_files(tmp_path)


def full_disk_at(part: Path) -> None:
    """Every write to `part` fails with ENOSPC: it is /dev/full under that name."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    part.symlink_to("/dev/full")


def test_full_disk_is_a_sentence_and_leaves_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "compare.mp4"
    full_disk_at(tmp_path / "compare.mp4.part")
    with pytest.raises(InputError, match="not enough disk space to write compare"):
        side_by_side(clips["reference"], [ExportTile(label="A", path=clips["green"])], out)
    assert not out.exists()
    assert no_part_files(tmp_path)


def test_grid_shapes_and_width_cap(clips: dict[str, Path], tmp_path: Path) -> None:
    assert [grid(n) for n in range(1, 10)] == [
        (1, 1),
        (2, 1),
        (2, 2),
        (2, 2),
        (3, 2),
        (3, 2),
        (3, 3),
        (3, 3),
        (3, 3),
    ]
    out = side_by_side(
        clips["silent_reference"],
        [ExportTile(label="A", path=clips["green"])],
        tmp_path / "wide.mp4",
        tile_size=(1280, 720),
    )
    got = Decoded(out)
    assert (got.width, got.height) == (1920, 540)
    with pytest.raises(InputError, match="at most 8 results"):
        side_by_side(clips["reference"], [ExportTile(label="x")] * 9, tmp_path / "many.mp4")
    assert no_part_files(tmp_path)


# ------------------------------------------------------------------ ZIP

ROWS: Sequence[dict[str, object]] = [
    {"provider": "runway", "state": "succeeded", "total_s": 41.5, "cost_usd": 0.25,
     "has_audio": True, "error": None},
    {"provider": "local", "state": "failed", "total_s": None, "cost_usd": 0.0,
     "has_audio": False, "error": "Le rendu a échoué"},
]  # fmt: skip


def test_results_zip_members_compression_and_summary(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results.zip"
    files = [
        ("runway", clips["green"]),
        ("local", clips["short"]),
        ("odd/../näme", clips["pcm_reference"]),
        ("gone", tmp_path / "gone.mp4"),
    ]
    assert results_zip(out, files, ROWS) == out
    assert no_part_files(tmp_path)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        assert list(infos) == [
            "01-runway.mp4",
            "02-local.mp4",
            "03-odd-..-n-me.mov",
            "summary.csv",
            "summary.json",
            "missing.txt",
        ]
        for name in ("01-runway.mp4", "02-local.mp4", "03-odd-..-n-me.mov"):
            assert infos[name].compress_type == zipfile.ZIP_STORED
        for name in ("summary.csv", "summary.json", "missing.txt"):
            assert infos[name].compress_type == zipfile.ZIP_DEFLATED
        assert zf.read("01-runway.mp4") == clips["green"].read_bytes()
        assert "04-gone.mp4" in zf.read("missing.txt").decode()

        table = list(csv.reader(io.StringIO(zf.read("summary.csv").decode("utf-8"))))
        assert table[0] == list(ROWS[0])
        assert table[1] == ["runway", "succeeded", "41.5", "0.25", "True", ""]
        assert table[2] == ["local", "failed", "", "0.0", "False", "Le rendu a échoué"]

        raw = zf.read("summary.json")
        assert "échoué".encode() in raw  # ensure_ascii=False
        assert json.loads(raw) == list(ROWS)


def test_results_zip_errors_are_sentences_and_leave_nothing(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "results.zip"
    with pytest.raises(InputError, match="could not be read"):
        results_zip(out, [("runway", clips["green"]), ("dir", tmp_path)], ROWS)
    assert not out.exists()
    assert no_part_files(tmp_path)

    full_disk_at(tmp_path / "results.zip.part")
    with pytest.raises(InputError, match=r"not enough disk space to write results\.zip"):
        results_zip(out, [("runway", clips["green"])], ROWS)
    assert not out.exists()
    assert no_part_files(tmp_path)


def test_results_zip_of_nothing_still_has_the_summary(tmp_path: Path) -> None:
    out = results_zip(tmp_path / "empty.zip", [], [])
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["summary.csv", "summary.json"]
        assert zf.read("summary.csv") == b""
        assert json.loads(zf.read("summary.json")) == []
