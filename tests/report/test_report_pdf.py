"""The printable report: a valid one-to-two-page A4 PDF of one video or of a pooled sample, that
prints what a lab files (ids, calibration, grades against WHO, distributions, warnings) and
tolerates a summary.json without the newer keys."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from spermtrack.report.pdf import report_blocks, report_text, write_report_pdf


def _pages(path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", path.read_bytes()))


def _metrics(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    grades = ["rapid_progressive"] * 12 + ["slow_progressive"] * 4 + ["non_progressive"] * 6 + ["immotile"] * 8 \
        + ["not_graded"] * 3
    n = len(grades)
    motile = np.isin(grades, ["rapid_progressive", "slow_progressive", "non_progressive"])
    m = pd.DataFrame({
        "track_id": np.arange(1, n + 1), "duration_s": rng.uniform(0.2, 3, n),
        "vcl_um_s": np.where(motile, rng.uniform(40, 120, n), rng.uniform(5, 15, n)),
        "vsl_um_s": rng.uniform(0, 40, n), "vap_um_s": rng.uniform(5, 60, n),
        "lin_pct": rng.uniform(5, 90, n), "str_pct": rng.uniform(20, 99, n), "wob_pct": rng.uniform(30, 90, n),
        "alh_mean_um": np.where(motile, rng.uniform(1, 5, n), np.nan),
        "bcf_hz": np.where(motile, rng.uniform(5, 30, n), np.nan), "mad_deg": rng.uniform(10, 90, n),
        "grade": grades, "hyperactivated": False,
    })
    m.attrs.update(fps=50.0, um_per_px=0.5)
    return m


def _meta(metrics: pd.DataFrame, **extra) -> dict:
    from spermtrack.kinematics.summary import summarize_motility

    s = summarize_motility(metrics)
    meta = {
        "created": "2026-03-01T10:00:00+01:00",
        "video": {"name": "run3.mp4", "path": "/data/run3.mp4", "n_frames_analysed": 200, "duration_s": 4.0},
        "calibration": {"fps": 50.0, "fps_source": "container", "um_per_px": 0.5, "um_per_px_source": "user",
                        "um_per_px_estimated": False},
        "summary": {"track": s.to_dict()}, "primary_aggregate": "track",
        "kinematics": {"preset": "who2021", "min_duration_s": 0.5},
        "warnings": ["only 30 graded tracks; WHO asks for at least 200 cells"], "truncated": False,
        "versions": {"spermtrack": "9.9.9"},
    }
    meta.update(extra)
    return meta


def test_pdf_is_valid_and_prints_the_sample(tmp_path):
    m = _metrics()
    meta = _meta(m, sample_id="S-0042", patient_id="P-17", concentration_million_per_ml=43.25,
                 concentration={"chamber_depth_um": 20.0, "field_area_um2": 76800.0, "mean_heads_in_view": 33.2,
                                "counting_rule": "heads whose centre is in the frame, averaged over frames"})
    out = write_report_pdf(tmp_path / "report.pdf", meta, m, {})
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    assert 1 <= _pages(out) <= 2
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]  # no temporary file left beside it
    text = report_text(meta, m)
    for s in ("S-0042", "P-17", "run3.mp4", "2026-03-01", "50 fps (source: container)", "0.5 um/px (source: user)",
              "43.25 million / mL", "chamber depth (um): 20", "Counting rule: heads whose centre",
              "VCL (um/s)", "BCF (Hz)", "ALH mean (um)", "only 30 graded tracks", "spermtrack 9.9.9"):
        assert s in text, s
    # the grade table: PR and total motility against the WHO 6th-edition limits, with their status
    pr = next(r for r in meta["summary"]["track"]["table"] if r["quantity"] == "progressive")
    assert f"PR (a + b) | {pr['pct']:.1f} | {pr['ci95_low_pct']:.1f} – {pr['ci95_high_pct']:.1f}" in text
    assert re.search(r"PR \(a \+ b\) \|.*\| 30 \| (above|below|inconclusive)", text)
    assert re.search(r"total motility \(a \+ b \+ c\) \|.*\| 42 \| (above|below|inconclusive)", text)
    assert "n = 30 (3 tracks too short to grade)" in text and "200-cell check: NOT MET" in text
    assert any(b.kind == "figure" for b in report_blocks(meta, m))  # box plots drawn from the metrics


def test_distribution_table_from_the_metrics_is_right(tmp_path):
    """Without summary.json's kinematics_distribution the table is computed from the per-track
    table: all = graded tracks, motile = a + b + c; immotile cells have no BCF."""
    m = _metrics(3)
    text = report_text(_meta(m), m)
    graded = m[m.grade != "not_graded"]
    mot = m[m.grade.isin(["rapid_progressive", "slow_progressive", "non_progressive"])]
    v, w = graded.vcl_um_s, mot.vcl_um_s
    assert (f"VCL (um/s) | {len(v)} | {v.mean():.1f} | {v.std():.1f} | {v.median():.1f} | "
            f"{len(w)} | {w.mean():.1f} | {w.std():.1f} | {w.median():.1f}") in text
    assert f"BCF (Hz) | {len(mot)} |" in text  # immotile cells carry no BCF


def test_summary_json_distribution_is_used_and_nulls_tolerated():
    dist = {"vcl_um_s": {"all": {"n": 40, "mean": 61.23, "sd": 20.0, "median": 58.0, "q25": 40.0, "q75": 80.0},
                         "motile": {"n": 0, "mean": None, "sd": None, "median": None, "q25": None, "q75": None}},
            "lin": {"all": {"n": 40, "mean": 0.456, "sd": 0.1, "median": 0.44}}}
    text = report_text(_meta(_metrics(), kinematics_distribution=dist), None)
    assert "VCL (um/s) | 40 | 61.2 | 20.0 | 58.0 | 0 | – | – | –" in text
    assert "LIN | 40 | 0.46 | 0.10 | 0.44 | 0 | – | – | –" in text


def test_missing_keys_are_shown_as_absent(tmp_path):
    out = write_report_pdf(tmp_path / "empty.pdf", {}, None)
    assert out.read_bytes()[:4] == b"%PDF" and _pages(out) == 1
    text = report_text({})
    assert "Sample ID: not given" in text and "Concentration" in text and "Not measured" in text
    # an older summary.json (no ids, no concentration, no distribution) still prints fully
    m = _metrics()
    meta = _meta(m)
    out = write_report_pdf(tmp_path / "old.pdf", meta, None)
    assert 1 <= _pages(out) <= 2
    assert "Patient ID: not given" in report_text(meta)


def test_alerts_for_an_estimated_scale_and_a_truncated_video():
    m = _metrics()
    meta = _meta(m, truncated=True, n_frames_analysed=123)
    meta["calibration"].update(um_per_px=0.61, um_per_px_source="estimated", um_per_px_estimated=True)
    alerts = [b.text for b in report_blocks(meta, m) if b.kind == "alert"]
    assert any("TRUNCATED" in a and "first 123 frames" in a for a in alerts)
    assert any(a.startswith("SCALE ESTIMATED") for a in alerts)
    assert "0.61 um/px (source: estimated)  ESTIMATED" in report_text(meta, m)


def test_pooled_sample(tmp_path):
    m = _metrics()
    meta = _meta(m, sample_id="S-9", fields=[
        {"video": "field1.mp4", "n_graded": 120, "calibration": {"fps": 50, "um_per_px": 0.5}},
        {"video": {"name": "field2.mp4"}, "n_graded": 95,
         "calibration": {"fps": 50, "um_per_px": 0.61, "um_per_px_estimated": True}}])
    del meta["video"], meta["calibration"]
    meta["summary"]["track"]["n_graded"] = 215
    text = report_text(meta, m)
    assert "pooled sample" in text and "Fields: 2 videos pooled" in text
    assert "1 | field1.mp4 | 120 | 50.0 | 0.5" in text and "2 | field2.mp4 | 95 | 50.0 | 0.61 EST." in text
    assert "n = 215" in text and "200-cell check: met" in text
    assert any(b.kind == "alert" and b.text.startswith("SCALE ESTIMATED") for b in report_blocks(meta, m))
    out = write_report_pdf(tmp_path / "pooled.pdf", meta, m)
    assert out.read_bytes()[:4] == b"%PDF" and 1 <= _pages(out) <= 2


def test_pooled_sample_as_sample_py_writes_it(tmp_path):
    """The shape ``spermtrack.pipeline.sample.pool_sample`` writes: flat fields, a calibration whose
    differing values are None, alias keys in the distribution, a concentration over fields of
    different depths, the indicative morphology."""
    from spermtrack.kinematics.summary import kinematics_distribution

    m = _metrics()
    meta = _meta(m, sample_id="S-3", n_graded=30, kinematics_distribution=kinematics_distribution(m),
                 fields=[{"video": "a.mp4", "n_graded": 14, "fps": 50.0, "um_per_px": 0.5, "progressive_pct": 41.0,
                          "total_motility_pct": 60.0, "truncated": False},
                         {"video": "b.mp4", "n_graded": 16, "fps": 50.0, "um_per_px": 0.6, "progressive_pct": 35.5,
                          "total_motility_pct": 52.25, "truncated": True}],
                 concentration_million_per_ml=12.5,
                 concentration={"concentration_million_per_ml": 12.5, "mean_heads_in_view": 30.0, "n_frames": 400,
                                "chamber_depth_um": [10.0, 20.0], "field_area_um2": None,
                                "per_field_million_per_ml": [10.0, 15.0], "counting_rule": "heads in view"},
                 morphology_summary={"n_cells": 30, "normal_forms_pct": {"k": 2, "n": 20, "pct": 10.0,
                                                                         "ci95_low_pct": 2.8, "ci95_high_pct": 30.1},
                                     "note": "indicative morphometry"})
    del meta["video"]
    meta["calibration"].update(um_per_px=None, um_per_px_source=None)
    text = report_text(meta, m)
    assert "1 | a.mp4 | 14 | 41.0 | 60.0 | 50.0 | 0.5" in text and "2 | b.mp4 (truncated) | 16 | 35.5 |" in text
    assert "Scale: differs between fields" in text and "50 fps (source: container)" in text
    assert "chamber depth (um): 10, 20" in text and "per field (million/mL): 10, 15" in text
    assert "normal forms 10.0 % (95 % CI 2.8 – 30.1; 2 of 20 cells)" in text
    assert "LIN (%) |" in text and "\nLIN |" not in text  # the alias rows are not repeated
    out = write_report_pdf(tmp_path / "pooled.pdf", meta, m)
    assert 1 <= _pages(out) <= 2


@pytest.mark.parametrize("n_warnings", [60, 500])
def test_many_warnings_stay_within_two_pages(tmp_path, n_warnings):
    m = _metrics()
    meta = _meta(m, warnings=[f"warning {i}: " + "a long explanation " * 12 for i in range(n_warnings)])
    out = write_report_pdf(tmp_path / "w.pdf", meta, m)
    assert _pages(out) == 2
    text = report_text(meta, m)
    assert f"Warnings ({n_warnings})" in text and f"warning {n_warnings - 1}:" in text


def test_hostile_and_math_like_strings_print_verbatim(tmp_path):
    m = _metrics()
    meta = _meta(m, sample_id="$x^{2", patient_id="<img src=x onerror=alert(1)>",
                 warnings=["cost: $5 and $\\frac{", "a" * 400])  # mathtext would fail on these
    meta["video"]["name"] = "<img src=x onerror=alert(1)>.mp4"
    out = write_report_pdf(tmp_path / "h.pdf", meta, m)
    assert out.read_bytes()[:4] == b"%PDF"
    text = report_text(meta, m)
    assert "Sample ID: $x^{2" in text and "<img src=x onerror=alert(1)>.mp4" in text


def test_failed_write_keeps_the_previous_pdf(tmp_path, monkeypatch):
    import spermtrack.report.pdf as P

    path = tmp_path / "report.pdf"
    write_report_pdf(path, {}, None)
    before = path.read_bytes()

    def broken(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(P, "_draw_page", broken)
    with pytest.raises(OSError):
        write_report_pdf(path, _meta(_metrics()), None)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["report.pdf"]
