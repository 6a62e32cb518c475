"""Sperm-vs-debris cues of :class:`~spermtrack.detect.blob.BlobDetector` (numba, per candidate).

A borderline candidate (its blob score near the threshold) is either a faint sperm head or a
bright debris disc. Sperm heads are elongated, carry a dark midpiece and tail on *one* end and a
deep dark phase-contrast halo; debris discs are round, symmetric and have a weaker halo. Two cues
measure this on the lightly smoothed evidence map ``zs`` (z units), sampled bilinearly around the
candidate's sub-pixel centre, only for the few borderline candidates:

- ``oriented``: ``max`` over ``n_angles`` directions ``theta`` of
  ``mean zs along the axis (|u| <= half_len) - mean zs across it (|v| <= half_width)``
  ``+ |mean zs on the segment u in [m0, m1] - mean zs on u in [-m1, -m0]|``.
  The first term is large for an elongated bright blob with a dark halo at its sides (a disc
  scores ~0 in every direction); the second is the one-sidedness of the dark midpiece and
  proximal tail (a symmetric disc scores ~0, up to noise).
- ``ring_min``: the darkest ``zs`` on rings of radius ``r0..r1`` px (24 directions): the head's
  halo and midpiece are darker than a debris halo.

Samples outside the frame are skipped (a cue near the border uses what is visible).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from spermtrack.sampling import bilinear


@njit(cache=True, fastmath=True)
def _segment_mean(zs, x, y, c, s, k0, k1):
    tot = 0.0
    cnt = 0
    for k in range(k0, k1 + 1):
        v = bilinear(zs, x + k * c, y + k * s, np.nan)
        if not math.isnan(v):
            tot += v
            cnt += 1
    return tot / cnt if cnt else np.nan


@njit(cache=True, fastmath=True)
def sperm_cues(zs, xs, ys, n_angles, half_len, half_width, m0, m1, r0, r1):
    """``(n, 2)`` float64: ``oriented`` and ``ring_min`` of each candidate (see module doc)."""
    n = len(xs)
    out = np.full((n, 2), np.nan)
    for i in range(n):
        x = xs[i]
        y = ys[i]
        best = -1e30
        for j in range(n_angles):
            th = math.pi * j / n_angles
            c = math.cos(th)
            s = math.sin(th)
            along = _segment_mean(zs, x, y, c, s, -half_len, half_len)
            across = _segment_mean(zs, x, y, -s, c, -half_width, half_width)
            fwd = _segment_mean(zs, x, y, c, s, m0, m1)
            back = _segment_mean(zs, x, y, c, s, -m1, -m0)
            if math.isnan(along) or math.isnan(across):
                continue
            side = abs(fwd - back) if not (math.isnan(fwd) or math.isnan(back)) else 0.0
            v = along - across + side
            if v > best:
                best = v
        if best > -1e30:
            out[i, 0] = best
        mn = 1e30
        for k in range(24):
            th = 2.0 * math.pi * k / 24
            for r in range(r0, r1 + 1):
                v = bilinear(zs, x + r * math.cos(th), y + r * math.sin(th), np.nan)
                if not math.isnan(v) and v < mn:
                    mn = v
        if mn < 1e30:
            out[i, 1] = mn
    return out
