"""spermtrack: detect, track and grade spermatozoa in microscope videos.

The front door for Python users (every name is imported on first use, so ``import spermtrack``
stays fast and loads neither torch nor numba)::

    from spermtrack import analyze_video, Config, read_tracks, compute_track_metrics

    res = analyze_video("sample.mp4", "results", um_per_px=0.5)      # a whole result folder
    res.summary.pct("progressive"), res.out_dir / "report.pdf"

    tracks = read_tracks("results/sample/tracks.csv")                  # or any MOT file
    metrics = compute_track_metrics(tracks, fps=50, um_per_px=0.5)     # CASA per track
    summarize_motility(metrics).table                                  # % a / b / c / d, PR, WHO

Stage by stage: :mod:`spermtrack.detect` (heads per frame), :mod:`spermtrack.tracker`
(association), :mod:`spermtrack.kinematics` (CASA, grades), :mod:`spermtrack.morphology`,
:mod:`spermtrack.evaluate` (HOTA, ID switches, truth checks), :mod:`spermtrack.report`, chained by
:mod:`spermtrack.pipeline`; file formats in :mod:`spermtrack.io`. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> "module:attribute"
_EXPORTS: dict[str, str] = {
    # one video, many videos, one sample
    "analyze_video": "spermtrack.pipeline.analyze:analyze_video",
    "AnalysisResult": "spermtrack.pipeline.analyze:AnalysisResult",
    "run_batch": "spermtrack.pipeline.batch:run_batch",
    "pool_sample": "spermtrack.pipeline.sample:pool_sample",
    "stream_video": "spermtrack.pipeline.stream:stream_video",
    # configuration and types
    "Config": "spermtrack.config:Config",
    "Detections": "spermtrack.types:Detections",
    "Calibration": "spermtrack.types:Calibration",
    "make_tracks": "spermtrack.types:make_tracks",
    # files
    "read_tracks": "spermtrack.io.mot:read_tracks",
    "read_mot": "spermtrack.io.mot:read_mot",
    "write_mot": "spermtrack.io.mot:write_mot",
    "VideoReader": "spermtrack.io.video:VideoReader",
    "probe_video": "spermtrack.io.video:probe_video",
    # stages
    "BlobDetector": "spermtrack.detect.blob:BlobDetector",
    "SpermTracker": "spermtrack.tracker.associate:SpermTracker",
    "refine_tracks": "spermtrack.tracker.refine:refine_tracks",
    "compute_track_metrics": "spermtrack.kinematics:compute_track_metrics",
    "summarize_motility": "spermtrack.kinematics:summarize_motility",
    "kinematics_distribution": "spermtrack.kinematics.summary:kinematics_distribution",
    "concentration": "spermtrack.kinematics.concentration:concentration",
    "evaluate_tracks": "spermtrack.evaluate.metrics:evaluate_tracks",
    "generate_synthetic": "spermtrack.synth:generate",
    # errors
    "SpermtrackError": "spermtrack.errors:SpermtrackError",
    "InputFileError": "spermtrack.errors:InputFileError",
    "ParameterError": "spermtrack.errors:ParameterError",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'spermtrack' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
