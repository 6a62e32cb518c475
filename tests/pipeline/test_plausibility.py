"""Plausibility warnings: each fires on the case it names and stays quiet on a plausible video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spermtrack.pipeline.plausibility import plausibility_warnings


def _tracks(n_cells: int, n_frames: int, track_len: int) -> pd.DataFrame:
    """``n_cells`` in view at all times, each track ``track_len`` frames long (cells renewed)."""
    rows, tid = [], 0
    for slot in range(n_cells):
        for start in range(0, n_frames, track_len):
            f = np.arange(start, min(start + track_len, n_frames))
            rows.append(pd.DataFrame({"track_id": tid, "frame": f, "x": 10.0 + slot, "y": 10.0, "w": 20.0, "h": 20.0,
                                      "conf": 1.0, "cls": 0}))
            tid += 1
    return pd.concat(rows, ignore_index=True)


def _metrics(vcl: float, n: int = 20) -> pd.DataFrame:
    return pd.DataFrame({"track_id": range(n), "vcl_um_s": vcl, "grade": "rapid_progressive"})


GOOD = dict(n_frames=1500, fps=50.0, um_per_px=0.5, um_per_px_source="user", min_duration_s=0.5,
            calibration={"head_length_px": 9.0, "strong_per_frame": 38.0})


def _warn(**kw):
    args = {**GOOD, "tracks": _tracks(40, 1500, 500), "metrics": _metrics(80.0), "n_detections": 40 * 1500}
    args.update(kw)
    return plausibility_warnings(**args)


def test_a_plausible_video_gives_no_warning():
    assert _warn() == []


@pytest.mark.parametrize("kw, needle", [
    (dict(n_frames=20, tracks=_tracks(5, 20, 20), n_detections=100), "shorter than the minimum"),
    (dict(n_detections=0), "zero sperm heads"),
    (dict(n_detections=40 * 1500 * 10), "detections per frame but only"),
    (dict(n_detections=40 * 1500 * 4, calibration={"head_length_px": 9.0, "strong_per_frame": 40.0}),
     "clear heads per frame"),
    (dict(tracks=_tracks(40, 1500, 10)), "fragmented"),
    (dict(calibration={"head_length_px": 40.0}), "check --um-per-px"),
    (dict(metrics=_metrics(900.0)), "frame rate"),
])
def test_each_warning_fires_on_its_case(kw, needle):
    w = _warn(**kw)
    assert any(needle in x for x in w), w
