"""The few data types shared by every stage.

- :class:`Detections`: the objects found in one frame (numpy arrays, pixel ``xyxy`` boxes).
- ``Tracks``: a pandas DataFrame with a fixed core schema (:data:`TRACK_COLUMNS`), one row per
  (track, frame). Frames are **0-based** everywhere inside spermtrack; MOTChallenge files are
  1-based and are converted only in :mod:`spermtrack.io.mot`. ``x, y`` is the head centre in px,
  ``w, h`` the box size in px. Stages may add columns (e.g. ``interpolated``); they never drop
  or rename the core ones.
- :class:`VideoMeta`: what the container says about a video (and how far to trust it).
- :class:`Calibration`: ``um_per_px`` and ``fps`` with where each came from; every output
  records it. :data:`UM_PER_PX_RANGE` and :data:`FPS_RANGE` are the one definition of the values
  accepted for them anywhere (:func:`check_um_per_px`, :func:`check_fps`).
- :func:`check_positive`, :func:`ranged` and :func:`check_ranges`: range checks of parameters,
  a dataclass field declaring its own range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.geometry import centres_to_xyxy, xyxy_centres, xyxy_sizes, xyxy_to_ltwh

TRACK_COLUMNS: tuple[str, ...] = ("track_id", "frame", "x", "y", "w", "h", "conf", "cls")
TRACK_DTYPES: dict[str, str] = {
    "track_id": "int64",
    "frame": "int64",
    "x": "float64",
    "y": "float64",
    "w": "float64",
    "h": "float64",
    "conf": "float64",
    "cls": "int64",
}

#: VISEM-Tracking class ids (``0 sperm, 1 cluster, 2 small_or_pinhead``).
#: 0-2 are VISEM-Tracking's classes; 3 (OTHER_CLS) is what the detector's classifier calls an impurity
#: (debris, out-of-focus cell, tail fragment): tracked and exported, never graded.
CLASS_NAMES: dict[int, str] = {0: "sperm", 1: "cluster", 2: "small_or_pinhead", 3: "other"}
OTHER_CLS = 3
SPERM_CLS = 0


@dataclass(frozen=True)
class Detections:
    """Objects found in one frame.

    Attributes:
        xyxy: ``(N, 4) float32`` boxes in px, ``left, top, right, bottom``.
        conf: ``(N,) float32`` confidence in ``[0, 1]``.
        cls: ``(N,) int64`` class ids (:data:`CLASS_NAMES`).
    """

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        conf = np.asarray(self.conf, dtype=np.float32).reshape(-1)
        cls = np.asarray(self.cls, dtype=np.int64).reshape(-1)
        if conf.size == 1 and n != 1:
            conf = np.full(n, conf[0], np.float32)
        if cls.size == 1 and n != 1:
            cls = np.full(n, cls[0], np.int64)
        if len(conf) != n or len(cls) != n:
            raise ValueError(f"Detections: {n} boxes but {len(conf)} conf and {len(cls)} cls values")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "conf", conf)
        object.__setattr__(self, "cls", cls)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def from_centers(cls, xy, wh, conf=1.0, classes=0) -> "Detections":
        """Build from centres ``(N, 2)`` and sizes ``(N, 2)`` (or one size for all)."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        wh = np.broadcast_to(np.asarray(wh, np.float64), xy.shape)
        return cls(centres_to_xyxy(xy, wh), conf, classes)

    @property
    def centers(self) -> np.ndarray:
        """``(N, 2)`` box centres in px."""
        return xyxy_centres(self.xyxy)

    @property
    def wh(self) -> np.ndarray:
        """``(N, 2)`` box widths and heights in px."""
        return xyxy_sizes(self.xyxy)

    @property
    def ltwh(self) -> np.ndarray:
        """``(N, 4)`` boxes as ``left, top, width, height`` (the MOT and DeepSORT convention)."""
        return xyxy_to_ltwh(self.xyxy)

    def select(self, mask) -> "Detections":
        return Detections(self.xyxy[mask], self.conf[mask], self.cls[mask])


def empty_tracks() -> pd.DataFrame:
    """An empty ``Tracks`` table with the core schema."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TRACK_DTYPES.items()})


def make_tracks(df: pd.DataFrame, *, source: str = "tracks") -> pd.DataFrame:
    """Validate and normalise a ``Tracks`` table.

    Missing ``w, h`` become NaN, missing ``conf`` 1.0 and ``cls`` 0; core columns come first with
    their dtypes, extra columns are kept after them; rows are sorted by ``track_id, frame``.

    Raises:
        InputFileError: a required column (``track_id, frame, x, y``) is missing, a frame is
            negative, or a track has the same frame twice (``source`` names the origin).
    """
    missing = [c for c in ("track_id", "frame", "x", "y") if c not in df.columns]
    if missing:
        raise InputFileError(source, f"missing column(s) {', '.join(missing)}; "
                             f"a Tracks table needs track_id, frame, x, y")
    out = df.copy()
    for c, default in (("w", np.nan), ("h", np.nan), ("conf", 1.0), ("cls", 0)):
        if c not in out.columns:
            out[c] = default
    try:
        out = out.astype({c: TRACK_DTYPES[c] for c in TRACK_COLUMNS})
    except (ValueError, TypeError) as err:
        raise InputFileError(source, f"a Tracks column has non-numeric values ({err})") from None
    if len(out) and (out["frame"] < 0).any():
        raise InputFileError(source, "negative frame numbers (Tracks frames are 0-based)")
    extra = [c for c in out.columns if c not in TRACK_COLUMNS]
    out = out[list(TRACK_COLUMNS) + extra].sort_values(["track_id", "frame"], kind="stable")
    dup = out.duplicated(["track_id", "frame"])
    if dup.any():
        row = out[dup].iloc[0]
        raise InputFileError(source, f"track {int(row.track_id)} has frame {int(row.frame)} twice")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class VideoMeta:
    """What we know about a video.

    Attributes:
        path: the file (or the dataset folder it came from).
        fps: frames per second used for all timing.
        width, height: frame size in px.
        n_frames: number of frames (decoded count when known, else the container's claim).
        codec: codec name as FFmpeg reports it ("" when unknown).
        duration_s: ``n_frames / fps``.
        fps_source: where ``fps`` came from: ``"container"``, ``"timestamps"``, ``"user"``,
            ``"fallback"``, ``"dataset"``.
        n_frames_source: ``"container"``, ``"packets"`` (counted by demuxing), ``"decoded"``,
            ``"labels"``, ``"estimated"``.
        container_lies: True when the container's frame count or rate disagreed with what the
            frames' timestamps showed.
        variable_frame_rate: True when the frame intervals vary by more than 1 %.
        warnings: human-readable notes about the above.
    """

    path: str
    fps: float
    width: int
    height: int
    n_frames: int
    codec: str = ""
    duration_s: float = float("nan")
    fps_source: str = "container"
    n_frames_source: str = "container"
    container_lies: bool = False
    variable_frame_rate: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


CALIBRATION_SOURCES = ("user", "metadata", "estimated from head size", "dataset", "default")

#: Micrometres per pixel accepted anywhere (given by a user, estimated, or read from a file):
#: below 0.01 a pixel is finer than any light microscope resolves; above 10 a 4.5 um sperm head
#: spans less than half a pixel.
UM_PER_PX_RANGE: tuple[float, float] = (0.01, 10.0)
#: Frames per second accepted anywhere (given by a user, or a container's rate trusted): from a
#: time-lapse of one frame a second to a high-speed camera's 10000 (flagellar beat studies film
#: at 1000-5000 frames/s).
FPS_RANGE: tuple[float, float] = (1.0, 10000.0)

#: Image coordinates. spermtrack works in pixel-centre coordinates: the centre of pixel column
#: ``c`` is ``x = c`` (OpenCV drawing, image moments, numpy indices); ``tracks.csv`` and every
#: other table it writes use them. YOLO labels (VISEM-Tracking's ``labels/`` and
#: ``labels_ftid/``) and the MOT files derived from them (VISEM's ``gt/videoNN_gt_mot``) use edge
#: coordinates: pixel column ``c`` spans ``c .. c + 1`` and its centre is ``c + 0.5``. Readers of
#: those formats subtract this offset from box centres and writers add it, so that a label's
#: centre and a detection of the same head agree (ignoring it put every label half a pixel right
#: and down of its head: -1.7 HOTA points on VISEM video 11).
EDGE_OFFSET_PX: float = 0.5


@dataclass(frozen=True)
class Calibration:
    """Spatial and temporal calibration of a result.

    Attributes:
        um_per_px: micrometres per pixel.
        fps: frames per second.
        um_per_px_source: where ``um_per_px`` came from (one of :data:`CALIBRATION_SOURCES`;
            ``"estimated from head size"`` must be reported loudly).
        fps_source: where ``fps`` came from (``"user"``, ``"container"``, ...).
    """

    um_per_px: float
    fps: float
    um_per_px_source: str = "user"
    fps_source: str = "user"

    def __post_init__(self) -> None:
        check_um_per_px(self.um_per_px)
        check_fps(self.fps)

    @property
    def estimated(self) -> bool:
        return self.um_per_px_source.startswith("estimated")

    def to_dict(self) -> dict:
        return asdict(self)


def check_positive(name: str, value: float, lo: float, hi: float) -> float:
    """Return ``value`` as float or raise :class:`ParameterError` when outside ``[lo, hi]``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or not (lo <= v <= hi):
        raise ParameterError(f"{name}={value!r} is outside the sensible range [{lo}, {hi}]")
    return v


def check_um_per_px(value, name: str = "um_per_px") -> float:
    """``value`` as float, or :class:`ParameterError` outside :data:`UM_PER_PX_RANGE`."""
    return check_positive(name, value, *UM_PER_PX_RANGE)


def check_fps(value, name: str = "fps") -> float:
    """``value`` as float, or :class:`ParameterError` outside :data:`FPS_RANGE`."""
    return check_positive(name, value, *FPS_RANGE)


def ranged(default, lo: float, hi: float, **kwargs):
    """A dataclass field whose values must lie in ``[lo, hi]`` (None always passes), checked by
    :func:`check_ranges`: the range is declared beside the default."""
    return field(default=default, metadata={"range": (lo, hi)}, **kwargs)


def check_ranges(obj, prefix: str = "") -> None:
    """Check every field of the dataclass instance ``obj`` declared with :func:`ranged`.

    Raises:
        ParameterError: naming ``prefix + field``, the value and the range.
    """
    for f in dataclasses.fields(obj):
        rng = f.metadata.get("range")
        value = getattr(obj, f.name)
        if rng is not None and value is not None:
            check_positive(prefix + f.name, value, *rng)
