"""Video input and output on PyAV (FFmpeg), streamed: memory does not grow with video length.

- :func:`probe_video` reads what the container says (rate, frame count, size, codec) and checks
  it against the timestamps of the demuxed packets (cheap: no decoding), flagging containers
  that lie and variable frame rates.
- :class:`VideoReader` yields gray ``uint8`` frames one at a time or in fixed-size chunks.
  A truncated or corrupt file yields every frame that decodes, then raises
  :class:`~spermtrack.errors.VideoDecodeError`.
- :func:`check_frame_size` refuses frames smaller than :data:`MIN_FRAME_PX` (64 px a side).
- :class:`VideoWriter` writes MP4 (H.264 when the FFmpeg build can encode it, else MPEG-4
  Part 2) at an exact frame rate, atomically.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from spermtrack.errors import InputFileError, ParameterError, VideoDecodeError, VideoError
from spermtrack.io.atomic import atomic_path
from spermtrack.types import FPS_RANGE, VideoMeta  # FPS_RANGE: rates outside it are a container that lies

#: Encoders tried in order when ``VideoWriter(codec=None)``: H.264 first, MPEG-4 Part 2 last.
PREFERRED_CODECS: tuple[str, ...] = ("libx264", "libopenh264", "h264", "mpeg4")


#: Relative spread of frame intervals above which a video counts as variable frame rate.
VFR_TOLERANCE = 0.01

#: Smallest frame side (px) a motility analysis accepts. The detector's background model looks
#: at a window about three head lengths wide around each head (31 px at VISEM-Tracking's
#: ~0.5 um/px, where a head is 8-10 px), and a cell must stay in view long enough to be graded:
#: 64 px is about 32 um at that scale, which a rapid cell (25 um/s) crosses in ~1.3 s, just over
#: the 1 s WHO progression window. Morphology crops are 64 px too.
MIN_FRAME_PX = 64

_FFMPEG_ERRORS = (av.error.FFmpegError, OSError)

# FFmpeg renders any text file as a "video" through these demuxers
_TEXT_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}


def available_codecs() -> list[str]:
    """Return the encoders of :data:`PREFERRED_CODECS` this FFmpeg build has, in order."""
    out = []
    for name in PREFERRED_CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001 - PyAV raises several types for an unknown codec
            continue
        out.append(name)
    return out


def _exact_rate(fps: float | Fraction) -> Fraction:
    """``fps`` as a Fraction; floats snap to the nearest ratio with denominator <= 1001."""
    if isinstance(fps, Fraction):
        return fps
    if isinstance(fps, int):
        return Fraction(fps)
    return Fraction(float(fps)).limit_denominator(1001)


class VideoWriter:
    """Write gray or BGR ``uint8`` frames to a video file, atomically.

    Frames go to a temporary file beside ``path``; :meth:`close` (or leaving the ``with``
    block) renames it onto ``path``. If the block raises, the temporary file is removed and
    ``path`` is untouched, so a half-written video never looks like a result.

    Args:
        path: output file; the extension picks the container (``.mp4``, ``.mkv``, ``.avi``).
        fps: frame rate; stored as an exact fraction (``50`` -> 50/1, ``29.97`` -> 2997/100),
            frame ``i`` gets the timestamp ``i / fps`` so reading back gives the same rate and
            count.
        width, height: frame size in px (even numbers: 4:2:0 chroma needs them).
        codec: an FFmpeg encoder name; ``None`` picks the first of :data:`PREFERRED_CODECS`
            the build has. The chosen one is in :attr:`codec`.
        crf: H.264 constant rate factor: 0 is lossless, 18 visually lossless (default),
            higher values give smaller files and more loss.
        preset: x264 speed preset; ``"veryfast"`` (default) encodes noisy 640x480 frames ~3x
            faster than ``"medium"`` for ~10 % larger files at the same CRF.
        qscale: MPEG-4 Part 2 quantiser (1 best .. 31 worst), used only by ``mpeg4``.
        options: extra encoder options passed to FFmpeg as strings.

    Raises:
        ParameterError: fps, size or codec is unusable.
        VideoError: FFmpeg cannot create the file.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction, width: int, height: int, *,
                 codec: str | None = None, crf: int = 18, preset: str = "veryfast",
                 qscale: int = 2,
                 options: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.rate = _exact_rate(fps)
        if not (FPS_RANGE[0] <= float(self.rate) <= FPS_RANGE[1]):
            raise ParameterError(f"fps={fps!r} is outside the sensible range {list(FPS_RANGE)}")
        self.width, self.height = int(width), int(height)
        if self.width < 2 or self.height < 2 or self.width % 2 or self.height % 2:
            raise ParameterError(f"video size {width}x{height} must be positive even numbers "
                                 f"(4:2:0 chroma halves each side)")
        if codec is None:
            found = available_codecs()
            if not found:
                raise VideoError("this FFmpeg build has no H.264 or MPEG-4 encoder")
            codec = found[0]
        self.codec = codec
        self.n_frames = 0
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            container_options = {}
            if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
                # moov atom first: a file cut short still has its index, so frames are recoverable
                container_options["movflags"] = "+faststart"
            self._container = av.open(str(tmp), mode="w", options=container_options)
            stream = self._container.add_stream(codec, rate=self.rate)
        except (av.error.FFmpegError, ValueError) as err:
            self._abort(err)
            if isinstance(err, OSError) and err.errno:
                # disk full, permission: name the file asked for, not the temporary one
                raise OSError(err.errno, err.strerror, str(self.path)) from None
            raise VideoError(f"{self.path}: cannot write a {codec!r} video ({err})") from None
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / self.rate
        opts = dict(options or {})
        if codec in ("libx264", "h264"):
            opts.setdefault("crf", str(int(crf)))
            opts.setdefault("preset", preset)
        elif codec == "mpeg4":
            # fixed quantiser (ffmpeg's -q:v): constant quality instead of a bit-rate target
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = int(qscale) * 118  # FF_QP2LAMBDA
        stream.options = opts
        self._stream = stream
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: gray ``(H, W)`` or BGR ``(H, W, 3)`` ``uint8``.

        Raises:
            ParameterError: wrong shape or dtype.
        """
        if self._closed:
            raise VideoError(f"{self.path}: write() after close()")
        arr = np.asarray(frame)
        if arr.dtype != np.uint8:
            raise ParameterError(f"{self.path}: frames must be uint8, got {arr.dtype}")
        if arr.shape[:2] != (self.height, self.width) or arr.ndim not in (2, 3) or (
                arr.ndim == 3 and arr.shape[2] != 3):
            raise ParameterError(f"{self.path}: frame shape {arr.shape} does not match the video "
                                 f"({self.height}, {self.width}) gray or ({self.height}, "
                                 f"{self.width}, 3) BGR")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr),
                                        format="gray" if arr.ndim == 2 else "bgr24")
        vf.pts = self.n_frames
        vf.time_base = 1 / self.rate
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.n_frames += 1

    def close(self) -> None:
        """Flush the encoder, finish the container and move it onto ``path``."""
        if self._closed:
            return
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException as err:
            self._abort(err)
            raise
        self._atomic.__exit__(None, None, None)

    def _abort(self, err: BaseException) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(type(err), err, err.__traceback__)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        elif not self._closed:
            self._abort(exc)


# --------------------------------------------------------------------------------------- reading

def _open_video(path: Path):
    """Open ``path`` and return ``(container, video_stream)``, with errors that say what is wrong."""
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes), not a video")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as err:
        hint = ""
        if path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            hint = ("; an MP4 cut short before its index (moov atom, written last unless the "
                    "file was made with faststart) cannot be read at all")
        raise VideoError(f"{path}: not a readable video (FFmpeg: {err.strerror or err}){hint}")
    if container.format.name in _TEXT_FORMATS:
        container.close()
        raise VideoError(f"{path}: not a video (FFmpeg can only read it as text)")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoError(f"{path}: no video stream (streams found: {', '.join(kinds)})")
    return container, container.streams.video[0]


def _sane(rate) -> float | None:
    if rate is None:
        return None
    try:
        v = float(rate)
    except (TypeError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) and FPS_RANGE[0] <= v <= FPS_RANGE[1] else None


def _header_claims(container, stream) -> tuple[int, float]:
    """The header's frame count (0 when absent) and duration in s (NaN when absent)."""
    n_claimed = int(stream.frames or 0)
    if stream.duration is not None and stream.time_base:
        return n_claimed, float(stream.duration * stream.time_base)
    if container.duration:
        return n_claimed, container.duration / 1e6
    return n_claimed, float("nan")


def _expected_frames(n_claimed: int, dur_claimed: float, fps: float, n_packets: int) -> int:
    """Frames the header promises: its count, or its duration when that is >2 frames longer."""
    n = max(n_claimed, n_packets)
    if math.isfinite(dur_claimed) and dur_claimed * fps > n_packets + 2:
        n = max(n, int(round(dur_claimed * fps)))
    return n


@dataclass(frozen=True)
class _Scan:
    """What demuxing (not decoding) the video stream showed."""

    n_packets: int
    pts_s: np.ndarray      # sorted presentation times of the packets, s
    tick_s: float          # one unit of the stream time base, s
    error: str = ""


def _scan_packets(container, stream) -> _Scan:
    pts, n, error = [], 0, ""
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet PyAV appends at the end
                continue
            n += 1
            if packet.pts is not None:
                pts.append(packet.pts)
    except _FFMPEG_ERRORS as err:
        error = str(err)
    tb = float(stream.time_base) if stream.time_base else float("nan")
    return _Scan(n, np.sort(np.asarray(pts, np.float64)) * tb, tb, error)


def _timestamp_rate(scan: _Scan) -> tuple[float | None, bool]:
    """Mean frame rate from the packet times, and whether the intervals vary beyond 1 %."""
    t = scan.pts_s
    if len(t) < 2 or t[-1] <= t[0]:
        return None, False
    dt = np.diff(t)
    mean_dt = (t[-1] - t[0]) / (len(t) - 1)
    # Time bases of 1 ms (Matroska) cannot hold 1/45 s exactly: allow one tick of rounding
    tol = max(VFR_TOLERANCE * mean_dt, 1.01 * scan.tick_s if math.isfinite(scan.tick_s) else 0.0)
    return float(1.0 / mean_dt), bool(np.any(np.abs(dt - mean_dt) > tol))


def probe_video(path: str | os.PathLike, *, fps: float | None = None, fallback_fps: float = 50.0,
                scan: str = "packets") -> VideoMeta:
    """Describe a video: rate, size, frame count, codec, and how far the container can be trusted.

    Args:
        path: the video file.
        fps: the user's frame rate; when given it wins (``fps_source="user"``) but disagreement
            with the file is still reported in ``warnings``.
        fallback_fps: used only when neither the container nor the timestamps give a sane rate
            (``fps_source="fallback"``, with a warning).
        scan: ``"packets"`` (default) demuxes the whole stream without decoding (about a
            millisecond per hundred frames) to count frames and read every timestamp: catches
            wrong frame counts, wrong rates and variable frame rate. ``"decode"`` also decodes
            every frame (slow, exact even for damaged files). ``"none"`` trusts the header.

    Returns:
        A :class:`~spermtrack.types.VideoMeta`. ``container_lies`` is set when the header's
        frame count or rate disagrees with the scan (or is missing); ``n_frames_source`` is
        ``"container"`` (header, confirmed by the scan when one ran), ``"packets"`` (counted by
        demuxing), ``"decoded"`` or ``"estimated"`` (duration x fps).

    Raises:
        InputFileError: the file does not exist.
        VideoError: not a video, no video stream, or a video stream with no frames.
    """
    if scan not in ("packets", "decode", "none"):
        raise ParameterError(f"scan={scan!r} must be 'packets', 'decode' or 'none'")
    path = Path(path)
    container, stream = _open_video(path)
    warnings: list[str] = []
    lies = False
    try:
        codec = stream.codec_context.name or ""
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        rate_guessed = _sane(stream.guessed_rate)
        rate_container = _sane(stream.average_rate) or rate_guessed or _sane(stream.base_rate)
        if rate_container is None and (stream.average_rate or stream.base_rate):
            warnings.append(f"the container's frame rate ({stream.average_rate or stream.base_rate})"
                            f" is not sensible")
            lies = True
        n_claimed, dur_claimed = _header_claims(container, stream)
        sc = _scan_packets(container, stream) if scan != "none" else None
        rate_ts, vfr = None, False
        if sc is not None:
            cut = bool(sc.error) or n_claimed > sc.n_packets
            if not cut and math.isfinite(dur_claimed) and len(sc.pts_s) > 1:
                # n frames last n mean intervals; a header promising 2+ intervals more is cut
                step = (sc.pts_s[-1] - sc.pts_s[0]) / (len(sc.pts_s) - 1)
                cut = dur_claimed - len(sc.pts_s) * step > max(2 * step, 0.05)
            if cut:
                warnings.append(
                    f"the file looks truncated: demuxing gave {sc.n_packets} packets"
                    + (f" then failed ({sc.error})" if sc.error else "")
                    + (f", the header claims {n_claimed} frames" if n_claimed else "")
                    + (f", {dur_claimed:.3f} s" if math.isfinite(dur_claimed) else ""))
                lies = True
                # frames reordered around the cut leave gaps in the last timestamps
                sc = _Scan(sc.n_packets, sc.pts_s[:-16], sc.tick_s, sc.error)
            rate_ts, vfr = _timestamp_rate(sc)
        if scan == "decode":
            n_decoded = 0
            with contextlib.suppress(VideoDecodeError):
                for _ in _decode(path):
                    n_decoded += 1
    finally:
        container.close()

    # frame rate: user > container (if the timestamps agree) > timestamps > fallback
    if sc is not None and len(sc.pts_s) < 2 and sc.n_packets > 1:
        # raw elementary streams (.h264) carry no timestamps; FFmpeg's average_rate is then a
        # default of 25, the codec's own timing (guessed_rate) is the better header value
        rate_container = rate_guessed or rate_container
        warnings.append("the stream has no timestamps (raw elementary stream?); the frame rate "
                        "comes from the codec header or a default: pass fps= to be sure")
    if rate_container is not None and rate_ts is not None:
        span = sc.pts_s[-1] - sc.pts_s[0]
        # 0.1 %, or two time-base ticks over the span for short clips in coarse time bases
        tol = max(0.001, 2 * sc.tick_s / span) if math.isfinite(sc.tick_s) else 0.001
        if vfr or abs(rate_container - rate_ts) > tol * rate_ts:
            if not vfr or abs(rate_container - rate_ts) > VFR_TOLERANCE * rate_ts:
                warnings.append(f"the container says {rate_container:.6g} fps but the frame "
                                f"timestamps say {rate_ts:.6g} fps; using the timestamps")
                lies = True
            rate_container = None
    if vfr:
        warnings.append("variable frame rate: frame intervals vary by more than 1 %; "
                        "kinematics use the mean rate")
    if fps is not None:
        fps_v, fps_source = float(fps), "user"
        seen = rate_container or rate_ts
        if seen is not None and abs(seen - fps_v) > VFR_TOLERANCE * fps_v:
            warnings.append(f"fps={fps_v:g} given by the user; the file says {seen:.4g}")
    elif rate_container is not None:
        fps_v, fps_source = rate_container, "container"
    elif rate_ts is not None:
        fps_v, fps_source = rate_ts, "timestamps"
    else:
        fps_v, fps_source = float(fallback_fps), "fallback"
        warnings.append(f"no usable frame rate in the file; assuming {fallback_fps:g} fps "
                        f"(pass fps= to set it)")

    # frame count: decoded > packets (the header's claim checked against them) > header > estimate
    if scan == "decode":
        n_frames, n_source = n_decoded, "decoded"
        if n_claimed and n_claimed != n_decoded:
            lies = True
            warnings.append(f"the container claims {n_claimed} frames but {n_decoded} decode")
    elif sc is not None:
        n_frames, n_source = sc.n_packets, "container"
        if n_claimed != sc.n_packets:
            n_source = "packets"
            lies = lies or n_claimed != 0
    elif n_claimed:
        n_frames, n_source = n_claimed, "container"
    elif math.isfinite(dur_claimed):
        n_frames, n_source = int(round(dur_claimed * fps_v)), "estimated"
        warnings.append(f"frame count estimated from the duration ({dur_claimed:.3f} s)")
    else:
        return probe_video(path, fps=fps, fallback_fps=fallback_fps, scan="packets")
    if n_frames == 0:
        raise VideoError(f"{path}: the video stream has no frames")
    return VideoMeta(path=str(path), fps=fps_v, width=width, height=height, n_frames=n_frames,
                     codec=codec, duration_s=n_frames / fps_v, fps_source=fps_source,
                     n_frames_source=n_source, container_lies=lies, variable_frame_rate=vfr,
                     warnings=tuple(warnings))


def check_frame_size(meta: VideoMeta, path: str | os.PathLike | None = None) -> VideoMeta:
    """Refuse a video whose frames are too small to hold and follow a sperm head.

    Args:
        meta: from :func:`probe_video`.
        path: the name used in the message (default ``meta.path``).

    Returns:
        ``meta``, unchanged, when both sides are at least :data:`MIN_FRAME_PX`.

    Raises:
        VideoError: a side is below :data:`MIN_FRAME_PX` (names the file and both sizes).
    """
    if min(meta.width, meta.height) < MIN_FRAME_PX:
        raise VideoError(f"{path or meta.path}: {meta.width}x{meta.height} px frames are too small for a "
                         f"motility analysis (need at least {MIN_FRAME_PX}x{MIN_FRAME_PX} px: a few head "
                         f"lengths around each head and room to swim)")
    return meta


_YUV8 = {"yuv420p", "yuv422p", "yuv444p", "yuv410p", "yuv411p", "yuv440p", "nv12", "nv21"}
_YUVJ8 = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray"}
# Limited-range luma (16-235) to full-range gray: the mapping swscale applies (checked equal),
# and what OpenCV's BGR->gray gives within 1 level. A table on the Y plane is ~25 % faster.
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def _gray(frame: av.VideoFrame, out: np.ndarray | None = None) -> np.ndarray:
    """Gray ``uint8`` image of ``frame`` (written into ``out`` when given)."""
    fmt = frame.format.name
    full = fmt in _YUVJ8 or (fmt in _YUV8 and frame.color_range == 2)  # 2: AVCOL_RANGE_JPEG
    if fmt in _YUV8 or fmt in _YUVJ8:
        plane = frame.planes[0]
        y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
        if out is None:
            return y.copy() if full else np.take(_LIMITED_TO_FULL, y)
        if full:
            out[...] = y
        else:
            np.take(_LIMITED_TO_FULL, y, out=out)
        return out
    g = frame.to_ndarray(format="gray")
    if out is None:
        return g
    out[...] = g
    return out


def _decode(path: Path, *, expected: int = 0, fps: float | None = None,
            container_stream=None) -> Iterator[tuple[int, float, av.VideoFrame]]:
    """Yield ``(index, timestamp_s, frame)`` for every decodable frame of ``path``.

    Raises :class:`VideoDecodeError` after the last good frame when demuxing or decoding fails,
    or when fewer than ``expected`` frames came out (a file that simply ends early).
    """
    container, stream = container_stream or _open_video(path)
    stream.thread_type = "AUTO"  # frame threads: ~2x decode speed, same frames
    tb = float(stream.time_base) if stream.time_base else None
    rate = fps or _sane(stream.average_rate) or _sane(stream.base_rate) or 50.0
    index, pts0, detail = 0, None, ""

    def stamp(frame) -> float:
        nonlocal pts0
        # a user's fps overrides the file's clock too: its timestamps are what was distrusted
        if fps is not None or frame.pts is None or tb is None:
            return index / rate
        if pts0 is None:
            pts0 = frame.pts
        return (frame.pts - pts0) * tb

    try:
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    yield index, stamp(frame), frame
                    index += 1
        except _FFMPEG_ERRORS as err:
            detail = f"FFmpeg: {err}"
            # frames already inside the decoder (threads, reordering) are still good
            with contextlib.suppress(*_FFMPEG_ERRORS):
                for frame in stream.codec_context.decode(None):
                    yield index, stamp(frame), frame
                    index += 1
    finally:
        container.close()
    if detail:
        raise VideoDecodeError(path, index, detail)
    if index < expected:
        raise VideoDecodeError(path, index, f"the file ends after {index} of the {expected} "
                                            f"frames its header announces")


@dataclass(frozen=True)
class FrameChunk:
    """Consecutive decoded frames.

    Attributes:
        start: index (0-based) of the first frame in the video.
        frames: ``(n, H, W) uint8`` gray frames.
        timestamps_s: ``(n,)`` presentation times in s, relative to the first frame of the
            video (``index / fps`` for a constant-rate file, and always when the user gave
            ``fps``).
    """

    start: int
    frames: np.ndarray
    timestamps_s: np.ndarray

    @property
    def stop(self) -> int:
        """Index one past the last frame (``start + len(self)``)."""
        return self.start + len(self.frames)

    def __len__(self) -> int:
        return len(self.frames)


def iter_gray_frames(path: str | os.PathLike) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode ``path`` once, opening it once, yielding ``(index, timestamp_s, gray)``: for a
    further pass over a file already probed and analysed (no probe, no header check).

    Raises:
        VideoDecodeError: after the last decodable frame of a damaged file.
    """
    for index, t, frame in _decode(Path(path)):
        yield index, t, _gray(frame)


class VideoReader:
    """Stream gray frames from a video file without holding the whole video.

    Opening probes the file (:func:`probe_video`, cheap packet scan) so :attr:`meta` is
    available at once; each ``iter_*`` call decodes from the start in its own container.

    Args:
        path: the video file.
        chunk_frames: frames per :class:`FrameChunk` from :meth:`iter_chunks`; larger chunks
            amortise per-call overhead downstream but cost ``chunk_frames * H * W`` bytes.
        fps: the user's frame rate, overriding the file's (see :func:`probe_video`).
        meta: the file's :func:`probe_video` result when the caller has it already (the file is
            then opened only to decode).

    Raises:
        InputFileError: the file does not exist.
        VideoError: not a video, no video stream, or no frames.
    """

    def __init__(self, path: str | os.PathLike, *, chunk_frames: int = 64,
                 fps: float | None = None, meta: VideoMeta | None = None) -> None:
        if int(chunk_frames) < 1:
            raise ParameterError(f"chunk_frames={chunk_frames!r} must be >= 1")
        self.path = Path(path)
        self.chunk_frames = int(chunk_frames)
        self.meta: VideoMeta = meta if meta is not None else probe_video(self.path, fps=fps)
        self._user_fps = fps
        self._expected: int | None = None  # read from the header by the first decoding pass
        self._open: list = []

    def _expected_from(self, container, stream) -> int:
        """Frames the header promises (a header that promises more frames than the packets hold
        means a cut file: the decoder says so), read from the container about to be decoded."""
        if self._expected is None:
            file_fps = self.meta.fps if self._user_fps is None else probe_video(self.path).fps
            self._expected = _expected_frames(*_header_claims(container, stream), file_fps, self.meta.n_frames)
        return self._expected

    def iter_frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """Yield ``(index, timestamp_s, gray)``: 0-based index, time in s, ``(H, W) uint8``.

        Raises:
            VideoDecodeError: after the last decodable frame of a truncated or corrupt file;
                ``err.n_good`` frames were yielded before it.
        """
        for index, t, frame in self._frames():
            yield index, t, _gray(frame)

    def _frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        cs = _open_video(self.path)
        self._open.append(cs[0])
        fps = self.meta.fps if self.meta.fps_source == "user" else None
        try:
            yield from _decode(self.path, expected=self._expected_from(*cs), fps=fps, container_stream=cs)
        finally:
            # close() may have cleared the list already (reader closed before the generator)
            with contextlib.suppress(ValueError):
                self._open.remove(cs[0])

    def iter_chunks(self) -> Iterator[FrameChunk]:
        """Yield :class:`FrameChunk` s of ``chunk_frames`` frames (the last one may be shorter).

        Raises:
            VideoDecodeError: after yielding the chunk that holds the last good frame.
        """
        h, w, n_max = self.meta.height, self.meta.width, self.chunk_frames
        buf, ts, start, n = None, np.empty(n_max), 0, 0
        try:
            for index, t, frame in self._frames():
                if (frame.height, frame.width) != (h, w):
                    raise VideoError(f"{self.path}: frame {index} is {frame.width}x"
                                     f"{frame.height} but the stream is {w}x{h}; "
                                     f"size changes inside a video are not supported")
                if buf is None:
                    buf = np.empty((n_max, h, w), np.uint8)
                _gray(frame, out=buf[n])
                ts[n] = t
                n += 1
                if n == n_max:
                    yield FrameChunk(start, buf, ts)
                    # new buffers: a consumer may keep the chunk it was given
                    buf, ts, start, n = np.empty_like(buf), np.empty(n_max), start + n, 0
        except VideoDecodeError:
            if n:
                yield FrameChunk(start, buf[:n].copy(), ts[:n].copy())
            raise
        if n:
            yield FrameChunk(start, buf[:n].copy(), ts[:n].copy())

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        return self.iter_frames()

    def __len__(self) -> int:
        return self.meta.n_frames

    def close(self) -> None:
        """Close any container an unfinished iteration left open."""
        for c in self._open:
            with contextlib.suppress(Exception):
                c.close()
        self._open.clear()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
