"""Sample summary: Wilson intervals, the two aggregation modes, the scale estimate, real video 24."""

import numpy as np
import pandas as pd
import pytest

from conftest import shared_file
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.kinematics import compute_track_metrics, estimate_um_per_px, summarize_motility, wilson_interval


@pytest.mark.parametrize("k,n,lo,hi", [
    # Newcombe (1998), Stat Med 17:857, Table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)])
def test_wilson_matches_published_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def _table(grades, first, last, fps=50.0):
    n = len(grades)
    return pd.DataFrame({"grade": pd.Categorical(grades), "hyperactivated": np.zeros(n, bool),
                         "first_frame": first, "last_frame": last}).assign(
        duration_s=lambda d: (d.last_frame - d.first_frame) / fps)


def test_track_mode_counts_each_cell_once():
    grades = ["rapid_progressive"] * 3 + ["slow_progressive"] * 2 + ["non_progressive"] * 1 + \
             ["immotile"] * 4 + ["not_graded"] * 5
    s = summarize_motility(_table(grades, np.zeros(15, int), np.full(15, 100)))
    assert (s.n_tracks, s.n_graded, s.n_not_graded) == (15, 10, 5)
    assert s.pct("rapid_progressive") == pytest.approx(30) and s.pct("immotile") == pytest.approx(40)
    assert s.pct("progressive") == pytest.approx(50) and s.pct("total_motility") == pytest.approx(60)
    row = s.to_frame().set_index("quantity").loc["progressive"]
    assert (row.ci95_low_pct, row.ci95_high_pct) == pytest.approx(tuple(100 * v for v in wilson_interval(5, 10)))
    assert row.who6_lrl_pct == 30 and row.who6_status == "inconclusive"
    assert not s.meets_who_count


def test_window_mode_weighs_cells_by_time_in_view():
    # one immotile cell in view for 10 s; nine fast cells each crossing the field in its own second
    fps = 50
    first = [0] + [50 * k for k in range(1, 10)]
    last = [499] + [50 * k + 49 for k in range(1, 10)]
    t = _table(["immotile"] + ["rapid_progressive"] * 9, first, last, fps)
    by_track = summarize_motility(t)
    by_window = summarize_motility(t, aggregate="window", window_s=1.0, fps=fps)
    assert by_track.pct("rapid_progressive") == pytest.approx(90)
    # windows 1..9 hold (immotile, fast): 50 %; window 0 holds the immotile cell alone: 0 %
    assert by_window.pct("rapid_progressive") == pytest.approx(100 * 9 * 0.5 / 10)
    assert by_window.n_windows == 10 and by_window.mean_cells_per_window == pytest.approx(1.9)
    assert by_window.n_effective < by_track.n_graded  # the immotile cell is counted once, not 10 times


def test_who_status_above_and_below():
    many = _table(["rapid_progressive"] * 150 + ["immotile"] * 50, np.zeros(200, int), np.full(200, 99))
    s = summarize_motility(many).to_frame().set_index("quantity")
    assert s.loc["total_motility", "who6_status"] == "above" and s.loc["progressive", "who5_status"] == "above"
    few = _table(["rapid_progressive"] * 10 + ["immotile"] * 190, np.zeros(200, int), np.full(200, 99))
    assert summarize_motility(few).to_frame().set_index("quantity").loc["progressive", "who6_status"] == "below"


def test_bad_aggregate_is_refused():
    with pytest.raises(ParameterError):
        summarize_motility(_table(["immotile"], [0], [10]), aggregate="field")


def test_scale_estimate_from_heads():
    rng = np.random.default_rng(0)
    n = 500
    tr = pd.DataFrame({"track_id": 1, "frame": np.arange(n), "x": 1.0, "y": 1.0,
                       "w": rng.normal(5, 0.3, n), "h": rng.normal(9, 0.3, n), "cls": 0})
    tr.loc[:20, ["w", "h"]] = 80.0  # a few cluster boxes must not move the estimate
    tr.loc[:20, "cls"] = 1
    est = estimate_um_per_px(tr)
    assert est.um_per_px == pytest.approx(0.5, rel=0.03) and est.source.startswith("estimated")
    with pytest.raises(InputFileError):
        estimate_um_per_px(tr.drop(columns=["w", "h"]))


@pytest.mark.parametrize("scale", [0.5, 0.7])
def test_real_video24(scale):
    from spermtrack.io.mot import read_mot

    tr = read_mot(shared_file("data", "visem", "video24_gt_mot.txt"))
    m_all = compute_track_metrics(tr, 50.0, scale)
    # ids 63-66 are the static cluster boxes: whatever the scale, they do not move
    assert (m_all.set_index("track_id").loc[[63, 64, 65, 66], "grade"] == "immotile").all()
    m = compute_track_metrics(tr[~tr.track_id.isin([63, 64, 65, 66])], 50.0, scale)
    assert len(m) == 107
    for agg in ("track", "window"):
        s = summarize_motility(m, aggregate=agg)
        parts = sum(s.pct(q) for q in ("rapid_progressive", "slow_progressive", "non_progressive", "immotile"))
        assert parts == pytest.approx(100)
        # the lab found 40 % immotile by eye; a grading that called (nearly) all or none immotile is broken
        assert 25 <= s.pct("immotile") <= 90
