"""One typed configuration tree for the whole engine, saved as JSON next to every result.

Each stage has a frozen dataclass of its own parameters; :class:`Config` groups them. ``to_dict``
/ ``from_dict`` round-trip exactly, unknown keys in a user file are an error (typos must not pass
silently), and missing keys take the defaults (a config saved by an older version loads: keys are
only ever added). :meth:`Config.load` also takes a result's ``summary.json`` and uses its
``config`` block.

Every section checks its own fields when it is built (``Config()``, :meth:`Config.from_dict`,
:meth:`Config.replace`): the type, the choices of a ``Literal`` field and the range declared
beside each default (:func:`~spermtrack.types.ranged`). A bad value is a
:class:`~spermtrack.errors.ParameterError` naming the key (``config track.refine.max_gap_s=-1
is outside ...``); read from a file, an :class:`~spermtrack.errors.InputFileError` naming the
file and the key. :func:`check_config` adds the checks that need a stage's registry.

Where a section feeds a stage's parameter dataclass its keys carry the parameter's name
(:mod:`spermtrack.pipeline.stages` does the mapping); the few older keys whose names differ are
kept so that saved configs still load: ``detect.threshold_z`` feeds ``BlobParams.score_threshold``,
``detect.conf_threshold`` / ``tile_overlap`` / ``full_frame_pass`` feed the YOLO detector's
``conf`` / ``overlap`` / ``full_frame``, ``track.max_speed_px_frame`` feeds
``TrackerParams.max_gate_px`` and ``track.delete_after_s`` feeds ``TrackerParams.max_age_s``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.io.atomic import write_json_atomic
from spermtrack.types import FPS_RANGE, check_positive, ranged


class _Section:
    """A config section: checks its fields on construction (see the module doc)."""

    #: the section's path in the tree, used in error messages (``"track.refine"``)
    _key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            key = f"{self._key}.{f.name}"
            value = getattr(self, f.name)
            _check_type(key, value, hints[f.name])
            rng = f.metadata.get("range")
            if rng is not None and value is not None:
                check_positive(f"config {key}", value, *rng)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


_KINDS: dict[type, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _check_type(key: str, value, tp) -> None:
    """Raise :class:`ParameterError` unless ``value`` fits the annotation ``tp``."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        optional = type(None) in args
        if optional and value is None:
            return
        (tp,) = [a for a in args if a is not type(None)]
    null = " or null" if optional else ""
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if not (isinstance(value, str) and value in choices):
            raise ParameterError(f"config {key}={value!r} must be one of "
                                 f"{', '.join(repr(c) for c in choices)}{null}")
        return
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, tp):
            raise ParameterError(f"config {key} must be a {tp.__name__} (an object of keys)")
        return
    what, ok = _KINDS[tp]
    if not ok(value):
        raise ParameterError(f"config {key}={value!r} must be {what}{null}")


@dataclass(frozen=True)
class VideoConfig(_Section):
    """Decoding. ``chunk_frames``: frames per chunk handed to later stages (memory ~ chunk x
    frame size). ``fallback_fps``: used only when neither the user nor the container gives a rate."""

    _key: ClassVar[str] = "video"

    chunk_frames: int = ranged(64, 1, 4096)
    fallback_fps: float = ranged(50.0, *FPS_RANGE)


@dataclass(frozen=True)
class EnhanceConfig(_Section):
    """HLDNBM spatial Laplace background model (see :mod:`spermtrack.detect.enhance`).
    ``enabled`` applies to both detectors (blob: local vs one global median). ``window_px``
    (rounded up to odd), ``scale_floor`` and ``z_clip`` set the enhanced frames fed to the YOLO
    detector (:class:`~spermtrack.detect.enhance.HLDNBM`; match its training); the blob detector
    scales its own window with the measured head size, takes its scale from each frame's spread
    and works on the evidence itself, so it ignores all three (docs/DETECTOR.md)."""

    _key: ClassVar[str] = "enhance"

    enabled: bool = True
    window_px: int = ranged(31, 3, 255)
    scale_floor: float = ranged(2.0, 0.01, 255.0)
    z_clip: float = ranged(8.0, 0.1, 1000.0)


@dataclass(frozen=True)
class BlobConfig(_Section):
    """The blob detector's own parameters: every field of
    :class:`~spermtrack.detect.blob.BlobParams` (same names, defaults and ranges) except
    ``polarity``, ``score_threshold`` and ``head_length_px``, which are ``detect.polarity``,
    ``detect.threshold_z`` and ``detect.head_length_px``."""

    _key: ClassVar[str] = "detect.blob"

    floor_z: float = ranged(5.0, 0.0, 1000.0)
    head_ratio: float = ranged(0.25, 0.0, 1.0)
    min_head_level_z: float = ranged(12.0, 0.0, 1000.0)
    calib_frames: int = ranged(16, 1, 100000)
    recalibrate: bool = True
    box_margin_px: float = ranged(4.0, 0.0, 1000.0)
    box_factor: float = ranged(2.5, 0.0, 100.0)
    edge_px: float = ranged(2.0, 0.0, 1000.0)
    edge_heads: bool = True
    edge_min_prob: float = ranged(0.9, 0.0, 1.0)
    cluster_area_factor: float = ranged(6.0, 1.0, 1000.0)
    merge_factor: float = ranged(1.5, 0.0, 100.0)
    core_window: float = ranged(0.6, 0.01, 100.0)
    sperm_min_prob: float = ranged(0.6, 0.0, 1.0)
    classifier_scale_band: float = ranged(1.15, 1.0, 1000.0)
    duplicate_factor: float = ranged(1.25, 0.0, 100.0)
    classifier_reuse_tol: float = ranged(0.1, 0.0, 10.0)


@dataclass(frozen=True)
class DetectConfig(_Section):
    """Detection. ``polarity``: ``auto`` (decided per video from the candidates), ``bright``
    (phase contrast) or ``dark`` heads (bright field). ``classifier``: the sperm-vs-impurity
    classifier of the blob detector (``"default"``: the weights shipped in the package; a path
    from ``spermtrack train classifier``; None: off). ``threshold_z``: a fixed blob operating
    point (background spreads); None calibrates it on the video. ``head_length_px``: the head core
    length; None estimates it. ``blob``: the blob detector's other parameters (:class:`BlobConfig`).

    YOLO (:class:`~spermtrack.detect.yolo.SlicedYoloDetector`): ``weights`` (a ``.pt``),
    ``conf_threshold`` (its ``conf``), ``tile_px`` (0: full frame only), ``tile_overlap`` (its
    ``overlap``), ``full_frame_pass`` (its ``full_frame``: also the whole frame), ``ios_threshold``
    (boxes of neighbouring tiles fuse above this intersection over the smaller box), ``imgsz``
    (model input; None: ``tile_px`` rounded up to a multiple of 32)."""

    _key: ClassVar[str] = "detect"

    detector: Literal["blob", "yolo"] = "blob"
    polarity: Literal["auto", "bright", "dark"] = "auto"
    classifier: str | None = "default"
    threshold_z: float | None = ranged(None, 0.0, 1000.0)
    head_length_px: float | None = ranged(None, 1.0, 500.0)
    weights: str | None = None
    conf_threshold: float = ranged(0.25, 0.0, 1.0)
    tile_px: int = ranged(320, 0, 8192)
    tile_overlap: float = ranged(0.15, 0.0, 0.95)
    full_frame_pass: bool = False
    ios_threshold: float = ranged(0.6, 0.0, 1.0)
    imgsz: int | None = ranged(None, 32, 8192)
    blob: BlobConfig = field(default_factory=BlobConfig)


@dataclass(frozen=True)
class RefineConfig(_Section):
    """The offline refinement (stitch, fill gaps, smooth): every field of
    :class:`~spermtrack.tracker.refine.RefineParams`, same names, defaults and ranges (see its
    docstring). Whether to stitch at all is ``track.stitch``."""

    _key: ClassVar[str] = "track.refine"

    max_gap_s: float = ranged(0.6, 0.0, 3600.0)
    split_gap_s: float = ranged(0.14, 0.0, 3600.0)
    stitch_pos_sigma_px: float = ranged(5.0, 1e-3, 1e4)
    stitch_speed_sigma_px_s: float = ranged(25.0, 0.0, 1e6)
    stitch_size_sigma: float = ranged(0.2, 0.0, 100.0)
    stitch_chi2: float = ranged(9.21, 0.01, 1e4)
    max_speed_px_s: float = ranged(600.0, 0.0, 1e7)
    fit_s: float = ranged(0.4, 0.0, 60.0)
    max_interp_gap_s: float = ranged(0.5, 0.0, 3600.0)
    meas_sigma_px: float | None = ranged(None, 1e-3, 100.0)
    accel_sigma_px_s2: float | None = ranged(None, 1e-3, 1e8)
    min_accel_sigma_px_s2: float = ranged(500.0, 1e-3, 1e8)
    min_track_s: float = ranged(0.0, 0.0, 3600.0)
    satellite_radius_boxes: float = ranged(0.55, 0.0, 10.0)
    satellite_min_share: float = ranged(0.5, 0.0, 1.0)
    jump_min_boxes: float = ranged(0.3, 0.0, 10.0)
    jump_factor: float = ranged(3.0, 1.0, 1000.0)
    jump_evidence_s: float = ranged(1.0, 0.0, 60.0)
    jump_landing_s: float = ranged(0.4, 0.0, 60.0)
    fill_margin_px: float = ranged(3.0, -1.0, 1e4)


@dataclass(frozen=True)
class TrackConfig(_Section):
    """Tracking (see :class:`spermtrack.tracker.associate.TrackerParams` and docs/TRACKER.md).
    ``max_speed_px_frame``: the farthest a track may reach in one frame (the gate cap, px;
    ``TrackerParams.max_gate_px``); ``confirm_s``: hits needed before a track counts;
    ``delete_after_s``: a track unseen this long ends (``TrackerParams.max_age_s``; the offline
    stitcher bridges longer gaps); ``stitch``: join fragments offline; ``reid_weights``: an
    appearance embedder (experimental). The other keys up to ``class_smoothing`` are the
    :class:`~spermtrack.tracker.associate.TrackerParams` fields of the same names (see its
    docstring); ``refine``: the offline refinement (:class:`RefineConfig`)."""

    _key: ClassVar[str] = "track"

    max_speed_px_frame: float = ranged(20.0, 0.5, 1000.0)
    confirm_s: float = ranged(0.06, 0.0, 10.0)
    delete_after_s: float = ranged(0.5, 0.0, 60.0)
    stitch: bool = True
    reid_weights: str | None = None
    meas_sigma_px: float = ranged(3.0, 0.01, 100.0)
    accel_sigma_px_s2: float = ranged(1500.0, 1e-3, 1e7)
    init_speed_sigma_px_s: float = ranged(250.0, 1e-3, 1e6)
    size_sigma: float = ranged(0.3, 0.0, 100.0)
    size_smoothing: float = ranged(0.5, 0.0, 1.0)
    gate_chi2: float = ranged(13.28, 0.1, 1000.0)
    max_tentative_misses: int = ranged(1, 0, 1000)
    appearance_weight: float = ranged(5.0, 0.0, 1e6)
    max_cosine_distance: float = ranged(0.7, 0.0, 2.0)
    nn_budget: int = ranged(30, 1, 10000)
    embed_min_candidates: int = ranged(2, 0, 1000)
    iou_weight: float = ranged(5.0, 0.0, 1e6)
    class_weight: float = ranged(0.0, 0.0, 1e6)
    class_smoothing: float = ranged(0.25, 0.0, 1.0)
    refine: RefineConfig = field(default_factory=RefineConfig)


@dataclass(frozen=True)
class KinematicsConfig(_Section):
    """CASA kinematics. ``preset``: a grading preset (:data:`spermtrack.kinematics.PRESETS`,
    checked by :func:`check_config`). ``window``: average-path window in points (a whole number
    >= 3; odd keeps it centred); ``None`` = the odd integer nearest fps/12. ``min_duration_s``:
    shorter tracks are counted but not graded. ``aggregate``: ``"track"`` (each cell once) or
    ``"window"`` (cells per time window of ``aggregate_window_s``)."""

    _key: ClassVar[str] = "kinematics"

    preset: str = "who2021"
    window: int | None = ranged(None, 3, 10000)
    min_duration_s: float = ranged(0.5, 0.0, 3600.0)
    aggregate: Literal["track", "window"] = "track"
    aggregate_window_s: float = ranged(1.0, 0.01, 3600.0)


@dataclass(frozen=True)
class MorphologyConfig(_Section):
    """Morphology. ``segmenter``: ``classical`` (default), ``yolo-seg`` (experimental,
    needs ``weights``) or ``sam`` (EXPERIMENTAL LiteMedSAM from the ``sam`` extra, worse than
    classical on the real truth set: docs/MORPHOLOGY_METHOD.md; ``weights`` optional); ``crops_per_track``: best crops measured per graded track;
    ``crop_px``: crop side in px."""

    _key: ClassVar[str] = "morphology"

    segmenter: Literal["classical", "yolo-seg", "sam"] = "classical"
    weights: str | None = None
    crops_per_track: int = ranged(5, 1, 1000)
    crop_px: int = ranged(64, 16, 1024)


@dataclass(frozen=True)
class ReportConfig(_Section):
    """What ``spermtrack analyze`` writes besides the tables. ``annotated_video``: annotated.mp4
    (ids and trails coloured by grade); ``trail_s``: trail length drawn behind each head;
    ``plots``: plots/*.png and their use in report.html; ``gallery_tracks``: tracks shown in the
    crop gallery."""

    _key: ClassVar[str] = "report"

    annotated_video: bool = True
    trail_s: float = ranged(1.0, 0.0, 60.0)
    plots: bool = True
    gallery_tracks: int = ranged(24, 0, 10000)


@dataclass(frozen=True)
class SampleConfig(_Section):
    """The sample being measured. ``chamber_depth_um``: depth of the counting chamber (e.g. 20
    for a 20 um Leja slide); with it every result carries ``concentration_million_per_ml``
    (:mod:`spermtrack.kinematics.concentration`, whose range :func:`check_config` applies),
    without it none is guessed."""

    _key: ClassVar[str] = "sample"

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

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "Config":
        """The tree from nested dicts (missing keys take the defaults).

        Raises:
            InputFileError: an unknown key or a section that is not an object (names ``source``).
            ParameterError: a value of the wrong type, not among a key's choices or out of its
                range (names the key).
        """
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
                ``config`` block, an unknown key, a section that is not an object, or a bad
                value (naming the key: its type, choices or range).
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
            return _load_block(cls, block, p, "config.")
        return _load_block(cls, data, p, "")

    def replace(self, section: str, **changes) -> "Config":
        """A copy with some fields of one section changed: ``cfg.replace("kinematics", preset=...)``."""
        return dataclasses.replace(self, **{section: dataclasses.replace(getattr(self, section), **changes)})


def _load_block(cls, data: dict, path: Path, prefix: str) -> "Config":
    try:
        return _build(cls, data, str(path), prefix)
    except ParameterError as err:
        raise InputFileError(path, str(err)) from None


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
    """Check a configuration before any work (a typo in a config file must fail at once, not
    after an hour of decoding).

    Types, choices and ranges are checked by each section when it is built; what is left here
    needs a stage's own registry: the grading preset (:func:`spermtrack.kinematics.get_preset`)
    and the counting chamber depth (:func:`~spermtrack.kinematics.concentration.check_chamber_depth`).

    Raises:
        ParameterError: naming the key and the value.
    """
    if not isinstance(cfg, Config):
        raise ParameterError(f"a Config is needed, got {type(cfg).__name__}")
    from spermtrack.kinematics import get_preset
    from spermtrack.kinematics.concentration import check_chamber_depth

    try:
        get_preset(cfg.kinematics.preset)
    except ParameterError as err:
        raise ParameterError(f"config kinematics.preset: {err}") from None
    check_chamber_depth(cfg.sample.chamber_depth_um)
    return cfg
