"""Video I/O: what is written reads back exactly (count, size, rate) and closely (pixels);
damaged, wrong and lying files give clear errors or flags; streaming keeps memory flat."""

from __future__ import annotations

import json
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from spermtrack.errors import InputFileError, ParameterError, VideoDecodeError, VideoError
from spermtrack.io.video import VideoReader, VideoWriter, available_codecs, probe_video

W, H = 160, 120


def frame_at(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A frame with a bright square moving 2 px per frame over a gradient (smooth: codecs
    keep it well, so decoded pixels can be compared with what was written)."""
    f = np.tile(np.linspace(40, 120, w, dtype=np.float64), (h, 1))
    x = (2 * i) % (w - 20)
    f[40:60, x:x + 20] = 220
    return f.astype(np.uint8)


def write_video(path: Path, n: int, fps=50, *, codec=None, crf=18, w=W, h=H) -> Path:
    with VideoWriter(path, fps, w, h, codec=codec, crf=crf) as vw:
        for i in range(n):
            vw.write(frame_at(i, w, h))
    return path


def write_pts_video(path: Path, pts_ms: list[int], declared_fps=50) -> Path:
    """Write frames at the given timestamps (ms) with PyAV directly, declaring another rate."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=declared_fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts_ms):
            f = av.VideoFrame.from_ndarray(frame_at(i), format="gray")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_default_codec_is_h264_when_available(tmp_path):
    vw = VideoWriter(tmp_path / "a.mp4", 50, W, H)
    vw.write(frame_at(0))
    vw.close()
    expected = available_codecs()[0]
    assert vw.codec == expected
    assert probe_video(tmp_path / "a.mp4").codec == ("h264" if expected != "mpeg4" else "mpeg4")


@pytest.mark.parametrize("codec,ext", [(None, ".mp4"), ("mpeg4", ".mp4"), ("mpeg4", ".avi"),
                                       (None, ".mkv")])
def test_decode_what_was_encoded(tmp_path, codec, ext):
    path = write_video(tmp_path / f"v{ext}", 37, fps=50, codec=codec, crf=0)
    with VideoReader(path) as r:
        m = r.meta
        assert (m.width, m.height, m.n_frames, m.fps) == (W, H, 37, 50.0)
        assert m.duration_s == pytest.approx(37 / 50)
        assert not m.container_lies and not m.variable_frame_rate and m.warnings == ()
        got = list(r.iter_frames())
    assert [i for i, _, _ in got] == list(range(37))
    np.testing.assert_allclose([t for _, t, _ in got], np.arange(37) / 50, atol=1e-9)
    err = np.array([np.abs(g.astype(int) - frame_at(i)).max() for i, _, g in got])
    # lossless H.264 leaves only the 4:2:0 luma range rounding (1 level); MPEG-4 at q=2 a few
    assert err.max() <= (1 if codec is None else 12)


def test_exact_fractional_rate(tmp_path):
    path = write_video(tmp_path / "ntsc.mp4", 30, fps=Fraction(30000, 1001), codec="mpeg4")
    m = probe_video(path)
    assert m.fps == pytest.approx(30000 / 1001, rel=1e-12)
    assert m.n_frames == 30 and m.fps_source == "container"
    assert probe_video(write_video(tmp_path / "45.mp4", 30, fps=45.0, codec="mpeg4")).fps == 45.0


def test_bgr_frames_are_written_as_their_luma(tmp_path):
    bgr = np.zeros((H, W, 3), np.uint8)
    bgr[..., 1] = 200  # pure green: luma 0.587 * 200 = 117
    with VideoWriter(tmp_path / "c.mp4", 25, W, H, crf=0) as vw:
        vw.write(bgr)
    (_, _, g), = VideoReader(tmp_path / "c.mp4").iter_frames()
    assert abs(int(np.median(g)) - 117) <= 2


def test_writer_is_atomic_and_validates(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 50, W, H) as vw:
            vw.write(frame_at(0))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the video nor its temporary file
    with VideoWriter(out, 50, W, H) as vw:
        with pytest.raises(ParameterError, match="shape"):
            vw.write(np.zeros((H, W + 2), np.uint8))
        with pytest.raises(ParameterError, match="uint8"):
            vw.write(np.zeros((H, W), np.float32))
        vw.write(frame_at(0))
    assert [p.name for p in tmp_path.iterdir()] == ["x.mp4"]
    with pytest.raises(ParameterError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 50, 161, 120)
    with pytest.raises(ParameterError, match="fps"):
        VideoWriter(tmp_path / "f.mp4", 0, W, H)


def test_chunks_cover_the_video_in_order(tmp_path):
    path = write_video(tmp_path / "v.mp4", 50, codec="mpeg4")
    r = VideoReader(path, chunk_frames=16)
    chunks = list(r.iter_chunks())
    assert [(c.start, len(c)) for c in chunks] == [(0, 16), (16, 16), (32, 16), (48, 2)]
    assert chunks[1].stop == 32 and chunks[0].frames.dtype == np.uint8
    assert chunks[0].frames.shape == (16, H, W)
    frames = np.array([g for _, _, g in r.iter_frames()])
    np.testing.assert_array_equal(np.concatenate([c.frames for c in chunks]), frames)
    np.testing.assert_allclose(np.concatenate([c.timestamps_s for c in chunks]), np.arange(50) / 50)


@pytest.mark.parametrize("codec,ext", [(None, ".mkv"), ("mpeg4", ".avi"), (None, ".mp4")])
def test_truncated_file_yields_good_frames_then_raises(tmp_path, codec, ext):
    full = write_video(tmp_path / f"full{ext}", 100, codec=codec)
    cut = tmp_path / f"cut{ext}"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    r = VideoReader(cut)
    assert r.meta.container_lies and "truncated" in " ".join(r.meta.warnings)
    got = []
    with pytest.raises(VideoDecodeError) as info:
        for item in r.iter_frames():
            got.append(item)
    n_good = info.value.n_good
    assert n_good == len(got) and 10 <= n_good < 100
    assert str(cut) in str(info.value) and f"{n_good} frames" in str(info.value)
    for i, _, g in got:  # the frames that came out are the frames that went in
        assert np.abs(g.astype(int) - frame_at(i)).mean() < 3
    with pytest.raises(VideoDecodeError):  # chunks: the partial chunk first, then the error
        chunks = []
        for c in r.iter_chunks():
            chunks.append(c)
    assert sum(len(c) for c in chunks) == n_good


def test_mp4_cut_before_its_index_is_not_readable(tmp_path):
    path = tmp_path / "plain.mp4"  # written without faststart: the index (moov) comes last
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=50)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(50):
            for p in s.encode(av.VideoFrame.from_ndarray(frame_at(i), format="gray")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    with pytest.raises(VideoError, match="not a readable video.*moov"):
        VideoReader(path)


def test_files_that_are_not_videos(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        probe_video(tmp_path / "missing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.txt"
    text.write_text("frame,id,x,y\n" * 200)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    for p, msg in ((garbage, "not a readable video"), (text, "not a video"), (empty, "empty")):
        with pytest.raises(VideoError, match=msg) as info:
            VideoReader(p)
        assert str(p) in str(info.value)


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        s.layout = "mono"
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
        fr = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        fr.sample_rate, fr.pts = 8000, 0
        for p in list(s.encode(fr)) + list(s.encode(None)):
            c.mux(p)
    with pytest.raises(VideoError, match="no video stream.*audio"):
        probe_video(path)


def test_video_stream_without_frames(tmp_path):
    # AVI keeps a stream header with no frames (MP4/MKV writers drop or break such files)
    path = tmp_path / "zero.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=50)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        c.start_encoding()
    with pytest.raises(VideoError, match="no frames"):
        VideoReader(path)


def test_variable_frame_rate_is_detected(tmp_path):
    steps = [20, 20, 40] * 20  # every third interval doubled: a dropped frame
    path = write_pts_video(tmp_path / "vfr.mkv", list(np.cumsum([0] + steps)))
    m = probe_video(path)
    assert m.variable_frame_rate and m.n_frames == 61
    assert m.fps == pytest.approx(60 / 1.6)  # mean rate over the span
    ts = [t for _, t, _ in VideoReader(path).iter_frames()]
    np.testing.assert_allclose(ts[:5], [0, 0.02, 0.04, 0.08, 0.1])


def test_constant_rate_in_coarse_time_base_is_not_vfr(tmp_path):
    # 45 fps in Matroska's 1 ms time base: intervals 22/22/23 ms are rounding, not VFR
    pts = [int(round(i * 1000 / 45)) for i in range(90)]
    m = probe_video(write_pts_video(tmp_path / "45.mkv", pts, declared_fps=45))
    assert not m.variable_frame_rate and not m.container_lies
    assert m.fps == 45.0 and m.n_frames == 90


def test_container_rate_that_disagrees_with_timestamps(tmp_path):
    path = write_pts_video(tmp_path / "lie.mkv", [40 * i for i in range(50)], declared_fps=50)
    m = probe_video(path)
    assert m.fps == pytest.approx(25.0) and m.fps_source == "timestamps" and m.container_lies
    assert any("50 fps" in w for w in m.warnings)
    u = probe_video(path, fps=30)
    assert u.fps == 30 and u.fps_source == "user" and any("user" in w for w in u.warnings)
    ts = [t for _, t, _ in VideoReader(path, fps=30).iter_frames()]  # the user's clock wins
    np.testing.assert_allclose(ts, np.arange(50) / 30)


def test_probe_scan_modes(tmp_path):
    path = write_video(tmp_path / "v.mp4", 20, codec="mpeg4")
    assert probe_video(path, scan="none").n_frames_source == "container"
    d = probe_video(path, scan="decode")
    assert d.n_frames == 20 and d.n_frames_source == "decoded"
    with pytest.raises(ParameterError):
        probe_video(path, scan="all")


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        n = 0
        for chunk in VideoReader(path, chunk_frames=32).iter_chunks():
            n += len(chunk)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_does_not_grow_with_length(tmp_path):
    short = write_video(tmp_path / "short.avi", 200, codec="mpeg4")
    long = write_video(tmp_path / "long.avi", 2000, codec="mpeg4")
    p_short, p_long = _peak_bytes(short), _peak_bytes(long)
    whole_long = 2000 * W * H
    assert p_long < 1.5 * p_short, (p_short, p_long)
    assert p_long < whole_long / 5  # far from holding the video


def test_cli_info(tmp_path, capsys):
    from spermtrack.cli.main import main

    path = write_video(tmp_path / "v.mp4", 25, codec="mpeg4")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "160x120" in out and "fps:         50" in out and "frames:      25" in out
    assert "mpeg4" in out and "0.500 s" in out
    assert main(["info", "--json", str(path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["fps"], d["n_frames"], d["width"], d["container_lies"]) == (50.0, 25, W, False)
    assert main(["info", str(tmp_path / "nope.mp4")]) == 2
    assert "nope.mp4" in capsys.readouterr().err
