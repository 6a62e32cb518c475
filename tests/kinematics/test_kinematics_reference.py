"""The numba engine equals the plain numpy reference on random tracks (hypothesis)."""

import os

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinematics_reference import reference_metrics, reference_time_fractions
from spermtrack.kinematics import compute_track_metrics
from spermtrack.kinematics.grading import TIME_COLUMNS, WHO2021_WINDOWS

COMPARED = ("first_frame", "last_frame", "n_points", "duration_s", "vcl_um_s", "vsl_um_s", "vap_um_s",
            "lin_pct", "str_pct", "wob_pct", "alh_mean_um", "alh_max_um", "bcf_hz", "mad_deg",
            "dnc_um2_s", "progression_um_s", "motion_um_s")


@st.composite
def track_tables(draw):
    n_tracks = draw(st.integers(1, 6))
    rows = []
    for tid in draw(st.lists(st.integers(0, 10_000), min_size=n_tracks, max_size=n_tracks, unique=True)):
        n = draw(st.integers(1, 140))
        gaps = draw(st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 7]), min_size=n, max_size=n))
        start = draw(st.integers(0, 500))
        frames = start + np.cumsum(gaps) - gaps[0]
        kind = draw(st.sampled_from(["walk", "still", "swim", "integer"]))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        if kind == "walk":
            x, y = 300 + np.cumsum(rng.normal(0, 2, n)), 200 + np.cumsum(rng.normal(0, 2, n))
        elif kind == "still":
            x, y = np.full(n, 123.25), np.full(n, 45.5)
        elif kind == "swim":
            t = frames / 50.0
            x = 50 + 60 * t + 3 * np.sin(2 * np.pi * 9 * t) + rng.normal(0, 0.3, n)
            y = 80 + 20 * t + 3 * np.cos(2 * np.pi * 9 * t)
        else:  # integer pixel boxes: many zero steps and exactly collinear points
            x = 100 + np.cumsum(rng.integers(-1, 2, n)).astype(float)
            y = 100 + np.cumsum(rng.integers(0, 2, n)).astype(float)
        rows.append(pd.DataFrame({"track_id": tid, "frame": frames, "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


@settings(max_examples=int(os.environ.get("KIN_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tr=track_tables(), fps=st.sampled_from([30.0, 45.0, 50.0, 60.0]),
       scale=st.sampled_from([0.25, 0.5, 0.7]), window=st.sampled_from([None, 3, 4, 7]),
       shuffle_seed=st.integers(0, 1000))
def test_engine_equals_numpy_reference(tr, fps, scale, window, shuffle_seed):
    shuffled = tr.sample(frac=1, random_state=shuffle_seed)
    got = compute_track_metrics(shuffled, fps, scale, window=window, diagnostics=True, drift="none",
                                min_duration_s=0.0)
    w = got.attrs["window_points"]
    ref = reference_metrics(tr, fps, scale, w)
    assert list(got["track_id"]) == list(ref["track_id"])
    still = (got["grade"] == "immotile").to_numpy()
    for c in COMPARED:
        want = ref[c].to_numpy(float)
        if c in ("alh_mean_um", "alh_max_um", "bcf_hz", "dnc_um2_s"):
            want = np.where(still, np.nan, want)  # left empty for immotile cells
        np.testing.assert_allclose(got[c].to_numpy(float), want, rtol=1e-9, atol=1e-9, err_msg=c)
    r = WHO2021_WINDOWS
    frac = reference_time_fractions(tr, fps, scale, r.window_s, r.n_steps, r.progressive_um_s,
                                    r.straightness_min, r.still_um_s)
    for c in TIME_COLUMNS:
        np.testing.assert_allclose(got[c].to_numpy(float), frac[c].to_numpy(float), rtol=1e-9, atol=1e-7,
                                   err_msg=c)
