"""Tracking quality: HOTA, CLEAR (MOTA, IDSW, Frag, MT/PT/ML) and Identity (IDF1) via TrackEval.

We feed TrackEval's metric classes (``trackeval.metrics.HOTA``, ``CLEAR``, ``Identity``) the
in-memory dict they evaluate (ids remapped to ``0..K-1`` per sequence, one IoU matrix per frame),
not its file-based ``Evaluator``/dataset classes, which impose a folder layout. Evaluation is
**class-agnostic** (the ``cls`` column is ignored) and the similarity is the box IoU of the
``x, y, w, h`` boxes (centre and size, px).

Conventions, and how they relate to py-motmetrics (whose published values on the MOTChallenge
TUD sequences in ``shared/data/mot/README.md`` this module reproduces to 1e-3, checked in
``tests/evaluate/test_metrics.py``):

- A pair is a match candidate when ``IoU >= iou_threshold`` (CLEAR and Identity). HOTA does not
  use the threshold: it averages over TrackEval's localisation thresholds ``alpha = 0.05 .. 0.95``,
  and ``HOTA``, ``DetA``, ``AssA``, ``LocA``... here are those averages (TrackEval's headline).
- ``MOTP`` is TrackEval's: the mean **IoU** of the CLEAR matches (higher is better).
  py-motmetrics reports the mean IoU *distance*, i.e. ``1 - MOTP`` here.
- ``MT``: tracked in **more than** 80 % of its frames, ``ML``: less than 20 %, ``PT`` the rest.
  py-motmetrics counts a ratio of exactly 0.8 as MT; TrackEval (and this module) as PT.
- ``Frag`` (TrackEval) counts, per gt id, how many times a tracked run *restarts* after the id
  was not tracked in the previous evaluated frame. py-motmetrics' ``FM`` counts
  tracked -> missed transitions between the first and last tracked frame of the gt id, over the
  frames where that id is annotated. They agree on the usual case (tracked, missed, tracked
  again = 1; on TUD-Campus and TUD-Stadtmitte both give 7 and 6), but differ when (a) the gt id
  is absent from the annotation for some frames between tracked runs (Frag counts 1, FM 0), or
  (b) the prediction is completely empty in a frame where the id is annotated (TrackEval skips
  such frames without resetting its state, so Frag counts 0 there where FM counts 1).
- ``IDSW``: a gt id matched to a different predicted id than at its previous match (any number
  of frames earlier); same definition as py-motmetrics' ``num_switches``.
- ``FP``, ``FN``, ``recall``, ``precision``, ``MOTA``, ``IDF1``, ``IDP``, ``IDR``: the usual
  CLEAR/Identity definitions; identical in both libraries.
- Ground-truth rows are taken as given: the MOTChallenge "ignore" flag (``conf == 0`` in a gt
  file) is applied only by :func:`evaluate_mot_files` (as TrackEval's MOT15 and py-motmetrics'
  ``min_confidence=1`` do), and no distractor-class preprocessing is done.

Empty inputs never raise. With no gt rows and no predictions every score is 0 (nothing was
tracked), counts are 0 and ``LocA`` is 1 (TrackEval's convention when nothing is matched). With
gt but no predictions: ``FN`` = all gt rows, ``ML`` = all gt ids, ``recall``, ``MOTA``, ``HOTA``,
``IDF1`` are 0. With predictions but no gt: ``FP`` = all predictions and every score is 0 -
including ``MOTA``, which TrackEval reports as 0 for such a sequence (the formula would give
``-FP``); :func:`evaluate_many` recomputes MOTA from summed counts across sequences.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.geometry import box_iou, centres_to_ltwh
from spermtrack.types import make_tracks

#: Keys returned by :func:`evaluate_tracks` that are counts (ints); all others are floats.
COUNT_KEYS: tuple[str, ...] = (
    "IDSW", "Frag", "MT", "PT", "ML", "TP", "FP", "FN", "IDTP", "IDFP", "IDFN",
    "num_gt_ids", "num_pred_ids", "num_gt_dets", "num_pred_dets", "num_frames",
)
#: Score keys (fractions in ``[0, 1]``, except MOTA/MODA which can be negative).
SCORE_KEYS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr",
    "MOTA", "MOTP", "MODA", "IDF1", "IDP", "IDR", "recall", "precision",
)


def box_iou_ltwh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` with every box in ``b``.

    Args:
        a, b: ``(N, 4)`` and ``(M, 4)`` boxes as ``left, top, width, height`` (px).

    Returns:
        ``(N, M)`` float64 IoU. A pair involving a box of zero area has IoU 0 (as in TrackEval).
        (:func:`spermtrack.geometry.box_iou` with ``fmt="ltwh"``.)
    """
    return box_iou(a, b, fmt="ltwh")


def _prepare(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a Tracks table for IoU evaluation and sort it by frame."""
    tracks = make_tracks(df, source=source)
    wh = tracks[["w", "h"]].to_numpy(np.float64)
    bad = ~np.isfinite(wh).all(axis=1) | (wh < 0).any(axis=1)
    if bad.any():
        row = tracks[bad].iloc[0]
        raise InputFileError(
            source,
            f"{int(bad.sum())} row(s) lack a valid box size (e.g. track {int(row.track_id)}, "
            f"frame {int(row.frame)}: w={row.w}, h={row.h}); IoU-based metrics need finite w, h >= 0 px",
        )
    return tracks.sort_values("frame", kind="stable").reset_index(drop=True)


def _split_by_frame(tracks: pd.DataFrame, n_frames: int) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Per-frame dense ids and ``ltwh`` boxes for a frame-sorted Tracks table."""
    ids = tracks["track_id"].to_numpy(np.int64)
    _, dense = np.unique(ids, return_inverse=True)
    n_ids = int(dense.max()) + 1 if len(dense) else 0
    xy = tracks[["x", "y"]].to_numpy(np.float64)
    wh = tracks[["w", "h"]].to_numpy(np.float64)
    ltwh = centres_to_ltwh(xy, wh)
    bounds = np.searchsorted(tracks["frame"].to_numpy(np.int64), np.arange(n_frames + 1))
    id_list = [dense[bounds[t]:bounds[t + 1]].astype(np.int64) for t in range(n_frames)]
    box_list = [ltwh[bounds[t]:bounds[t + 1]] for t in range(n_frames)]
    return id_list, box_list, n_ids


def build_trackeval_data(gt: pd.DataFrame, pred: pd.DataFrame, *, n_frames: int | None = None,
                         min_frames: int = 0, sources: tuple[str, str] = ("gt", "pred")) -> dict:
    """The per-sequence dict TrackEval's metric classes evaluate (``eval_sequence(data)``).

    Args:
        gt, pred: Tracks tables (``track_id, frame`` 0-based, ``x, y`` box centre, ``w, h`` px).
            Track ids may be any ints; they are remapped to dense ``0..K-1`` per table.
        n_frames: number of timesteps; default ``max(frame) + 1`` over both tables (0 if both are
            empty) or ``min_frames`` if larger. Frames without rows are evaluated as empty frames.
        min_frames: lower bound of the default ``n_frames`` (e.g. the frame count of a file whose
            ignored rows were dropped).
        sources: names used in error messages (e.g. the file paths).

    Raises:
        InputFileError: a table misses a column, repeats a (track, frame) or lacks box sizes.
        ParameterError: ``n_frames`` is smaller than a frame present in the tables.
    """
    gt = _prepare(gt, sources[0])
    pred = _prepare(pred, sources[1])
    last = max([int(t["frame"].iloc[-1]) for t in (gt, pred) if len(t)], default=-1)
    if n_frames is None:
        n_frames = max(last + 1, int(min_frames))
    elif n_frames < last + 1:
        raise ParameterError(f"n_frames={n_frames} but the tracks reach frame {last} (0-based); "
                             f"n_frames must be at least {last + 1}")
    gt_ids, gt_boxes, n_gt = _split_by_frame(gt, n_frames)
    pr_ids, pr_boxes, n_pr = _split_by_frame(pred, n_frames)
    return {
        "num_timesteps": int(n_frames),
        "num_gt_ids": n_gt,
        "num_tracker_ids": n_pr,
        "num_gt_dets": len(gt),
        "num_tracker_dets": len(pred),
        "gt_ids": gt_ids,
        "tracker_ids": pr_ids,
        "similarity_scores": [box_iou_ltwh(g, p) for g, p in zip(gt_boxes, pr_boxes)],
    }


def _metric_objects(iou_threshold: float):
    from trackeval.metrics import CLEAR, HOTA, Identity

    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ParameterError(f"iou_threshold={iou_threshold} is outside (0, 1]; 0.5 is the MOTChallenge value")
    cfg = {"THRESHOLD": float(iou_threshold), "PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(cfg), "Identity": Identity(cfg)}


def _summarise(raw: dict, num_gt_ids: int, num_pred_ids: int, num_gt_dets: int,
               num_pred_dets: int, num_frames: int) -> dict:
    """Flatten TrackEval's per-metric results into one dict of plain floats and ints."""
    h, c, i = raw["HOTA"], raw["CLEAR"], raw["Identity"]
    out: dict = {k: float(np.mean(h[k])) for k in ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")}
    tp, fp, fn = int(c["CLR_TP"]), int(c["CLR_FP"]), int(c["CLR_FN"])
    out.update(
        MOTA=float(c["MOTA"]), MOTP=float(c["MOTP"]), MODA=float(c["MODA"]),
        IDF1=float(i["IDF1"]), IDP=float(i["IDP"]), IDR=float(i["IDR"]),
        recall=float(c["CLR_Re"]), precision=float(c["CLR_Pr"]),
        IDSW=int(c["IDSW"]), Frag=int(c["Frag"]), MT=int(c["MT"]), PT=int(c["PT"]), ML=int(c["ML"]),
        TP=tp, FP=fp, FN=fn, IDTP=int(i["IDTP"]), IDFP=int(i["IDFP"]), IDFN=int(i["IDFN"]),
        num_gt_ids=int(num_gt_ids), num_pred_ids=int(num_pred_ids),
        num_gt_dets=int(num_gt_dets), num_pred_dets=int(num_pred_dets), num_frames=int(num_frames),
    )
    return out


def _evaluate_raw(gt: pd.DataFrame, pred: pd.DataFrame, *, iou_threshold: float, n_frames: int | None,
                  sources: tuple[str, str], min_frames: int = 0) -> tuple[dict, dict]:
    metrics = _metric_objects(iou_threshold)
    data = build_trackeval_data(gt, pred, n_frames=n_frames, min_frames=min_frames, sources=sources)
    raw = {name: m.eval_sequence(data) for name, m in metrics.items()}
    meta = {"num_gt_ids": data["num_gt_ids"], "num_pred_ids": data["num_tracker_ids"],
            "num_gt_dets": data["num_gt_dets"], "num_pred_dets": data["num_tracker_dets"],
            "num_frames": data["num_timesteps"]}
    return raw, meta


def evaluate_tracks(gt: pd.DataFrame, pred: pd.DataFrame, *, iou_threshold: float = 0.5,
                    n_frames: int | None = None) -> dict:
    """HOTA, CLEAR and Identity metrics of predicted tracks against ground truth (one sequence).

    Args:
        gt, pred: Tracks tables (see :mod:`spermtrack.types`); ``cls`` and ``conf`` are ignored.
        iou_threshold: minimum IoU for a gt box and a predicted box to count as a match in CLEAR
            and Identity. Lower values forgive sloppier boxes (useful for tiny heads whose boxes
            jitter by a few px) but let nearby cells be confused. HOTA ignores it (see module doc).
        n_frames: number of frames of the sequence; default ``max frame + 1`` of both tables.
            Trailing frames with no rows change only ``num_frames``.

    Returns:
        A dict with the scores ``HOTA, DetA, AssA, LocA, DetRe, DetPr, AssRe, AssPr, MOTA, MOTP,
        MODA, IDF1, IDP, IDR, recall, precision`` (floats, fractions) and the counts ``IDSW, Frag,
        MT, PT, ML, TP, FP, FN, IDTP, IDFP, IDFN, num_gt_ids, num_pred_ids, num_gt_dets,
        num_pred_dets, num_frames`` (ints).
    """
    raw, meta = _evaluate_raw(gt, pred, iou_threshold=iou_threshold, n_frames=n_frames, sources=("gt", "pred"))
    return _summarise(raw, **meta)


def _read_mot_table(path, *, is_gt: bool) -> tuple[pd.DataFrame, int]:
    """The Tracks table of a MOT file and its frame count (``max frame + 1`` over all its rows)."""
    from spermtrack.io.mot import read_mot

    tracks = read_mot(path)
    n_frames = int(tracks["frame"].max()) + 1 if len(tracks) else 0
    # MOTChallenge marks gt boxes to ignore with conf 0 (column 7); TrackEval (MOT15) and
    # py-motmetrics (min_confidence=1) both drop them, and so do we. Prediction conf is a score.
    if is_gt and len(tracks):
        tracks = tracks[tracks["conf"] != 0]
    return tracks, n_frames


def _as_table(obj, *, is_gt: bool) -> tuple[pd.DataFrame, str, int]:
    """A Tracks table, its name for error messages and its frame count, from a table or a MOT path."""
    if isinstance(obj, (str, os.PathLike)):
        tracks, n_frames = _read_mot_table(obj, is_gt=is_gt)
        return tracks, str(obj), n_frames
    return obj, "gt" if is_gt else "pred", 0


def evaluate_mot_files(gt_path: str | os.PathLike, pred_path: str | os.PathLike, *,
                       iou_threshold: float = 0.5, n_frames: int | None = None) -> dict:
    """:func:`evaluate_tracks` on two MOTChallenge text files (``frame,id,left,top,w,h,conf,...``).

    Ground-truth rows with ``conf == 0`` (MOTChallenge's "ignore" flag) are dropped first; they
    still count for the default ``n_frames`` (the last frame present in either file).

    Args:
        gt_path, pred_path: the files, read with :func:`spermtrack.io.mot.read_mot`.
        iou_threshold, n_frames: as in :func:`evaluate_tracks`.

    Raises:
        InputFileError: a file is missing or malformed (the message names the file and line).
    """
    gt, n_gt = _read_mot_table(gt_path, is_gt=True)
    pred, n_pred = _read_mot_table(pred_path, is_gt=False)
    raw, meta = _evaluate_raw(gt, pred, iou_threshold=iou_threshold, n_frames=n_frames,
                              min_frames=max(n_gt, n_pred), sources=(str(gt_path), str(pred_path)))
    return _summarise(raw, **meta)


def evaluate_many(pairs: Mapping[str, tuple] | Sequence[tuple], *, iou_threshold: float = 0.5) -> dict:
    """Evaluate several sequences and combine them the way TrackEval does.

    The overall row sums the per-sequence counts (TP, FP, FN, IDSW, Frag, MT/PT/ML, IDTP/IDFP/IDFN,
    HOTA's TP/FN/FP per alpha) and recomputes the scores from them; AssA/AssRe/AssPr and LocA are
    averaged weighted by HOTA's TP. For everything CLEAR and Identity report this equals
    py-motmetrics' "overall" row (checked on the TUD pair); ``MOTP`` is again ``1 -`` its distance.

    Args:
        pairs: ``{name: (gt, pred)}`` or a sequence of ``(gt, pred)`` (named ``seq0, seq1...``);
            ``gt``/``pred`` are Tracks tables or paths to MOTChallenge files.
        iou_threshold: as in :func:`evaluate_tracks`.

    Returns:
        ``{"sequences": {name: metrics}, "overall": metrics}`` with the keys of
        :func:`evaluate_tracks`; the overall ``num_*`` values are sums over sequences.
    """
    items = list(pairs.items()) if isinstance(pairs, Mapping) else [(f"seq{k}", p) for k, p in enumerate(pairs)]
    if not items:
        raise ParameterError("evaluate_many needs at least one (gt, pred) pair")
    metrics = _metric_objects(iou_threshold)
    raws: dict[str, dict] = {}
    per_seq: dict[str, dict] = {}
    meta_sum = dict.fromkeys(("num_gt_ids", "num_pred_ids", "num_gt_dets", "num_pred_dets", "num_frames"), 0)
    for name, (gt, pred) in items:
        gt, gt_src, n_gt = _as_table(gt, is_gt=True)
        pred, pred_src, n_pred = _as_table(pred, is_gt=False)
        raw, meta = _evaluate_raw(gt, pred, iou_threshold=iou_threshold, n_frames=None,
                                  min_frames=max(n_gt, n_pred), sources=(gt_src, pred_src))
        raws[name] = raw
        per_seq[name] = _summarise(raw, **meta)
        for k in meta_sum:
            meta_sum[k] += meta[k]
    combined = {m: metrics[m].combine_sequences({n: raws[n][m] for n in raws}) for m in metrics}
    return {"sequences": per_seq, "overall": _summarise(combined, **meta_sum)}
