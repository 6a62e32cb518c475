"""Results a lab can trust and file (issue 12): one run per folder swapped in atomically, files
readable under the user's umask, truncated recordings completed, concentration against the
phantom's truth, sample-level distributions, fields pooled into one sample."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest

from conftest import faststart_cut
from spermtrack.cli.main import main
from spermtrack.synth import generate


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    return generate(root, videos=1, seconds=1.6, cells=12, seed=11, width=320, height=240, write_images=False,
                    difficulty="easy")[0]


def _run(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _analyze(video, out, capsys, *extra):
    return _run(["analyze", str(video), "--out", str(out), "--um-per-px", "0.5", "--quiet", *extra], capsys)


def test_rerun_replaces_the_whole_folder_and_files_follow_the_umask(clip, tmp_path, capsys):
    video, out = clip / f"{clip.name}.mp4", tmp_path / "out"
    old = os.umask(0o022)
    try:
        rc, _, err = _analyze(video, out, capsys)
        assert rc == 0, err
        folder = out / clip.name
        assert (folder / "annotated.mp4").is_file() and not (out / f"{clip.name}.partial").exists()
        for p in folder.rglob("*"):
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))
        (folder / "stale-note.txt").write_text("from an older run")
        rc, _, err = _analyze(video, out, capsys, "--no-video")
        assert rc == 0, err
        # a rerun without the video leaves no annotated.mp4 (nor anything else) of the earlier run
        assert not (folder / "annotated.mp4").exists() and not (folder / "stale-note.txt").exists()
        assert json.loads((folder / "summary.json").read_text())["config"]["report"]["annotated_video"] is False
    finally:
        os.umask(old)


def test_a_failed_rerun_keeps_the_previous_result_and_a_named_partial(clip, tmp_path, capsys, monkeypatch):
    video, out = clip / f"{clip.name}.mp4", tmp_path / "out"
    rc, _, err = _analyze(video, out, capsys, "--no-video")
    assert rc == 0, err
    folder = out / clip.name
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    import spermtrack.report.build as build

    monkeypatch.setattr(build, "build_report_assets", boom)
    rc, _, err = _analyze(video, out, capsys, "--no-video", "--um-per-px", "0.6")
    assert rc == 2 and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    partial = out / f"{clip.name}.partial"
    meta = json.loads((partial / "summary.json").read_text())
    assert meta["status"] == "failed" and "no space left" in meta["error"].lower()
    assert (partial / "tracks.csv").is_file()  # what was computed is kept, clearly named
    monkeypatch.undo()
    rc, _, err = _analyze(video, out, capsys, "--no-video")
    assert rc == 0 and not partial.exists()


def test_truncated_faststart_mp4_completes_with_every_pass(clip, tmp_path, capsys):
    cut = faststart_cut(clip / f"{clip.name}.mp4", tmp_path / "cut.mp4")
    rc, out, err = _analyze(cut, tmp_path / "out", capsys)
    assert rc == 0, err
    folder = tmp_path / "out" / "cut"
    meta = json.loads((folder / "summary.json").read_text())
    assert meta["status"] == "complete" and meta["truncated"] is True
    assert 0 < meta["n_frames_analysed"] < 80
    assert (folder / "annotated.mp4").is_file() and (folder / "morphology.csv").is_file()
    tr = pd.read_csv(folder / "tracks.csv")
    assert tr["frame"].max() < meta["n_frames_analysed"]
    assert "TRUNCATED" in err


def test_tables_carry_units_bases_and_context(clip, tmp_path, capsys):
    rc, _, err = _analyze(clip / f"{clip.name}.mp4", tmp_path / "out", capsys, "--no-video",
                          "--sample-id", "S-42", "--patient-id", "P-7", "--chamber-depth-um", "20")
    assert rc == 0, err
    folder = tmp_path / "out" / clip.name
    meta = json.loads((folder / "summary.json").read_text())
    assert meta["sample_id"] == "S-42" and meta["patient_id"] == "P-7"
    tr = pd.read_csv(folder / "tracks.csv")
    np.testing.assert_allclose(tr["x_um"], tr["x_px"] * 0.5, atol=1e-3)
    np.testing.assert_allclose(tr["time_s"], tr["frame"] / 50.0, atol=1e-4)
    assert (tr["x_px"] == tr["x"]).all() and tr["frame"].min() == 0
    mot = np.loadtxt(folder / "tracks_mot.txt", delimiter=",")
    assert mot[:, 0].min() == 1  # MOT is 1-based, tracks.csv 0-based (documented in outputs_columns)
    assert "1-based" in meta["outputs_columns"]["tracks_csv"]["frame"]
    summ = pd.read_csv(folder / "summary.csv", dtype=str)
    grades = summ[summ["aggregate"] == "track"]
    assert (grades["fps"].astype(float) == 50.0).all() and (grades["um_per_px_source"] == "user").all()
    assert (grades["sample_id"] == "S-42").all() and (grades["patient_id"] == "P-7").all()
    assert not grades["n"].str.endswith(".0").any()  # counts of cells are written as integers
    assert float(grades["concentration_million_per_ml"].iloc[0]) == pytest.approx(
        meta["concentration_million_per_ml"], abs=0.01)
    dist = summ[summ["aggregate"] == "distribution"]
    assert {"vcl_um_s", "lin_pct", "alh_mean_um", "bcf_hz"} <= set(dist["quantity"])
    assert set(dist["cells"]) == {"all", "motile"}
    kd = meta["kinematics_distribution"]
    kin = pd.read_csv(folder / "kinematics.csv")
    graded = kin[kin["grade"] != "not_graded"]
    assert kd["vcl_um_s"]["all"]["n"] == len(graded)
    # the JSON keeps full precision of the per-track values
    assert kd["vcl_um_s"]["all"]["median"] == pytest.approx(graded["vcl_um_s"].median(), abs=0.06)
    assert kd["lin"] == kd["lin_pct"] and kd["alh_um"] == kd["alh_mean_um"]
    imm = kin[kin["grade"] == "immotile"]
    assert imm[["alh_mean_um", "bcf_hz"]].isna().all().all()


def test_concentration_is_absent_without_a_chamber_depth(clip, tmp_path, capsys):
    rc, _, err = _analyze(clip / f"{clip.name}.mp4", tmp_path / "out", capsys, "--no-video")
    assert rc == 0, err
    meta = json.loads((tmp_path / "out" / clip.name / "summary.json").read_text())
    assert "concentration_million_per_ml" not in meta and "concentration" not in meta
    rc, _, err = _analyze(clip / f"{clip.name}.mp4", tmp_path / "out2", capsys, "--chamber-depth-um", "-3")
    assert rc == 2 and "chamber_depth_um" in err


@pytest.mark.parametrize("difficulty,cells,seed", [("medium", 30, 1), ("hard", 30, 2)])
def test_concentration_within_10pct_of_the_phantom_truth(tmp_path, difficulty, cells, seed):
    from spermtrack.pipeline.analyze import analyze_video
    from spermtrack.config import Config

    f = generate(tmp_path, videos=1, seconds=2.0, cells=cells, seed=seed, write_images=False,
                 difficulty=difficulty)[0]
    cfg = Config().replace("sample", chamber_depth_um=20.0).replace("report", annotated_video=False, plots=False)
    r = analyze_video(f / f"{f.name}.mp4", tmp_path / "out", config=cfg, um_per_px=0.5, progress=False, truth=f,
                      echo=lambda s: None)
    c = r.meta["truth_check"]["concentration"]
    assert abs(c["rel_error_pct"]) <= 10, c
    # the truth's own number: true heads in view / the same field volume
    assert c["truth_million_per_ml"] == pytest.approx(c["true_mean_heads_in_view"] / (640 * 480 * 0.25 * 20) * 1e6,
                                                      rel=1e-3)


def test_kinematics_distribution_matches_numpy():
    from spermtrack.kinematics.summary import kinematics_distribution

    rng = np.random.default_rng(0)
    grade = np.array(["rapid_progressive", "immotile", "non_progressive", "not_graded", "slow_progressive"] * 8)
    vcl = rng.uniform(0, 150, len(grade))
    bcf = np.where(grade == "immotile", np.nan, rng.uniform(5, 20, len(grade)))
    m = pd.DataFrame({"track_id": range(len(grade)), "grade": grade, "vcl_um_s": vcl, "bcf_hz": bcf})
    d = kinematics_distribution(m)
    g = grade != "not_graded"
    mot = g & (grade != "immotile")
    assert d["vcl_um_s"]["all"]["n"] == g.sum() and d["vcl_um_s"]["motile"]["n"] == mot.sum()
    assert d["vcl_um_s"]["all"]["mean"] == pytest.approx(vcl[g].mean())
    assert d["vcl_um_s"]["all"]["sd"] == pytest.approx(vcl[g].std(ddof=1))
    assert d["vcl_um_s"]["motile"]["q25"] == pytest.approx(np.percentile(vcl[mot], 25))
    assert d["bcf_hz"]["all"]["n"] == mot.sum()  # immotile cells have no BCF
    empty = kinematics_distribution(m.iloc[:0])
    assert empty["vcl_um_s"]["all"] == {"n": 0, "mean": None, "sd": None, "median": None, "q25": None, "q75": None}


def test_fields_pool_into_one_sample(tmp_path, capsys):
    root = tmp_path / "fields"
    vids = [f / f"{f.name}.mp4" for f in generate(root, videos=2, seconds=1.6, cells=10, seed=3, width=320,
                                                   height=240, write_images=False, difficulty="easy")]
    out = tmp_path / "out"
    rc, text, err = _analyze(vids[0], out, capsys, *[str(v) for v in vids[1:]], "--no-video", "--sample", "S1",
                             "--chamber-depth-um", "20", "--patient-id", "P9")
    assert rc == 0, err
    fields = [json.loads((out / v.stem / "summary.json").read_text()) for v in vids]
    pooled = json.loads((out / "S1" / "sample_summary.json").read_text())
    assert pooled["n_fields"] == 2 and pooled["sample_id"] == "S1" and pooled["patient_id"] == "P9"
    assert pooled["n_graded"] == sum(f["summary"]["track"]["n_graded"] for f in fields)
    assert pooled["meets_who_count"] is False and any("200" in w for w in pooled["warnings"])
    frames = [f["concentration"]["n_frames"] for f in fields]
    heads = [f["concentration"]["mean_heads_in_view"] for f in fields]
    vol = fields[0]["concentration"]["field_area_um2"] * 20
    assert pooled["concentration_million_per_ml"] == pytest.approx(np.dot(frames, heads) / sum(frames) / vol * 1e6)
    # pooled progressive % = all fields' progressive cells / all graded cells
    prog = sum(next(r["count"] for r in f["summary"]["track"]["table"] if r["quantity"] == "progressive")
               for f in fields)
    row = next(r for r in pooled["summary"]["track"]["table"] if r["quantity"] == "progressive")
    assert row["pct"] == pytest.approx(100 * prog / pooled["n_graded"], abs=0.5)
    assert row["ci95_low_pct"] < row["pct"] < row["ci95_high_pct"]
    ms = pooled["morphology_summary"]
    assert ms["n_cells"] == sum(len(pd.read_csv(out / v.stem / "morphology.csv")) for v in vids)
    assert 0 <= ms["normal_forms_pct"]["k"] <= ms["normal_forms_pct"]["n"] <= ms["n_cells"]
    assert (out / "S1" / "sample_summary.csv").is_file()
    assert (out / "S1" / "report.pdf").read_bytes()[:4] == b"%PDF"
    assert "sample S1: 2 field(s) pooled" in text
    # a sample named like one of its fields is refused before any work
    rc, _, err = _analyze(vids[0], tmp_path / "o2", capsys, "--sample", vids[0].stem)
    assert rc == 2 and "--sample" in err


def test_a_field_without_cells_is_an_empty_but_valid_result(tmp_path, capsys):
    """Decision (README): no cell found is a result (an azoospermic field is one), not an error:
    exit 0, loud warnings, no percentages, standard JSON (no NaN), concentration 0."""
    from spermtrack.io.video import VideoWriter

    blank = tmp_path / "blank.mp4"
    with VideoWriter(blank, 50, 320, 240) as w:
        for _ in range(40):
            w.write(np.full((240, 320, 3), 120, np.uint8))
    rc, out, err = _analyze(blank, tmp_path / "out", capsys, "--no-video", "--chamber-depth-um", "20")
    assert rc == 0 and "no sperm cell was graded" in out and "zero sperm heads" in err

    def no_nan(tok):
        raise AssertionError(f"non-standard JSON constant {tok}")

    meta = json.loads((tmp_path / "out" / "blank" / "summary.json").read_text(), parse_constant=no_nan)
    assert meta["summary"]["track"]["n_graded"] == 0 and meta["concentration_million_per_ml"] == 0.0
    assert any("zero sperm heads" in w for w in meta["warnings"])


def test_morphology_summary_counts_findings_over_measured_cells():
    from spermtrack.morphology.morphometry import morphology_summary

    na = pd.NA
    t = pd.DataFrame({"n_crops": [3, 3, 3, 0],
                      "flag_small_head": pd.array([True, False, False, na], dtype="boolean"),
                      "flag_bent_neck": pd.array([False, False, na, na], dtype="boolean"),
                      "flag_short_tail": pd.array([False, False, True, na], dtype="boolean"),
                      "flag_coiled_tail": pd.array([False, na, False, na], dtype="boolean")})
    s = morphology_summary(t)
    assert s["head_defect_pct"]["k"] == 1 and s["head_defect_pct"]["n"] == 3
    assert s["neck_midpiece_defect_pct"]["n"] == 2 and s["tail_defect_pct"]["k"] == 1
    # normal: all three parts measured (rows 0 and 1) and no finding (row 1 only)
    assert (s["normal_forms_pct"]["k"], s["normal_forms_pct"]["n"]) == (1, 2)
    assert morphology_summary(None) is None
