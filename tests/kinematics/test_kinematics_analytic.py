"""CASA metrics on tracks whose answers are known in closed form."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.kinematics import METRIC_COLUMNS, compute_track_metrics, default_window


def _tracks(*parts):
    return pd.concat([pd.DataFrame({"track_id": tid, "frame": f, "x": x, "y": y}) for tid, f, x, y in parts],
                     ignore_index=True)


def test_columns_are_exactly_the_documented_ones():
    f = np.arange(60)
    m = compute_track_metrics(_tracks((4, f, 1.0 * f, 0 * f)), 50, 0.5)
    assert tuple(m.columns) == METRIC_COLUMNS
    assert list(m["grade"].cat.categories) == ["rapid_progressive", "slow_progressive",
                                               "non_progressive", "immotile", "not_graded"]


@pytest.mark.parametrize("fps,expected", [(25, 3), (30, 3), (42, 5), (45, 5), (50, 5), (60, 5), (66, 7), (100, 9)])
def test_default_window(fps, expected):
    assert default_window(fps) == expected


def test_straight_line_is_exact():
    fps, s = 50.0, 0.5
    f = np.arange(300)
    vx, vy = 1.2, -0.5  # px per frame
    m = compute_track_metrics(_tracks((1, f, 100 + vx * f, 200 + vy * f)), fps, s).iloc[0]
    v = math.hypot(vx, vy) * s * fps
    for c in ("vcl_um_s", "vsl_um_s", "vap_um_s", "progression_um_s"):
        assert m[c] == pytest.approx(v, rel=1e-9)
    for c in ("lin_pct", "str_pct", "wob_pct"):
        assert m[c] == pytest.approx(100, rel=1e-9)
    assert m["alh_max_um"] == pytest.approx(0, abs=1e-9)
    assert m["bcf_hz"] == 0 and m["mad_deg"] == pytest.approx(0, abs=1e-6)
    assert m["duration_s"] == pytest.approx(299 / fps, rel=1e-12)
    assert (m["first_frame"], m["last_frame"], m["n_points"]) == (0, 299, 300)
    assert m["grade"] == "rapid_progressive"


def test_gaps_are_real_time():
    # the same straight swimmer with 40 % of its frames missing: speeds do not change
    rng = np.random.default_rng(1)
    f = np.sort(rng.choice(np.arange(400), 240, replace=False))
    f[0], f[-1] = 0, 399
    m = compute_track_metrics(_tracks((1, f, 2.0 * f, 0.5 * f)), 50, 0.5).iloc[0]
    v = math.hypot(2.0, 0.5) * 0.5 * 50
    for c in ("vcl_um_s", "vsl_um_s", "vap_um_s", "progression_um_s"):
        assert m[c] == pytest.approx(v, rel=1e-9)
    assert m["duration_s"] == pytest.approx(399 / 50)
    assert m["n_points"] == 240


def test_sinusoid_alh_bcf_vap_vcl():
    # 100 samples per beat and a window of one beat: the average path is the straight axis
    v, amp, f_hz = 60.0, 2.0, 12.0
    fps = f_hz * 100
    n = int(fps * 3) + 1
    t = np.arange(n) / fps
    x, y = v * t, amp * np.sin(2 * np.pi * f_hz * t)
    m = compute_track_metrics(_tracks((1, np.arange(n), x, y)), fps, 1.0, window=100).iloc[0]
    k = 2 * np.pi * f_hz * amp / v
    vcl_closed = v / (2 * np.pi) * quad(lambda u: math.sqrt(1 + k * k * math.cos(u) ** 2), 0, 2 * np.pi)[0]
    assert vcl_closed == pytest.approx(117.1, abs=0.05)  # the doc's worked value
    assert m["vcl_um_s"] == pytest.approx(vcl_closed, rel=3e-4)  # chords vs arc at 1200 fps
    polyline = np.hypot(np.diff(x), np.diff(y)).sum() / t[-1]
    assert m["vcl_um_s"] == pytest.approx(polyline, rel=1e-9)
    assert m["vap_um_s"] == pytest.approx(v, rel=1e-9)
    assert m["alh_max_um"] == pytest.approx(2 * amp, rel=1e-9)
    assert m["alh_mean_um"] == pytest.approx(2 * amp, rel=1e-9)
    q_span = (n - 100) / fps
    assert abs(m["bcf_hz"] - 2 * f_hz) <= 2.0 / q_span  # counts of crossings miss at most the edges
    assert m["dnc_um2_s"] == pytest.approx(m["vcl_um_s"] * m["alh_mean_um"])


def test_sinusoid_at_video_rate_is_close():
    # the doc's cell (v 60, A 2, f 12 Hz) at 50 fps, default 5-point window: sampled, not exact
    fps = 50.0
    t = np.arange(250) / fps
    m = compute_track_metrics(_tracks((1, np.arange(250), 60 * t, 2 * np.sin(2 * np.pi * 12 * t))), fps, 1.0).iloc[0]
    assert m["bcf_hz"] == pytest.approx(24, abs=1.0)
    assert m["vap_um_s"] == pytest.approx(60, rel=0.05)
    assert 3.0 <= m["alh_mean_um"] <= 5.0


def test_circle_vcl_mad_progression():
    fps, r, v = 50.0, 5.0, 30.0
    n = 300
    th = v / r / fps * np.arange(n)
    m = compute_track_metrics(_tracks((1, np.arange(n), r * np.cos(th), r * np.sin(th))), fps, 1.0).iloc[0]
    dth = v / r / fps
    assert m["vcl_um_s"] == pytest.approx(2 * r * math.sin(dth / 2) * fps, rel=1e-9)
    assert m["mad_deg"] == pytest.approx(math.degrees(dth), rel=1e-9)
    # net distance over 1 s on the circle: chord of 6 rad
    assert m["progression_um_s"] == pytest.approx(2 * r * abs(math.sin(v / r / 2)), rel=1e-6)
    assert m["grade"] == "non_progressive"


def test_one_and_two_point_tracks():
    m = compute_track_metrics(_tracks((1, [5], [1.0], [1.0]), (2, [3, 4], [0.0, 3.0], [0.0, 4.0])), 50, 1.0)
    one, two = m.iloc[0], m.iloc[1]
    assert one["n_points"] == 1 and one["duration_s"] == 0 and np.isnan(one["vcl_um_s"])
    assert one["grade"] == "not_graded" and not one["hyperactivated"]
    assert two["vcl_um_s"] == pytest.approx(250.0) and two["vsl_um_s"] == pytest.approx(250.0)
    assert np.isnan(two["vap_um_s"]) and np.isnan(two["mad_deg"]) and two["grade"] == "not_graded"


def test_shuffled_rows_and_extra_columns_give_the_same_table():
    rng = np.random.default_rng(3)
    parts = [(tid, np.arange(80), np.cumsum(rng.normal(0, 1, 80)), np.cumsum(rng.normal(0, 1, 80)))
             for tid in (7, 2, 9)]
    tr = _tracks(*parts)
    tr["conf"] = 0.9
    a = compute_track_metrics(tr, 50, 0.5)
    b = compute_track_metrics(tr.sample(frac=1, random_state=0), 50, 0.5)
    assert list(a["track_id"]) == [2, 7, 9]
    pd.testing.assert_frame_equal(a, b)


def test_interpolated_rows_are_dropped_by_default():
    f = np.arange(100)
    tr = _tracks((1, f, 1.0 * f, 0.0 * f))
    tr["interpolated"] = False
    tr.loc[10:20, "interpolated"] = True
    tr.loc[10:20, "x"] = 1e4  # would wreck every speed if used
    m = compute_track_metrics(tr, 50, 1.0).iloc[0]
    assert m["n_points"] == 89 and m["vcl_um_s"] == pytest.approx(50.0)
    kept = compute_track_metrics(tr, 50, 1.0, drop_interpolated=False).iloc[0]
    assert kept["n_points"] == 100 and kept["vcl_um_s"] > 1000


def test_nan_and_duplicates_are_named():
    f = np.arange(10.0)
    bad = _tracks((3, f, f, f), (8, f, np.where(f == 4, np.nan, f), f))
    with pytest.raises(InputFileError, match=r"track 8 has a NaN or infinite position at frame 4"):
        compute_track_metrics(bad, 50, 1.0)
    dup = _tracks((3, [0, 1, 1, 2], [0, 1, 2, 3], [0, 0, 0, 0]))
    with pytest.raises(InputFileError, match=r"track 3 has frame 1 twice"):
        compute_track_metrics(dup.sample(frac=1, random_state=1), 50, 1.0)
    with pytest.raises(InputFileError, match="missing column"):
        compute_track_metrics(dup.drop(columns="y"), 50, 1.0)


def test_parameters_are_checked():
    tr = _tracks((1, np.arange(10), np.arange(10.0), np.zeros(10)))
    for kw in ({"fps": 0, "um_per_px": 1}, {"fps": 50, "um_per_px": -1}):
        with pytest.raises(ParameterError):
            compute_track_metrics(tr, **kw)
    with pytest.raises(ParameterError, match="window"):
        compute_track_metrics(tr, 50, 1.0, window=2)
    with pytest.raises(ParameterError, match="preset"):
        compute_track_metrics(tr, 50, 1.0, preset="nope")


def test_import_does_not_load_torch():
    code = ("import sys, spermtrack.kinematics, spermtrack.cli.kinematics_cmd; "
            "bad = [m for m in ('torch', 'ultralytics', 'cv2') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
