"""Per-object outlines written to ``gt/masks/masks.npz`` and turned back into binary masks.

Format (one compressed NPZ per video; row = one object on one sampled frame):

- ``frame (M,) int32`` (0-based), ``track_id (M,) int32``, ``member (M,) int16`` (-1 for a
  sperm or pinhead; ``k`` for the k-th sperm of a cluster, whose rows carry the cluster's id);
- ``head_xy (M, 64, 2) float32``: head outline polygon, px (pixel-centre coordinates);
- ``midpiece_xy (M, 2, 2) float32``: midpiece centre segment (head end, tail end), px;
  ``midpiece_width_px (M,) float32``;
- ``tail_xy (M, 25, 2) float32``: tail centre line from the midpiece end to the tip, px;
  ``tail_width_px (M,) float32`` (1 px: tails are drawn as 1-px anti-aliased lines);
- scalars ``mask_every`` (frames sampled: ``0, k, 2k, ...``), ``width``, ``height``,
  ``um_per_px``.

Only objects whose head is in view on a sampled frame are stored. Every outline is exactly the
one the renderer drew (same function, :func:`spermtrack.synth.render.frame_geometry`), so masks
rasterised with :func:`rasterize` match the image up to the rendering blur.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from spermtrack.synth.morph import FILL_INSET, inset_polygon

_SHIFT = 4


def collect(scene, i: int, geometry) -> dict[str, np.ndarray] | None:
    """Rows of frame ``i`` for the NPZ (objects in view only), or None when there is none."""
    keep = scene.in_view[geometry.rows, i]
    if not keep.any():
        return None
    rows, member = geometry.rows[keep], geometry.member[keep]
    widths = []
    for r, m in zip(rows, member):
        c = scene.cells[r] if m < 0 else scene.cells[r].members[m][2]
        widths.append(c.midpiece_width_um / scene.um_per_px)
    n = int(keep.sum())
    return {
        "frame": np.full(n, i, np.int32), "track_id": scene.track_of[rows].astype(np.int32),
        "member": member.astype(np.int16), "head_xy": geometry.heads[keep].astype(np.float32),
        "midpiece_xy": geometry.midpieces[keep].astype(np.float32),
        "midpiece_width_px": np.array(widths, np.float32), "tail_xy": geometry.tails[keep].astype(np.float32),
        "tail_width_px": np.ones(n, np.float32),
    }


def save(path: Path, chunks: list[dict[str, np.ndarray]], *, mask_every: int, width: int, height: int,
         um_per_px: float) -> None:
    """Write the collected rows as one compressed NPZ (``path`` is a temporary file name)."""
    keys = ("frame", "track_id", "member", "head_xy", "midpiece_xy", "midpiece_width_px", "tail_xy", "tail_width_px")
    if chunks:
        arrays = {k: np.concatenate([c[k] for c in chunks]) for k in keys}
    else:
        arrays = {k: np.zeros((0,), np.float32) for k in keys}
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays, mask_every=np.int32(mask_every), width=np.int32(width),
                            height=np.int32(height), um_per_px=np.float64(um_per_px))


def load_masks(path: str | Path) -> dict[str, np.ndarray]:
    """Load ``gt/masks/masks.npz`` (a video folder or the file itself) into a dict of arrays."""
    p = Path(path)
    if p.is_dir():
        p = p / "gt" / "masks" / "masks.npz"
    with np.load(p) as z:
        return {k: z[k] for k in z.files}


def rasterize(masks: dict[str, np.ndarray], index: int, shape: tuple[int, int] | None = None,
              origin: tuple[float, float] = (0.0, 0.0), supersample: int = 4) -> dict[str, np.ndarray]:
    """Binary ``uint8`` masks ``{"head", "midpiece", "tail"}`` (0/1) of row ``index``.

    Shapes are filled at ``supersample`` x and a pixel is set when at least half of it is
    covered, so a mask's pixel area matches the outline's true area (a plain 1x fill includes
    every pixel the edge touches and overestimates a 10-px head by a third). Parts do not
    overlap: the midpiece excludes the head, the tail excludes both.

    Args:
        masks: what :func:`load_masks` returned.
        index: row number.
        shape: ``(height, width)`` of the output; default: the video frame.
        origin: px position of the output's pixel (0, 0) (to cut a crop around a cell).
        supersample: fill resolution factor (1 = plain fill).
    """
    if shape is None:
        shape = (int(masks["height"]), int(masks["width"]))
    h, w = shape
    ss = max(int(supersample), 1)
    off = np.asarray(origin, np.float64)

    def to_cv(a):
        u = ((np.asarray(a, np.float64) - off) + 0.5) * ss - 0.5
        return np.round(u * (1 << _SHIFT)).astype(np.int32)

    def reduce(big):
        if ss == 1:
            return big
        cov = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        return (cov >= 128).astype(np.uint8)

    big = np.zeros((h * ss, w * ss), np.uint8)
    outline = np.asarray(masks["head_xy"][index], np.float64)
    if ss > 1:
        outline = inset_polygon(outline, FILL_INSET / ss)
    cv2.fillPoly(big, [to_cv(outline)], 255, cv2.LINE_8, _SHIFT)
    head = reduce(big).copy()
    big[:] = 0
    a, b = to_cv(masks["midpiece_xy"][index])
    thick = max(1, int(round(float(masks["midpiece_width_px"][index]) * ss)))
    cv2.line(big, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, thick, cv2.LINE_8, _SHIFT)
    mid = reduce(big).copy()
    mid[head > 0] = 0
    big[:] = 0
    # the tail is a 1-px line: drawn at 1 px width on the output grid whatever the supersampling
    thick = max(1, int(round(float(masks["tail_width_px"][index]) * ss)))
    cv2.polylines(big, [to_cv(masks["tail_xy"][index])], False, 255, thick, cv2.LINE_8, _SHIFT)
    tail = reduce(big) if ss == 1 else (cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    tail[(head > 0) | (mid > 0)] = 0
    return {"head": head, "midpiece": mid, "tail": tail}
