"""The driving clip's sound under a silent result (services/media/remux.py): the picture's
packets untouched, the sound where it was against the driving clip's first frame, cut to
the result's length; copied when browsers play it, AAC otherwise."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from services.errors import InputError
from services.media.remux import Remuxed, Skipped, add_driving_audio
from tests import mediagen

AAC_FRAME_S = 1024 / 24000  # one AAC packet of the generated 24 kHz sound


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("remux")
    return {
        "result": mediagen.make_video(d / "result.mp4", seconds=3.0, fps=10),
        "voiced_result": mediagen.make_video(d / "voiced.mp4", seconds=3.0, fps=10, audio=True),
        "beep": mediagen.make_beep_clip(d / "beep.mp4", seconds=4.0, beeps_s=(1.0, 2.5)),
        "late_picture": mediagen.make_beep_clip(
            d / "late.mp4", seconds=4.0, beeps_s=(1.0,), video_start_s=0.5
        ),
        "pcm": mediagen.make_beep_clip(d / "pcm.mov", seconds=4.0, audio="pcm_s16le"),
        "mute": mediagen.make_beep_clip(d / "mute.mp4", seconds=4.0, audio=None),
    }


def video_packets(path: Path) -> list[tuple[bytes, int | None, int | None, bool]]:
    with av.open(str(path)) as c:
        return [
            (bytes(p), p.pts, p.dts, p.is_keyframe) for p in c.demux(c.streams.video[0]) if p.size
        ]


def sound(path: Path) -> tuple[np.ndarray, int, float]:
    """The decoded sound as mono samples, its rate, and the time of its first sample
    counted from the first video frame."""
    with av.open(str(path)) as c:
        a, v = c.streams.audio[0], c.streams.video[0]
        v0 = float((v.start_time or 0) * v.time_base)
        first: float | None = None
        chunks = []
        for frame in c.decode(a):
            if first is None:
                first = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray().reshape(len(frame.layout.channels), -1)[0])
        rate = a.codec_context.sample_rate
    samples = np.concatenate(chunks).astype(np.float32)
    assert first is not None
    return samples, rate, first - v0


def onsets(path: Path) -> list[float]:
    """When each beep starts, in seconds from the first video frame."""
    samples, rate, t0 = sound(path)
    loud = np.abs(samples) > 0.25 * np.abs(samples).max()
    starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    out: list[float] = []
    for k in starts:
        t = t0 + k / rate
        if not out or t - out[-1] > 0.2:  # one beep is many zero crossings
            out.append(t)
    return out


def durations(path: Path) -> tuple[float, float]:
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.duration is not None and a.duration is not None
        return float(v.duration * v.time_base), float(a.duration * a.time_base)


def test_sound_is_added_under_the_untouched_picture(media, tmp_path):
    out = tmp_path / "out.mp4"
    done = add_driving_audio(media["result"], media["beep"], out)
    assert done == Remuxed(audio_codec="aac", copied=True, duration_s=3.0)
    assert video_packets(out) == video_packets(media["result"])  # bit-identical, same times
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.video[0].codec_context.extradata == (
            av.open(str(media["result"])).streams.video[0].codec_context.extradata
        )
    # The beeps at 1.0 s land at 1.0 s of the result; the one at 2.5 s too.
    assert onsets(out) == pytest.approx([1.0, 2.5], abs=0.01)
    # Cut to the result's 3 s picture: never longer, short by less than one AAC packet.
    video_s, audio_s = durations(out)
    assert video_s == pytest.approx(3.0)
    assert video_s - AAC_FRAME_S - 1e-3 <= audio_s <= video_s + 1e-3
    # Faststart: the index comes before the media data, so a browser starts at once.
    data = out.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_sound_is_aligned_to_the_driving_clips_first_frame(media, tmp_path):
    # The camera's sound starts half a second before its picture: the beep 1.0 s after the
    # first frame must still be 1.0 s into the result, not 1.5 s.
    with av.open(str(media["late_picture"])) as c:
        assert float(c.streams.video[0].start_time * c.streams.video[0].time_base) == 0.5
    out = tmp_path / "out.mp4"
    assert isinstance(add_driving_audio(media["result"], media["late_picture"], out), Remuxed)
    assert onsets(out) == pytest.approx([1.0], abs=0.01)
    assert video_packets(out) == video_packets(media["result"])


def test_pcm_sound_is_converted_to_aac(media, tmp_path):
    out = tmp_path / "out.mp4"
    done = add_driving_audio(media["result"], media["pcm"], out)
    assert isinstance(done, Remuxed) and not done.copied and done.audio_codec == "pcm_s16le"
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert onsets(out) == pytest.approx([1.0], abs=0.01)
    video_s, audio_s = durations(out)
    assert audio_s <= video_s + 1e-3
    assert video_packets(out) == video_packets(media["result"])


def test_a_result_with_its_own_sound_is_left_alone(media, tmp_path):
    out = tmp_path / "out.mp4"
    assert add_driving_audio(media["voiced_result"], media["beep"], out) is (
        Skipped.RESULT_HAS_AUDIO
    )
    assert not out.exists()


def test_a_driving_clip_without_sound_adds_nothing(media, tmp_path):
    out = tmp_path / "out.mp4"
    assert add_driving_audio(media["result"], media["mute"], out) is Skipped.DRIVING_SILENT
    assert not out.exists()


def test_an_unreadable_driving_clip_is_a_sentence(media, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="driving clip cannot be read"):
        add_driving_audio(media["result"], broken, tmp_path / "out.mp4")
    with pytest.raises(InputError, match="driving clip cannot be read"):
        add_driving_audio(media["result"], tmp_path / "gone.mp4", tmp_path / "out.mp4")
