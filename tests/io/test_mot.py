"""MOTChallenge I/O: 1-based frames and left/top boxes in files, 0-based frames and centres in
the Tracks table; exact round trips; malformed files name the file and the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.io.mot import (MOT_COLUMNS, read_mot, read_mot_detections, write_mot,
                               write_mot_detections)
from spermtrack.types import EDGE_OFFSET_PX, TRACK_COLUMNS, Detections, make_tracks

SHARED = Path(__file__).resolve().parents[3] / "shared"


def test_line_converts_to_a_tracks_row(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("3,7,10,20,4,6,0.9,-1,-1,-1\n1,7,11,21,4,6,1,-1,-1,-1\n")
    df = read_mot(p)
    assert tuple(df.columns) == TRACK_COLUMNS
    # edge coordinates in the file, pixel-centre coordinates in the table (half a pixel less)
    assert df.to_dict("records") == [
        {"track_id": 7, "frame": 0, "x": 12.5, "y": 23.5, "w": 4.0, "h": 6.0, "conf": 1.0, "cls": 0},
        {"track_id": 7, "frame": 2, "x": 11.5, "y": 22.5, "w": 4.0, "h": 6.0, "conf": 0.9, "cls": 0},
    ]
    assert MOT_COLUMNS[:2] == ("frame", "id")


def test_whitespace_six_columns_and_extra_columns(tmp_path):
    p = tmp_path / "ws.txt"
    p.write_text("# comment\n\n1 2 0 0 10 10\n2   2 1 1 10 10\n")
    df = read_mot(p)
    assert list(df.frame) == [0, 1] and list(df.conf) == [1.0, 1.0] and list(df.x) == [4.5, 5.5]
    q = tmp_path / "mot16gt.txt"  # MOT16 ground truth: conf, class, visibility after the box
    q.write_text("1,1,0,0,2,2,1,7,0.5\n1,2,5,5,2,2,0,1,1.0\n")
    df = read_mot(q)
    assert list(df.cls) == [0, 0] and list(df.conf) == [1.0, 0.0]
    assert list(read_mot(q, min_conf=0.5).track_id) == [1]
    r = tmp_path / "ragged.txt"  # a line with 6 columns in a 10-column file: conf defaults to 1
    r.write_text("1,1,0,0,2,2,0.5,-1,-1,-1\n2,1,0,0,2,2\n")
    assert list(read_mot(r).conf) == [0.5, 1.0]


@pytest.mark.parametrize("text,line,msg", [
    ("1,1,0,0,2,2\n2,1,0,0,2\n", 2, "at least 6"),
    ("1,1,0,0,2,2\n0,1,0,0,2,2\n", 2, "1-based"),
    ("1,1,0,0,2,2\n2,1,0,abc,2,2\n", 2, "not a number"),
    ("1,1,0,0,2,2\n2,1,0,0,2,2\n3.5,1,0,0,2,2\n", 3, "whole numbers"),
    ("1,1,0,0,-2,2\n", 1, "negative"),
    ("1,1,0,nan,2,2\n", 1, "NaN"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, msg):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(InputFileError, match=msg) as info:
        read_mot(p)
    assert info.value.line == line and str(p) in str(info.value)


def test_other_file_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_mot(tmp_path / "missing.txt")
    p = tmp_path / "dets.txt"
    p.write_text("1,-1,0,0,2,2,0.5\n1,-1,5,5,2,2,0.7\n")
    with pytest.raises(InputFileError, match="read_mot_detections"):
        read_mot(p)
    d = tmp_path / "dup.txt"
    d.write_text("1,4,0,0,2,2\n1,4,3,3,2,2\n")
    with pytest.raises(InputFileError, match="track 4 has frame 0 twice"):
        read_mot(d)
    e = tmp_path / "empty.txt"
    e.write_text("")
    assert len(read_mot(e)) == 0 and tuple(read_mot(e).columns) == TRACK_COLUMNS


def _tracks(rng, n_tracks=5, n_frames=20) -> pd.DataFrame:
    rows = [{"track_id": t, "frame": f, "x": rng.uniform(0, 640), "y": rng.uniform(0, 480),
             "w": rng.uniform(5, 30), "h": rng.uniform(5, 30), "conf": rng.uniform(0, 1)}
            for t in range(1, n_tracks + 1) for f in range(3 * t, 3 * t + n_frames)]
    return make_tracks(pd.DataFrame(rows).round(4))


def test_tracks_round_trip(tmp_path):
    t = _tracks(np.random.default_rng(0))
    out = tmp_path / "sub" / "tracks.txt"
    write_mot(out, t)
    first = out.read_text().splitlines()[0].split(",")
    assert first[:2] == ["4", "1"]  # track 1 starts at 0-based frame 3: file frame 4
    assert first[-3:] == ["-1", "-1", "-1"] and len(first) == 10
    back = read_mot(out)
    pd.testing.assert_frame_equal(back, t, atol=2e-4, rtol=0)
    assert [p.name for p in out.parent.iterdir()] == ["tracks.txt"]  # no temporary file left


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(-3, 10_000),
                          st.floats(0, 2000, allow_nan=False), st.floats(0, 2000, allow_nan=False),
                          st.floats(0, 100, allow_nan=False), st.floats(0, 100, allow_nan=False)),
                min_size=1, max_size=20, unique_by=lambda r: (r[0], r[1])))
def test_round_trip_property(tmp_path_factory, rows):
    df = make_tracks(pd.DataFrame(rows, columns=["frame", "track_id", "x", "y", "w", "h"]))
    p = tmp_path_factory.mktemp("rt") / "t.txt"
    write_mot(p, df)
    back = read_mot(p)
    assert list(back.frame) == list(df.frame) and list(back.track_id) == list(df.track_id)
    # 4 decimals in the file: left/top and the halved size each round by <= 5e-5
    np.testing.assert_allclose(back[["x", "y", "w", "h"]], df[["x", "y", "w", "h"]], atol=2e-4)


def test_missing_box_size(tmp_path):
    t = make_tracks(pd.DataFrame({"track_id": [1, 1], "frame": [0, 1], "x": [10.0, 11.0],
                                  "y": [5.0, 5.0]}))
    with pytest.raises(ParameterError, match="default_size_px"):
        write_mot(tmp_path / "t.txt", t)
    assert not (tmp_path / "t.txt").exists()
    write_mot(tmp_path / "t.txt", t, default_size_px=8)
    assert (tmp_path / "t.txt").read_text().splitlines() == ["1,1,6.5,1.5,8,8,1,-1,-1,-1",
                                                           "2,1,7.5,1.5,8,8,1,-1,-1,-1"]


def test_detections_round_trip(tmp_path):
    dets = {0: Detections.from_centers([[10, 10], [50.5, 60.25]], [8, 6], conf=[0.9, 0.5]),
            7: Detections.from_centers([[100, 100]], [4, 4], conf=0.25),
            3: Detections.empty()}
    p = tmp_path / "det.txt"
    write_mot_detections(p, dets)
    assert p.read_text().splitlines()[0] == "1,-1,6.5,7.5,8,6,0.9,-1,-1,-1"  # w=8, h=6, edge coordinates
    back = read_mot_detections(p)
    assert sorted(back) == [0, 7]  # a frame with no line has no key
    for f in back:
        np.testing.assert_allclose(back[f].xyxy, dets[f].xyxy, atol=1e-4)
        np.testing.assert_allclose(back[f].conf, dets[f].conf, atol=1e-6)
        assert (back[f].cls == 0).all()
    assert sorted(read_mot_detections(p, min_conf=0.8)) == [0]


def test_visem_video24_gt():
    path = SHARED / "data" / "visem" / "video24_gt_mot.txt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    df = read_mot(path)
    assert len(df) == 97_476 and df.track_id.nunique() == 111 and df.frame.nunique() == 1470
    assert df.frame.min() == 0 and df.frame.max() == 1469 and (df.cls == 0).all()
    first = path.read_text().splitlines()[0].split(",")  # "1,1,45,289,24,24,1,1,1"
    row = df[(df.track_id == int(first[1])) & (df.frame == int(first[0]) - 1)].iloc[0]
    assert row.x == float(first[2]) + float(first[4]) / 2 - EDGE_OFFSET_PX
    assert row.y == float(first[3]) + float(first[5]) / 2 - EDGE_OFFSET_PX


def test_mot_challenge_reference_files():
    base = SHARED / "data" / "mot" / "TUD-Campus"
    if not base.exists():
        pytest.skip(f"{base} not present")
    gt = read_mot(base / "gt.txt")
    n_lines = sum(1 for ln in (base / "gt.txt").read_text().splitlines() if ln.strip())
    assert len(gt) == n_lines and gt.track_id.nunique() == 8  # 8 GT ids per the README
    test = read_mot(base / "test.txt")
    assert (test.conf == -1).all() and len(read_mot(base / "test.txt", min_conf=0)) == 0
