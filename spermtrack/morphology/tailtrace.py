"""Tail tracing: an oriented ridge map and a curvature-continuous tracker (numba).

The principal piece is a thin, dark, faint line (about one pixel at 0.5 um/px, a few noise
levels deep, fainter toward the tip). Thresholding a ridge map and walking its skeleton stops
at every noise gap, at crossings with other tails and at self-crossing loops. Here the tail is
*followed* instead:

1. Ridge maps: second derivatives ``f_xx, f_xy, f_yy`` of the window smoothed at ``sigma``
   (about 0.5 um), in robust noise units (MAD of ``f_xx``). For a direction ``u`` with normal
   ``n`` the oriented line score is ``s(u) = f_nn - max(f_uu, 0)``: a dark line across ``n`` is
   positive, a dark blob (``f_uu`` as large as ``f_nn``) scores about zero, a smooth background
   gradient scores zero.
2. Tracker: from the head's rear tip along the head axis, one pixel per step. Every step tries
   ``n_curv`` circular arcs (curvatures ``-kmax..kmax`` per px) of ``look`` px ahead and takes
   the one whose mean score, minus a penalty on the change of curvature, is highest. Because
   arcs keep the current heading and curvature, a crossing tail (which only adds a few samples
   off the arc) is passed straight and a coil is followed round.
3. Stop: a step is *supported* when its arc's mean score reaches ``t_stop``; after ``gap`` px
   without support the trace stops and is cut back to the last supported step plus half the
   look-ahead (the arc that was still supported saw that far). Blocked pixels (other heads,
   bright debris and their halos) score zero.
4. Loop: when the trace comes back within ``loop_px`` of a point at least ``loop_lag`` px
   behind it, the tail has looped on itself (coiled): the trace stops there and says so (the
   overlapping turns of a coil cannot be told apart, so its length is a lower bound).

All coordinates are ``(x, y)`` pixel centres of the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numba import njit

from spermtrack.sampling import bilinear

#: Stop reasons returned by :func:`trace_tail`.
STOP_FADED, STOP_BORDER, STOP_LOOP, STOP_MAX = 0, 1, 2, 3


@dataclass(frozen=True)
class TraceParams:
    """Knobs of the tracker (pixels of the window; the segmenter converts from um).

    Attributes:
        sigma: smoothing of the ridge maps (px).
        look: look-ahead arc length (px).
        kmax: largest curvature tried (1/px; 0.3 follows a 3.3-px radius coil).
        n_curv: number of curvatures tried per step.
        bend_penalty: score units per unit change of curvature (1/px) between steps.
        t_stop: least mean arc score (noise units) that supports a step.
        gap: px without support after which the trace stops.
        loop_px, loop_lag: loop test (see module docstring).
        max_len: longest trace (px).
    """

    sigma: float = 1.0
    look: int = 6
    kmax: float = 0.3
    n_curv: int = 13
    bend_penalty: float = 4.0
    t_stop: float = 1.2
    gap: int = 8
    loop_px: float = 1.6
    loop_lag: int = 16
    max_len: int = 400
    avg: int = 8


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
    return fxx * inv, fxy * inv, fyy * inv


@njit(cache=True, fastmath=True)
def _score(fxx, fxy, fyy, blocked, x, y, c, s):
    """Oriented line score at ``(x, y)`` for the unit direction ``(c, s)``."""
    h, w = blocked.shape
    xi = int(x + 0.5)
    yi = int(y + 0.5)
    if xi < 0 or yi < 0 or xi >= w or yi >= h or blocked[yi, xi]:
        return 0.0
    a = bilinear(fxx, x, y, 0.0)
    b = bilinear(fxy, x, y, 0.0)
    d = bilinear(fyy, x, y, 0.0)
    # n = (-s, c): f_nn = s^2 a - 2 s c b + c^2 d ; u = (c, s): f_uu = c^2 a + 2 c s b + s^2 d
    fnn = s * s * a - 2.0 * s * c * b + c * c * d
    fuu = c * c * a + 2.0 * c * s * b + s * s * d
    return fnn - max(fuu, 0.0)


@njit(cache=True, fastmath=True)
def _trace(fxx, fxy, fyy, blocked, x0, y0, th0, look, kmax, n_curv, bend_penalty, t_stop, gap,
           loop_px, loop_lag, max_len, margin, avg):
    h, w = blocked.shape
    xs = np.empty(max_len + 1)
    ys = np.empty(max_len + 1)
    sc = np.empty(max_len + 1)
    xs[0] = x0
    ys[0] = y0
    sc[0] = 0.0
    x, y, th, kprev = x0, y0, th0, 0.0
    last_good = -1
    n = 1
    reason = 3
    # arcs in the heading-0 frame: offsets and directions after t unit steps at curvature k
    ox = np.zeros((n_curv, look + 1))
    oy = np.zeros((n_curv, look + 1))
    ks = np.zeros(n_curv)
    cka = np.ones((n_curv, look + 1))
    ska = np.zeros((n_curv, look + 1))
    for j in range(n_curv):
        k = -kmax + 2.0 * kmax * j / (n_curv - 1) if n_curv > 1 else 0.0
        ks[j] = k
        for t in range(1, look + 1):
            am = k * (t - 0.5)
            ox[j, t] = ox[j, t - 1] + math.cos(am)
            oy[j, t] = oy[j, t - 1] + math.sin(am)
            cka[j, t] = math.cos(k * t)
            ska[j, t] = math.sin(k * t)
    for i in range(max_len):
        best, bk = -1e30, 0.0
        ct = math.cos(th)
        st = math.sin(th)
        for j in range(n_curv):
            k = ks[j]
            tot = 0.0
            for t in range(1, look + 1):
                px = x + ct * ox[j, t] - st * oy[j, t]
                py = y + st * ox[j, t] + ct * oy[j, t]
                ck = cka[j, t]
                sk = ska[j, t]
                tot += _score(fxx, fxy, fyy, blocked, px, py, ct * ck - st * sk, st * ck + ct * sk)
            v = tot / look - bend_penalty * abs(k - kprev)
            if v > best:
                best, bk = v, k
        sc[n] = best + bend_penalty * abs(bk - kprev)
        # support: the step scores averaged over the last `avg` steps (one arc's max over the
        # curvatures is noise-biased; averaging narrows its spread so the faint tip still passes)
        lo = max(1, n - avg + 1)
        support = 0.0
        for m in range(lo, n + 1):
            support += sc[m]
        support /= n + 1 - lo
        am = th + 0.5 * bk
        x += math.cos(am)
        y += math.sin(am)
        th += bk
        kprev = bk
        xs[n] = x
        ys[n] = y
        n += 1
        if support >= t_stop:
            last_good = n - 1
        elif last_good >= 0 and (n - 1 - last_good) > gap:
            reason = 0
            break
        elif last_good < 0 and n - 1 > 2 * gap:
            reason = 0
            break
        if x < margin or y < margin or x > w - 1 - margin or y > h - 1 - margin:
            reason = 1
            last_good = n - 1
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
    return xs[:n], ys[:n], sc[:n], last_good, reason


@dataclass
class Trace:
    """A traced centre line: ``path (n, 2)`` x, y from the start, ``score (n,)`` per step,
    ``reason`` why it stopped (``STOP_*``), ``looped`` (coiled)."""

    path: np.ndarray
    score: np.ndarray
    reason: int

    @property
    def looped(self) -> bool:
        return self.reason == STOP_LOOP

    @property
    def at_border(self) -> bool:
        return self.reason == STOP_BORDER


def trace_tail(maps: tuple[np.ndarray, np.ndarray, np.ndarray], blocked: np.ndarray, start_xy, heading: float,
               p: TraceParams) -> Trace:
    """Follow the dark line that leaves ``start_xy`` along ``heading`` (radians, image axes)."""
    fxx, fxy, fyy = maps
    xs, ys, sc, last, reason = _trace(fxx, fxy, fyy, blocked, float(start_xy[0]), float(start_xy[1]),
                                      float(heading), int(p.look), float(p.kmax), int(p.n_curv),
                                      float(p.bend_penalty), float(p.t_stop), int(p.gap), float(p.loop_px),
                                      int(p.loop_lag), int(p.max_len), 1.5, int(p.avg))
    if last < 1:
        return Trace(np.c_[xs[:1], ys[:1]], sc[:1], reason)
    end = last
    if reason == STOP_FADED:
        # the support averages `avg` steps back and each step's arc sees `look` px ahead: the
        # line ends about look/2 - avg/2 px from the last supported step
        end = int(np.clip(last + (p.look - p.avg) // 2, 1, len(xs) - 1))
    return Trace(np.c_[xs[:end + 1], ys[:end + 1]], sc[:end + 1], reason)
