"""Field drift: the common motion of everything in view, estimated from the still objects.

Flow in the chamber (or a drifting stage) carries immotile cells and debris along and adds its
velocity to every swimmer. CASA systems subtract the field's motion before computing kinematics.
A plain median of all velocities is wrong when most cells swim (it follows the swimmers), so
the estimate looks for the *still cluster*: in every frame, the velocities (displacement over
``lag_s``) of the objects in view are taken, and a mean shift of radius ``radius_um_s`` started
at their median converges on the densest group; the drift of that frame is the group's mean
when at least ``min_objects`` objects move together, unknown otherwise. Unknown frames are
filled by interpolation, the result is smoothed by a running median over ``smooth_s``.

The drift is subtracted only when it is measurable: at least half of the frames have an
estimate and its median speed is at least ``min_speed_um_s``. A single track, a drift-free
field and a field of swimmers with no still group are left exactly as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DriftEstimate:
    """What the drift estimate found (recorded in every result's metadata).

    Attributes:
        applied: whether the drift was subtracted.
        reason: why (or why not), in words.
        median_speed_um_s, p90_speed_um_s: drift speed over the frames with an estimate.
        mean_vx_um_s, mean_vy_um_s: mean drift velocity (image axes, y down).
        frames_estimated_pct: % of frames with a still group of at least ``min_objects``.
        min_objects, lag_s, radius_um_s, smooth_s, min_speed_um_s: the settings.
    """

    applied: bool
    reason: str
    median_speed_um_s: float
    p90_speed_um_s: float
    mean_vx_um_s: float
    mean_vy_um_s: float
    frames_estimated_pct: float
    min_objects: int
    lag_s: float
    radius_um_s: float
    smooth_s: float
    min_speed_um_s: float

    def to_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _still_group(v: np.ndarray, radius: float, min_objects: int) -> tuple[float, float] | None:
    """Mean velocity of the densest group (mean shift from the median), or None if too small."""
    c = np.median(v, axis=0)
    r2 = radius * radius
    for _ in range(10):
        near = ((v - c) ** 2).sum(axis=1) <= r2
        if near.sum() < min_objects:
            return None
        new = v[near].mean(axis=0)
        if np.allclose(new, c, atol=1e-6 * max(radius, 1e-12)):
            break
        c = new
    return float(c[0]), float(c[1])


def estimate_drift(tid: np.ndarray, frame: np.ndarray, x: np.ndarray, y: np.ndarray, fps: float,
                   um_per_px: float, *, lag_s: float = 0.2, radius_um_s: float = 4.0,
                   min_objects: int = 5, smooth_s: float = 1.0,
                   min_speed_um_s: float = 0.5) -> tuple[np.ndarray, np.ndarray, DriftEstimate]:
    """Cumulative drift (px) at every frame, and what was found.

    Args:
        tid, frame, x, y: the points of all tracks (any order; frames 0-based, px).
        fps, um_per_px: to express the settings in px and frames.
        lag_s: velocities are displacements over this lag (noise averages out, drift adds up).
        radius_um_s: objects whose velocities lie within this of the group's centre belong to it.
        min_objects: objects needed in a frame's still group for that frame to have an estimate.
        smooth_s: running-median window of the per-frame drift velocity.
        min_speed_um_s: below this median drift speed nothing is subtracted.

    Returns:
        ``(dx, dy, estimate)``: ``dx[f], dy[f]`` the cumulative drift in px from frame 0 to frame
        ``f`` (all zeros when not applied), indexable by every frame in ``frame``.
    """
    n_frames = int(frame.max()) + 1 if len(frame) else 0
    zeros = np.zeros(n_frames)
    settings = dict(min_objects=min_objects, lag_s=lag_s, radius_um_s=radius_um_s, smooth_s=smooth_s,
                    min_speed_um_s=min_speed_um_s)
    lag = max(1, int(round(lag_s * fps)))
    nan_est = dict(median_speed_um_s=float("nan"), p90_speed_um_s=float("nan"), mean_vx_um_s=float("nan"),
                   mean_vy_um_s=float("nan"))
    if n_frames <= lag:
        return zeros, zeros, DriftEstimate(False, "video shorter than the velocity lag", **nan_est,
                                           frames_estimated_pct=0.0, **settings)
    pts = pd.DataFrame({"t": tid, "f": frame, "x": x, "y": y})
    later = pts.assign(f=pts["f"] - lag)
    pair = pts.merge(later, on=("t", "f"), suffixes=("", "_l"))
    vel = pd.DataFrame({"f": pair["f"].to_numpy(),
                        "vx": (pair["x_l"] - pair["x"]).to_numpy() / lag,
                        "vy": (pair["y_l"] - pair["y"]).to_numpy() / lag}).sort_values("f", kind="stable")
    radius = radius_um_s / um_per_px / fps  # px per frame
    per_frame = np.full((n_frames, 2), np.nan)
    f_arr, v_arr = vel["f"].to_numpy(), vel[["vx", "vy"]].to_numpy()
    bounds = np.flatnonzero(np.diff(f_arr)) + 1
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(f_arr)]):
        if stop - start >= min_objects:
            g = _still_group(v_arr[start:stop], radius, min_objects)
            if g is not None:
                per_frame[f_arr[start] + lag // 2] = g  # the lag's middle
    known = np.isfinite(per_frame[:, 0])
    covered = n_frames - lag  # frames that can have a velocity
    pct = 100.0 * known.sum() / covered
    if known.sum() == 0:
        return zeros, zeros, DriftEstimate(False, f"no frame has {min_objects} objects moving together",
                                           **nan_est, frames_estimated_pct=0.0, **settings)
    idx = np.arange(n_frames)
    filled = np.column_stack([np.interp(idx, idx[known], per_frame[known, c]) for c in (0, 1)])
    win = max(1, int(round(smooth_s * fps)))
    smooth = pd.DataFrame(filled).rolling(win, center=True, min_periods=1).median().to_numpy()
    to_um_s = um_per_px * fps
    speed = np.hypot(smooth[known, 0], smooth[known, 1]) * to_um_s
    est = dict(median_speed_um_s=float(np.median(speed)), p90_speed_um_s=float(np.quantile(speed, 0.9)),
               mean_vx_um_s=float(smooth[known, 0].mean() * to_um_s),
               mean_vy_um_s=float(smooth[known, 1].mean() * to_um_s))
    if pct < 50.0:
        return zeros, zeros, DriftEstimate(
            False, f"only {pct:.0f} % of frames have {min_objects} objects moving together (need 50 %)",
            **est, frames_estimated_pct=pct, **settings)
    if est["median_speed_um_s"] < min_speed_um_s:
        return zeros, zeros, DriftEstimate(
            False, f"median drift {est['median_speed_um_s']:.2f} um/s is below {min_speed_um_s:g} um/s",
            **est, frames_estimated_pct=pct, **settings)
    # the velocity at frame f moves the field from f to f + 1
    cum = np.vstack([[0.0, 0.0], np.cumsum(smooth[:-1], axis=0)])
    return cum[:, 0], cum[:, 1], DriftEstimate(True, "subtracted", **est, frames_estimated_pct=pct, **settings)
