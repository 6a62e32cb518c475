"""Phase-contrast rendering of a :class:`~spermtrack.synth.scene.Scene` (gray ``uint8`` frames).

Per frame: background (illumination gradient x vignetting) + objects, times a flicker gain,
plus Poisson-Gaussian noise. Objects are drawn into small local patches only:

- head and midpiece: filled at :data:`SUPERSAMPLE` x in a patch around the head
  (``cv2.fillPoly`` / ``cv2.line`` with sub-pixel ``shift``), reduced with ``INTER_AREA`` to
  an area-coverage map, then a difference of Gaussians gives the phase-contrast look (bright
  core, dark halo); the per-cell defocus widens both Gaussians;
- tails: anti-aliased 1-px polylines (``cv2.polylines``, ``LINE_AA``, sub-pixel) on one
  frame-sized ``uint8`` layer, distal part fainter; subtracted (tails are dark and faint);
- debris: discs with a signed difference of Gaussians.

Random numbers of frame ``i`` come from a generator seeded by ``(scene seed, i)``, so frames
can be rendered in any order and are bit-identical for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from spermtrack.synth import morph
from spermtrack.synth.scene import REACH_UM, Scene

#: Supersampling factor of head / midpiece / debris patches.
SUPERSAMPLE = 4
_SHIFT = 4  # cv2 fractional bits: coordinates are multiplied by 16
#: Gaussian sigmas of the head's bright core and dark halo (um).
CORE_SIGMA_UM, HALO_SIGMA_UM = 0.25, 0.9


@dataclass
class Geometry:
    """Outlines of the objects drawn in one frame, px (pixel-centre coordinates).

    ``rows`` index ``scene.cells``; ``heads (m, V, 2)``, ``midpieces (m, 2, 2)`` (start at the
    head, end at the tail), ``tails (m, TAIL_POINTS, 2)``. Cluster members appear as extra
    entries whose ``rows`` repeat the cluster's row and ``member`` is their index (-1 otherwise).
    """

    rows: np.ndarray
    member: np.ndarray
    heads: np.ndarray
    midpieces: np.ndarray
    tails: np.ndarray


def near_rows(scene: Scene, i: int) -> np.ndarray:
    """Rows of objects that may show in frame ``i`` (head within the frame grown by a tail)."""
    r = REACH_UM / scene.um_per_px
    xy = scene.head_px[:, i]
    ok = (xy[:, 0] > -r) & (xy[:, 0] < scene.width + r) & (xy[:, 1] > -r) & (xy[:, 1] < scene.height + r)
    return np.flatnonzero(ok)


def frame_geometry(scene: Scene, i: int, rows: np.ndarray | None = None) -> Geometry:
    """Head outlines, midpieces and tail centre lines of frame ``i`` (see :class:`Geometry`)."""
    rows = near_rows(scene, i) if rows is None else np.asarray(rows, dtype=np.int64)
    s, t = scene.um_per_px, i / scene.fps
    ent_rows, members, cells, pos_um, angles, headings, times = [], [], [], [], [], [], []
    for r in rows:
        cell = scene.cells[r]
        if cell.members:
            for k, (off, ang, m) in enumerate(cell.members):
                ent_rows.append(r), members.append(k), cells.append(m)
                pos_um.append(scene.head_px[r, i] * s + off), angles.append(ang), headings.append(ang)
                times.append(0.0)
        else:
            ent_rows.append(r), members.append(-1), cells.append(cell)
            pos_um.append(scene.head_px[r, i] * s), angles.append(scene.paths.angle[r, i])
            headings.append(scene.paths.theta[r, i]), times.append(t)
    m = len(cells)
    V, TP = morph.HEAD_VERTICES, morph.TAIL_POINTS
    if m == 0:
        return Geometry(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, V, 2)),
                        np.zeros((0, 2, 2)), np.zeros((0, TP, 2)))
    pos_um, angles, headings = np.array(pos_um), np.array(angles), np.array(headings)
    polys = np.stack([c.head_poly_um for c in cells])
    heads = morph.rotate(polys, angles) + pos_um[:, None, :]
    # the midpiece leaves the rear of the head along the head axis
    rear = np.array([[c.head_poly_um[:, 0].min(), 0.0] for c in cells])
    mid0 = morph.rotate(rear[:, None, :], angles)[:, 0] + pos_um
    mlen = np.array([c.midpiece_length_um for c in cells])
    mid1 = mid0 - mlen[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    col = lambda name: np.array([getattr(c, name) for c in cells], dtype=np.float64)  # noqa: E731
    beat = np.where(np.array(times) > 0, col("beat_hz"), 0.0)
    local = morph.tail_wave_um(col("tail_length_um"), col("tail_wavelength_um"), col("tail_amp_base_um"),
                               col("tail_amp_tip_um"), beat, col("tail_phase_rad"), t)
    for k, c in enumerate(cells):
        if c.tail_variant == "coiled":
            local[k] = morph.coiled_tail_um(c.tail_length_um, c.coil_turns, 0.0)
    # the tail trails behind along the path heading, starting where the midpiece ends
    tails = morph.rotate(local, headings + np.pi) + mid1[:, None, :]
    mids = np.stack([mid0, mid1], axis=1)
    return Geometry(np.array(ent_rows, np.int64), np.array(members, np.int64), heads / s, mids / s, tails / s)


def background(scene: Scene) -> np.ndarray:
    """Noise-free background ``(H, W) float32``: level x (1 + gradient) x vignetting.

    In the ``visem`` look also soft smooth illumination changes, a static fine mottle and the
    static debris (dark dots 2-5 px, faint bright specks) of :func:`_visem_static`.
    """
    cached = getattr(scene, "_background", None)
    if cached is not None:
        return cached
    if scene.look == "visem":
        bg = _visem_background(scene)
        scene._background = bg  # type: ignore[attr-defined]
        return bg
    p, H, W = scene.preset, scene.height, scene.width
    # frame generators use spawn keys (..., i); the background takes one no frame index reaches
    rng = frame_rng(scene, 10**9)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    u, v = (x - W / 2) / (W / 2), (y - H / 2) / (H / 2)
    ang = rng.uniform(0, 2 * np.pi)
    grad = p.gradient * (np.cos(ang) * u + np.sin(ang) * v) / np.sqrt(2)
    # a broad bump so the gradient is not a plane (uneven condenser illumination)
    cx, cy = rng.uniform(-0.5, 0.5, 2)
    grad += 0.5 * p.gradient * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / 0.5)
    vig = 1.0 - p.vignetting * (u ** 2 + v ** 2) / 2.0
    bg = (p.background * (1.0 + grad) * vig).astype(np.float32)
    scene._background = bg  # type: ignore[attr-defined]
    return bg


def _smooth_field(rng: np.random.Generator, H: int, W: int, sigma: float) -> np.ndarray:
    """A smooth random field of unit SD (white noise blurred by ``sigma`` px)."""
    f = cv2.GaussianBlur(rng.standard_normal((H, W), dtype=np.float32), (0, 0), sigma)
    sd = float(f.std())
    return f / sd if sd > 0 else f


def _splat(H: int, W: int, xy: np.ndarray, amp: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian spots of peak ``amp`` and width ``sigma`` at sub-pixel ``xy`` (bilinear splat + blur)."""
    img = np.zeros((H, W), np.float32)
    if len(xy):
        w = amp * (2 * np.pi * sigma ** 2)
        x0, y0 = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
        fx, fy = xy[:, 0] - x0, xy[:, 1] - y0
        for dx, dy, k in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xs, ys = x0 + dx, y0 + dy
            ok = (xs >= 0) & (xs < W) & (ys >= 0) & (ys < H)
            np.add.at(img, (ys[ok], xs[ok]), (w * k)[ok].astype(np.float32))
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _visem_background(scene: Scene) -> np.ndarray:
    """The ``visem`` look's static background: level, illumination, mottle, dots and specks."""
    p, lk, H, W = scene.preset, scene.look_params, scene.height, scene.width
    rng = frame_rng(scene, 10**9)
    level = float(scene.params.get("background_level", p.background))
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    u, v = (x - W / 2) / (W / 2), (y - H / 2) / (H / 2)
    ang = rng.uniform(0, 2 * np.pi)
    illum = p.gradient * (np.cos(ang) * u + np.sin(ang) * v) / np.sqrt(2)
    illum += lk.illumination * _smooth_field(rng, H, W, 60.0)
    vig = 1.0 - p.vignetting * (u ** 2 + v ** 2) / 2.0
    bg = level * (1.0 + illum) * vig
    # static mottle: fine grain plus a few-pixel blotchiness
    bg += lk.texture_sd * (_smooth_field(rng, H, W, 0.8) + 0.7 * _smooth_field(rng, H, W, 3.0))
    area = W * H / (640.0 * 480.0)
    # static dark debris dots, 2-5 px: many faint, few deep (contrast skewed toward the low end)
    n = int(rng.poisson(lk.dark_dots * area))
    xy = rng.uniform((0, 0), (W, H), (n, 2))
    lo, hi = lk.dark_dot_contrast
    depth = lo + (hi - lo) * rng.random(n) ** 2
    size = rng.integers(0, 3, n)
    halo = rng.random(n) < 0.3
    for k, sig in enumerate((0.8, 1.2, 1.7)):
        sel = size == k
        bg -= _splat(H, W, xy[sel], depth[sel], sig)
        # a third of them with a faint bright phase halo
        sel &= halo
        bg += _splat(H, W, xy[sel], 0.25 * depth[sel], 2.5 * sig)
    # faint bright specks, 1-2 px
    n = int(rng.poisson(lk.bright_specks * area))
    xy = rng.uniform((0, 0), (W, H), (n, 2))
    lo, hi = lk.speck_contrast
    bg += _splat(H, W, xy, lo + (hi - lo) * rng.random(n) ** 2, 0.7)
    return bg.astype(np.float32)


def _add_patch(acc: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    H, W = acc.shape
    ph, pw = patch.shape
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + pw, W), min(y0 + ph, H)
    if ax0 < ax1 and ay0 < ay1:
        acc[ay0:ay1, ax0:ax1] += patch[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]


def _to_ss(pts: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """px (pixel-centre) -> fixed-point coordinates of the supersampled patch at (x0, y0)."""
    u = (pts - (x0, y0) + 0.5) * SUPERSAMPLE - 0.5
    return np.round(u * (1 << _SHIFT)).astype(np.int32)


class _Canvas:
    """Supersampled rasteriser of one patch: area coverage (0..1, float32) of polygons and lines
    over the bounding box of ``pts`` grown by ``pad`` px."""

    def __init__(self, pts: np.ndarray, pad: int):
        self.x0, self.y0 = (int(v) for v in np.floor(pts.min(0)).astype(int) - pad)
        x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
        self.pw, self.ph = int(x1 - self.x0 + 1), int(y1 - self.y0 + 1)
        self.big = np.zeros((self.ph * SUPERSAMPLE, self.pw * SUPERSAMPLE), np.uint8)

    def _coverage(self) -> np.ndarray:
        cov = cv2.resize(self.big, (self.pw, self.ph), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
        self.big[:] = 0
        return cov

    def poly(self, pts: np.ndarray) -> np.ndarray:
        cv2.fillPoly(self.big, [_to_ss(pts, self.x0, self.y0)], 255, cv2.LINE_8, _SHIFT)
        return self._coverage()

    def line(self, ends: np.ndarray, thick: int) -> np.ndarray:
        a, b = _to_ss(ends, self.x0, self.y0)
        cv2.line(self.big, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, thick, cv2.LINE_8, _SHIFT)
        return self._coverage()


def _head_patch(head: np.ndarray, fill: np.ndarray, mid: np.ndarray, s: float, cell,
                preset) -> tuple[np.ndarray, int, int]:
    """Head + midpiece contribution; ``fill`` is the outline inset against cv2's edge growth."""
    sig_c = np.hypot(CORE_SIGMA_UM / s, cell.defocus_px)
    sig_h = np.hypot(HALO_SIGMA_UM / s, cell.defocus_px)
    cv = _Canvas(np.vstack([head, mid]), int(np.ceil(3 * sig_h)) + 2)
    cov_h = cv.poly(fill)
    cov_m = cv.line(mid, max(1, int(round(cell.midpiece_width_um / s * SUPERSAMPLE))))
    x0, y0 = cv.x0, cv.y0
    core = cv2.GaussianBlur(cov_h, (0, 0), sig_c)
    halo = cv2.GaussianBlur(cov_h, (0, 0), sig_h)
    midp = cv2.GaussianBlur(np.maximum(cov_m - cov_h, 0), (0, 0), sig_c)
    k = cell.contrast / (1.0 + 0.5 * cell.defocus_px)
    patch = k * (preset.head_core * core - preset.head_halo * halo - preset.midpiece_contrast * midp)
    return patch, int(x0), int(y0)


#: ``visem`` look: sigma of the in-focus head's dark phase rim (um) and of its two glow lobes (px).
VISEM_CORE_SIGMA_UM, VISEM_RIM_SIGMA_UM = 0.3, 0.75
VISEM_GLOW_SIGMAS_PX = (3.0, 7.0)
#: The bright core is drawn from the head outline shrunk by this factor about its centroid (real
#: cores' half-maximum regions are ~7.5-8.4 x 5.4-5.7 px; the outline, rim and glow keep full size).
VISEM_CORE_SCALE = 0.8


def _visem_head_patch(head: np.ndarray, fill: np.ndarray, mid: np.ndarray, s: float, cell,
                      preset) -> tuple[np.ndarray, int, int]:
    """``visem`` look head: saturating bright core, thin dark rim, dark midpiece (glow: :func:`_glow_patch`)."""
    sig_c = np.hypot(VISEM_CORE_SIGMA_UM / s, cell.defocus_px)
    sig_r = np.hypot(VISEM_RIM_SIGMA_UM / s, cell.defocus_px)
    cv = _Canvas(np.vstack([head, mid]), int(np.ceil(3 * sig_r)) + 2)
    cov_h = cv.poly(fill)
    centre = head.mean(0)
    cov_c = cv.poly(centre + VISEM_CORE_SCALE * (fill - centre))
    cov_m = cv.line(mid, max(1, int(round(1.6 * cell.midpiece_width_um / s * SUPERSAMPLE))))
    x0, y0 = cv.x0, cv.y0
    core = cv2.GaussianBlur(cov_c, (0, 0), sig_c)
    rim = cv2.GaussianBlur(cov_h, (0, 0), sig_r)
    midp = cv2.GaussianBlur(np.maximum(cov_m - cov_h, 0), (0, 0), sig_c)
    k = cell.contrast / (1.0 + 0.5 * cell.defocus_px)
    patch = k * (preset.head_core * core - preset.head_halo * np.maximum(rim - core, 0)
                 - preset.midpiece_contrast * midp)
    return patch, int(x0), int(y0)


def _glow_patch(head: np.ndarray, cell, s: float, glow: float) -> tuple[np.ndarray, int, int]:
    """The wide bright glow around an in-focus head (``visem`` look), in closed form.

    The head blurred by Gaussians of :data:`VISEM_GLOW_SIGMAS_PX`, approximated by isotropic
    Gaussians of the same second moments; normalised to peak ``glow`` for a 40 px^2 head (bigger
    heads glow more). Real mean radial profile: +40 at 6 px, +29 at 8 px, +13 at 12 px.
    """
    c = head.mean(0)
    area = cell.head_area_um2 / (s * s)
    var = cell.head_length_um ** 2 / (s * s) / 16 + cell.head_width_um ** 2 / (s * s) / 16
    g1, g2 = VISEM_GLOW_SIGMAS_PX
    pad = int(np.ceil(2.5 * g2 + 3))
    x0, y0 = int(np.floor(c[0])) - pad, int(np.floor(c[1])) - pad
    n = 2 * pad + 2
    ax = np.arange(n, dtype=np.float32)
    dx2 = (ax + x0 - c[0]) ** 2
    dy2 = (ax + y0 - c[1]) ** 2
    r2 = dy2[:, None] + dx2[None, :]
    k = glow * cell.contrast * area / 40.0
    out = np.zeros((n, n), np.float32)
    for w, g in ((0.25, g1), (0.75, g2)):
        v = g * g + var
        out += np.float32(k * w * g * g / v) * np.exp(r2 * np.float32(-0.5 / v))
    return out, x0, y0


def _distractor_patch(d, j: int, x: float, y: float) -> tuple[np.ndarray, int, int]:
    """Patch of unlabelled distractor ``j`` (see :class:`spermtrack.synth.scene.Distractors`)."""
    kind, r, blur = int(d.kind[j]), float(d.radius[j]), float(d.blur[j])
    pad = int(np.ceil(r + 4 * blur + 8))
    x0, y0 = int(np.floor(x)) - pad, int(np.floor(y)) - pad
    n = 2 * pad + 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    dx, dy = xx + x0 - x, yy + y0 - y
    if kind == 2:
        rr = np.sqrt(dx * dx + dy * dy)
        body = 1.0 / (1.0 + np.exp(-(r - rr) / max(blur, 0.3)))
        ring = np.exp(-((rr - r - 2.0) ** 2) / (2 * 1.8 ** 2))
        return (d.contrast[j] * body + d.ring[j] * ring).astype(np.float32), x0, y0
    c, s_ = np.cos(d.heading[j]), np.sin(d.heading[j])
    u, v = dx * c + dy * s_, -dx * s_ + dy * c
    su = (r * 0.6 * d.elong[j]) ** 2 + blur ** 2
    sv = (r * 0.6) ** 2 + blur ** 2
    q = u * u / (2 * su) + v * v / (2 * sv)
    body = np.exp(-q)
    ring = np.exp(-q / 3.2) - body
    return (d.contrast[j] * body + d.ring[j] * ring).astype(np.float32), x0, y0


def _debris_patch(x: float, y: float, radius: float, blur: float, contrast: float) -> tuple[np.ndarray, int, int]:
    pad = int(np.ceil(radius + 3 * (blur + 1.5))) + 2
    x0, y0 = int(np.floor(x)) - pad, int(np.floor(y)) - pad
    n = 2 * pad + 2
    big = np.zeros((n * SUPERSAMPLE, n * SUPERSAMPLE), np.uint8)
    c = _to_ss(np.array([[x, y]]), x0, y0)[0]
    r_fixed = int(round((radius * SUPERSAMPLE - morph.FILL_INSET) * (1 << _SHIFT)))
    cv2.circle(big, (int(c[0]), int(c[1])), r_fixed, 255, -1, cv2.LINE_8, _SHIFT)
    cov = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    core = cv2.GaussianBlur(cov, (0, 0), blur)
    halo = cv2.GaussianBlur(cov, (0, 0), blur + 1.5)
    return contrast * 1.6 * (core - 0.5 * halo), x0, y0


def _to_cv(pts: np.ndarray) -> np.ndarray:
    return np.round(pts * (1 << _SHIFT)).astype(np.int32)


def render_noise_free(scene: Scene, i: int, geometry: Geometry | None = None) -> np.ndarray:
    """Frame ``i`` before gain and noise, ``(H, W) float32`` gray levels."""
    g = frame_geometry(scene, i) if geometry is None else geometry
    if scene.look == "visem":
        return _render_visem(scene, i, g)
    p, s = scene.preset, scene.um_per_px
    acc = np.zeros((scene.height, scene.width), np.float32)
    tails = np.zeros((scene.height, scene.width), np.uint8)
    split = int(0.6 * (morph.TAIL_POINTS - 1))
    fills = morph.inset_polygon(g.heads, morph.FILL_INSET / SUPERSAMPLE)
    reach = 8.0 / s + 3.0 * np.hypot(HALO_SIGMA_UM / s, p.defocus_px[1]) + 3.0  # midpiece + halo
    for k in range(len(g.rows)):
        r, mem = g.rows[k], g.member[k]
        cell = scene.cells[r] if mem < 0 else scene.cells[r].members[mem][2]
        lo, hi = g.heads[k].min(0), g.heads[k].max(0)
        # only the tail of a cell whose head is off-frame can show: skip the head patch
        if hi[0] > -reach and lo[0] < scene.width + reach and hi[1] > -reach and lo[1] < scene.height + reach:
            patch, x0, y0 = _head_patch(g.heads[k], fills[k], g.midpieces[k], s, cell, p)
            _add_patch(acc, patch, x0, y0)
        level = 255.0 * min(cell.contrast, 1.0) / (1.0 + cell.defocus_px)
        tp = _to_cv(g.tails[k])
        cv2.polylines(tails, [tp[:split + 1]], False, int(level), 1, cv2.LINE_AA, _SHIFT)
        cv2.polylines(tails, [tp[split:]], False, int(0.55 * level), 1, cv2.LINE_AA, _SHIFT)
    d = scene.debris
    if len(d.radius_px):
        xy = d.pos_px[:, i]
        m = d.radius_px + 10
        vis = np.flatnonzero((xy[:, 0] > -m) & (xy[:, 0] < scene.width + m)
                             & (xy[:, 1] > -m) & (xy[:, 1] < scene.height + m))
        for j in vis:
            patch, x0, y0 = _debris_patch(xy[j, 0], xy[j, 1], d.radius_px[j], d.blur_px[j], d.contrast[j])
            _add_patch(acc, patch, x0, y0)
    acc -= tails.astype(np.float32) * (p.tail_contrast / 255.0)
    acc += background(scene)
    return acc


def _render_visem(scene: Scene, i: int, g: Geometry) -> np.ndarray:
    """``visem`` look frame ``i`` before gain and noise (see :func:`render_noise_free`)."""
    p, s, lk = scene.preset, scene.um_per_px, scene.look_params
    H, W = scene.height, scene.width
    acc = np.zeros((H, W), np.float32)
    tails = np.zeros((H, W), np.uint8)
    fills = morph.inset_polygon(g.heads, morph.FILL_INSET / SUPERSAMPLE)
    reach = 8.0 / s + 2.5 * VISEM_GLOW_SIGMAS_PX[1] + 4.0
    for k in range(len(g.rows)):
        r, mem = g.rows[k], g.member[k]
        cell = scene.cells[r] if mem < 0 else scene.cells[r].members[mem][2]
        lo, hi = g.heads[k].min(0), g.heads[k].max(0)
        if hi[0] > -reach and lo[0] < W + reach and hi[1] > -reach and lo[1] < H + reach:
            patch, x0, y0 = _visem_head_patch(g.heads[k], fills[k], g.midpieces[k], s, cell, p)
            _add_patch(acc, patch, x0, y0)
            patch, x0, y0 = _glow_patch(g.heads[k], cell, s, lk.glow / (1.0 + 0.5 * cell.defocus_px))
            _add_patch(acc, patch, x0, y0)
        level = 255.0 * min(cell.contrast, 1.0) / (1.0 + cell.defocus_px)
        tp = _to_cv(g.tails[k])
        # real tails fade out: visible over 20-50 px, the distal part barely
        n = morph.TAIL_POINTS - 1
        for a, b, f in ((0, int(0.35 * n), 1.0), (int(0.35 * n), int(0.6 * n), 0.6), (int(0.6 * n), n, 0.25)):
            cv2.polylines(tails, [tp[a:b + 1]], False, int(f * level), 1, cv2.LINE_AA, _SHIFT)
    d = scene.debris
    if len(d.radius_px):
        xy = d.pos_px[:, i]
        m = d.radius_px + 10
        vis = np.flatnonzero((xy[:, 0] > -m) & (xy[:, 0] < W + m) & (xy[:, 1] > -m) & (xy[:, 1] < H + m))
        for j in vis:
            patch, x0, y0 = _debris_patch(xy[j, 0], xy[j, 1], min(d.radius_px[j], 2.5), d.blur_px[j], d.contrast[j])
            _add_patch(acc, patch, x0, y0)
    dis = scene.distractors
    oof_tails = None
    if dis is not None and len(dis.kind):
        xy = dis.pos_px[:, i]
        m = dis.radius + dis.tail_px + 12
        vis = np.flatnonzero((xy[:, 0] > -m) & (xy[:, 0] < W + m) & (xy[:, 1] > -m) & (xy[:, 1] < H + m))
        for j in vis:
            patch, x0, y0 = _distractor_patch(dis, j, xy[j, 0], xy[j, 1])
            _add_patch(acc, patch, x0, y0)
            if dis.tail_px[j] > 0:
                if oof_tails is None:
                    oof_tails = np.zeros((H, W), np.uint8)
                # a faint, gently curved tail trailing from the blob
                tt = np.linspace(0.0, 1.0, 8)
                ang = dis.heading[j] + 0.35 * np.sin(2.0 * tt + 0.05 * i + j)
                dirs = np.stack([np.cos(ang), np.sin(ang)], -1)
                pts = xy[j] + dirs * (dis.radius[j] + tt[:, None] * dis.tail_px[j])
                cv2.polylines(oof_tails, [_to_cv(pts)], False, int(25.5 * dis.tail_contrast[j]), 1, cv2.LINE_AA,
                              _SHIFT)
    tl = cv2.GaussianBlur(tails.astype(np.float32), (0, 0), 0.6)
    acc -= tl * (p.tail_contrast * 1.6 / 255.0)
    if oof_tails is not None:
        acc -= cv2.GaussianBlur(oof_tails.astype(np.float32), (0, 0), 1.3) * (1.0 / 25.5 * 2.0)
    acc += background(scene)
    return acc


def _chroma_mottle(scene: Scene) -> np.ndarray:
    """Static blotchy colour noise of the camera (blue <-> red), cached per scene."""
    cached = getattr(scene, "_chroma", None)
    if cached is None:
        rng = frame_rng(scene, 10**9 + 1)
        cached = (2.0 * _smooth_field(rng, scene.height, scene.width, 2.5)).astype(np.float32)
        scene._chroma = cached  # type: ignore[attr-defined]
    return cached


def colorize(scene: Scene, gray: np.ndarray) -> np.ndarray:
    """BGR ``uint8`` of a ``visem``-look gray frame: a slight cyan / magenta fringe and tint.

    Real VISEM frames come from a colour camera: bright heads are white with a violet-magenta
    rim, the background is slightly warm. The fringe added here leaves the BT.601 luma of the
    frame (what gray readers see) nearly unchanged.
    """
    g = gray.astype(np.float32)
    f = scene.look_params.fringe if scene.look_params is not None else 1.0
    blur = cv2.GaussianBlur(g, (0, 0), 1.5)
    out = blur - g
    # violet-magenta only on the rim of bright objects (heads, blobs), not around dark debris
    level = np.float32(scene.params.get("background_level", scene.preset.background))
    gate = np.clip((blur - level) * np.float32(1 / 30.0), 0.0, 1.0)
    rim = np.maximum(out, 0.0) * gate * np.float32(1.6 * f)
    cyan = np.maximum(-out, 0.0) * np.float32(0.35 * f)
    mottle = _chroma_mottle(scene)
    # luma-neutral directions: violet-magenta (+B, -G, +R) on the rim, cyan (+B, +G, -R) inside
    # bright edges, and a faint static blue / red mottle of the background
    chans = []
    for cr, cc, const, cm in ((0.9, 0.6, -2.0, 1.0), (-0.353, 0.2, 0.0, 0.0), (0.35, -0.62, 3.0, -0.38)):
        ch = g + np.float32(cr) * rim
        ch += np.float32(cc) * cyan
        if cm:
            ch += np.float32(cm) * mottle
        ch += np.float32(const + 0.5)
        chans.append(np.clip(ch, 0, 255).astype(np.uint8))
    return cv2.merge(chans)


def frame_rng(scene: Scene, i: int) -> np.random.Generator:
    """The generator of frame ``i`` (independent of the order frames are rendered in)."""
    return np.random.default_rng(np.random.SeedSequence(scene.render_entropy[0],
                                                        spawn_key=(*scene.render_entropy[1:], int(i))))


def render_frame(scene: Scene, i: int, geometry: Geometry | None = None) -> np.ndarray:
    """Frame ``i`` as the camera would record it: gray ``(H, W) uint8``."""
    p = scene.preset
    img = render_noise_free(scene, i, geometry)
    img *= np.float32(scene.gain[i])
    np.maximum(img, 0.0, out=img)
    sd = np.sqrt(img * np.float32(p.noise_gain) + np.float32(p.read_noise ** 2))
    img += sd * frame_rng(scene, i).standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def frame_boxes(scene: Scene) -> dict[int, pd.DataFrame]:
    """``scene.boxes`` split by frame (frames without objects are absent)."""
    return {int(f): g for f, g in scene.boxes.groupby("frame", sort=True)}


def iter_frames(scene: Scene):
    """Yield ``(i, frame uint8, boxes of frame i as a Tracks table)`` for every frame."""
    by_frame = frame_boxes(scene)
    empty = scene.boxes.iloc[0:0]
    for i in range(scene.n_frames):
        yield i, render_frame(scene, i), by_frame.get(i, empty)
