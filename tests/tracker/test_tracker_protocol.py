"""The push interface (``Tracker.update`` / ``tracks``): frame numbering, gaps, reading mid-video,
and every tracker of the ID-switch benchmark, ours and the peers, driven by the same loop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spermtrack.errors import ParameterError
from spermtrack.evaluate.metrics import evaluate_tracks
from spermtrack.tracker.associate import SpermTracker
from spermtrack.tracker.base import Tracker
from spermtrack.types import Detections

ROOT = Path(__file__).resolve().parents[2]
FPS = 50.0


def movers(n: int = 60, drop_frames: tuple[int, ...] = ()):
    """Two well-separated straight movers (truth, detections by frame); ``drop_frames`` have no entry."""
    paths = {1: np.array([50.0, 50.0]) + np.arange(n)[:, None] * [3.0, 1.0],
             2: np.array([50.0, 300.0]) + np.arange(n)[:, None] * [2.0, -1.0]}
    gt = pd.DataFrame([{"track_id": k, "frame": f, "x": p[f, 0], "y": p[f, 1], "w": 20.0, "h": 20.0}
                       for k, p in paths.items() for f in range(n) if f not in drop_frames])
    dets = {f: Detections.from_centers(np.array([p[f] for p in paths.values()]), 20.0)
            for f in range(n) if f not in drop_frames}
    return gt, dets, n


def test_pushing_frames_equals_run_with_gaps_and_reads_midway():
    gt, dets, n = movers(drop_frames=(20, 21, 22, 40))
    ref = SpermTracker(FPS).run(dets, n)
    pushed = SpermTracker(FPS)
    for f, d in dets.items():          # frames without detections are skipped: update fills them
        pushed.update(d, f)
        if f == 30:
            assert pushed.tracks().track_id.nunique() == 2   # readable mid-video, tracking goes on
    pd.testing.assert_frame_equal(pushed.tracks(), ref)
    implicit = SpermTracker(FPS)
    for f in range(n):
        implicit.update(dets.get(f, Detections.empty()))    # frames 0, 1, 2, ...
    pd.testing.assert_frame_equal(implicit.tracks(), ref)
    assert ref.track_id.nunique() == 2 and evaluate_tracks(gt, ref, n_frames=n)["IDSW"] == 0


def test_frames_must_increase():
    trk = SpermTracker(FPS)
    d = Detections.from_centers([[10.0, 10.0]], 20.0)
    trk.update(d, 5)
    with pytest.raises(ParameterError, match="frame 3 was pushed after frame 5"):
        trk.update(d, 3)
    with pytest.raises(ParameterError):
        trk.update(d, 5)


def _make(name: str) -> Tracker:
    """Our tracker, or the peer of ``benchmarks/configs/<name>.yaml``."""
    if name == "ours":
        return SpermTracker(FPS)
    pytest.importorskip({"bytetrack": "ultralytics", "botsort": "ultralytics", "trackpy": "trackpy",
                         "deepsort_shipped": "deep_sort_realtime", "sort": "filterpy"}[name])
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from benchmarks.peers.adapters import PEERS

    cfg = yaml.safe_load((ROOT / "benchmarks" / "configs" / f"{name}.yaml").read_text())
    return PEERS[name](cfg)


@pytest.mark.parametrize("name", ["ours", "deepsort_shipped", "bytetrack", "botsort", "trackpy", "sort"])
def test_every_benchmark_tracker_follows_two_movers_through_one_loop(name):
    gt, dets, n = movers()
    tracker = _make(name)
    assert isinstance(tracker, Tracker)
    for f in range(n):
        tracker.update(dets[f], f)
    out = tracker.tracks()
    assert out.track_id.nunique() == 2 and len(out) >= 2 * (n - 5)   # peers report after a few hits
    m = evaluate_tracks(gt, out, n_frames=n)
    assert m["IDSW"] == 0 and m["MOTA"] > 0.9
