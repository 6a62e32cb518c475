"""``spermtrack visem-check``: read a VISEM-Tracking copy (or synth output) and validate it."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("visem-check")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "all"]), default="all", show_default=True,
              help="Which part of the dataset to read (Train/, Val/ or both).")
@click.option("--counts", "counts_csv", type=click.Path(path_type=Path), default=None,
              help="Per-frame counts CSV (default: the dataset's own, else the official one for real ids).")
def visem_check(root: Path, split: str, counts_csv: Path | None) -> None:
    """Read every video under ROOT and check its labels; exit 1 when a check fails."""
    from spermtrack.io.visem import list_video_folders, read_visem_video, validate

    failed = 0
    for folder in list_video_folders(root, split):
        v = read_visem_video(folder)
        rep = validate(v, counts_csv)
        n_tracks = v.tracks.track_id.nunique() if len(v.tracks) else 0
        status = "ok" if rep.ok else "FAILED"
        click.echo(f"{v.video_id}: {v.meta.n_frames} frames ({int(v.annotated.sum())} annotated), "
                   f"{len(v.boxes)} boxes, {n_tracks} tracks, {v.meta.fps:g} fps "
                   f"[{v.meta.fps_source}], split {v.split}: {status}")
        for w in v.warnings:
            click.echo(f"  warning: {w}")
        for p in rep.problems:
            click.echo(f"  problem: {p}")
        failed += not rep.ok
    if failed:
        raise click.exceptions.Exit(1)
