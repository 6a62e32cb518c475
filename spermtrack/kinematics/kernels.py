"""Numba kernels of the CASA kinematics over a CSR track layout.

Layout: the points of all tracks sorted by ``(track_id, frame)``; ``offsets`` (``n_tracks + 1``)
gives the slice of each track. The kernel runs in parallel over tracks (``prange``); each track
is a handful of streaming passes over its own points, with no per-track allocation, so the cost
is linear in the number of points.

All times inside the kernels are in **frames** (real frame numbers, so gaps are real time);
:func:`track_kernel` returns per-frame quantities and the caller divides by ``fps``. Positions
are multiplied by ``scale`` (um per px) on load, so every length is in um.

Conventions (window rule, ALH half-beats, BCF crossings, MAD, progression windows, motion test)
are written out in ``docs/KINEMATICS_CONVENTIONS.md``; ``tests/kinematics_reference.py`` is a
plain numpy implementation of the same definitions that the tests compare against.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: Column order of the array returned by :func:`track_kernel`.
K_COLUMNS: tuple[str, ...] = (
    "span_frames",      # last frame - first frame
    "vcl",              # um / frame
    "vsl",              # um / frame
    "vap",              # um / frame
    "alh_mean",         # um
    "alh_max",          # um
    "bcf",              # crossings / frame
    "mad",              # degrees
    "progression",      # um / frame
    "motion",           # um / frame (noise-corrected displacement over the motion lag)
)
K = {name: i for i, name in enumerate(K_COLUMNS)}

#: Error codes written per track by the kernel.
ERR_OK, ERR_NAN, ERR_DUPLICATE = 0, 1, 2

#: A point closer than this (um) to the average path is "on" it: no side, no crossing.
SIDE_EPS_UM = 1e-9


@njit(cache=True)
def order_status(track_id: np.ndarray, frame: np.ndarray) -> int:
    """0 when rows are sorted by ``(track_id, frame)`` without repeats; 1 when they need sorting;
    2 when sorted but a track repeats a frame (the caller reports which track)."""
    status = 0
    for i in range(1, track_id.shape[0]):
        dt = track_id[i] - track_id[i - 1]
        if dt < 0:
            return 1
        if dt == 0:
            df = frame[i] - frame[i - 1]
            if df < 0:
                return 1
            if df == 0:
                status = 2
    return status


@njit(cache=True)
def track_offsets(track_id: np.ndarray) -> np.ndarray:
    """CSR offsets of a ``track_id`` array sorted by track (``n_tracks + 1`` entries)."""
    n = track_id.shape[0]
    count = 1 if n > 0 else 0
    for i in range(1, n):
        if track_id[i] != track_id[i - 1]:
            count += 1
    off = np.empty(count + 1, np.int64)
    off[0] = 0
    k = 1
    for i in range(1, n):
        if track_id[i] != track_id[i - 1]:
            off[k] = i
            k += 1
    off[count] = n
    return off


# Cephes atan (S. Moshier) rational approximation, 1 ulp on [0, inf): twice as fast as libm's
# atan2, which dominated the kernel's time (one call per step for MAD).
_P0, _P1, _P2, _P3, _P4 = (-8.750608600031904122785e-1, -1.615753718733365076637e1,
                           -7.500855792314704667340e1, -1.228866684490136173410e2,
                           -6.485021904942025371773e1)
_Q0, _Q1, _Q2, _Q3, _Q4 = (2.485846490142306297962e1, 1.650270098316988542046e2,
                           4.328810604912902668951e2, 4.853903996359136964868e2,
                           1.945506571482613964425e2)
_MOREBITS = 6.123233995736765886130e-17


@njit(cache=True, inline="always")
def turn_angle(a, d):
    """``atan2(a, d)`` in radians for ``a >= 0`` (the unsigned turning angle between two steps
    with ``a = |cross|``, ``d = dot``); reduces the argument straight from ``(a, |d|)`` so that
    only two divisions are needed."""
    b = abs(d)
    if b == 0.0:
        return 0.5 * math.pi if a > 0.0 else 0.0
    if a > 2.41421356237309504880 * b:
        y = 0.5 * math.pi
        x = -b / a
        mb = _MOREBITS
    elif a <= 0.66 * b:
        y = 0.0
        x = a / b
        mb = 0.0
    else:
        y = 0.25 * math.pi
        x = (a - b) / (a + b)
        mb = 0.5 * _MOREBITS
    z = x * x
    z = z * ((((_P0 * z + _P1) * z + _P2) * z + _P3) * z + _P4) / (
        ((((z + _Q0) * z + _Q1) * z + _Q2) * z + _Q3) * z + _Q4)
    t = y + (x * z + x + mb)
    return math.pi - t if d < 0.0 else t


@njit(cache=True, inline="always")
def _avg_point(x, y, f, j, w, scale):
    """Point ``j`` of the average path: mean of raw points ``j .. j+w-1`` (and of their frames)."""
    sx = 0.0
    sy = 0.0
    sf = 0.0
    for m in range(j, j + w):
        sx += x[m]
        sy += y[m]
        sf += f[m]
    return sx / w * scale, sy / w * scale, sf / w


@njit(cache=True)
def _one_track(x, y, f, a, b, scale, w, prog_lag, motion_lag, out):
    """Fill ``out`` (len(K_COLUMNS)) for the track ``a:b``; return an error code."""
    n = b - a
    for i in range(a, b):
        if not (math.isfinite(x[i]) and math.isfinite(y[i])):
            return ERR_NAN
    for i in range(a + 1, b):
        if f[i] <= f[i - 1]:
            return ERR_DUPLICATE
    for c in range(out.shape[0]):
        out[c] = np.nan
    out[0] = f[b - 1] - f[a]
    if n < 2:
        return ERR_OK
    span = float(f[b - 1] - f[a])

    # One pass: path length (VCL), mean squared step (noise reference), turning angles (MAD).
    path = 0.0
    msd1 = 0.0
    mad_sum = 0.0
    mad_n = 0
    pdx = 0.0
    pdy = 0.0
    have_prev = False
    for i in range(a + 1, b):
        dx = (x[i] - x[i - 1]) * scale
        dy = (y[i] - y[i - 1]) * scale
        d2 = dx * dx + dy * dy
        path += math.sqrt(d2)
        msd1 += d2
        if d2 > 0.0:
            if have_prev:
                cr = pdx * dy - pdy * dx
                dt = pdx * dx + pdy * dy
                mad_sum += turn_angle(abs(cr), dt)
                mad_n += 1
            pdx = dx
            pdy = dy
            have_prev = True
    msd1 /= n - 1
    ex = (x[b - 1] - x[a]) * scale
    ey = (y[b - 1] - y[a]) * scale
    net = math.sqrt(ex * ex + ey * ey)
    out[1] = path / span
    out[2] = net / span
    if mad_n > 0:
        out[7] = math.degrees(mad_sum / mad_n)

    # Average path, streamed segment by segment: VAP, riser (ALH), crossings (BCF).
    nq = n - w + 1
    if nq >= 2:
        qx0, qy0, qt0 = _avg_point(x, y, f, a, w, scale)
        qt_first = qt0
        qlen = 0.0
        i = a
        while i < b and f[i] < qt_first:
            i += 1
        r_max = 0.0
        n_riser = 0
        run_max = 0.0
        last_side = 0
        crossings = 0
        beat_sum = 0.0
        beat_n = 0
        for k in range(nq - 1):
            qx1, qy1, qt1 = _avg_point(x, y, f, a + k + 1, w, scale)
            tx = qx1 - qx0
            ty = qy1 - qy0
            tl = math.sqrt(tx * tx + ty * ty)
            qlen += tl
            eps_c = SIDE_EPS_UM * tl
            inv_dt = 1.0 / (qt1 - qt0)
            last_seg = k == nq - 2
            while i < b and (f[i] < qt1 or (last_seg and f[i] <= qt1)):
                u = (f[i] - qt0) * inv_dt
                rx = x[i] * scale - (qx0 + u * tx)
                ry = y[i] * scale - (qy0 + u * ty)
                r = rx * rx + ry * ry  # squared riser; sqrt only for the maxima kept
                n_riser += 1
                if r > r_max:
                    r_max = r
                side = 0
                if tl > 0.0:
                    c = tx * ry - ty * rx  # signed distance x tl
                    if c > eps_c:
                        side = 1
                    elif c < -eps_c:
                        side = -1
                if side != 0 and last_side != 0 and side != last_side:
                    crossings += 1
                    if crossings >= 2:
                        # the half-beat that just ended was bounded by two crossings
                        beat_sum += math.sqrt(run_max)
                        beat_n += 1
                    run_max = 0.0
                if side != 0:
                    last_side = side
                if r > run_max:
                    run_max = r
                i += 1
            qx0 = qx1
            qy0 = qy1
            qt0 = qt1
        q_span = qt0 - qt_first
        out[3] = qlen / q_span
        if n_riser > 0:  # else gaps left no raw point inside the average path's time span
            out[5] = 2.0 * math.sqrt(r_max)
            out[4] = 2.0 * beat_sum / beat_n if beat_n > 0 else out[5]
            out[6] = crossings / q_span

    # Progression: mean VSL over sliding windows of prog_lag frames (whole-track VSL if none).
    j = a
    s = 0.0
    cnt = 0
    f_last = f[b - 1]
    for i in range(a, b):
        target = f[i] + prog_lag
        if target > f_last:
            break
        if j < i:
            j = i
        while j + 1 < b and f[j + 1] <= target:
            j += 1
        if j > i:
            dx = (x[j] - x[i]) * scale
            dy = (y[j] - y[i]) * scale
            s += math.sqrt(dx * dx + dy * dy) / (f[j] - f[i])
            cnt += 1
    out[8] = s / cnt if cnt > 0 else out[2]

    # Motion: sqrt(MSD(lag) - MSD(1 step)) / lag; white localisation noise adds the same 2 sigma^2
    # to both MSDs, so it cancels, while real displacement grows with the lag.
    j = a
    msdl = 0.0
    cnt = 0
    for i in range(a, b):
        target = f[i] + motion_lag
        if target > f_last:
            break
        while j < b and f[j] < target:
            j += 1
        if j < b and f[j] == target:
            dx = (x[j] - x[i]) * scale
            dy = (y[j] - y[i]) * scale
            msdl += dx * dx + dy * dy
            cnt += 1
    if cnt > 0:
        out[9] = _excess(msdl / cnt, msd1) / motion_lag
    else:
        out[9] = _excess(net * net, msd1) / span
    return ERR_OK


@njit(cache=True, inline="always")
def _excess(msd_long, msd_short):
    """``sqrt(msd_long - msd_short)``, 0 when the difference is within rounding of the MSDs
    (sqrt would otherwise turn 1e-16 of cancellation into 1e-8 um)."""
    d = msd_long - msd_short
    if d <= 1e-12 * max(msd_long, msd_short):
        return 0.0
    return math.sqrt(d)


@njit(cache=True, parallel=True)
def track_kernel(x: np.ndarray, y: np.ndarray, frame: np.ndarray, offsets: np.ndarray,
                 scale: float, window: int, prog_lag: int, motion_lag: int):
    """Per-track kinematics of a CSR point layout.

    Args:
        x, y: float64 positions in px, sorted by track then frame.
        frame: int64 frame numbers (strictly increasing inside a track).
        offsets: int64 CSR offsets (track ``k`` is ``offsets[k]:offsets[k+1]``).
        scale: um per px.
        window: average-path window in points (>= 2).
        prog_lag: progression window in frames.
        motion_lag: lag of the motion test in frames.

    Returns:
        ``(values, errors)``: ``values (n_tracks, len(K_COLUMNS))`` float64 in um, frames and
        degrees (see :data:`K_COLUMNS`), NaN where undefined; ``errors (n_tracks,)`` int8 codes
        (:data:`ERR_NAN`, :data:`ERR_DUPLICATE`); a track with an error has undefined values.
    """
    n_tracks = offsets.shape[0] - 1
    values = np.empty((n_tracks, len(K_COLUMNS)), np.float64)
    errors = np.zeros(n_tracks, np.int8)
    for t in prange(n_tracks):
        errors[t] = _one_track(x, y, frame, offsets[t], offsets[t + 1], scale, window,
                               prog_lag, motion_lag, values[t])
    return values, errors


@njit(cache=True, inline="always")
def _pos_at(x, y, f, a, b, j, t):
    """Position at (fractional) frame ``t`` by linear interpolation between the track's points,
    starting the search at index ``j`` (returns the new index and the point)."""
    while j + 1 < b - 1 and f[j + 1] <= t:
        j += 1
    if j + 1 >= b:
        return j, x[j], y[j]
    f0 = f[j]
    f1 = f[j + 1]
    u = (t - f0) / (f1 - f0)
    if u < 0.0:
        u = 0.0
    elif u > 1.0:
        u = 1.0
    return j, x[j] + u * (x[j + 1] - x[j]), y[j] + u * (y[j + 1] - y[j])


@njit(cache=True)
def _one_track_windows(x, y, f, a, b, scale, window, n_steps, v_prog, straight_min, v_still, out):
    """Time fractions (progressive, non-progressive, immotile) of the track ``a:b``."""
    for c in range(3):
        out[c] = np.nan
    if b - a < 2:
        return
    span = float(f[b - 1] - f[a])
    T = window if window < span else span
    step = T / n_steps
    n_win = int(math.floor((span - T) / step + 1e-9)) + 1
    n_prog = 0
    n_still = 0
    j0 = a
    for k in range(n_win):
        t0 = f[a] + k * step
        # windows start at every coarse step; the search index only moves forward
        j0, px0, py0 = _pos_at(x, y, f, a, b, j0, t0)
        j = j0
        sx = px0
        sy = py0
        path = 0.0
        for s in range(1, n_steps + 1):
            j, qx, qy = _pos_at(x, y, f, a, b, j, t0 + s * step)
            path += math.sqrt((qx - sx) ** 2 + (qy - sy) ** 2)
            sx = qx
            sy = qy
        net = math.sqrt((sx - px0) ** 2 + (sy - py0) ** 2) * scale
        path *= scale
        if net >= v_prog * T and net >= straight_min * path:
            n_prog += 1
        elif path < v_still * T:
            n_still += 1
    out[0] = n_prog / n_win
    out[2] = n_still / n_win
    out[1] = 1.0 - out[0] - out[2]


@njit(cache=True, parallel=True)
def window_grade_kernel(x: np.ndarray, y: np.ndarray, frame: np.ndarray, offsets: np.ndarray,
                        scale: float, window: float, n_steps: int, v_prog: float,
                        straight_min: float, v_still: float) -> np.ndarray:
    """Fraction of its time each track spends progressive, non-progressive and immotile, as a
    technician watching it for ``window`` frames would judge it.

    Windows of ``window`` frames (the whole track when shorter) start every ``window / n_steps``
    frames; in each, the head is sampled at ``n_steps + 1`` equally spaced times (linear
    interpolation between points, so gaps and interpolated annotations are fine). A window is
    progressive when its net displacement is at least ``v_prog * window`` um and at least
    ``straight_min`` times its coarse path length (the beat and localisation noise are below the
    coarse step, so they do not enter); otherwise immotile when the coarse path is shorter than
    ``v_still * window`` um; otherwise non-progressive. Speeds are in um per frame.

    Returns:
        ``(n_tracks, 3)`` float64 fractions; NaN rows for tracks with fewer than two points.
    """
    n_tracks = offsets.shape[0] - 1
    out = np.empty((n_tracks, 3), np.float64)
    for t in prange(n_tracks):
        _one_track_windows(x, y, frame, offsets[t], offsets[t + 1], scale, window, n_steps,
                           v_prog, straight_min, v_still, out[t])
    return out
