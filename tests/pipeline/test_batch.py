"""Batch on Dask distributed: a local cluster of 2 workers on loopback; a failing video is
reported while the others finish; a rerun resumes (finished videos are skipped)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from spermtrack.synth import generate


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    folders = generate(root / "data", videos=2, seconds=1.0, cells=6, seed=2, width=320, height=240,
                       write_images=False, difficulty="easy")
    vids = [f / f"{f.name}.mp4" for f in folders]
    bad = root / "data" / "broken.mp4"
    bad.write_bytes(b"\x00" * 5000)
    return root, vids, bad


@pytest.mark.timeout(240)
def test_batch_on_a_two_worker_local_cluster_resumes_and_reports_failures(videos, capsys):
    from spermtrack.cli.main import main

    root, vids, bad = videos
    out = root / "out"
    args = ["batch", *map(str, vids), str(bad), "--out", str(out), "--workers", "2", "--um-per-px", "0.5",
            "--no-video"]
    rc = main(args)
    cap = capsys.readouterr()
    assert rc == 2 and "Traceback" not in cap.err
    assert "broken.mp4: FAILED" in cap.out and "2 analysed, 0 skipped, 1 failed" in cap.out
    table = pd.read_csv(out / "batch_summary.csv")
    assert list(table["status"]) == ["ok", "ok", "failed"]
    assert "not a readable video" in table["error"].iloc[2]
    for v in vids:
        meta = json.loads((out / v.stem / "summary.json").read_text())
        assert meta["status"] == "complete" and meta["calibration"]["um_per_px"] == 0.5
    # the same results as a plain analyze of one video (workers run the same code)
    from spermtrack.pipeline.analyze import analyze_video

    ref = analyze_video(vids[0], root / "ref", um_per_px=0.5, progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(out / vids[0].stem / "kinematics.csv"),
                                  pd.read_csv(ref.out_dir / "kinematics.csv"))

    # resume: the finished videos are skipped; an unfinished one (no summary.json) runs again
    (out / vids[1].stem / "summary.json").unlink()
    shutil.copy(vids[0], bad)  # the broken file was replaced by a good one
    rc = main(args)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    table = pd.read_csv(out / "batch_summary.csv")
    assert list(table["status"]) == ["skipped (already complete)", "ok", "ok"]
    assert "1 skipped" in cap.out
