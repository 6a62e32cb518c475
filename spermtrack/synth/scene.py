"""One simulated video in memory: objects, noise-free paths, visibility, boxes and truth.

:func:`simulate_cells` is the in-memory entry point (no files): it returns a :class:`Scene`
whose ``truth`` (one row per track) and ``boxes`` (a ``Tracks`` table, one row per object and
frame in view) are exact, and which :mod:`spermtrack.synth.render` turns into frames.

Cells live on a torus: the frame grown by :data:`REACH_UM` + 10 um on every side, at the density
that puts ``cells`` sperm heads in view on average. A cell that swims off one side re-enters on
the other as a new object (new track, new shape), so cells stream in and out at a steady rate
whatever the duration, and memory grows only linearly with it.

Conventions:
- Positions in px use pixel-centre coordinates (pixel column ``c`` spans ``x = c - 0.5 .. c +
  0.5``; the convention of OpenCV drawing and image moments). Labels store ``(x + 0.5) / width``
  (YOLO's edge coordinates, as VISEM's labels; :data:`spermtrack.types.EDGE_OFFSET_PX`).
- A sperm is *in view* on a frame when its rendered head centre lies on the frame
  (``0 <= x <= width - 1`` and ``0 <= y <= height - 1``). Tails and heads partly outside are
  still drawn.
- Label boxes are centred on the head centroid, with half-sizes equal to the rotated head
  outline's extent plus :data:`BOX_MARGIN_UM`, then clipped to the frame (``[-0.5, width - 0.5] x [-0.5, height - 0.5]``)
  (so a clipped box's centre moves inward; ``gt/paths.npz`` keeps the true centres).
- Track ids are dense ints ``0..K-1`` in order of first appearance (frame, then object), which
  is also the order a VISEM reader assigns to the string ids; ``track_uid`` is
  ``syn<video>t<track_id:04d>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spermtrack.errors import ParameterError
from spermtrack.synth import motion, morph
from spermtrack.synth.motion import CellParams, Paths
from spermtrack.synth.presets import (CIRCLING_SHARE, DEFAULT_LOOK, DEFAULT_MIX, MIX_CONCENTRATION, POPULATIONS,
                                      Difficulty, VisemLook, check_look, get_preset, get_visem_look)
from spermtrack.types import EDGE_OFFSET_PX, check_positive, make_tracks

#: Margin added on each side of the head outline to make a label box (um).
BOX_MARGIN_UM = 2.0
#: Extent of an object beyond its head centre that can still reach the frame (um): the longest
#: midpiece + tail + wave amplitude is about 60 um. Cells live on a torus this much (+10 um)
#: larger than the frame on each side (see :func:`spermtrack.synth.motion.wrap_copies`).
REACH_UM = 70.0


@dataclass
class Debris:
    """Unlabelled debris discs: positions ``(m, T, 2)`` px, radius px, signed contrast, blur px."""

    pos_px: np.ndarray
    radius_px: np.ndarray
    contrast: np.ndarray
    blur_px: np.ndarray


@dataclass
class Distractors:
    """Unlabelled moving objects of the ``visem`` look (never in labels or truth).

    ``kind``: 0 out-of-focus sperm (grey or dark blob, most with a faint tail), 1 round bright
    blob without a tail (impurity), 2 large round cell. Positions ``(m, T, 2)`` px; ``heading``
    (m,) the direction the tail trails from (rad); ``radius`` px; ``contrast`` signed body
    contrast; ``ring`` contrast of the bright (positive) or dark ring around the body; ``blur``
    px; ``tail_px`` tail length (0: none); ``tail_contrast`` (darkness of the tail).
    """

    kind: np.ndarray
    pos_px: np.ndarray
    heading: np.ndarray
    radius: np.ndarray
    contrast: np.ndarray
    ring: np.ndarray
    blur: np.ndarray
    tail_px: np.ndarray
    tail_contrast: np.ndarray
    elong: np.ndarray


@dataclass
class Scene:
    """A simulated video before rendering (see module docstring for conventions)."""

    video_id: str
    width: int
    height: int
    fps: float
    n_frames: int
    um_per_px: float
    preset: Difficulty
    params: dict
    cells: list[CellParams]
    paths: Paths
    head_px: np.ndarray
    in_view: np.ndarray
    track_of: np.ndarray
    boxes: pd.DataFrame
    truth: pd.DataFrame
    debris: Debris
    gain: np.ndarray
    render_entropy: tuple[int, ...]
    mix: dict = field(default_factory=dict)
    look: str = "classic"
    look_params: VisemLook | None = None
    distractors: Distractors | None = None
    box_margin_um: float = BOX_MARGIN_UM

    @property
    def n_tracks(self) -> int:
        return int(self.track_of.max()) + 1 if len(self.track_of) and self.track_of.max() >= 0 else 0


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    try:
        return np.random.SeedSequence(int(seed))
    except (TypeError, ValueError):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}") from None


def validate_params(*, seconds, fps, cells, um_per_px, width, height, hyperactivated) -> dict:
    """Check the user-facing parameters; return them normalised (raises ParameterError)."""
    out = {
        "seconds": check_positive("seconds", seconds, 0.04, 3600.0),
        "fps": check_positive("fps", fps, 5.0, 500.0),
        "cells": check_positive("cells", cells, 0.0, 2000.0),
        "um_per_px": check_positive("um_per_px", um_per_px, 0.1, 2.0),
        "hyperactivated": check_positive("hyperactivated", hyperactivated, 0.0, 1.0),
    }
    for name, v in (("width", width), ("height", height)):
        iv = int(check_positive(name, v, 32, 4096))
        if iv != float(v) or iv % 2:
            raise ParameterError(f"{name}={v!r} must be an even integer in [32, 4096] (video 4:2:0)")
        out[name] = iv
    if int(round(out["seconds"] * out["fps"])) < 2:
        raise ParameterError(f"seconds*fps = {out['seconds'] * out['fps']:.2f}: need at least 2 frames")
    return out


def simulate_cells(*, seconds: float = 2.0, fps: float = 50.0, cells: float = 20, um_per_px: float = 0.5,
                   seed=0, difficulty: str = "medium", width: int = 640, height: int = 480,
                   hyperactivated: float = 0.0, mix: dict[str, float] | None = None,
                   video_id: str = "0", look: str = DEFAULT_LOOK) -> Scene:
    """Simulate one video's objects and truth in memory (nothing is rendered or written).

    Args:
        seconds, fps: duration and frame rate; ``n_frames = round(seconds * fps)``.
        cells: expected number of sperm heads in view at any time (density).
        um_per_px: scale; all motion is simulated in um and converted.
        seed: int or ``numpy.random.SeedSequence``; the same seed gives the same scene.
        difficulty: a preset of :mod:`spermtrack.synth.presets` (debris, clusters, pinheads,
            jitter, blur, contrast, noise, flicker).
        width, height: frame size in px.
        hyperactivated: share of sperm that are hyperactivated (taken from rapid first).
        mix: WHO shares ``{"rapid_progressive", "slow_progressive", "non_progressive",
            "immotile"}`` used exactly; default: drawn per video around 35/15/20/30 %.
        video_id: id used in the string track ids.
        look: ``visem`` (default: like real VISEM-Tracking frames, with unlabelled debris,
            out-of-focus cells, bright blobs and large round cells; near-square label boxes
            ~24x22 px including the glow) or ``classic`` (the original look, bit-for-bit).
            The cells' motion and shapes are the same for both looks at the same seed.
    """
    look = check_look(look)
    p = validate_params(seconds=seconds, fps=fps, cells=cells, um_per_px=um_per_px, width=width,
                        height=height, hyperactivated=hyperactivated)
    preset = get_preset(difficulty, look)
    ss = _seed_sequence(seed)
    ss_motion, ss_render = ss.spawn(2)
    rng = np.random.default_rng(ss_motion)
    T, fps, s = int(round(p["seconds"] * p["fps"])), p["fps"], p["um_per_px"]
    W, H = p["width"], p["height"]
    frame_um = (W * s, H * s)

    shares = motion.draw_mix(rng, p["hyperactivated"], mix, DEFAULT_MIX, MIX_CONCENTRATION, CIRCLING_SHARE)
    all_cells: list[CellParams] = []
    parts: list[Paths] = []
    m = REACH_UM + 10.0
    region = (-m, -m, frame_um[0] + m, frame_um[1] + m)
    for key, n in motion.population_counts(shares, p["cells"], frame_um, m).items():
        if n == 0:
            continue
        c, pa = motion.draw_and_simulate(POPULATIONS[key], n, region, T, fps, rng)
        c, pa = motion.wrap_copies(c, pa, m, frame_um)
        all_cells += c
        parts.append(pa)

    extra_cells, extra_paths = _pinheads_and_clusters(preset, p["cells"], frame_um, T, fps, rng)
    all_cells += extra_cells
    parts += extra_paths
    paths = motion.concat_paths(parts, fps, T)
    for c in all_cells:
        if c.head_area_um2 == 0.0 and not c.members:
            motion.draw_shape(c, rng)
        motion.appearance(c, preset, rng)
        for _, _, m in c.members:
            motion.appearance(m, preset, rng)

    head_px = paths.head_um / s
    if preset.head_jitter_um > 0:
        head_px = head_px + rng.standard_normal(head_px.shape) * (preset.head_jitter_um / s)
    in_view = ((head_px[..., 0] >= 0) & (head_px[..., 0] <= W - 1)
               & (head_px[..., 1] >= 0) & (head_px[..., 1] <= H - 1))
    track_of = _assign_tracks(in_view)
    debris = _debris(preset, W, H, s, T, fps, rng)
    gain = 1.0 + preset.flicker * rng.standard_normal(T)
    look_params, distractors, margin = None, None, BOX_MARGIN_UM
    params = {**p, "seed": ss.entropy, "difficulty": preset.name, "mix": mix, "look": look}
    if look == "visem":
        # a third stream (what ss.spawn would give next), so cells stay those of the classic look
        rng_look = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 2)))
        look_params = get_visem_look(preset.name)
        margin = float(rng_look.uniform(*look_params.box_margin_um))
        params["background_level"] = float(rng_look.uniform(*look_params.background_range))
        distractors = _distractors(look_params, W, H, s, T, fps, rng_look)
        params["box_margin_um"] = margin
        params["visem_look"] = look_params.to_dict()
    scene = Scene(video_id=str(video_id), width=W, height=H, fps=fps, n_frames=T, um_per_px=s,
                  preset=preset, params=params,
                  cells=all_cells, paths=paths, head_px=head_px, in_view=in_view, track_of=track_of,
                  boxes=pd.DataFrame(), truth=pd.DataFrame(), debris=debris, gain=gain,
                  render_entropy=(int(ss_render.entropy), *ss_render.spawn_key), mix=shares,
                  look=look, look_params=look_params, distractors=distractors, box_margin_um=margin)
    scene.boxes = label_boxes(scene)
    from spermtrack.synth.truth import truth_table

    scene.truth = truth_table(scene)
    return scene


def _assign_tracks(in_view: np.ndarray) -> np.ndarray:
    """Dense track ids by (first in-view frame, object row); -1 for objects never in view."""
    n = in_view.shape[0]
    seen = in_view.any(axis=1)
    first = np.where(seen, in_view.argmax(axis=1), np.iinfo(np.int64).max)
    order = np.lexsort((np.arange(n), first))
    track_of = np.full(n, -1, dtype=np.int64)
    k = 0
    for row in order:
        if seen[row]:
            track_of[row] = k
            k += 1
    return track_of


def _pinheads_and_clusters(preset: Difficulty, cells: float, frame_um, T: int, fps: float,
                           rng: np.random.Generator) -> tuple[list[CellParams], list[Paths]]:
    """Pinheads (class 2, immotile, tiny round heads) and clusters (class 1, static clumps)."""
    W, H = frame_um
    out: list[CellParams] = []
    starts = []
    n_pin = rng.binomial(int(round(cells)), preset.pinhead_prob) if cells >= 1 else 0
    for _ in range(n_pin):
        c = CellParams(cls=2, population="pinhead", motion="brownian", pattern="brownian",
                       d_um2_s=rng.uniform(0.02, 0.1), d_r_rad2_s=0.01)
        motion.draw_shape(c, rng, variant="round", tail_variant="short")
        size = rng.uniform(1.5, 2.5)
        c.head_poly_um = morph.head_polygon_um("round", size, size * rng.uniform(0.85, 1.0), rng)
        c.head_length_um, c.head_width_um = morph.feret_diameters(c.head_poly_um)
        c.head_area_um2 = morph.polygon_area(c.head_poly_um)
        c.head_variant = "pinhead"
        c.midpiece_length_um = 0.5 * c.midpiece_length_um
        out.append(c)
        starts.append((rng.uniform(0, W), rng.uniform(0, H)))
    lo, hi = preset.clusters
    for _ in range(int(rng.integers(lo, hi + 1)) if hi > 0 else 0):
        c = CellParams(cls=1, population="cluster", motion="brownian", pattern="brownian",
                       d_um2_s=0.005, d_r_rad2_s=0.0)
        for _ in range(int(rng.integers(3, 7))):
            m = CellParams(cls=0, population="cluster_member", motion="brownian", pattern="static")
            motion.draw_shape(m, rng, variant="normal")
            off = rng.normal(0.0, 2.5, 2)
            # heads point inward, tails radiate out: agglutinated head-to-head
            c.members.append((off, float(np.arctan2(-off[1], -off[0]) + rng.normal(0, 0.4)), m))
        out.append(c)
        starts.append((rng.uniform(15.0, W - 15.0), rng.uniform(15.0, H - 15.0)))
    if not out:
        return [], []
    pa = motion.simulate_paths(out, np.array(starts, dtype=np.float64),
                               rng.uniform(0, 2 * np.pi, len(out)), T, fps, rng)
    return out, [pa]


def _debris(preset: Difficulty, W: int, H: int, s: float, T: int, fps: float,
            rng: np.random.Generator) -> Debris:
    """Debris discs 1-6 um drifting with one slow flow (0-3 um/s) plus Brownian jitter."""
    flow_um_s = rng.uniform(0.0, 3.0) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    m = rng.poisson(preset.debris_per_frame * W * H / (640.0 * 480.0))
    reach = np.abs(flow_um_s) * T / fps / s + 10.0
    x0 = rng.uniform(-reach[0], W + reach[0], m)
    y0 = rng.uniform(-reach[1], H + reach[1], m)
    t = np.arange(T) / fps
    brown = np.cumsum(rng.standard_normal((m, T, 2)) * np.sqrt(2 * 0.02 / fps), axis=1) / s
    pos = np.stack([x0, y0], -1)[:, None, :] + (flow_um_s[None, None, :] * t[None, :, None]) / s + brown
    lo, hi = preset.debris_contrast
    contrast = rng.uniform(lo, hi, m) * rng.choice((-1.0, 1.0), m, p=(0.6, 0.4))
    return Debris(pos, rng.uniform(0.5, 3.0, m) / s, contrast, rng.uniform(0.3, 1.2, m))


def _distractors(lk: VisemLook, W: int, H: int, s: float, T: int, fps: float,
                 rng: np.random.Generator) -> Distractors:
    """Unlabelled out-of-focus sperm, bright blobs and large round cells (``visem`` look).

    They live on a torus 40 px larger than the frame on each side, so their density stays
    steady however long the video; out-of-focus sperm swim slowly (0-25 um/s) along their
    heading with a small wobble, blobs and large cells drift (0-2 um/s) with Brownian jitter.
    """
    area = W * H / (640.0 * 480.0)
    pad = 40.0
    n_oof = int(rng.poisson(lk.oof_cells * area * (W + 2 * pad) * (H + 2 * pad) / (W * H)))
    n_blob = int(rng.poisson(lk.bright_blobs * area))
    n_big = int(rng.integers(lk.large_cells[0], lk.large_cells[1] + 1)) if lk.large_cells[1] > 0 else 0
    m = n_oof + n_blob + n_big
    kind = np.repeat(np.array([0, 1, 2]), [n_oof, n_blob, n_big])
    t = np.arange(T) / fps
    heading = rng.uniform(0, 2 * np.pi, m)
    speed = np.where(kind == 0, rng.uniform(0.0, 25.0, m) * (rng.random(m) < 0.6), rng.uniform(0.0, 2.0, m))
    drift = rng.uniform(0, 2 * np.pi, m)
    direction = np.where(kind == 0, heading + np.pi, drift)  # sperm swim head first (tail trails)
    vel = np.stack([np.cos(direction), np.sin(direction)], -1) * speed[:, None] / s
    x0 = rng.uniform(-pad, W + pad, m)
    y0 = rng.uniform(-pad, H + pad, m)
    brown = np.cumsum(rng.standard_normal((m, T, 2)) * np.sqrt(2 * 0.01 / fps), axis=1) / s
    pos = np.stack([x0, y0], -1)[:, None, :] + vel[:, None, :] * t[None, :, None] + brown
    pos[..., 0] = np.mod(pos[..., 0] + pad, W + 2 * pad) - pad
    pos[..., 1] = np.mod(pos[..., 1] + pad, H + 2 * pad) - pad
    radius = np.select([kind == 0, kind == 1], [rng.uniform(2.5, 4.5, m), rng.uniform(1.5, 3.5, m)],
                       rng.uniform(7.0, 16.0, m))
    # out-of-focus heads: 70 % dark, 30 % grey (faintly brighter than the background)
    dark = rng.random(m) < 0.7
    contrast = np.select(
        [kind == 0, kind == 1],
        [np.where(dark, -rng.uniform(12.0, 55.0, m), rng.uniform(10.0, 50.0, m)), rng.uniform(25.0, 160.0, m)],
        -rng.uniform(10.0, 45.0, m))
    # dark out-of-focus bodies often sit in a bright phase halo
    ring = np.select([kind == 0, kind == 1], [np.where(dark, rng.uniform(0.0, 35.0, m), rng.uniform(0.0, 10.0, m)),
                                              -rng.uniform(5.0, 20.0, m)],
                     rng.uniform(15.0, 40.0, m))
    blur = np.select([kind == 0, kind == 1], [rng.uniform(1.0, 2.5, m), rng.uniform(0.4, 0.9, m)],
                     rng.uniform(0.8, 1.5, m))
    tail = np.where((kind == 0) & (rng.random(m) < 0.75), rng.uniform(15.0, 45.0, m), 0.0)
    return Distractors(kind=kind, pos_px=pos, heading=heading, radius=radius, contrast=contrast, ring=ring,
                       blur=blur, tail_px=tail, tail_contrast=rng.uniform(4.0, 12.0, m),
                       elong=np.where(kind == 0, rng.uniform(1.2, 1.6, m), rng.uniform(1.0, 1.15, m)))


def object_extent_px(cell: CellParams, angle: np.ndarray, s: float) -> np.ndarray:
    """Half-sizes ``(m, 2)`` of the head outline(s) rotated by ``angle`` (m,), px, no margin."""
    if cell.members:
        # cluster: bounding box of all member heads around the cluster centre (static layout)
        pts = np.concatenate([morph.rotate(m.head_poly_um, a) + off for off, a, m in cell.members])
        ext = np.abs(pts).max(axis=0) / s
        return np.broadcast_to(ext, (len(angle), 2)).copy()
    rot = morph.rotate(np.broadcast_to(cell.head_poly_um, (len(angle),) + cell.head_poly_um.shape), angle)
    return np.abs(rot).max(axis=1) / s


def label_boxes(scene: Scene) -> pd.DataFrame:
    """The ``Tracks`` table of every (track, frame) in view: clipped boxes, px, ``conf = 1``."""
    W, H, s = scene.width, scene.height, scene.um_per_px
    rows = []
    margin = scene.box_margin_um / s
    square = scene.look == "visem"
    for row in np.flatnonzero(scene.track_of >= 0):
        frames = np.flatnonzero(scene.in_view[row])
        cell = scene.cells[row]
        ext = object_extent_px(cell, scene.paths.angle[row, frames], s)
        if square and not cell.members:
            # VISEM annotators draw near-square boxes around the head and its glow whatever the
            # head's orientation: halfway between the rotated extent and its larger side
            ext = 0.5 * (ext + ext.max(axis=1, keepdims=True))
        half = ext + margin
        xy = scene.head_px[row, frames]
        # the frame spans -0.5 .. W - 0.5 in pixel-centre coordinates
        left = np.maximum(xy[:, 0] - half[:, 0], -EDGE_OFFSET_PX)
        right = np.minimum(xy[:, 0] + half[:, 0], W - EDGE_OFFSET_PX)
        top = np.maximum(xy[:, 1] - half[:, 1], -EDGE_OFFSET_PX)
        bottom = np.minimum(xy[:, 1] + half[:, 1], H - EDGE_OFFSET_PX)
        rows.append(pd.DataFrame({
            "track_id": scene.track_of[row], "frame": frames, "x": (left + right) / 2, "y": (top + bottom) / 2,
            "w": right - left, "h": bottom - top, "conf": 1.0, "cls": cell.cls,
        }))
    if not rows:
        from spermtrack.types import empty_tracks

        return empty_tracks()
    return make_tracks(pd.concat(rows, ignore_index=True), source="synth")
