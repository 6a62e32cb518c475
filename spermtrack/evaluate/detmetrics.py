"""Detection quality against ground truth: centre matching (P/R/F1) and COCO-style AP.

Two complementary views of a detector:

- **Centre matching** (what tracking and CASA need): per frame, predicted box centres are
  matched one-to-one to true head centres by the Hungarian algorithm on Euclidean distance; a
  pair counts only when the centres are within ``max_dist_px`` (5 px at VISEM scale: half a head
  length). Unmatched predictions are false positives, unmatched heads false negatives.
  Predictions within ``ignore_px`` of an *ignored* truth box (clusters, pinheads: objects a head
  detector may or may not report) are neither, and ignored objects are not counted in recall.
- **AP50** (what detector papers report): predictions of all frames ranked by confidence,
  matched greedily to truth boxes at IoU >= 0.5 (COCO rule: highest confidence first, each truth
  box once), precision made monotone and sampled at 101 recall points.

Every per-truth result is kept (``matched``), so recall can be broken down by any truth
attribute (motility class, head size, distance to the border).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from spermtrack.geometry import box_iou, centres_to_xyxy, point_box_distance
from spermtrack.types import Detections

#: A truth frame: ``xy (N, 2)`` centres px, ``xyxy (N, 4)`` boxes px, ``ignore (N,) bool``.
TruthFrame = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class DetectionScores:
    """Centre-matching result over a set of frames.

    Attributes:
        tp, fp, fn: counts of matched predictions, unmatched predictions (not ignored) and
            unmatched non-ignored truth objects.
        precision, recall, f1: the usual ratios (1.0 when their denominator is 0).
        matched: one array per frame, a bool per truth object (True: matched; ignored objects
            are False), in the order of that frame's truth, for per-class recall.
        mean_error_px: mean centre distance of the matched pairs.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    matched: list[np.ndarray]
    mean_error_px: float


def match_centres(pred_xy: np.ndarray, truth_xy: np.ndarray, max_dist_px: float = 5.0,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of predicted and true centres (Hungarian, total distance minimal).

    Returns:
        ``(pred_idx, truth_idx)`` of the pairs whose distance is ``<= max_dist_px``.
    """
    pred_xy = np.asarray(pred_xy, np.float64).reshape(-1, 2)
    truth_xy = np.asarray(truth_xy, np.float64).reshape(-1, 2)
    if not len(pred_xy) or not len(truth_xy):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    d = np.linalg.norm(pred_xy[:, None, :] - truth_xy[None, :, :], axis=2)
    # pairs beyond the gate cost more than any feasible set of pairs, so they are never chosen
    # over a feasible alternative and are dropped afterwards
    big = max_dist_px * (min(d.shape) + 1) + 1.0
    rows, cols = linear_sum_assignment(np.where(d <= max_dist_px, d, big))
    ok = d[rows, cols] <= max_dist_px
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)


def _near_ignored(pred_xy: np.ndarray, ign_xyxy: np.ndarray, ignore_px: float) -> np.ndarray:
    """Bool per prediction: centre within ``ignore_px`` of an ignored box (0 inside it)."""
    if not len(ign_xyxy) or not len(pred_xy):
        return np.zeros(len(pred_xy), bool)
    return (point_box_distance(pred_xy, ign_xyxy) <= ignore_px).any(axis=1)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 1.0


def detection_scores(preds: Sequence[Detections], truth: Sequence[TruthFrame], *, max_dist_px: float = 5.0,
                     ignore_px: float = 10.0, classes: Sequence[int] | None = (0,)) -> DetectionScores:
    """Precision, recall and F1 of predicted centres against true centres, frame by frame.

    Args:
        preds: one :class:`Detections` per frame.
        truth: one mapping per frame with ``xy`` (true centres), ``xyxy`` (true boxes) and
            ``ignore`` (objects whose detection is neither required nor penalised).
        max_dist_px: largest centre distance of a true positive.
        ignore_px: a prediction this close to an ignored box is dropped before matching.
        classes: predicted classes scored (others are dropped); None keeps all.
    """
    if len(preds) != len(truth):
        raise ValueError(f"{len(preds)} prediction frames but {len(truth)} truth frames")
    tp = fp = fn = 0
    matched, errors = [], []
    for det, tr in zip(preds, truth):
        xy = det.centers
        if classes is not None and len(det):
            xy = xy[np.isin(det.cls, list(classes))]
        ign = np.asarray(tr["ignore"], bool)
        txy = np.asarray(tr["xy"], np.float64).reshape(-1, 2)
        xy = xy[~_near_ignored(xy, np.asarray(tr["xyxy"], np.float64).reshape(-1, 4)[ign], ignore_px)]
        keep = np.flatnonzero(~ign)
        pi, ti = match_centres(xy, txy[keep], max_dist_px)
        m = np.zeros(len(txy), bool)
        m[keep[ti]] = True
        matched.append(m)
        errors.append(np.linalg.norm(xy[pi] - txy[keep[ti]], axis=1))
        tp += len(pi)
        fp += len(xy) - len(pi)
        fn += len(keep) - len(ti)
    p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    err = np.concatenate(errors) if errors else np.zeros(0)
    return DetectionScores(tp, fp, fn, p, r, f1, matched, float(err.mean()) if len(err) else float("nan"))


def average_precision(preds: Sequence[Detections], truth: Sequence[TruthFrame], *, iou_threshold: float = 0.5,
                      classes: Sequence[int] | None = (0,)) -> float:
    """COCO-style AP at one IoU threshold (101-point interpolated), over all frames.

    Predictions are visited by decreasing confidence (frame order breaks ties); each is a true
    positive when its best-overlapping *unmatched* non-ignored truth box in its frame has IoU >=
    ``iou_threshold``. A prediction whose best match is an ignored box (at that IoU) is dropped
    (COCO's crowd rule). The precision envelope is sampled at recall 0, 0.01, ..., 1.

    Returns:
        AP in [0, 1]; NaN when there is no non-ignored truth object.
    """
    if len(preds) != len(truth):
        raise ValueError(f"{len(preds)} prediction frames but {len(truth)} truth frames")
    recs = []  # (conf, frame, index)
    for f, det in enumerate(preds):
        sel = np.arange(len(det)) if classes is None else np.flatnonzero(np.isin(det.cls, list(classes)))
        recs += [(float(det.conf[i]), f, int(i)) for i in sel]
    n_truth = int(sum((~np.asarray(t["ignore"], bool)).sum() for t in truth))
    if n_truth == 0:
        return float("nan")
    recs.sort(key=lambda r: (-r[0], r[1], r[2]))
    ious = [box_iou(d.xyxy, t["xyxy"]) for d, t in zip(preds, truth)]
    used = [np.zeros(len(np.asarray(t["ignore"])), bool) for t in truth]
    flags = []
    for _, f, i in recs:
        ign = np.asarray(truth[f]["ignore"], bool)
        cand = np.where(~ign & ~used[f], ious[f][i], -1.0)
        if len(cand) and cand.max() >= iou_threshold:
            used[f][int(cand.argmax())] = True
            flags.append(1)
        elif ign.any() and np.where(ign, ious[f][i], -1.0).max() >= iou_threshold:
            continue
        else:
            flags.append(0)
    if not flags:
        return 0.0
    flags = np.asarray(flags)
    ctp = np.cumsum(flags)
    recall = ctp / n_truth
    precision = ctp / np.arange(1, len(flags) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    points = np.linspace(0.0, 1.0, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.where(idx < len(envelope), envelope[np.minimum(idx, len(envelope) - 1)], 0.0)
    return float(sampled.mean())


def truth_frames(boxes, frames: Sequence[int], *, ignore_cls: Sequence[int] = (1, 2)) -> list[dict[str, np.ndarray]]:
    """Truth frames for :func:`detection_scores` / :func:`average_precision` from a Tracks table.

    Args:
        boxes: a ``Tracks`` table (``track_id, frame, x, y, w, h, cls``; e.g. a synthetic scene's
            ``boxes`` or VISEM labels); ``x, y`` are box centres.
        frames: the 0-based frames to evaluate, in the order of the predictions.
        ignore_cls: classes whose objects are ignored (clusters 1, pinheads 2).

    Returns:
        One dict per frame: ``xy``, ``xyxy``, ``ignore``, ``track_id`` arrays.
    """
    by_frame = {f: g for f, g in boxes.groupby("frame")}
    out = []
    for f in frames:
        g = by_frame.get(int(f))
        if g is None:
            out.append({"xy": np.zeros((0, 2)), "xyxy": np.zeros((0, 4)), "ignore": np.zeros(0, bool),
                        "track_id": np.zeros(0, np.int64)})
            continue
        x, y, w, h = (g[c].to_numpy(np.float64) for c in ("x", "y", "w", "h"))
        out.append({"xy": np.c_[x, y], "xyxy": centres_to_xyxy(np.c_[x, y], np.c_[w, h]),
                    "ignore": np.isin(g["cls"].to_numpy(), list(ignore_cls)),
                    "track_id": g["track_id"].to_numpy(np.int64)})
    return out
