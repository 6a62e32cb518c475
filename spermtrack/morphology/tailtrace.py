"""Tail tracing: an oriented ridge map, where the tail leaves its head, and a
curvature-continuous tracker whose stopping rules refuse to jump to another structure.

The principal piece is a thin, dark, faint line (1-3 px at 0.5 um/px, fainter toward the tip).
Real phase-contrast windows also hold other cells' tails (crossing ours, often darker than our
faint distal tail), other heads with their halos, debris, and the dark / bright halo rings round
our own head. Thresholding a ridge map and walking its skeleton stops at every gap and jumps at
every crossing; here the tail is *followed*:

1. Ridge maps (:func:`ridge_maps`): second derivatives ``f_xx, f_xy, f_yy`` of the window smoothed
   at ``sigma``, in robust noise units. For a direction ``u`` with normal ``n`` the oriented line
   score is ``s(u) = f_nn - clip(f_uu, 0, max(f_nn, 0))``: a dark line across ``n`` is positive,
   a dark blob about zero (``f_uu`` as large as ``f_nn``), a darker line crossing ours zero too
   (a gap to pass, not a wall), a smooth gradient zero, a bright line along ``u`` negative.
2. Exit (:func:`exit_scores`): the score along rays leaving the head's outline in every
   direction (the segmenter follows the best few a short way and keeps the one with the most
   line evidence). The crop's own orientation is not trusted: a still cell's "direction of
   motion" is the jitter of its box.
3. Tracker (:func:`trace_tail`): one pixel per step; every step values ``n_curv`` circular arcs
   (curvatures ``-kmax..kmax`` per px) of ``look`` px, each with its best continuation (a
   second arc whose curvature is within ``depth`` grid steps): a line goes on, a texture
   segment does not. Samples are **capped** at ``cap`` x the line's running level (the median
   step score over ``level_len`` px) and valued in units of that level: a darker crossing tail
   is worth no more than our own line. **Continuity first**: while an arc that keeps the
   current curvature (within ``dk_smooth``) still sees a line (``keep_frac`` of the recent step
   scores), only such arcs are chosen, so a crossing tail is passed straight; only where the
   line bends away from every smooth arc may the trace turn.
4. Near its own head (within ``r_near`` of its centre) only directions within ``away_deg`` of
   "away from the head" score: a tail leaves its head, the halo rings go round it.
5. Stop: a step is *supported* when the capped step scores averaged over ``avg`` px reach
   ``t_stop`` (noise units) and either ``rel_stop`` x the line's strongest level or ``keep_abs``
   (the segmenter's multiple of the window's null level: a faint distal tail far under its dark
   midpiece's level but clearly above the texture goes on); after ``gap`` px
   without support the trace stops and is cut back (``STOP_FADED``). Other heads, bright debris
   and their halos (``zone == OTHER``) score zero and the trace stops on *entering* one
   (``STOP_OTHER``: it was following that cell's tail back to its head); it stops on coming back
   into its own head's zone (``STOP_REENTRY``), at the window border or the frame's (the
   window's part beyond the frame, ``zone == BORDER``, scores zero: ``STOP_BORDER``) and at a
   loop (``STOP_LOOP``: back within ``loop_px`` of a point ``loop_lag`` px behind: coiled). A
   trace that had already lost its support for a few px when it met the border or another cell
   faded before them (``STOP_FADED``).
6. Contrast (:func:`null_level`): what the tracker reads where there is no line (short traces
   from fixed pseudo-random points of the same window); a trace's confidence is its median step
   score over that level (the segmenter's ``tail_confidence``).

Only a trace that faded inside the window has a measured length; the others are lower bounds
(the visible length) or nothing. All coordinates are ``(x, y)`` pixel centres of the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

from spermtrack.sampling import bilinear

#: Stop reasons returned by :func:`trace_tail`.
STOP_FADED, STOP_BORDER, STOP_LOOP, STOP_MAX, STOP_REENTRY, STOP_OTHER = 0, 1, 2, 3, 4, 5
STOP_NAMES = ("faded", "window border", "loop", "max length", "own head", "other cell")

#: values of the zone map passed to the tracker
FREE, OTHER, OWN, BORDER = 0, 1, 2, 3


@dataclass(frozen=True)
class TraceParams:
    """Knobs of the tracker (pixels of the window; the segmenter converts from um).

    Attributes:
        sigma: smoothing of the ridge maps (px).
        look: look-ahead arc length (px).
        kmax: largest curvature tried (1/px; 0.3 follows a 3.3-px radius coil).
        n_curv: number of curvatures tried per step.
        bend_penalty: penalty per unit change of curvature (1/px) between steps, in units of
            the line's own level.
        t_stop: least mean step score (noise units) that supports a step.
        rel_stop: least mean step score, as a fraction of the line's strongest running level.
        cap: arc samples are capped at this multiple of the running level.
        gap: px without support after which the trace stops.
        loop_px, loop_lag: loop test (see module docstring).
        max_len: longest trace (px).
        avg: px over which the step scores are averaged for the support.
        level_len: px over which the running level (median step score) is taken.
        leave: px within which the trace must leave its own head's zone.
        dk_smooth: largest change of curvature per px of a *smooth* continuation.
        keep_frac: a smooth continuation is kept (no turn allowed) while its arc score reaches
            this fraction of the recent step scores.
        depth: every arc is valued with its best continuation (a second arc of ``look`` px whose
            curvature is within ``depth`` grid steps of the first's).
        away_deg: near the own head, only directions within this angle of "away from it" score.
        keep_abs: a step is also supported, whatever ``rel_stop`` says, while the mean step score
            reaches this (noise units; the segmenter sets it from the window's null level; inf:
            off).
        coast: when a dark structure across the way ahead (``f_uu`` along the arc of the recent
            median curvature and its continuation) reaches this multiple of the running level
            (and 4 ``t_stop``: noise does not), the trace keeps that curvature through it.
    """

    sigma: float = 1.0
    look: int = 6
    kmax: float = 0.3
    n_curv: int = 13
    bend_penalty: float = 1.0
    t_stop: float = 1.2
    rel_stop: float = 0.15
    cap: float = 1.25
    gap: int = 8
    loop_px: float = 1.6
    loop_lag: int = 16
    max_len: int = 400
    avg: int = 8
    level_len: int = 20
    leave: int = 10
    dk_smooth: float = 0.06
    keep_frac: float = 0.5
    depth: int = 2
    away_deg: float = 60.0
    coast: float = 1.0
    keep_abs: float = float("inf")


def ridge_maps(window: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(f_xx, f_xy, f_yy)`` of the Gaussian-smoothed window in robust noise units (float32)."""
    g = cv2.GaussianBlur(window.astype(np.float32), (0, 0), sigma)
    fxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3)
    fyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
    fxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3)
    # the noise scale from a sparse sample: lines cover a few % of the window, the MAD ignores them
    sub = fxx[2:-2:3, 2:-2:3].ravel()
    scale = 1.4826 * float(np.median(np.abs(sub - np.median(sub)))) + 1e-6
    inv = np.float32(1.0 / scale)
    fxx *= inv
    fxy *= inv
    fyy *= inv
    return fxx, fxy, fyy


def line_score(maps, pts: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Oriented line score at float ``(x, y)`` points for unit directions ``dirs`` (numpy)."""
    from spermtrack.morphology.paths import bilinear_many

    a, b, d = bilinear_many(maps, pts)
    c, s = dirs[:, 0], dirs[:, 1]
    fnn = s * s * a - 2.0 * s * c * b + c * c * d
    fuu = c * c * a + 2.0 * c * s * b + s * s * d
    return fnn - np.clip(fuu, 0.0, np.maximum(fnn, 0.0))


def exit_scores(maps, zone: np.ndarray, centre, r_edge: np.ndarray, theta: np.ndarray, r0: float,
                length: float) -> np.ndarray:
    """Mean radial line score along rays leaving the head: ray ``i`` leaves ``centre`` along
    ``theta[i]`` and is sampled every px from ``r_edge[i] + r0`` to ``r_edge[i] + r0 + length``
    (the outline's radius plus the halo). Samples on other cells (``zone == OTHER``) score 0."""
    rr = np.arange(0.0, length + 0.01, 1.0)
    u = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    rad = (r_edge[:, None] + r0 + rr[None, :])
    pts = (np.asarray(centre, np.float64)[None, None, :] + rad[..., None] * u[:, None, :]).reshape(-1, 2)
    dirs = np.repeat(u, len(rr), axis=0)
    # negative samples (a halo ring crossed by the ray) do not cancel a tail leaving through it
    s = np.maximum(line_score(maps, pts, dirs), 0.0)
    h, w = zone.shape
    xi = np.clip(np.round(pts[:, 0]).astype(np.int64), 0, w - 1)
    yi = np.clip(np.round(pts[:, 1]).astype(np.int64), 0, h - 1)
    outside = (pts[:, 0] < 0) | (pts[:, 1] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] > h - 1)
    s = np.where((zone[yi, xi] == OTHER) | (zone[yi, xi] == BORDER) | outside, 0.0, s)
    return s.reshape(len(theta), len(rr)).mean(axis=1)


@njit(cache=True, fastmath=True)
def _score(fxx, fxy, fyy, zone, hd, x, y, c, s):
    """Oriented line score at ``(x, y)`` for the unit direction ``(c, s)``: 0 on other cells, and
    near the own head (``hd = (cx, cy, r_near^2, cos_min)``) for directions that do not lead away
    from it (a tail leaves its head; the halo rings round it)."""
    h, w = zone.shape
    xi = int(x + 0.5)
    yi = int(y + 0.5)
    if xi < 0 or yi < 0 or xi >= w or yi >= h or zone[yi, xi] == 1 or zone[yi, xi] == 3:
        return 0.0
    dx = x - hd[0]
    dy = y - hd[1]
    r2 = dx * dx + dy * dy
    if r2 < hd[2] and (c * dx + s * dy) < hd[3] * math.sqrt(r2):
        return 0.0
    a = bilinear(fxx, x, y, 0.0)
    b = bilinear(fxy, x, y, 0.0)
    d = bilinear(fyy, x, y, 0.0)
    # n = (-s, c): f_nn = s^2 a - 2 s c b + c^2 d ; u = (c, s): f_uu = c^2 a + 2 c s b + s^2 d
    fnn = s * s * a - 2.0 * s * c * b + c * c * d
    fuu = c * c * a + 2.0 * c * s * b + s * s * d
    # a structure across u (a blob, a crossing line) takes away at most what the line gives:
    # a dark blob scores about 0, and so does a darker line crossing ours (a gap, not a wall)
    return fnn - min(max(fuu, 0.0), max(fnn, 0.0))


@njit(cache=True)
def _median(v):
    return np.median(v)


@njit(cache=True)
def _arcs(kmax, n_curv, look):
    """Arcs in the heading-0 frame: curvatures, offsets and directions after t unit steps
    (``2 look`` steps: the crossing test looks as far as an arc and its continuation)."""
    ox = np.zeros((n_curv, 2 * look + 1))
    oy = np.zeros((n_curv, 2 * look + 1))
    ks = np.zeros(n_curv)
    cka = np.ones((n_curv, 2 * look + 1))
    ska = np.zeros((n_curv, 2 * look + 1))
    for j in range(n_curv):
        k = -kmax + 2.0 * kmax * j / (n_curv - 1) if n_curv > 1 else 0.0
        ks[j] = k
        for t in range(1, 2 * look + 1):
            am = k * (t - 0.5)
            ox[j, t] = ox[j, t - 1] + math.cos(am)
            oy[j, t] = oy[j, t - 1] + math.sin(am)
            cka[j, t] = math.cos(k * t)
            ska[j, t] = math.sin(k * t)
    return ks, ox, oy, cka, ska


@njit(cache=True, fastmath=True)
def _arc_sum(fxx, fxy, fyy, zone, hd, x, y, ct, st, j, ox, oy, cka, ska, look, lim):
    """Raw and capped score sums along arc ``j`` from ``(x, y)`` with heading ``(ct, st)``."""
    tot = 0.0
    totc = 0.0
    for t in range(1, look + 1):
        px = x + ct * ox[j, t] - st * oy[j, t]
        py = y + st * ox[j, t] + ct * oy[j, t]
        ck = cka[j, t]
        sk = ska[j, t]
        v = _score(fxx, fxy, fyy, zone, hd, px, py, ct * ck - st * sk, st * ck + ct * sk)
        tot += v
        totc += min(v, lim)
    return tot, totc


@njit(cache=True, fastmath=True)
def _values(fxx, fxy, fyy, zone, hd, x, y, th, lim, pen_unit, ks, ox, oy, cka, ska, look, depth, bend_penalty,
            raw, both, val):
    """Per first arc ``j``: ``raw`` its mean raw score; ``both`` the mean raw score of it and its
    best continuation (a second arc whose curvature is within ``depth`` grid steps); ``val`` the
    capped value of the pair minus the continuation's bend penalty (raw units)."""
    n_curv = len(ks)
    ct = math.cos(th)
    st = math.sin(th)
    for j in range(n_curv):
        tot, totc = _arc_sum(fxx, fxy, fyy, zone, hd, x, y, ct, st, j, ox, oy, cka, ska, look, lim)
        raw[j] = tot / look
        ex = x + ct * ox[j, look] - st * oy[j, look]
        ey = y + st * ox[j, look] + ct * oy[j, look]
        th1 = th + ks[j] * look
        c1 = math.cos(th1)
        s1 = math.sin(th1)
        b2, r2 = -1e30, 0.0
        for d in range(-depth, depth + 1):
            j2 = j + d
            if j2 < 0 or j2 >= n_curv:
                continue
            t2, t2c = _arc_sum(fxx, fxy, fyy, zone, hd, ex, ey, c1, s1, j2, ox, oy, cka, ska, look, lim)
            v2 = t2c / look - bend_penalty * pen_unit * abs(ks[j2] - ks[j])
            if v2 > b2:
                b2, r2 = v2, t2 / look
        both[j] = 0.5 * (raw[j] + r2)
        val[j] = 0.5 * (totc / look + b2)


@njit(cache=True, fastmath=True)
def _across(fxx, fxy, fyy, zone, x, y, th, j, ox, oy, cka, ska, look):
    """The strongest dark structure *across* arc ``j`` (``max f_uu`` along it, noise units): a
    line crossing ours, or a blob on it. Only samples where the structure is more across the arc
    than along it count (``f_uu >= f_nn``: where the oriented line score calls it a gap): our own
    line bending away from the arc, seen obliquely (``f_uu / f_nn = tan^2`` of the angle, under 1
    below 45 degrees), is the line to follow round its bend, not a crossing to coast through."""
    ct = math.cos(th)
    st = math.sin(th)
    h, w = zone.shape
    best = 0.0
    for t in range(1, look + 1):
        px = x + ct * ox[j, t] - st * oy[j, t]
        py = y + st * ox[j, t] + ct * oy[j, t]
        if px < 0 or py < 0 or px > w - 1.001 or py > h - 1.001:
            continue
        c = ct * cka[j, t] - st * ska[j, t]
        s = st * cka[j, t] + ct * ska[j, t]
        a = bilinear(fxx, px, py, 0.0)
        b = bilinear(fxy, px, py, 0.0)
        d = bilinear(fyy, px, py, 0.0)
        fuu = c * c * a + 2.0 * c * s * b + s * s * d
        fnn = s * s * a - 2.0 * s * c * b + c * c * d
        if fuu >= fnn:
            best = max(best, fuu)
    return best


@njit(cache=True)
def _pick(both, val, ks, kprev, unit, recent, t_stop, keep_frac, dk_smooth, bend_penalty):
    """Best first arc, continuity first: among the smooth arcs (curvature within ``dk_smooth``
    of the current one) while one of them still sees the line (``both`` reaches ``t_stop`` and
    ``keep_frac`` of the recent step scores), else among all; value in level units minus the
    bend penalty."""
    n_curv = len(ks)
    smooth_ok = False
    for j in range(n_curv):
        if abs(ks[j] - kprev) <= dk_smooth and both[j] >= t_stop and both[j] >= keep_frac * recent:
            smooth_ok = True
    best, bj = -1e30, 0
    for j in range(n_curv):
        if smooth_ok and abs(ks[j] - kprev) > dk_smooth:
            continue
        v = val[j] / unit - bend_penalty * abs(ks[j] - kprev)
        if v > best:
            best, bj = v, j
    return bj


@njit(cache=True, fastmath=True)
def _trace(fxx, fxy, fyy, zone, hd, x0, y0, th0, look, kmax, n_curv, bend_penalty, t_stop, rel_stop, cap, gap,
           loop_px, loop_lag, max_len, margin, avg, level_len, leave, dk_smooth, keep_frac, depth, coast,
           keep_abs=np.inf):
    h, w = zone.shape
    xs = np.empty(max_len + 1)
    ys = np.empty(max_len + 1)
    sc = np.empty(max_len + 1)  # chosen arc's mean raw score per step
    cs = np.empty(max_len + 1)  # the same, capped at cap x level (what the support averages)
    xs[0] = x0
    ys[0] = y0
    sc[0] = 0.0
    cs[0] = 0.0
    x, y, th, kprev = x0, y0, th0, 0.0
    last_good = -1
    n = 1
    reason = 3
    left_own = False
    level = -1.0
    level_max = 0.0
    ks, ox, oy, cka, ska = _arcs(kmax, n_curv, look)
    raw = np.empty(n_curv)
    both = np.empty(n_curv)
    val = np.empty(n_curv)
    kk = np.zeros(max_len + 1)  # the curvature chosen at every step
    for i in range(max_len):
        lim = cap * level if level > 0 else 1e30
        _values(fxx, fxy, fyy, zone, hd, x, y, th, lim, level if level > 0 else 1.0, ks, ox, oy, cka, ska, look,
                depth, bend_penalty, raw, both, val)
        # the value is in units of the line's own level (before a level exists, the first
        # step's best pair of arcs sets the unit)
        unit = level if level > 0 else max(both.max(), t_stop, 1e-3)
        # the recent step scores, capped (a crossing line's spike would otherwise make our own
        # line look too faint to keep following)
        recent = 0.0
        if n > 1:
            lo = max(1, n - avg // 2)
            for m in range(lo, n):
                recent += cs[m]
            recent /= n - lo
        # continuity first: while an arc that keeps the current curvature (within dk_smooth)
        # still sees the line (over both arcs), the trace goes on smoothly: a crossing line,
        # however dark (capped at the level, it is worth no more than ours), is passed straight;
        # only when the line bends away from every smooth arc may the trace turn
        bj = _pick(both, val, ks, kprev, unit, recent, t_stop, keep_frac, dk_smooth, bend_penalty)
        # a dark structure across the way ahead (another tail crossing ours, a blob on it; not
        # our own line bending away, which lies more along the arc than across it): the
        # trace coasts through it on its current curvature rather than turn onto it
        # (on the curvature it had before the crossing pulled it: the median of the last steps)
        if level > 0 and coast > 0 and n > avg:
            kc = _median(kk[n - avg:n])
            jc = int(round((kc + kmax) / (2.0 * kmax) * (n_curv - 1)))
            jc = min(max(jc, 0), n_curv - 1)
            if _across(fxx, fxy, fyy, zone, x, y, th, jc, ox, oy, cka, ska, 2 * look) >= coast * max(level, 4.0 * t_stop):
                bj = jc
        kk[n] = ks[bj]
        bk = ks[bj]
        sc[n] = raw[bj]
        cs[n] = min(raw[bj], lim)
        # the running level: median step score over the last level_len steps
        lo = max(1, n - level_len + 1)
        level = max(_median(sc[lo:n + 1]), 1e-3)
        if n >= min(level_len, 6):
            level_max = max(level_max, level)
        # support: the capped step scores averaged over the last `avg` steps
        lo = max(1, n - avg + 1)
        support = 0.0
        for m in range(lo, n + 1):
            support += cs[m]
        support /= n + 1 - lo
        am = th + 0.5 * bk
        x += math.cos(am)
        y += math.sin(am)
        th += bk
        kprev = bk
        xs[n] = x
        ys[n] = y
        n += 1
        xi = int(x + 0.5)
        yi = int(y + 0.5)
        zv = zone[min(max(yi, 0), h - 1), min(max(xi, 0), w - 1)]
        if support >= t_stop and (support >= rel_stop * level_max or support >= keep_abs):
            last_good = n - 1
        elif last_good >= 0 and (n - 1 - last_good) > gap:
            reason = 0
            break
        elif last_good < 0 and n - 1 > 2 * gap:
            reason = 0
            break
        # a line that had already faded (no support for a few px) when the trace reached the
        # border or another cell ended before them
        fading = last_good >= 0 and n - 1 - last_good >= 2
        if x < margin or y < margin or x > w - 1 - margin or y > h - 1 - margin or zv == 3:
            # the window's border, or the frame's (the window reaches beyond the frame)
            if fading:
                reason = 0
            else:
                reason = 1
                last_good = n - 1
            break
        if zv == 2:
            if left_own or n - 1 > leave:
                # back into its own head's zone (round the halo), or never out of it
                reason = 0 if fading else 4
                last_good = min(last_good, n - 2)
                break
        else:
            left_own = True
        if zv == 1:
            # into another cell's head (or its halo): it was following that cell's tail
            reason = 0 if fading else 5
            last_good = min(last_good, n - 2)
            break
        # a loop: back within loop_px of a point at least loop_lag steps behind
        looped = False
        for m in range(0, n - 1 - loop_lag):
            if (xs[m] - x) ** 2 + (ys[m] - y) ** 2 < loop_px * loop_px:
                looped = True
                break
        if looped:
            reason = 2
            last_good = n - 1
            break
    return xs[:n], ys[:n], sc[:n], last_good, reason, level_max


@dataclass
class Trace:
    """A traced centre line: ``path (n, 2)`` x, y from the start, ``score (n,)`` per step (raw
    mean arc score, noise units), ``reason`` why it stopped (``STOP_*``), ``level`` (the line's
    strongest running level, noise units)."""

    path: np.ndarray
    score: np.ndarray
    reason: int
    level: float = float("nan")

    @property
    def looped(self) -> bool:
        return self.reason == STOP_LOOP

    @property
    def at_border(self) -> bool:
        return self.reason == STOP_BORDER

    @property
    def stop(self) -> str:
        return STOP_NAMES[self.reason]


@njit(cache=True)
def _null(fxx, fxy, fyy, zone, hd, xs, ys, ths, look, kmax, n_curv, bend_penalty, cap, length, avg, level_len,
          dk_smooth, keep_frac):
    out = np.empty(len(xs))
    for i in range(len(xs)):
        _, _, sc, _, _, _ = _trace(fxx, fxy, fyy, zone, hd, xs[i], ys[i], ths[i], look, kmax, n_curv, bend_penalty,
                                   -1e9, 0.0, cap, length, 0.0, 0, length, 1.5, avg, level_len, length, dk_smooth,
                                   keep_frac, 0, 0.0)
        out[i] = np.median(sc[4:]) if len(sc) > 4 else np.nan
    return out


#: first draws of :func:`null_level` per (w, h, m, n, seed): the same every call (fixed seed), so
#: drawn once; with the generator's state after them, to go on drawing exactly as before
_NULL_DRAWS: dict = {}


def _null_draws(w: int, h: int, m: int, n: int, seed: int):
    """``(xs, ys, ths, state)``: copies of the first draws of a ``default_rng(seed)`` (see
    :func:`null_level`) and the generator's state right after them (to draw on exactly as a fresh
    generator would)."""
    key = (int(w), int(h), int(m), int(n), int(seed))
    got = _NULL_DRAWS.get(key)
    if got is None:
        rng = np.random.default_rng(seed)
        xs = rng.uniform(m, max(w - 1 - m, m + 1), n)
        ys = rng.uniform(m, max(h - 1 - m, m + 1), n)
        ths = rng.uniform(-np.pi, np.pi, n)
        got = (xs, ys, ths, rng.bit_generator.state)
        if len(_NULL_DRAWS) > 64:
            _NULL_DRAWS.clear()
        _NULL_DRAWS[key] = got
    return got[0].copy(), got[1].copy(), got[2].copy(), got[3]


def null_level(maps, zone: np.ndarray, p: TraceParams, n: int = 4, length: int = 16, seed: int = 0) -> float:
    """What the tracker reads where there is no line: the median step score of ``n`` short
    traces (``length`` px, never stopped for lack of support, one arc of look-ahead) from fixed
    pseudo-random points and headings of the window (away from its border). The tracker picks
    the best arc at every step, so even in pure noise its step scores are positive; a trace's
    contrast is read against this level (in Gaussian noise and on a real window full of debris
    rims and halo rings alike)."""
    fxx, fxy, fyy = maps
    h, w = zone.shape
    m = 2 * p.look + 2
    xs, ys, ths, state = _null_draws(w, h, m, n, seed)
    rng = None
    # points beyond the frame (``zone == BORDER``) are drawn again
    for _ in range(8):
        bad = zone[np.round(ys).astype(np.int64), np.round(xs).astype(np.int64)] == BORDER
        if not bad.any():
            break
        if rng is None:
            rng = np.random.default_rng(seed)
            rng.bit_generator.state = state
        xs[bad] = rng.uniform(m, max(w - 1 - m, m + 1), int(bad.sum()))
        ys[bad] = rng.uniform(m, max(h - 1 - m, m + 1), int(bad.sum()))
    hd = np.array([0.0, 0.0, -1.0, 0.0])
    v = _null(fxx, fxy, fyy, np.ascontiguousarray(zone, dtype=np.uint8), hd, xs, ys, ths, int(p.look), float(p.kmax),
              int(p.n_curv), float(p.bend_penalty), float(p.cap), int(length), int(p.avg), int(p.level_len),
              float(p.dk_smooth), float(p.keep_frac))
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else float("nan")


def trace_tail(maps: tuple[np.ndarray, np.ndarray, np.ndarray], zone: np.ndarray, start_xy, heading: float,
               p: TraceParams, head=None) -> Trace:
    """Follow the dark line that leaves ``start_xy`` along ``heading`` (radians, image axes).

    ``zone``: ``uint8`` map, ``FREE`` (0), ``OTHER`` (1: other heads, debris and their halos;
    score 0, entering one stops the trace), ``OWN`` (2: the own head and its halo; the trace
    must leave it within ``leave`` px and never come back) or ``BORDER`` (3: beyond the frame;
    score 0, reaching it stops the trace like the window's border). A boolean map is read as OTHER.
    ``head``: ``(cx, cy, r_near)``: within ``r_near`` px of the own head's centre, only directions
    within ``away_deg`` of the way out of it score (the halo's rings are not followed)."""
    fxx, fxy, fyy = maps
    zone = np.ascontiguousarray(zone, dtype=np.uint8)
    if head is None:
        hd = np.array([0.0, 0.0, -1.0, 0.0])
    else:
        hd = np.array([float(head[0]), float(head[1]), float(head[2]) ** 2, float(np.cos(np.radians(p.away_deg)))])
    xs, ys, sc, last, reason, level = _trace(fxx, fxy, fyy, zone, hd, float(start_xy[0]), float(start_xy[1]),
                                             float(heading), int(p.look), float(p.kmax), int(p.n_curv),
                                             float(p.bend_penalty), float(p.t_stop), float(p.rel_stop),
                                             float(p.cap), int(p.gap), float(p.loop_px), int(p.loop_lag),
                                             int(p.max_len), 1.5, int(p.avg), int(p.level_len), int(p.leave),
                                             float(p.dk_smooth), float(p.keep_frac), int(p.depth), float(p.coast),
                                             float(p.keep_abs))
    if last < 1:
        return Trace(np.stack([xs[:1], ys[:1]], axis=1), sc[:1], reason, float(level))
    end = last
    if reason == STOP_FADED:
        # the support averages `avg` steps back and each step's arc sees `look` px ahead: the
        # line ends about look/2 - avg/2 px from the last supported step
        end = int(np.clip(last + (p.look - p.avg) // 2, 1, len(xs) - 1))
    return Trace(np.stack([xs[:end + 1], ys[:end + 1]], axis=1), sc[:end + 1], reason, float(level))
