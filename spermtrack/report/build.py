"""Everything a person looks at besides the tables: the annotated video, ``plots/*.png`` and
the gallery crops they need.

The video and the gallery crops come from frames: :func:`plan_render` gives the frame consumer
(:class:`~spermtrack.report.video.FrameRenderer`) that a decoding pass feeds (``spermtrack
analyze`` shares one pass between it and the morphology crops); :func:`build_report_assets` then
draws the plots from the tables and what that consumer cut."""

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


def plan_render(out: Path, tracks: pd.DataFrame, metrics: pd.DataFrame, *, cfg, fps: float, n_frames: int,
                width: int, height: int, have_crop=frozenset()) -> tuple[dict, object | None]:
    """The gallery picks, and the frame consumer that writes ``annotated.mp4`` (unless
    ``cfg.report.annotated_video`` is off) and cuts the gallery crops of the picked tracks that
    get no morphology crop (``have_crop``: the tracks that do).

    Returns:
        ``(picks, renderer)``: ``{track_id: (frame, x, y)}`` and a
        :class:`~spermtrack.report.video.FrameRenderer`, or None when neither a video nor a
        crop is needed (no decoding pass for the report).
    """
    from spermtrack.report.video import FrameRenderer, pick_gallery

    r = cfg.report
    picks = pick_gallery(tracks, metrics, int(r.gallery_tracks), width, height) if r.plots else {}
    need_cut = {k: v for k, v in picks.items() if k not in have_crop}
    if not (r.annotated_video or need_cut):
        return picks, None
    renderer = FrameRenderer(tracks, metrics, fps=fps, width=width, height=height, n_frames=n_frames,
                             out_path=out / "annotated.mp4" if r.annotated_video else None, trail_s=r.trail_s,
                             crop_picks=need_cut, um_per_px=metrics.attrs.get("um_per_px"))
    return picks, renderer


def build_report_assets(out: Path, tracks: pd.DataFrame, metrics: pd.DataFrame, summary,
                        morphology: pd.DataFrame | None, crop_set, *, cfg, picks: dict, rendered: dict | None,
                        background: np.ndarray | None, width: int, height: int) -> dict:
    """Write ``plots/*.png`` (grades, trajectories, vcl_vsl, distributions, morphometry, gallery; a
    figure with nothing to show is left out) and list the annotated video the render wrote.

    Args:
        picks: the gallery picks of :func:`plan_render`.
        rendered: what the :func:`plan_render` consumer returned on ``close()`` (``crops``,
            ``seconds``), or None when there was none.

    Returns:
        ``{"files": {key: relative name}, "plots": {key: path}, "timings": {key: seconds}}``.
    """
    from spermtrack.report import plots as P

    r = cfg.report
    files, figs, timings = {}, {}, {}
    cut: dict = {}
    if rendered is not None:
        cut = rendered["crops"]
        if r.annotated_video:
            files["annotated_video"] = "annotated.mp4"
        timings["video_s"] = rendered["seconds"]
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
