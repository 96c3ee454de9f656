"""A comparison's exports: one side-by-side MP4 (the driving clip beside every result, labelled
tiles in a grid, the driving clip's sound) and a ZIP of the result files with the numbers table.

Both stream. The video is decoded, scaled to its tile and encoded frame by frame — one decoder
thread per result, the driving clip on the calling thread, x264 on the shared H.264 writer's
thread (PyAV releases the GIL in all three, so two cores both work) — and the ZIP copies files
in chunks; memory does not grow with clip length. Both are written to `<out>.part` and renamed,
so a failed export leaves nothing behind and never a half file under the real name.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import queue
import re
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel

from services.engine.config import EncoderConfig
from services.engine.media import DrivingReader, result_writer
from services.errors import InputError
from services.media.encode import H264Writer
from services.media.metadata import (
    check_frame_size,
    declared_frame,
    open_input,
    stat_regular_file,
)

log = logging.getLogger("reenact.export")

MAX_WIDTH = 1920
MAX_TILES = 9
NO_RESULT = "No result"
FILE_MISSING = "Result file missing"
FILE_UNREADABLE = "Result file unreadable"
ENDED = "ended"

# Limited-range YUV: black, the dark grey of a tile without a picture, label text.
_BLACK = (16, 128, 128)
_STATUS_Y = 40
_TEXT_Y = 235
_STATUS_TEXT_Y = 190
_PILL_ALPHA = 0.6  # how much the label's backing darkens the picture under it
# Area averaging: tiles are mostly a 2-3x shrink, where bilinear would alias fine detail
# (hair, teeth) — exactly what a viewer compares. swscale does it inside PyAV without the GIL.
_INTERPOLATION = "AREA"
_QUEUE_DEPTH = 4  # decoded tiles waiting per result: a few small frames, memory stays flat
_PUT_WAIT_S = 0.1  # how often a blocked decoder thread checks that the export still wants it
_TEXT_LIMIT = 200


class ExportTile(BaseModel):
    """One result in the side-by-side: its label, and its file or what to show instead."""

    label: str
    path: Path | None = None  # the archived result, or None
    status: str | None = None  # shown when path is None ("Failed", "No result", …)


# ------------------------------------------------------------------ side-by-side


def grid(tiles: int) -> tuple[int, int]:
    """Columns and rows for `tiles` tiles (the driving clip included)."""
    if tiles <= 2:
        return max(1, tiles), 1
    if tiles <= 4:
        return 2, 2
    if tiles <= 6:
        return 3, 2
    return 3, 3


def _floor_even(n: float) -> int:
    return max(2, int(n) // 2 * 2)


def _tile_dims(tile_size: tuple[int, int], cols: int) -> tuple[int, int]:
    tw, th = tile_size
    if tw < 64 or th < 36:
        raise ValueError(f"tile_size {tile_size} is too small")
    scale = min(1.0, MAX_WIDTH / (tw * cols))
    return _floor_even(tw * scale), _floor_even(th * scale)


@dataclass(frozen=True)
class _Fit:
    """Where a video's picture sits in its tile: scaled size, offset, quarter turns."""

    w: int
    h: int
    x: int
    y: int
    turns: int


def _fit(frame: av.VideoFrame, tile: tuple[int, int], sar: Fraction | None) -> _Fit:
    turns = (round(frame.rotation or 0) // 90) % 4
    dw = frame.width * float(sar) if sar and sar > 0 else float(frame.width)
    dh = float(frame.height)
    if turns % 2:
        dw, dh = dh, dw
    tw, th = tile
    scale = min(tw / dw, th / dh)
    w, h = min(tw, _floor_even(dw * scale + 1)), min(th, _floor_even(dh * scale + 1))
    return _Fit(w, h, (tw - w) // 4 * 2, (th - h) // 4 * 2, turns)


class _Scaler:
    """Decoded frame → its tile picture as one I420 array, upright and letterboxed to fit."""

    def __init__(self, tile: tuple[int, int]) -> None:
        self.tile = tile
        self.sar: Fraction | None = None
        self.fit: _Fit | None = None

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self.fit is None:
            self.fit = _fit(frame, self.tile, self.sar)
        f = self.fit
        sw, sh = (f.h, f.w) if f.turns % 2 else (f.w, f.h)
        i420 = frame.to_ndarray(width=sw, height=sh, format="yuv420p", interpolation=_INTERPOLATION)
        if not f.turns:
            return i420
        out = np.empty(f.w * f.h * 3 // 2, np.uint8)
        for src, dst in zip(_planes(i420.reshape(-1), sw, sh), _planes(out, f.w, f.h), strict=True):
            dst[:] = np.rot90(src, f.turns)
        return out.reshape(f.h * 3 // 2, f.w)


def _planes(flat: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V views of a flat I420 buffer."""
    ys, cs = w * h, (w // 2) * (h // 2)
    return (
        flat[:ys].reshape(h, w),
        flat[ys : ys + cs].reshape(h // 2, w // 2),
        flat[ys + cs : ys + 2 * cs].reshape(h // 2, w // 2),
    )


class _Canvas:
    """The output frame as one I420 buffer that tiles are pasted into."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.flat = np.empty(w * h * 3 // 2, np.uint8)
        self.planes = _planes(self.flat, w, h)
        self.fill(0, 0, w, h, _BLACK)

    @property
    def i420(self) -> np.ndarray:
        return self.flat.reshape(self.h * 3 // 2, self.w)

    def fill(self, x: int, y: int, w: int, h: int, yuv: tuple[int, int, int]) -> None:
        for i, (plane, value) in enumerate(zip(self.planes, yuv, strict=True)):
            s = 1 if i == 0 else 2
            plane[y // s : (y + h) // s, x // s : (x + w) // s] = value

    def paste(self, x: int, y: int, i420: np.ndarray) -> None:
        h, w = i420.shape[0] * 2 // 3, i420.shape[1]
        for i, (dst, src) in enumerate(
            zip(self.planes, _planes(i420.reshape(-1), w, h), strict=True)
        ):
            s = 1 if i == 0 else 2
            dst[y // s : (y + h) // s, x // s : (x + w) // s] = src


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # DejaVu covers accents and most scripts; Pillow's own font (Latin only) is the fallback.
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _clip_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    text = " ".join(str(text).split())[:_TEXT_LIMIT]
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text.rstrip() + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


@dataclass(frozen=True)
class _Overlay:
    """Text on a darkened backing, pre-rendered once as per-pixel multiply/add tables so that
    drawing it on a frame is a few small array operations."""

    x: int
    y: int
    y_mul: np.ndarray
    y_add: np.ndarray
    c_mul: np.ndarray
    c_add: np.ndarray

    @classmethod
    def text(
        cls,
        text: str,
        *,
        size: int,
        max_width: int,
        anchor: tuple[int, int],
        align: str = "left",
        backing: float = _PILL_ALPHA,
        text_y: int = _TEXT_Y,
    ) -> _Overlay:
        font = _font(size)
        text = _clip_text(text, font, max_width - size)
        pad_x, pad_y = size // 2, size // 4
        left, _, right, _ = font.getbbox(text or " ")
        # Centred on the font's cap-to-descender box, not this text's, so every label sits
        # at the same height whatever its letters.
        _, top, _, bottom = font.getbbox("Ag")
        w = _floor_even(min(max_width, right - left + 2 * pad_x) + 1)
        h = _floor_even(bottom - top + 2 * pad_y + 1)
        ink = Image.new("L", (w, h))
        origin = (pad_x - left, (h - (bottom - top)) // 2 - top)
        ImageDraw.Draw(ink).text(origin, text, font=font, fill=255)
        m = np.asarray(ink, np.float32) / 255.0
        a = np.full((h, w), backing, np.float32)
        # Y: darken toward black by the backing, then lay the text on top.
        y_mul = (1 - a) * (1 - m)
        y_add = _BLACK[0] * a * (1 - m) + text_y * m
        # U/V: the backing and the text are both neutral grey, so pull toward 128 as much.
        mc = m.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        ac = a[::2, ::2]
        cover = 1 - (1 - ac) * (1 - mc)
        x, y = anchor
        if align == "right":
            x -= w
        elif align == "center":
            x, y = x - w // 2, y - h // 2
        return cls(x // 2 * 2, y // 2 * 2, y_mul, y_add, 1 - cover, 128 * cover)

    def draw(self, canvas: _Canvas) -> None:
        h, w = self.y_mul.shape
        y, u, v = canvas.planes
        region = y[self.y : self.y + h, self.x : self.x + w]
        region[:] = region * self.y_mul + self.y_add
        for plane in (u, v):
            r = plane[self.y // 2 : (self.y + h) // 2, self.x // 2 : (self.x + w) // 2]
            r[:] = r * self.c_mul + self.c_add


class _Tile:
    """A cell of the grid: its place, label and (for a picture-less tile) its status text."""

    def __init__(self, x: int, y: int, w: int, h: int, label: str) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h
        size = max(10, round(h * 0.05))
        margin = _floor_even(size * 0.5)
        self._size = size
        self._label = _Overlay.text(
            label, size=size, max_width=w * 3 // 4, anchor=(x + margin, y + margin)
        )
        self._ended = _Overlay.text(
            ENDED,
            size=max(10, round(size * 0.8)),
            max_width=w // 4,
            anchor=(x + w - margin, y + margin),
            align="right",
        )
        # What the cell shows now (the picture array itself, kept alive so that a new frame
        # can never be mistaken for it), or the status text.
        self._shown: np.ndarray | str | None = None
        self._shown_ended = False

    def picture(self, canvas: _Canvas, fit: _Fit, i420: np.ndarray, *, ended: bool = False) -> None:
        # A held frame is drawn once: redrawing the label over its own backing would darken it.
        if self._shown is i420 and self._shown_ended == ended:
            return
        if not isinstance(self._shown, np.ndarray):
            canvas.fill(self.x, self.y, self.w, self.h, _BLACK)
        canvas.paste(self.x + fit.x, self.y + fit.y, i420)
        self._label.draw(canvas)
        if ended:
            self._ended.draw(canvas)
        self._shown, self._shown_ended = i420, ended

    def status(self, canvas: _Canvas, text: str) -> None:
        if self._shown == text:
            return
        canvas.fill(self.x, self.y, self.w, self.h, (_STATUS_Y, 128, 128))
        _Overlay.text(
            text,
            size=round(self._size * 1.2),
            max_width=self.w - 2 * self._size,
            anchor=(self.x + self.w // 2, self.y + self.h // 2),
            align="center",
            backing=0.0,
            text_y=_STATUS_TEXT_Y,
        ).draw(canvas)
        self._label.draw(canvas)
        self._shown = text


_END = object()


class _Result:
    """One result's frames on the export's timeline, decoded and scaled on a thread of its own.

    `at(t)` gives the latest frame shown at or before `t` (seconds from the result's own first
    frame); after its last frame the result holds it and reports itself ended.
    """

    def __init__(self, tile: ExportTile, size: tuple[int, int], fallback_fps: Fraction) -> None:
        self.status: str | None = None
        self.scaler = _Scaler(size)
        self._container: av.container.InputContainer | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: Any = None
        self._current: tuple[float, np.ndarray] | None = None
        self._done = False
        self._frame_s = 1 / float(fallback_fps)
        self._name = tile.path.name if tile.path is not None else tile.label
        if tile.path is None:
            self.status = tile.status or NO_RESULT
            return
        try:
            # A provider's file: opened as a file (never a protocol), and refused before
            # decoding when its frames would not fit the decoding budget.
            stat_regular_file(tile.path)
            container = open_input(tile.path, metadata_errors="ignore")
        except FileNotFoundError:
            self.status = FILE_MISSING
            return
        except InputError as err:
            self.status = FILE_MISSING if not tile.path.exists() else FILE_UNREADABLE
            log.info("Result %s left out of the export: %s", self._name, err)
            return
        except (av.FFmpegError, OSError, ValueError):
            self.status = FILE_UNREADABLE
            return
        if not container.streams.video:
            container.close()
            self.status = FILE_UNREADABLE
            return
        try:
            check_frame_size(self._name, *declared_frame(tile.path, container))
        except InputError as err:
            container.close()
            self.status = FILE_UNREADABLE
            log.info("Result %s left out of the export: %s", self._name, err)
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        if rate and rate > 0:
            self._frame_s = 1 / float(rate)
        self.scaler.sar = stream.sample_aspect_ratio
        self._container = container
        self._thread = threading.Thread(target=self._decode, name="export-decode", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        assert self._container is not None
        origin: float | None = None
        last = -self._frame_s
        try:
            for frame in self._container.decode(video=0):
                t = frame.time
                if t is None:
                    t = last + self._frame_s
                if origin is None:
                    origin = t
                last = t
                if not self._put((t - origin, self.scaler(frame))):
                    return
        except Exception as err:
            # A damaged result holds its last good frame: one tile never stops the export.
            shown = max(0.0, last - (origin or 0.0))
            log.warning("The result %s stopped decoding at %.1f s (%s).", self._name, shown, err)
        finally:
            self._put(_END)
            self._container.close()

    def at(self, t: float, tolerance: float) -> tuple[np.ndarray | None, bool]:
        """The picture shown at `t` (None if there never was one) and whether the result has
        ended by then."""
        while not self._done:
            if self._pending is None:
                self._pending = self._queue.get()
            if self._pending is _END:
                self._pending = None
                self._done = True
                break
            if self._current is not None and self._pending[0] > t + tolerance:
                break
            self._current, self._pending = self._pending, None
        if self._current is None:
            return None, self._done
        ended = self._done and t + tolerance >= self._current[0] + self._frame_s
        return self._current[1], ended

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        elif self._container is not None:
            self._container.close()


def side_by_side(
    reference: Path,
    tiles: Sequence[ExportTile],
    out: Path,
    *,
    reference_label: str = "Driving clip",
    tile_size: tuple[int, int] = (640, 360),
) -> Path:
    """Write the comparison video to `out`: the driving clip (`reference`) and each of `tiles`
    in a grid of equal, labelled tiles, on the driving clip's timeline (its frame rate and
    length, its audio). A result that is shorter holds its last frame, marked "ended"; one
    without a file shows `status` (or "No result"), a missing or unreadable file says so.

    Raises InputError with a sentence when the driving clip cannot be read or the video
    cannot be written (a full disk, say); returns `out`.
    """
    out = Path(out)
    reference = Path(reference)
    if len(tiles) + 1 > MAX_TILES:
        raise InputError(
            f"A side-by-side video holds at most {MAX_TILES - 1} results; "
            f"this comparison has {len(tiles)}."
        )
    cols, rows = grid(len(tiles) + 1)
    tw, th = _tile_dims(tile_size, cols)
    width, height = cols * tw, rows * th
    part = out.with_name(out.name + ".part")
    ref_scaler = _Scaler((tw, th))
    results: list[_Result] = []
    writer: H264Writer | None = None
    try:
        with DrivingReader(reference, convert=ref_scaler) as reader:
            ref_scaler.sar = reader.video.sample_aspect_ratio
            cells = [
                _Tile((i % cols) * tw, (i // cols) * th, tw, th, label)
                for i, label in enumerate([reference_label, *(t.label for t in tiles)])
            ]
            for tile in tiles:  # one by one, so that `finally` stops every thread started
                results.append(_Result(tile, (tw, th), reader.fps))
            canvas = _Canvas(width, height)
            writer = result_writer(part, (width, height), reader, EncoderConfig())
            frame_s = 1 / float(reader.fps)
            n = 0
            for item in reader:
                if isinstance(item, av.Packet):
                    writer.mux_audio(item)
                    continue
                assert ref_scaler.fit is not None
                cells[0].picture(canvas, ref_scaler.fit, item)
                t = n * frame_s
                for cell, result in zip(cells[1:], results, strict=True):
                    _draw_result(canvas, cell, result, t, frame_s / 2)
                writer.write(canvas.i420)
                n += 1
            if n == 0:
                raise InputError(
                    f"The driving video {reference.name} has no picture that could be decoded."
                )
            writer.finish()
            writer = None
        os.replace(part, out)
    except InputError:
        raise
    except OSError as err:
        raise _write_error(err, out) from None
    except av.FFmpegError as err:
        log.debug("side-by-side failed", exc_info=True)
        raise InputError(
            f"The side-by-side video {out.name} could not be written ({err.strerror or err})."
        ) from None
    finally:
        if writer is not None:
            writer.abort()
        for result in results:
            result.close()
        part.unlink(missing_ok=True)
    return out


def _draw_result(canvas: _Canvas, cell: _Tile, result: _Result, t: float, tol: float) -> None:
    if result.status is not None:
        cell.status(canvas, result.status)
        return
    picture, ended = result.at(t, tol)
    if picture is None:  # opened, yet not one frame decoded
        cell.status(canvas, FILE_UNREADABLE)
        return
    assert result.scaler.fit is not None
    cell.picture(canvas, result.scaler.fit, picture, ended=ended)


def _write_error(err: OSError, out: Path) -> InputError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return InputError(
            f"There is not enough disk space to write {out.name}; free some space and export again."
        )
    reason = err.strerror or str(err)
    return InputError(f"{out.name} could not be written in {out.parent} ({reason}).")


# ------------------------------------------------------------------ ZIP


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-_")
    return stem[:80] or "result"


def arcnames(files: Sequence[tuple[str, Path]]) -> list[str]:
    """The names `results_zip` gives `files` inside the ZIP (a batch's CSV lists them)."""
    names: list[str] = []
    for i, (name, path) in enumerate(files, start=1):
        suffix = Path(path).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ".mp4"
        stem = _safe_name(name)
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)] or "result"
        names.append(f"{i:02d}-{stem}{suffix}")
    return names


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def summary_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV: a header of the first row's keys (then any key only later rows have)."""
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    buf = io.StringIO()
    if fields:
        writer = csv.DictWriter(buf, fieldnames=fields, restval="", lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()


def summary_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([dict(r) for r in rows], ensure_ascii=False, indent=2, default=str) + "\n"


_CHUNK = 1 << 20


def results_zip(
    out: Path, files: Sequence[tuple[str, Path]], summary: Sequence[Mapping[str, Any]]
) -> Path:
    """Write a ZIP of the results to `out`: each `(name, path)` of `files` as `NN-<name>.<ext>`
    (numbered in order, the name made safe, stored uncompressed — videos are compressed
    already), plus `summary.csv` and `summary.json` of `summary` (deflated). A file that is
    no longer there is left out and listed in `missing.txt`.

    Raises InputError with a sentence when a file cannot be read or the ZIP cannot be written
    (a full disk, say); returns `out`.
    """
    out = Path(out)
    part = out.with_name(out.name + ".part")
    missing: list[str] = []
    try:
        with zipfile.ZipFile(part, "w", strict_timestamps=False) as zf:
            for arcname, (_, path) in zip(arcnames(files), files, strict=True):
                if not _add_file(zf, Path(path), arcname):
                    missing.append(arcname)
            now = time.localtime()[:6]
            texts = {"summary.csv": summary_csv(summary), "summary.json": summary_json(summary)}
            if missing:
                texts["missing.txt"] = "".join(
                    f"{name}: the result file was not found when the ZIP was made.\n"
                    for name in missing
                )
            for name, text in texts.items():
                info = zipfile.ZipInfo(name, date_time=now)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, text.encode("utf-8"))
        os.replace(part, out)
    except _ReadError as err:
        raise InputError(
            f"The result file {err.path.name} could not be read ({err.reason}); "
            "the ZIP was not made."
        ) from None
    except OSError as err:
        raise _write_error(err, out) from None
    finally:
        part.unlink(missing_ok=True)
    return out


class _ReadError(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = path, reason


def _add_file(zf: zipfile.ZipFile, path: Path, arcname: str) -> bool:
    """Copy one file into the ZIP in chunks; False when it does not exist."""
    try:
        src = path.open("rb")
    except FileNotFoundError:
        return False
    except OSError as err:
        raise _ReadError(path, err.strerror or str(err)) from None
    with src:
        # Read errors and write errors need different sentences, so this is zipfile.write's
        # own copy loop with the two sides told apart. The size comes from the open file: it
        # decides ZIP64 for files over 2 GiB.
        st = os.fstat(src.fileno())
        stamp = max(time.localtime(st.st_mtime)[:6], (1980, 1, 1, 0, 0, 0))
        info = zipfile.ZipInfo(arcname, date_time=stamp)
        info.file_size = st.st_size
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_STORED
        with zf.open(info, "w") as dst:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except OSError as err:
                    raise _ReadError(path, err.strerror or str(err)) from None
                if not chunk:
                    break
                dst.write(chunk)
    return True


__all__ = ["ExportTile", "grid", "results_zip", "side_by_side", "summary_csv", "summary_json"]
