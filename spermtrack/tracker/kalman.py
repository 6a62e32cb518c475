"""Constant-velocity Kalman filtering of head centres in image coordinates, batched over tracks.

Model (per image axis, time step = one frame)::

    state  s = [position px, velocity px/frame]
    s_k+1  = F s_k + w,   F = [[1, 1], [0, 1]],  w ~ N(0, Q),  Q = q [[1/4, 1/2], [1/2, 1]]
    z_k    = position + v,   v ~ N(0, r)

``Q`` is filterpy's ``Q_discrete_white_noise(dim=2, dt=1, var=q)`` (piecewise-constant white
acceleration of variance ``q`` px^2/frame^4), ``r`` the detector's centre variance (px^2).
Because the noise is isotropic and both axes see the same measurements at the same frames,
the x and y covariances are the same 2x2 matrix: each track stores it once, as
``(p_pos_pos, p_pos_vel, p_vel_vel)``. That is what makes the online filter cheap enough to run
on every track of every frame as a few numpy expressions, and the smoother a small numba loop.

The recursions are the textbook ones and are checked against filterpy's ``KalmanFilter`` and
``rts_smoother`` in ``tests/tracker/test_refine.py`` and ``tests/tracker/test_associate.py``.
"""

from __future__ import annotations

import numba
import numpy as np


def cv_noise_per_frame(accel_sigma_px_s2: float, fps: float) -> float:
    """Process-noise variance ``q`` in px^2/frame^4 from an acceleration s.d. in px/s^2."""
    return float((accel_sigma_px_s2 / (fps * fps)) ** 2)


def predict(mean: np.ndarray, cov: np.ndarray, q: float) -> None:
    """One prediction step, in place, for every track.

    Args:
        mean: ``(T, 4)`` states ``x, y, vx, vy`` (px, px/frame).
        cov: ``(T, 3)`` shared per-axis covariances ``(pp, pv, vv)``.
        q: process-noise variance (px^2/frame^4).
    """
    mean[:, :2] += mean[:, 2:]
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    new_pp = pp + 2.0 * pv + vv + 0.25 * q
    new_pv = pv + vv + 0.5 * q
    cov[:, 2] = vv + q
    cov[:, 0] = new_pp
    cov[:, 1] = new_pv


def update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray, r: float) -> None:
    """Measurement update, in place, of tracks ``mean``/``cov`` (rows already selected) with
    centres ``z (T, 2)`` px and measurement variance ``r`` px^2."""
    s = cov[:, 0] + r
    k0 = cov[:, 0] / s
    k1 = cov[:, 1] / s
    innov = z - mean[:, :2]
    mean[:, :2] += k0[:, None] * innov
    mean[:, 2:] += k1[:, None] * innov
    pp, pv, vv = cov[:, 0].copy(), cov[:, 1].copy(), cov[:, 2].copy()
    cov[:, 0] = (1.0 - k0) * pp
    cov[:, 1] = (1.0 - k0) * pv
    cov[:, 2] = vv - k1 * pv


@numba.njit(cache=True)
def _rts_one(z: np.ndarray, out: np.ndarray, q: float, r: float, p0_pos: float, p0_vel: float) -> None:
    """Forward filter + RTS backward pass over one dense track ``z (L, 2)`` (NaN = no
    measurement). Writes smoothed positions and velocities into ``out (L, 4)``."""
    n = z.shape[0]
    mf = np.zeros((n, 4))      # filtered means x, y, vx, vy
    pf = np.zeros((n, 3))      # filtered covariances
    pp_pred = np.zeros((n, 3))  # predicted covariances (k given k-1)
    x, y, vx, vy = z[0, 0], z[0, 1], 0.0, 0.0
    a, b, c = p0_pos, 0.0, p0_vel
    for k in range(n):
        if k > 0:
            x += vx
            y += vy
            a, b, c = a + 2.0 * b + c + 0.25 * q, b + c + 0.5 * q, c + q
        pp_pred[k, 0], pp_pred[k, 1], pp_pred[k, 2] = a, b, c
        if k > 0 and not np.isnan(z[k, 0]):  # k = 0: the state was initialised from z[0]
            s = a + r
            k0, k1 = a / s, b / s
            ix, iy = z[k, 0] - x, z[k, 1] - y
            x += k0 * ix
            y += k0 * iy
            vx += k1 * ix
            vy += k1 * iy
            a, b, c = (1.0 - k0) * a, (1.0 - k0) * b, c - k1 * b
        mf[k, 0], mf[k, 1], mf[k, 2], mf[k, 3] = x, y, vx, vy
        pf[k, 0], pf[k, 1], pf[k, 2] = a, b, c
    out[n - 1, :] = mf[n - 1, :]
    for k in range(n - 2, -1, -1):
        # smoother gain G = Pf_k F^T Ppred_{k+1}^-1 (2x2, same for both axes)
        fa, fb, fc = pf[k, 0], pf[k, 1], pf[k, 2]
        ca, cb = fa + fb, fb          # (Pf F^T) row 0: [pp + pv, pv]
        da, db = fb + fc, fc          # row 1: [pv + vv, vv]
        pa, pb, pc = pp_pred[k + 1, 0], pp_pred[k + 1, 1], pp_pred[k + 1, 2]
        det = pa * pc - pb * pb
        ia, ib, ic = pc / det, -pb / det, pa / det
        g00, g01 = ca * ia + cb * ib, ca * ib + cb * ic
        g10, g11 = da * ia + db * ib, da * ib + db * ic
        for ax in range(2):
            pred_pos = mf[k, ax] + mf[k, ax + 2]
            pred_vel = mf[k, ax + 2]
            e0 = out[k + 1, ax] - pred_pos
            e1 = out[k + 1, ax + 2] - pred_vel
            out[k, ax] = mf[k, ax] + g00 * e0 + g01 * e1
            out[k, ax + 2] = mf[k, ax + 2] + g10 * e0 + g11 * e1


@numba.njit(cache=True)
def _rts_many(z: np.ndarray, offsets: np.ndarray, out: np.ndarray, q: np.ndarray, r: float,
              p0_pos: float, p0_vel: float) -> None:
    for i in range(offsets.shape[0] - 1):
        lo, hi = offsets[i], offsets[i + 1]
        _rts_one(z[lo:hi], out[lo:hi], q[i], r, p0_pos, p0_vel)


def rts_smooth(z: np.ndarray, offsets: np.ndarray, *, q: float | np.ndarray, r: float,
               p0_vel: float = 25.0) -> np.ndarray:
    """Rauch-Tung-Striebel smoothing of many tracks with the constant-velocity model.

    Args:
        z: ``(L, 2)`` measured centres, px, every frame of every track's span in order
            (NaN rows are frames without a measurement: the smoother bridges them, which is how
            gaps are filled).
        offsets: ``(n_tracks + 1,)`` start of each track in ``z``; the first row of each track
            must be measured.
        q: process-noise variance (px^2/frame^4), one for all tracks or one per track.
            Larger follows sharp turns and head wobble more closely; smaller removes more
            jitter.
        r: measurement variance (px^2). Larger trusts the model more (smoother output).
        p0_vel: initial velocity variance ((px/frame)^2), large = uninformative.

    Returns:
        ``(L, 4)`` smoothed ``x, y, vx, vy`` (px, px/frame).
    """
    z = np.ascontiguousarray(z, np.float64)
    offsets = np.ascontiguousarray(offsets, np.int64)
    out = np.empty((len(z), 4), np.float64)
    if len(z):
        q_arr = np.broadcast_to(np.asarray(q, np.float64), (len(offsets) - 1,)).copy()
        _rts_many(z, offsets, out, q_arr, float(r), float(r), float(p0_vel))
    return out


@numba.njit(cache=True)
def _nll_many(z: np.ndarray, q: float, r: float, p0_vel: float, out: np.ndarray, chi2: np.ndarray,
              count: np.ndarray) -> None:
    n_seq, n_t = z.shape[0], z.shape[1]
    for i in range(n_seq):
        started = False
        x = y = vx = vy = 0.0
        a = b = c = 0.0
        total = 0.0
        c2 = 0.0
        m = 0
        for k in range(n_t):
            if started:
                x += vx
                y += vy
                a, b, c = a + 2.0 * b + c + 0.25 * q, b + c + 0.5 * q, c + q
            if np.isnan(z[i, k, 0]):
                continue
            if not started:
                x, y, vx, vy = z[i, k, 0], z[i, k, 1], 0.0, 0.0
                a, b, c = r, 0.0, p0_vel
                started = True
                continue
            s = a + r
            ix, iy = z[i, k, 0] - x, z[i, k, 1] - y
            total += 0.5 * (ix * ix + iy * iy) / s + np.log(s)
            c2 += (ix * ix + iy * iy) / s
            m += 1
            k0, k1 = a / s, b / s
            x += k0 * ix
            y += k0 * iy
            vx += k1 * ix
            vy += k1 * iy
            a, b, c = (1.0 - k0) * a, (1.0 - k0) * b, c - k1 * b
        out[i] = total
        chi2[i] = c2
        count[i] = m


def neg_log_likelihood(z: np.ndarray, *, q: float, r: float, p0_vel: float, details: bool = False):
    """Negative log-likelihood of each sequence of centres under the constant-velocity model.

    The first measured point of a sequence sets its state (position variance ``r``, velocity 0
    with variance ``p0_vel``); every later measured point adds ``0.5 |innovation|^2 / S + ln S``
    (both axes; the constant ``ln 2 pi`` left out), ``S`` the innovation variance. Missing frames
    are predicted through.

    Args:
        z: ``(N, T, 2)`` centres px, NaN where a sequence has no measurement.
        q: process-noise variance (px^2/frame^4, :func:`cv_noise_per_frame`).
        r: measurement variance (px^2).
        p0_vel: prior variance of the first velocity (px^2/frame^2).

        details: also return each sequence's sum of normalised squared innovations (chi-square,
            2 dof per point; its mean per point is 2 when the model fits) and its number of
            scored points.

    Returns:
        ``(N,)`` negative log-likelihoods (0 for a sequence with fewer than two points); with
        ``details``, ``(nll, chi2, count)``.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    out = np.zeros(z.shape[0])
    chi2 = np.zeros(z.shape[0])
    count = np.zeros(z.shape[0], np.int64)
    if z.shape[0] and z.shape[1]:
        _nll_many(z, float(q), float(r), float(p0_vel), out, chi2, count)
    return (out, chi2, count) if details else out
