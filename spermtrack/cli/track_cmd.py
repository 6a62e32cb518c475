"""``spermtrack track``: detections (MOT) in, tracks (MOT) out, plus the Tracks CSV.

Writes, atomically:

- ``OUT`` (MOTChallenge, 1-based frames): the smoothed, gap-filled boxes (best for HOTA/IDF1
  and for drawing);
- ``OUT`` with suffix ``.csv``: the Tracks table with the **measured** ``x, y`` (px; the CASA
  convention), ``x_smooth, y_smooth`` (px) and ``interpolated`` (rows added in short gaps);
- ``OUT`` with suffix ``.json``: fps, parameters, counts and timing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click

from spermtrack.errors import SpermtrackError


def _load_embedder(weights: Path | None, video: Path | None):
    if weights is None and video is None:
        return None
    if weights is None or video is None:
        raise SpermtrackError("ReID needs both --video (the frames to crop) and --reid-weights")
    from spermtrack.tracker import reid

    return reid.load_embedder(weights, video)


@click.command("track")
@click.option("--detections", "dets_path", required=True, type=click.Path(path_type=Path),
              help="MOTChallenge detection file (frame 1-based, id -1, left, top, w, h, conf).")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Output MOT track file; the Tracks CSV and a JSON sidecar go next to it.")
@click.option("--fps", required=True, type=float, help="Frame rate of the video (frames/s).")
@click.option("--n-frames", type=click.IntRange(min=1), default=None,
              help="Number of frames (default: last frame with a detection).")
@click.option("--video", type=click.Path(path_type=Path), default=None, help="Video, for ReID crops.")
@click.option("--reid-weights", type=click.Path(path_type=Path), default=None, help="ReID weights from `spermtrack train reid` (EXPERIMENTAL: no measured gain on held-out data, see "
                   "benchmarks/results/id_switches.md; a file holding code is refused).")
@click.option("--no-stitch", is_flag=True, help="Do not join track fragments across gaps.")
@click.option("--no-smooth", is_flag=True, help="MOT output carries measured (not smoothed) boxes.")
@click.option("--min-conf", type=float, default=None, help="Ignore detections below this confidence.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Config file (as for analyze, or a result's summary.json): its track section sets the "
                   "tracker and refine parameters and whether to stitch (default: the defaults).")
def track(dets_path: Path, out_path: Path, fps: float, n_frames: int | None, video: Path | None,
          reid_weights: Path | None, no_stitch: bool, no_smooth: bool, min_conf: float | None,
          config_path: Path | None) -> None:
    """Link detections into tracks (motion + optional ReID), stitch, fill gaps, smooth."""
    from spermtrack.config import Config
    from spermtrack.io.atomic import write_csv_atomic, write_json_atomic
    from spermtrack.io.mot import read_mot_detections, write_mot
    from spermtrack.pipeline.stages import refine_params, tracker_params
    from spermtrack.tracker.associate import SpermTracker
    from spermtrack.tracker.refine import refine_tracks, smoothed_boxes
    from spermtrack.types import check_fps

    fps = check_fps(fps)
    cfg = Config.load(config_path) if config_path is not None else Config()
    stitch = cfg.track.stitch and not no_stitch
    if out_path.suffix.lower() in (".csv", ".json"):
        raise SpermtrackError(f"--out {out_path}: give the MOT file a .txt name; the Tracks CSV and "
                              f"the JSON sidecar are written next to it with those suffixes")
    dets = read_mot_detections(dets_path, min_conf=min_conf)
    if n_frames is None:
        n_frames = (max(dets) + 1) if dets else 0
    embed_fn = _load_embedder(reid_weights, video)
    params, rparams = tracker_params(cfg), refine_params(cfg)
    t0 = time.perf_counter()
    tracker = SpermTracker(fps, params=params, embed_fn=embed_fn)
    raw = tracker.run(dets, n_frames)
    t1 = time.perf_counter()
    tracks = refine_tracks(raw, fps, stitch=stitch, smooth=not no_smooth, params=rparams)
    t2 = time.perf_counter()
    write_mot(out_path, smoothed_boxes(tracks))
    csv_path = out_path.with_suffix(".csv")
    write_csv_atomic(csv_path, tracks)
    n_det = int(sum(len(d) for d in dets.values()))
    meta = {
        "detections": str(dets_path), "fps": fps, "n_frames": n_frames, "n_detections": n_det,
        "n_tracks": int(tracks["track_id"].nunique()) if len(tracks) else 0,
        "n_online_tracks": int(raw["track_id"].nunique()) if len(raw) else 0,
        "n_interpolated_rows": int(tracks["interpolated"].sum()) if len(tracks) else 0,
        "stitch": stitch, "smooth": not no_smooth,
        "reid": embed_fn is not None, "n_embeddings_computed": tracker.n_embeddings_computed,
        "tracker_params": dataclasses.asdict(params), "refine_params": dataclasses.asdict(rparams),
        "online_s": round(t1 - t0, 3), "refine_s": round(t2 - t1, 3),
        "frames_per_s_online": round(n_frames / max(t1 - t0, 1e-9), 1),
        "mot_output": "smoothed, gap-filled boxes", "csv_output": "measured x, y; x_smooth, y_smooth; interpolated",
    }
    write_json_atomic(out_path.with_suffix(".json"), meta)
    click.echo(f"{meta['n_tracks']} tracks from {n_det} detections in {n_frames} frames "
               f"({meta['frames_per_s_online']:.0f} frames/s online); wrote {out_path} and {csv_path}")
