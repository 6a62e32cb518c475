"""The ID-switch-at-crossing counter of benchmarks/crossings.py on tiny synthetic scenes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import crossings as cx  # noqa: E402
from spermtrack.evaluate.metrics import evaluate_tracks  # noqa: E402


def _table(rows):
    return pd.DataFrame(rows, columns=["track_id", "frame", "x", "y"]).assign(w=14.0, h=14.0)


def _crossing_scene(n=41, swap=True):
    """Heads 1 and 2 move towards each other along x (y 100 and 104), meet at frame 20 and go
    on; the prediction follows them but, when ``swap``, exchanges their ids from frame 21 on."""
    gt, pred = [], []
    for f in range(n):
        xa, xb = 100 + 3 * f, 220 - 3 * f
        gt += [(1, f, xa, 100.0), (2, f, xb, 104.0)]
        a, b = (20, 10) if (swap and f > 20) else (10, 20)
        pred += [(a, f, xa + 0.3, 100.0), (b, f, xb - 0.3, 104.0)]
    return _table(gt), _table(pred)


def test_crossing_swap_counts_one_at_crossing_switch_per_side():
    gt, pred = _crossing_scene()
    sw = cx.clear_switches(gt, pred)
    assert sorted(sw["gt_id"]) == [1, 2] and set(sw["frame"]) == {21}
    assert set(sw["prev_pred"]) == {10, 20} and set(sw["pred"]) == {10, 20}
    idx = cx.CrossingIndex.from_gt(gt)
    # centre distance hypot(120 - 6 f, 4) <= 10 px at frames 19, 20, 21 only
    d = np.hypot(120 - 6 * np.arange(41), 4)
    assert idx.near[1].tolist() == idx.near[2].tolist() == np.flatnonzero(d <= 10).tolist() == [19, 20, 21]
    assert idx.n_events == 1
    assert idx.count(sw) == (2, 2)
    assert cx.switches_at_crossings(gt, pred) == {"IDSW": 2, "IDSW_cross": 2, "events": 1}
    assert evaluate_tracks(gt, pred)["IDSW"] == 2
    # no swap: nothing
    gt0, pred0 = _crossing_scene(swap=False)
    assert cx.switches_at_crossings(gt0, pred0) == {"IDSW": 0, "IDSW_cross": 0, "events": 1}


def test_switch_far_from_any_other_head_is_not_at_a_crossing():
    gt, pred = [], []
    for f in range(40):
        gt += [(1, f, 100.0 + 2 * f, 100.0), (2, f, 400.0, 300.0 + f)]     # 200+ px apart always
        pred += [(7 if f < 25 else 8, f, 100.0 + 2 * f, 100.0), (9, f, 400.0, 300.0 + f)]
    gt, pred = _table(gt), _table(pred)
    sw = cx.clear_switches(gt, pred)
    assert sw[["gt_id", "frame", "prev_frame", "prev_pred", "pred"]].values.tolist() == [[1, 25, 24, 7, 8]]
    assert cx.switches_at_crossings(gt, pred) == {"IDSW": 1, "IDSW_cross": 0, "events": 0}


def test_window_edges_and_event_merging():
    # head 2 comes within 10 px of head 1 at frames 10-11 and again at 15 (gap of 3 frames): one
    # event; head 1 switches at frame 16 (5 after the last near frame: at a crossing) and head 3,
    # near nobody, never counts
    gt = []
    for f in range(30):
        gt.append((1, f, 100.0, 100.0))
        gt.append((2, f, 100.0 + (5.0 if f in (10, 11, 15) else 40.0), 100.0))
        gt.append((3, f, 500.0, 400.0))
    gt = _table(gt)
    idx = cx.CrossingIndex.from_gt(gt, window=5)
    assert idx.n_events == 1 and idx.events[["first", "last"]].values.tolist() == [[10, 15]]
    assert idx.at_crossing(1, 20) and not idx.at_crossing(1, 21) and idx.at_crossing(1, 5)
    assert not idx.at_crossing(1, 4) and not idx.at_crossing(3, 12)
    assert cx.CrossingIndex.from_gt(gt, window=2).n_events == 2


def _random_scene(seed, n_ids=12, n_frames=60):
    rng = np.random.default_rng(seed)
    gt = []
    for k in range(n_ids):
        p = rng.uniform(0, 120, 2)
        v = rng.normal(0, 2, 2)
        first = int(rng.integers(0, 20))
        for f in range(first, first + int(rng.integers(20, 40))):
            gt.append((k + 1, f, *(p + v * f)))
    gt = _table(gt)
    pred = gt[rng.random(len(gt)) > 0.1].copy()
    pred[["x", "y"]] += rng.normal(0, 2.0, (len(pred), 2))
    # random id changes: every (track, frame >= cut) gets a new id for some tracks
    cut = rng.integers(0, 60, n_ids + 1)
    pred["track_id"] = np.where(pred["frame"] >= cut[pred["track_id"]], pred["track_id"] + 100, pred["track_id"])
    # a few swaps between tracks sharing frames
    sw = rng.random(len(pred)) < 0.05
    pred.loc[sw, "track_id"] += 1000
    pred = pred.drop_duplicates(["track_id", "frame"])
    return gt, pred


@pytest.mark.parametrize("seed", range(6))
def test_total_equals_trackeval_idsw(seed):
    gt, pred = _random_scene(seed)
    assert len(cx.clear_switches(gt, pred)) == evaluate_tracks(gt, pred)["IDSW"]
