"""Detectors: ``detect(frames) -> list[Detections]``, one :class:`~spermtrack.types.Detections`
per frame, batched over a stack of gray frames.

- :class:`BlobDetector` (default, no network; ships a small classifier): peaks of the
  HLDNBM-background-subtracted, matched-filtered frame, with an operating point calibrated on the
  video itself (:mod:`spermtrack.detect.calibrate`), then a sperm-vs-impurity classifier on every
  accepted candidate (:mod:`spermtrack.detect.classifier`).
- :class:`~spermtrack.detect.yolo.SlicedYoloDetector` (needs a user ``.pt``): overlapping tiles,
  one batched ultralytics ``predict`` per chunk, boxes fused across tile borders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

import cv2
import numpy as np

from spermtrack.detect.calibrate import (DetectorCalibration, calibrate, local_maxima, oriented,
                                         recalibrate_chunk, response)
from spermtrack.errors import ParameterError
from spermtrack.types import OTHER_CLS, Detections, check_ranges, ranged

Polarity = Literal["auto", "bright", "dark"]
POLARITIES: tuple[str, ...] = ("auto", "bright", "dark")


class Detector(Protocol):
    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        """One Detections per frame of a ``(N, H, W)`` uint8 stack (or a list of frames)."""


@dataclass(frozen=True)
class BlobParams:
    """Parameters of :class:`BlobDetector` (z units: the frame's background spread; see
    :mod:`spermtrack.detect.calibrate`).

    Attributes:
        polarity: ``auto`` (decided per video), ``bright`` (phase contrast) or ``dark`` heads
            (bright field).
        score_threshold: a fixed operating point in z units; None (default) calibrates it on the
            video (``max(floor_z, head_ratio x head level)``).
        floor_z: no candidate below this many background spreads is ever a head.
        head_ratio: the threshold as a fraction of the video's typical head contrast.
        min_head_level_z: below this head level the video has no head mode: zero detections.
        head_length_px: the head core length in px; None estimates it from the video.
        calib_frames: frames of the first chunk used to calibrate.
        recalibrate: re-estimate the head level on every later chunk; the level used is the median
            of the latest estimates (drift that lasts moves it, one odd chunk does not).
        box_margin_px: added on each side of the head's half-maximum ellipse.
        box_factor: boxes are at least this many head core lengths wide and high (annotated
            boxes include the halo: VISEM's are ~2.5 core lengths).
        edge_px: a blob whose visible centroid lies closer than this to the frame edge is a head
            cut by the border (or something else cut by it). Without a classifier it is dropped;
            with one it is judged on its crop mirrored at the border (the cut head made whole)
            and is a head only with a sperm probability >= ``edge_min_prob`` (else "other").
            0: no candidate is treated as cut.
        edge_heads: False drops border candidates (the rule before 2026-12: border heads missed).
        edge_min_prob: the sperm probability a border candidate needs to be a head. VISEM labels
            heads cut by the border (1-7 % of the labels of the 16 gt videos lie within 8 px of
            it); the mirrored crop also makes some debris look whole, hence the stricter bar.
            Chosen on video 11 frames 0-734 (F1 0.9541 -> 0.9555; 0.6: 0.941, 0.8: 0.953,
            0.95: 0.955).
        merge_factor: two maxima up to this many head lengths apart are one object when the
            response does not dip between them (one blob seen as two peaks: a ring, a head and its
            bright rim); two touching heads keep a dip and stay two.
        core_window: radius (head lengths) of the window where a candidate's centre, axes and core
            area are measured; wider windows pull the centres of neighbouring blobs together.
        cluster_area_factor: a core larger than this many median head cores is a cluster (cls 1).
        sperm_min_prob: the classifier's sperm probability needed for class 0; other accepted
            candidates are exported as cls 3 ("other") or 1 (cluster).
        duplicate_factor: of two heads (class 0) closer than this many head lengths, the one with
            the lower sperm probability is a second maximum of the same cell and becomes "other"
            (with the classifier only; 0: off). Two real heads touching side by side or end to end
            are 0.6-1.1 head lengths apart at their centres, so a few true pairs are lost too.
        classifier_reuse_tol: a candidate that stays in place keeps the classifier's answer of the
            previous frame while its crop differs from the one that answer was computed on by less
            than this (:class:`~spermtrack.detect.classifier.ProbabilityReuse`; 0: every candidate
            is classified on every frame). At 0.1 the classifier ran on 23 % of video 11's
            candidates (detection 56 -> 31 s) and the F1 of frames 0-734 moved by 0.0004; chosen
            from the crop differences of frames 300-460 (immotile heads ~0.02, 100 frames apart
            ~0.12).
        classifier_scale_band: the classifier sees the frame resized so that the video's head
            core has the length of the heads it was trained on (its ``head_length_px``), unless
            the two lengths differ by less than this factor (then the frame as it is); 1 always
            resizes, a large value never does.

    Each field's sensible range is declared with it and checked on construction
    (:class:`~spermtrack.errors.ParameterError` naming the field). The ``detect`` section of
    :class:`~spermtrack.config.Config` feeds it: ``polarity``, ``threshold_z`` (score_threshold),
    ``head_length_px`` and the ``detect.blob`` section (every other field, same names).
    """

    polarity: Polarity = "auto"
    score_threshold: float | None = ranged(None, 0.0, 1000.0)
    floor_z: float = ranged(5.0, 0.0, 1000.0)
    head_ratio: float = ranged(0.25, 0.0, 1.0)
    min_head_level_z: float = ranged(12.0, 0.0, 1000.0)
    head_length_px: float | None = ranged(None, 1.0, 500.0)
    calib_frames: int = ranged(16, 1, 100000)
    recalibrate: bool = True
    box_margin_px: float = ranged(4.0, 0.0, 1000.0)
    box_factor: float = ranged(2.5, 0.0, 100.0)
    edge_px: float = ranged(2.0, 0.0, 1000.0)
    edge_heads: bool = True
    edge_min_prob: float = ranged(0.9, 0.0, 1.0)
    cluster_area_factor: float = ranged(6.0, 1.0, 1000.0)
    merge_factor: float = ranged(1.5, 0.0, 100.0)
    core_window: float = ranged(0.6, 0.01, 100.0)
    sperm_min_prob: float = ranged(0.6, 0.0, 1.0)
    classifier_scale_band: float = ranged(1.15, 1.0, 1000.0)
    duplicate_factor: float = ranged(1.25, 0.0, 100.0)
    classifier_reuse_tol: float = ranged(0.1, 0.0, 10.0)

    def __post_init__(self) -> None:
        if self.polarity not in POLARITIES:
            raise ParameterError(f"polarity={self.polarity!r}: use one of {', '.join(POLARITIES)}")
        check_ranges(self)


class BlobDetector:
    """Self-calibrating head detector (no network; see the module doc and
    :mod:`spermtrack.detect.calibrate`).

    Per frame: orient (dark-head videos are inverted), ``z = (G_sigma * I - mu) / spread`` with
    ``mu`` the HLDNBM local median (``enhance=False``: one global median), local maxima at least
    one head apart, sub-pixel centroid, axes and orientation from the half-maximum core, edge rule,
    threshold from the calibration, then the classifier (sperm / impurity / cluster). The first
    :meth:`detect` call of a video calibrates; :meth:`reset` forgets it (a new video).

    Args:
        enhance: HLDNBM local background (default) or one global median per frame.
        classifier: ``"default"`` (the weights shipped in the package), None (no classifier:
            every accepted candidate is a head), a path to weights from ``spermtrack train
            classifier``, or an object with ``predict_proba(frame, xs, ys) -> (n, 3)``.
        params: :class:`BlobParams`; keyword overrides of single fields are accepted too.
    """

    def __init__(self, *, enhance: bool = True, classifier="default", params: BlobParams | None = None,
                 **overrides):
        self.enhance = enhance
        p = params or BlobParams()
        self.params = BlobParams(**{**p.__dict__, **overrides}) if overrides else p
        self._classifier_spec = classifier
        self._classifier = None
        self.calibration: DetectorCalibration | None = None
        self._frames_seen = 0
        self._reuse = None  # ProbabilityReuse of the current video (created on first use)

    # -- calibration ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the calibration (call between videos)."""
        self.calibration = None
        self._frames_seen = 0
        if self._reuse is not None:
            self._reuse.clear()

    def calibrate(self, frames) -> DetectorCalibration:
        p = self.params
        self.calibration = calibrate(frames, polarity=p.polarity, head_length_px=p.head_length_px,
                                     floor_z=p.floor_z, head_ratio=p.head_ratio,
                                     min_head_level_z=p.min_head_level_z, n_frames=p.calib_frames,
                                     local_background=self.enhance)
        if p.score_threshold is not None:
            self.calibration.threshold_z = float(p.score_threshold)
            self.calibration.threshold_rule = f"fixed by the user ({p.score_threshold})"
        return self.calibration

    def calibration_record(self) -> dict | None:
        """What was chosen and why (``summary.json`` ``detector_calibration``)."""
        if self.calibration is None:
            return None
        d = self.calibration.to_dict()
        clf = self.classifier
        d["classifier"] = clf.header() if clf is not None and hasattr(clf, "header") else (
            None if clf is None else type(clf).__name__)
        d["sperm_min_prob"] = self.params.sperm_min_prob
        if clf is not None:
            scale, why = self.classifier_scale()
            d["classifier_input_scale"] = scale
            d["classifier_input_scale_rule"] = why
            r = self._reuse
            d["classifier_reuse"] = {"tol": self.params.classifier_reuse_tol,
                                     "candidates": r.n_seen if r is not None else 0,
                                     "classified": r.n_computed if r is not None else 0}
        return d

    def classifier_scale(self) -> tuple[float, str]:
        """The factor the frame is resized by before the classifier sees it, and why.

        The classifier learned heads of one size (``head_length_px`` of its weights; the shipped
        ones: video-11-like phase-contrast heads, ~8.5 px cores). On a video whose calibrated head
        core is much longer or shorter (another magnification or camera: the bright-field clip
        S_0001's cores are ~12 px) the frame is resized by ``trained / video`` so that the heads
        it sees have the size it knows; within ``classifier_scale_band`` nothing is resized.
        """
        from spermtrack.detect.calibrate import REFERENCE_HEAD_PX

        cal, clf = self.calibration, self.classifier
        trained = float(getattr(clf, "head_length_px", None) or REFERENCE_HEAD_PX)
        video = float(cal.head_length_px) if cal is not None else float("nan")
        if not np.isfinite(video) or video <= 0:
            return 1.0, "head length unknown: frame as it is"
        ratio = trained / video
        band = self.params.classifier_scale_band
        if abs(np.log(ratio)) < np.log(band):
            return 1.0, (f"video head core {video:.2f} px within x{band:g} of the classifier's "
                         f"{trained:.2f} px: frame as it is")
        return float(ratio), (f"video head core {video:.2f} px vs the classifier's {trained:.2f} px "
                              f"(outside x{band:g}): frame resized by {ratio:.3f}")

    @property
    def classifier(self):
        spec = self._classifier_spec
        if spec is None:
            return None
        if self._classifier is None:
            if hasattr(spec, "predict_proba"):
                self._classifier = spec
            else:
                from spermtrack.detect.classifier import DEFAULT_WEIGHTS, CandidateClassifier

                if spec == "default" and not DEFAULT_WEIGHTS.is_file():
                    # a source checkout without the shipped weights: say so, detect without it
                    self._classifier_spec = None
                    if self.calibration is not None:
                        self.calibration.warnings.append(
                            f"no classifier: {DEFAULT_WEIGHTS} is missing (reinstall spermtrack or train one "
                            f"with `spermtrack train classifier`); impurities are not rejected")
                    return None
                self._classifier = CandidateClassifier.load(None if spec == "default" else spec)
        return self._classifier

    # -- detection --------------------------------------------------------------------------------

    def evidence(self, frame: np.ndarray) -> np.ndarray:
        """The z map of one frame (heads positive) at the calibrated scale."""
        cal = self.calibration or self.calibrate([frame])
        return response(oriented(frame, cal.sign), cal.scale, local_background=self.enhance)[0]

    def detect(self, frames) -> list[Detections]:
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = frames[None]
        if len(frames) == 0:
            return []
        if self.calibration is None:
            self.calibrate(frames)
        elif self.params.recalibrate and self.params.score_threshold is None and len(frames) >= 8:
            recalibrate_chunk(self.calibration, frames, self._frames_seen, head_ratio=self.params.head_ratio,
                              min_head_level_z=self.params.min_head_level_z, local_background=self.enhance)
        self._frames_seen += len(frames)
        return [self.detect_frame(f) for f in frames]

    def candidates(self, frame: np.ndarray, min_z: float | None = None) -> dict[str, np.ndarray]:
        """Every local maximum above ``min_z`` (default: the floor) with its features.

        Keys: ``x, y`` (sub-pixel centre), ``a, b`` (2-sigma semi-axes of the half-maximum core),
        ``angle``, ``elongation``, ``area`` (core px), ``peak`` and ``score`` (z), ``edge`` (True:
        centred outside the frame).
        """
        cal = self.calibration or self.calibrate([frame])
        p = self.params
        bright = oriented(frame, cal.sign)
        z, _ = response(bright, cal.scale, local_background=self.enhance)
        floor = p.floor_z if min_z is None else min_z
        px, py = local_maxima(z, cal.separation_px, floor, merge_px=p.merge_factor * cal.head_length_px)
        feats = _core_features(z, px, py, max(3, int(np.ceil(p.core_window * cal.head_length_px))))
        # a cluster's core spreads over several head lengths: its area is measured on a wide window
        feats["area"] = _core_features(z, px, py, max(4, int(np.ceil(1.5 * cal.head_length_px))))["area"]
        feats["peak"] = z[py, px].astype(np.float64)
        feats["score"] = feats["peak"].copy()
        H, W = z.shape
        x, y = feats["x"], feats["y"]
        d_edge = np.minimum.reduce([x + 0.5, W - 0.5 - x, y + 0.5, H - 0.5 - y]) if len(x) else np.zeros(0)
        feats["edge"] = d_edge < p.edge_px if p.edge_px > 0 else np.zeros(len(x), bool)
        feats["_bright"] = bright
        return feats

    def detect_frame(self, frame: np.ndarray) -> Detections:
        p = self.params
        cal = self.calibration or self.calibrate([frame])
        if not cal.has_heads:
            return Detections.empty()
        f = self.candidates(frame, min_z=min(cal.threshold_z, p.floor_z))
        bright = f.pop("_bright")
        clf = self.classifier
        # a candidate cut by the border is judged by the classifier (mirrored crop) or dropped
        judged = clf is not None and p.edge_heads
        ok = (f["score"] >= cal.threshold_z) & (judged | ~f["edge"])
        if not ok.any():
            return Detections.empty()
        f = {k: v[ok] for k, v in f.items()}
        cx, cy = f["x"], f["y"]
        c, s = np.cos(f["angle"]), np.sin(f["angle"])
        # label-like boxes: VISEM boxes include the halo, ~2.5 head core lengths (median 22 px
        # for ~9 px cores over the 16 gt videos); a larger blob keeps its own extent
        half_min = p.box_factor * cal.head_length_px / 2
        half_w = np.maximum(np.sqrt((f["a"] * c) ** 2 + (f["b"] * s) ** 2) + p.box_margin_px, half_min)
        half_h = np.maximum(np.sqrt((f["a"] * s) ** 2 + (f["b"] * c) ** 2) + p.box_margin_px, half_min)
        H, W = bright.shape
        xyxy = np.stack([np.clip(cx - half_w, 0, W), np.clip(cy - half_h, 0, H),
                         np.clip(cx + half_w, 0, W), np.clip(cy + half_h, 0, H)], axis=1)
        core_area = np.pi * (0.5 * cal.head_length_px) * (0.5 * (cal.head_width_px if np.isfinite(
            cal.head_width_px) else 0.6 * cal.head_length_px))
        cls = np.where(f["area"] > p.cluster_area_factor * core_area, 1, 0)
        conf = 1.0 / (1.0 + np.exp(-(f["score"] - cal.threshold_z) / max(0.25 * cal.threshold_z, 1e-6)))
        if clf is not None:
            edge = f["edge"]
            kw = {}
            if _accepts(clf.predict_proba, "head_contrast_gray"):
                # how bright a head of this video typically is (gray levels above background):
                # an out-of-focus blob is much dimmer than an in-focus head of the same video
                kw["head_contrast_gray"] = cal.spread_gray * cal.head_level_z
            scale, _ = self.classifier_scale()
            seen = bright if scale == 1.0 else cv2.resize(
                bright, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            if edge.any() and _accepts(clf.predict_proba, "mirror"):
                kw["mirror"] = edge
            prob = np.asarray(self._classify(clf, seen, cx * scale, cy * scale, kw), np.float64)
            # the classifier decides head or not; a cluster is a blob of several head cores (its
            # own cluster class is too rare in training to be trusted alone: benchmark F1 ~0.1)
            sperm = (prob[:, 0] >= p.sperm_min_prob) & (~edge | (prob[:, 0] >= p.edge_min_prob))
            cluster = (cls == 1) & (sperm | (prob[:, 2] > prob[:, 1]))
            # one head, one detection: of two heads closer than duplicate_factor head lengths the
            # less probable is a second maximum of the same cell (its halo's bright rim, a tail
            # kink): kept, as "other"
            sperm &= ~duplicates(np.c_[cx, cy], prob[:, 0], sperm & ~cluster,
                                 p.duplicate_factor * cal.head_length_px)
            cls = np.where(cluster, 1, np.where(sperm, 0, OTHER_CLS))
            conf = np.where(cluster, prob[:, 0] + prob[:, 2], np.where(sperm, prob[:, 0], prob[:, 1]))
        return Detections(xyxy, conf, cls)

    def _classify(self, clf, frame: np.ndarray, xs: np.ndarray, ys: np.ndarray, kw: dict) -> np.ndarray:
        """The classifier's probabilities; unchanged candidates keep the previous frame's answer
        (``classifier_reuse_tol``) when the classifier is a :class:`CandidateClassifier`."""
        from spermtrack.detect.classifier import CandidateClassifier, ProbabilityReuse

        tol = self.params.classifier_reuse_tol
        if tol <= 0 or not isinstance(clf, CandidateClassifier):
            return clf.predict_proba(frame, xs, ys, **kw)
        if self._reuse is None or self._reuse.tol != tol:
            self._reuse = ProbabilityReuse(tol)
        return self._reuse.predict_proba(clf, frame, xs, ys, **kw)


def duplicates(xy: np.ndarray, score: np.ndarray, among: np.ndarray, radius: float) -> np.ndarray:
    """``(n,) bool``: the points of ``among`` that lie within ``radius`` of a higher-scoring point
    of ``among`` kept before them (greedy, best first: non-maximum suppression by distance)."""
    idx = np.flatnonzero(among)
    out = np.zeros(len(xy), bool)
    if len(idx) < 2 or not radius > 0:
        return out
    idx = idx[np.argsort(-score[idx], kind="stable")]
    pts = np.asarray(xy, np.float64)[idx]
    close = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1]) <= radius
    kept = np.zeros(len(idx), bool)
    for i in range(len(idx)):
        if not (close[i, :i] & kept[:i]).any():
            kept[i] = True
    out[idx[~kept]] = True
    return out


def _accepts(fn, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _core_features(z: np.ndarray, px: np.ndarray, py: np.ndarray, half: int) -> dict[str, np.ndarray]:
    """Centroid, axes, orientation, axis ratio and area of each candidate's half-maximum core.

    All candidates at once: their ``(2 half + 1)^2`` windows are gathered from a zero-padded copy
    (outside the frame is background), weighted by the response above half the candidate's peak
    inside a disc, and reduced to moments.
    """
    n = len(px)
    keys = ("x", "y", "a", "b", "angle", "elongation", "area")
    if n == 0:
        return {k: np.zeros(0) for k in keys}
    pad = half + 1
    zp = cv2.copyMakeBorder(z, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    dy, dx = np.mgrid[-half:half + 1, -half:half + 1]
    disc = (dx**2 + dy**2) <= half**2
    win = zp[(py + pad)[:, None, None] + dy[None], (px + pad)[:, None, None] + dx[None]]
    halfmax = 0.5 * z[py, px][:, None, None]
    w = np.clip(win - halfmax, 0, None) * disc
    area = ((win > halfmax) & disc).reshape(n, -1).sum(1)
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
    return {"x": px + mx, "y": py + my, "a": 2 * np.sqrt(l1), "b": 2 * np.sqrt(l2), "angle": angle,
            "elongation": np.sqrt(l1 / l2), "area": area.astype(np.float64)}

