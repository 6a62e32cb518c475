"""One typed configuration tree for the whole engine, saved as JSON next to every result.

Each stage has a frozen dataclass of its own parameters; :class:`Config` groups them. ``to_dict``
/ ``from_dict`` round-trip exactly, unknown keys in a user file are an error (typos must not pass
silently), and missing keys take the defaults. :meth:`Config.load` also takes a result's
``summary.json`` and uses its ``config`` block.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.io.atomic import write_json_atomic


@dataclass(frozen=True)
class VideoConfig:
    """Decoding. ``chunk_frames``: frames per chunk handed to later stages (memory ~ chunk x
    frame size). ``fallback_fps``: used only when neither the user nor the container gives a rate."""

    chunk_frames: int = 64
    fallback_fps: float = 50.0


@dataclass(frozen=True)
class EnhanceConfig:
    """HLDNBM spatial Laplace background model (see :mod:`spermtrack.detect.enhance`).
    ``enabled`` applies to both detectors (blob: local vs one global median). ``window_px``,
    ``scale_floor`` and ``z_clip`` set the enhanced frames fed to the YOLO detector (match its
    training); the blob detector scales its own window with the measured head size and takes its
    scale from each frame's spread (docs/DETECTOR.md)."""

    enabled: bool = True
    window_px: int = 31
    scale_floor: float = 2.0
    z_clip: float = 8.0


@dataclass(frozen=True)
class DetectConfig:
    """Detection. ``polarity``: ``auto`` (decided per video from the candidates), ``bright``
    (phase contrast) or ``dark`` heads (bright field). ``classifier``: the sperm-vs-impurity
    classifier of the blob detector (``"default"``: the weights shipped in the package; a path
    from ``spermtrack train classifier``; None: off). ``threshold_z``: a fixed blob operating
    point (background spreads); None calibrates it on the video. ``head_length_px``: the head core
    length; None estimates it."""

    detector: str = "blob"
    polarity: str = "auto"
    classifier: str | None = "default"
    threshold_z: float | None = None
    head_length_px: float | None = None
    weights: str | None = None
    conf_threshold: float = 0.25
    tile_px: int = 320
    tile_overlap: float = 0.15
    full_frame_pass: bool = False


@dataclass(frozen=True)
class TrackConfig:
    """Tracking (see :class:`spermtrack.tracker.associate.TrackerParams` and docs/TRACKER.md).
    ``max_speed_px_frame``: the farthest a track may reach in one frame (the gate cap, px);
    ``confirm_s``: hits needed before a track counts; ``delete_after_s``: a track unseen this long
    ends (the offline stitcher bridges longer gaps); ``stitch``: join fragments offline."""

    max_speed_px_frame: float = 20.0
    confirm_s: float = 0.06
    delete_after_s: float = 0.5
    stitch: bool = True
    reid_weights: str | None = None


@dataclass(frozen=True)
class KinematicsConfig:
    """CASA kinematics. ``window``: average-path window in points (odd, >= 3); ``None`` = the odd
    integer nearest fps/12. ``min_duration_s``: shorter tracks are counted but not graded.
    ``aggregate``: ``"track"`` (each cell once) or ``"window"`` (cells per time window)."""

    preset: str = "who2021"
    window: int | None = None
    min_duration_s: float = 0.5
    aggregate: str = "track"
    aggregate_window_s: float = 1.0


@dataclass(frozen=True)
class MorphologyConfig:
    segmenter: str = "classical"
    weights: str | None = None
    crops_per_track: int = 5
    crop_px: int = 64


@dataclass(frozen=True)
class ReportConfig:
    """What ``spermtrack analyze`` writes besides the tables. ``annotated_video``: annotated.mp4
    (ids and trails coloured by grade); ``trail_s``: trail length drawn behind each head;
    ``plots``: plots/*.png and their use in report.html; ``gallery_tracks``: tracks shown in the
    crop gallery."""

    annotated_video: bool = True
    trail_s: float = 1.0
    plots: bool = True
    gallery_tracks: int = 24


@dataclass(frozen=True)
class SampleConfig:
    """The sample being measured. ``chamber_depth_um``: depth of the counting chamber (e.g. 20
    for a 20 um Leja slide); with it every result carries ``concentration_million_per_ml``
    (:mod:`spermtrack.kinematics.concentration`), without it none is guessed."""

    chamber_depth_um: float | None = None


@dataclass(frozen=True)
class Config:
    """The whole tree. ``Config().to_dict()`` is what gets saved beside results."""

    video: VideoConfig = field(default_factory=VideoConfig)
    enhance: EnhanceConfig = field(default_factory=EnhanceConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    kinematics: KinematicsConfig = field(default_factory=KinematicsConfig)
    morphology: MorphologyConfig = field(default_factory=MorphologyConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "Config":
        return _build(cls, data, source, "")

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read a config file: this tree as JSON, or a whole result file (``summary.json`` of
        ``spermtrack analyze``), whose ``config`` block is then used: rerun with the settings
        of an earlier result.

        Raises:
            InputFileError: missing file, bad JSON, not an object, a result file without a
                ``config`` block, an unknown key or a section that is not an object.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError(p, "config file not found") from None
        except IsADirectoryError:
            raise InputFileError(p, "is a folder, not a config file") from None
        except UnicodeDecodeError:
            raise InputFileError(p, "not a text file (a config file is JSON)") from None
        except json.JSONDecodeError as err:
            raise InputFileError(p, f"not valid JSON ({err.msg})", line=err.lineno) from None
        if not isinstance(data, dict):
            raise InputFileError(p, "a config file must hold a JSON object")
        if data.get("software") == "spermtrack" or isinstance(data.get("config"), dict):
            block = data.get("config")
            if not isinstance(block, dict):
                what = f"spermtrack {data['command']} result" if data.get("command") else "spermtrack result"
                raise InputFileError(p, f"a {what} file without a 'config' object; give a config file or "
                                        f"the summary.json of a complete analyze run")
            return _build(cls, block, str(p), "config.")
        return cls.from_dict(data, source=str(p))

    def replace(self, section: str, **changes) -> "Config":
        """A copy with some fields of one section changed: ``cfg.replace("kinematics", preset=...)``."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


def _build(cls, data: dict, source: str, prefix: str):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputFileError(source, f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
                             f"known: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise InputFileError(source, f"config key {prefix + name} must be an object")
            kwargs[name] = _build(type(default), value, source, f"{prefix}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def check_config(cfg: Config) -> Config:
    """Check the types and ranges of a configuration before any work (a typo in a config file
    must fail at once, not after an hour of decoding)."""
    for section in dataclasses.fields(cfg):
        sub = getattr(cfg, section.name)
        for f in dataclasses.fields(sub):
            v = getattr(sub, f.name)
            want = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            ok = {"int": isinstance(v, int) and not isinstance(v, bool),
                  "float": isinstance(v, (int, float)) and not isinstance(v, bool),
                  "bool": isinstance(v, bool), "str": isinstance(v, str),
                  "str | None": v is None or isinstance(v, str),
                  "int | None": v is None or (isinstance(v, int) and not isinstance(v, bool)),
                  "float | None": v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                  }.get(want, True)
            if not ok:
                raise ParameterError(f"config {section.name}.{f.name}={v!r} must be of type {want}")
    from spermtrack.kinematics import get_preset
    from spermtrack.types import check_positive

    get_preset(cfg.kinematics.preset)
    if cfg.kinematics.aggregate not in ("track", "window"):
        raise ParameterError(f"config kinematics.aggregate={cfg.kinematics.aggregate!r} must be 'track' or 'window'")
    if cfg.detect.detector not in ("blob", "yolo"):
        raise ParameterError(f"config detect.detector={cfg.detect.detector!r} must be 'blob' or 'yolo'")
    if cfg.detect.polarity not in ("auto", "bright", "dark"):
        raise ParameterError(f"config detect.polarity={cfg.detect.polarity!r} must be 'auto', 'bright' or 'dark'")
    check_positive("kinematics.min_duration_s", cfg.kinematics.min_duration_s, 0.0, 3600.0)
    check_positive("kinematics.aggregate_window_s", cfg.kinematics.aggregate_window_s, 0.01, 3600.0)
    check_positive("video.chunk_frames", cfg.video.chunk_frames, 1, 4096)
    check_positive("report.trail_s", cfg.report.trail_s, 0.0, 60.0)
    check_positive("track.confirm_s", cfg.track.confirm_s, 0.0, 10.0)
    check_positive("track.delete_after_s", cfg.track.delete_after_s, 0.0, 60.0)
    check_positive("track.max_speed_px_frame", cfg.track.max_speed_px_frame, 0.5, 1000.0)
    from spermtrack.kinematics.concentration import check_chamber_depth

    check_chamber_depth(cfg.sample.chamber_depth_um)
    return cfg
