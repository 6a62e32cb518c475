"""``spermtrack visem ROOT --out DIR [--tracks engine|gt]``: the motility comparison against the
lab, on anyone's VISEM-Tracking copy, in one table (``DIR/visem_results.csv`` and ``.md``). The
library behind it, and what the table holds, is :mod:`spermtrack.pipeline.visem`."""

from __future__ import annotations

from pathlib import Path

import click

from spermtrack.cli.analyze_cmd import _common, build_config
from spermtrack.errors import InputFileError, SpermtrackError, user_message
from spermtrack.pipeline.visem import (
    DEFAULT_CLINICAL,
    GT_FALLBACK_UM_PER_PX,
    evaluate_gt_video,
    evaluate_video,
    grade_gt_video,
    gt_scale,
    read_clinical,
    results_table,
    summary_lines,
    to_markdown,
)

@click.command("visem")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output root.")
@click.option("--split", type=click.Choice(["train", "val", "all"]), default="all", show_default=True)
@click.option("--clinical", type=click.Path(path_type=Path), default=None,
              help="Clinical motility table (ID, progressive_pct, non_progressive_pct, immotile_pct); "
                   "default: the shared copy when present.")
@click.option("--tracks", "tracks_from", type=click.Choice(["engine", "gt"]), default="engine", show_default=True,
              help="engine: analyse each video and grade the engine's tracks (the whole product). gt: grade "
                   "the dataset's own sperm tracks from labels_ftid/ (the grader only; no video decoded, "
                   "the mp4 need not exist; detector options are ignored; without --um-per-px the scale "
                   f"is {GT_FALLBACK_UM_PER_PX} um/px, as there is no image to estimate it from).")
@_common
def visem(root, out, split, clinical, tracks_from, fps, um_per_px, detector, weights, reid_weights, segmenter,
          segmenter_weights, preset, aggregate, no_video, config_path, quiet, _debug, polarity, chamber_depth_um) -> None:
    """Compare motility with the lab on a VISEM-Tracking copy (or `spermtrack synth` output).

    With --tracks engine (default) every video is analysed and its tracking is scored against
    the labels; with --tracks gt the dataset's own tracks are graded (no video decoded) and the
    per-track metrics go to OUT/<video>/gt_kinematics.csv. OUT/visem_results.csv and .md hold per
    video and per aggregation mode (track, window) the predicted %, |error| and signed error
    against the clinical table, then the MAE and bias over videos."""
    from spermtrack.io.atomic import write_csv_atomic, write_text_atomic
    from spermtrack.io.visem import list_video_folders, read_visem_video

    cfg = build_config(config_path, detector=detector, weights=weights, reid_weights=reid_weights,
                       segmenter=segmenter, segmenter_weights=segmenter_weights, preset=preset,
                       aggregate=aggregate, no_video=no_video, polarity=polarity,
                       chamber_depth_um=chamber_depth_um)
    clin_path = clinical or (DEFAULT_CLINICAL if DEFAULT_CLINICAL.is_file() else None)
    table = read_clinical(clin_path) if clin_path is not None else {}
    folders = list_video_folders(root, split)
    gt = tracks_from == "gt"
    if gt:
        from spermtrack.kinematics import round_for_csv

        if fps is not None:
            from spermtrack.types import FPS_RANGE
            from spermtrack.types import check_positive

            fps = check_positive("--fps", fps, *FPS_RANGE)
        scale, scale_source = gt_scale(um_per_px)
        note = ("" if scale_source == "user" else
                " (default: gt mode reads no image to estimate it from; give --um-per-px for calibrated values)")
        click.echo(f"grading the dataset's own sperm tracks (--tracks gt, no video decoded), preset "
                   f"{cfg.kinematics.preset}, um_per_px {scale:g}{note}")
    rows, failed = [], []
    for folder in folders:
        video = folder / f"{folder.name}.mp4"
        try:
            if gt:
                v = read_visem_video(folder, fps=fps)
                for w in v.warnings:
                    click.echo(f"warning: {folder.name}: {w}", err=True)
                metrics, summaries = grade_gt_video(v, cfg, scale)
                write_csv_atomic(Path(out) / v.video_id / "gt_kinematics.csv", round_for_csv(metrics))
                rows.append(evaluate_gt_video(v, metrics, summaries, table, cfg.kinematics.min_duration_s,
                                              scale, scale_source))
                continue
            from spermtrack.pipeline.analyze import analyze_video

            if not video.is_file():
                raise InputFileError(folder, "has no video file <id>.mp4")
            v = read_visem_video(folder, fps=fps)  # labels first: a bad line fails before decoding
            res = analyze_video(video, out, config=cfg, fps=fps, um_per_px=um_per_px, progress=not quiet)
            rows.append(evaluate_video(v, res, table, cfg.kinematics.min_duration_s))
        except SpermtrackError as err:
            if len(folders) == 1:
                raise
            click.echo(f"spermtrack: error: {folder.name}: {user_message(err)}", err=True)
            failed.append(folder.name)
    df = results_table(rows)
    if not df.empty:
        write_csv_atomic(Path(out) / "visem_results.csv", df)
        md = to_markdown(df)
        write_text_atomic(Path(out) / "visem_results.md", md)
        click.echo(md, nl=False)
        for line in summary_lines(df):
            click.echo(line)
        click.echo(f"wrote {Path(out) / 'visem_results.csv'} (reference: "
                   f"{clin_path if clin_path else 'synthetic truth only'})")
    if failed:
        raise SpermtrackError(f"{len(failed)} of {len(folders)} videos failed: {', '.join(failed)}")
