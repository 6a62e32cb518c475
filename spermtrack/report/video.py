"""The annotated video: every tracked head boxed with its id, a trail of its last ``trail_s``
seconds, all coloured by grade, with a time stamp, a scale bar and a legend; written atomically
as MP4.

The same frames also give the gallery crops (one per chosen track, at a chosen frame). Both are
:class:`FrameRenderer`, a frame consumer: ``spermtrack analyze`` hands it the frames of the one
decoding pass it shares with the morphology crops; :func:`render_pass` runs it on a pass of its
own. Without a video output it needs frames only up to the last frame a crop needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from spermtrack.errors import VideoDecodeError
from spermtrack.report import grade_bgr

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (24, 24, 24)
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)

#: Legend text per grade (the WHO letter first), in the order listed.
LEGEND_LABELS: dict[str, str] = {
    "rapid_progressive": "a rapid progressive",
    "slow_progressive": "b slow progressive",
    "non_progressive": "c non-progressive",
    "immotile": "d immotile",
    "not_graded": "not graded",
    "other": "cluster / other",
}

#: Scale-bar lengths to choose from (um).
_BAR_UM = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


class _TrackIndex:
    """Per-track arrays sorted by frame, and which tracks are alive at a frame."""

    def __init__(self, tracks: pd.DataFrame, metrics: pd.DataFrame):
        grade = dict(zip(metrics["track_id"].astype(int), metrics["grade"].astype(str)))
        xs = "x_smooth" if "x_smooth" in tracks.columns else "x"
        ys = "y_smooth" if "y_smooth" in tracks.columns else "y"
        self.items = []
        self.grades: set[str] = set()
        for tid, t in tracks.sort_values(["track_id", "frame"]).groupby("track_id", sort=True):
            g = grade.get(int(tid))
            if g is None:
                # a track without kinematics: a cluster / impurity (majority class not sperm) or
                # one too short to measure
                cls = t["cls"].to_numpy() if "cls" in t.columns else None
                g = ("other" if cls is not None and len(cls) and np.bincount(cls.astype(np.int64).clip(0)).argmax() != 0
                     else "not_graded")
            self.grades.add(g)
            self.items.append({
                "id": int(tid), "frame": t["frame"].to_numpy(np.int64),
                "xy": np.column_stack([t[xs].to_numpy(float), t[ys].to_numpy(float)]),
                "wh": np.column_stack([t["w"].to_numpy(float), t["h"].to_numpy(float)]),
                "color": grade_bgr(g),
            })
        self.first = np.array([it["frame"][0] for it in self.items], np.int64)
        self.last = np.array([it["frame"][-1] for it in self.items], np.int64)

    def alive(self, f: int) -> np.ndarray:
        return np.flatnonzero((self.first <= f) & (self.last >= f))


def _outlined_text(img: np.ndarray, text: str, org: tuple[int, int], fs: float, color, thick: int = 1) -> None:
    """Text with a contrasting outline (dark, or light around a dark colour), readable on bright
    and dark backgrounds alike."""
    b, g, r = color
    outline = _WHITE if 0.299 * r + 0.587 * g + 0.114 * b < 80 else _BLACK
    cv2.putText(img, text, org, _FONT, fs, outline, thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, fs, color, thick, cv2.LINE_AA)


def _legend_patch(grades: list[str], width: int, max_height: int, scale: float) -> np.ndarray:
    """The legend (a colour swatch and a label per grade on a dark box), drawn once: in as few
    columns as fit under ``max_height``, with a smaller font only when the frame is too narrow."""
    labels = [LEGEND_LABELS.get(g, g) for g in grades]
    for fs in (0.42 * scale, 0.36 * scale, 0.3 * scale, 0.26 * scale):
        sizes = [cv2.getTextSize(lab, _FONT, fs, 1)[0] for lab in labels]
        th = max(h for _, h in sizes)
        sw, pad = th + 2, max(3, int(round(4 * scale)))
        row_h = th + pad + 2
        for ncols in (1, 2, 3):
            nrows = int(np.ceil(len(labels) / ncols))
            col_w = [max((sizes[i][0] for i in range(c * nrows, min((c + 1) * nrows, len(labels)))), default=0)
                     + sw + 3 * pad for c in range(ncols)]
            w, h = sum(col_w) + pad, nrows * row_h + pad
            if h <= max_height and w <= width - 4:
                break
        if h <= max_height and w <= width - 4:
            break
    patch = np.empty((h, w, 3), np.uint8)
    patch[:] = _BG
    x0 = pad
    for c in range(ncols):
        for r in range(nrows):
            i = c * nrows + r
            if i >= len(labels):
                break
            y = pad + r * row_h
            cv2.rectangle(patch, (x0, y + 1), (x0 + sw - 1, y + th + 1), grade_bgr(grades[i]), -1)
            cv2.rectangle(patch, (x0, y + 1), (x0 + sw - 1, y + th + 1), _WHITE, 1)
            cv2.putText(patch, labels[i], (x0 + sw + pad, y + th + 1), _FONT, fs, _WHITE, 1, cv2.LINE_AA)
        x0 += col_w[c]
    return patch


def _scale_bar_patch(um_per_px: float | None, width: int, height: int, scale: float) -> np.ndarray | None:
    """A white bar of a round length in um (about a tenth of the frame) and its label, on a dark
    box ``height`` pixels high; None without a usable scale."""
    if um_per_px is None or not np.isfinite(um_per_px) or um_per_px <= 0:
        return None
    target = 0.12 * width * um_per_px
    length_um = min(_BAR_UM, key=lambda v: abs(np.log(v / target)))
    bar_px = int(round(length_um / um_per_px))
    if bar_px < 8 or bar_px > 0.5 * width:
        return None
    label = f"{length_um:g} um"
    fs = 0.36 * scale
    (tw, th), _ = cv2.getTextSize(label, _FONT, fs, 1)
    pad = 4
    w = pad + tw + 2 * pad + bar_px + pad
    patch = np.empty((height, w, 3), np.uint8)
    patch[:] = _BG
    cv2.putText(patch, label, (pad, (height + th) // 2), _FONT, fs, _WHITE, 1, cv2.LINE_AA)
    bh = max(3, int(round(3 * scale)))
    y0 = (height - bh) // 2
    patch[y0:y0 + bh, pad + tw + 2 * pad:pad + tw + 2 * pad + bar_px] = _WHITE
    return patch


class _Overlay:
    """Everything that is the same on every frame (legend, scale bar), drawn once and pasted."""

    def __init__(self, width: int, height: int, grades: list[str], um_per_px: float | None, scale: float):
        self.scale = scale
        self.band_h = int(16 * scale)
        self.legend = _legend_patch(grades, width, max(40, int(0.24 * height)), scale)
        self.bar = _scale_bar_patch(um_per_px, width, self.band_h, scale)

    def paste(self, img: np.ndarray) -> None:
        H, W = img.shape[:2]
        lh, lw = self.legend.shape[:2]
        lh, lw = min(lh, H), min(lw, W)
        img[H - lh:H, 0:lw] = self.legend[-lh:, :lw]
        if self.bar is not None:
            bh, bw = self.bar.shape[:2]
            if bw < W - int(200 * self.scale):  # leave the time stamp free
                img[0:bh, W - bw:W] = self.bar


def _draw(img: np.ndarray, f: int, fps: float, index: _TrackIndex, trail: int, scale: float,
          overlay: _Overlay | None = None) -> None:
    fs_id = 0.45 * scale
    thick = 2 if scale >= 1.5 else 1
    for k in index.alive(f):
        it = index.items[k]
        fr = it["frame"]
        hi = int(np.searchsorted(fr, f, side="right"))
        lo = int(np.searchsorted(fr, f - trail, side="left"))
        pts = it["xy"][lo:hi]
        if len(pts) >= 2:
            cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], False, it["color"], thick, cv2.LINE_AA, shift=4)
        if hi and fr[hi - 1] == f:
            (x, y), (w, h) = it["xy"][hi - 1], it["wh"][hi - 1]
            w, h = (w if np.isfinite(w) else 10.0), (h if np.isfinite(h) else 10.0)
            p0 = (int(round(x - w / 2)), int(round(y - h / 2)))
            p1 = (int(round(x + w / 2)), int(round(y + h / 2)))
            cv2.rectangle(img, p0, p1, it["color"], thick, cv2.LINE_AA)
            _outlined_text(img, str(it["id"]), (p1[0] + 2, p0[1] + int(8 * scale)), fs_id, it["color"], thick)
    cv2.rectangle(img, (0, 0), (int(190 * scale), int(16 * scale)), _BG, -1)
    cv2.putText(img, f"t {f / fps:6.2f} s  frame {f}", (3, int(12 * scale)), _FONT, 0.4 * scale,
                _WHITE, 1, cv2.LINE_AA)
    if overlay is not None:
        overlay.paste(img)


def _cut(gray: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop centred on ``(x, y)``; outside the frame is filled by replication."""
    half = size // 2
    pad = cv2.copyMakeBorder(gray, half, half, half, half, cv2.BORDER_REPLICATE)
    cx, cy = int(round(x)) + half, int(round(y)) + half
    return pad[cy - half:cy - half + size, cx - half:cx - half + size].copy()


class FrameRenderer:
    """The annotated video and the gallery crops as a frame consumer, for a decoding pass shared
    with other consumers (the morphology crops): hand it every frame with :meth:`feed` in
    increasing index order up to :attr:`stop`, then :meth:`close` it (or :meth:`abort` on error).

    Args:
        tracks, metrics, fps, out_path, trail_s, crop_picks, crop_px, um_per_px: as
            :func:`render_pass`.
        width, height: frame size in px.
        n_frames: frames in the video (those analysed).

    Attributes:
        stop: one past the last frame it needs: every frame with a video output, else the last
            frame a crop needs.
    """

    def __init__(self, tracks: pd.DataFrame, metrics: pd.DataFrame, *, fps: float, width: int, height: int,
                 n_frames: int, out_path: str | Path | None = None, trail_s: float = 1.0,
                 crop_picks: dict[int, tuple[int, float, float]] | None = None, crop_px: int = 40,
                 um_per_px: float | None = None):
        from spermtrack.io.video import VideoWriter

        self.seconds = 0.0  # time spent drawing, cutting and encoding
        self.picks_by_frame: dict[int, list] = {}
        for tid, (f, x, y) in (crop_picks or {}).items():
            self.picks_by_frame.setdefault(int(f), []).append((int(tid), x, y))
        last_needed = max(self.picks_by_frame, default=-1)
        self.index = _TrackIndex(tracks, metrics) if out_path is not None else None
        self.fps = fps
        self.trail = max(1, int(round(trail_s * fps)))
        self.crop_px = crop_px
        self.crops: dict[int, np.ndarray] = {}
        W, H = self.W, self.H = width, height
        self.stop = int(n_frames) if out_path is not None else min(int(n_frames), last_needed + 1)
        self.scale = max(1.0, W / 640.0)
        self.writer = VideoWriter(out_path, fps, W + W % 2, H + H % 2) if out_path is not None else None
        self.overlay = None
        if self.writer is not None:
            if um_per_px is None:
                um_per_px = metrics.attrs.get("um_per_px")
            order = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded"]
            grades = order + sorted(g for g in self.index.grades if g not in order)
            self.overlay = _Overlay(W + W % 2, H + H % 2, grades, um_per_px, self.scale)
        self.done = 0

    def feed(self, idx: int, gray: np.ndarray) -> None:
        """Cut the crops of frame ``idx`` and draw and write it (with a video output)."""
        t = time.perf_counter()
        for tid, x, y in self.picks_by_frame.get(idx, ()):
            self.crops[tid] = _cut(gray, x, y, self.crop_px)
        if self.writer is not None:
            W, H = self.W, self.H
            img = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
            if W % 2 or H % 2:
                img = cv2.copyMakeBorder(img, 0, H % 2, 0, W % 2, cv2.BORDER_REPLICATE)
            _draw(img, idx, self.fps, self.index, self.trail, self.scale, self.overlay)
            self.writer.write(img)
        self.done = idx + 1
        self.seconds += time.perf_counter() - t

    def abort(self) -> None:
        """Drop the unfinished video (nothing is left at its path)."""
        if self.writer is not None:
            self.writer.__exit__(RuntimeError, RuntimeError("aborted"), None)
            self.writer = None

    def close(self) -> dict:
        """Finish the video. Returns ``{"crops": {track_id: crop}, "n_frames": frames written,
        "seconds": time spent in this consumer}``."""
        t = time.perf_counter()
        if self.writer is not None:
            self.writer.close()
        self.seconds += time.perf_counter() - t
        return {"crops": self.crops, "n_frames": self.done, "seconds": self.seconds}


def render_pass(video: str | Path, tracks: pd.DataFrame, metrics: pd.DataFrame, *, fps: float,
                out_path: str | Path | None = None, trail_s: float = 1.0,
                crop_picks: dict[int, tuple[int, float, float]] | None = None, crop_px: int = 40,
                n_frames: int | None = None, user_fps: float | None = None,
                um_per_px: float | None = None, progress=None) -> dict:
    """Decode ``video`` once: write the annotated MP4 (when ``out_path``) and cut gallery crops
    (:class:`FrameRenderer` on its own pass; ``spermtrack analyze`` shares its pass with the
    morphology crops instead).

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
        um_per_px: the scale of the scale bar; defaults to ``metrics.attrs["um_per_px"]`` (no bar
            without one).
        progress: ``progress(done, total, elapsed_s)``.

    Returns:
        ``{"crops": {track_id: crop}, "n_frames": frames written, "seconds": wall time}``.
    """
    from spermtrack.io.video import VideoReader

    t0 = time.perf_counter()
    reader = VideoReader(video, fps=user_fps)
    meta = reader.meta
    renderer = FrameRenderer(tracks, metrics, fps=fps, width=meta.width, height=meta.height,
                             n_frames=min(n_frames or meta.n_frames, meta.n_frames), out_path=out_path,
                             trail_s=trail_s, crop_picks=crop_picks, crop_px=crop_px, um_per_px=um_per_px)
    total = renderer.stop
    try:
        for idx, _, gray in reader.iter_frames():
            if idx >= total:
                break
            renderer.feed(idx, gray)
            if progress is not None and renderer.done % 64 == 0:
                progress(renderer.done, total, time.perf_counter() - t0)
    except VideoDecodeError:
        pass  # a truncated file: the frames before the damage were drawn, as they were analysed
    except BaseException:
        renderer.abort()
        raise
    finally:
        reader.close()
    out = renderer.close()
    if progress is not None:
        progress(renderer.done, total, time.perf_counter() - t0)
    return {**out, "seconds": time.perf_counter() - t0}


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
