"""SORT (Bewley et al. 2016, "Simple Online and Realtime Tracking"), the published algorithm.

No maintained pip package exists, so this is a faithful small re-implementation of the
reference ``sort.py``: a 7-D constant-velocity Kalman filter on ``(u, v, s, r)`` (centre, area,
aspect ratio; filterpy, with the reference noise settings), Hungarian matching on IoU with
``iou_threshold``, tracks deleted after ``max_age`` frames unmatched and reported once they have
``min_hits`` consecutive hits. The output box is the filter's state, as in the reference.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:4] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:4] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-12)


def _to_z(b):
    w, h = b[2] - b[0], b[3] - b[1]
    return np.array([b[0] + w / 2, b[1] + h / 2, w * h, w / max(h, 1e-6)]).reshape(4, 1)


def _to_box(x):
    w = np.sqrt(max(x[2, 0] * x[3, 0], 1e-6))
    h = x[2, 0] / w
    return np.array([x[0, 0] - w / 2, x[1, 0] - h / 2, x[0, 0] + w / 2, x[1, 0] + h / 2])


class _KalmanBoxTracker:
    count = 0

    def __init__(self, box):
        kf = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = np.eye(7)
        kf.F[0, 4] = kf.F[1, 5] = kf.F[2, 6] = 1
        kf.H = np.eye(4, 7)
        kf.R[2:, 2:] *= 10.0
        kf.P[4:, 4:] *= 1000.0
        kf.P *= 10.0
        kf.Q[-1, -1] *= 0.01
        kf.Q[4:, 4:] *= 0.01
        kf.x[:4] = _to_z(box)
        self.kf = kf
        self.time_since_update = 0
        _KalmanBoxTracker.count += 1
        self.id = _KalmanBoxTracker.count
        self.hit_streak = 0

    def update(self, box):
        self.time_since_update = 0
        self.hit_streak += 1
        self.kf.update(_to_z(box))

    def predict(self):
        if self.kf.x[6] + self.kf.x[2] <= 0:
            self.kf.x[6] *= 0.0
        self.kf.predict()
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        return _to_box(self.kf.x)


class Sort:
    """SORT with the reference defaults ``max_age=1, min_hits=3, iou_threshold=0.3``."""

    def __init__(self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3):
        self.max_age, self.min_hits, self.iou_threshold = max_age, min_hits, iou_threshold
        self.trackers: list[_KalmanBoxTracker] = []
        self.frame_count = 0

    def update(self, boxes: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """``boxes (N, 4) xyxy`` -> ``[(track_id, state box xyxy)]`` of reported tracks."""
        self.frame_count += 1
        preds = np.array([t.predict() for t in self.trackers]).reshape(-1, 4)
        ok = np.isfinite(preds).all(axis=1)
        self.trackers = [t for t, k in zip(self.trackers, ok) if k]
        preds = preds[ok]
        matched_t, matched_d = [], []
        if len(preds) and len(boxes):
            iou = _iou(boxes, preds)
            r, c = linear_sum_assignment(-iou)
            keep = iou[r, c] >= self.iou_threshold
            matched_d, matched_t = list(r[keep]), list(c[keep])
        for d, t in zip(matched_d, matched_t):
            self.trackers[t].update(boxes[d])
        for d in sorted(set(range(len(boxes))) - set(matched_d)):
            self.trackers.append(_KalmanBoxTracker(boxes[d]))
        out = []
        for t in self.trackers:
            if t.time_since_update < 1 and (t.hit_streak >= self.min_hits or self.frame_count <= self.min_hits):
                out.append((t.id, _to_box(t.kf.x)))
        self.trackers = [t for t in self.trackers if t.time_since_update <= self.max_age]
        return out
