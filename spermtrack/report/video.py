"""The annotated video: every tracked head boxed with its id, a trail of its last ``trail_s``
seconds, all coloured by grade, with a time stamp and a legend; written atomically as MP4.

The same decoding pass also cuts the gallery crops (one per chosen track, at a chosen frame), so
the report needs one extra pass over the video, not two. Without a video output the pass stops
at the last frame a crop needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from spermtrack.errors import VideoDecodeError
from spermtrack.report import GRADE_LABELS, grade_bgr

_FONT = cv2.FONT_HERSHEY_SIMPLEX


class _TrackIndex:
    """Per-track arrays sorted by frame, and which tracks are alive at a frame."""

    def __init__(self, tracks: pd.DataFrame, metrics: pd.DataFrame):
        grade = dict(zip(metrics["track_id"].astype(int), metrics["grade"].astype(str)))
        xs = "x_smooth" if "x_smooth" in tracks.columns else "x"
        ys = "y_smooth" if "y_smooth" in tracks.columns else "y"
        self.items = []
        for tid, t in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
            self.items.append({
                "id": int(tid), "frame": t["frame"].to_numpy(np.int64),
                "xy": np.column_stack([t[xs].to_numpy(float), t[ys].to_numpy(float)]),
                "wh": np.column_stack([t["w"].to_numpy(float), t["h"].to_numpy(float)]),
                "color": grade_bgr(grade.get(int(tid), "not_graded")),
            })
        self.first = np.array([it["frame"][0] for it in self.items], np.int64)
        self.last = np.array([it["frame"][-1] for it in self.items], np.int64)

    def alive(self, f: int) -> np.ndarray:
        return np.flatnonzero((self.first <= f) & (self.last >= f))


def _draw(img: np.ndarray, f: int, fps: float, index: _TrackIndex, trail: int, scale: float) -> None:
    for k in index.alive(f):
        it = index.items[k]
        fr = it["frame"]
        hi = int(np.searchsorted(fr, f, side="right"))
        lo = int(np.searchsorted(fr, f - trail, side="left"))
        pts = it["xy"][lo:hi]
        if len(pts) >= 2:
            cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, it["color"], 1, cv2.LINE_AA, shift=4)
        if hi and fr[hi - 1] == f:
            (x, y), (w, h) = it["xy"][hi - 1], it["wh"][hi - 1]
            w, h = (w if np.isfinite(w) else 10.0), (h if np.isfinite(h) else 10.0)
            p0 = (int(round(x - w / 2)), int(round(y - h / 2)))
            p1 = (int(round(x + w / 2)), int(round(y + h / 2)))
            cv2.rectangle(img, p0, p1, it["color"], 1, cv2.LINE_AA)
            cv2.putText(img, str(it["id"]), (p1[0] + 1, p0[1] + 2), _FONT, 0.33 * scale, it["color"], 1, cv2.LINE_AA)
    H = img.shape[0]
    cv2.rectangle(img, (0, 0), (int(190 * scale), int(16 * scale)), (0, 0, 0), -1)
    cv2.putText(img, f"t {f / fps:6.2f} s  frame {f}", (3, int(12 * scale)), _FONT, 0.4 * scale,
                (255, 255, 255), 1, cv2.LINE_AA)
    y = H - int(4 * scale)
    for g in ("immotile", "non_progressive", "slow_progressive", "rapid_progressive"):
        label = GRADE_LABELS[g].split(":")[0] + " " + g.replace("_", " ")
        (tw, th), _ = cv2.getTextSize(label, _FONT, 0.35 * scale, 1)
        cv2.rectangle(img, (0, y - th - 3), (tw + 6, y + 2), (0, 0, 0), -1)
        cv2.putText(img, label, (3, y), _FONT, 0.35 * scale, grade_bgr(g), 1, cv2.LINE_AA)
        y -= th + 6


def _cut(gray: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop centred on ``(x, y)``; outside the frame is filled by replication."""
    half = size // 2
    pad = cv2.copyMakeBorder(gray, half, half, half, half, cv2.BORDER_REPLICATE)
    cx, cy = int(round(x)) + half, int(round(y)) + half
    return pad[cy - half:cy - half + size, cx - half:cx - half + size].copy()


def render_pass(video: str | Path, tracks: pd.DataFrame, metrics: pd.DataFrame, *, fps: float,
                out_path: str | Path | None = None, trail_s: float = 1.0,
                crop_picks: dict[int, tuple[int, float, float]] | None = None, crop_px: int = 40,
                n_frames: int | None = None, user_fps: float | None = None,
                progress=None) -> dict:
    """Decode ``video`` once: write the annotated MP4 (when ``out_path``) and cut gallery crops.

    Args:
        video: the analysed video.
        tracks: the Tracks table (smoothed positions are drawn when present).
        metrics: per-track kinematics with ``grade`` (colours).
        fps: the rate used for the analysis (the output video plays at it).
        out_path: MP4 to write; None writes no video.
        trail_s: trail length in seconds.
        crop_picks: ``{track_id: (frame, x, y)}`` crops to cut.
        crop_px: side of the crops.
        n_frames: frames to use (those analysed; a truncated file stops earlier anyway).
        user_fps: the user's ``--fps`` (passed to the reader so timestamps agree).
        progress: ``progress(done, total, elapsed_s)``.

    Returns:
        ``{"crops": {track_id: crop}, "n_frames": frames written, "seconds": wall time}``.
    """
    from spermtrack.io.video import VideoReader, VideoWriter

    t0 = time.perf_counter()
    picks_by_frame: dict[int, list] = {}
    for tid, (f, x, y) in (crop_picks or {}).items():
        picks_by_frame.setdefault(int(f), []).append((int(tid), x, y))
    last_needed = max(picks_by_frame, default=-1)
    index = _TrackIndex(tracks, metrics) if out_path is not None else None
    trail = max(1, int(round(trail_s * fps)))
    crops: dict[int, np.ndarray] = {}
    reader = VideoReader(video, fps=user_fps)
    W, H = reader.meta.width, reader.meta.height
    total = min(n_frames or reader.meta.n_frames, reader.meta.n_frames)
    if out_path is None:
        total = min(total, last_needed + 1)
    scale = max(1.0, W / 640.0)
    writer = VideoWriter(out_path, fps, W + W % 2, H + H % 2) if out_path is not None else None
    done = 0
    try:
        for idx, _, gray in reader.iter_frames():
            if idx >= total:
                break
            for tid, x, y in picks_by_frame.get(idx, ()):
                crops[tid] = _cut(gray, x, y, crop_px)
            if writer is not None:
                img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
                if W % 2 or H % 2:
                    img = cv2.copyMakeBorder(img, 0, H % 2, 0, W % 2, cv2.BORDER_REPLICATE)
                _draw(img, idx, fps, index, trail, scale)
                writer.write(img)
            done = idx + 1
            if progress is not None and done % 64 == 0:
                progress(done, total, time.perf_counter() - t0)
    except VideoDecodeError:
        pass  # a truncated file: the frames before the damage were drawn, as they were analysed
    except BaseException:
        if writer is not None:
            writer.__exit__(RuntimeError, RuntimeError("aborted"), None)
        raise
    finally:
        reader.close()
    if writer is not None:
        writer.close()
    if progress is not None:
        progress(done, total, time.perf_counter() - t0)
    return {"crops": crops, "n_frames": done, "seconds": time.perf_counter() - t0}


def pick_gallery(tracks: pd.DataFrame, metrics: pd.DataFrame, n: int, width: int, height: int,
                 margin_px: float = 12.0) -> dict[int, tuple[int, float, float]]:
    """Choose up to ``n`` tracks for the gallery (graded ones first, spread over the grades, longest
    first) and, for each, the measured frame nearest the middle of the track that is not at the
    border: ``{track_id: (frame, x, y)}``."""
    if n <= 0 or tracks.empty:
        return {}
    m = metrics.sort_values("duration_s", ascending=False)
    per_grade = {g: list(s["track_id"].astype(int)) for g, s in m.groupby(m["grade"].astype(str), sort=False)}
    order = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded"]
    chosen: list[int] = []
    while len(chosen) < n and any(per_grade.get(g) for g in order):
        for g in order:
            if per_grade.get(g) and len(chosen) < n:
                chosen.append(per_grade[g].pop(0))
    meas = tracks[~tracks["interpolated"]] if "interpolated" in tracks.columns else tracks
    ok = ((meas["x"] > margin_px) & (meas["x"] < width - margin_px)
          & (meas["y"] > margin_px) & (meas["y"] < height - margin_px))
    meas = meas[ok & meas["track_id"].isin(chosen)]
    picks = {}
    for tid, t in meas.groupby("track_id"):
        fr = t["frame"].to_numpy()
        k = int(np.argmin(np.abs(fr - (fr[0] + fr[-1]) / 2)))
        picks[int(tid)] = (int(fr[k]), float(t["x"].iloc[k]), float(t["y"].iloc[k]))
    return {tid: picks[tid] for tid in chosen if tid in picks}
