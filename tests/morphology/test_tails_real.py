"""Tails, midpieces and heads on REAL phase-contrast crops (VISEM-Tracking video 11 with its
official tracks, issue 15): the traces follow dark lines, refuse to jump to other structures,
leave unmeasurable tails empty, and the sample-level findings are no longer dominated by
tracing failures (the old tracer flagged 88 % of the cells "short tail" and 36 % "coiled").

Skips when ../shared/data/visem is absent. One decoding pass of the 1,470-frame video and 265
crops: about 10 s on one core.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spermtrack.morphology import analyze_morphology
from spermtrack.morphology import paths as P
from spermtrack.morphology.morphometry import REFERENCE, SHORT_MIN_CROPS, TAIL_KEEP_FRAC, morphology_summary

VISEM = Path(__file__).resolve().parents[3] / "shared" / "data" / "visem"
VIDEO = VISEM / "Train" / "11" / "11.mp4"
GT = VISEM / "gt" / "video11_gt_mot.txt.gz"
UM = 0.5

pytestmark = pytest.mark.skipif(not (VIDEO.is_file() and GT.is_file()), reason="real VISEM data not present")


def _gt_tracks() -> pd.DataFrame:
    from spermtrack.types import make_tracks

    a = pd.read_csv(GT, header=None).to_numpy(np.float64)
    df = pd.DataFrame({"track_id": a[:, 1].astype(np.int64), "frame": a[:, 0].astype(np.int64) - 1,
                       "x": a[:, 2] + a[:, 4] / 2, "y": a[:, 3] + a[:, 5] / 2, "w": a[:, 4], "h": a[:, 5],
                       "conf": 1.0, "cls": a[:, 7].astype(np.int64)})
    return make_tracks(df[df["cls"] == 0].reset_index(drop=True), source=str(GT))


@pytest.fixture(scope="module")
def run():
    return analyze_morphology(VIDEO, _gt_tracks(), UM)


def _stops(run) -> pd.Series:
    return pd.Series([s.extra.get("tail_stop", "") for s in run.segmentations])


def test_traces_do_not_circle_their_own_head(run):
    stops = _stops(run)
    traced = stops[stops != ""]
    assert len(traced) >= 200
    # the old tracer went round the halo ring into a "loop" on a third of the crops
    assert (traced == "own head").mean() <= 0.05
    assert (traced == "loop").mean() <= 0.10
    assert run.per_crop["tail_loop"].fillna(0).mean() <= 0.05


def test_tails_follow_dark_lines(run):
    """A measured tail lies on a dark line: darker than its own surroundings along its length."""
    ou, ov = run.crops.window_origin
    ok = 0
    measured = [i for i, s in enumerate(run.segmentations) if s.tail_complete and s.tail_path is not None]
    assert len(measured) >= 20
    for i in measured:
        s = run.segmentations[i]
        w = run.crops.windows[i].astype(np.float32)
        d = cv2.GaussianBlur(w, (0, 0), 0.7) - cv2.blur(w, (9, 9))
        q = P.resample(s.tail_path + [ou, ov], 1.0)
        ok += float(np.median(P.bilinear(d, q))) < 0.0
    assert ok / len(measured) >= 0.9


def test_unmeasurable_tails_are_empty_not_short(run):
    pc = run.per_crop
    stops = _stops(run)
    # a trace that ran into another cell, went round its own head, or that is not confidently
    # above the window's line texture has no length
    bad = stops.isin(["other cell", "own head", "window border"]).to_numpy() | (pc["tail_confidence"] < 0.25).to_numpy()
    assert pc.loc[bad, "tail_length_um"].isna().all()
    t = run.per_track
    # a track's length never undercuts what its other frames saw of the same tail
    m = t.tail_length_um.notna()
    assert (t.tail_length_um[m] >= TAIL_KEEP_FRAC * t.tail_lower_um[m] - 1e-9).all()
    # "short" needs the short length in at least two frames and no frame seeing it longer
    short = t.flag_short_tail.fillna(False).astype(bool)
    assert (t.n_tail_measured[short] >= SHORT_MIN_CROPS).all()
    # ... of at least two views: a still cell's frames that saw one view of its tail are one
    assert (t.n_tail_views[short] >= SHORT_MIN_CROPS).all()
    assert not (t.tail_lower_um[short] >= REFERENCE["tail_length_um_min"]).any()
    # no length, no lower bound of the limit: the short flag is empty, not False / True
    unknown = t.tail_length_um.isna() & ~(t.tail_lower_um >= REFERENCE["tail_length_um_min"])
    assert t.flag_short_tail[unknown].isna().all()


def test_head_outline_excludes_the_halo(run):
    """The outline is the bright head: brighter inside than in the ring just outside it."""
    inside_brighter, n = 0, 0
    for img, s in zip(run.crops.images, run.segmentations):
        if s.head_contour is None or s.quality < 0.2:
            continue
        f = img.astype(np.float32)
        m = np.zeros(f.shape, np.uint8)
        cv2.fillPoly(m, [np.round(s.head_contour * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        ring = cv2.dilate(m, np.ones((5, 5), np.uint8)) - m
        if m.sum() < 4 or ring.sum() < 4:
            continue
        n += 1
        inside_brighter += f[m > 0].mean() > f[ring > 0].mean() + 10
    assert n >= 200 and inside_brighter / n >= 0.95
    t = run.per_track[run.per_track.n_crops > 0]
    assert t.head_width_um.median() < REFERENCE["head_width_um"][1]


def test_sample_level_findings_on_video_11(run):
    t = run.per_track
    m = t[t.n_crops > 0]
    assert len(m) >= 50
    s = morphology_summary(t)
    # the lab (stained smear, participant 11) found 9.7 % tail defects; the old tracer 79 %
    assert s["tail_defect_pct"]["pct"] <= 25.0
    assert m.flag_coiled_tail.astype(float).mean() <= 0.10
    assert 2.5 <= m.midpiece_length_um.median() <= 6.0
    assert float(np.nanmedian(m.head_length_iqr_um / m.head_length_um)) <= 0.10
    # measured tails are not the 10-20 um fragments of the old tracer: the median is at least
    # the short limit's neighbourhood, and none is longer than a human tail can be
    tl = m.tail_length_um.dropna()
    # (issue 15's target: tails on >= 60 % of the cells; 45 % with the window that reached 20 um
    # to the sides and 16 um ahead, whose border cut the tails of still cells)
    assert len(tl) >= 0.6 * len(m)
    assert tl.median() >= 15.0 and tl.max() <= 70.0


def test_exit_does_not_trust_the_crop_orientation(run):
    """Still cells are oriented by their head axis with a guessed sign, moving cells by their
    box jitter: many tails leave toward the crop's front; they are traced where they are."""
    fwd = 0
    for s in run.segmentations:
        if s.path_px is not None and len(s.path_px) > 10:
            fwd += (s.path_px[10, 0] - s.path_px[0, 0]) > 3
    assert fwd >= 20


def test_traces_stay_inside_the_frame(run):
    """The tail window reaches past the frame near its border, where it holds the frame's
    reflection: no trace runs into it (a tail would follow its own mirror image)."""
    t = run.crops.table
    n = 0
    for i, s in enumerate(run.segmentations):
        if s.path_px is None:
            continue
        a = t.angle_rad[i]
        d = s.path_px - [t.anchor_u[i], t.anchor_v[i]]
        x = t.x[i] + np.cos(a) * d[:, 0] - np.sin(a) * d[:, 1]
        y = t.y[i] + np.sin(a) * d[:, 0] + np.cos(a) * d[:, 1]
        n += 1
        assert x.min() >= -0.5 and y.min() >= -0.5 and x.max() <= 639.5 and y.max() <= 479.5, i
    assert n >= 200
