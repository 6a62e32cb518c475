"""Field drift from the still group (kinematics/drift.py): a known flow is recovered, a field
without flow or with only swimmers is left untouched, and the compiled mean shift agrees with a
plain numpy one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spermtrack.kinematics.drift import _still_groups, estimate_drift

FPS, SCALE = 50.0, 0.5


def _field(drift_um_s=(3.0, -2.0), n_still=30, n_swim=10, n=200, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FPS
    rows = []
    for i in range(n_still + n_swim):
        x0, y0 = rng.uniform(50, 550), rng.uniform(50, 400)
        if i < n_still:
            vx, vy = 0.0, 0.0
        else:
            a = rng.uniform(0, 2 * np.pi)
            vx, vy = 40 * np.cos(a), 40 * np.sin(a)
        x = x0 + ((vx + drift_um_s[0]) * t) / SCALE + rng.normal(0, 0.2, n)
        y = y0 + ((vy + drift_um_s[1]) * t) / SCALE + rng.normal(0, 0.2, n)
        rows.append(pd.DataFrame({"track_id": i, "frame": np.arange(n), "x": x, "y": y}))
    return pd.concat(rows, ignore_index=True)


def test_known_flow_is_recovered():
    f = _field()
    dx, dy, est = estimate_drift(f.track_id.to_numpy(), f.frame.to_numpy(), f.x.to_numpy(), f.y.to_numpy(),
                                 FPS, SCALE)
    assert est.applied
    assert est.mean_vx_um_s == pytest.approx(3.0, abs=0.2) and est.mean_vy_um_s == pytest.approx(-2.0, abs=0.2)
    # cumulative drift after 199 frames: 3 um/s * 3.98 s / 0.5 um/px
    assert dx[-1] == pytest.approx(3.0 * 199 / FPS / SCALE, rel=0.05)


def test_no_flow_and_no_still_group_leave_the_field_alone():
    f = _field(drift_um_s=(0.0, 0.0))
    dx, dy, est = estimate_drift(f.track_id.to_numpy(), f.frame.to_numpy(), f.x.to_numpy(), f.y.to_numpy(),
                                 FPS, SCALE)
    assert not est.applied and not dx.any() and not dy.any()
    swim = _field(n_still=0, n_swim=12)
    _, _, est = estimate_drift(swim.track_id.to_numpy(), swim.frame.to_numpy(), swim.x.to_numpy(),
                               swim.y.to_numpy(), FPS, SCALE)
    assert not est.applied


def _reference(f_arr, v, radius, min_objects, n_frames, shift):
    out = np.full((n_frames, 2), np.nan)
    for fr in np.unique(f_arr):
        g = v[f_arr == fr]
        if len(g) < min_objects:
            continue
        c = np.median(g, axis=0)
        for _ in range(10):
            near = ((g - c) ** 2).sum(axis=1) <= radius * radius
            if near.sum() < min_objects:
                c = None
                break
            new = g[near].mean(axis=0)
            if np.allclose(new, c, atol=1e-6 * max(radius, 1e-12)):
                break
            c = new
        if c is not None and 0 <= fr + shift < n_frames:
            out[fr + shift] = c
    return out


def test_compiled_mean_shift_equals_numpy():
    rng = np.random.default_rng(4)
    f_arr = np.sort(rng.integers(0, 60, 3000))
    v = np.where(rng.random((3000, 1)) < 0.6, rng.normal([0.1, -0.05], 0.01, (3000, 2)),
                 rng.normal(0, 1.0, (3000, 2)))
    got = _still_groups(f_arr.astype(np.int64), v[:, 0].copy(), v[:, 1].copy(), 0.05, 5, 70, 5)
    np.testing.assert_allclose(got, _reference(f_arr, v, 0.05, 5, 70, 5), rtol=0, atol=1e-12, equal_nan=True)
