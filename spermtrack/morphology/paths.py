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


def cumulative(pts: np.ndarray) -> np.ndarray:
    if len(pts) == 0:
        return np.zeros(0)
    return np.r_[0.0, np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]


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
    h, w = img.shape
    x = np.clip(pts[:, 0], 0, w - 1.001)
    y = np.clip(pts[:, 1], 0, h - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = x - x0, y - y0
    return ((img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy)
            + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy)


def step_split(profile: np.ndarray, min_len: int = 3) -> tuple[int, float, float, float]:
    """Best single step of a 1-D profile (least squares): ``(index, mean before, mean after, t)``.

    ``index`` is the first sample of the second part; ``t`` is the step over its standard
    error (from the residual scatter), so a caller can reject steps that noise explains.
    """
    n = len(profile)
    if n < 2 * min_len:
        return -1, np.nan, np.nan, 0.0
    c = np.r_[0.0, np.cumsum(profile)]
    c2 = np.r_[0.0, np.cumsum(profile ** 2)]
    k = np.arange(min_len, n - min_len + 1)
    m1, m2 = c[k] / k, (c[n] - c[k]) / (n - k)
    sse = (c2[k] - k * m1 ** 2) + (c2[n] - c2[k] - (n - k) * m2 ** 2)
    j = int(np.argmin(sse))
    kk = int(k[j])
    sd = np.sqrt(max(sse[j], 1e-12) / max(n - 2, 1))
    t = (m1[j] - m2[j]) / (sd * np.sqrt(1.0 / kk + 1.0 / (n - kk)))
    return kk, float(m1[j]), float(m2[j]), float(t)


def trace(skel: np.ndarray, start: tuple[int, int], direction: np.ndarray, gap_px: float = 6.0,
          lookahead: int = 6, max_steps: int = 2000) -> np.ndarray:
    """Follow a skeleton from ``start (row, col)`` keeping the most direction-continuous branch.

    At a junction (another cell's tail crossing, a spur) each unvisited branch is followed
    ``lookahead`` px and the one whose heading best continues the current one wins; at an end,
    a gap of up to ``gap_px`` is bridged to an unvisited skeleton pixel within 45 degrees of the
    heading. Returns the ordered ``(x, y)`` points (pixel centres).
    """
    h, w = skel.shape
    sk = np.pad(skel.astype(bool), 1)
    seen = np.zeros_like(sk)
    r, c = start[0] + 1, start[1] + 1
    dvec = np.asarray(direction, np.float64)
    dvec = dvec / max(np.hypot(*dvec), 1e-9)
    pts = [(c - 1, r - 1)]
    seen[r, c] = True
    gr = int(np.ceil(gap_px))
    for _ in range(max_steps):
        nb = [(r + dr, c + dc) for dr, dc in _NB if sk[r + dr, c + dc] and not seen[r + dr, c + dc]]
        if len(nb) > 1:
            best, best_cos = None, -2.0
            for q in nb:
                end, steps = _walk(sk, seen, q, (r, c), lookahead)
                v = np.array([end[1] - c, end[0] - r], np.float64)
                # a spur that dies within the look-ahead is worth less than a branch that goes on
                cs = (v @ dvec / max(np.hypot(*v), 1e-9)) * (0.25 + 0.75 * steps / lookahead)
                if cs > best_cos:
                    best, best_cos = q, cs
            nxt = best if best_cos >= 0.4 else None
        elif nb:
            nxt = nb[0]
        else:
            nxt = None
        if nxt is None:
            r0, r1, c0, c1 = max(r - gr, 1), min(r + gr + 1, h + 1), max(c - gr, 1), min(c + gr + 1, w + 1)
            win = sk[r0:r1, c0:c1] & ~seen[r0:r1, c0:c1]
            cand = np.argwhere(win)
            if len(cand) == 0:
                break
            v = np.c_[cand[:, 1] + c0 - c, cand[:, 0] + r0 - r].astype(np.float64)
            dist = np.hypot(v[:, 0], v[:, 1])
            cs = (v @ dvec) / np.maximum(dist, 1e-9)
            ok = (dist <= gap_px) & (cs > 0.7)
            if not ok.any():
                break
            j = int(np.argmin(np.where(ok, dist * (2.0 - cs), np.inf)))
            nxt = (int(cand[j, 0] + r0), int(cand[j, 1] + c0))
        # the branches not taken (or the other pixels of a 2-px-thick spot) are spent
        for q in nb:
            seen[q] = True
        r, c = nxt
        seen[r, c] = True
        pts.append((c - 1, r - 1))
        # heading over the last 8 px: one-pixel jogs and spur steps barely move it
        k = max(len(pts) - 9, 0)
        v = np.array([pts[-1][0] - pts[k][0], pts[-1][1] - pts[k][1]], np.float64)
        if len(pts) - k >= 4 and np.hypot(*v) > 0:
            dvec = v / np.hypot(*v)
    return np.asarray(pts, np.float64)


def _walk(sk: np.ndarray, seen: np.ndarray, q: tuple[int, int], prev: tuple[int, int],
          n: int) -> tuple[tuple[int, int], int]:
    """Greedy walk of ``n`` px from ``q`` (away from ``prev``) without marking anything."""
    visited = {prev, q}
    r, c = q
    steps = 1
    for _ in range(n - 1):
        nb = [(r + dr, c + dc) for dr, dc in _NB if sk[r + dr, c + dc] and not seen[r + dr, c + dc]
              and (r + dr, c + dc) not in visited]
        if not nb:
            break
        r, c = nb[0]
        visited.add((r, c))
        steps += 1
    return (r, c), steps


_K8 = np.ones((3, 3), np.float32)


def prune(skel: np.ndarray, n: int) -> np.ndarray:
    """Remove side spurs up to ``n`` px from a skeleton, keeping the main branches' full length.

    Endpoints are peeled ``n`` times, then the surviving ends grow back ``n`` px along the
    original skeleton (spurs hang off junctions, which never become ends, so they stay gone).
    """
    import cv2

    a = skel.astype(np.uint8)
    x = a.copy()
    for _ in range(n):
        nb = cv2.filter2D(x, -1, _K8, borderType=cv2.BORDER_CONSTANT) - x
        x = x & ~((nb <= 1) & (x > 0)).astype(np.uint8)
    nb = cv2.filter2D(x, -1, _K8, borderType=cv2.BORDER_CONSTANT) - x
    grow = ((nb == 1) & (x > 0)).astype(np.uint8)
    kept = x.copy()
    for _ in range(n):
        grow = cv2.dilate(grow, _K8.astype(np.uint8)) & a & ~kept
        kept |= grow
    return kept > 0
