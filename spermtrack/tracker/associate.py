"""Online association: a DeepSORT for 10-30 px sperm heads moving up to ~10 px a frame.

The structure is DeepSORT's (Wojke et al. 2017, as packaged by deep-sort-realtime 1.3.2):
a Kalman prediction per track, a chi-square gate on the Mahalanobis distance between predicted
and detected positions, an appearance cost (cosine distance to a per-track gallery of at most
``nn_budget`` embeddings, kept by deep-sort-realtime's ``NearestNeighborDistanceMetric``)
inside that gate, confirmed tracks matched before tentative ones, a track confirmed after a few
hits and deleted after a while unseen. What is changed, and why (details in docs/TRACKER.md):

- **Motion model**: deep-sort-realtime filters an 8-D ``x, y, aspect, height`` state whose
  noise scales with box height; for 20 px boxes that makes the gate a few px wide whatever the
  speed, and aspect/height of tiny boxes is mostly noise. Here a constant-velocity filter of the
  head *centre* in px (:mod:`spermtrack.tracker.kalman`), noise in px and px/s^2, batched over
  all tracks with numpy (the per-track Python objects of the library cost more than the whole
  frame budget at 66 cells and 300 frames/s).
- **Second stage**: the library matches tentative tracks by IoU, which fails for small boxes
  moving more than half their size per frame; here they are matched on the same centre cost.
- **Cost**: ``d^2 + 2 ln S`` (the negative log-likelihood of the detection under the track's
  predicted position, ``S`` its isotropic innovation variance), plus the log-size distance,
  plus ``iou_weight`` x (1 - IoU of the predicted and detected boxes), plus
  ``appearance_weight`` x cosine distance. The ``ln S`` term does what the library's matching cascade (recently seen
  tracks first) does, in one assignment instead of ``max_age`` of them.
- **Pluggable cost** (norfair's way): ``cost(tracks, detections) -> (T, D)`` ranks the pairs
  inside the motion gate; the default is the cost above (:func:`motion_cost`).
- **Appearance on demand**: embeddings are computed only for detections with two or more
  tracks in their gate (``embed_fn`` or ``embedder``), batched per frame, and counted; without
  either the tracker is motion-only.
- **Push**: the caller owns the frame loop (:class:`~spermtrack.tracker.base.Tracker`):
  ``update(detections)`` per frame, ``tracks()`` for the table.
- **Time in seconds**: confirmation and deletion are given in seconds and converted with fps.
- Library bugs avoided: no embedder import (``pkg_resources``), zero-size boxes are fine (the
  cost uses centres), the gallery always has a budget, and ``partial_fit`` is given only targets
  that have samples (it raises ``KeyError`` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from deep_sort_realtime.deep_sort.nn_matching import NearestNeighborDistanceMetric
from scipy.optimize import linear_sum_assignment

from spermtrack.errors import ParameterError
from spermtrack.tracker import kalman
from spermtrack.tracker.base import Tracker
from spermtrack.geometry import box_iou
from spermtrack.types import SPERM_CLS, Detections, check_fps, check_positive, empty_tracks, make_tracks

_BIG = 1e6

#: ``embed_fn(frame_index, boxes_ltwh (K, 4)) -> (K, D)``: the hook fetches the frame's pixels itself.
EmbedFn = Callable[[int, np.ndarray], np.ndarray]
#: ``embed(image (H, W), boxes_ltwh (K, 4)) -> (K, D)``: the pixels come with ``update(..., image=...)``.
PixelEmbedFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_Embed = Callable[[int, "np.ndarray | None", np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TrackerParams:
    """Association parameters (px and seconds; converted to frames with the video's fps).

    Attributes:
        meas_sigma_px: s.d. of a detected head centre about the true one. Larger widens every
            gate and trusts detections less (smoother, slower to follow turns). 2.5 px holds
            for detectors with 0-2 px jitter; too small a value splits tracks constantly.
        accel_sigma_px_s2: s.d. of the white acceleration of the constant-velocity model.
            Larger follows head wobble and turns (gates grow faster between frames) but lets a
            track reach further for a neighbour's detection; smaller keeps immotile cells'
            gates tight. 1500 px/s^2 is 0.6 px/frame^2 at 50 fps.
        init_speed_sigma_px_s: prior s.d. of a new track's speed: the gate radius of a track's
            second frame is about 3x this per frame. Make it cover the fastest cells.
        size_sigma: s.d. of the log box width and height between a track and its next
            detection (0.2 = about 20 %). Box size separates a head from a cluster or an
            immotile cell whose centre lies a few px away, where position alone cannot. 0
            switches the size cue off.
        size_smoothing: weight of a new detection in the track's running log box size.
        gate_chi2: gate on the Mahalanobis distance of centre (2 dof) plus log size (2 dof)
            (chi-square, 4 dof; 13.28 = 99 %). Larger tolerates worse predictions, smaller
            splits tracks at sudden moves.
        max_gate_px: absolute cap on the gate radius, so tracks unseen for a while cannot claim
            far-away detections.
        confirm_s: a track is confirmed (output) after this many seconds of hits (at least 2
            frames). Longer removes more false-positive tracks, shorter keeps short tracks.
        max_tentative_misses: frames a not-yet-confirmed track may go unmatched before it is
            dropped (DeepSORT: 0).
        max_age_s: a confirmed track unseen this long is ended. Longer bridges longer
            detector dropouts online; the offline stitcher bridges longer ones still.
        appearance_weight: cost added per unit of cosine distance where embeddings exist. 0
            uses appearance only as a gate.
        max_cosine_distance: pairs whose cosine distance is above this are not matched
            (DeepSORT's appearance gate; only where both sides have an embedding). A loose
            gate: a head turns and defocuses, so its own embeddings drift; at 0.4 a ResNet50
            trained on synthetic heads blocked true matches and doubled ID switches; 0.7 was
            chosen on the synthetic benchmark clip (a tuning number), and on the held-out clip
            ReID shows no measured gain (benchmarks/results/id_switches.md, ``synth-heldout``).
        nn_budget: embeddings kept per track (oldest dropped). Bounds memory and cost.
        embed_min_candidates: a detection is embedded when at least this many tracks lie in
            its motion gate (2 = only ambiguous ones; 0 = every detection, DeepSORT's way,
            for comparison).
        iou_weight: cost added per unit of (1 - IoU) between the track's predicted box (its
            predicted centre and running size) and a detection's box. Centre and size jointly:
            it separates a head from the cell or cluster box it overlaps better than the
            separate centre and size terms (on the video-24 ``noisy`` set it cut ID switches
            from 9 to 2). 0 switches it off.
        class_weight: cost added per unit of difference between the share of sperm-class (0)
            detections in the track's recent history (``class_smoothing``-weighted running mean)
            and the detection's (1 if class 0, else 0). On real video a moving head often has a
            satellite a few px away (its halo's rim, a tail kink, a speck it passes: the
            detector's class 3, "other"); without this term the head's track and the
            satellite's can swap where they touch. It only ranks pairs inside the motion gate:
            a head whose class flickers is still followed where nothing competes. 0 switches it
            off.
        class_smoothing: weight of a new detection in the track's running sperm-class share.
    """

    meas_sigma_px: float = 3.0
    accel_sigma_px_s2: float = 1500.0
    init_speed_sigma_px_s: float = 250.0
    size_sigma: float = 0.3
    size_smoothing: float = 0.5
    gate_chi2: float = 13.28
    max_gate_px: float = 20.0
    confirm_s: float = 0.06
    max_tentative_misses: int = 1
    max_age_s: float = 0.5
    appearance_weight: float = 5.0
    max_cosine_distance: float = 0.7
    nn_budget: int = 30
    embed_min_candidates: int = 2
    iou_weight: float = 5.0
    class_weight: float = 0.0
    class_smoothing: float = 0.25

    def validate(self) -> "TrackerParams":
        check_positive("meas_sigma_px", self.meas_sigma_px, 0.01, 100.0)
        check_positive("accel_sigma_px_s2", self.accel_sigma_px_s2, 1e-3, 1e7)
        check_positive("init_speed_sigma_px_s", self.init_speed_sigma_px_s, 1e-3, 1e6)
        check_positive("gate_chi2", self.gate_chi2, 0.1, 1000.0)
        check_positive("size_sigma", self.size_sigma, 0.0, 100.0)
        check_positive("size_smoothing", self.size_smoothing, 0.0, 1.0)
        check_positive("max_gate_px", self.max_gate_px, 0.5, 10000.0)
        check_positive("confirm_s", self.confirm_s, 0.0, 60.0)
        check_positive("max_age_s", self.max_age_s, 0.0, 3600.0)
        check_positive("appearance_weight", self.appearance_weight, 0.0, 1e6)
        check_positive("max_cosine_distance", self.max_cosine_distance, 0.0, 2.0)
        check_positive("class_weight", self.class_weight, 0.0, 1e6)
        check_positive("class_smoothing", self.class_smoothing, 0.0, 1.0)
        if int(self.nn_budget) < 1:
            raise ParameterError(f"nn_budget={self.nn_budget!r} must be >= 1")
        if int(self.max_tentative_misses) < 0:
            raise ParameterError(f"max_tentative_misses={self.max_tentative_misses!r} must be >= 0")
        return self


@dataclass(frozen=True)
class TrackState:
    """The live tracks as the association cost sees them: predicted to the current frame, one row
    per track (``T`` rows; arrays are the cost's own copies).

    Attributes:
        ids: ``(T,)`` internal track ids (:meth:`SpermTracker.tracks` renumbers them).
        centers_px: ``(T, 2)`` predicted head centres ``x, y`` (px).
        velocities_px_frame: ``(T, 2)`` estimated velocities (px/frame).
        innovation_var_px2: ``(T,)`` variance, per axis, of a detected centre about the predicted
            one: the track's position uncertainty plus ``meas_sigma_px ** 2`` (px^2). Grows while
            a track goes unseen.
        log_wh: ``(T, 2)`` running log box width and height (log px).
        confirmed: ``(T,)`` whether the track is confirmed.
        misses: ``(T,)`` consecutive frames the track went unmatched before this one.
    """

    ids: np.ndarray
    centers_px: np.ndarray
    velocities_px_frame: np.ndarray
    innovation_var_px2: np.ndarray
    log_wh: np.ndarray
    confirmed: np.ndarray
    misses: np.ndarray


#: ``cost(tracks, detections) -> (T, D)`` float array, lower = better; ``inf`` or NaN forbids a
#: pair. Finite costs must stay well below 1e6 (the assignment's "no match" value).
CostFn = Callable[[TrackState, Detections], np.ndarray]


def motion_cost(tracks: TrackState, detections: Detections, params: TrackerParams | None = None) -> np.ndarray:
    """The default association cost, ``(T, D)``: ``d^2 / S + 2 ln S`` (negative log-likelihood of
    the detected centre under the predicted one, ``S`` = ``tracks.innovation_var_px2``) plus the
    log-size distance ``|log wh - log wh_track|^2 / size_sigma^2`` plus ``iou_weight`` x (1 - IoU
    of the predicted and detected boxes).

    :class:`SpermTracker` without ``cost`` computes exactly this (together with its gate); call it
    to build on it, e.g. ``cost=lambda t, d: motion_cost(t, d, params) + my_term(t, d)``.

    Args:
        tracks: the predicted tracks.
        detections: this frame's detections.
        params: supplies ``size_sigma`` and ``iou_weight`` (default :class:`TrackerParams`).
    """
    p = params or TrackerParams()
    z, logwh = _centres_logwh(detections)
    s = tracks.innovation_var_px2
    _, maha = _mahalanobis(tracks.centers_px, s, tracks.log_wh, z, logwh, p.size_sigma)
    return _motion_cost(maha, s, tracks.centers_px, tracks.log_wh, z, logwh, p.iou_weight)


def _centres_logwh(dets: Detections) -> tuple[np.ndarray, np.ndarray]:
    """Detected centres (px) and log box sizes (boxes under 1 px count as 1 px)."""
    if not len(dets):
        return np.zeros((0, 2)), np.zeros((0, 2))
    return dets.centers.astype(np.float64), np.log(np.maximum(dets.wh.astype(np.float64), 1.0))


def _mahalanobis(centers: np.ndarray, s: np.ndarray, logwh_t: np.ndarray, z: np.ndarray, logwh_d: np.ndarray,
                 size_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Squared centre distances (px^2) and the centre + log-size Mahalanobis distances, ``(T, D)``."""
    diff = z[None, :, :] - centers[:, None, :]
    dist2 = np.einsum("tdk,tdk->td", diff, diff)
    maha = dist2 / s[:, None]
    if size_sigma > 0:
        dsz = logwh_d[None, :, :] - logwh_t[:, None, :]
        maha = maha + np.einsum("tdk,tdk->td", dsz, dsz) / size_sigma ** 2
    return dist2, maha


def _motion_cost(maha: np.ndarray, s: np.ndarray, centers: np.ndarray, logwh_t: np.ndarray, z: np.ndarray,
                 logwh_d: np.ndarray, iou_weight: float) -> np.ndarray:
    cost = maha + 2.0 * np.log(s)[:, None]
    if iou_weight > 0:
        cost = cost + iou_weight * (1.0 - box_iou(np.hstack([centers, np.exp(logwh_t)]), np.hstack([z, np.exp(logwh_d)]),
                                                   fmt="cxcywh"))
    return cost


def _method_or_callable(hook: Any, name: str, call: str) -> Callable:
    if hasattr(hook, "embed"):
        return hook.embed
    if callable(hook):
        return hook
    raise ParameterError(f"{name} must be a callable {call} -> (K, D) array or an object with an "
                         f".embed{call} method")


def _embed_hook(embed_fn: Any, embedder: Any) -> _Embed | None:
    """One internal hook ``(frame_index, image or None, boxes_ltwh)`` from either user hook."""
    if embed_fn is not None and embedder is not None:
        raise ParameterError("give embed_fn (by frame index) or embedder (by pixels), not both")
    if embed_fn is not None:
        by_index = _method_or_callable(embed_fn, "embed_fn", "(frame_index, boxes_ltwh)")
        return lambda frame, image, boxes: by_index(frame, boxes)
    if embedder is None:
        return None
    by_pixels = _method_or_callable(embedder, "embedder", "(image, boxes_ltwh)")

    def embed(frame: int, image: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
        if image is None:
            raise ParameterError(f"frame {frame}: the embedder needs the frame's pixels; "
                                 f"push them with update(detections, frame, image=...)")
        return by_pixels(image, boxes)
    return embed


class SpermTracker(Tracker):
    """Online multi-object tracker of sperm heads (motion first, appearance when ambiguous).

    Push each frame's detections with :meth:`update` (frames 0, 1, 2, ... unless given), read the
    Tracks table with :meth:`tracks`; :meth:`run` does both for a whole video.

    Args:
        fps: frame rate of the video; turns the seconds in ``params`` into frames.
        params: :class:`TrackerParams`.
        embed_fn: optional ``embed_fn(frame_index, boxes_ltwh (K, 4)) -> (K, D) float32``
            L2-normalised embeddings, or an object with such an ``.embed`` method, for hooks that
            fetch the frame themselves (:class:`~spermtrack.tracker.reid.VideoEmbedder`).
        embedder: the same by pixels: ``embed(image (H, W), boxes_ltwh) -> (K, D)`` (or such a
            callable; :class:`~spermtrack.tracker.reid.Embedder`), given the ``image`` pushed with
            :meth:`update`. Either hook is called only for detections that have two or more tracks
            inside their motion gate, once per frame with all of them;
            :attr:`n_embeddings_computed` counts the rows it returned. Give one hook at most.
        cost: the association cost ``cost(tracks: TrackState, detections) -> (T, D)`` (lower =
            better, ``inf`` or NaN forbids a pair). It ranks the pairs inside the motion gate
            (``gate_chi2``, ``max_gate_px``), which stays; the appearance term is added on top. None
            (default): :func:`motion_cost` with ``params``, computed together with the gate.

    Example:
        >>> trk = SpermTracker(50.0)
        >>> for dets in detections_per_frame:
        ...     trk.update(dets)
        >>> tracks = trk.tracks()
        >>> tracks = SpermTracker(50.0).run(dets_by_frame, n_frames)      # the same
        >>> centre = lambda t, d: np.linalg.norm(t.centers_px[:, None] - d.centers[None], axis=2)
        >>> tracks = SpermTracker(50.0, cost=centre).run(dets_by_frame, n_frames)
    """

    def __init__(self, fps: float, *, params: TrackerParams | None = None, embed_fn: EmbedFn | Any = None,
                 embedder: PixelEmbedFn | Any = None, cost: CostFn | None = None):
        if cost is not None and not callable(cost):
            raise ParameterError("cost must be a callable cost(tracks, detections) -> (T, D) array")
        self.fps = check_fps(fps)
        self.params = (params or TrackerParams()).validate()
        p = self.params
        self._r = p.meas_sigma_px ** 2
        self._q = kalman.cv_noise_per_frame(p.accel_sigma_px_s2, self.fps)
        self._p0_vel = (p.init_speed_sigma_px_s / self.fps) ** 2
        self._n_init = max(2, int(round(p.confirm_s * self.fps)))
        self._max_age = max(1, int(round(p.max_age_s * self.fps)))
        self._max_gate2 = p.max_gate_px ** 2
        self._embed = _embed_hook(embed_fn, embedder)
        self._cost = cost
        self._metric = NearestNeighborDistanceMetric("cosine", p.max_cosine_distance, int(p.nn_budget))
        self.n_embeddings_computed = 0
        self._next_id = 1
        self._ids = np.zeros(0, np.int64)
        self._mean = np.zeros((0, 4))
        self._cov = np.zeros((0, 3))
        self._logwh = np.zeros((0, 2))
        self._sperm = np.zeros(0)          # running share of sperm-class (0) detections
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._confirmed = np.zeros(0, bool)
        self._ever_confirmed: set[int] = set()
        self._gallery_ids: set[int] = set()
        # matched detections of every frame: frame, internal track id, box, conf, cls
        self._rec_f: list[np.ndarray] = []
        self._rec_t: list[np.ndarray] = []
        self._rec_box: list[np.ndarray] = []
        self._rec_conf: list[np.ndarray] = []
        self._rec_cls: list[np.ndarray] = []

    # ------------------------------------------------------------------ online step
    def _step(self, detections: Detections, frame: int, image: np.ndarray | None) -> None:
        """Predict, associate, update, start and end tracks; remember the matched detections."""
        tids, cols = self._associate(frame, detections, image)
        if len(tids):
            self._rec_f.append(np.full(len(tids), frame, np.int64))
            self._rec_t.append(tids)
            self._rec_box.append(detections.xyxy[cols])
            self._rec_conf.append(detections.conf[cols])
            self._rec_cls.append(detections.cls[cols])

    def _associate(self, frame_index: int, dets: Detections,
                   image: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """One frame; returns ``(internal track id, det index)`` of every matched or new track."""
        kalman.predict(self._mean, self._cov, self._q)
        z, logwh = _centres_logwh(dets)
        is_sperm = (dets.cls == SPERM_CLS).astype(np.float64) if len(dets) else np.zeros(0)
        n_t, n_d = len(self._ids), len(z)
        row_m = np.zeros(0, np.int64)
        col_m = np.zeros(0, np.int64)
        feats = None
        amb_cols = np.zeros(0, np.int64)
        if n_t and n_d:
            s = self._cov[:, 0] + self._r
            centers = self._mean[:, :2]
            dist2, maha = _mahalanobis(centers, s, self._logwh, z, logwh, self.params.size_sigma)
            gate = (maha <= self.params.gate_chi2) & (dist2 <= self._max_gate2)
            if self._cost is None:
                cost = _motion_cost(maha, s, centers, self._logwh, z, logwh, self.params.iou_weight)
            else:
                cost = self._custom_cost(s, dets)
                gate &= np.isfinite(cost)
            if self.params.class_weight > 0:
                cost = cost + self.params.class_weight * np.abs(self._sperm[:, None] - is_sperm[None, :])
        if self._embed is not None and n_d:
            if not n_t:
                gate, cost = np.zeros((0, n_d), bool), np.zeros((0, n_d))
            cost, gate, feats, amb_cols = self._appearance(frame_index, image, dets, cost, gate)
        if n_t and n_d:
            conf_rows = np.flatnonzero(self._confirmed)
            r1, c1 = _assign(cost, gate, conf_rows, np.arange(n_d))
            free_cols = np.setdiff1d(np.arange(n_d), c1, assume_unique=True)
            r2, c2 = _assign(cost, gate, np.flatnonzero(~self._confirmed), free_cols)
            row_m = np.concatenate([r1, r2])
            col_m = np.concatenate([c1, c2])
        if len(row_m):
            mean, cov = self._mean[row_m], self._cov[row_m]
            kalman.update(mean, cov, z[col_m], self._r)
            self._mean[row_m], self._cov[row_m] = mean, cov
            b = self.params.size_smoothing
            self._logwh[row_m] = (1.0 - b) * self._logwh[row_m] + b * logwh[col_m]
            a = self.params.class_smoothing
            self._sperm[row_m] = (1.0 - a) * self._sperm[row_m] + a * is_sperm[col_m]
        matched = np.zeros(n_t, bool)
        matched[row_m] = True
        self._hits[row_m] += 1
        self._misses[row_m] = 0
        self._misses[~matched] += 1
        newly = matched & ~self._confirmed & (self._hits >= self._n_init)
        if newly.any():
            self._confirmed |= newly
            self._ever_confirmed.update(self._ids[newly].tolist())
        tids = self._ids[row_m]
        alive = np.where(self._confirmed, self._misses <= self._max_age,
                         self._misses <= self.params.max_tentative_misses)
        new_cols = np.setdiff1d(np.arange(n_d), col_m, assume_unique=True)
        self._compact(alive)
        if len(new_cols):
            self._start(z[new_cols], logwh[new_cols], is_sperm[new_cols])
            tids = np.concatenate([tids, self._ids[-len(new_cols):]])
            col_m = np.concatenate([col_m, new_cols])
            if self._n_init <= 1:
                self._confirmed[-len(new_cols):] = True
                self._ever_confirmed.update(self._ids[-len(new_cols):].tolist())
        if feats is not None and len(tids):
            self._remember(feats, amb_cols, tids, col_m)
        return tids, col_m

    def _custom_cost(self, s: np.ndarray, dets: Detections) -> np.ndarray:
        state = TrackState(ids=self._ids.copy(), centers_px=self._mean[:, :2].copy(),
                           velocities_px_frame=self._mean[:, 2:].copy(), innovation_var_px2=s,
                           log_wh=self._logwh.copy(), confirmed=self._confirmed.copy(), misses=self._misses.copy())
        cost = np.array(self._cost(state, dets), dtype=np.float64)
        if cost.shape != (len(state.ids), len(dets)):
            raise ParameterError(f"cost returned shape {cost.shape} for {len(state.ids)} tracks and {len(dets)} "
                                 f"detections; expected ({len(state.ids)}, {len(dets)})")
        return cost

    def _appearance(self, frame_index: int, image: np.ndarray | None, dets: Detections, cost, gate):
        """Embed the ambiguous detections and add the cosine cost to their gated pairs."""
        amb_cols = np.flatnonzero(gate.sum(axis=0) >= self.params.embed_min_candidates)
        if not len(amb_cols):
            return cost, gate, None, amb_cols
        boxes = dets.ltwh[amb_cols].astype(np.float32)
        feats = np.asarray(self._embed(frame_index, image, boxes), np.float32)
        if feats.ndim != 2 or len(feats) != len(amb_cols):
            raise ParameterError(f"embed_fn returned shape {feats.shape} for {len(amb_cols)} boxes; "
                                 f"expected ({len(amb_cols)}, D)")
        self.n_embeddings_computed += len(feats)
        rows = np.flatnonzero(gate[:, amb_cols].any(axis=1))
        rows = np.array([r for r in rows if int(self._ids[r]) in self._gallery_ids], np.int64)
        if len(rows):
            cos = self._metric.distance(feats, [int(t) for t in self._ids[rows]])  # (rows, K)
            sub_gate = gate[np.ix_(rows, amb_cols)]
            cost[np.ix_(rows, amb_cols)] += self.params.appearance_weight * cos
            gate[np.ix_(rows, amb_cols)] = sub_gate & (cos <= self.params.max_cosine_distance)
        return cost, gate, feats, amb_cols

    def _remember(self, feats, amb_cols, tids, cols) -> None:
        """Add the embeddings of matched (or newly started) detections to their tracks' galleries."""
        pos = {int(c): k for k, c in enumerate(amb_cols)}
        pairs = [(int(t), pos[int(c)]) for t, c in zip(tids, cols) if int(c) in pos]
        if not pairs:
            return
        targets = np.array([t for t, _ in pairs])
        self._gallery_ids.update(targets.tolist())
        alive = set(self._ids.tolist())
        self._gallery_ids &= alive
        self._metric.partial_fit(feats[[k for _, k in pairs]], targets, sorted(self._gallery_ids))

    def _start(self, z: np.ndarray, logwh: np.ndarray, is_sperm: np.ndarray) -> None:
        k = len(z)
        ids = np.arange(self._next_id, self._next_id + k, dtype=np.int64)
        self._next_id += k
        mean = np.hstack([z, np.zeros((k, 2))])
        cov = np.tile([self._r, 0.0, self._p0_vel], (k, 1))
        self._ids = np.concatenate([self._ids, ids])
        self._mean = np.vstack([self._mean, mean])
        self._cov = np.vstack([self._cov, cov])
        self._logwh = np.vstack([self._logwh, logwh])
        self._sperm = np.concatenate([self._sperm, is_sperm])
        self._hits = np.concatenate([self._hits, np.ones(k, np.int64)])
        self._misses = np.concatenate([self._misses, np.zeros(k, np.int64)])
        self._confirmed = np.concatenate([self._confirmed, np.zeros(k, bool)])

    def _compact(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        self._ids, self._mean, self._cov = self._ids[keep], self._mean[keep], self._cov[keep]
        self._logwh, self._sperm = self._logwh[keep], self._sperm[keep]
        self._hits, self._misses, self._confirmed = self._hits[keep], self._misses[keep], self._confirmed[keep]

    # ------------------------------------------------------------------ output
    def tracks(self) -> pd.DataFrame:
        """The measured positions of the confirmed tracks, over the frames pushed so far.

        Returns:
            A Tracks table: one row per (track, frame) where the track was matched to a
            detection, ``x, y, w, h, conf, cls`` of that detection (raw measurements, the CASA
            convention). A track is reported once it is confirmed, then with the rows of its
            tentative first frames too (it was real); tracks not (yet) confirmed are left out, so
            a track still tentative after the last frame never appears: nothing needs flushing,
            and calling this does not end tracking. Track ids are renumbered ``1..K`` in order of
            first appearance; a track confirmed late can shift the ids of a table read earlier.
        """
        if not self._rec_f:
            return empty_tracks()
        tid = np.concatenate(self._rec_t)
        keep = np.isin(tid, np.fromiter(self._ever_confirmed, np.int64, len(self._ever_confirmed)))
        box = np.concatenate(self._rec_box).astype(np.float64)[keep]
        frame = np.concatenate(self._rec_f)[keep]
        tid = tid[keep]
        _, first_idx, dense = np.unique(tid, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first_idx, kind="stable"), kind="stable")
        df = pd.DataFrame({
            "track_id": order[dense] + 1, "frame": frame,
            "x": (box[:, 0] + box[:, 2]) / 2, "y": (box[:, 1] + box[:, 3]) / 2,
            "w": box[:, 2] - box[:, 0], "h": box[:, 3] - box[:, 1],
            "conf": np.concatenate(self._rec_conf)[keep].astype(np.float64),
            "cls": np.concatenate(self._rec_cls)[keep],
        })
        return make_tracks(df, source="tracker output")


def _assign(cost: np.ndarray, gate: np.ndarray, rows: np.ndarray, cols: np.ndarray):
    """Minimum-cost assignment of ``rows`` to ``cols`` among gated pairs (max matches first)."""
    if not len(rows) or not len(cols):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g = gate[np.ix_(rows, cols)]
    rr, cc = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    if not len(rr):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    g = g[np.ix_(rr, cc)]
    c = np.where(g, cost[np.ix_(rows[rr], cols[cc])], _BIG)
    i, j = linear_sum_assignment(c)
    ok = g[i, j]
    return rows[rr[i[ok]]], cols[cc[j[ok]]]


def track_detections(dets_by_frame: dict[int, Detections], fps: float, n_frames: int | None = None, *,
                     stitch: bool = True, smooth: bool = True, embed_fn=None,
                     params: TrackerParams | None = None, refine_params=None) -> pd.DataFrame:
    """Online association followed by the offline refinement (:func:`refine_tracks`).

    Returns:
        A Tracks table with measured ``x, y`` plus ``x_smooth, y_smooth`` (px) and
        ``interpolated`` (see :func:`spermtrack.tracker.refine.refine_tracks`).
    """
    from spermtrack.tracker.refine import refine_tracks

    tracker = SpermTracker(fps, params=params, embed_fn=embed_fn)
    raw = tracker.run(dets_by_frame, n_frames)
    out = refine_tracks(raw, fps, stitch=stitch, smooth=smooth, params=refine_params)
    out.attrs["n_embeddings_computed"] = tracker.n_embeddings_computed
    return out
