"""Grade boundaries of every preset, circling and still cells under every preset."""

import numpy as np
import pandas as pd
import pytest

from spermtrack.kinematics import GRADES, PRESETS, compute_track_metrics, grade_tracks

BASE = dict(duration_s=2.0, vcl_um_s=80.0, vsl_um_s=40.0, vap_um_s=60.0, lin_pct=50.0, str_pct=66.0,
            alh_mean_um=3.0, progression_um_s=40.0, motion_um_s=40.0, progressive_time_pct=100.0,
            non_progressive_time_pct=0.0, immotile_time_pct=0.0)


def _grade(preset, **changes):
    m = {k: np.array([v], float) for k, v in {**BASE, **changes}.items()}
    codes, hyper = grade_tracks(m, preset)
    return GRADES[codes[0]], bool(hyper[0])


@pytest.mark.parametrize("prog,expected", [
    (25.0, "rapid_progressive"), (24.999, "slow_progressive"), (5.0, "slow_progressive"),
    (4.999, "non_progressive"), (np.nan, "non_progressive")])
def test_who2021_literal_progression_boundaries(prog, expected):
    assert _grade("who2021-literal", progression_um_s=prog)[0] == expected


def test_who2021_literal_motion_boundary_and_duration():
    assert _grade("who2021-literal", progression_um_s=1.0, motion_um_s=4.0)[0] == "non_progressive"
    assert _grade("who2021-literal", progression_um_s=1.0, motion_um_s=3.999)[0] == "immotile"
    assert _grade("who2021-literal", duration_s=0.5)[0] == "rapid_progressive"
    assert _grade("who2021-literal", duration_s=0.4999)[0] == "not_graded"


@pytest.mark.parametrize("p,n,i,prog,expected", [
    (60, 30, 10, 25.0, "rapid_progressive"), (60, 30, 10, 24.999, "slow_progressive"),
    (40, 50, 10, 40.0, "non_progressive"), (30, 30, 40, 40.0, "immotile"),
    (50, 50, 0, 40.0, "rapid_progressive"), (0, 50, 50, 1.0, "non_progressive")])
def test_who2021_grade_is_the_grade_of_most_time(p, n, i, prog, expected):
    got = _grade("who2021", progressive_time_pct=p, non_progressive_time_pct=n, immotile_time_pct=i,
                 progression_um_s=prog)
    assert got[0] == expected  # ties go to the more motile grade


def test_who2021_needs_the_time_columns():
    m = {k: np.array([v], float) for k, v in BASE.items() if not k.endswith("_time_pct")}
    with pytest.raises(Exception, match="progressive_time_pct"):
        grade_tracks(m, "who2021")


def _look(speed_um_s, straight_frac, fps=50.0, seconds=3.0, scale=0.5):
    """A zig-zag track: net speed ``speed * straight_frac`` along x, the rest sideways at 0.3 s."""
    f = np.arange(int(seconds * fps))
    t = f / fps
    tri = np.abs(((t / 0.3) % 2) - 1)  # 0..1 triangle wave with a 0.6 s period
    x = speed_um_s * straight_frac * t
    y = tri * 0.3 * speed_um_s * np.sqrt(max(0.0, 1 - straight_frac ** 2))
    return pd.DataFrame({"track_id": 1, "frame": f, "x": x / scale, "y": y / scale})


def test_who2021_rule_on_tracks():
    r = PRESETS["who2021"].windows
    fast_straight = compute_track_metrics(_look(40, 1.0), 50, 0.5).iloc[0]
    assert fast_straight["progressive_time_pct"] == 100 and fast_straight["grade"] == "rapid_progressive"
    slow_straight = compute_track_metrics(_look(r.progressive_um_s * 0.8, 1.0), 50, 0.5).iloc[0]
    assert slow_straight["grade"] == "non_progressive"  # moving, but below what technicians call progressive
    still = compute_track_metrics(_look(0.5 * r.still_um_s, 1.0), 50, 0.5).iloc[0]
    assert still["immotile_time_pct"] == 100 and still["grade"] == "immotile"
    assert np.isnan(still["alh_mean_um"]) and np.isnan(still["bcf_hz"])  # empty, not zero
    literal = compute_track_metrics(_look(r.progressive_um_s * 0.8, 1.0), 50, 0.5, preset="who2021-literal")
    assert literal.iloc[0]["grade"] == "slow_progressive"


@pytest.mark.parametrize("vap,str_,expected", [
    (25.0, 80.0, "rapid_progressive"), (24.999, 80.0, "non_progressive"),
    (25.0, 79.999, "non_progressive"), (4.999, 50.0, "immotile"), (5.0, 50.0, "non_progressive")])
def test_hamilton_thorne_boundaries(vap, str_, expected):
    # static needs VAP < 5 and VSL < 11
    assert _grade("hamilton-thorne", vap_um_s=vap, str_pct=str_, vsl_um_s=10.999)[0] == expected


def test_hamilton_thorne_static_needs_low_vsl():
    assert _grade("hamilton-thorne", vap_um_s=4.0, vsl_um_s=11.0, str_pct=50)[0] == "non_progressive"


@pytest.mark.parametrize("vap,str_,expected", [
    (25.001, 75.001, "rapid_progressive"), (25.0, 90.0, "non_progressive"), (30.0, 75.0, "non_progressive"),
    (5.0, 50.0, "immotile"), (5.001, 50.0, "non_progressive")])
def test_casa_gui_boundaries(vap, str_, expected):
    assert _grade("casa-gui", vap_um_s=vap, str_pct=str_)[0] == expected


@pytest.mark.parametrize("preset,strict", [("who2021", False), ("who2021-literal", False), ("hamilton-thorne", False),
                                           ("casa-gui", True)])
def test_hyperactivation_boundaries(preset, strict):
    edge = dict(vcl_um_s=150.0, lin_pct=50.0, alh_mean_um=7.0)
    assert _grade(preset, **edge)[1] is (not strict)
    assert _grade(preset, vcl_um_s=150.001, lin_pct=50.0, alh_mean_um=7.001)[1] is True
    assert _grade(preset, vcl_um_s=200, lin_pct=50.001, alh_mean_um=9)[1] is False
    assert _grade(preset, vcl_um_s=200, lin_pct=20, alh_mean_um=9, motion_um_s=0.0, progression_um_s=1.0,
                  vap_um_s=1.0, vsl_um_s=1.0, progressive_time_pct=0.0, immotile_time_pct=100.0)[1] is False  # immotile cells are never hyperactivated


def _noisy(f, x, y, rng, sigma):
    return x + rng.normal(0, sigma, len(f)), y + rng.normal(0, sigma, len(f))


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("sigma", [0.0, 0.2])
def test_tight_circle_is_non_progressive(preset, sigma):
    fps, r, v = 50.0, 5.0, 30.0
    rng = np.random.default_rng(11)
    rows = []
    for tid in range(10):
        f = np.arange(int(rng.integers(100, 400)))
        th = rng.uniform(0, 6.3) + v / r * f / fps
        x, y = _noisy(f, 200 + r * np.cos(th), 100 + r * np.sin(th), rng, sigma)
        rows.append(pd.DataFrame({"track_id": tid, "frame": f, "x": x, "y": y}))
    m = compute_track_metrics(pd.concat(rows), fps, 1.0, preset=preset)
    assert (m["grade"] == "non_progressive").all(), m[["vap_um_s", "str_pct", "progression_um_s", "grade"]]


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("scale", [0.5, 0.7])
def test_still_cell_with_noise_is_immotile(preset, scale):
    # 0.2 um localisation noise plus slow Brownian drift (D = 0.1 um^2/s) at 50 fps
    fps, sigma, d = 50.0, 0.2, 0.1
    rng = np.random.default_rng(5)
    rows = []
    for tid in range(40):
        n = int(rng.integers(30, 500))
        drift = np.cumsum(rng.normal(0, np.sqrt(2 * d / fps), (n, 2)), axis=0)
        xy = (drift + rng.normal(0, sigma, (n, 2))) / scale + 300
        rows.append(pd.DataFrame({"track_id": tid, "frame": np.arange(n), "x": xy[:, 0], "y": xy[:, 1]}))
    m = compute_track_metrics(pd.concat(rows), fps, scale, preset=preset)
    assert m["vcl_um_s"].median() == pytest.approx(0.2 * np.sqrt(np.pi) * fps, rel=0.15)  # ~17.7 um/s
    assert (m["grade"] == "immotile").all(), m[["vcl_um_s", "vap_um_s", "grade"]]
