"""Drive each peer tracker with our detections and return a Tracks table.

Every adapter has the signature ``run(dets_by_frame, n_frames, fps, cfg) -> Tracks`` where
``cfg`` is the peer's YAML config (``benchmarks/configs``). IoU-based peers get boxes enlarged
by ``box_scale`` about their centre (the fair tuning for tiny boxes, see TRACKING.md); the
output is the detection box each track was matched to (shrunk back), except SORT, whose
reference output is its filter state (shrunk back).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from spermtrack.types import Detections, empty_tracks, make_tracks


def _scaled(xyxy: np.ndarray, k: float) -> np.ndarray:
    c = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) * (k / 2)
    return np.hstack([c - half, c + half])


def _table(rows: list[tuple[int, int, np.ndarray]]) -> pd.DataFrame:
    if not rows:
        return empty_tracks()
    f = np.array([r[0] for r in rows])
    t = np.array([r[1] for r in rows])
    b = np.array([r[2] for r in rows], np.float64)
    df = pd.DataFrame({"track_id": t, "frame": f, "x": (b[:, 0] + b[:, 2]) / 2, "y": (b[:, 1] + b[:, 3]) / 2,
                       "w": b[:, 2] - b[:, 0], "h": b[:, 3] - b[:, 1]})
    return make_tracks(df.drop_duplicates(["track_id", "frame"]), source="peer")


class _Results:
    """The slice of ultralytics' ``Boxes`` its trackers read: ``conf, cls, xywh, xyxy``, bool indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy.astype(np.float32), conf.astype(np.float32), cls.astype(np.float32)
        self.xywh = np.hstack([(self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2, self.xyxy[:, 2:] - self.xyxy[:, :2]])

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, m):
        return _Results(self.xyxy[m], self.conf[m], self.cls[m])


def run_ultralytics(dets_by_frame: dict[int, Detections], n_frames: int, fps: float, cfg: dict) -> pd.DataFrame:
    """ultralytics ``BYTETracker`` / ``BOTSORT`` (``cfg['tracker_type']``) on our detections."""
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    cfg = dict(cfg)
    k = float(cfg.pop("box_scale", 1.0))
    args = SimpleNamespace(**cfg)
    tracker = (BOTSORT if cfg["tracker_type"] == "botsort" else BYTETracker)(args)
    rows = []
    empty = Detections.empty()
    for f in range(n_frames):
        d = dets_by_frame.get(f, empty)
        out = tracker.update(_Results(_scaled(d.xyxy, k), d.conf, d.cls), img=None)
        for r in np.asarray(out).reshape(-1, 8):
            rows.append((f, int(r[4]), d.xyxy[int(r[7])]))
    return _table(rows)


def run_sort(dets_by_frame, n_frames, fps, cfg) -> pd.DataFrame:
    """SORT (benchmarks/peers/sort.py); output = filter state box shrunk back by ``box_scale``."""
    from benchmarks.peers.sort import Sort, _KalmanBoxTracker

    _KalmanBoxTracker.count = 0
    k = float(cfg.get("box_scale", 1.0))
    s = Sort(max_age=int(cfg["max_age"]), min_hits=int(cfg["min_hits"]), iou_threshold=float(cfg["iou_threshold"]))
    rows = []
    empty = Detections.empty()
    for f in range(n_frames):
        d = dets_by_frame.get(f, empty)
        for tid, box in s.update(_scaled(d.xyxy, k).astype(np.float64)):
            rows.append((f, tid, _scaled(box[None], 1.0 / k)[0]))
    return _table(rows)


def run_deepsort_shipped(dets_by_frame, n_frames, fps, cfg) -> pd.DataFrame:
    """deep-sort-realtime's ``DeepSort`` as shipped, motion only (one constant embedding)."""
    from deep_sort_realtime.deepsort_tracker import DeepSort

    ds = DeepSort(max_age=int(cfg["max_age"]), n_init=int(cfg["n_init"]),
                  max_iou_distance=float(cfg["max_iou_distance"]),
                  max_cosine_distance=float(cfg["max_cosine_distance"]),
                  nn_budget=int(cfg["nn_budget"]), embedder=None)
    rows = []
    empty = Detections.empty()
    for f in range(n_frames):
        d = dets_by_frame.get(f, empty)
        ok = (d.wh > 0).all(axis=1)   # the library drops w/h <= 0 boxes but not their embeds
        d = d.select(ok)
        raw = [(list(map(float, b)), float(c), "0") for b, c in zip(d.ltwh, d.conf)]
        embeds = [np.ones(8, np.float32)] * len(raw)
        for t in ds.update_tracks(raw, embeds=embeds):
            if not t.is_confirmed() or t.time_since_update > 0:
                continue
            box = t.to_ltrb(orig=True)
            rows.append((f, int(t.track_id), np.asarray(box, np.float64)))
    return _table(rows)


def run_trackpy(dets_by_frame, n_frames, fps, cfg) -> pd.DataFrame:
    """``trackpy.link`` on detection centres with gap ``memory``; boxes are the detections'."""
    import trackpy

    trackpy.quiet()
    parts = []
    for f, d in dets_by_frame.items():
        c, wh = d.centers, d.wh
        parts.append(pd.DataFrame({"frame": f, "x": c[:, 0], "y": c[:, 1], "w": wh[:, 0], "h": wh[:, 1]}))
    feats = pd.concat(parts, ignore_index=True)
    linked = trackpy.link(feats, search_range=float(cfg["search_range"]), memory=int(cfg["memory"]),
                          adaptive_stop=cfg.get("adaptive_stop"), adaptive_step=float(cfg.get("adaptive_step", 0.95)))
    df = linked.rename(columns={"particle": "track_id"})[["track_id", "frame", "x", "y", "w", "h"]]
    return make_tracks(df, source="trackpy")
