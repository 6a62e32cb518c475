"""`spermtrack visem --tracks gt`: the grader alone on the dataset's own tracks of real video 11,
checked against an independent computation, the bias row, and that no video is needed."""

import shutil

import pandas as pd
import pytest

from conftest import shared_file
from spermtrack.cli.main import main

QUANTITIES = ("progressive", "non_progressive", "immotile")
MODES = ("track", "window")


def _run(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def video11():
    return shared_file("data", "visem", "Train", "11")


@pytest.fixture
def gt_labels_only(video11, tmp_path):
    """A copy of video 11's folder with labels/ and labels_ftid/ only: no 11.mp4 at all."""
    folder = tmp_path / "data" / "Train" / "11"
    for sub in ("labels", "labels_ftid"):
        shutil.copytree(video11 / sub, folder / sub)
    assert not (folder / "11.mp4").exists()
    return folder


def _expected(folder, fps, um_per_px=0.5):
    """Percentages per mode from the public kinematics API, on the sperm tracks (class 0)."""
    from spermtrack.config import Config
    from spermtrack.io.visem import read_visem_video
    from spermtrack.kinematics import compute_track_metrics, summarize_motility

    k = Config().kinematics
    tracks = read_visem_video(folder, fps=fps).tracks
    tracks = tracks[tracks["cls"] == 0]
    metrics = compute_track_metrics(tracks, fps, um_per_px, window=k.window, min_duration_s=k.min_duration_s,
                                    preset=k.preset)
    out = {}
    for mode in MODES:
        s = summarize_motility(metrics, aggregate=mode, window_s=k.aggregate_window_s, fps=fps)
        out[mode] = {r["quantity"]: r["pct"] for r in s.table}
    return out, metrics


def _reference(vid):
    clin = pd.read_csv(shared_file("data", "visem", "visem_tracking_20_motility.csv"))
    row = clin[clin["ID"].astype(str) == vid].iloc[0]
    return {q: float(row[f"{q}_pct"]) for q in QUANTITIES}


def test_gt_mode_grades_video_11_against_the_lab(gt_labels_only, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = _run(["visem", str(gt_labels_only.parent), "--out", str(out), "--tracks", "gt",
                            "--fps", "50"], capsys)
    assert rc == 0, err
    assert "Traceback" not in err
    df = pd.read_csv(out / "visem_results.csv", dtype={"video": str})
    rows = df.set_index("video")
    assert {"11", "MAE / mean", "bias"} <= set(rows.index)
    r = rows.loc["11"]
    # grader only: no tracking scores
    assert not {"HOTA", "IDF1", "MOTA", "IDSW"} & set(df.columns)
    assert r["reference"] == "clinical" and r["um_per_px"] == 0.5 and r["um_per_px_source"] == "default"
    assert "um_per_px 0.5 (default" in stdout
    assert r["n_tracks"] == 55 and 0 < r["n_graded"] <= 55

    expected, metrics = _expected(gt_labels_only, 50.0)
    ref = _reference("11")
    for mode in MODES:
        assert sum(r[f"{mode}_{q}_pct"] for q in QUANTITIES) == pytest.approx(100, abs=0.2)
        for q in QUANTITIES:
            assert r[f"{mode}_{q}_pct"] == pytest.approx(expected[mode][q], abs=0.051)
            assert r[f"ref_{q}_pct"] == pytest.approx(ref[q])
            assert r[f"{mode}_{q}_abs_err"] == pytest.approx(abs(expected[mode][q] - ref[q]), abs=0.051)
            assert r[f"{mode}_{q}_err"] == pytest.approx(expected[mode][q] - ref[q], abs=0.051)
            # one video: the MAE row is its |error| and the bias row its signed error
            assert rows.loc["MAE / mean", f"{mode}_{q}_abs_err"] == pytest.approx(r[f"{mode}_{q}_abs_err"])
            assert rows.loc["bias", f"{mode}_{q}_err"] == pytest.approx(r[f"{mode}_{q}_err"])
        assert f"{mode:<6}: MAE PR" in stdout
    assert "bias (pred - ref) PR" in stdout

    # per-track graded metrics of the video
    kin = pd.read_csv(out / "11" / "gt_kinematics.csv")
    assert len(kin) == len(metrics) == 55
    assert kin["track_id"].tolist() == metrics["track_id"].tolist()
    assert kin["grade"].tolist() == metrics["grade"].astype(str).tolist()
    assert (out / "visem_results.md").read_text().count("| bias |") == 1


def test_gt_mode_on_the_shared_copy_uses_the_container_fps(video11, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = _run(["visem", str(video11.parent), "--out", str(out), "--tracks", "gt",
                            "--um-per-px", "0.5"], capsys)
    assert rc == 0, err
    rows = pd.read_csv(out / "visem_results.csv", dtype={"video": str}).set_index("video")
    assert rows.loc["11", "um_per_px_source"] == "user" and rows.loc["11", "n_frames"] == 1470
    assert not (out / "11" / "summary.json").exists()  # nothing was analysed
    expected, _ = _expected(video11, 50.0)
    for mode in MODES:
        for q in QUANTITIES:
            assert rows.loc["11", f"{mode}_{q}_pct"] == pytest.approx(expected[mode][q], abs=0.051)


def test_bad_tracks_value_is_a_usage_error(tmp_path, capsys):
    rc, _, err = _run(["visem", str(tmp_path), "--out", str(tmp_path / "o"), "--tracks", "both"], capsys)
    assert rc == 2
    assert "Usage: spermtrack visem" in err
    assert "Invalid value for '--tracks'" in err and "'both' is not one of 'engine', 'gt'" in err
    assert not (tmp_path / "o").exists()


def test_help_documents_tracks_option():
    from click.testing import CliRunner

    from spermtrack.cli.main import cli

    out = CliRunner().invoke(cli, ["visem", "--help"]).output
    assert "--tracks [engine|gt]" in out and "no video decoded" in out


def test_engine_mode_still_needs_the_video(gt_labels_only, tmp_path, capsys):
    rc, _, err = _run(["visem", str(gt_labels_only.parent), "--out", str(tmp_path / "o"), "--um-per-px", "0.5"],
                      capsys)
    assert rc == 2 and "has no video file" in err
