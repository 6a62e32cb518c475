"""``spermtrack visem ROOT --out DIR``: analyse every video of a VISEM-Tracking copy, score the
tracking against its labels (TrackEval: HOTA, IDF1, MOTA, ID switches, on annotated frames only)
and the motility against the lab's clinical values (per video, both aggregation modes, and the
mean absolute error over videos), in one table (``DIR/visem_results.csv`` and ``.md``).

The lab's "progressive" is WHO a + b. Synthetic copies (``spermtrack synth``) have no clinical
row; their reference is the exact truth in ``gt/tracks_truth.csv``.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd

from spermtrack.cli.analyze_cmd import _common, build_config
from spermtrack.errors import InputFileError, SpermtrackError

DEFAULT_CLINICAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "visem" / "visem_tracking_20_motility.csv"
QUANTITIES = ("progressive", "non_progressive", "immotile")


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
        from spermtrack.truthcheck import truth_grade_shares

        s, _ = truth_grade_shares(pd.read_csv(truth), min_duration_s)
        return {"progressive": s["rapid_progressive"] + s["slow_progressive"],
                "non_progressive": s["non_progressive"], "immotile": s["immotile"]}, "synthetic truth"
    return None, "none"


def evaluate_video(v, res, clinical: dict, min_duration_s: float) -> dict:
    """One row of the table: tracking scores on annotated frames and motility errors per mode.

    ``v`` is the folder's :class:`~spermtrack.io.visem.VisemVideo`, ``res`` its analysis."""
    from spermtrack.tracker.metrics import evaluate_tracks
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
    ref, source = _reference(folder, v.video_id, clinical, min_duration_s)
    row["reference"] = source
    for q in QUANTITIES:
        row[f"ref_{q}_pct"] = None if ref is None else round(ref[q], 1)
    for mode in ("track", "window"):
        s = res.meta["summary"][mode]
        pct = {r["quantity"]: r["pct"] for r in s["table"]}
        for q in QUANTITIES:
            row[f"{mode}_{q}_pct"] = round(pct[q], 1)
            row[f"{mode}_{q}_abs_err"] = None if ref is None else round(abs(pct[q] - ref[q]), 1)
    return row


def results_table(rows: list[dict]) -> pd.DataFrame:
    """Per-video rows plus a last row ``MAE`` (mean over videos of every score and error)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    mean = {"video": "MAE / mean", "split": "", "reference": ""}
    for c in df.columns:
        if c not in mean and pd.api.types.is_numeric_dtype(df[c]):
            vals = pd.to_numeric(df[c], errors="coerce")
            mean[c] = round(float(vals.mean()), 2) if vals.notna().any() else None
    return pd.concat([df, pd.DataFrame([mean])], ignore_index=True)


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


@click.command("visem")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output root.")
@click.option("--split", type=click.Choice(["train", "val", "all"]), default="all", show_default=True)
@click.option("--clinical", type=click.Path(path_type=Path), default=None,
              help="Clinical motility table (ID, progressive_pct, non_progressive_pct, immotile_pct); "
                   "default: the shared copy when present.")
@_common
def visem(root, out, split, clinical, fps, um_per_px, detector, weights, reid_weights, segmenter, segmenter_weights,
          preset, aggregate, no_video, config_path, quiet, _debug, polarity) -> None:
    """Analyse and evaluate every video of a VISEM-Tracking copy (or of `spermtrack synth` output)."""
    from spermtrack.analyze import analyze_video
    from spermtrack.io.atomic import write_csv_atomic, write_text_atomic
    from spermtrack.io.visem import list_video_folders, read_visem_video

    cfg = build_config(config_path, detector=detector, weights=weights, reid_weights=reid_weights,
                       segmenter=segmenter, segmenter_weights=segmenter_weights, preset=preset,
                       aggregate=aggregate, no_video=no_video, polarity=polarity)
    clin_path = clinical or (DEFAULT_CLINICAL if DEFAULT_CLINICAL.is_file() else None)
    table = read_clinical(clin_path) if clin_path is not None else {}
    folders = list_video_folders(root, split)
    rows, failed = [], []
    for folder in folders:
        video = folder / f"{folder.name}.mp4"
        try:
            if not video.is_file():
                raise InputFileError(folder, "has no video file <id>.mp4")
            v = read_visem_video(folder, fps=fps)  # labels first: a bad line fails before decoding
            res = analyze_video(video, out, config=cfg, fps=fps, um_per_px=um_per_px, progress=not quiet)
            rows.append(evaluate_video(v, res, table, cfg.kinematics.min_duration_s))
        except SpermtrackError as err:
            if len(folders) == 1:
                raise
            click.echo(f"spermtrack: error: {folder.name}: {err}", err=True)
            failed.append(folder.name)
    df = results_table(rows)
    if not df.empty:
        write_csv_atomic(Path(out) / "visem_results.csv", df)
        md = to_markdown(df)
        write_text_atomic(Path(out) / "visem_results.md", md)
        click.echo(md, nl=False)
        click.echo(f"wrote {Path(out) / 'visem_results.csv'} (reference: "
                   f"{clin_path if clin_path else 'synthetic truth only'})")
    if failed:
        raise SpermtrackError(f"{len(failed)} of {len(folders)} videos failed: {', '.join(failed)}")
