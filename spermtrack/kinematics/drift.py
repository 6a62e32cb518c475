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

import numba
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


@numba.njit(cache=True, nogil=True)
def _still_groups(f_arr: np.ndarray, vx: np.ndarray, vy: np.ndarray, radius: float, min_objects: int,
                  n_frames: int, shift: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per frame (``f_arr`` sorted), the mean velocity of the densest group: a mean shift from the
    frame's median velocity, at most 10 steps; NaN where fewer than ``min_objects`` stay in it.
    The result of frame ``f`` is stored at ``f + shift``."""
    out = np.full((n_frames, 2), np.nan)
    r2 = radius * radius
    n = len(f_arr)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and f_arr[stop] == f_arr[start]:
            stop += 1
        if stop - start >= min_objects:
            gx, gy = vx[start:stop], vy[start:stop]
            cx, cy = np.median(gx), np.median(gy)
            ok = True
            for _ in range(10):
                sx, sy, k = 0.0, 0.0, 0
                for i in range(stop - start):
                    if (gx[i] - cx) ** 2 + (gy[i] - cy) ** 2 <= r2:
                        sx += gx[i]
                        sy += gy[i]
                        k += 1
                if k < min_objects:
                    ok = False
                    break
                nx, ny = sx / k, sy / k
                tol = 1e-6 * max(radius, 1e-12)
                if abs(nx - cx) <= tol + 1e-5 * abs(cx) and abs(ny - cy) <= tol + 1e-5 * abs(cy):
                    break  # converged (numpy.allclose's rule); the centre kept is the last one
                cx, cy = nx, ny
            if ok and 0 <= f_arr[start] + shift < n_frames:
                out[f_arr[start] + shift, 0] = cx
                out[f_arr[start] + shift, 1] = cy
        start = stop
    return out


@numba.njit(cache=True, nogil=True)
def _lag_velocities(tid: np.ndarray, frame: np.ndarray, x: np.ndarray, y: np.ndarray, lag: int,
                    n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Displacements per frame over ``lag`` frames of every point that has its own track's point
    ``lag`` frames later (points sorted by track then frame), grouped by frame (counting sort,
    stable: within a frame, in track order). Returns ``(frame, vx, vy)`` sorted by frame."""
    n = len(tid)
    pf = np.empty(n, np.int64)
    pvx = np.empty(n, np.float64)
    pvy = np.empty(n, np.float64)
    k = 0
    start = 0
    while start < n:
        end = start + 1
        while end < n and tid[end] == tid[start]:
            end += 1
        j = start
        for i in range(start, end):
            target = frame[i] + lag
            while j < end and frame[j] < target:
                j += 1
            if j < end and frame[j] == target:
                pf[k] = frame[i]
                pvx[k] = (x[j] - x[i]) / lag
                pvy[k] = (y[j] - y[i]) / lag
                k += 1
        start = end
    counts = np.zeros(n_frames + 1, np.int64)
    for i in range(k):
        counts[pf[i] + 1] += 1
    for f in range(n_frames):
        counts[f + 1] += counts[f]
    of = np.empty(k, np.int64)
    ovx = np.empty(k, np.float64)
    ovy = np.empty(k, np.float64)
    for i in range(k):
        d = counts[pf[i]]
        counts[pf[i]] += 1
        of[d], ovx[d], ovy[d] = pf[i], pvx[i], pvy[i]
    return of, ovx, ovy


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
    tid, frame = np.asarray(tid, np.int64), np.asarray(frame, np.int64)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(tid) > 1 and not ((np.diff(tid) > 0) | ((np.diff(tid) == 0) & (np.diff(frame) > 0))).all():
        order = np.lexsort((frame, tid))
        tid, frame, x, y = tid[order], frame[order], x[order], y[order]
    f_arr, vx, vy = _lag_velocities(tid, frame, x, y, lag, n_frames)
    radius = radius_um_s / um_per_px / fps  # px per frame
    # each frame's still group, stored at the lag's middle (compiled: one pass over the velocities)
    per_frame = _still_groups(f_arr, vx, vy, float(radius), int(min_objects), n_frames, lag // 2)
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
