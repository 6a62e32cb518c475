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
    """Noise-free background ``(H, W) float32``: level x (1 + gradient) x vignetting."""
    cached = getattr(scene, "_background", None)
    if cached is not None:
        return cached
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


def _head_patch(head: np.ndarray, fill: np.ndarray, mid: np.ndarray, s: float, cell,
                preset) -> tuple[np.ndarray, int, int]:
    """Head + midpiece contribution; ``fill`` is the outline inset against cv2's edge growth."""
    sig_c = np.hypot(CORE_SIGMA_UM / s, cell.defocus_px)
    sig_h = np.hypot(HALO_SIGMA_UM / s, cell.defocus_px)
    pad = int(np.ceil(3 * sig_h)) + 2
    pts = np.vstack([head, mid])
    x0, y0 = np.floor(pts.min(0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
    pw, ph = x1 - x0 + 1, y1 - y0 + 1
    big = np.zeros((ph * SUPERSAMPLE, pw * SUPERSAMPLE), np.uint8)
    cv2.fillPoly(big, [_to_ss(fill, x0, y0)], 255, cv2.LINE_8, _SHIFT)
    cov_h = cv2.resize(big, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    big[:] = 0
    thick = max(1, int(round(cell.midpiece_width_um / s * SUPERSAMPLE)))
    a, b = _to_ss(mid, x0, y0)
    cv2.line(big, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, thick, cv2.LINE_8, _SHIFT)
    cov_m = cv2.resize(big, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32) * (1 / 255)
    core = cv2.GaussianBlur(cov_h, (0, 0), sig_c)
    halo = cv2.GaussianBlur(cov_h, (0, 0), sig_h)
    midp = cv2.GaussianBlur(np.maximum(cov_m - cov_h, 0), (0, 0), sig_c)
    k = cell.contrast / (1.0 + 0.5 * cell.defocus_px)
    patch = k * (preset.head_core * core - preset.head_halo * halo - preset.midpiece_contrast * midp)
    return patch, int(x0), int(y0)


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
