"""How often `analyze` reads the video (issue 13: probe + streaming pass + ONE second pass that
feeds the morphology crops and the annotated video), that sharing the pass changes no output,
and that `analyze` and `spermtrack morphology` run one morphology chain (the same table)."""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from conftest import faststart_cut
from spermtrack.synth import generate

UM = 0.5


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return generate(root, videos=1, seconds=1.6, cells=12, seed=11, width=320, height=240, write_images=False,
                    difficulty="easy")[0]


def _pass_of(stack) -> str:
    """Which part of `analyze` opened the video: the streaming pass, the shared second pass, or other."""
    files = [Path(f.filename).as_posix() for f in stack]
    if any(f.endswith("spermtrack/pipeline/stream.py") for f in files):
        return "stream"
    if any(f.name == "decode_pass" for f in stack):
        return "second"
    return "other"


def _drawn_frames(mp) -> list[str]:
    """Record a digest of every frame handed to a video writer (the encoder's own output may differ
    from run to run when threads race; the frames drawn may not)."""
    import spermtrack.io.video as io_video

    digests: list[str] = []
    real_write = io_video.VideoWriter.write

    def write(self, frame):
        digests.append(hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest())
        return real_write(self, frame)

    mp.setattr(io_video.VideoWriter, "write", write)
    return digests


def _analyze_counting_opens(video, out, **kw):
    """``(AnalysisResult, [pass of each read open], [digest of each frame drawn])`` of
    ``analyze_video`` on ``video``."""
    from spermtrack.pipeline.analyze import analyze_video

    opens: list[str] = []
    real_open = av.open

    def counting_open(file, mode="r", *args, **kwargs):
        if str(mode).startswith("r"):
            opens.append(_pass_of(traceback.extract_stack()[:-1]))
        return real_open(file, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(av, "open", counting_open)
        drawn = _drawn_frames(mp)
        res = analyze_video(video, out, um_per_px=UM, progress=False, echo=lambda line: None, **kw)
    return res, opens, drawn


@pytest.fixture(scope="module")
def analysed(clip, tmp_path_factory):
    return _analyze_counting_opens(clip / f"{clip.name}.mp4", tmp_path_factory.mktemp("out"))


def test_one_probe_and_one_second_pass(analysed):
    res, opens, _ = analysed
    assert (res.out_dir / "annotated.mp4").is_file() and (res.out_dir / "morphology.csv").is_file()
    # the crops, the annotated video and the gallery crops share one decoding pass
    assert opens.count("second") == 1, opens
    assert opens.count("other") == 1, opens  # the probe
    assert len(opens) <= 2 + opens.count("stream")


def test_analyze_reads_the_video_at_most_three_times(analysed):
    _, opens, _ = analysed
    assert len(opens) <= 3, opens


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_the_shared_pass_gives_what_separate_passes_gave(clip, analysed, tmp_path):
    """The annotated video and the morphology table are those of a pass of their own."""
    from spermtrack.morphology import analyze_morphology
    from spermtrack.morphology.chain import graded_track_ids
    from spermtrack.report.video import render_pass

    res, _, drawn = analysed
    video = clip / f"{clip.name}.mp4"
    n = res.meta["n_frames_analysed"]
    with pytest.MonkeyPatch.context() as mp:
        drawn_alone = _drawn_frames(mp)
        alone = render_pass(video, res.tracks, res.metrics, fps=res.calibration.fps,
                            out_path=tmp_path / "alone.mp4", n_frames=n, um_per_px=res.calibration.um_per_px)
    assert alone["n_frames"] == n == len(drawn) == _frames(res.out_dir / "annotated.mp4")
    assert drawn == drawn_alone  # the same frames drawn, frame by frame
    m = analyze_morphology(video, res.tracks, res.calibration.um_per_px, track_ids=graded_track_ids(res.metrics),
                           n_frames=n)
    pd.testing.assert_frame_equal(m.per_track, res.morphology)
    assert len(m.crops) > 0


def test_the_result_carries_its_calibration(analysed):
    res, _, _ = analysed
    cal = res.calibration
    assert (cal.um_per_px, cal.um_per_px_source, cal.fps_source) == (UM, "user", "container")
    assert res.meta["calibration"]["fps"] == cal.fps and res.meta["calibration"]["um_per_px"] == cal.um_per_px


def test_morphology_command_gives_the_analyze_table(clip, analysed, tmp_path, capsys):
    """Same video, tracks and um_per_px: `spermtrack morphology` writes analyze's morphology.csv.

    The tracks go at full precision: tracks.csv rounds positions to 1/1000 px, which can tip a
    near tie between two crops (and so a median)."""
    from spermtrack.cli.main import main

    res, _, _ = analysed
    tracks = tmp_path / "tracks.csv"
    res.tracks.to_csv(tracks, index=False)
    out = tmp_path / "MORPH.csv"
    rc = main(["morphology", str(clip / f"{clip.name}.mp4"), "--tracks", str(tracks), "--kinematics",
               str(res.out_dir / "kinematics.csv"), "--um-per-px", str(UM), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert out.read_bytes() == (res.out_dir / "morphology.csv").read_bytes()
    # without --kinematics every track of the file is measured, with the same chain
    rc = main(["morphology", str(clip / f"{clip.name}.mp4"), "--tracks", str(tracks), "--um-per-px", str(UM),
               "--out", str(out)])
    assert rc == 0
    assert set(pd.read_csv(out)["track_id"]) == set(res.tracks["track_id"])


def test_truncated_video_second_pass_stops_at_the_last_analysed_frame(clip, tmp_path):
    cut = faststart_cut(clip / f"{clip.name}.mp4", tmp_path / "cut.mp4")
    res, opens, drawn = _analyze_counting_opens(cut, tmp_path / "out")
    n = res.meta["n_frames_analysed"]
    assert res.meta["truncated"] is True and 0 < n < 80
    assert opens.count("second") == 1 and opens.count("other") == 1, opens
    assert len(drawn) == n == _frames(res.out_dir / "annotated.mp4")
    assert (res.out_dir / "morphology.csv").is_file() and np.all(res.tracks["frame"] < n)
