"""ID switches at crossings: where, along a ground-truth track, each CLEAR ID switch happens, and
whether that is where the true head passes close to another true head.

Definitions (used by ``benchmarks/id_switches_real.py``):

- **ID switch** (:func:`clear_switches`): exactly TrackEval's CLEAR matching, replayed frame by
  frame on the data :func:`spermtrack.evaluate.metrics.build_trackeval_data` builds (box IoU,
  match candidates at ``IoU >= 0.5``, Hungarian assignment that first keeps the previous frame's
  pairs, then maximises IoU). A switch is a gt id matched to a predicted id other than the one it
  was matched to at its previous match (any number of frames earlier); it is located at the frame
  of the new match. The total equals TrackEval's ``IDSW`` (checked in tests/test_crossings.py
  and on every sequence of the benchmark).
- **Near** (:class:`CrossingIndex`): a gt head is near another in a frame when their box centres
  are at most ``near_px`` (10 px) apart (both annotated in that frame).
- **Switch at a crossing**: the gt head switching at frame ``f`` is near another gt head in at
  least one frame of ``[f - window, f + window]`` (``window`` = 5 frames = 0.1 s at 50 fps).
  Each side of a swap counts: two heads that cross and exchange their predicted ids make two
  switches at a crossing (one per gt id).
- **Crossing event**: a pair of gt heads near each other for a maximal run of frames; runs of the
  same pair separated by at most ``window`` frames (apart, or one of them unannotated) are one
  event (a pair whose distance hovers around 10 px is not counted many times).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from spermtrack.evaluate.metrics import build_trackeval_data

NEAR_PX = 10.0
WINDOW = 5


def clear_switches(gt: pd.DataFrame, pred: pd.DataFrame, *, iou_threshold: float = 0.5,
                   n_frames: int | None = None) -> pd.DataFrame:
    """Every CLEAR ID switch of ``pred`` against ``gt``, located.

    Replays ``trackeval.metrics.CLEAR.eval_sequence`` (same matching, same tie-breaking).

    Returns:
        One row per switch: ``gt_id`` (the gt table's own id), ``frame`` (of the new match),
        ``prev_frame`` (of the gt id's previous match), ``prev_pred`` / ``pred`` (the predicted
        ids before and after, as in the pred table).
    """
    cols = ["gt_id", "frame", "prev_frame", "prev_pred", "pred"]
    if not len(gt) or not len(pred):
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in cols})
    data = build_trackeval_data(gt, pred, n_frames=n_frames)
    gt_orig = np.unique(gt["track_id"].to_numpy(np.int64))     # dense id k -> gt_orig[k]
    pr_orig = np.unique(pred["track_id"].to_numpy(np.int64))
    eps = np.finfo("float").eps
    n_gt = data["num_gt_ids"]
    prev_id = np.full(n_gt, -1, np.int64)        # last matched pred id (any frame earlier)
    prev_fr = np.full(n_gt, -1, np.int64)
    prev_step = np.full(n_gt, -1, np.int64)      # pred id matched in the previous frame only
    rows = []
    for t, (g, p) in enumerate(zip(data["gt_ids"], data["tracker_ids"])):
        if len(g) == 0:
            continue
        if len(p) == 0:
            # TrackEval skips such a frame without resetting its previous-frame state
            continue
        sim = data["similarity_scores"][t]
        score = 1000.0 * (p[None, :] == prev_step[g][:, None]) + sim   # -1 (none) never equals an id
        score[sim < iou_threshold - eps] = 0
        r, c = linear_sum_assignment(-score)
        ok = score[r, c] > 0 + eps
        mg, mp = g[r[ok]], p[c[ok]]
        sw = (prev_id[mg] >= 0) & (prev_id[mg] != mp)
        for k in np.flatnonzero(sw):
            rows.append((gt_orig[mg[k]], t, prev_fr[mg[k]], pr_orig[prev_id[mg[k]]], pr_orig[mp[k]]))
        prev_id[mg] = mp
        prev_fr[mg] = t
        prev_step[:] = -1
        prev_step[mg] = mp
    return pd.DataFrame(rows, columns=cols).astype("int64")


@dataclass
class CrossingIndex:
    """Where the gt heads of one sequence are near each other (see the module docstring)."""

    near: dict[int, np.ndarray]      # gt id -> sorted frames where it is near another gt head
    events: pd.DataFrame             # id_a, id_b (id_a < id_b), first, last frame of each event
    near_px: float
    window: int

    @classmethod
    def from_gt(cls, gt: pd.DataFrame, near_px: float = NEAR_PX, window: int = WINDOW) -> "CrossingIndex":
        ids = gt["track_id"].to_numpy(np.int64)
        fr = gt["frame"].to_numpy(np.int64)
        xy = gt[["x", "y"]].to_numpy(np.float64)
        order = np.argsort(fr, kind="stable")
        ids, fr, xy = ids[order], fr[order], xy[order]
        bounds = np.flatnonzero(np.r_[True, fr[1:] != fr[:-1], True])
        pa, pb, pf = [], [], []
        for s, e in zip(bounds[:-1], bounds[1:]):
            if e - s < 2:
                continue
            pairs = cKDTree(xy[s:e]).query_pairs(near_px + 1e-9, output_type="ndarray")
            if len(pairs):
                a, b = ids[s + pairs[:, 0]], ids[s + pairs[:, 1]]
                pa.append(np.minimum(a, b))
                pb.append(np.maximum(a, b))
                pf.append(np.full(len(pairs), fr[s]))
        if not pa:
            empty = pd.DataFrame({c: pd.Series(dtype="int64") for c in ("id_a", "id_b", "first", "last")})
            return cls({}, empty, near_px, window)
        p = pd.DataFrame({"id_a": np.concatenate(pa), "id_b": np.concatenate(pb), "frame": np.concatenate(pf)})
        near_df = pd.concat([p[["id_a", "frame"]].rename(columns={"id_a": "id"}),
                             p[["id_b", "frame"]].rename(columns={"id_b": "id"})]).drop_duplicates()
        near = {int(k): np.sort(g["frame"].to_numpy(np.int64)) for k, g in near_df.groupby("id")}
        p = p.sort_values(["id_a", "id_b", "frame"], kind="stable").reset_index(drop=True)
        a, b, f = (p[c].to_numpy(np.int64) for c in ("id_a", "id_b", "frame"))
        new = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (f[1:] - f[:-1] > window + 1)]
        first = np.flatnonzero(new)
        last = np.r_[first[1:], len(p)] - 1
        events = pd.DataFrame({"id_a": a[first], "id_b": b[first], "first": f[first], "last": f[last]})
        return cls(near, events, near_px, window)

    @property
    def n_events(self) -> int:
        return len(self.events)

    def at_crossing(self, gt_id: int, frame: int) -> bool:
        """True when ``gt_id`` is near another gt head within ``window`` frames of ``frame``."""
        f = self.near.get(int(gt_id))
        if f is None:
            return False
        i = np.searchsorted(f, frame - self.window, side="left")
        return bool(i < len(f) and f[i] <= frame + self.window)

    def count(self, switches: pd.DataFrame) -> tuple[int, int]:
        """``(ID switches, ID switches at a crossing)`` of a :func:`clear_switches` table."""
        n_cross = sum(self.at_crossing(g, f) for g, f in zip(switches["gt_id"], switches["frame"]))
        return len(switches), int(n_cross)


def switches_at_crossings(gt: pd.DataFrame, pred: pd.DataFrame, index: CrossingIndex | None = None,
                          **kw) -> dict:
    """``{"IDSW", "IDSW_cross", "events"}`` of one sequence (``index``: a prebuilt gt index)."""
    index = index or CrossingIndex.from_gt(gt)
    n, n_cross = index.count(clear_switches(gt, pred, **kw))
    return {"IDSW": n, "IDSW_cross": n_cross, "events": index.n_events}
