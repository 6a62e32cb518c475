"""Motility and tracking of a VISEM-Tracking copy against the lab and the labels (the library
behind ``spermtrack visem``).
lab, on anyone's VISEM-Tracking copy, in one table (``DIR/visem_results.csv`` and ``.md``).

``--tracks engine`` (default, the whole product): analyse every video, score the tracking against
its labels (TrackEval: HOTA, IDF1, MOTA, ID switches, on annotated frames only) and the motility
against the lab's clinical values. ``--tracks gt`` (the grader only): no video is decoded; the
dataset's own sperm tracks (``labels_ftid/``) are graded with the configured preset, and the
per-track metrics go to ``DIR/<video>/gt_kinematics.csv``; the tracking columns are absent.

Either way every video row holds, per aggregation mode (track, window) and quantity
(progressive, non-progressive, immotile), the predicted percentage ``{mode}_{q}_pct``, the
absolute error ``{mode}_{q}_abs_err`` and the signed error ``{mode}_{q}_err`` (predicted -
reference); the table ends with a ``MAE / mean`` row (mean over videos of every score and absolute
error) and a ``bias`` row (mean signed error).

The lab's "progressive" is WHO a + b. Synthetic copies (``spermtrack synth``) have no clinical
row; their reference is the exact truth in ``gt/tracks_truth.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError

DEFAULT_CLINICAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "visem" / "visem_tracking_20_motility.csv"
QUANTITIES = ("progressive", "non_progressive", "immotile")
MODES = ("track", "window")
#: Scale used with ``--tracks gt`` when no --um-per-px is given: the engine estimates it from the
#: image (detector calibration), and gt mode reads no image.
GT_FALLBACK_UM_PER_PX = 0.5
#: Short names of the summary lines.
_SHORT = {"progressive": "PR", "non_progressive": "NP", "immotile": "IM"}


def read_clinical(path: Path) -> dict[str, dict[str, float]]:
    """``{video id: {progressive, non_progressive, immotile}}`` (percent) from the clinical table."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputFileError(path, f"cannot read the clinical table ({err.strerror or err})") from None
    if not lines:
        raise InputFileError(path, "empty clinical table")
    header = [h.strip() for h in lines[0].split(",")]
    need = ["ID", "progressive_pct", "non_progressive_pct", "immotile_pct"]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputFileError(path, f"header lacks {', '.join(missing)}", line=1)
    idx = [header.index(c) for c in need]
    out = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < len(header):
            raise InputFileError(path, f"{len(parts)} fields, the header has {len(header)}", line=n)
        try:
            vals = [float(parts[i]) for i in idx[1:]]
        except ValueError:
            raise InputFileError(path, f"a percentage is not a number: {line[:60]!r}", line=n) from None
        if any(not 0 <= v <= 100 for v in vals):
            raise InputFileError(path, f"a percentage is outside 0-100: {line[:60]!r}", line=n)
        out[parts[idx[0]]] = dict(zip(QUANTITIES, vals))
    return out


def _reference(folder: Path, vid: str, clinical: dict, min_duration_s: float) -> tuple[dict | None, str]:
    if vid in clinical:
        return clinical[vid], "clinical"
    truth = folder / "gt" / "tracks_truth.csv"
    if truth.is_file():
        from spermtrack.evaluate.truth import truth_grade_shares

        s, _ = truth_grade_shares(pd.read_csv(truth), min_duration_s)
        return {"progressive": s["rapid_progressive"] + s["slow_progressive"],
                "non_progressive": s["non_progressive"], "immotile": s["immotile"]}, "synthetic truth"
    return None, "none"


def evaluate_video(v, res, clinical: dict, min_duration_s: float) -> dict:
    """One row of the table: tracking scores on annotated frames and motility errors per mode.

    ``v`` is the folder's :class:`~spermtrack.io.visem.VisemVideo`, ``res`` its analysis."""
    from spermtrack.evaluate.metrics import evaluate_tracks
    from spermtrack.tracker.refine import smoothed_boxes

    folder = v.folder
    row: dict = {"video": v.video_id, "split": v.split, "n_frames": res.meta["n_frames_analysed"]}
    if len(v.tracks):
        annotated = v.annotated_frames
        pred = smoothed_boxes(res.tracks)
        pred = pred[pred["frame"].isin(annotated)]
        gt = v.tracks[v.tracks["frame"] < res.meta["n_frames_analysed"]]
        m = evaluate_tracks(gt, pred, n_frames=int(v.meta.n_frames))
        row.update({k: round(100 * m[k], 1) for k in ("HOTA", "AssA", "IDF1", "MOTA")})
        row.update({"IDSW": int(m["IDSW"]), "gt_ids": int(m["num_gt_ids"]), "pred_ids": int(m["num_pred_ids"])})
    cal = res.meta.get("calibration", {})
    row.update({"n_graded": res.meta.get("counts", {}).get("n_graded"),
                "um_per_px": None if cal.get("um_per_px") is None else round(float(cal["um_per_px"]), 4),
                "um_per_px_source": cal.get("um_per_px_source")})
    pct = {mode: {r["quantity"]: r["pct"] for r in res.meta["summary"][mode]["table"]} for mode in MODES}
    return _motility_columns(row, folder, v.video_id, pct, clinical, min_duration_s)


def _motility_columns(row: dict, folder: Path, vid: str, pct: dict, clinical: dict, min_duration_s: float) -> dict:
    """Add ``reference, ref_{q}_pct`` and per mode ``{mode}_{q}_pct, _abs_err, _err`` to ``row``.

    ``pct`` is ``{mode: {quantity: percent}}``; the errors are None without a reference."""
    ref, source = _reference(folder, vid, clinical, min_duration_s)
    row["reference"] = source
    for q in QUANTITIES:
        row[f"ref_{q}_pct"] = None if ref is None else round(ref[q], 1)
    for mode in MODES:
        for q in QUANTITIES:
            p = pct[mode][q]
            row[f"{mode}_{q}_pct"] = round(p, 1)
            row[f"{mode}_{q}_abs_err"] = None if ref is None else round(abs(p - ref[q]), 1)
            row[f"{mode}_{q}_err"] = None if ref is None else round(p - ref[q], 1)
    return row


def gt_scale(um_per_px) -> tuple[float, str]:
    """``(um_per_px, source)`` for ``--tracks gt``: the user's value, else
    :data:`GT_FALLBACK_UM_PER_PX` with source ``"default"`` (the engine estimates the scale from
    the image, and gt mode reads none)."""
    if um_per_px is not None and str(um_per_px).strip().lower() != "estimate":
        from spermtrack.pipeline.analyze import _scale

        scale, source, _ = _scale(pd.DataFrame(), um_per_px, None, "--um-per-px", lambda _line: None)
        return scale, source
    return GT_FALLBACK_UM_PER_PX, "default"


def grade_gt_video(v, cfg, um_per_px: float) -> tuple[pd.DataFrame, dict]:
    """Grade the dataset's own sperm tracks of one video (no video decoded).

    Returns the per-track metrics of :func:`~spermtrack.kinematics.compute_track_metrics` and
    ``{mode: MotilitySummary}`` for both aggregation modes. Tracks whose majority class is not
    sperm (clusters, pinheads) are left out, as in ``analyze``."""
    from spermtrack.pipeline.analyze import sperm_only
    from spermtrack.kinematics import compute_track_metrics, summarize_motility

    if v.tracks.empty:
        raise InputFileError(v.folder, "has no track ids (labels_ftid/) to grade with --tracks gt")
    tracks, _ = sperm_only(v.tracks)
    if tracks.empty:
        raise InputFileError(v.folder, "has no sperm (class 0) track to grade")
    k = cfg.kinematics
    fps = float(v.meta.fps)
    metrics = compute_track_metrics(tracks, fps, um_per_px, window=k.window, min_duration_s=k.min_duration_s,
                                    preset=k.preset, source=str(v.folder / "labels_ftid"))
    summaries = {mode: summarize_motility(metrics, aggregate=mode, window_s=k.aggregate_window_s, fps=fps)
                 for mode in MODES}
    return metrics, summaries


def evaluate_gt_video(v, metrics: pd.DataFrame, summaries: dict, clinical: dict, min_duration_s: float,
                      um_per_px: float, um_per_px_source: str) -> dict:
    """One row of the table for ``--tracks gt``: same layout as :func:`evaluate_video` without
    the tracking scores."""
    row: dict = {"video": v.video_id, "split": v.split, "n_frames": int(v.meta.n_frames),
                 "n_tracks": int(metrics["track_id"].nunique()) if len(metrics) else 0,
                 "n_graded": int(summaries["track"].n_graded), "um_per_px": um_per_px,
                 "um_per_px_source": um_per_px_source}
    pct = {mode: {r["quantity"]: r["pct"] for r in s.table} for mode, s in summaries.items()}
    return _motility_columns(row, v.folder, v.video_id, pct, clinical, min_duration_s)


def _is_signed_err(c: str) -> bool:
    return c.endswith("_err") and not c.endswith("_abs_err")


def results_table(rows: list[dict]) -> pd.DataFrame:
    """Per-video rows, then ``MAE / mean`` (mean over videos of every score and absolute error)
    and ``bias`` (mean over videos of every signed error ``{mode}_{q}_err``, predicted -
    reference). Videos without a reference count in neither."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df

    def mean_of(c):
        vals = pd.to_numeric(df[c], errors="coerce")
        return round(float(vals.mean()), 2) if vals.notna().any() else None

    mean = {"video": "MAE / mean", "split": "", "reference": ""}
    bias = {"video": "bias", "split": "", "reference": ""}
    for c in df.columns:
        if c in mean or not pd.api.types.is_numeric_dtype(df[c]):
            continue
        if _is_signed_err(c):
            bias[c] = mean_of(c)
        else:
            mean[c] = mean_of(c)
    return pd.concat([df, pd.DataFrame([mean, bias])], ignore_index=True)


def summary_lines(df: pd.DataFrame) -> list[str]:
    """One line per aggregation mode: MAE and bias of PR / NP / IM over the videos with a reference."""
    if df.empty or "video" not in df.columns:
        return []
    per_video = df[~df["video"].isin(["MAE / mean", "bias"])]
    lines = []
    for mode in MODES:
        cols = [f"{mode}_{q}_err" for q in QUANTITIES]
        if not all(c in df.columns for c in cols):
            continue
        err = per_video[cols].apply(pd.to_numeric, errors="coerce")
        n = int(err.notna().all(axis=1).sum())
        if n == 0:
            lines.append(f"{mode:<6}: no video has a reference")
            continue
        mae = " ".join(f"{_SHORT[q]} {err[c].abs().mean():.1f}" for q, c in zip(QUANTITIES, cols))
        bias = " ".join(f"{_SHORT[q]} {err[c].mean():+.1f}" for q, c in zip(QUANTITIES, cols))
        lines.append(f"{mode:<6}: MAE {mae}  bias (pred - ref) {bias}  "
                     f"({n} video{'s' if n != 1 else ''} with a reference)")
    return lines


def to_markdown(df: pd.DataFrame) -> str:
    cols = [c for c in df.columns if not c.endswith("_pct") or c.startswith("ref_")]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    def cell(v) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)

    for _, r in df[cols].iterrows():
        lines.append("| " + " | ".join(cell(v) for v in r) + " |")
    return "\n".join(lines) + "\n"
