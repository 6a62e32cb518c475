"""Detectors: ``detect(frames) -> list[Detections]``, one :class:`~spermtrack.types.Detections`
per frame, batched over a stack of gray frames.

- :class:`BlobDetector` (default, no weights): blobs of the HLDNBM evidence map
  (:mod:`spermtrack.detect.enhance`), matched-filtered, split at their peaks.
- :class:`~spermtrack.detect.yolo.SlicedYoloDetector` (needs a user ``.pt``): overlapping tiles,
  one batched ultralytics ``predict`` per chunk, boxes fused across tile borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import cv2
import numpy as np

from spermtrack.detect.blobcues import sperm_cues
from spermtrack.detect.enhance import evidence_map
from spermtrack.types import Detections


class Detector(Protocol):
    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        """One Detections per frame of a ``(N, H, W)`` uint8 stack (or a list of frames)."""


@dataclass(frozen=True)
class BlobParams:
    """Thresholds of :class:`BlobDetector`, in evidence units (z = (I - mu) / b) and pixels.

    Defaults suit VISEM scale (heads ~8-12 px long, ~0.5 um/px); scale the pixel values with
    the head size for other magnifications.

    Attributes:
        sigma_px: Gaussian matched filter on z for peak finding (~ head half-width). Larger
            suppresses noise and tail fragments but merges touching heads and lowers small heads.
        shape_sigma_px: lighter smoothing used to measure a blob's shape and its midpiece.
        min_separation_px: two peaks closer than this are one head (the stronger is kept).
        candidate_z: peaks of the matched-filtered z below this are not considered at all.
        score_threshold: a candidate is a head when its score
            ``peak * (1 + elongation_gain * (elongation - 1)) + midpiece_gain * midpiece``
            reaches this. Raising it trades recall of faint or defocused heads for fewer
            debris and noise detections.
        elongation_gain: weight of the blob's axis ratio (heads ~1.5:1; debris discs and noise
            specks ~1:1). Set 0 for samples with many round heads (globozoospermia).
        midpiece_gain: weight of the dark midpiece evidence (-z along the head axis just past
            the head; debris has none).
        window_px: half-size of the window where a candidate's shape is measured.
        max_area_px: a blob (z > 1 around the peak) larger than this is a cluster (class 1).
        box_margin_px: added on each side of the head ellipse's extent, so boxes resemble
            annotated ones (VISEM boxes enclose the head with a margin of ~2 um).
        edge_px: a blob cut by the frame edge whose visible centroid lies closer than this to
            the edge is a head centred *outside* the frame (a head centred inside shows at least
            about half its length, so its visible centroid sits >= ~2 px inside); it is dropped.
            0 keeps every blob touching the edge.
        verify_low, verify_high: candidates whose blob score lies in
            ``[verify_low, verify_high) x score_threshold`` are borderline (faint heads and bright
            debris discs); their score is corrected by the sperm cues of
            :mod:`spermtrack.detect.blobcues`. Candidates below the band are rejected, above it
            accepted. A wider band costs a little time and lets the cues decide more cases.
        oriented_gain, oriented_ref: score += ``oriented_gain * (oriented - oriented_ref)``:
            elongation + one-sided midpiece/tail evidence, in z units; ``oriented_ref`` is what
            a round debris disc typically gives (noise included).
        halo_gain, halo_ref: score += ``halo_gain * (-ring_min - halo_ref)``: the depth of the
            dark halo / midpiece around the blob (z units); debris halos are shallower.
    """

    sigma_px: float = 2.0
    shape_sigma_px: float = 1.0
    min_separation_px: float = 4.0
    candidate_z: float = 1.0
    score_threshold: float = 4.5
    elongation_gain: float = 3.0
    midpiece_gain: float = 0.6
    window_px: int = 6
    max_area_px: int = 120
    box_margin_px: float = 4.0
    edge_px: float = 2.0
    verify_low: float = 0.7
    verify_high: float = 2.0
    oriented_gain: float = 2.0
    oriented_ref: float = 0.8
    halo_gain: float = 2.0
    halo_ref: float = 1.3


class BlobDetector:
    """Classical head detector on the HLDNBM evidence map (works with no weights).

    Per frame: z = HLDNBM evidence (or, with ``enhance=False``, a homogeneous model: one global
    median and mean absolute deviation). Candidates are local maxima of the matched-filtered z
    at least ``min_separation_px`` apart (touching heads give two maxima and are kept apart).
    Around each, in a window of the lightly smoothed z, the positive evidence gives the sub-pixel
    centroid and the second moments (axis ratio, orientation, extent); the mean z along the
    head axis just past the head on either end gives the midpiece evidence. Borderline candidates
    (faint heads, bright debris) are re-scored by sperm-vs-debris cues (elongation with a
    one-sided dark midpiece/tail, halo depth: :mod:`spermtrack.detect.blobcues`); blobs whose
    visible centroid hugs the frame edge are heads centred outside the frame and are dropped.
    Outside the frame counts as background (z = 0) in every filter. Score and thresholds:
    :class:`BlobParams`. Box = the extent of the moment ellipse (2 sigma) plus a
    margin; confidence = a logistic of the score centred on the threshold.

    Args:
        enhance: use the spatial HLDNBM model (default) or a single global background.
        window_px, scale_floor: HLDNBM parameters (see :func:`~spermtrack.detect.enhance.estimate_background`).
        params: :class:`BlobParams`; keyword overrides of single fields are accepted too.
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
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = frames[None]
        return [self.detect_frame(f) for f in frames]

    def candidates(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        """Every candidate with its features (for inspection and benchmarks).

        Keys: ``x, y`` (sub-pixel centre), ``a, b`` (2-sigma semi-axes), ``angle``, ``elongation``,
        ``area``, ``midpiece``, ``peak``, ``blob_score`` (before the cues), ``oriented`` and
        ``ring_min`` (NaN outside the verification band), ``score`` (final).
        """
        p = self.params
        z = self.evidence(frame)
        # outside the frame is background (z = 0): a reflected border would mirror a head cut by
        # the edge into a whole one centred on the edge
        zr = cv2.GaussianBlur(z, (0, 0), p.sigma_px, borderType=cv2.BORDER_CONSTANT)
        r = max(1, int(round(p.min_separation_px / 2)))
        dil = cv2.dilate(zr, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        py, px = np.nonzero((zr >= dil) & (zr > p.candidate_z))
        keep = _suppress_close_peaks(px, py, zr[py, px], p.min_separation_px)
        px, py = px[keep], py[keep]
        zs = cv2.GaussianBlur(z, (0, 0), p.shape_sigma_px, borderType=cv2.BORDER_CONSTANT)
        feats = _shape_features(zs, px, py, p.window_px)
        feats["peak"] = zr[py, px]
        blob = (feats["peak"] * (1 + p.elongation_gain * (feats["elongation"] - 1))
                + p.midpiece_gain * np.maximum(feats["midpiece"], 0))
        feats["blob_score"] = blob
        score = blob.copy()
        n = len(px)
        feats["oriented"] = np.full(n, np.nan)
        feats["ring_min"] = np.full(n, np.nan)
        band = np.flatnonzero((blob >= p.verify_low * p.score_threshold) & (blob < p.verify_high * p.score_threshold))
        if len(band):
            cues = sperm_cues(zs, feats["x"][band], feats["y"][band], 12, 4, 5, 6, 14, 4, 7)
            feats["oriented"][band], feats["ring_min"][band] = cues[:, 0], cues[:, 1]
            corr = (p.oriented_gain * (np.nan_to_num(cues[:, 0], nan=p.oriented_ref) - p.oriented_ref)
                    + p.halo_gain * (-np.nan_to_num(cues[:, 1], nan=-p.halo_ref) - p.halo_ref))
            score[band] = blob[band] + corr
        if p.edge_px > 0 and n:
            H, W = z.shape
            d_edge = np.minimum.reduce([feats["x"] + 0.5, W - 0.5 - feats["x"], feats["y"] + 0.5, H - 0.5 - feats["y"]])
            score = np.where(d_edge < p.edge_px, -np.inf, score)
        feats["score"] = score
        return feats

    def detect_frame(self, frame: np.ndarray) -> Detections:
        p = self.params
        f = self.candidates(frame)
        ok = f["score"] >= p.score_threshold
        if not ok.any():
            return Detections.empty()
        f = {k: v[ok] for k, v in f.items()}
        c, s = np.cos(f["angle"]), np.sin(f["angle"])
        half_w = np.sqrt((f["a"] * c) ** 2 + (f["b"] * s) ** 2) + p.box_margin_px
        half_h = np.sqrt((f["a"] * s) ** 2 + (f["b"] * c) ** 2) + p.box_margin_px
        H, W = np.asarray(frame).shape[:2]
        cx, cy = f["x"], f["y"]
        xyxy = np.stack([np.clip(cx - half_w, 0, W), np.clip(cy - half_h, 0, H),
                         np.clip(cx + half_w, 0, W), np.clip(cy + half_h, 0, H)], axis=1)
        conf = 1.0 / (1.0 + np.exp(-(f["score"] - p.score_threshold) / (0.25 * p.score_threshold)))
        cls = np.where(f["area"] > p.max_area_px, 1, 0)
        return Detections(xyxy, conf, cls)


def _shape_features(zs: np.ndarray, px: np.ndarray, py: np.ndarray, half: int) -> dict[str, np.ndarray]:
    """Centroid, axes, orientation, axis ratio, area and midpiece evidence of each candidate.

    All candidates at once: their ``(2 half + 1)^2`` windows are gathered from a reflect-padded
    copy, weighted by the positive evidence above 1 inside a disc, and reduced to moments.
    """
    n = len(px)
    if n == 0:  # a flat or empty frame: no candidate, and numpy cannot reshape (0, -1)
        return {k: np.zeros(0) for k in ("x", "y", "a", "b", "angle", "elongation", "area", "midpiece")}
    k = 2 * half + 1
    pad = half + 12
    zp = cv2.copyMakeBorder(zs, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    dy, dx = np.mgrid[-half:half + 1, -half:half + 1]
    disc = (dx**2 + dy**2) <= half**2
    win = zp[(py + pad)[:, None, None] + dy[None], (px + pad)[:, None, None] + dx[None]]
    w = np.clip(win - 1.0, 0, None) * disc
    area = (win > 1.0).reshape(n, -1).sum(1) if n else np.zeros(0)
    sw = w.reshape(n, -1).sum(1) + 1e-9
    mx = (w * dx).reshape(n, -1).sum(1) / sw
    my = (w * dy).reshape(n, -1).sum(1) / sw
    ddx, ddy = dx[None] - mx[:, None, None], dy[None] - my[:, None, None]
    sxx = (w * ddx**2).reshape(n, -1).sum(1) / sw + 1 / 12
    syy = (w * ddy**2).reshape(n, -1).sum(1) / sw + 1 / 12
    sxy = (w * ddx * ddy).reshape(n, -1).sum(1) / sw
    tr, det = sxx + syy, sxx * syy - sxy**2
    disc_ = np.sqrt(np.maximum(tr**2 / 4 - det, 0))
    l1, l2 = tr / 2 + disc_, np.maximum(tr / 2 - disc_, 1e-6)
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    a, b = 2 * np.sqrt(l1), 2 * np.sqrt(l2)
    x, y = px + mx, py + my
    # midpiece: mean z along the head axis from 2 to 6 px past the head's end, darker end wins
    ds = np.arange(2, 7)[None, :] + a[:, None]
    mids = []
    for sgn in (1.0, -1.0):
        sx = np.clip(np.round(x[:, None] + sgn * ds * np.cos(angle)[:, None]).astype(int) + pad, 0, zp.shape[1] - 1)
        sy = np.clip(np.round(y[:, None] + sgn * ds * np.sin(angle)[:, None]).astype(int) + pad, 0, zp.shape[0] - 1)
        mids.append(zp[sy, sx].mean(1))
    midpiece = -np.minimum(mids[0], mids[1]) if n else np.zeros(0)
    return {"x": x, "y": y, "a": a, "b": b, "angle": angle, "elongation": np.sqrt(l1 / l2),
            "area": area.astype(np.float64), "midpiece": midpiece}


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
