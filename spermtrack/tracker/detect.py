"""Detectors: ``detect(frames) -> list[Detections]``, one :class:`~spermtrack.types.Detections`
per frame, batched over a stack of gray frames.

- :class:`BlobDetector` (default, no weights): blobs of the HLDNBM evidence map
  (:mod:`spermtrack.tracker.enhance`), matched-filtered, split at their peaks.
- :class:`~spermtrack.tracker.yolo.SlicedYoloDetector` (needs a user ``.pt``): overlapping tiles,
  one batched ultralytics ``predict`` per chunk, boxes fused across tile borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np

from spermtrack.tracker.enhance import evidence_map
from spermtrack.types import Detections


class Detector(Protocol):
    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        """One Detections per frame of a ``(N, H, W)`` uint8 stack (or a list of frames)."""


@dataclass(frozen=True)
class BlobParams:
    """Thresholds of :class:`BlobDetector`, in evidence units (z) and pixels.

    Attributes:
        sigma_px: Gaussian matched filter applied to z before peak finding (~ head half-width).
            Larger suppresses noise and tail fragments but merges touching heads.
        peak_z: minimum smoothed evidence at a head's peak. Raising it trades recall of faint /
            defocused heads for fewer noise and debris detections. Under the background model,
            smoothed noise peaks rarely exceed ~2.5.
        mask_z: the blob extent is where smoothed z > mask_z (hysteresis: only regions that hold
            a peak count). Sets the box size and the area used by the size filters.
        min_separation_px: two peaks closer than this are one head (keeps the stronger).
        min_area_px, max_area_px: blobs outside are dropped as noise specks / merged junk;
            blobs larger than ``cluster_area_px`` are reported as class 1 (cluster) instead.
        max_elongation: blobs with a major/minor axis ratio above this are dropped (a head is
            ~1.5:1; straight debris fibres and tail segments are far longer).
        box_margin_px: added on each side of the blob extent, so boxes resemble annotated ones.
        min_box_px: boxes are at least this wide and high.
    """

    sigma_px: float = 1.2
    peak_z: float = 4.0
    mask_z: float = 2.0
    min_separation_px: float = 4.0
    min_area_px: int = 4
    max_area_px: int = 400
    cluster_area_px: int = 250
    max_elongation: float = 4.0
    box_margin_px: float = 3.0
    min_box_px: float = 8.0


class BlobDetector:
    """Classical head detector on the HLDNBM evidence map (works with no weights).

    For each frame: z = HLDNBM evidence (or, with ``enhance=False``, a homogeneous model with one
    global median and mean absolute deviation); Gaussian matched filter; peaks = local maxima of
    smoothed z above ``peak_z`` at least ``min_separation_px`` apart; blob pixels = smoothed z
    above ``mask_z``, assigned to their nearest peak so touching heads are split; sub-pixel
    centre = evidence-weighted centroid of the peak's pixels; box = weighted second moments
    (2 sigma each side) plus a margin; confidence = ``1 - exp(-(peak - mask_z) / 4)``.

    Args:
        enhance: use the spatial HLDNBM model (default) or a single global background.
        window_px, scale_floor: HLDNBM parameters (see :func:`~spermtrack.tracker.enhance.estimate_background`).
        params: :class:`BlobParams`.
    """

    def __init__(self, *, enhance: bool = True, window_px: int = 31, scale_floor: float = 2.0,
                 params: BlobParams | None = None, **overrides):
        self.enhance = enhance
        self.window_px = window_px
        self.scale_floor = scale_floor
        p = params or BlobParams()
        self.params = BlobParams(**{**p.__dict__, **overrides}) if overrides else p

    def evidence(self, frame: np.ndarray) -> np.ndarray:
        if self.enhance:
            return evidence_map(frame, self.window_px, self.scale_floor)
        img = np.asarray(frame, np.float32)
        mu = np.median(img)
        b = max(float(np.mean(np.abs(img - mu))), self.scale_floor)
        return (img - mu) / b

    def detect(self, frames) -> list[Detections]:
        frames = np.asarray(frames) if not isinstance(frames, (list, tuple)) else frames
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = frames[None]
        return [self.detect_frame(f) for f in frames]

    def detect_frame(self, frame: np.ndarray) -> Detections:
        p = self.params
        z = self.evidence(frame)
        zs = cv2.GaussianBlur(z, (0, 0), p.sigma_px) if p.sigma_px > 0 else z
        r = max(1, int(round(p.min_separation_px / 2)))
        dil = cv2.dilate(zs, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        py, px = np.nonzero((zs >= dil) & (zs > p.peak_z))
        if len(py) == 0:
            return Detections.empty()
        peaks = _suppress_close_peaks(px, py, zs[py, px], p.min_separation_px)
        px, py = px[peaks], py[peaks]
        peak_val = zs[py, px]

        mask = (zs > p.mask_z).astype(np.uint8)
        n_lab, lab = cv2.connectedComponents(mask, connectivity=8)
        # one label per peak: pixels of a component go to the nearest of its peaks
        comp_of_peak = lab[py, px]
        owner = np.full(n_lab, -1, np.int64)
        owner[comp_of_peak] = np.arange(len(px))
        multi = np.bincount(comp_of_peak, minlength=n_lab) > 1
        ys, xs = np.nonzero(lab)
        comp = lab[ys, xs]
        peak_id = owner[comp]
        if multi.any():
            sel = multi[comp]
            if sel.any():
                peak_id[sel] = _nearest_peak(xs[sel], ys[sel], comp[sel], px, py, comp_of_peak)
        keep = peak_id >= 0
        xs, ys, peak_id = xs[keep].astype(np.float64), ys[keep].astype(np.float64), peak_id[keep]
        w = (zs[ys.astype(int), xs.astype(int)] - p.mask_z).astype(np.float64)
        n = len(px)
        area = np.bincount(peak_id, minlength=n).astype(np.float64)
        sw = np.bincount(peak_id, w, n)
        cx = np.bincount(peak_id, w * xs, n) / sw
        cy = np.bincount(peak_id, w * ys, n) / sw
        dx, dy = xs - cx[peak_id], ys - cy[peak_id]
        sxx = np.bincount(peak_id, w * dx * dx, n) / sw + 1.0 / 12
        syy = np.bincount(peak_id, w * dy * dy, n) / sw + 1.0 / 12
        sxy = np.bincount(peak_id, w * dx * dy, n) / sw
        tr, det = sxx + syy, sxx * syy - sxy**2
        disc = np.sqrt(np.maximum(tr**2 / 4 - det, 0))
        l1, l2 = tr / 2 + disc, np.maximum(tr / 2 - disc, 1e-6)
        elong = np.sqrt(l1 / l2)
        ok = (area >= p.min_area_px) & (area <= p.max_area_px) & (elong <= p.max_elongation)
        half_w = np.maximum(2 * np.sqrt(sxx) + p.box_margin_px, p.min_box_px / 2)
        half_h = np.maximum(2 * np.sqrt(syy) + p.box_margin_px, p.min_box_px / 2)
        H, W = zs.shape
        xyxy = np.stack([np.clip(cx - half_w, 0, W), np.clip(cy - half_h, 0, H),
                         np.clip(cx + half_w, 0, W), np.clip(cy + half_h, 0, H)], axis=1)
        conf = 1.0 - np.exp(-(peak_val - p.mask_z) / 4.0)
        cls = np.where(area > p.cluster_area_px, 1, 0)
        return Detections(xyxy[ok], conf[ok], cls[ok])


def _suppress_close_peaks(px, py, val, min_dist: float) -> np.ndarray:
    """Indices of peaks kept by greedy suppression (strongest first) within ``min_dist``."""
    order = np.argsort(-val, kind="stable")
    if len(order) < 2:
        return order
    from scipy.spatial import cKDTree

    tree = cKDTree(np.c_[px, py])
    pairs = tree.query_pairs(min_dist, output_type="ndarray")
    if len(pairs) == 0:
        return order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    neighbours: dict[int, list[int]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    removed = np.zeros(len(px), bool)
    for i in order:
        if removed[i]:
            continue
        for j in neighbours.get(int(i), ()):
            if rank[j] > rank[i]:
                removed[j] = True
    return order[~removed[order]]


def _nearest_peak(xs, ys, comp, px, py, comp_of_peak) -> np.ndarray:
    """For pixels of multi-peak components: index of the nearest peak in the same component."""
    out = np.empty(len(xs), np.int64)
    for c in np.unique(comp):
        sel = comp == c
        pk = np.flatnonzero(comp_of_peak == c)
        d2 = (xs[sel, None] - px[pk][None]) ** 2 + (ys[sel, None] - py[pk][None]) ** 2
        out[sel] = pk[np.argmin(d2, axis=1)]
    return out
