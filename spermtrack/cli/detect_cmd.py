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
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Config file (as for analyze, or a result's summary.json): its enhance and detect sections "
                   "set the detector (every blob and YOLO parameter); options given here override it.")
def detect(video: Path, out_path: Path, detector: str, weights: Path | None, no_enhance: bool,
           tile_px: int, conf: float | None, chunk_frames: int, polarity: str, no_classifier: bool,
           all_classes: bool, config_path: Path | None) -> None:
    """Detect sperm heads in VIDEO."""
    from spermtrack.config import Config
    from spermtrack.errors import InputFileError, ParameterError
    from spermtrack.io.mot import write_mot_detections
    from spermtrack.io.video import VideoReader, check_frame_size, probe_video
    from spermtrack.pipeline.stages import make_detector

    if not video.is_file():
        raise InputFileError(video, "video file not found")
    check_frame_size(probe_video(video, scan="none"))
    cfg = Config.load(config_path) if config_path is not None else Config()
    given = _given_options()
    changes = {k: v for k, v in (("detector", detector), ("tile_px", tile_px), ("polarity", polarity)) if k in given}
    if weights is not None:
        changes["weights"] = str(weights)
    if conf is not None:
        changes["conf_threshold"] = conf
    if no_classifier:
        changes["classifier"] = None
    cfg = cfg.replace("detect", **changes)
    if cfg.detect.detector == "yolo" and not cfg.detect.weights:
        raise ParameterError("--detector yolo needs --weights W.pt (train one with `spermtrack train detector`)")
    if no_enhance:
        cfg = cfg.replace("enhance", enabled=False)
    det = make_detector(cfg)
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
        if cal.get("classifier_input_scale_rule"):
            click.echo(f"classifier: {cal['classifier_input_scale_rule']}")
        for w in cal["warnings"]:
            click.echo(f"warning: {w}", err=True)


def _given_options() -> set[str]:
    """The options of the running command given on the command line (not left at their default)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return {name for name in ctx.params
            if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)}
