"""The morphology stage's fast paths give exactly what the straightforward code they replace gave
(the reference implementations are kept here, as they were in the package)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spermtrack.morphology import classical as C
from spermtrack.morphology import morphometry as MM
from spermtrack.morphology import paths as P
from spermtrack.morphology import tailtrace as T
from spermtrack.morphology.crops import CropParams, cut_crop, cut_window


def _cut_window_ref(gray, x, y, angle, params):
    win = cut_crop(gray, x, y, angle, params)
    w, h = params.wh
    au, av = params.anchor_uv
    c, s = np.cos(angle), np.sin(angle)
    du = np.arange(w, dtype=np.float64) - au
    dv = np.arange(h, dtype=np.float64) - av
    fx = x + c * du[None, :] - s * dv[:, None]
    fy = y + s * du[None, :] + c * dv[:, None]
    fh, fw = gray.shape[:2]
    out = (fx < -0.5) | (fy < -0.5) | (fx > fw - 0.5) | (fy > fh - 0.5)
    np.maximum(win, 1, out=win)
    win[out] = 0
    return win


def _path_gap_ref(a, b):
    if len(a) > len(b):
        a, b = b, a
    best = np.inf
    for t in np.radians(np.linspace(-MM.VIEW_TURN_DEG, MM.VIEW_TURN_DEG, 11)):
        c, s = np.cos(t), np.sin(t)
        r = np.c_[c * a[:, 0] - s * a[:, 1], s * a[:, 0] + c * a[:, 1]]
        d = np.sqrt(((r[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)
        best = min(best, float(np.quantile(d, 0.9)))
    return best


def _insertion_ref(contour, path, halo):
    ring = P.resample(np.vstack([contour, contour[:1]]), 0.25)
    d = np.sqrt(((path[:, None, :] - ring[None, :, :]) ** 2).sum(-1)).min(axis=1)
    far = np.flatnonzero(d >= halo)
    q = path[far[0]] if len(far) else path[-1]
    return ring[int(np.argmin(np.hypot(ring[:, 0] - q[0], ring[:, 1] - q[1])))].copy()


def test_cut_window_matches_reference_inside_and_across_the_border():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    p = CropParams(size=(61, 45), anchor=0.4)
    for x, y in [(80.0, 60.0), (3.2, 60.0), (156.7, 5.1), (80.0, 118.4), (30.5, 40.2), (-0.4, 119.4)]:
        for angle in rng.uniform(-np.pi, np.pi, 6):
            got, ref = cut_window(gray, x, y, angle, p), _cut_window_ref(gray, x, y, angle, p)
            assert np.array_equal(got, ref), (x, y, angle)


def test_path_gap_matches_reference():
    rng = np.random.default_rng(2)
    for n, m in [(2, 2), (5, 40), (60, 17), (33, 33)]:
        a = np.cumsum(rng.normal(0, 1, (n, 2)), axis=0)
        b = np.cumsum(rng.normal(0, 1, (m, 2)), axis=0)
        assert MM._path_gap(a, b) == _path_gap_ref(a, b)


def test_insertion_matches_reference():
    rng = np.random.default_rng(3)
    th = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    contour = np.c_[20 + 4 * np.cos(th), 20 + 2.5 * np.sin(th)]
    for n in (1, 3, 15, 16, 17, 70):
        path = np.c_[24 + np.arange(n) * 0.9, 20 + rng.normal(0, 0.3, n)]
        for halo in (0.5, 2.0, 5.0, 1e3):
            assert np.array_equal(C._insertion(contour, path, halo), _insertion_ref(contour, path, halo))


def test_bilinear_many_and_zero_then():
    rng = np.random.default_rng(4)
    imgs = [rng.normal(0, 1, (30, 40)).astype(np.float32) for _ in range(3)]
    pts = rng.uniform(-2, 42, (200, 2))
    for img, got in zip(imgs, P.bilinear_many(imgs, pts)):
        assert np.array_equal(got, P.bilinear(img, pts))
    for a in (np.zeros(0), rng.normal(0, 1, 7), rng.normal(0, 1, 7).astype(np.float32), np.arange(4)):
        got, ref = P._zero_then(a), np.r_[0.0, a]
        assert got.dtype == ref.dtype and np.array_equal(got, ref)


@pytest.mark.parametrize("shape", [(90, 110), (60, 60)])
def test_null_level_draws_match_a_fresh_generator(shape):
    rng = np.random.default_rng(5)
    g = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 1.0)
    maps = T.ridge_maps(g, 1.0)
    zone = np.zeros(shape, np.uint8)
    zone[:, : shape[1] // 2] = T.BORDER  # half the window beyond the frame: points are drawn again
    p = T.TraceParams()

    def ref(zone):
        h, w = zone.shape
        r = np.random.default_rng(0)
        m = 2 * p.look + 2
        xs, ys = r.uniform(m, max(w - 1 - m, m + 1), 4), r.uniform(m, max(h - 1 - m, m + 1), 4)
        ths = r.uniform(-np.pi, np.pi, 4)
        for _ in range(8):
            bad = zone[np.round(ys).astype(np.int64), np.round(xs).astype(np.int64)] == T.BORDER
            if not bad.any():
                break
            xs[bad] = r.uniform(m, max(w - 1 - m, m + 1), int(bad.sum()))
            ys[bad] = r.uniform(m, max(h - 1 - m, m + 1), int(bad.sum()))
        v = T._null(*maps, zone, np.array([0.0, 0.0, -1.0, 0.0]), xs, ys, ths, int(p.look), float(p.kmax),
                    int(p.n_curv), float(p.bend_penalty), float(p.cap), 16, int(p.avg), int(p.level_len),
                    float(p.dk_smooth), float(p.keep_frac))
        v = v[np.isfinite(v)]
        return float(np.median(v)) if len(v) else float("nan")

    for z in (zone, np.zeros(shape, np.uint8), zone):  # twice: the second call reads the cached draws
        got, want = T.null_level(maps, z, p), ref(z)
        assert got == want or (np.isnan(got) and np.isnan(want))


def test_16_bit_labels_are_the_32_bit_labels():
    rng = np.random.default_rng(6)
    for shape, frac in [((64, 64), 0.5), ((202, 202), 0.1), ((202, 202), 0.5), ((31, 57), 0.3)]:
        img = (rng.random(shape) < frac).astype(np.uint8)
        for conn in (4, 8):
            assert C._ltype(shape, conn) == cv2.CV_16U
            a = cv2.connectedComponentsWithStats(img, connectivity=conn)
            b = cv2.connectedComponentsWithStats(img, connectivity=conn, ltype=cv2.CV_16U)
            assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
            assert np.array_equal(a[3], b[3])
    assert C._ltype((2048, 2048), 8) == cv2.CV_32S and C._ltype((400, 400), 4) == cv2.CV_32S


def test_beyond_frame_matches_reference():
    def ref(window):
        zero = (window == 0).astype(np.uint8)
        if not (zero[0].any() or zero[-1].any() or zero[:, 0].any() or zero[:, -1].any()):
            return None
        n, lab = cv2.connectedComponents(zero, connectivity=4)
        edge = np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])
        edge = edge[edge > 0]
        if not len(edge):
            return None
        out = np.isin(lab, edge)
        return out if not out.all() else None

    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (120, 160), dtype=np.uint8)
    p = CropParams(size=(81, 81))
    wins = [cut_window(gray, x, y, a, p) for x, y, a in [(5.0, 60.0, 0.3), (80.0, 60.0, 1.0), (150.0, 110.0, -2.0)]]
    inner = np.full((40, 40), 9, np.uint8)
    inner[10:15, 10:15] = 0  # a zero blob inside (not beyond the frame) next to one on the edge
    inner[:3, :] = 0
    wins += [inner, np.zeros((20, 20), np.uint8), np.full((20, 20), 5, np.uint8)]
    for w in wins:
        got, want = C._beyond_frame(w), ref(w)
        assert (got is None and want is None) or np.array_equal(got, want)
