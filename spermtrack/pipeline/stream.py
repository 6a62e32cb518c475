"""One streaming pass over a video: decode -> enhance -> detect -> track, with per-stage timings.

Memory holds one chunk of frames at a time (``chunk_frames`` x H x W bytes) plus the detections
and the growing Tracks table (a few hundred bytes a frame), so it does not grow with the video's
pixels. The loop is here and pushes: decode a chunk, detect on it (the detector enhances), then
hand each frame's detections and pixels to the online tracker
(:meth:`SpermTracker.update <spermtrack.tracker.base.Tracker.update>`); the tracker sees the same
frames in the same order as ``detect`` + ``track`` (:meth:`~spermtrack.tracker.base.Tracker.run`),
so both give the same tracks.

A truncated or corrupt file is analysed up to its last decodable frame; the error is kept in
:attr:`StreamResult.decode_error` instead of being raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from spermtrack.errors import VideoDecodeError, VideoError
from spermtrack.types import VideoMeta

#: ``progress(done_frames, total_frames, elapsed_s)``
ProgressFn = Callable[[int, int, float], None]


@dataclass
class StageTimes:
    """Seconds spent per stage (wall time, accumulated over chunks; ``track_s`` excludes ReID, which is
    ``reid_s``)."""

    decode_s: float = 0.0
    detect_s: float = 0.0
    track_s: float = 0.0
    reid_s: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass
class StreamResult:
    """What one streaming pass produced.

    Attributes:
        tracks: raw online tracks (Tracks table: measured boxes of confirmed tracks).
        meta: the video's :class:`~spermtrack.types.VideoMeta` (fps and its source).
        n_frames: frames decoded and analysed.
        n_detections: detections over all frames (every class).
        n_sperm_detections: detections of class 0 (sperm heads).
        n_embeddings: ReID embeddings computed on demand (0 without ReID).
        decode_error: message of the decode failure of a truncated file, else None.
        times: per-stage wall times; ``total_s`` is the whole pass.
        warnings: notes about frames that could not be used.
        preview: the first decoded frame (a background for plots).
    """

    tracks: pd.DataFrame
    meta: VideoMeta
    n_frames: int
    n_detections: int
    n_sperm_detections: int = 0
    n_embeddings: int = 0
    decode_error: str | None = None
    times: StageTimes = field(default_factory=StageTimes)
    total_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    preview: np.ndarray | None = None

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.total_s if self.total_s > 0 else float("nan")


def _timed(embedder, times: StageTimes) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``embedder.embed(image, boxes_ltwh)``, its wall time added to ``times.reid_s``."""
    def embed(image: np.ndarray, boxes_ltwh: np.ndarray) -> np.ndarray:
        t = time.perf_counter()
        try:
            return embedder.embed(image, boxes_ltwh)
        finally:
            times.reid_s += time.perf_counter() - t
    return embed


def stream_video(video: str | Path, *, detector, fps: float | None = None, chunk_frames: int = 64,
                 tracker_params=None, embedder=None, progress: ProgressFn | None = None,
                 meta: VideoMeta | None = None) -> StreamResult:
    """Decode, detect and track a video in one streaming pass.

    Args:
        video: the video file.
        detector: an object with ``detect(frames (n, H, W) uint8) -> list[Detections]``
            (:func:`spermtrack.detect.factory.make_detector`); it applies the HLDNBM
            enhancement itself.
        fps: the user's frame rate (overrides the container's; see
            :func:`spermtrack.io.video.probe_video`).
        chunk_frames: frames decoded and detected per batch.
        tracker_params: :class:`~spermtrack.tracker.associate.TrackerParams`.
        embedder: optional ReID embedder with ``embed(frame (H, W), boxes_ltwh) -> (K, D)``
            (:func:`spermtrack.tracker.reid.load_embedder` without a video); it is called only for
            ambiguous detections and handed the pixels of the frame being tracked.
        progress: called after every chunk with ``(frames done, frames expected, elapsed s)``.
        meta: the video's metadata when already probed (saves a probe).

    Returns:
        A :class:`StreamResult` with the raw online tracks (not yet stitched or smoothed).

    Raises:
        InputFileError, VideoError: the file is missing or not a video (nothing decodable).
    """
    from spermtrack.io.video import VideoReader
    from spermtrack.tracker.associate import SpermTracker

    t_start = time.perf_counter()
    times = StageTimes()
    if hasattr(detector, "reset"):  # a self-calibrating detector calibrates anew on every video
        detector.reset()
    reader = VideoReader(video, chunk_frames=chunk_frames, fps=fps, meta=meta)
    meta = meta or reader.meta
    tracker = SpermTracker(meta.fps, params=tracker_params,
                           embedder=None if embedder is None else _timed(embedder, times))
    preview: np.ndarray | None = None
    n_decoded = n_detections = n_sperm = 0
    decode_error: str | None = None
    try:
        chunks = reader.iter_chunks()
        while True:
            # a container may hold a few frames more than its packet count said, and a truncated
            # file reports its decode error only at the end: decode until the decoder is exhausted
            t = time.perf_counter()
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except VideoDecodeError as err:
                decode_error = str(err)
                break
            finally:
                times.decode_s += time.perf_counter() - t
            t = time.perf_counter()
            dets = detector.detect(chunk.frames)
            times.detect_s += time.perf_counter() - t
            if preview is None:
                preview = chunk.frames[0].copy()
            n_decoded = chunk.stop
            n_detections += sum(len(d) for d in dets)
            n_sperm += sum(int((d.cls == 0).sum()) for d in dets)
            t, reid_before = time.perf_counter(), times.reid_s
            for i, d in enumerate(dets):
                if chunk.start + i < meta.n_frames:  # frames past the packet count are not tracked
                    tracker.update(d, chunk.start + i, image=chunk.frames[i])
            times.track_s += time.perf_counter() - t - (times.reid_s - reid_before)
            if progress is not None:
                progress(n_decoded, meta.n_frames, time.perf_counter() - t_start)
    finally:
        reader.close()
    t = time.perf_counter()
    tracks = tracker.tracks()
    times.track_s += time.perf_counter() - t
    total = time.perf_counter() - t_start
    if n_decoded == 0:
        raise VideoError(f"{video}: no frame could be decoded" + (f" ({decode_error})" if decode_error else ""))
    warnings = []
    if n_decoded > meta.n_frames:
        warnings.append(f"the video decoded {n_decoded} frames but its container holds "
                        f"{meta.n_frames} packets; frames from {meta.n_frames} on were not tracked")
    n_used = min(n_decoded, meta.n_frames)
    return StreamResult(tracks=tracks, meta=meta, n_frames=n_used, warnings=warnings, preview=preview,
                        n_detections=n_detections, n_sperm_detections=n_sperm,
                        n_embeddings=tracker.n_embeddings_computed,
                        decode_error=decode_error, times=times, total_s=total)
