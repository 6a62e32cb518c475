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
    from spermtrack.analyze import analyze_video

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


def test_plots_are_pngs_of_sensible_size(result):
    for name in ("grades", "trajectories", "vcl_vsl", "gallery"):
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
    from spermtrack.analyze import analyze_video
    from spermtrack.errors import InputFileError
    from spermtrack.io.video import VideoWriter

    video = tmp_path / "blank.mp4"
    with VideoWriter(video, 50, 64, 48) as vw:
        for _ in range(30):
            vw.write(np.full((48, 64), 120, np.uint8))
    with pytest.raises(InputFileError, match="no sperm head was detected"):
        analyze_video(video, tmp_path / "out", progress=False)
    res = analyze_video(video, tmp_path / "out", um_per_px=0.5, progress=False)
    assert res.summary.n_graded == 0 and (res.out_dir / "report.html").is_file()
