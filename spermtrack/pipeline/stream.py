"""One streaming pass over a video: decode -> enhance -> detect -> track, with per-stage timings.

Memory holds one chunk of frames at a time (``chunk_frames`` x H x W bytes) plus the detections
and the growing Tracks table (a few hundred bytes a frame), so it does not grow with the video's
pixels. The online tracker (:class:`~spermtrack.tracker.associate.SpermTracker`) drives the frame
loop through its :meth:`~spermtrack.tracker.associate.SpermTracker.run`, which asks for the
detections of frame ``f`` in order; :class:`_ChunkSource` answers by decoding and detecting the
next chunk when ``f`` reaches it. Driving the tracker this way (rather than with ``update``)
keeps the tentative first frames of tracks confirmed later, exactly as ``spermtrack track``
does, so ``analyze`` and ``detect`` + ``track`` give the same tracks.

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
from spermtrack.types import Detections, VideoMeta

#: ``progress(done_frames, total_frames, elapsed_s)``
ProgressFn = Callable[[int, int, float], None]


@dataclass
class StageTimes:
    """Seconds spent per stage (wall time, accumulated over chunks)."""

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


class _ChunkSource:
    """``get(frame, default)`` for :meth:`SpermTracker.run`: detections decoded chunk by chunk."""

    def __init__(self, reader, detector, times: StageTimes, progress: ProgressFn | None, total: int):
        self._chunks = reader.iter_chunks()
        self._detector = detector
        self._times = times
        self._progress = progress
        self._total = total
        self._t0 = time.perf_counter()
        self._start = 0
        self._dets: list[Detections] = []
        self.frames: np.ndarray | None = None
        self.preview: np.ndarray | None = None
        self.n_decoded = 0
        self.n_detections = 0
        self.n_sperm_detections = 0
        self.decode_error: str | None = None
        self.exhausted = False

    def _next_chunk(self) -> bool:
        t = time.perf_counter()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.exhausted = True
            return False
        except VideoDecodeError as err:
            self.decode_error = str(err)
            self.exhausted = True
            return False
        finally:
            self._times.decode_s += time.perf_counter() - t
        t = time.perf_counter()
        self._dets = self._detector.detect(chunk.frames)
        self._times.detect_s += time.perf_counter() - t
        self._start, self.frames = chunk.start, chunk.frames
        if self.preview is None:
            self.preview = chunk.frames[0].copy()
        self.n_decoded = chunk.stop
        self.n_detections += sum(len(d) for d in self._dets)
        self.n_sperm_detections += sum(int((d.cls == 0).sum()) for d in self._dets)
        if self._progress is not None:
            self._progress(self.n_decoded, self._total, time.perf_counter() - self._t0)
        return True

    def get(self, frame: int, default: Detections) -> Detections:
        while not self.exhausted and frame >= self._start + len(self._dets):
            if not self._next_chunk():
                break
        k = frame - self._start
        if 0 <= k < len(self._dets):
            return self._dets[k]
        return default

    def frame(self, frame: int) -> np.ndarray:
        """The decoded gray frame (only frames of the current chunk are held)."""
        k = frame - self._start
        if self.frames is None or not 0 <= k < len(self.frames):
            raise VideoError(f"frame {frame} is not in the current chunk (ReID asked out of order)")
        return self.frames[k]


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
            ambiguous detections, on the frame being tracked.
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
    reader = VideoReader(video, chunk_frames=chunk_frames, fps=fps)
    meta = meta or reader.meta
    source = _ChunkSource(reader, detector, times, progress, meta.n_frames)
    embed_fn = None
    if embedder is not None:
        def embed_fn(frame_index: int, boxes_ltwh: np.ndarray) -> np.ndarray:
            t = time.perf_counter()
            try:
                return embedder.embed(source.frame(frame_index), boxes_ltwh)
            finally:
                times.reid_s += time.perf_counter() - t
    tracker = SpermTracker(meta.fps, params=tracker_params, embed_fn=embed_fn)
    try:
        # a container may hold a few frames more than its packet count said: keep asking
        # until the decoder is exhausted
        tracks = tracker.run(source, meta.n_frames)
        # drain the decoder: a truncated file reports its decode error only at the end
        while not source.exhausted:
            source.get(source.n_decoded, Detections.empty())
    finally:
        reader.close()
    total = time.perf_counter() - t_start
    times.track_s = max(0.0, total - times.decode_s - times.detect_s - times.reid_s)
    if source.n_decoded == 0:
        raise VideoError(f"{video}: no frame could be decoded"
                         + (f" ({source.decode_error})" if source.decode_error else ""))
    warnings = []
    if source.n_decoded > meta.n_frames:
        warnings.append(f"the video decoded {source.n_decoded} frames but its container holds "
                        f"{meta.n_frames} packets; frames from {meta.n_frames} on were not tracked")
    n_used = min(source.n_decoded, meta.n_frames)
    if len(tracks) and (tracks["frame"] >= n_used).any():
        tracks = tracks[tracks["frame"] < n_used].reset_index(drop=True)
    return StreamResult(tracks=tracks, meta=meta, n_frames=n_used, warnings=warnings, preview=source.preview,
                        n_detections=source.n_detections, n_sperm_detections=source.n_sperm_detections,
                        n_embeddings=tracker.n_embeddings_computed,
                        decode_error=source.decode_error, times=times, total_s=total)
