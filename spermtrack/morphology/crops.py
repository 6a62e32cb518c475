"""Crop routing: choose K sharp, isolated, non-border crops per track and cut them from the video.

A crop is a fixed-size gray patch (default 64 x 64 px) resampled from one frame so that the head
centre sits at the *anchor* (by default the crop centre) and the crop's +x axis points the way
the cell swims (or along the head's major axis, when the cell does not move). Its rear, where
midpiece and tail trail, is then toward -x. Frames are streamed: only the candidate crops of
the frame being decoded and the K best crops per track so far are ever held.

Coordinates: pixel-centre convention everywhere (pixel ``(r, c)`` has its centre at
``x = c, y = r``), in frames and in crops. Crop point ``(u, v)`` maps to frame point
``(x, y) + R(angle) @ (u - anchor_u, v - anchor_v)``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import cv2
import numpy as np
import pandas as pd

from spermtrack.errors import ParameterError


@dataclass(frozen=True)
class CropParams:
    """How crops are chosen and cut.

    Attributes:
        k: crops kept per track (the sharpest among the candidates).
        size: crop side in px (int), or ``(width, height)``.
        anchor: position of the head centre along the crop's x axis, as a fraction of the width
            (0.5 = centred; 0.8 leaves room behind the head for a whole tail).
        orient: ``"auto"`` (direction of motion when the head moved at least ``min_motion_px``
            over the window, else the head's major axis), ``"motion"``, ``"head"`` or ``"none"``.
        motion_window: half-window (frames) of the displacement that defines the direction of motion.
        min_motion_px: displacement over the window below which ``auto`` uses the head axis.
        border_px: a head centre closer than this to the frame border is not used.
        min_separation_px: a head whose nearest other head (same frame) is closer is not used;
            heads whose boxes overlap another box are not used either.
        candidates_per_track: at most this many candidate frames per track (evenly spread over
            the track) are cut and scored; the K sharpest are kept.
        sharpness_radius_px: half-side of the central window whose Laplacian variance is the
            sharpness score.
        um_per_px: scale; needed to size the tail window (``analyze_morphology`` fills it in).
        tail_um: the *tail window* reaches this far behind the head centre (um): a larger crop,
            same centre, orientation and sampling, cut from the same frame, on which the tail is
            traced (a 45-um tail is ~90 px at 0.5 um/px). None (or no ``um_per_px``): no window,
            the tail is traced in the crop itself and is often cut by its border.
        tail_side_um: half-height of the tail window (um). By default the window reaches as far
            to the sides and ahead as behind: the crop's orientation is not trusted (a still
            cell's rear is a guess; a slow one's direction of motion is its box jitter), and a
            tail leaves its head wherever it does.
        tail_ahead_um: the tail window reaches this far ahead of the head centre (um); None: 4 um
            (or the crop's own front edge, whichever is farther).
    """

    k: int = 5
    size: int | tuple[int, int] = 64
    anchor: float = 0.5
    orient: str = "auto"
    motion_window: int = 3
    min_motion_px: float = 2.0
    border_px: float = 16.0
    min_separation_px: float = 12.0
    candidates_per_track: int = 30
    sharpness_radius_px: int = 8
    um_per_px: float | None = None
    tail_um: float | None = 50.0
    tail_side_um: float = 50.0
    tail_ahead_um: float | None = 50.0

    @property
    def wh(self) -> tuple[int, int]:
        return (int(self.size), int(self.size)) if np.isscalar(self.size) else (int(self.size[0]), int(self.size[1]))

    @property
    def anchor_uv(self) -> tuple[float, float]:
        """Head centre in crop px (pixel-centre coordinates)."""
        w, h = self.wh
        return self.anchor * w - 0.5, h / 2.0 - 0.5

    def window(self) -> tuple[int, int, int, int] | None:
        """Tail window ``(width, height, ou, ov)``: crop pixel ``(u, v)`` is window pixel
        ``(u + ou, v + ov)`` (integer offsets, so both sample the frame at the same points).
        None when no window is asked for."""
        if self.tail_um is None or self.um_per_px is None:
            return None
        w, h = self.wh
        au, av = self.anchor_uv
        back = int(np.ceil(self.tail_um / self.um_per_px))
        side = int(np.ceil(self.tail_side_um / self.um_per_px))
        u0 = min(0, int(np.floor(au)) - back)
        ahead = 4.0 if self.tail_ahead_um is None else float(self.tail_ahead_um)
        u1 = max(w - 1, int(np.ceil(au)) + int(np.ceil(ahead / self.um_per_px)))
        v0 = min(0, int(np.floor(av)) - side)
        v1 = max(h - 1, int(np.ceil(av)) + side)
        return u1 - u0 + 1, v1 - v0 + 1, -u0, -v0

    def validate(self) -> "CropParams":
        w, h = self.wh
        if self.um_per_px is not None:
            from spermtrack.types import check_um_per_px

            check_um_per_px(self.um_per_px)
        if self.tail_um is not None and not 0.0 < float(self.tail_um) <= 200.0:
            raise ParameterError(f"tail_um={self.tail_um!r} must be within (0, 200] um (or None: no tail window)")
        win = self.window()
        if win is not None and max(win[0], win[1]) > 2048:
            raise ParameterError(f"tail window {win[0]}x{win[1]} px is too large (lower tail_um or tail_side_um)")
        if int(self.k) < 1:
            raise ParameterError(f"k={self.k!r} crops per track must be >= 1")
        if not (16 <= w <= 1024 and 16 <= h <= 1024):
            raise ParameterError(f"crop size {w}x{h} px must be within 16..1024 px")
        if not 0.0 < self.anchor < 1.0:
            raise ParameterError(f"anchor={self.anchor!r} must be a fraction in (0, 1)")
        if self.orient not in ("auto", "motion", "head", "none"):
            raise ParameterError(f"orient={self.orient!r} must be auto, motion, head or none")
        if self.candidates_per_track < self.k:
            raise ParameterError(f"candidates_per_track={self.candidates_per_track} must be >= k={self.k}")
        return self


@dataclass
class CropSet:
    """Crops and where they came from.

    Attributes:
        images: ``(N, H, W) uint8`` gray crops.
        table: one row per crop: ``track_id, frame, x, y`` (head centre in the frame, px),
            ``angle_rad`` (crop +x direction in the frame, radians, image axes: y down),
            ``orient_source`` (``motion``, ``head`` or ``none``), ``sharpness`` (Laplacian
            variance of the central window), ``separation_px`` (distance to the nearest other
            head in the frame; inf when alone), ``anchor_u, anchor_v`` (head centre in the crop).
        params: the :class:`CropParams` used.
        windows: ``(N, Hw, Ww) uint8`` tail windows (see :meth:`CropParams.window`; pixels beyond
            the frame are 0, all others at least 1: :func:`cut_window`), or None.
        window_origin: ``(ou, ov)``: crop pixel ``(u, v)`` is window pixel ``(u + ou, v + ov)``.
    """

    images: np.ndarray
    table: pd.DataFrame
    params: CropParams = field(default_factory=CropParams)
    windows: np.ndarray | None = None
    window_origin: tuple[int, int] = (0, 0)

    def __len__(self) -> int:
        return len(self.images)


def motion_angles(tracks: pd.DataFrame, window: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Direction of motion (radians) and displacement (px) of every row of a sorted Tracks table.

    The direction at frame f is that of ``p(f + window) - p(f - window)`` within the same track
    (clipped at the track ends), which averages out most of the head's lateral beat.
    """
    tid = tracks["track_id"].to_numpy()
    xy = tracks[["x", "y"]].to_numpy(np.float64)
    n = len(tid)
    idx = np.arange(n)
    starts = np.r_[0, np.flatnonzero(np.diff(tid)) + 1]
    ends = np.r_[starts[1:], n] - 1
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    lo = np.maximum(idx - window, starts[seg]) if n else idx
    hi = np.minimum(idx + window, ends[seg]) if n else idx
    d = xy[hi] - xy[lo]
    return np.arctan2(d[:, 1], d[:, 0]), np.hypot(d[:, 0], d[:, 1])


def _separation(tracks: pd.DataFrame) -> np.ndarray:
    """Per row: distance (px) to the nearest other head of the same frame, 0 where boxes overlap."""
    out = np.full(len(tracks), np.inf)
    frame = tracks["frame"].to_numpy()
    order = np.argsort(frame, kind="stable")
    fs = frame[order]
    cut = np.r_[0, np.flatnonzero(np.diff(fs)) + 1, len(fs)]
    x, y = tracks["x"].to_numpy(np.float64), tracks["y"].to_numpy(np.float64)
    w = np.nan_to_num(tracks["w"].to_numpy(np.float64), nan=0.0)
    h = np.nan_to_num(tracks["h"].to_numpy(np.float64), nan=0.0)
    for a, b in zip(cut[:-1], cut[1:]):
        if b - a < 2:
            continue
        r = order[a:b]
        dx = np.abs(x[r, None] - x[None, r])
        dy = np.abs(y[r, None] - y[None, r])
        d = np.hypot(dx, dy)
        overlap = (dx < (w[r, None] + w[None, r]) / 2) & (dy < (h[r, None] + h[None, r]) / 2)
        d[overlap] = 0.0
        np.fill_diagonal(d, np.inf)
        out[r] = d.min(axis=1)
    return out


def plan_candidates(tracks: pd.DataFrame, width: int, height: int, params: CropParams | None = None) -> pd.DataFrame:
    """Candidate (track, frame) rows for cropping, from the Tracks table alone (no pixels).

    Interpolated rows (``interpolated`` column), heads within ``border_px`` of the frame border
    and heads closer than ``min_separation_px`` to another head (or whose boxes overlap) are
    dropped; of the rest, at most ``candidates_per_track`` per track, evenly spread in time.

    Returns:
        The chosen rows with extra columns ``angle_rad``, ``motion_px``, ``separation_px``.
    """
    p = (params or CropParams()).validate()
    t = tracks.sort_values(["track_id", "frame"], kind="stable").reset_index(drop=True)
    ang, disp = motion_angles(t, p.motion_window)
    t = t.assign(angle_rad=ang, motion_px=disp, separation_px=_separation(t))
    ok = ((t.x >= p.border_px) & (t.x <= width - 1 - p.border_px)
          & (t.y >= p.border_px) & (t.y <= height - 1 - p.border_px)
          & (t.separation_px >= p.min_separation_px))
    if "interpolated" in t.columns:
        ok &= ~t["interpolated"].astype(bool)
    t = t[ok.to_numpy()]
    keep = []
    for _, g in t.groupby("track_id", sort=True):
        n = len(g)
        m = min(n, p.candidates_per_track)
        keep.append(g.index.to_numpy()[np.unique(np.round(np.linspace(0, n - 1, m)).astype(int))])
    idx = np.concatenate(keep) if keep else np.zeros(0, int)
    return t.loc[idx].reset_index(drop=True)


def head_axis_angle(gray: np.ndarray, x: float, y: float, radius: int = 6) -> float:
    """Major-axis angle (radians, sign-ambiguous) of the bright blob around ``(x, y)``."""
    h, w = gray.shape
    x0, y0 = int(round(x)) - radius, int(round(y)) - radius
    x1, y1 = x0 + 2 * radius + 1, y0 + 2 * radius + 1
    patch = gray[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)].astype(np.float32)
    if patch.size == 0:
        return 0.0
    wts = np.maximum(patch - np.median(patch), 0.0)
    m = cv2.moments(wts)
    if m["m00"] <= 0:
        return 0.0
    return 0.5 * float(np.arctan2(2 * m["mu11"], m["mu20"] - m["mu02"]))


def cut_crop(gray: np.ndarray, x: float, y: float, angle: float, params: CropParams) -> np.ndarray:
    """Resample one crop (bilinear; reflected beyond the frame border)."""
    w, h = params.wh
    au, av = params.anchor_uv
    c, s = np.cos(angle), np.sin(angle)
    m = np.array([[c, -s, x - c * au + s * av], [s, c, y - s * au - c * av]], np.float64)
    return cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


#: tail-window pixel value that marks "beyond the frame" (pixels inside the frame are at least 1)
OUTSIDE = 0


def cut_window(gray: np.ndarray, x: float, y: float, angle: float, params: CropParams) -> np.ndarray:
    """A tail window: :func:`cut_crop`, with the pixels whose centre lies beyond the frame set to
    ``OUTSIDE`` (0) and every other pixel at least 1. A window reaches up to ``tail_um`` from the
    head in every direction, so near the frame border it holds the frame's reflection, where a
    tail must not be traced (it would follow its own mirror image)."""
    win = cut_crop(gray, x, y, angle, params)
    w, h = params.wh
    au, av = params.anchor_uv
    c, s = np.cos(angle), np.sin(angle)
    fh, fw = gray.shape[:2]
    np.maximum(win, 1, out=win)
    # the pixel centres map affinely into the frame, so their extremes are at the window's
    # corners: a window whose corners all lie inside the frame (by a margin far above rounding)
    # has no pixel beyond it, and the per-pixel test below is skipped (same result)
    cu = np.array([0.0, w - 1.0, 0.0, w - 1.0]) - au
    cv = np.array([0.0, 0.0, h - 1.0, h - 1.0]) - av
    cx, cy = x + c * cu - s * cv, y + s * cu + c * cv
    m = 1e-6
    # which frame edges the window crosses (the per-pixel test of an edge no corner crosses is
    # false everywhere); none: no pixel lies beyond the frame
    lo_x, hi_x = cx.min() < -0.5 + m, cx.max() > fw - 0.5 - m
    lo_y, hi_y = cy.min() < -0.5 + m, cy.max() > fh - 0.5 - m
    if not (lo_x or hi_x or lo_y or hi_y):
        return win
    du = np.arange(w, dtype=np.float64) - au
    dv = np.arange(h, dtype=np.float64) - av
    out = np.zeros((h, w), bool)
    if lo_x or hi_x:
        fx = x + c * du[None, :] - s * dv[:, None]
        if lo_x:
            out |= fx < -0.5
        if hi_x:
            out |= fx > fw - 0.5
    if lo_y or hi_y:
        fy = y + s * du[None, :] + c * dv[:, None]
        if lo_y:
            out |= fy < -0.5
        if hi_y:
            out |= fy > fh - 0.5
    win[out] = OUTSIDE
    return win


def sharpness(crop: np.ndarray, params: CropParams) -> float:
    """Variance of the Laplacian in the central window (higher = sharper)."""
    au, av = params.anchor_uv
    r = params.sharpness_radius_px
    u, v = int(round(au)), int(round(av))
    win = crop[max(v - r, 0):v + r + 1, max(u - r, 0):u + r + 1]
    return float(cv2.Laplacian(win, cv2.CV_32F, ksize=3).var())


class CropRouter:
    """:func:`route_crops` as a frame consumer, for a decoding pass shared with other consumers
    (the annotated video): hand it every frame with :meth:`feed` in increasing index order, up to
    :attr:`last_frame`, then take the crops with :meth:`result`.

    Args:
        tracks: a Tracks table (0-based frames, head centres in px).
        width, height: frame size in px.
        params: :class:`CropParams`.

    Attributes:
        last_frame: the last frame a crop may be cut from (-1: none); later frames are ignored.
        track_ids: the tracks that get at least one crop (those with a usable candidate row).
    """

    def __init__(self, tracks: pd.DataFrame, width: int, height: int, params: CropParams | None = None):
        p = (params or CropParams()).validate()
        self.params = p
        cand = plan_candidates(tracks, width, height, p)
        # the candidate rows of every frame, as row tuples made once (one ``itertuples`` over all
        # candidates, not one per fed frame: that was most of the routing time)
        self._by_frame: dict[int, list] = {}
        for r in cand.itertuples(index=False):
            self._by_frame.setdefault(int(r.frame), []).append(r)
        self.last_frame = max(self._by_frame) if self._by_frame else -1
        self.track_ids = frozenset(int(t) for t in cand["track_id"])
        self._best: dict[int, list] = {}
        self._win = p.window()
        if self._win is not None:
            au, av = p.anchor_uv
            win = self._win
            self._wparams = CropParams(size=(win[0], win[1]), anchor=(au + win[2] + 0.5) / win[0])
        self._counter = 0

    def feed(self, index: int, gray: np.ndarray) -> None:
        """Cut and score the candidate crops of frame ``index`` (gray or BGR), keeping the K best per track."""
        rows = self._by_frame.get(int(index))
        if rows is None:
            return
        p, best = self.params, self._best
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        for r in rows:
            angle, source = _orientation(gray, r, p)
            crop = cut_crop(gray, r.x, r.y, angle, p)
            score = sharpness(crop, p)
            heap = best.setdefault(int(r.track_id), [])
            if len(heap) >= p.k and score <= heap[0][0]:
                continue
            # the tail window only for crops that enter the heap: same centre, angle and sampling
            window = cut_window(gray, r.x, r.y, angle, self._wparams) if self._win is not None else None
            item = (score, self._counter, int(r.track_id), int(r.frame), float(r.x), float(r.y), angle, source,
                    float(r.separation_px), crop, window)
            self._counter += 1
            (heapq.heappush if len(heap) < p.k else heapq.heappushpop)(heap, item)

    def result(self) -> CropSet:
        """The crops kept so far, ordered by track id, then frame."""
        p, win = self.params, self._win
        items = sorted((it for heap in self._best.values() for it in heap), key=lambda it: (it[2], it[3]))
        w, h = p.wh
        au, av = p.anchor_uv
        images = np.stack([it[9] for it in items]) if items else np.zeros((0, h, w), np.uint8)
        table = pd.DataFrame({
            "track_id": pd.Series([it[2] for it in items], dtype="int64"),
            "frame": pd.Series([it[3] for it in items], dtype="int64"),
            "x": pd.Series([it[4] for it in items], dtype="float64"),
            "y": pd.Series([it[5] for it in items], dtype="float64"),
            "angle_rad": pd.Series([it[6] for it in items], dtype="float64"),
            "orient_source": pd.Series([it[7] for it in items], dtype="object"),
            "sharpness": pd.Series([it[0] for it in items], dtype="float64"),
            "separation_px": pd.Series([it[8] for it in items], dtype="float64"),
        })
        table["anchor_u"], table["anchor_v"] = au, av
        if win is None:
            return CropSet(images, table, p)
        windows = np.stack([it[10] for it in items]) if items else np.zeros((0, win[1], win[0]), np.uint8)
        return CropSet(images, table, p, windows, (win[2], win[3]))


def route_crops(frames: Iterable[tuple[int, np.ndarray]], tracks: pd.DataFrame, width: int, height: int,
                params: CropParams | None = None) -> CropSet:
    """Choose and cut the K best crops of every track while streaming frames once.

    Args:
        frames: ``(index, gray uint8 (H, W))`` in increasing index order (e.g. from
            :meth:`spermtrack.io.video.VideoReader.iter_frames`, ignoring the timestamp).
        tracks: a Tracks table (0-based frames, head centres in px).
        width, height: frame size in px.
        params: :class:`CropParams`.

    Returns:
        A :class:`CropSet` ordered by track id, then frame. Tracks with no usable frame have no crop.
    """
    router = CropRouter(tracks, width, height, params)
    for index, gray in frames:
        if index > router.last_frame:
            break
        router.feed(index, gray)
    return router.result()


def _orientation(gray: np.ndarray, r, p: CropParams) -> tuple[float, str]:
    if p.orient == "none":
        return 0.0, "none"
    if p.orient == "motion" or (p.orient == "auto" and r.motion_px >= p.min_motion_px):
        return float(r.angle_rad), "motion"
    ang = head_axis_angle(gray, r.x, r.y)
    # the axis has no sign: the rear is the side the dark midpiece and tail leave from
    t = np.arange(6.0, 20.0)
    h, w = gray.shape
    def side(sign):
        xs = np.clip(np.round(r.x + sign * t * np.cos(ang)).astype(int), 0, w - 1)
        ys = np.clip(np.round(r.y + sign * t * np.sin(ang)).astype(int), 0, h - 1)
        return float(gray[ys, xs].mean())
    if side(1.0) < side(-1.0):
        ang += np.pi
    return float(np.angle(np.exp(1j * ang))), "head"


def route_crops_from_video(video, tracks: pd.DataFrame, params: CropParams | None = None,
                           fps: float | None = None, n_frames: int | None = None, progress=None) -> CropSet:
    """:func:`route_crops` on a video file, decoded once and streamed (never held whole).

    ``n_frames``: the frames that were analysed; decoding stops there, and a file damaged
    beyond them (a truncated recording) is not an error: its good frames were what the
    streaming pass analysed. ``progress(done, total, elapsed_s)`` is called as frames go by.
    """
    from spermtrack.io.video import VideoReader

    with VideoReader(video, fps=fps) as reader:
        meta = reader.meta
        last = int(tracks["frame"].max()) + 1 if len(tracks) else 0  # no crop is cut after the last track row
        total = min(n_frames if n_frames is not None else meta.n_frames, last)
        return route_crops(_frames_upto(reader, total, progress), tracks, meta.width, meta.height, params)


def _frames_upto(reader, n_frames: int | None, progress=None) -> Iterator[tuple[int, np.ndarray]]:
    import time

    from spermtrack.errors import VideoDecodeError

    t0 = time.perf_counter()
    try:
        for i, _, g in reader.iter_frames():
            if n_frames is not None and i >= n_frames:
                break
            yield i, g
            if progress is not None and (i + 1) % 64 == 0:
                progress(i + 1, n_frames or i + 1, time.perf_counter() - t0)
    except VideoDecodeError:
        if n_frames is None:
            raise
    if progress is not None:
        progress(n_frames or 0, n_frames or 0, time.perf_counter() - t0)
