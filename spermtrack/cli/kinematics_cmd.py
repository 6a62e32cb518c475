"""``spermtrack kinematics``: CASA metrics, grades and the sample summary from a track file.

Writes three files, atomically and together (all three or none: a full disk leaves the
previous run's files as they were): ``OUT.csv`` (one row per track, rounded as KINEMATICS.md asks),
``OUT.json`` (same stem: calibration and its source, window, preset, version, the summary) and
``OUT_summary.csv`` (% a/b/c/d, PR, total motility with Wilson 95 % CIs and WHO limits).
Imports nothing heavier than pandas and numba.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable

import click

from spermtrack.errors import ParameterError


def _write_together(writes: list[tuple[Path, Callable[[Path], object]]]) -> None:
    """Write each ``(path, write)`` to a temporary file beside ``path``, then move them all into
    place: a failure (disk full) leaves no new file beside the previous run's others.

    An OS error without a file name (a failed ``write()``) is raised again naming ``path``.
    """
    from spermtrack.io.atomic import atomic_path

    with contextlib.ExitStack() as stack:
        # renames run in reverse order of entry: enter the last file first, so the JSON moves last
        tmps = [stack.enter_context(atomic_path(p)) for p, _ in reversed(writes)][::-1]
        for (path, write), tmp in zip(writes, tmps):
            try:
                write(tmp)
            except OSError as err:
                if err.filename is not None or err.errno is None:
                    raise
                raise OSError(err.errno, err.strerror, str(path)) from err


def _parse_ids(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise ParameterError(f"--exclude-tracks must be comma-separated integers, got {text!r}") from None


@click.command("kinematics")
@click.argument("tracks", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--fps", type=float, required=True, help="Frame rate of the video (frames are converted to time with it).")
@click.option("--um-per-px", "um_per_px", required=True,
              help="Micrometres per pixel, or 'estimate' to derive it from the median box length "
                   "(4.5 um heads; flagged as estimated in the outputs).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Per-track CSV to write; OUT.json and OUT_summary.csv go beside it.")
@click.option("--preset", default="who2021", show_default=True,
              type=click.Choice(["who2021", "who2021-literal", "hamilton-thorne", "casa-gui"]), help="Grading preset.")
@click.option("--window-s", "window_s", type=float, default=None,
              help="Average-path window in seconds (rounded to an odd number of frames, >= 3); "
                   "default fps/12 points (5 at 45-60 fps).")
@click.option("--min-duration-s", "min_duration_s", type=float, default=0.5, show_default=True,
              help="Shorter tracks are reported but not graded.")
@click.option("--aggregate", type=click.Choice(["track", "window"]), default="track", show_default=True,
              help="Summary mode: each track once (CASA) or cells present per time window (closer to a manual field count).")
@click.option("--aggregate-window-s", "aggregate_window_s", type=float, default=1.0, show_default=True,
              help="Window length of --aggregate window.")
@click.option("--exclude-tracks", "exclude", default=None, help="Comma-separated track ids to leave out (e.g. clusters).")
@click.option("--keep-interpolated", is_flag=True,
              help="Keep rows flagged 'interpolated' (by default only measured centroids are used).")
@click.option("--diagnostics", is_flag=True, help="Add motion_um_s (the immotile test's speed) to the CSV.")
def kinematics(tracks: Path, fps: float, um_per_px: str, out: Path, preset: str, window_s: float | None,
               min_duration_s: float, aggregate: str, aggregate_window_s: float, exclude: str | None,
               keep_interpolated: bool, diagnostics: bool) -> None:
    """CASA kinematics, WHO grades and the sample summary of TRACKS (CSV track_id,frame,x,y in px, or MOT)."""
    from spermtrack import __version__
    from spermtrack.io.atomic import write_csv_atomic, write_json_atomic
    from spermtrack.io.mot import read_tracks_file
    from spermtrack.kinematics import (compute_track_metrics, estimate_um_per_px, get_preset,
                                       round_for_csv, summarize_motility)
    from spermtrack.kinematics.casa import CSV_DECIMALS
    from spermtrack.types import check_fps, check_positive

    t0 = time.perf_counter()
    fps = check_fps(fps, "--fps")
    if out.suffix.lower() != ".csv":
        raise ParameterError(f"--out must end in .csv, got {out}")
    df, fmt = read_tracks_file(tracks)
    excluded = _parse_ids(exclude)
    if excluded:
        df = df[~df["track_id"].isin(excluded)]
        if not len(df):
            raise ParameterError(f"--exclude-tracks {exclude} leaves no rows of {tracks} to analyse")
    scale_info = None
    if um_per_px.strip().lower() == "estimate":
        est = estimate_um_per_px(df, source=str(tracks))
        scale, scale_source = est.um_per_px, est.source
        scale_info = est.__dict__
        click.echo(f"warning: um_per_px {scale:.4f} ESTIMATED from a median box length of "
                   f"{est.median_head_px:.1f} px (4.5 um heads); give the calibrated value if known",
                   err=True)
    else:
        try:
            scale = float(um_per_px)
        except ValueError:
            raise ParameterError(f"--um-per-px must be a number or 'estimate', got {um_per_px!r}") from None
        scale_source = "user"
    window = None
    if window_s is not None:
        check_positive("--window-s", window_s, 1e-3, 100.0)
        n = int(window_s * fps + 0.5)
        window = max(3, n + 1 if n % 2 == 0 else n)

    metrics = compute_track_metrics(df, fps, scale, window=window, min_duration_s=min_duration_s,
                                     preset=preset, drop_interpolated=not keep_interpolated,
                                     diagnostics=diagnostics, source=str(tracks))
    summary = summarize_motility(metrics, aggregate=aggregate, window_s=aggregate_window_s, fps=fps)

    summary_path = out.with_name(out.stem + "_summary.csv")
    json_path = out.with_suffix(".json")
    p = get_preset(preset)
    attrs = dict(metrics.attrs)
    meta = {
        "software": "spermtrack", "version": __version__, "command": "kinematics",
        "input": str(tracks), "input_format": fmt, "n_points": int(metrics["n_points"].sum()),
        "n_tracks": len(metrics), "excluded_tracks": excluded,
        "interpolated_dropped": (not keep_interpolated) and "interpolated" in df.columns,
        "fps": fps, "fps_source": "user", "um_per_px": scale, "um_per_px_source": scale_source,
        "um_per_px_estimate": scale_info,
        "window_points": attrs["window_points"], "window_s": attrs["window_s"],
        "progression_window_s": attrs["progression_window_s"], "motion_lag_s": attrs["motion_lag_s"],
        "motion_min_um_s": attrs["motion_min_um_s"], "min_duration_s": min_duration_s,
        "preset": preset, "preset_source": p.source, "preset_rules": p.description,
        "aggregate": aggregate, "aggregate_window_s": aggregate_window_s if aggregate == "window" else None,
        "csv_decimals": CSV_DECIMALS, "conventions": "docs/KINEMATICS_CONVENTIONS.md",
        "outputs": {"tracks_csv": out.name, "summary_csv": summary_path.name},
        "summary": summary.to_dict(),
        "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    summary_table = summary.to_frame().round({"pct": 1, "ci95_low_pct": 1, "ci95_high_pct": 1})
    _write_together([(out, lambda tmp: write_csv_atomic(tmp, round_for_csv(metrics))),
                     (summary_path, lambda tmp: write_csv_atomic(tmp, summary_table)),
                     (json_path, lambda tmp: write_json_atomic(tmp, meta))])
    _echo_summary(summary, scale, scale_source, out)


def _echo_summary(summary, scale: float, scale_source: str, out: Path) -> None:
    from spermtrack.pipeline.results import summary_lines

    for line in summary_lines(summary, scale, scale_source):
        click.echo(line)
    click.echo(f"wrote {out}")
    sys.stdout.flush()