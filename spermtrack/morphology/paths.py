"""Curve helpers shared by the segmenters: skeleton graphs, longest paths, resampling.

A path is an ``(n, 2)`` float array of ``(x, y)`` crop coordinates (pixel centres), ordered.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

_NB = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
_NB_LEN = np.hypot(_NB[:, 0], _NB[:, 1])


def skeleton_graph(skel: np.ndarray) -> tuple[np.ndarray, coo_matrix]:
    """Pixels ``(m, 2)`` as ``(row, col)`` and their 8-neighbour graph (edge weight = step length)."""
    rc = np.argwhere(skel)
    m = len(rc)
    if m == 0:
        return rc, coo_matrix((0, 0))
    h, w = skel.shape
    index = np.full((h + 2, w + 2), -1, np.int64)
    index[rc[:, 0] + 1, rc[:, 1] + 1] = np.arange(m)
    src, dst, wt = [], [], []
    for (dr, dc), ln in zip(_NB, _NB_LEN):
        nb = index[rc[:, 0] + 1 + dr, rc[:, 1] + 1 + dc]
        ok = nb >= 0
        src.append(np.flatnonzero(ok))
        dst.append(nb[ok])
        wt.append(np.full(int(ok.sum()), ln))
    g = coo_matrix((np.concatenate(wt), (np.concatenate(src), np.concatenate(dst))), shape=(m, m))
    return rc, g


def farthest_path(rc: np.ndarray, graph, start: int) -> tuple[np.ndarray, float]:
    """Geodesic path (as ``(x, y)`` points) from node ``start`` to the node farthest from it."""
    dist, pred = dijkstra(graph.tocsr(), indices=start, return_predecessors=True)
    dist = np.where(np.isfinite(dist), dist, -1.0)
    tip = int(np.argmax(dist))
    nodes = [tip]
    while nodes[-1] != start and pred[nodes[-1]] >= 0:
        nodes.append(int(pred[nodes[-1]]))
    nodes.reverse()
    pts = rc[np.array(nodes)][:, ::-1].astype(np.float64)
    return pts, float(dist[tip])


def smooth_path(pts: np.ndarray, window: int = 5) -> np.ndarray:
    """Moving average of an ordered pixel path (end points kept), which removes the staircase
    of 8-connected pixels that would otherwise inflate lengths by up to 8 %."""
    n = len(pts)
    if n < 3 or window < 2:
        return pts.astype(np.float64)
    k = min(window, n if n % 2 else n - 1)
    half = k // 2
    pad = np.concatenate([np.repeat(pts[:1], half, 0), pts, np.repeat(pts[-1:], half, 0)]).astype(np.float64)
    c = np.cumsum(np.vstack([np.zeros((1, 2)), pad]), axis=0)
    out = (c[k:] - c[:-k]) / k
    out[0], out[-1] = pts[0], pts[-1]
    return out


def arc_length(pts: np.ndarray) -> float:
    if len(pts) < 2:
        return 0.0
    return float(np.hypot(*np.diff(pts, axis=0).T).sum())


def _zero_then(a: np.ndarray) -> np.ndarray:
    """``np.r_[0.0, a]`` for a 1-D array (same dtype rule), without ``np.r_``'s overhead."""
    out = np.empty(len(a) + 1, np.result_type(a.dtype, 0.0))
    out[0] = 0.0
    out[1:] = a
    return out


def cumulative(pts: np.ndarray) -> np.ndarray:
    if len(pts) == 0:
        return np.zeros(0)
    return _zero_then(np.cumsum(np.hypot(*np.diff(pts, axis=0).T)))


def resample(pts: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along the polyline (first and last kept)."""
    s = cumulative(pts)
    if len(pts) < 2 or s[-1] <= 0:
        return pts.astype(np.float64)
    n = max(int(np.ceil(s[-1] / step)), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], axis=1)


def cut_at(pts: np.ndarray, s_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a polyline at arc length ``s_cut``: ``(before, after)``, both containing the cut point."""
    s = cumulative(pts)
    s_cut = float(np.clip(s_cut, 0.0, s[-1] if len(s) else 0.0))
    p = np.array([np.interp(s_cut, s, pts[:, 0]), np.interp(s_cut, s, pts[:, 1])])
    i = int(np.searchsorted(s, s_cut, side="right"))
    return np.vstack([pts[:i], p[None]]), np.vstack([p[None], pts[i:]])


def turning(pts: np.ndarray, step: float) -> tuple[float, float, float]:
    """``(net turning, absolute turning, sharpest bend)`` in degrees of a polyline.

    Headings are taken every ``step`` along the curve; the net turning is the absolute value of
    the summed signed heading changes (360 per full loop), the absolute turning sums their
    magnitudes (every wiggle counts), the sharpest bend is the largest heading change between
    consecutive ``step``-long chords.
    """
    q = resample(pts, step)
    if len(q) < 3:
        return 0.0, 0.0, 0.0
    d = np.diff(q, axis=0)
    th = np.arctan2(d[:, 1], d[:, 0])
    dth = np.angle(np.exp(1j * np.diff(th)))
    return float(abs(np.degrees(dth.sum()))), float(np.degrees(np.abs(dth).sum())), float(np.degrees(np.abs(dth).max()))


def bilinear(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Sample ``img`` at float ``(x, y)`` points (clamped to the image)."""
    return bilinear_many((img,), pts)[0]


def bilinear_many(imgs, pts: np.ndarray) -> list[np.ndarray]:
    """Sample each of several same-shaped images at float ``(x, y)`` points (clamped to the
    image): the indices and weights are computed once for all of them."""
    h, w = imgs[0].shape
    x = np.minimum(np.maximum(pts[:, 0], 0.0), w - 1.001)
    y = np.minimum(np.maximum(pts[:, 1], 0.0), h - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = x - x0, y - y0
    gx, gy = 1 - fx, 1 - fy
    x1, y1 = x0 + 1, y0 + 1
    out = []
    for img in imgs:
        if img.shape != (h, w):
            raise ValueError(f"bilinear_many: image shape {img.shape} differs from the first image's {(h, w)}")
        out.append((img[y0, x0] * gx + img[y0, x1] * fx) * gy + (img[y1, x0] * gx + img[y1, x1] * fx) * fy)
    return out


def step_split(profile: np.ndarray, min_len: int = 3) -> tuple[int, float, float, float]:
    """Best single step of a 1-D profile (least squares): ``(index, mean before, mean after, t)``.

    ``index`` is the first sample of the second part; ``t`` is the step over its standard
    error (from the residual scatter), so a caller can reject steps that noise explains.
    """
    n = len(profile)
    if n < 2 * min_len:
        return -1, np.nan, np.nan, 0.0
    c = _zero_then(np.cumsum(profile))
    c2 = _zero_then(np.cumsum(profile ** 2))
    k = np.arange(min_len, n - min_len + 1)
    m1, m2 = c[k] / k, (c[n] - c[k]) / (n - k)
    sse = (c2[k] - k * m1 ** 2) + (c2[n] - c2[k] - (n - k) * m2 ** 2)
    j = int(np.argmin(sse))
    kk = int(k[j])
    sd = np.sqrt(max(sse[j], 1e-12) / max(n - 2, 1))
    t = (m1[j] - m2[j]) / (sd * np.sqrt(1.0 / kk + 1.0 / (n - kk)))
    return kk, float(m1[j]), float(m2[j]), float(t)
