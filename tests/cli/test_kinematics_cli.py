"""`spermtrack kinematics`: CSV and MOT input, the three outputs, one-line errors."""

import json

import numpy as np
import pandas as pd
import pytest

from spermtrack.cli.main import main
from spermtrack.io.mot import write_mot


def _swimmers(n_tracks=6, n=120):
    rows = []
    for tid in range(1, n_tracks + 1):
        f = np.arange(n)
        speed = 0.0 if tid % 3 == 0 else 0.4 * tid  # px per frame; every third cell still
        rows.append(pd.DataFrame({"track_id": tid, "frame": f, "x": 50 + speed * f, "y": 40.0 + tid,
                                  "w": 9.0, "h": 9.0}))
    return pd.concat(rows, ignore_index=True)


def test_csv_input_writes_table_sidecar_and_summary(tmp_path, capsys):
    src = tmp_path / "tracks.csv"
    _swimmers()[["track_id", "frame", "x", "y"]].sample(frac=1, random_state=0).to_csv(src, index=False)
    out = tmp_path / "res" / "kin.csv"
    rc = main(["kinematics", str(src), "--fps", "50", "--um-per-px", "0.5", "--out", str(out),
               "--exclude-tracks", "6"])
    assert rc == 0
    table = pd.read_csv(out)
    assert list(table.columns)[:4] == ["track_id", "first_frame", "last_frame", "n_points"]
    assert list(table["track_id"]) == [1, 2, 3, 4, 5]
    # 0.4 px/frame * 0.5 um/px * 50 fps = 10 um/s, rounded to 0.1 in the CSV; straight but below
    # the 18 um/s technicians call progressive (who2021; who2021-literal calls it slow progressive)
    assert table.loc[0, "vcl_um_s"] == 10.0 and table.loc[0, "grade"] == "non_progressive"
    assert table.loc[1, "grade"] == "slow_progressive"  # 20 um/s straight: progressive, progression < 25
    assert table.loc[2, "grade"] == "immotile"
    assert (table["lin_pct"].dropna() == table["lin_pct"].dropna().round(0)).all()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["um_per_px"] == 0.5 and meta["um_per_px_source"] == "user" and meta["fps"] == 50
    assert meta["window_points"] == 5 and meta["preset"] == "who2021" and meta["excluded_tracks"] == [6]
    summary = pd.read_csv(tmp_path / "res" / "kin_summary.csv").set_index("quantity")
    assert summary.loc["immotile", "pct"] == pytest.approx(20.0)  # track 3 of 5
    assert "graded tracks" in capsys.readouterr().out


def test_mot_input_and_estimated_scale(tmp_path, capsys):
    src = tmp_path / "gt.txt"
    write_mot(src, _swimmers())
    out = tmp_path / "k.csv"
    rc = main(["kinematics", str(src), "--fps", "50", "--um-per-px", "estimate", "--out", str(out),
               "--preset", "casa-gui", "--aggregate", "window", "--window-s", "0.14"])
    assert rc == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["input_format"] == "mot" and meta["um_per_px_source"] == "estimated from head size"
    assert meta["um_per_px"] == pytest.approx(0.5) and meta["window_points"] == 7
    assert meta["aggregate"] == "window" and meta["preset"] == "casa-gui"
    assert "ESTIMATED" in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("track_id,frame,x\n1,0,3\n")
    assert main(["kinematics", str(bad), "--fps", "50", "--um-per-px", "0.5", "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "y" in err and len(err.strip().splitlines()) == 1
    dup = tmp_path / "dup.csv"
    dup.write_text("track_id,frame,x,y\n4,0,1,1\n4,0,2,2\n")
    assert main(["kinematics", str(dup), "--fps", "50", "--um-per-px", "0.5", "--out", str(tmp_path / "o.csv")]) == 2
    assert "track 4 has frame 0 twice" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
