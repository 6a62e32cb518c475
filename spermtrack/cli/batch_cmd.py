"""``spermtrack batch``: many videos on Dask distributed (local cluster or an existing one), resumable."""

from __future__ import annotations

from pathlib import Path

import click

from spermtrack.cli.analyze_cmd import _common, _sample_options, build_config, pool_if_sample
from spermtrack.errors import SpermtrackError


@click.command("batch")
@click.argument("videos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output root; one folder per video.")
@click.option("--workers", type=int, default=None, help="Worker processes of the local Dask cluster (default 2).")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786.")
@_common
@_sample_options
def batch(videos, out, workers, scheduler, fps, um_per_px, detector, weights, reid_weights, segmenter,
          segmenter_weights, preset, aggregate, no_video, config_path, quiet, _debug, polarity, chamber_depth_um,
          sample, sample_id, patient_id) -> None:
    """Analyse many VIDEOS in parallel into OUT/<stem>/ and OUT/batch_summary.csv.

    Finished videos are skipped (rerun after an interruption to resume); a failing video is
    reported and the others still run; the exit status is non-zero when any failed.
    """
    from spermtrack.pipeline.batch import run_batch

    if workers is not None and scheduler is not None:
        raise SpermtrackError("give --workers (local cluster) or --scheduler (existing cluster), not both")
    cfg = build_config(config_path, detector=detector, weights=weights, reid_weights=reid_weights,
                       segmenter=segmenter, segmenter_weights=segmenter_weights, preset=preset,
                       aggregate=aggregate, no_video=no_video, polarity=polarity, chamber_depth_um=chamber_depth_um)
    sample_id = sample_id if sample_id is not None else sample
    missing = [v for v in videos if not Path(v).is_file()]
    for v in missing:
        click.echo(f"spermtrack: error: {v}: video file not found", err=True)
    table = run_batch([v for v in videos if Path(v).is_file()], out, config=cfg, fps=fps, um_per_px=um_per_px,
                      workers=workers, scheduler=scheduler, echo=click.echo, sample_id=sample_id,
                      patient_id=patient_id, sample=sample) if len(missing) < len(videos) else None
    n_failed = len(missing) + (int((table["status"] == "failed").sum()) if table is not None else 0)
    if table is not None:
        click.echo(f"{int((table['status'] == 'ok').sum())} analysed, "
                   f"{int(table['status'].str.startswith('skipped').sum())} skipped, {n_failed} failed; "
                   f"wrote {Path(out) / 'batch_summary.csv'}")
        done = [Path(d) for d, st in zip(table["out_dir"], table["status"]) if st == "ok" or st.startswith("skipped")]
        if done:
            pool_if_sample(sample, done, Path(out), sample_id=sample_id, patient_id=patient_id)
    if n_failed:
        raise SpermtrackError(f"{n_failed} of {len(videos)} videos failed (see above and batch_summary.csv)")
