"""Everything a person looks at besides the tables: the annotated video, ``plots/*.png`` (and
the gallery crops they need), in the order that costs one extra decoding pass at most."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd


def _gallery_items(picks: dict, crop_set, cut: dict, metrics: pd.DataFrame) -> list[tuple[np.ndarray, str, str]]:
    """``(crop, caption, grade)`` per picked track: the sharpest morphology crop when there is one
    (oriented along the swimming direction), else the crop cut in the rendering pass."""
    grade = dict(zip(metrics["track_id"].astype(int), metrics["grade"].astype(str)))
    best = {}
    if crop_set is not None and len(crop_set):
        t = crop_set.table.reset_index(drop=True)
        for tid, rows in t.groupby("track_id"):
            best[int(tid)] = crop_set.images[int(rows["sharpness"].idxmax())]
    items = []
    for tid in picks:
        img = best.get(tid, cut.get(tid))
        if img is not None:
            g = grade.get(tid, "not_graded")
            items.append((img, f"#{tid} {g}", g))  # the whole grade: "#12 non_progressive"
    return items


def build_report_assets(video: str | Path, out: Path, tracks: pd.DataFrame, metrics: pd.DataFrame, summary,
                        morphology: pd.DataFrame | None, crop_set, *, cfg, fps: float, user_fps: float | None,
                        n_frames: int, background: np.ndarray | None, width: int, height: int,
                        progress: bool = True) -> dict:
    """Write ``annotated.mp4`` (unless ``cfg.report.annotated_video`` is off) and ``plots/*.png``
    (grades, trajectories, vcl_vsl, distributions, morphometry, gallery; a figure with nothing to
    show is left out).

    Returns:
        ``{"files": {key: relative name}, "plots": {key: path}, "timings": {key: seconds}}``.
    """
    from spermtrack.report import plots as P
    from spermtrack.report.video import pick_gallery, render_pass
    from spermtrack.progress import ProgressBar

    r = cfg.report
    files, figs, timings = {}, {}, {}
    picks = pick_gallery(tracks, metrics, int(r.gallery_tracks), width, height) if r.plots else {}
    have_crop = set()
    if crop_set is not None and len(crop_set):
        have_crop = set(crop_set.table["track_id"].astype(int))
    need_cut = {k: v for k, v in picks.items() if k not in have_crop}
    cut: dict = {}
    if r.annotated_video or need_cut:
        t0 = time.perf_counter()
        bar = ProgressBar(f"{Path(video).name} (annotated video)", enabled=progress and r.annotated_video)
        try:
            got = render_pass(video, tracks, metrics, fps=fps,
                              out_path=out / "annotated.mp4" if r.annotated_video else None,
                              trail_s=r.trail_s, crop_picks=need_cut, n_frames=n_frames, user_fps=user_fps,
                              um_per_px=metrics.attrs.get("um_per_px"), progress=bar)
        finally:
            bar.close()
        cut = got["crops"]
        if r.annotated_video:
            files["annotated_video"] = "annotated.mp4"
        timings["video_s"] = time.perf_counter() - t0
    if not r.plots:
        return {"files": files, "plots": figs, "timings": timings}
    t0 = time.perf_counter()
    pdir = out / "plots"
    preset = metrics.attrs.get("preset", "who2021")
    figs["grades"] = P.plot_grades(pdir / "grades.png", summary)
    if len(tracks):
        figs["trajectories"] = P.plot_trajectories(pdir / "trajectories.png", tracks, metrics, background=background,
                                                   width=width, height=height)
    figs["vcl_vsl"] = P.plot_vcl_vsl(pdir / "vcl_vsl.png", metrics, preset=preset)
    figs["distributions"] = P.plot_distributions(pdir / "distributions.png", metrics)
    if morphology is not None:
        figs["morphometry"] = P.plot_morphometry(pdir / "morphometry.png", morphology, metrics)
    figs["gallery"] = P.plot_gallery(pdir / "gallery.png", _gallery_items(picks, crop_set, cut, metrics))
    figs = {k: v for k, v in figs.items() if v is not None}
    for k, v in figs.items():
        files[f"plot_{k}"] = f"plots/{Path(v).name}"
    timings["plots_s"] = time.perf_counter() - t0
    return {"files": files, "plots": figs, "timings": timings}
