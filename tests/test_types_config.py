"""Shared types and the config tree."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from spermtrack.config import Config
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.types import Calibration, Detections, make_tracks


def test_config_round_trips_through_json(tmp_path):
    cfg = Config().replace("kinematics", preset="casa-gui", window=7).replace("detect", detector="yolo")
    path = cfg.save(tmp_path / "config.json")
    assert Config.load(path) == cfg
    assert json.loads(path.read_text())["kinematics"]["preset"] == "casa-gui"


def test_config_rejects_unknown_keys_and_bad_json(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"kinematics": {"presett": "who2021"}}')
    with pytest.raises(InputFileError, match="kinematics.presett"):
        Config.load(p)
    p.write_text('{"kinematics": ')
    with pytest.raises(InputFileError, match="not valid JSON"):
        Config.load(p)
    # missing keys take defaults
    p.write_text('{"track": {"stitch": false}}')
    cfg = Config.load(p)
    assert cfg.track.stitch is False and cfg.kinematics == Config().kinematics


def test_detections_geometry():
    d = Detections.from_centers([[10, 20], [30, 40]], [4, 6], conf=0.5)
    np.testing.assert_allclose(d.xyxy[0], [8, 17, 12, 23])
    np.testing.assert_allclose(d.centers, [[10, 20], [30, 40]])
    np.testing.assert_allclose(d.ltwh[1], [28, 37, 4, 6])
    assert len(d.select(d.conf > 0.4)) == 2 and len(Detections.empty()) == 0
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), [1, 2, 3], 0)


def test_make_tracks_normalises_and_rejects_duplicates():
    df = pd.DataFrame({"frame": [1, 0], "track_id": [3, 3], "x": [1.0, 2.0], "y": [0.0, 0.0], "note": ["b", "a"]})
    t = make_tracks(df)
    assert list(t.columns[:8]) == ["track_id", "frame", "x", "y", "w", "h", "conf", "cls"] and t.note.tolist() == ["a", "b"]
    with pytest.raises(InputFileError, match="track 3 has frame 0 twice"):
        make_tracks(pd.concat([df, df.iloc[[1]]]))
    with pytest.raises(InputFileError, match="missing column"):
        make_tracks(df.drop(columns="y"), source="my.csv")


def test_calibration_ranges():
    c = Calibration(0.5, 50.0, "estimated from head size")
    assert c.estimated and c.to_dict()["fps"] == 50.0
    with pytest.raises(ParameterError, match="um_per_px"):
        Calibration(-1, 50)
    with pytest.raises(ParameterError, match="fps"):
        Calibration(0.5, float("nan"))


def test_config_loads_the_config_block_of_a_summary_json(tmp_path):
    cfg = Config().replace("kinematics", preset="hamilton-thorne").replace("track", stitch=False)
    summary = {"software": "spermtrack", "command": "analyze", "status": "complete", "version": "0",
               "summary": {"n_graded": 3}, "config": cfg.to_dict()}
    p = tmp_path / "summary.json"
    p.write_text(json.dumps(summary))
    assert Config.load(p) == cfg
    # a result without a config block (a failed run) and a typo inside the block are named
    p.write_text(json.dumps({"software": "spermtrack", "command": "analyze", "status": "failed"}))
    with pytest.raises(InputFileError, match="analyze result file without a 'config' object"):
        Config.load(p)
    summary["config"]["kinematics"]["presett"] = "who2021"
    p.write_text(json.dumps(summary))
    with pytest.raises(InputFileError, match=r"config\.kinematics\.presett"):
        Config.load(p)


def test_config_load_refuses_a_folder_and_binary_files(tmp_path):
    with pytest.raises(InputFileError, match="folder"):
        Config.load(tmp_path)
    p = tmp_path / "c.json"
    p.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputFileError, match="not a text file"):
        Config.load(p)


# -- every stage parameter in the config, validated where it is declared (issue 13, item 5) -------

import dataclasses  # noqa: E402
import typing  # noqa: E402

from spermtrack.config import check_config  # noqa: E402

#: Config().to_dict() of earlier versions (git 580cfae: the first config; 1659f72: polarity and
#: the classifier added; a35a895: before the stage parameters were added). Results saved by them
#: must still load.
OLD_CONFIGS = {
    "580cfae": {"video": {"chunk_frames": 64, "fallback_fps": 50.0},
                "enhance": {"enabled": True, "window_px": 31, "scale_floor": 2.0, "z_clip": 8.0},
                "detect": {"detector": "blob", "weights": None, "conf_threshold": 0.25, "tile_px": 320,
                           "tile_overlap": 0.15, "full_frame_pass": False},
                "track": {"max_speed_px_frame": 12.0, "confirm_s": 0.06, "delete_after_s": 0.3, "stitch": True,
                          "reid_weights": None},
                "kinematics": {"preset": "who2021", "window": None, "min_duration_s": 0.5, "aggregate": "track",
                               "aggregate_window_s": 1.0},
                "morphology": {"segmenter": "classical", "weights": None, "crops_per_track": 5, "crop_px": 64}},
    "1659f72": {"video": {"chunk_frames": 64, "fallback_fps": 50.0},
                "enhance": {"enabled": True, "window_px": 31, "scale_floor": 2.0, "z_clip": 8.0},
                "detect": {"detector": "blob", "polarity": "auto", "classifier": "default", "threshold_z": None,
                           "head_length_px": None, "weights": None, "conf_threshold": 0.25, "tile_px": 320,
                           "tile_overlap": 0.15, "full_frame_pass": False},
                "track": {"max_speed_px_frame": 20.0, "confirm_s": 0.06, "delete_after_s": 0.5, "stitch": True,
                          "reid_weights": None},
                "kinematics": {"preset": "who2021", "window": None, "min_duration_s": 0.5, "aggregate": "track",
                               "aggregate_window_s": 1.0},
                "morphology": {"segmenter": "classical", "weights": None, "crops_per_track": 5, "crop_px": 64},
                "report": {"annotated_video": True, "trail_s": 1.0, "plots": True, "gallery_tracks": 24}},
}
OLD_CONFIGS["a35a895"] = {**OLD_CONFIGS["1659f72"], "sample": {"chamber_depth_um": None}}


def _sections(cfg_cls=Config, prefix=""):
    """``(key, section class)`` of every section of the tree, nested ones included."""
    for f in dataclasses.fields(cfg_cls):
        tp = typing.get_type_hints(cfg_cls)[f.name]
        if dataclasses.is_dataclass(tp):
            yield prefix + f.name, tp
            yield from _sections(tp, prefix + f.name + ".")


def _other_value(f, tp):
    """A valid value of field ``f`` (annotation ``tp``) that is not its default."""
    default = f.default
    if f.name == "preset":
        return "casa-gui"
    if f.name == "chamber_depth_um":  # range checked by check_config (kinematics.concentration)
        return 20.0
    args = typing.get_args(tp)
    if type(None) in args:
        (tp,) = [a for a in args if a is not type(None)]
    if typing.get_origin(tp) is typing.Literal:
        return next(c for c in typing.get_args(tp) if c != default)
    if tp is bool:
        return not default
    if tp is str:
        return "some/file.pt"
    lo, hi = f.metadata["range"]
    for v in ((lo + hi) / 2, (3 * lo + hi) / 4, lo):
        v = int(v) if tp is int else float(v)
        if v != default:
            return v


def _changed_tree() -> dict:
    """Config().to_dict() with every leaf key set to another valid value."""
    d = Config().to_dict()
    for key, cls in _sections():
        node = d
        for part in key.split("."):
            node = node[part]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not dataclasses.is_dataclass(hints[f.name]):
                node[f.name] = _other_value(f, hints[f.name])
    return d


def test_every_key_round_trips_and_reaches_its_stage(tmp_path):
    from spermtrack.detect.blob import BlobParams
    from spermtrack.pipeline.stages import blob_params, refine_params, tracker_params
    from spermtrack.tracker.refine import RefineParams

    d = _changed_tree()
    cfg = Config.from_dict(d)
    assert cfg.to_dict() == d
    assert Config.load(cfg.save(tmp_path / "c.json")) == cfg

    def leaves(tree, prefix=""):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)]

    default = dict(leaves(Config().to_dict()))
    changed = dict(leaves(d))
    assert changed.keys() == default.keys() and len(changed) == 88
    assert not [k for k in changed if changed[k] == default[k]]
    # every value reaches the stage parameter of the same name (or its documented older key)
    tp, rp, bp = tracker_params(cfg), refine_params(cfg), blob_params(cfg)
    for f in dataclasses.fields(tp):
        src = {"max_gate_px": "max_speed_px_frame", "max_age_s": "delete_after_s"}.get(f.name, f.name)
        assert getattr(tp, f.name) == d["track"][src], f.name
    assert dataclasses.asdict(rp) == d["track"]["refine"]
    assert dataclasses.asdict(bp) == {**d["detect"]["blob"], "polarity": d["detect"]["polarity"],
                                      "score_threshold": d["detect"]["threshold_z"],
                                      "head_length_px": d["detect"]["head_length_px"]}
    assert isinstance(rp, RefineParams) and isinstance(bp, BlobParams)


def test_the_default_config_gives_every_stage_its_default_parameters():
    from spermtrack.detect.blob import BlobParams
    from spermtrack.pipeline.stages import blob_params, make_detector, refine_params, tracker_params
    from spermtrack.tracker.associate import TrackerParams
    from spermtrack.tracker.refine import RefineParams

    cfg = Config()
    assert tracker_params(cfg) == TrackerParams()
    assert refine_params(cfg) == RefineParams()
    assert blob_params(cfg) == BlobParams()
    det = make_detector(cfg)
    assert det.params == BlobParams() and det.enhance is True


def test_sections_declare_what_the_stage_parameters_declare():
    """Same names, defaults and ranges in the config as in the stage's own dataclass."""
    from spermtrack.config import BlobConfig, RefineConfig, TrackConfig
    from spermtrack.detect.blob import BlobParams
    from spermtrack.errors import ParameterError
    from spermtrack.tracker.associate import TrackerParams
    from spermtrack.tracker.refine import RefineParams

    def declared(cls):
        return {f.name: (f.default, f.metadata.get("range")) for f in dataclasses.fields(cls)}

    assert declared(RefineConfig) == declared(RefineParams)
    blob = declared(BlobParams)
    assert declared(BlobConfig) == {k: v for k, v in blob.items()
                                    if k not in ("polarity", "score_threshold", "head_length_px")}
    detect = declared(type(Config().detect))
    assert detect["threshold_z"] == blob["score_threshold"] and detect["head_length_px"] == blob["head_length_px"]
    # TrackerParams checks its ranges in validate(): the config accepts nothing it refuses
    track = {f.name: f for f in dataclasses.fields(TrackConfig)}
    for f in dataclasses.fields(TrackerParams):
        if f.name not in track:
            assert f.name in ("max_gate_px", "max_age_s"), f.name
            continue
        assert track[f.name].default == f.default, f.name
        for v in track[f.name].metadata["range"]:
            try:
                TrackerParams(**{f.name: v}).validate()
            except ParameterError as err:
                raise AssertionError(f"track.{f.name}={v} passes the config but not TrackerParams: {err}")


@pytest.mark.parametrize("key,value,match", [
    ("detect.polarity", "sideways", r"config detect\.polarity='sideways' must be one of 'auto', 'bright', 'dark'"),
    ("detect.detector", "sahi", r"config detect\.detector"),
    ("kinematics.aggregate", "cell", r"config kinematics\.aggregate"),
    ("morphology.segmenter", "unet", r"config morphology\.segmenter"),
    ("track.refine.max_gap_s", -1, r"config track\.refine\.max_gap_s=-1 is outside the sensible range"),
    ("detect.blob.sperm_min_prob", 1.5, r"config detect\.blob\.sperm_min_prob=1\.5 is outside"),
    ("track.size_smoothing", float("nan"), r"config track\.size_smoothing=nan is outside"),
    ("video.fallback_fps", 50000.0, r"config video\.fallback_fps"),
    ("track.nn_budget", 2.5, r"config track\.nn_budget=2\.5 must be a whole number"),
    ("report.plots", "yes", r"config report\.plots='yes' must be true or false"),
    ("kinematics.window", "five", r"config kinematics\.window='five' must be a whole number or null"),
    ("detect.weights", 3, r"config detect\.weights=3 must be a string or null"),
    ("enhance.z_clip", True, r"config enhance\.z_clip=True must be a number"),
])
def test_a_bad_value_fails_naming_its_key(tmp_path, key, value, match):
    d: dict = {}
    node = d
    *path, name = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[name] = value
    with pytest.raises(ParameterError, match=match):
        Config.from_dict(d)
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputFileError, match=re.escape(str(p)) + ": " + match):
        Config.load(p)
    section, field_name = key.rsplit(".", 1)
    if "." not in section:
        with pytest.raises(ParameterError, match=match):
            Config().replace(section, **{field_name: value})


def test_every_declared_range_is_enforced():
    for key, cls in _sections():
        for f in dataclasses.fields(cls):
            rng = f.metadata.get("range")
            if rng is None:
                continue
            with pytest.raises(ParameterError, match=re.escape(f"config {key}.{f.name}=")):
                cls(**{f.name: rng[1] + 1})
            with pytest.raises(ParameterError, match=re.escape(f"config {key}.{f.name}=")):
                cls(**{f.name: rng[0] - 1})


def test_a_section_given_as_something_else_is_named(tmp_path):
    with pytest.raises(InputFileError, match="config key track.refine must be an object"):
        Config.from_dict({"track": {"refine": 3}})
    with pytest.raises(InputFileError, match=r"unknown config key\(s\) detect\.blob\.floor"):
        Config.from_dict({"detect": {"blob": {"floor": 3}}})
    with pytest.raises(ParameterError, match="config track must be a TrackConfig"):
        Config(track={"stitch": True})


@pytest.mark.parametrize("version", sorted(OLD_CONFIGS))
def test_configs_saved_by_earlier_versions_still_load(tmp_path, version):
    old = OLD_CONFIGS[version]
    cfg = Config.from_dict(old)
    for section, values in old.items():
        for k, v in values.items():
            assert getattr(getattr(cfg, section), k) == v
    # every key added since takes its default
    assert cfg.track.refine == Config().track.refine and cfg.detect.blob == Config().detect.blob
    if version != "580cfae":
        assert cfg == Config()
    # the config block of an old result folder
    p = tmp_path / "summary.json"
    p.write_text(json.dumps({"software": "spermtrack", "command": "analyze", "status": "complete", "config": old}))
    assert Config.load(p) == cfg


def test_check_config_names_the_registry_checks():
    assert check_config(Config()) == Config()
    with pytest.raises(ParameterError, match=r"config kinematics\.preset: unknown grading preset 'who1999'"):
        check_config(Config().replace("kinematics", preset="who1999"))
    with pytest.raises(ParameterError, match="chamber_depth_um"):
        check_config(Config().replace("sample", chamber_depth_um=5000.0))


def test_enhance_settings_reach_the_yolo_enhancer(monkeypatch):
    """``enhance.window_px``, ``scale_floor`` and ``z_clip`` are used: they build the YOLO
    detector's HLDNBM (the blob detector ignores them, as documented)."""
    import spermtrack.detect.factory as factory
    from spermtrack.pipeline.stages import make_detector

    seen = {}
    monkeypatch.setattr(factory, "make_detector", lambda kind, **kw: seen.update(kind=kind, **kw) or "det")
    cfg = (Config().replace("detect", detector="yolo", weights="w.pt", ios_threshold=0.4, imgsz=640)
           .replace("enhance", window_px=21, scale_floor=3.0, z_clip=4.0))
    assert make_detector(cfg) == "det"
    e = seen["enhancer"]
    assert seen["kind"] == "yolo" and (e.window_px, e.scale_floor, e.z_clip) == (21, 3.0, 4.0)
    assert seen["ios_threshold"] == 0.4 and seen["imgsz"] == 640 and seen["weights"] == "w.pt"
