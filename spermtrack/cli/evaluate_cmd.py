"""``spermtrack evaluate``: HOTA, CLEAR and Identity metrics of a tracker's MOT file against ground truth."""

from __future__ import annotations

from pathlib import Path

import click

#: (key, label) of the rows printed, in order; the meaning follows MOTChallenge/TrackEval.
_TABLE: tuple[tuple[str, str], ...] = (
    ("HOTA", "higher order tracking accuracy (mean over IoU 0.05..0.95)"),
    ("DetA", "HOTA detection accuracy"),
    ("AssA", "HOTA association accuracy"),
    ("LocA", "HOTA localisation accuracy (mean IoU)"),
    ("MOTA", "1 - (FN + FP + IDSW) / gt boxes"),
    ("MOTP", "mean IoU of CLEAR matches (py-motmetrics reports 1 - this)"),
    ("IDF1", "identity F1"),
    ("IDP", "identity precision"),
    ("IDR", "identity recall"),
    ("recall", "matched gt boxes / gt boxes"),
    ("precision", "matched predictions / predictions"),
    ("IDSW", "identity switches"),
    ("Frag", "track fragmentations (TrackEval definition)"),
    ("MT", "gt ids tracked > 80 % of their frames"),
    ("PT", "gt ids tracked 20-80 %"),
    ("ML", "gt ids tracked < 20 %"),
    ("FP", "false positive boxes"),
    ("FN", "missed gt boxes"),
    ("num_gt_ids", "ground-truth tracks"),
    ("num_pred_ids", "predicted tracks"),
    ("num_frames", "frames evaluated"),
)


def format_table(res: dict) -> str:
    """An aligned plain-text table of the main metrics (fractions with 4 decimals, counts as ints)."""
    lines = [f"{'metric':<13}{'value':>9}  meaning"]
    for key, label in _TABLE:
        v = res[key]
        val = f"{v:d}" if isinstance(v, int) else f"{v:.4f}"
        lines.append(f"{key:<13}{val:>9}  {label}")
    return "\n".join(lines)


@click.command("evaluate")
@click.option("--gt", "gt_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Ground truth, MOTChallenge text (frame,id,left,top,width,height,conf,...); conf 0 rows are ignored.")
@click.option("--pred", "pred_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tracker output in the same MOTChallenge form.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write all metrics (fractions and counts) and run metadata to this JSON file.")
@click.option("--iou", "iou_threshold", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5,
              show_default=True,
              help="Minimum IoU of a match for CLEAR and Identity (HOTA integrates over all thresholds).")
@click.option("--n-frames", type=click.IntRange(min=1), default=None,
              help="Number of frames of the sequence (default: last frame present in either file).")
def evaluate(gt_path: Path, pred_path: Path, json_path: Path | None, iou_threshold: float,
             n_frames: int | None) -> None:
    """Score a tracker's output PRED against ground truth GT (class-agnostic, TrackEval metrics)."""
    import trackeval

    from spermtrack import __version__
    from spermtrack.io.atomic import write_json_atomic
    from spermtrack.io.mot import read_tracks_file
    from spermtrack.evaluate.metrics import evaluate_mot_files

    read_tracks_file(gt_path)  # a ground truth without rows would score every tracker 0: refuse it
    res = evaluate_mot_files(gt_path, pred_path, iou_threshold=iou_threshold, n_frames=n_frames)
    click.echo(f"gt:   {gt_path}\npred: {pred_path}\nIoU threshold {iou_threshold:g}, class-agnostic\n")
    click.echo(format_table(res))
    if json_path is not None:
        out = dict(res)
        out["meta"] = {
            "gt": str(gt_path),
            "pred": str(pred_path),
            "iou_threshold": float(iou_threshold),
            "class_agnostic": True,
            "scores_are": "fractions in [0, 1] (MOTA/MODA may be negative); MOTP is a mean IoU",
            "spermtrack_version": __version__,
            "trackeval_version": getattr(trackeval, "__version__", "unknown"),
        }
        write_json_atomic(json_path, out)
        click.echo(f"\nwrote {json_path}")
