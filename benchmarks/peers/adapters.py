"""Peer trackers behind our :class:`~spermtrack.tracker.base.Tracker` interface, fed our detections.

Every peer is built from its YAML config (``benchmarks/configs``) and driven like
:class:`~spermtrack.tracker.associate.SpermTracker`: ``update(detections, frame)`` per frame,
``tracks()`` for the Tracks table (``run(dets_by_frame, n_frames)`` does both). IoU-based peers get
boxes enlarged by ``box_scale`` about their centre (the fair tuning for tiny boxes, see
TRACKING.md); the output is the detection box each track was matched to (shrunk back), except
SORT, whose reference output is its filter state (shrunk back). trackpy links offline: its
``tracks()`` links everything pushed so far.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from spermtrack.tracker.base import Tracker
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


class _RowsTracker(Tracker):
    """A peer whose output is one ``(frame, track id, box xyxy)`` row per reported track and frame."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, int, np.ndarray]] = []

    def tracks(self) -> pd.DataFrame:
        return _table(self._rows)


class _Results:
    """The slice of ultralytics' ``Boxes`` its trackers read: ``conf, cls, xywh, xyxy``, bool indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy.astype(np.float32), conf.astype(np.float32), cls.astype(np.float32)
        self.xywh = np.hstack([(self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2, self.xyxy[:, 2:] - self.xyxy[:, :2]])

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, m):
        return _Results(self.xyxy[m], self.conf[m], self.cls[m])


class UltralyticsPeer(_RowsTracker):
    """ultralytics ``BYTETracker`` / ``BOTSORT`` (``cfg['tracker_type']``); rows = matched detections."""

    def __init__(self, cfg: dict):
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker

        super().__init__()
        cfg = dict(cfg)
        self._k = float(cfg.pop("box_scale", 1.0))
        args = SimpleNamespace(**cfg)
        self._tracker = (BOTSORT if cfg["tracker_type"] == "botsort" else BYTETracker)(args)

    def _step(self, d: Detections, frame: int, image: np.ndarray | None) -> None:
        out = self._tracker.update(_Results(_scaled(d.xyxy, self._k), d.conf, d.cls), img=image)
        for r in np.asarray(out).reshape(-1, 8):
            self._rows.append((frame, int(r[4]), d.xyxy[int(r[7])]))


class SortPeer(_RowsTracker):
    """SORT (benchmarks/peers/sort.py); rows = filter state boxes shrunk back by ``box_scale``."""

    def __init__(self, cfg: dict):
        from benchmarks.peers.sort import Sort, _KalmanBoxTracker

        super().__init__()
        _KalmanBoxTracker.count = 0  # ids start at 1 for every run, as in the reference
        self._k = float(cfg.get("box_scale", 1.0))
        self._sort = Sort(max_age=int(cfg["max_age"]), min_hits=int(cfg["min_hits"]),
                          iou_threshold=float(cfg["iou_threshold"]))

    def _step(self, d: Detections, frame: int, image: np.ndarray | None) -> None:
        for tid, box in self._sort.update(_scaled(d.xyxy, self._k).astype(np.float64)):
            self._rows.append((frame, tid, _scaled(box[None], 1.0 / self._k)[0]))


class DeepSortPeer(_RowsTracker):
    """deep-sort-realtime's ``DeepSort`` as shipped, motion only (one constant embedding); rows =
    the boxes of confirmed tracks matched in the frame."""

    def __init__(self, cfg: dict):
        from deep_sort_realtime.deepsort_tracker import DeepSort

        super().__init__()
        self._ds = DeepSort(max_age=int(cfg["max_age"]), n_init=int(cfg["n_init"]),
                            max_iou_distance=float(cfg["max_iou_distance"]),
                            max_cosine_distance=float(cfg["max_cosine_distance"]),
                            nn_budget=int(cfg["nn_budget"]), embedder=None)

    def _step(self, d: Detections, frame: int, image: np.ndarray | None) -> None:
        d = d.select((d.wh > 0).all(axis=1))   # the library drops w/h <= 0 boxes but not their embeds
        raw = [(list(map(float, b)), float(c), "0") for b, c in zip(d.ltwh, d.conf)]
        embeds = [np.ones(8, np.float32)] * len(raw)
        for t in self._ds.update_tracks(raw, embeds=embeds):
            if not t.is_confirmed() or t.time_since_update > 0:
                continue
            self._rows.append((frame, int(t.track_id), np.asarray(t.to_ltrb(orig=True), np.float64)))


class TrackpyPeer(Tracker):
    """``trackpy.link`` on detection centres with gap ``memory``; boxes are the detections'.

    trackpy links offline: :meth:`update` collects the detections, :meth:`tracks` links them all.
    """

    def __init__(self, cfg: dict):
        self._cfg = cfg
        self._parts: list[pd.DataFrame] = []

    def _step(self, d: Detections, frame: int, image: np.ndarray | None) -> None:
        if len(d):
            c, wh = d.centers, d.wh
            self._parts.append(pd.DataFrame({"frame": frame, "x": c[:, 0], "y": c[:, 1], "w": wh[:, 0], "h": wh[:, 1]}))

    def tracks(self) -> pd.DataFrame:
        import trackpy

        if not self._parts:
            return empty_tracks()
        trackpy.quiet()
        cfg = self._cfg
        feats = pd.concat(self._parts, ignore_index=True)
        linked = trackpy.link(feats, search_range=float(cfg["search_range"]), memory=int(cfg["memory"]),
                              adaptive_stop=cfg.get("adaptive_stop"),
                              adaptive_step=float(cfg.get("adaptive_step", 0.95)))
        df = linked.rename(columns={"particle": "track_id"})[["track_id", "frame", "x", "y", "w", "h"]]
        return make_tracks(df, source="trackpy")


#: peer class by config name (``benchmarks/configs/<name>.yaml``)
PEERS: dict[str, type[Tracker]] = {
    "deepsort_shipped": DeepSortPeer, "bytetrack": UltralyticsPeer, "botsort": UltralyticsPeer,
    "trackpy": TrackpyPeer, "sort": SortPeer,
}
