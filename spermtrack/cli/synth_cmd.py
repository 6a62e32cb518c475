"""``spermtrack synth``: write synthetic VISEM-Tracking videos with exact ground truth.

A line per video goes to stdout; progress (frames written, frames/s, ETA; updated after each
video) to stderr unless ``--quiet``."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--videos", type=click.IntRange(1, 1000), default=1, show_default=True, help="Number of videos.")
@click.option("--seconds", type=float, default=2.0, show_default=True, help="Duration of each video.")
@click.option("--fps", type=float, default=50.0, show_default=True, help="Frame rate.")
@click.option("--cells", type=float, default=20, show_default=True,
              help="Expected number of sperm heads in view, a mean (cells swim in and out).")
@click.option("--um-per-px", type=float, default=0.5, show_default=True, help="Scale, micrometres per pixel.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Root seed (same seed, same truth and frames).")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True,
              help="Noise, contrast, blur, debris, clusters and flicker preset.")
@click.option("--width", type=int, default=640, show_default=True, help="Frame width (even).")
@click.option("--height", type=int, default=480, show_default=True, help="Frame height (even).")
@click.option("--hyperactivated", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of sperm that are hyperactivated (0-1).")
@click.option("--mask-every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Store head/midpiece/tail outlines every N frames.")
@click.option("--first-id", "first_video_id", type=click.IntRange(min=0), default=101, show_default=True,
              help="Id (folder name) of the first video.")
@click.option("--look", type=click.Choice(["visem", "classic"]), default="visem", show_default=True,
              help="visem: like real VISEM-Tracking frames (dark background, glowing heads, unlabelled "
                   "debris and out-of-focus cells); classic: the original bright noisy phantom.")
@click.option("--no-images", is_flag=True, help="Do not write per-frame JPEGs (the mp4 is always written).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out: Path, videos: int, seconds: float, fps: float, cells: float, um_per_px: float, seed: int,
          difficulty: str, width: int, height: int, hyperactivated: float, mask_every: int,
          first_video_id: int, look: str, no_images: bool, quiet: bool) -> None:
    """Write synthetic phase-contrast sperm videos under OUT/Train/<id>/ (VISEM-Tracking layout).

    Each folder holds the mp4, images/, labels/, labels_ftid/ and gt/ (gt.txt, tracks_truth.csv
    with the true kinematics, grades and morphology, masks, meta.json).
    """
    from spermtrack.synth import generate
    from spermtrack.progress import ProgressBar

    t0 = time.perf_counter()
    total = videos * max(1, round(seconds * fps))
    bar = ProgressBar(f"synth ({videos} video{'s' if videos > 1 else ''})", enabled=not quiet)
    done = 0

    def report(folder, scene) -> None:
        nonlocal done
        done += scene.n_frames
        bar(done, max(total, done), time.perf_counter() - t0)
        bar.close()  # on a terminal: end the bar's line before the result line
        tr = scene.truth
        sperm = tr[tr["cls"] != 1]
        grades = sperm["grade"].value_counts()
        g = ", ".join(f"{grades.get(k, 0)} {k}" for k in
                      ("rapid_progressive", "slow_progressive", "non_progressive", "immotile"))
        in_view = scene.in_view.sum(axis=0).mean() if scene.n_frames else 0.0
        click.echo(f"{folder}: {scene.n_frames} frames {scene.width}x{scene.height} @ {scene.fps:g} fps, "
                   f"{len(tr)} tracks ({g}; {int((tr['cls'] == 1).sum())} clusters), "
                   f"{in_view:.1f} objects in view per frame, {scene.preset.name}, {scene.look} look "
                   f"[{time.perf_counter() - t0:.1f} s]")

    if not quiet:
        click.echo(f"rendering {videos} x {seconds:g} s at {fps:g} fps ({total} frames, {width}x{height}) "
                   f"into {out} ...", err=True)
    generate(out, videos=videos, seconds=seconds, fps=fps, cells=cells, um_per_px=um_per_px, seed=seed,
             difficulty=difficulty, write_images=not no_images, width=width, height=height,
             hyperactivated=hyperactivated, first_video_id=first_video_id, mask_every=mask_every,
             on_video=report, look=look)
