"""The concentration counting rule on real VISEM-Tracking data (skips when ../shared is absent).

``heads_in_view`` on the official gt tracks must equal the mean of the official per-frame label
counts (``sperm_counts_per_frame.csv``), and the leave-one-video-out calibration of
``benchmarks/concentration_real.py`` must give a finite error. The full real-data comparison with
the lab is ``benchmarks/results/concentration_real.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spermtrack.kinematics.concentration import heads_in_view

from conftest import shared_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import concentration_real as cr  # noqa: E402


def _gt_tracks(video: int) -> pd.DataFrame:
    """Tracks table of ``gt/video{video}_gt_mot.txt.gz`` (MOT, 1-based frames, left/top/w/h)."""
    path = shared_file("data", "visem", "gt", f"video{video}_gt_mot.txt.gz")
    a = pd.read_csv(path, header=None).to_numpy(np.float64)
    return pd.DataFrame({"track_id": a[:, 1].astype(np.int64), "frame": a[:, 0].astype(np.int64) - 1,
                         "x": a[:, 2] + a[:, 4] / 2, "y": a[:, 3] + a[:, 5] / 2})


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    return cr.label_counts(shared_file("data", "visem", "sperm_counts_per_frame.csv"))


@pytest.mark.parametrize("video", [11, 14, 24])
def test_heads_in_view_equals_official_counts(counts, video):
    tracks = _gt_tracks(video)
    lab = counts.loc[counts["video"] == video].set_index("frame")["sperm_count"]
    n_frames = int(lab.index.max()) + 1
    assert len(lab) == n_frames  # every frame has a label file
    assert heads_in_view(tracks, n_frames, 640, 480) == pytest.approx(lab.mean(), abs=1e-9)
    per_frame = cr.per_frame_in_view(tracks, n_frames)
    assert (per_frame == lab.sort_index().to_numpy()).all()


def test_heads_in_view_counts_unlabelled_frames_as_empty(counts):
    """Video 23 has no label file for 174 of its 1470 frames (and no gt boxes there):
    ``heads_in_view`` averages over all frames, the official mean over labelled frames only."""
    tracks = _gt_tracks(23)
    lab = counts.loc[counts["video"] == 23].set_index("frame")["sperm_count"]
    assert len(lab) == 1296 and lab.index.max() == 1469
    hv = heads_in_view(tracks, 1470, 640, 480)
    assert hv * 1470 / 1296 == pytest.approx(lab.mean(), abs=1e-9)
    assert not tracks["frame"].isin(np.setdiff1d(np.arange(1470), lab.index)).any()


def test_loo_error_on_real_data_is_finite(counts):
    lab = cr.lab_concentration(shared_file("data", "visem", "visem_tracking_20_motility.csv"))
    heads = cr.mean_labelled_heads(counts)
    err = cr.loo_median_abs_rel_error(heads, lab)
    assert np.isfinite(err) and 0 < err < 1
    loo = cr.loo_predictions(heads, lab)
    assert len(loo) == 20 and np.isfinite(loo["rel_error"]).all()
    # the leave-one-out depth at 0.5 um/px stays near the all-video median (~11 um)
    assert loo["loo_depth_um"].between(5, 20).all()


def test_loo_error_is_zero_when_counts_are_proportional():
    lab = pd.Series([4.0, 20.0, 97.0, 159.0], index=[1, 2, 3, 4])
    heads = lab * 0.86
    assert cr.loo_median_abs_rel_error(heads, lab) == pytest.approx(0.0, abs=1e-12)
    assert cr.depth_um(0.86) == pytest.approx(0.86e6 / (640 * 480 * 0.25))
