"""The product path: streaming pass == detect + track, `analyze` output folder, calibration
sources, the demo, checked against the synthetic truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spermtrack.cli.main import main
from spermtrack.synth import generate


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    folder = generate(root, videos=1, seconds=1.6, cells=10, seed=5, width=320, height=240, write_images=False,
                      difficulty="easy")[0]
    return folder


@pytest.fixture(scope="module")
def analysed(clip, tmp_path_factory):
    from spermtrack.pipeline.analyze import analyze_video

    out = tmp_path_factory.mktemp("out")
    return analyze_video(clip / f"{clip.name}.mp4", out, um_per_px=0.5, progress=False, truth=clip)


def test_streaming_pass_equals_detect_then_track(clip):
    from spermtrack.io.video import VideoReader
    from spermtrack.tracker.associate import SpermTracker
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.pipeline.stream import stream_video

    video = clip / f"{clip.name}.mp4"
    res = stream_video(video, detector=BlobDetector(), chunk_frames=16)
    dets = {}
    det = BlobDetector()  # one detector per video: calibrated on the first chunk, as in the stream
    for c in VideoReader(video, chunk_frames=16).iter_chunks():
        for i, d in enumerate(det.detect(c.frames)):
            dets[c.start + i] = d
    ref = SpermTracker(50.0).run(dets, len(dets))
    assert res.n_frames == 80 and res.decode_error is None
    assert res.n_detections == sum(len(d) for d in dets.values())
    pd.testing.assert_frame_equal(res.tracks.reset_index(drop=True), ref.reset_index(drop=True))
    assert res.times.decode_s > 0 and res.times.detect_s > 0 and res.preview.shape == (240, 320)


def test_reid_hook_gets_the_current_frame(clip):
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.pipeline.stream import stream_video

    seen = []

    class Probe:  # an embedder that records which frames it was given and embeds their brightness
        def embed(self, frame, boxes):
            seen.append(frame.shape)
            return np.tile([[1.0, 0.0]], (len(boxes), 1)).astype(np.float32)

    res = stream_video(clip / f"{clip.name}.mp4", detector=BlobDetector(), embedder=Probe(), chunk_frames=8)
    assert res.n_embeddings == sum(1 for _ in seen) or res.n_embeddings >= len(seen)
    assert all(s == (240, 320) for s in seen)


def test_reid_embedder_is_handed_the_frame_of_its_boxes(clip):
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.io.video import VideoReader
    from spermtrack.pipeline.stream import stream_video
    from spermtrack.tracker.associate import TrackerParams

    video = clip / f"{clip.name}.mp4"
    frames, dets, det = [], [], BlobDetector()
    for c in VideoReader(video, chunk_frames=8).iter_chunks():
        frames += list(c.frames)
        dets += det.detect(c.frames)
    calls = []

    class Probe:  # records what it is handed
        def embed(self, frame, boxes):
            calls.append((frame.copy(), np.array(boxes)))
            return np.tile([[1.0, 0.0]], (len(boxes), 1)).astype(np.float32)

    # embed_min_candidates=0: every detection, so one call for every frame with detections, in order
    stream_video(video, detector=BlobDetector(), embedder=Probe(), chunk_frames=8,
                 tracker_params=TrackerParams(embed_min_candidates=0))
    with_dets = [f for f, d in enumerate(dets) if len(d)]
    assert len(calls) == len(with_dets) > 0
    for f, (frame, boxes) in zip(with_dets, calls):
        np.testing.assert_array_equal(frame, frames[f])
        np.testing.assert_array_equal(boxes, dets[f].ltwh.astype(np.float32))


def test_analyze_writes_the_full_folder(analysed):
    out = analysed.out_dir
    for name in ("tracks.csv", "tracks_mot.txt", "kinematics.csv", "summary.csv", "summary.json", "morphology.csv",
                 "annotated.mp4", "report.html", "plots/trajectories.png", "plots/vcl_vsl.png", "plots/grades.png",
                 "plots/gallery.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    meta = json.loads((out / "summary.json").read_text())
    assert meta["status"] == "complete" and meta["truncated"] is False
    cal = meta["calibration"]
    assert cal == {**cal, "fps": 50.0, "fps_source": "container", "um_per_px": 0.5, "um_per_px_source": "user",
                   "um_per_px_estimated": False}
    assert set(meta["summary"]) == {"track", "window"} and meta["config"]["kinematics"]["preset"] == "who2021"
    assert meta["versions"]["spermtrack"] and meta["timings_s"]["total_s"] > 0
    assert meta["who_comparison"]["progressive"]["who6_lrl_pct"] == 30.0
    kin = pd.read_csv(out / "kinematics.csv")
    assert len(kin) == kin["track_id"].nunique() == analysed.tracks["track_id"].nunique()
    assert {"vcl_um_s", "progression_um_s", "grade"} <= set(kin.columns)
    assert any(c.startswith("head_length") for c in kin.columns)  # morphology joined
    summ = pd.read_csv(out / "summary.csv")
    assert set(summ["aggregate"]) == {"track", "window", "distribution"}
    assert (summ["fps"] == 50.0).all() and (summ["um_per_px_source"] == "user").all()
    tr = pd.read_csv(out / "tracks.csv")
    assert {"track_id", "frame", "x", "y", "x_smooth", "y_smooth", "interpolated"} <= set(tr.columns)
    mot = np.loadtxt(out / "tracks_mot.txt", delimiter=",")
    assert mot[:, 0].min() >= 1 and len(mot) == len(tr)


def test_analysis_agrees_with_the_synthetic_truth(analysed):
    tc = analysed.meta["truth_check"]
    assert tc["tracking"]["HOTA"] >= 55 and tc["tracking"]["IDSW"] <= 5
    # grades of an easy clip: every measured share within 25 points of the truth (few cells)
    assert tc["max_grade_diff_pct_points"] <= 25


def test_scale_is_estimated_loudly_when_not_given(clip, tmp_path, capsys):
    rc = main(["analyze", str(clip / f"{clip.name}.mp4"), "--out", str(tmp_path), "--no-video", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "ESTIMATED" in cap.err and "ESTIMATED" in cap.out
    meta = json.loads((tmp_path / clip.name / "summary.json").read_text())
    assert meta["calibration"]["um_per_px_estimated"] is True
    assert meta["calibration"]["um_per_px_source"] == "estimated from head size"
    # what the detector chose, and why, is part of every result
    det = meta["detector_calibration"]
    assert det["polarity"] == "bright" and det["polarity_source"] == "auto"
    assert det["threshold_z"] > det["floor_z"] and "head level" in det["threshold_rule"]
    assert 0.35 <= meta["calibration"]["um_per_px"] <= 0.7  # truth 0.5
    assert "Scale ESTIMATED" in (tmp_path / clip.name / "report.html").read_text()
    assert not (tmp_path / clip.name / "annotated.mp4").exists()


def test_user_fps_wins_and_is_recorded(clip, tmp_path, capsys):
    rc = main(["analyze", str(clip / f"{clip.name}.mp4"), "--out", str(tmp_path), "--fps", "25", "--um-per-px",
               "0.5", "--no-video", "--quiet", "--preset", "casa-gui", "--aggregate", "window"])
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((tmp_path / clip.name / "summary.json").read_text())
    assert meta["calibration"]["fps"] == 25.0 and meta["calibration"]["fps_source"] == "user"
    assert meta["kinematics"]["preset"] == "casa-gui" and meta["primary_aggregate"] == "window"
    assert meta["video"]["duration_s"] == pytest.approx(80 / 25)


def test_config_file_round_trips(clip, tmp_path, capsys, analysed):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**analysed.meta["config"], "report": {**analysed.meta["config"]["report"],
                                                                   "annotated_video": False, "plots": False}}))
    rc = main(["analyze", str(clip / f"{clip.name}.mp4"), "--out", str(tmp_path), "--um-per-px", "0.5",
               "--config", str(cfg), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / clip.name
    assert not (out / "annotated.mp4").exists() and not (out / "plots").exists()
    assert (out / "report.html").is_file()
    kin = pd.read_csv(out / "kinematics.csv")
    ref = pd.read_csv(analysed.out_dir / "kinematics.csv")
    pd.testing.assert_frame_equal(kin, ref)  # same config, same numbers


def test_demo_produces_a_checked_report(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path), "--seconds", "1.2", "--cells", "8", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "check against the synthetic truth: HOTA" in cap.out
    meta = json.loads((tmp_path / "101" / "summary.json").read_text())
    # measured 38.5 on this 1.2 s, 8-cell clip of the visem-look phantom (unlabelled distractors in
    # view); a detector that tracks the distractors or boxes of the wrong size scores ~12-22
    assert meta["truth_check"]["tracking"]["HOTA"] > 30
    assert (tmp_path / "101" / "report.html").is_file() and (tmp_path / "101" / "annotated.mp4").is_file()
