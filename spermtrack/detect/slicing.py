"""Frame slicing: tile geometry and fusion of boxes found in overlapping tiles.

A 5-15 px head gets more pixels when a tile of ``s x s`` px is upsampled to the model's input
size; overlapping tiles make sure every head lies whole inside at least one tile (the overlap
must exceed a head's box). Boxes from neighbouring tiles that see the same head are fused by
greedy merging on intersection-over-smaller (IoS): a head cut by a tile border gives a small
partial box almost entirely inside the full box of the neighbouring tile, which IoU would not
catch (IoU of a half box with the full box is 0.5 at best).
"""

from __future__ import annotations

import numpy as np

from spermtrack.geometry import box_ios


def tile_origins(length: int, tile: int, overlap: float) -> np.ndarray:
    """Start offsets of tiles along one axis.

    The fewest tiles whose neighbours share at least ``overlap * tile`` px, spread evenly so the
    first is flush with 0 and the last with the far border (nothing at the border is lost, no
    tile sticks out, and the extra overlap is shared equally instead of piling up at the end).
    """
    if tile >= length:
        return np.array([0])
    min_overlap = int(np.ceil(overlap * tile))
    n = int(np.ceil((length - min_overlap) / max(1, tile - min_overlap)))
    n = max(n, 2)
    return np.round(np.linspace(0, length - tile, n)).astype(np.int64)


def tile_grid(height: int, width: int, tile: int, overlap: float = 0.15) -> np.ndarray:
    """``(T, 4) int`` tiles as ``x0, y0, x1, y1`` covering an ``height x width`` frame.

    Args:
        tile: tile side in px (clipped to the frame size).
        overlap: fraction of a tile shared with its neighbour (0.1-0.2 is typical; it must be
            larger than a head box divided by the tile size).
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    xs = tile_origins(width, tile, overlap)
    ys = tile_origins(height, tile, overlap)
    tw, th = min(tile, width), min(tile, height)
    return np.array([(x, y, x + tw, y + th) for y in ys for x in xs], dtype=np.int64)


def fuse_boxes(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, *, ios_threshold: float = 0.6,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy merge of duplicate boxes (same class, IoS above ``ios_threshold``).

    Boxes are visited by decreasing confidence; each unvisited box absorbs every later box that
    overlaps it by more than the threshold: the merged box is their union (a head cut by a tile
    border is restored to its full extent), its confidence the maximum.

    Returns:
        ``(xyxy, conf, cls)`` of the fused boxes.
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    conf = np.asarray(conf, np.float64).reshape(-1)
    cls = np.asarray(cls, np.int64).reshape(-1)
    if len(xyxy) < 2:
        return xyxy, conf, cls
    order = np.argsort(-conf, kind="stable")
    xyxy, conf, cls = xyxy[order], conf[order], cls[order]
    ios = box_ios(xyxy, xyxy)
    same = cls[:, None] == cls[None, :]
    dup = (ios > ios_threshold) & same
    used = np.zeros(len(xyxy), bool)
    out_b, out_c, out_k = [], [], []
    for i in range(len(xyxy)):
        if used[i]:
            continue
        members = np.flatnonzero(dup[i] & ~used)
        members = members[members >= i] if len(members) else np.array([i])
        used[members] = True
        grp = xyxy[members]
        out_b.append([grp[:, 0].min(), grp[:, 1].min(), grp[:, 2].max(), grp[:, 3].max()])
        out_c.append(conf[i])
        out_k.append(cls[i])
    return np.asarray(out_b, np.float64), np.asarray(out_c), np.asarray(out_k, np.int64)
