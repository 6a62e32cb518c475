"""Plain numpy reference of the CASA definitions (one Python call per track).

Written straight from KINEMATICS.md and docs/KINEMATICS_CONVENTIONS.md, independently of the
numba kernels: the tests check that the kernels equal it, and benchmarks/kinematics.py uses it as
the "straightforward per-track numpy" baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

NAN = float("nan")
SIDE_EPS_UM = 1e-9


def reference_track(frame: np.ndarray, x: np.ndarray, y: np.ndarray, fps: float, w: int,
                    prog_lag: int, motion_lag: int) -> dict:
    """Metrics of one track (``x, y`` in um, frames strictly increasing)."""
    n = len(frame)
    t = frame.astype(np.float64)  # frames; divided by fps at the end
    r = dict(duration_s=(t[-1] - t[0]) / fps if n else NAN, vcl=NAN, vsl=NAN, vap=NAN, alh_mean=NAN,
             alh_max=NAN, bcf=NAN, mad=NAN, progression=NAN, motion=NAN)
    if n < 2:
        return r
    span = t[-1] - t[0]
    p = np.column_stack([x, y])
    steps = np.diff(p, axis=0)
    d2 = (steps ** 2).sum(axis=1)
    r["vcl"] = np.sqrt(d2).sum() / span * fps
    net = np.hypot(*(p[-1] - p[0]))
    r["vsl"] = net / span * fps
    nz = steps[d2 > 0]
    if len(nz) >= 2:
        a, b = nz[:-1], nz[1:]
        cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        dot = (a * b).sum(axis=1)
        r["mad"] = np.degrees(np.arctan2(np.abs(cross), dot).mean())

    ti = None
    if n - w + 1 >= 2:
        qx = sliding_window_view(x, w).sum(axis=1) / w
        qy = sliding_window_view(y, w).sum(axis=1) / w
        qt = sliding_window_view(t, w).sum(axis=1) / w
        q_span = qt[-1] - qt[0]
        r["vap"] = np.hypot(np.diff(qx), np.diff(qy)).sum() / q_span * fps
        inside = (t >= qt[0]) & (t <= qt[-1])
        ti = t[inside] if inside.any() else None  # gaps can leave no raw point inside
    if ti is not None:
        k = np.clip(np.searchsorted(qt, ti, side="right") - 1, 0, len(qt) - 2)
        u = (ti - qt[k]) / (qt[k + 1] - qt[k])
        tx, ty = qx[k + 1] - qx[k], qy[k + 1] - qy[k]
        rx = x[inside] - (qx[k] + u * tx)
        ry = y[inside] - (qy[k] + u * ty)
        riser = np.sqrt(rx * rx + ry * ry)
        tl = np.sqrt(tx * tx + ty * ty)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(tl > 0, (tx * ry - ty * rx) / tl, 0.0)
        side = np.where(c > SIDE_EPS_UM, 1, np.where(c < -SIDE_EPS_UM, -1, 0))
        nzi = np.flatnonzero(side)
        change = nzi[1:][side[nzi[1:]] != side[nzi[:-1]]]  # indices where a new half-beat starts
        r["bcf"] = len(change) / q_span * fps
        r["alh_max"] = 2 * riser.max()
        if len(change) >= 2:
            beats = [riser[s:e].max() for s, e in zip(change[:-1], change[1:])]
            r["alh_mean"] = 2 * float(np.mean(beats))
        else:
            r["alh_mean"] = r["alh_max"]

    vs = []
    for i in range(n):
        if t[i] + prog_lag > t[-1]:
            break
        j = np.searchsorted(t, t[i] + prog_lag, side="right") - 1
        if j > i:
            vs.append(np.hypot(*(p[j] - p[i])) / (t[j] - t[i]))
    r["progression"] = np.mean(vs) * fps if vs else r["vsl"]

    pos = {int(f): i for i, f in enumerate(frame)}
    pairs = [(i, pos[int(f) + motion_lag]) for i, f in enumerate(frame)
             if int(f) + motion_lag in pos]
    msd1 = d2.mean()
    if pairs:
        ii, jj = np.array(pairs).T
        msdl = ((p[jj] - p[ii]) ** 2).sum(axis=1).mean()
        r["motion"] = _excess(msdl, msd1) / motion_lag * fps
    else:
        r["motion"] = _excess(net * net, msd1) / span * fps
    return r


def reference_metrics(tracks: pd.DataFrame, fps: float, um_per_px: float, window: int,
                      progression_window_s: float = 1.0, motion_lag_s: float = 0.2) -> pd.DataFrame:
    """Reference metrics of every track (columns named like compute_track_metrics)."""
    prog_lag = max(1, int(round(progression_window_s * fps)))
    motion_lag = max(2, int(round(motion_lag_s * fps)))
    rows = []
    for tid, g in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        f = g["frame"].to_numpy(np.int64)
        r = reference_track(f, g["x"].to_numpy(float) * um_per_px, g["y"].to_numpy(float) * um_per_px,
                            fps, window, prog_lag, motion_lag)
        rows.append(dict(track_id=tid, first_frame=f[0], last_frame=f[-1], n_points=len(f), **r))
    out = pd.DataFrame(rows).rename(columns={
        "vcl": "vcl_um_s", "vsl": "vsl_um_s", "vap": "vap_um_s", "alh_mean": "alh_mean_um",
        "alh_max": "alh_max_um", "bcf": "bcf_hz", "mad": "mad_deg", "progression": "progression_um_s",
        "motion": "motion_um_s"})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["lin_pct"] = np.where(out.vcl_um_s > 0, out.vsl_um_s / out.vcl_um_s * 100, NAN)
        out["str_pct"] = np.where(out.vap_um_s > 0, out.vsl_um_s / out.vap_um_s * 100, NAN)
        out["wob_pct"] = np.where(out.vcl_um_s > 0, out.vap_um_s / out.vcl_um_s * 100, NAN)
    out["dnc_um2_s"] = out.vcl_um_s * out.alh_mean_um
    return out


def _excess(long_: float, short: float) -> float:
    d = long_ - short
    return 0.0 if d <= 1e-12 * max(long_, short) else float(np.sqrt(d))


def reference_time_fractions(tracks: pd.DataFrame, fps: float, um_per_px: float, window_s: float,
                             n_steps: int, progressive_um_s: float, straightness_min: float,
                             still_um_s: float) -> pd.DataFrame:
    """% of each track's looks that are progressive / non-progressive / immotile, written from
    docs/KINEMATICS_CONVENTIONS.md with ``np.interp`` (one look at a time)."""
    rows = []
    for tid, g in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
        f = g["frame"].to_numpy(np.float64)
        x, y = g["x"].to_numpy(float) * um_per_px, g["y"].to_numpy(float) * um_per_px
        if len(f) < 2:
            rows.append(dict(track_id=tid, p=NAN, n=NAN, i=NAN))
            continue
        span = f[-1] - f[0]
        T = min(window_s * fps, span)
        step = T / n_steps
        n_looks = int(np.floor((span - T) / step + 1e-9)) + 1
        kinds = []
        for k in range(n_looks):
            t = f[0] + k * step + step * np.arange(n_steps + 1)
            px, py = np.interp(t, f, x), np.interp(t, f, y)
            net = np.hypot(px[-1] - px[0], py[-1] - py[0])
            path = np.hypot(np.diff(px), np.diff(py)).sum()
            if net >= progressive_um_s / fps * T and net >= straightness_min * path:
                kinds.append(0)
            elif path < still_um_s / fps * T:
                kinds.append(2)
            else:
                kinds.append(1)
        c = np.bincount(kinds, minlength=3) / len(kinds) * 100
        rows.append(dict(track_id=tid, p=c[0], n=c[1], i=c[2]))
    return pd.DataFrame(rows).rename(columns={"p": "progressive_time_pct", "n": "non_progressive_time_pct",
                                              "i": "immotile_time_pct"})
