"""``spermtrack detect``: stream a video through a detector, write MOT detection lines."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("detect")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Output MOT detections: frame,-1,left,top,w,h,conf,-1,-1,-1 (frames 1-based).")
@click.option("--detector", type=click.Choice(["blob", "yolo"]), default="blob", show_default=True,
              help="blob: the calibrated classical detector; yolo: a model from `spermtrack train detector`.")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="YOLO .pt (for --detector yolo). An ultralytics .pt is a pickle that can run code: "
                   "load only weights you trust.")
@click.option("--no-enhance", is_flag=True, help="Skip the HLDNBM enhancement.")
@click.option("--tile", "tile_px", type=click.IntRange(min=0), default=320, show_default=True,
              help="YOLO tile side (0: full frame).")
@click.option("--conf", type=click.FloatRange(0.0, 1.0), default=None, help="YOLO confidence threshold (default 0.25).")
@click.option("--chunk", "chunk_frames", type=click.IntRange(min=1), default=32, show_default=True,
              help="Frames per batch.")
@click.option("--polarity", type=click.Choice(["auto", "bright", "dark"]), default="auto", show_default=True,
              help="Head polarity: bright (phase contrast), dark (bright field), auto (decided on the video).")
@click.option("--no-classifier", is_flag=True, help="Blob detector: keep every calibrated candidate as a head.")
@click.option("--all-classes", is_flag=True,
              help="Also write candidates the classifier calls clusters (class 1) or other (class 3); "
                   "the class is in the MOT class column.")
def detect(video: Path, out_path: Path, detector: str, weights: Path | None, no_enhance: bool,
           tile_px: int, conf: float | None, chunk_frames: int, polarity: str, no_classifier: bool,
           all_classes: bool) -> None:
    """Detect sperm heads in VIDEO."""
    from spermtrack.errors import InputFileError
    from spermtrack.io.mot import write_mot_detections
    from spermtrack.io.video import VideoReader, check_frame_size, probe_video
    from spermtrack.detect.factory import make_detector

    if not video.is_file():
        raise InputFileError(video, "video file not found")
    check_frame_size(probe_video(video, scan="none"))
    kwargs = {}
    if detector == "yolo":
        kwargs["tile_px"] = tile_px
        if conf is not None:
            kwargs["conf"] = conf
    elif no_classifier:
        kwargs["classifier"] = None
    det = make_detector(detector, weights=weights, enhance=not no_enhance, polarity=polarity, **kwargs)
    dets = {}
    t0 = time.perf_counter()
    with VideoReader(video, chunk_frames=chunk_frames) as reader:
        try:
            for chunk in reader.iter_chunks():
                for i, d in enumerate(det.detect(chunk.frames)):
                    dets[chunk.start + i] = d if all_classes else d.select(d.cls == 0)
        finally:
            # whatever was detected before a decode error is still written
            if dets:
                write_mot_detections(out_path, dets)
    dt = time.perf_counter() - t0
    n = sum(len(d) for d in dets.values())
    click.echo(f"{len(dets)} frames, {n} detections ({n / max(len(dets), 1):.1f}/frame), "
               f"{len(dets) / dt:.1f} frames/s -> {out_path}")
    cal = det.calibration_record() if hasattr(det, "calibration_record") else None
    if cal:
        thr = "none (no head mode)" if cal["threshold_z"] is None else f"{cal['threshold_z']:.1f}"
        click.echo(f"calibration: {cal['polarity']} heads ({cal['polarity_source']}), head core "
                   f"{cal['head_length_px']:.1f} px ({cal['head_size_source']}), threshold {thr} background "
                   f"spreads ({cal['threshold_rule']})")
        for w in cal["warnings"]:
            click.echo(f"warning: {w}", err=True)
