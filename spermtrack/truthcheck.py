"""Check an analysis against the exact truth of a synthetic video (``spermtrack synth`` output):
tracking quality (HOTA, ID switches, IDF1 against ``gt/gt.txt``) and the grade mix (against the
true grades of ``gt/tracks_truth.csv``). Used by ``spermtrack demo`` and the pipeline benchmark.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from spermtrack.errors import InputFileError

GRADES4 = ("rapid_progressive", "slow_progressive", "non_progressive", "immotile")


def truth_grade_shares(truth: pd.DataFrame, min_duration_s: float) -> tuple[dict[str, float], int]:
    """% of each grade among the true sperm tracks (clusters left out) at least ``min_duration_s`` long."""
    t = truth[(truth["cls"] != 1) & (truth["duration_s"] >= min_duration_s)]
    n = len(t)
    counts = t["grade"].astype(str).value_counts()
    return {g: 100.0 * counts.get(g, 0) / n if n else float("nan") for g in GRADES4}, n


def check_against_truth(folder: str | Path, tracks: pd.DataFrame, summary, *, min_duration_s: float = 0.5) -> dict:
    """Compare tracks and a track-mode summary with a synthetic video folder's truth.

    Args:
        folder: the synthetic video folder (holding ``gt/gt.txt`` and ``gt/tracks_truth.csv``).
        tracks: the analysis' Tracks table (smoothed boxes are scored when present).
        summary: the ``aggregate="track"`` :class:`~spermtrack.kinematics.MotilitySummary`.
        min_duration_s: the grading minimum (true tracks shorter than this are not counted).

    Returns:
        ``{"tracking": {HOTA, AssA, DetA, IDF1, MOTA, IDSW, ...}, "grades": {grade: {"truth_pct",
        "measured_pct", "diff_pct_points"}}, "max_grade_diff_pct_points", "n_true_tracks"}``;
        scores are percentages.
    """
    from spermtrack.io.mot import read_mot
    from spermtrack.tracker.metrics import evaluate_tracks
    from spermtrack.tracker.refine import smoothed_boxes

    folder = Path(folder)
    gt_path, truth_path = folder / "gt" / "gt.txt", folder / "gt" / "tracks_truth.csv"
    for p in (gt_path, truth_path):
        if not p.is_file():
            raise InputFileError(p, "missing: not a synthetic video folder with ground truth")
    gt = read_mot(gt_path)
    n_frames = int(max(gt["frame"].max() if len(gt) else 0, tracks["frame"].max() if len(tracks) else 0)) + 1
    m = evaluate_tracks(gt, smoothed_boxes(tracks), n_frames=n_frames)
    tracking = {k: round(100 * m[k], 2) for k in ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "recall", "precision")}
    tracking.update({k: int(m[k]) for k in ("IDSW", "Frag", "num_gt_ids", "num_pred_ids")})
    truth = pd.read_csv(truth_path)
    shares, n_true = truth_grade_shares(truth, min_duration_s)
    grades = {}
    for g in GRADES4:
        meas = summary.pct(g)
        grades[g] = {"truth_pct": round(shares[g], 2), "measured_pct": round(meas, 2),
                     "diff_pct_points": round(meas - shares[g], 2)}
    return {"truth_folder": str(folder), "tracking": tracking, "grades": grades,
            "max_grade_diff_pct_points": round(max(abs(v["diff_pct_points"]) for v in grades.values()), 2),
            "n_true_tracks": n_true, "n_graded_tracks": summary.n_graded}
