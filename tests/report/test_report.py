"""The report: a self-contained HTML page, readable plots, an annotated video that matches the
analysis, a gallery spread over the grades."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from spermtrack.synth import generate


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from spermtrack.pipeline.analyze import analyze_video

    root = tmp_path_factory.mktemp("rep")
    folder = generate(root / "data", videos=1, seconds=1.2, cells=8, seed=11, width=320, height=240,
                      write_images=False, difficulty="easy")[0]
    return analyze_video(folder / f"{folder.name}.mp4", root / "out", um_per_px=0.5, progress=False)


def test_html_is_self_contained_and_complete(result):
    html = (result.out_dir / "report.html").read_text()
    assert not re.search(r'(src|href)="https?:', html)  # nothing fetched from the network
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) >= 4
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    body = html.split('<table class="sortable">')[1].split("</table>")[0]
    assert body.count("<tr>") == len(result.metrics) + 1  # header + one row per track
    assert "addEventListener('click'" in html  # sortable columns
    pr = next(r for r in result.summary.table if r["quantity"] == "progressive")
    assert f"{pr['pct']:.1f} %" in html
    assert "WHO asks for" in html  # a small sample says so
    assert "Kinematics: all graded vs motile cells" in html  # the distributions plot is shown


def test_html_headers_are_human_and_grade_is_in_view(result):
    html = (result.out_dir / "report.html").read_text()
    head = html.split('<table class="sortable">')[1].split("</thead>")[0]
    names = re.findall(r'<th[^>]*title="([^"]+)"[^>]*>([^<]+)</th>', head)
    assert [c for c, _ in names[:2]] == ["track_id", "grade"]  # id and grade first (kept in view)
    shown = dict(names)
    assert shown["vcl_um_s"] == "VCL (um/s)" and shown["bcf_hz"] == "BCF (Hz)" and shown["lin_pct"] == "LIN (%)"
    assert shown["alh_mean_um"] == "ALH mean (um)" and shown["duration_s"] == "duration (s)"
    assert not any(h == c and "_" in c for c, h in names)  # no raw column name left as a header


def test_html_escapes_user_strings_and_shows_sample_fields(result, tmp_path):
    from spermtrack.report.html import write_report

    hostile = "<img src=x onerror=alert(1)>"
    meta = {**result.meta, "sample_id": hostile, "patient_id": "P<script>1</script>",
            "video": {**result.meta["video"], "name": hostile + ".mp4"},
            "warnings": [hostile], "concentration_million_per_ml": 43.21,
            "concentration": {"chamber_depth_um": 20.0, "counting_rule": hostile},
            "kinematics_distribution": {"vcl_um_s": {"all": {"n": 9, "mean": 61.25, "sd": 3.0, "median": 60.0,
                                                             "q25": 55.0, "q75": 66.0},
                                                     "motile": {"n": 0, "mean": None, "sd": None, "median": None,
                                                                "q25": None, "q75": None}}}}
    table = result.metrics.copy()
    table["grade"] = table["grade"].astype(str)
    table.loc[table.index[0], "grade"] = hostile
    out = write_report(tmp_path / "r.html", meta=meta, summary=result.summary, summaries={}, table=table,
                       plots={}, files={"x": hostile})
    html = out.read_text()
    assert "<img src=x" not in html and "<script>1" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "P&lt;script&gt;1&lt;/script&gt;" in html
    assert "43.21 million / mL" in html and "chamber depth (um)" in html
    assert "<td>61.2</td>" in html or "<td>61.3</td>" in html  # the distribution table
    # a pooled sample: no single video, the fields instead
    pooled = {k: v for k, v in meta.items() if k != "video"}
    pooled["fields"] = [{"video": "f1.mp4", "n_graded": 3}, {"video": hostile, "n_graded": 4}]
    html = write_report(tmp_path / "p.html", meta=pooled, summary=result.summary, summaries={}, table=table,
                        plots={}, files={}).read_text()
    assert "pooled sample (2 fields)" in html and "f1.mp4" in html and "<img src=x" not in html


def test_human_column_names():
    from spermtrack.report import human_column

    assert human_column("vcl_um_s") == "VCL (um/s)"
    assert human_column("lin") == "LIN" and human_column("alh_um") == "ALH (um)"
    assert human_column("head_length_iqr_um") == "head length IQR (um)"
    assert human_column("head_area_um2") == "head area (um²)" and human_column("n_crops") == "n crops"


def test_gallery_labels_are_whole():
    from spermtrack.report.build import _gallery_items

    metrics = pd.DataFrame({"track_id": [12, 3], "grade": ["non_progressive", "slow_progressive"]})
    crop = np.zeros((40, 40), np.uint8)
    items = _gallery_items({12: (0, 1.0, 1.0), 3: (0, 1.0, 1.0)}, None, {12: crop, 3: crop}, metrics)
    assert [c for _, c, _ in items] == ["#12 non_progressive", "#3 slow_progressive"]


def _cielab(bgr: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """CIELAB of sRGB colours (rows of B, G, R) as seen through a colour-vision simulation matrix
    acting on linear RGB (Machado, Oliveira & Fernandes 2009, severity 1)."""
    c = bgr[:, ::-1] / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lin = np.clip(lin @ sim.T, 0, 1)
    xyz = lin @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.column_stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])])


def test_grade_colours_are_distinct_also_with_colour_blindness():
    from spermtrack.report import GRADE_COLORS, grade_bgr

    bgr = np.array([grade_bgr(g) for g in GRADE_COLORS], float)
    iu = np.triu_indices(len(bgr), 1)
    vision = {"normal": (np.eye(3), 40.0),
              "protanopia": (np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                                       [-0.003882, -0.048116, 1.051998]]), 15.0),
              "deuteranopia": (np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                                         [-0.011820, 0.042940, 0.968881]]), 15.0)}
    for name, (sim, min_de) in vision.items():
        lab = _cielab(bgr, sim)
        d = np.linalg.norm(lab[:, None] - lab[None], axis=2)[iu]
        assert d.min() > min_de, name


def test_video_legend_and_scale_bar():
    from spermtrack.report import grade_bgr
    from spermtrack.report.video import LEGEND_LABELS, _legend_patch, _scale_bar_patch

    assert "not graded" in LEGEND_LABELS.values()
    grades = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded"]
    for w, h in ((320, 240), (640, 480), (1920, 1080)):
        scale = max(1.0, w / 640)
        leg = _legend_patch(grades, w, max(40, int(0.24 * h)), scale)
        assert leg.shape[1] <= w and leg.shape[0] <= max(40, int(0.24 * h))
        for g in grades:  # a swatch of each grade's colour
            assert (leg == np.array(grade_bgr(g), np.uint8)).all(axis=2).sum() > 20, g
    bar = _scale_bar_patch(0.5, 640, 16, 1.0)
    white = (bar == 255).all(axis=2).astype(np.int8)
    edges = [np.flatnonzero(np.diff(np.r_[0, row, 0])) for row in white]
    run = max((e[1::2] - e[::2]).max(initial=0) for e in edges)  # the bar: a round length in um at 0.5 um/px
    assert run * 0.5 in (10.0, 20.0, 50.0)
    assert _scale_bar_patch(None, 640, 16, 1.0) is None


def test_plots_are_pngs_of_sensible_size(result):
    for name in ("grades", "trajectories", "vcl_vsl", "distributions", "gallery"):
        data = (result.out_dir / "plots" / f"{name}.png").read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 5000, name


def test_annotated_video_matches_the_analysis(result):
    from spermtrack.io.video import VideoReader, probe_video

    m = probe_video(result.out_dir / "annotated.mp4")
    assert m.n_frames == result.meta["n_frames_analysed"] and (m.width, m.height) == (320, 240)
    assert m.fps == pytest.approx(50.0)
    # boxes and trails are drawn where the tracks are: the annotated frame differs from the
    # original around the heads far more than elsewhere
    src = result.meta["video"]["path"]
    f = 40
    orig = next(g for i, _, g in VideoReader(src).iter_frames() if i == f)
    ann = next(g for i, _, g in VideoReader(result.out_dir / "annotated.mp4").iter_frames() if i == f)
    diff = np.abs(ann.astype(int) - orig.astype(int))
    rows = result.tracks[result.tracks["frame"] == f]
    near = np.zeros_like(diff, bool)
    for _, r in rows.iterrows():
        x0, y0 = int(max(r.x - r.w / 2 - 2, 0)), int(max(r.y - r.h / 2 - 2, 0))
        near[y0:int(r.y + r.h / 2 + 3), x0:int(r.x + r.w / 2 + 3)] = True
    near[:20, :] = near[-60:, :] = False  # leave out the time stamp and the legend
    far = ~near
    far[:20, :] = far[-60:, :] = False
    assert diff[near].mean() > 4 * diff[far].mean()


def test_gallery_picks_spread_over_grades():
    from spermtrack.report.video import pick_gallery

    metrics = pd.DataFrame({"track_id": [1, 2, 3, 4, 5, 6],
                            "grade": ["rapid_progressive"] * 3 + ["immotile"] * 2 + ["non_progressive"],
                            "duration_s": [3, 2, 1, 3, 2, 1]})
    tracks = pd.DataFrame({"track_id": np.repeat(metrics.track_id, 10), "frame": np.tile(np.arange(10), 6),
                           "x": 100.0, "y": 100.0, "w": 10.0, "h": 10.0})
    picks = pick_gallery(tracks, metrics, 3, 200, 200)
    assert list(picks) == [1, 6, 4]  # one per grade first, longest track of each grade
    assert all(fr == 4 or fr == 5 for fr, _, _ in picks.values())  # middle of the track
    tracks.loc[tracks.track_id == 1, "x"] = 3.0  # at the border: no usable crop
    assert 1 not in pick_gallery(tracks, metrics, 3, 200, 200)


def test_empty_analysis_still_reports(tmp_path):
    """A video where nothing is detected: a clear error when the scale must be estimated."""
    from spermtrack.pipeline.analyze import analyze_video
    from spermtrack.errors import InputFileError
    from spermtrack.io.video import VideoWriter

    video = tmp_path / "blank.mp4"
    with VideoWriter(video, 50, 64, 64) as vw:
        for _ in range(30):
            vw.write(np.full((64, 64), 120, np.uint8))
    with pytest.raises(InputFileError, match="no sperm head was detected"):
        analyze_video(video, tmp_path / "out", progress=False)
    res = analyze_video(video, tmp_path / "out", um_per_px=0.5, progress=False)
    assert res.summary.n_graded == 0 and (res.out_dir / "report.html").is_file()
