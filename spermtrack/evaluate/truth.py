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


def graded_truth_shares(gt: pd.DataFrame, truth: pd.DataFrame, grader: dict,
                        min_duration_s: float) -> tuple[dict[str, float], int]:
    """% of each grade among the true sperm tracks when their head positions (``gt/gt.txt``)
    are graded by the analysis' own grader (``grader``: ``fps, um_per_px, preset``), so that the
    comparison measures tracking, not a difference of grading rules."""
    from spermtrack.kinematics import compute_track_metrics, summarize_motility

    sperm_ids = truth.loc[truth["cls"] != 1, "track_id"]
    g = gt[gt["track_id"].isin(sperm_ids)]
    m = compute_track_metrics(g, float(grader["fps"]), float(grader["um_per_px"]), preset=grader["preset"],
                              min_duration_s=min_duration_s, source="gt/gt.txt")
    s = summarize_motility(m, aggregate="track")
    return {q: s.pct(q) for q in GRADES4}, s.n_graded


def check_against_truth(folder: str | Path, tracks: pd.DataFrame, summary, *, min_duration_s: float = 0.5,
                        grader: dict | None = None, concentration: dict | None = None) -> dict:
    """Compare tracks and a track-mode summary with a synthetic video folder's truth.

    Args:
        folder: the synthetic video folder (holding ``gt/gt.txt`` and ``gt/tracks_truth.csv``).
        tracks: the analysis' Tracks table (smoothed boxes are scored when present).
        summary: the ``aggregate="track"`` :class:`~spermtrack.kinematics.MotilitySummary`.
        min_duration_s: the grading minimum (true tracks shorter than this are not counted).
        grader: ``{fps, um_per_px, preset}`` of the analysis: the true head paths are graded by the
            same rule (:func:`graded_truth_shares`); ``None`` uses the truth's own (literal WHO)
            grades.
        concentration: the analysis' concentration record (:mod:`spermtrack.kinematics.concentration`);
            when given, the true concentration (true sperm heads in view per frame over the same
            frames / the same field volume) is compared with it.

    Returns:
        ``{"tracking": {HOTA, AssA, DetA, IDF1, MOTA, IDSW, ...}, "grades": {grade: {"truth_pct",
        "measured_pct", "diff_pct_points"}}, "max_grade_diff_pct_points", "n_true_tracks"}``;
        scores are percentages.
    """
    from spermtrack.io.mot import read_mot
    from spermtrack.evaluate.metrics import evaluate_tracks
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
    if grader is not None:
        shares, n_true = graded_truth_shares(gt, truth, grader, min_duration_s)
        truth_grader = f"{grader['preset']} on the true head paths"
    else:
        shares, n_true = truth_grade_shares(truth, min_duration_s)
        truth_grader = "the truth's own grades (who2021-literal)"
    grades = {}
    for g in GRADES4:
        meas = summary.pct(g)
        grades[g] = {"truth_pct": round(shares[g], 2), "measured_pct": round(meas, 2),
                     "diff_pct_points": round(meas - shares[g], 2)}
    out = {"truth_folder": str(folder), "tracking": tracking, "grades": grades, "truth_grader": truth_grader,
           "max_grade_diff_pct_points": round(max(abs(v["diff_pct_points"]) for v in grades.values()), 2),
           "n_true_tracks": n_true, "n_graded_tracks": summary.n_graded}
    if concentration is not None:
        out["concentration"] = true_concentration(gt, truth, concentration)
    return out


def true_concentration(gt: pd.DataFrame, truth: pd.DataFrame, measured: dict) -> dict:
    """The true concentration of a synthetic video (its sperm, clusters left out, counted by the
    same rule over the same frames, field and chamber depth) beside the measured one."""
    from spermtrack.kinematics.concentration import heads_in_view

    sperm = gt[gt["track_id"].isin(truth.loc[truth["cls"] != 1, "track_id"])]
    true_heads = heads_in_view(sperm, int(measured["n_frames"]), measured["width_px"], measured["height_px"])
    true_c = true_heads / (measured["field_area_um2"] * measured["chamber_depth_um"]) * 1e6
    got = measured["concentration_million_per_ml"]
    return {"truth_million_per_ml": round(true_c, 3), "measured_million_per_ml": round(got, 3),
            "true_mean_heads_in_view": round(true_heads, 3),
            "measured_mean_heads_in_view": round(measured["mean_heads_in_view"], 3),
            "rel_error_pct": round(100 * (got / true_c - 1), 2) if true_c > 0 else None}
