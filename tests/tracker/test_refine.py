"""Offline refinement: RTS smoother vs filterpy, stitching, gap filling, jitter reduction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from spermtrack.tracker import kalman
from spermtrack.tracker import refine as refine_mod
from spermtrack.tracker.refine import (RefineParams, _class_gains, estimate_meas_sigma, mark_satellites, refine_tracks, split_jumps,
                                       resolve_crossings, smoothed_boxes, split_gaps, stitch_tracklets)
from spermtrack.types import OTHER_CLS, make_tracks

FPS = 50.0


def tracks_from(paths: dict[int, tuple[np.ndarray, np.ndarray]], size=20.0) -> pd.DataFrame:
    """``{id: (frames, (n, 2) centres)}`` -> Tracks table."""
    rows = []
    for k, (frames, xy) in paths.items():
        for f, (x, y) in zip(frames, xy):
            rows.append({"track_id": k, "frame": int(f), "x": x, "y": y, "w": size, "h": size})
    return pd.DataFrame(rows)


def test_rts_smoother_matches_filterpy_with_a_gap():
    rng = np.random.default_rng(0)
    n, q, r = 40, 0.05, 1.5
    truth = 10 + 2.0 * np.arange(n) + 0.02 * np.arange(n) ** 2
    z = truth + rng.normal(0, np.sqrt(r), n)
    z[15:19] = np.nan
    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F = np.array([[1.0, 1.0], [0.0, 1.0]])
    kf.H = np.array([[1.0, 0.0]])
    kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q)
    kf.R = np.array([[r]])
    kf.x = np.array([[z[0]], [0.0]])
    kf.P = np.diag([r, 25.0])
    # our filter initialises at z[0] without a prior predict; filterpy predicts first, so feed
    # it the first measurement with P already posterior by starting from frame 1
    xs, ps = [kf.x.copy()], [kf.P.copy()]
    for zk in z[1:]:
        kf.predict()
        kf.update(None if np.isnan(zk) else zk)
        xs.append(kf.x.copy())
        ps.append(kf.P.copy())
    ref, _, _, _ = kf.rts_smoother(np.array(xs), np.array(ps))
    zz = np.column_stack([z, z])
    ours = kalman.rts_smooth(zz, np.array([0, n]), q=q, r=r, p0_vel=25.0)
    np.testing.assert_allclose(ours[:, 0], ref[:, 0, 0], atol=1e-9)
    np.testing.assert_allclose(ours[:, 2], ref[:, 1, 0], atol=1e-9)


def test_split_tracklet_is_stitched_and_neighbours_are_not():
    f = np.arange(100)
    a = np.column_stack([50 + 3.0 * f, 100 + 1.0 * f])
    far = np.column_stack([300 - 2.0 * f, 400 + 0 * f])
    t = tracks_from({1: (f[:40], a[:40]), 2: (f[52:], a[52:]),        # 12-frame gap, same cell
                     3: (f[:45], far[:45]), 4: (f[50:], far[50:] + [0, 60])})  # 60 px off: another cell
    out = stitch_tracklets(t, FPS)
    ids = out.groupby("track_id").frame.agg(["min", "max"])
    assert len(ids) == 3
    assert out[out.frame == 0].track_id.iloc[0] == out[(out.frame == 99) & (out.x > 200)].track_id.iloc[0]
    assert set(out[out.y > 430].track_id) != set(out[(out.y < 410) & (out.y > 390)].track_id)


def test_chain_of_three_fragments_becomes_one_track():
    f = np.arange(90)
    a = np.column_stack([20 + 2.0 * f, 200 - 1.0 * f])
    t = tracks_from({5: (f[:30], a[:30]), 9: (f[33:60], a[33:60]), 2: (f[64:], a[64:])})
    out = stitch_tracklets(t, FPS)
    assert out.track_id.nunique() == 1 and out.track_id.iloc[0] == 5   # the first fragment's id


def test_no_stitch_beyond_max_gap_or_across_overlap():
    f = np.arange(200)
    a = np.column_stack([50 + 1.0 * f, 100 + 0 * f])
    t = tracks_from({1: (f[:50], a[:50]), 2: (f[120:], a[120:])})   # 70 frames = 1.4 s > 1 s
    assert stitch_tracklets(t, FPS).track_id.nunique() == 2
    t = tracks_from({1: (f[:60], a[:60]), 2: (f[55:], a[55:] + [0, 1])})  # overlapping in time
    assert stitch_tracklets(t, FPS).track_id.nunique() == 2


def test_gaps_are_filled_flagged_and_close_to_truth():
    f = np.arange(60)
    truth = np.column_stack([100 + 2.5 * f, 50 + 1.5 * f])
    keep = np.r_[0:20, 26:40, 44:60]               # gaps of 6 and 4 frames
    t = tracks_from({1: (f[keep], truth[keep])})
    out = refine_tracks(t, FPS)
    assert len(out) == 60 and out.interpolated.sum() == 10
    filled = out[out.interpolated]
    err = np.hypot(filled.x_smooth - truth[filled.frame, 0], filled.y_smooth - truth[filled.frame, 1])
    assert err.max() < 0.5
    assert np.array_equal(filled.x.to_numpy(), filled.x_smooth.to_numpy())
    meas = out[~out.interpolated]
    np.testing.assert_array_equal(meas.x.to_numpy(), truth[keep, 0])   # measured kept as given
    long_gap = tracks_from({1: (np.r_[f[:10], f[10:] + 40], truth)})   # 40 frames > 0.5 s
    assert refine_tracks(long_gap, FPS).interpolated.sum() == 0


def test_gap_fill_stays_between_its_ends():
    """A static head whose last detections before a 15-frame gap drift 6 px (half merged with a
    head passing by), on a track whose process noise is high (a beating head): the
    constant-velocity smoother alone carries that drift into the gap and draws the fill 14 px
    off the head; the fill is kept inside the ends' box + fill_margin_px."""
    rng = np.random.default_rng(5)
    f = np.r_[0:21, 36:60]
    xy = 100 + rng.normal(0, 0.3, (len(f), 2))
    xy[18:21] = [(101.5, 98.5), (103, 97), (104.5, 95.5)]   # the drifting end
    t = tracks_from({1: (f, xy)})
    free = refine_tracks(t, FPS, params=RefineParams(fill_margin_px=-1, accel_sigma_px_s2=20000))
    kept = refine_tracks(t, FPS, params=RefineParams(accel_sigma_px_s2=20000))
    assert RefineParams().fill_margin_px == 3.0
    box = lambda r, m: (r.x_smooth.between(99 - m, 104.5 + m) & r.y_smooth.between(95.5 - m, 101 + m))[r.interpolated]  # noqa: E731
    assert not box(free, 3).all()                            # the failure being guarded against
    assert box(kept, 3).all()
    np.testing.assert_array_equal(kept[~kept.interpolated].x.to_numpy(), free[~free.interpolated].x.to_numpy())


def test_smoothing_reduces_jitter_error():
    rng = np.random.default_rng(1)
    f = np.arange(150)
    t_s = f / FPS
    truth = np.column_stack([200 + 60 * t_s + 4 * np.sin(2 * np.pi * 1.5 * t_s), 200 + 30 * t_s])
    meas = truth + rng.normal(0, 1.5, truth.shape)
    t = tracks_from({1: (f, meas)})
    out = refine_tracks(t, FPS)
    rmse_raw = np.sqrt(((meas - truth) ** 2).sum(1).mean())
    rmse_sm = np.sqrt(((out[["x_smooth", "y_smooth"]].to_numpy() - truth) ** 2).sum(1).mean())
    assert rmse_sm < 0.6 * rmse_raw
    mot = smoothed_boxes(out)
    np.testing.assert_allclose(mot.x.to_numpy(), out.x_smooth.to_numpy())
    off = refine_tracks(t, FPS, smooth=False)
    np.testing.assert_array_equal(off.x_smooth.to_numpy(), meas[:, 0])


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_measurement_noise_is_estimated_from_immotile_tracks(sigma):
    rng = np.random.default_rng(2)
    f = np.arange(200)
    paths = {k: (f, np.array([50.0 * k, 100.0]) + rng.normal(0, sigma, (200, 2))) for k in range(1, 9)}
    est = estimate_meas_sigma(tracks_from(paths))
    assert est == pytest.approx(sigma, rel=0.2)


def test_params_are_validated():
    from spermtrack.errors import ParameterError

    with pytest.raises(ParameterError):
        RefineParams(max_gap_s=-1).validate()
    with pytest.raises(ParameterError):
        refine_tracks(tracks_from({1: (np.arange(3), np.zeros((3, 2)))}), 0.0)


def test_refine_params_name_the_field_on_construction():
    from spermtrack.errors import ParameterError

    with pytest.raises(ParameterError, match=r"accel_sigma_px_s2=0 is outside"):
        RefineParams(accel_sigma_px_s2=0)
    with pytest.raises(ParameterError, match=r"fps=50000 is outside"):
        refine_tracks(tracks_from({1: (np.arange(3), np.zeros((3, 2)))}), 50000)


def test_track_cli_takes_tracker_and_refine_parameters_from_a_config(tmp_path):
    """``spermtrack track --config``: the track section feeds the tracker, the refinement and
    whether to stitch; the sidecar records them."""
    import json

    from spermtrack.cli.main import main
    from spermtrack.io.mot import write_mot_detections
    from spermtrack.types import Detections

    f = np.arange(40)
    dets = {int(k): Detections.from_centers([[50 + 3.0 * k, 100.0]], 20.0) for k in f if not 18 <= k <= 20}
    det_path = tmp_path / "dets.txt"
    write_mot_detections(det_path, dets)
    out = tmp_path / "t.txt"
    assert main(["track", "--detections", str(det_path), "--out", str(out), "--fps", "50"]) == 0
    assert pd.read_csv(tmp_path / "t.csv").interpolated.sum() == 3
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"track": {"stitch": False, "gate_chi2": 20.0, "refine": {"max_interp_gap_s": 0.0}}}))
    assert main(["track", "--detections", str(det_path), "--out", str(out), "--fps", "50", "--config", str(cfg)]) == 0
    assert pd.read_csv(tmp_path / "t.csv").interpolated.sum() == 0
    meta = json.loads((tmp_path / "t.json").read_text())
    assert meta["stitch"] is False and meta["tracker_params"]["gate_chi2"] == 20.0
    assert meta["refine_params"]["max_interp_gap_s"] == 0.0


def test_swap_at_a_crossing_is_undone_from_the_paths_on_both_sides():
    # two heads cross at frame 30 on straight lines; the online ids swap there
    f = np.arange(60)
    a = np.column_stack([10 + 2.0 * f, 50 + 1.0 * (f - 30)])
    b = np.column_stack([10 + 2.0 * f, 50 - 1.0 * (f - 30)])
    swapped_a = np.where((f > 30)[:, None], b, a)
    swapped_b = np.where((f > 30)[:, None], a, b)
    out = resolve_crossings(tracks_from({1: (f, swapped_a), 2: (f, swapped_b)}), FPS)
    t1 = out[out["track_id"] == 1].sort_values("frame")
    # track 1 follows a's line again after the crossing
    assert np.allclose(t1[["x", "y"]].to_numpy()[45:], a[45:])


def test_crossing_without_a_swap_is_left_alone():
    f = np.arange(60)
    a = np.column_stack([10 + 2.0 * f, 50 + 1.0 * (f - 30)])
    b = np.column_stack([10 + 2.0 * f, 50 - 1.0 * (f - 30)])
    t = tracks_from({1: (f, a), 2: (f, b)})
    out = resolve_crossings(t, FPS)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), make_tracks(t).reset_index(drop=True))


def test_swap_between_two_close_immotile_heads_is_undone():
    # two immotile heads 5 px apart for the whole clip (one long meeting); ids swap at frame 50
    rng = np.random.default_rng(1)
    f = np.arange(100)
    a = np.array([100.0, 100.0]) + rng.normal(0, 1.0, (100, 2))
    b = np.array([105.0, 100.0]) + rng.normal(0, 1.0, (100, 2))
    sa = np.where((f > 50)[:, None], b, a)
    sb = np.where((f > 50)[:, None], a, b)
    out = resolve_crossings(tracks_from({1: (f, sa), 2: (f, sb)}), FPS)
    x1 = out[out["track_id"] == 1]["x"].to_numpy()
    assert abs(x1[:45].mean() - 100) < 1 and abs(x1[55:].mean() - 100) < 1


def _head_and_spot_exchanged(gap_px: float, spot_cls: int) -> pd.DataFrame:
    """A static head (class 0) and a static spot ``gap_px`` to its right (class ``spot_cls``),
    1 px jitter; the online ids exchange them after frame 50."""
    rng = np.random.default_rng(2)
    f = np.arange(100)
    head = np.column_stack([200 + rng.normal(0, 1, 100), 200 + rng.normal(0, 1, 100)])
    spot = np.column_stack([200 + gap_px + rng.normal(0, 1, 100), 200 + rng.normal(0, 1, 100)])
    late = f > 50
    t1, t2 = np.where(late[:, None], spot, head), np.where(late[:, None], head, spot)
    c1, c2 = np.where(late, spot_cls, 0), np.where(late, 0, spot_cls)
    return make_tracks(pd.concat([_cell(1, f, t1[:, 0], t1[:, 1], 0.9, cls=c1),
                                  _cell(2, f, t2[:, 0], t2[:, 1], 0.6, cls=c2)], ignore_index=True))


def test_a_head_exchanged_with_its_other_spot_gets_its_identity_back(monkeypatch):
    # 12 px apart: farther than a close meeting (0.37 x 22 px = 8 px), so only the classes call it
    t = _head_and_spot_exchanged(12.0, OTHER_CLS)
    out = resolve_crossings(t, FPS)
    one = out[out["track_id"] == 1]
    assert set(one["cls"]) == {0} and abs(one["x"].mean() - 200) < 1
    assert set(out[out["track_id"] == 2]["cls"]) == {OTHER_CLS}
    monkeypatch.setattr(refine_mod, "CROSS_CLASS_NATS", 0.0)
    pd.testing.assert_frame_equal(resolve_crossings(t, FPS), t)


def test_two_heads_that_do_not_come_close_are_not_exchanged_by_the_class_term():
    # the same geometry with two sperm-class cells: nothing says the exchange was wrong except
    # motion, and a meeting 12 px apart is not close enough for motion to decide
    t = _head_and_spot_exchanged(12.0, 0)
    pd.testing.assert_frame_equal(resolve_crossings(t, FPS), t)


def test_class_gains_measure_how_much_better_the_classes_join_when_exchanged():
    f = np.arange(20)
    a = (f < 10).astype(float)          # sperm, then other
    b = (f >= 10).astype(float)         # other, then sperm
    g = _class_gains(f, a, f, b, np.array([4, 9, 14]), 5)
    assert g[1] == pytest.approx(2.0)   # exchanging after frame 9 makes both tracks pure
    assert g[0] == pytest.approx(-2.0) and g[2] == pytest.approx(-2.0)  # each track is pure around there
    same = np.ones(20)
    assert np.allclose(_class_gains(f, same, f, same, np.array([4, 9, 14]), 5), 0.0)
    # where a track has no rows on one side (it starts or ends there) the classes say nothing:
    # a head entering at the border is classed other until it is whole
    late = np.arange(12, 20)
    assert _class_gains(f, a, late, np.ones(8), np.array([9, 14]), 5) == pytest.approx([0.0, -2.0])


def test_path_log_likelihood_matches_filterpy():
    """kalman.neg_log_likelihood (both axes, missing frames predicted through) equals the sum of
    filterpy's per-update log-likelihoods, less the constant ln 2 pi per measurement."""
    rng = np.random.default_rng(3)
    n, q, r, p0v = 50, 0.04, 2.0, 9.0
    t = np.arange(n)
    z = np.column_stack([5 + 1.5 * t + 0.03 * t ** 2, 40 - 0.5 * t]) + rng.normal(0, np.sqrt(r), (n, 2))
    z[[0, 1, 17, 18, 19, 33]] = np.nan            # starts late, has gaps
    want, n_upd = 0.0, 0
    for ax in range(2):
        kf = KalmanFilter(dim_x=2, dim_z=1)
        kf.F = np.array([[1.0, 1.0], [0.0, 1.0]])
        kf.H = np.array([[1.0, 0.0]])
        kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q)
        kf.R = np.array([[r]])
        kf.x = np.array([[z[2, ax]], [0.0]])
        kf.P = np.diag([r, p0v])
        for k in range(3, n):
            kf.predict()
            if not np.isnan(z[k, ax]):
                kf.update(z[k, ax])
                want -= kf.log_likelihood
                n_upd += 1
    got = kalman.neg_log_likelihood(z[None], q=q, r=r, p0_vel=p0v)[0]
    assert got == pytest.approx(want - 0.5 * n_upd * np.log(2 * np.pi), rel=1e-9)
    nll, chi2, count = kalman.neg_log_likelihood(z[None], q=q, r=r, p0_vel=p0v, details=True)
    assert nll[0] == got and 2 * count[0] == n_upd      # one count per 2-D point
    # NLL = 0.5 chi2 + ln S summed: chi2 is what is left after the ln S terms
    assert 0 < chi2[0] < 4 * n_upd                      # the model fits: about 1 per axis and point


@pytest.mark.parametrize("seed", range(4))
def test_swimmer_turning_beside_an_immotile_head_gets_its_identity_back(seed):
    """A head swimming 1.5 px/frame with a 10 Hz lateral beat passes 3 px from an immotile head
    and turns by 90 degrees there (2 px jitter, as at a meeting in VISEM video 11); the online
    ids swapped where they touched. Straight lines fitted on either side cannot tell the two
    pairings apart after such a turn (the earlier line-fit rule kept the swap on every seed);
    the paths' own motion can: an immotile head does not start swimming, a swimmer does not
    stop dead."""
    rng = np.random.default_rng(seed)
    f = np.arange(80)
    still = np.array([200.0, 100.0]) + rng.normal(0, 2.0, (80, 2))
    ang = np.where(f < 42, np.pi, 1.5 * np.pi)
    path = np.cumsum(1.5 * np.column_stack([np.cos(ang), np.sin(ang)]), axis=0)
    path += np.array([197.0, 103.0]) - path[42]
    beat = 1.5 * np.sin(2 * np.pi * 10 * f / FPS)[:, None] * np.column_stack([-np.sin(ang), np.cos(ang)])
    swim = path + beat + rng.normal(0, 2.0, (80, 2))
    sa = np.where((f > 42)[:, None], swim, still)
    sb = np.where((f > 42)[:, None], still, swim)
    out = resolve_crossings(tracks_from({1: (f, sa), 2: (f, sb)}), FPS)
    p1 = out[out["track_id"] == 1].sort_values("frame")[["x", "y"]].to_numpy()
    assert np.hypot(*(p1[:30].mean(0) - [200, 100])) < 2 and np.hypot(*(p1[-20:].mean(0) - [200, 100])) < 2


def test_a_long_coast_relink_is_cut_and_the_head_rejoined():
    """Track 1 follows a swimmer (4 px/frame) to frame 29, loses it, coasts 10 frames and then
    takes a debris dot 50 px off the path in its grown gate (no leap for ``split_jumps``: the
    step is within 3x the track's own speed over the gap); the swimmer went on as track 2 from
    frame 31. ``split_gaps`` cuts track 1 at the 10-frame gap, and the stitcher joins the
    swimmer's two parts (1-frame gap) instead; the dot is a track of its own."""
    rng = np.random.default_rng(7)
    f = np.arange(80)
    swim = np.column_stack([100 + 4.0 * f, 100.0 + 0.0 * f]) + rng.normal(0, 0.5, (80, 2))
    dot = np.array([250.0, 150.0]) + rng.normal(0, 0.5, (40, 2))
    t = tracks_from({1: (np.r_[f[:30], f[40:]], np.r_[swim[:30], dot]), 2: (f[31:], swim[31:])})
    cut, n = split_gaps(t, FPS, 0.14)
    assert n == 1 and cut["track_id"].nunique() == 3
    assert split_gaps(t, FPS, 0.3)[1] == 0                 # a 10-frame gap is 0.18 s at 50 fps
    out = refine_tracks(t, FPS, params=RefineParams(satellite_min_share=0.0))
    on_swimmer = out[(out.y - 100).abs() < 5]
    assert on_swimmer["track_id"].nunique() == 1 and on_swimmer["frame"].nunique() == 80
    assert out[(out.y - 150).abs() < 5]["track_id"].nunique() == 1
    off = refine_tracks(t, FPS, params=RefineParams(satellite_min_share=0.0, split_gap_s=0.0))
    assert off[(off.y - 100).abs() < 5]["track_id"].nunique() == 2


def test_stitch_tolerates_a_turning_head():
    # a head circling (radius 30 px, 3 px/frame) loses 4 frames: the straight-line extrapolation
    # misses by more than the zero-gap tolerance, but each end's path strays from its fitted
    # line by as much (the wobble term), so the fragments still join
    f = np.arange(60)
    ang = 3.0 * f / 30.0
    xy = np.column_stack([200 + 30 * np.cos(ang), 200 + 30 * np.sin(ang)])
    t = tracks_from({1: (f[:25], xy[:25]), 2: (f[29:], xy[29:])})
    assert stitch_tracklets(t, FPS)["track_id"].nunique() == 1


def _cell(tid, frames, x, y, conf, cls=0, size=22.0):
    n = len(frames)
    return pd.DataFrame({"track_id": tid, "frame": frames, "x": np.broadcast_to(x, n).astype(float),
                         "y": np.broadcast_to(y, n).astype(float), "w": size, "h": size,
                         "conf": conf, "cls": cls})


def test_a_track_riding_beside_a_stronger_head_becomes_other_and_crossing_cells_stay_sperm():
    f = np.arange(100)
    host_x = 100 + 2.0 * f
    rng = np.random.default_rng(0)
    t = make_tracks(pd.concat([
        _cell(1, f, host_x, 200, 0.9),                                    # a head swimming right
        _cell(2, f[10:90], host_x[10:90] + 7 + rng.normal(0, 1, 80), 203, 0.6),  # its halo spot
        _cell(3, f, 300, 100 + 2.0 * f, 0.8),                             # crosses cell 4 once
        _cell(4, f, 400 - 2.0 * f, 200, 0.7),                             # (they meet at frame 50)
        _cell(5, f, 600, 400, 0.5, cls=1),                                # a cluster, untouched
        _cell(6, f, 606, 400, 0.4),                                       # beside a cluster only
    ], ignore_index=True))
    out, marked = mark_satellites(t, radius_boxes=0.55, min_share=0.5)
    assert marked == [2]
    cls = out.groupby("track_id")["cls"].agg(lambda c: set(c))
    assert cls[2] == {OTHER_CLS} and cls[1] == cls[3] == cls[4] == cls[6] == {0} and cls[5] == {1}
    # positions and every other column untouched; the input table is not modified
    pd.testing.assert_frame_equal(out.drop(columns="cls"), t.drop(columns="cls"))
    assert (t["cls"] != OTHER_CLS).all()
    # the weaker of two equally confident twins is the shorter one; off when share or radius is 0
    twins = make_tracks(pd.concat([_cell(1, f, 50, 50, 0.8), _cell(2, f[:60], 55, 50, 0.8)], ignore_index=True))
    assert mark_satellites(twins)[1] == [2]
    assert mark_satellites(twins, min_share=0)[1] == [] and mark_satellites(twins, radius_boxes=0)[1] == []
    # a satellite farther than the radius (0.55 x 22 px = 12.1 px) is a neighbour, not a satellite
    apart = make_tracks(pd.concat([_cell(1, f, 50, 50, 0.9), _cell(2, f, 63, 50, 0.5)], ignore_index=True))
    assert mark_satellites(apart)[1] == []


def test_refine_marks_satellites_by_default_and_the_config_turns_it_off():
    f = np.arange(60)
    t = make_tracks(pd.concat([_cell(1, f, 100 + f, 100, 0.9), _cell(2, f, 106 + f, 102, 0.5)], ignore_index=True))
    on = refine_tracks(t, 50.0)
    assert set(on[on.track_id == 2]["cls"]) == {OTHER_CLS} and set(on[on.track_id == 1]["cls"]) == {0}
    assert on.attrs["satellite_tracks"] == [2]
    off = refine_tracks(t, 50.0, params=RefineParams(satellite_min_share=0.0))
    assert set(off["cls"]) == {0}


def test_a_track_that_leaps_onto_a_neighbour_is_cut_and_restitched_to_its_head():
    """An immotile head (track 1) loses its detection at frame 40 and the online track leaps
    14 px onto a debris dot that stays there; the head itself comes back as track 2 three frames
    later. Cut at the leap and restitched, the head is one track again and the dot another. A
    fast swimmer and a path in keyframe steps (nothing left behind) are never cut."""
    rng = np.random.default_rng(1)
    f = np.arange(100)
    head = _cell(1, f[:40], 200 + rng.normal(0, 0.3, 40), 100 + rng.normal(0, 0.3, 40), 0.9)
    dot = _cell(1, f[40:], 214 + rng.normal(0, 0.3, 60), 100 + rng.normal(0, 0.3, 60), 0.6)
    back = _cell(2, f[43:], 200 + rng.normal(0, 0.3, 57), 100 + rng.normal(0, 0.3, 57), 0.9)
    swimmer = _cell(3, f, 50 + 5.0 * f + rng.normal(0, 0.5, 100), 300, 0.9)  # 5 px/frame: never cut
    # a path in keyframe steps (1 px a frame, then an 8 px catch-up step) with nothing left behind
    steps = np.tile([1.0, 1.0, 1.0, 1.0, 8.0], 20)
    keyframed = _cell(4, f, 300 + np.cumsum(steps), 400, 0.9)
    t = make_tracks(pd.concat([head, dot, back, swimmer, keyframed], ignore_index=True))
    cut, n = split_jumps(t, FPS)
    assert n == 1 and cut["track_id"].nunique() == 5
    assert set(cut[cut.y == 400]["track_id"]) == {4}
    assert set(cut[cut.track_id == 3]["frame"]) == set(f)
    pieces = cut.groupby("track_id")["x"].agg(["min", "max"])
    assert (pieces["max"] - pieces["min"]).drop([3, 4]).max() < 3  # every stationary piece is one object
    out = refine_tracks(t, FPS, params=RefineParams(satellite_min_share=0.0))
    out = out[out.y < 200]  # the swimmer passes x = 200 at y = 300
    at_head = out[(out.x - 200).abs() < 3]
    assert at_head["track_id"].nunique() == 1 and len(at_head) == 100  # 97 measured + 3 filled
    assert out[(out.x - 214).abs() < 3]["track_id"].nunique() == 1
    off = refine_tracks(t, FPS, params=RefineParams(satellite_min_share=0.0, jump_min_boxes=0.0))
    off = off[off.y < 200]
    assert off[(off.x - 200).abs() < 3]["track_id"].nunique() == 2


def test_a_track_that_leaps_onto_a_head_whose_track_just_ended_hands_the_head_back():
    """A spot 14 px beside an immotile head has its own track (2). The head's track (1) loses it
    at frame 40 and the spot's track takes the head at frame 46 (its own spot fades). Nothing is
    left behind where the spot was, but the landing site was the head's: cut there (``landing_s``)
    and restitched, the head is one track and the spot another. Off, the head changes id."""
    rng = np.random.default_rng(4)
    f = np.arange(100)
    head = _cell(1, f[:41], 200 + rng.normal(0, 0.3, 41), 100 + rng.normal(0, 0.3, 41), 0.9)
    spot = _cell(2, f[:46], 214 + rng.normal(0, 0.3, 46), 100 + rng.normal(0, 0.3, 46), 0.6, cls=OTHER_CLS)
    taken = _cell(2, f[46:], 200 + rng.normal(0, 0.3, 54), 100 + rng.normal(0, 0.3, 54), 0.9)
    t = make_tracks(pd.concat([head, spot, taken], ignore_index=True))
    assert split_jumps(t, FPS, landing_s=0.0)[1] == 0      # rule (2) alone sees nothing left behind
    cut, n = split_jumps(t, FPS)
    assert n == 1 and cut["track_id"].nunique() == 3
    out = refine_tracks(t, FPS)
    at_head = out[(out.x - 200).abs() < 3]
    assert at_head["track_id"].nunique() == 1 and len(at_head) == 100
    assert set(out[(out.x - 214).abs() < 3]["track_id"]).isdisjoint(set(at_head["track_id"]))
    off = refine_tracks(t, FPS, params=RefineParams(jump_landing_s=0.0))
    assert off[(off.x - 200).abs() < 3]["track_id"].nunique() == 2


def test_the_sparse_stitch_assignment_finds_the_dense_optimum(monkeypatch):
    """Components too large for a dense cost matrix are solved sparsely: same number of pairs
    and same total cost as the dense Hungarian solution, on random pair graphs."""
    from spermtrack.tracker import refine as R

    rng = np.random.default_rng(0)
    for _ in range(30):
        n, m = rng.integers(5, 60, size=2)
        key = np.unique(rng.integers(0, n, 400) * 1000 + rng.integers(0, m, 400))[: rng.integers(1, n * m // 3 + 2)]
        i, j = key // 1000, key % 1000
        c = rng.uniform(0, 9, len(i))
        total = {}
        for cells in (10 ** 12, 0):
            monkeypatch.setattr(R, "_DENSE_ASSIGN_CELLS", cells)
            nxt = R._assign_pairs(i, j, c, int(max(n, m)))
            assert len(set(nxt.values())) == len(nxt)
            total[cells] = (len(nxt), sum(c[(i == a) & (j == b)][0] for a, b in nxt.items()))
        assert total[0][0] == total[10 ** 12][0] and total[0][1] == pytest.approx(total[10 ** 12][1])


@pytest.mark.parametrize("geometry", ["cross", "pass"])
def test_fragments_of_two_cells_that_meet_are_stitched_each_to_its_own_continuation(geometry):
    """Two cells meet (an X crossing, or two cells passing each other 4 px apart in opposite
    directions) while neither is detected for 8 frames: online, each leaves a fragment before
    and one after. Refine must join each before-fragment to the after-fragment of the SAME cell
    (truth known), fill the gap near the true path, and never join across cells."""
    f = np.arange(100)
    gap = (f >= 46) & (f < 54)
    if geometry == "cross":
        truth = {1: np.c_[100 + 2.0 * f, np.full(100, 200.0)], 2: np.c_[np.full(100, 200.0), 100 + 2.0 * f]}
    else:
        truth = {1: np.c_[100 + 2.0 * f, np.full(100, 200.0)], 2: np.c_[298 - 2.0 * f, np.full(100, 204.0)]}
    frags = {}
    for cell, xy in truth.items():
        frags[10 * cell] = (f[~gap & (f < 50)], xy[~gap & (f < 50)])
        frags[10 * cell + 1] = (f[~gap & (f >= 50)], xy[~gap & (f >= 50)])
    t = make_tracks(tracks_from(frags, size=22.0).assign(conf=0.9, cls=0))
    out = refine_tracks(t, FPS)
    assert out["track_id"].nunique() == 2
    for cell, xy in truth.items():
        tr = out[out["track_id"] == 10 * cell].sort_values("frame")
        assert list(tr["frame"]) == list(f)                       # one track, gap filled
        err = np.hypot(*(tr[["x_smooth", "y_smooth"]].to_numpy() - xy).T)
        assert err.max() < 2.0                                    # on its own cell throughout
        assert tr["interpolated"].sum() == gap.sum()
