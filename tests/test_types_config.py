"""Shared types and the config tree."""

import json

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
