"""Box geometry, in one place: format conversions, overlap (IoU, IoS) and point-to-box distance.

Three box formats, each an ``(N, 4)`` array in px:

- ``xyxy``: ``left, top, right, bottom`` (:class:`~spermtrack.types.Detections`, ultralytics);
- ``ltwh``: ``left, top, width, height`` (MOTChallenge files, TrackEval, DeepSORT);
- ``cxcywh``: ``centre x, centre y, width, height`` (the ``x, y, w, h`` columns of a Tracks table).

Conversions keep the input's dtype (a float32 ``Detections.xyxy`` gives float32 centres); the
overlap functions work in float64. The area of a box is computed from the numbers its format
holds (``w * h`` for ``ltwh`` and ``cxcywh``, ``(right - left) * (bottom - top)`` for ``xyxy``),
so each format gives exactly the values its historical implementation gave.

A pair involving a box of (numerically) zero area overlaps by 0, as in TrackEval.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

BoxFormat = Literal["xyxy", "ltwh", "cxcywh"]
BOX_FORMATS: tuple[str, ...] = ("xyxy", "ltwh", "cxcywh")

_EPS = np.finfo(np.float64).eps


# -- conversions -----------------------------------------------------------------------------------

def centres_to_xyxy(xy, wh) -> np.ndarray:
    """``(N, 4)`` ``xyxy`` boxes from centres ``(N, 2)`` and sizes ``(N, 2)``."""
    xy, wh = np.asarray(xy), np.asarray(wh)
    return np.hstack([xy - wh / 2, xy + wh / 2])


def centres_to_ltwh(xy, wh) -> np.ndarray:
    """``(N, 4)`` ``ltwh`` boxes from centres ``(N, 2)`` and sizes ``(N, 2)``."""
    xy, wh = np.asarray(xy), np.asarray(wh)
    return np.hstack([xy - wh / 2.0, wh])


def xyxy_centres(xyxy) -> np.ndarray:
    """``(N, 2)`` centres of ``xyxy`` boxes."""
    xyxy = np.asarray(xyxy)
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2.0


def xyxy_sizes(xyxy) -> np.ndarray:
    """``(N, 2)`` widths and heights of ``xyxy`` boxes."""
    xyxy = np.asarray(xyxy)
    return xyxy[:, 2:] - xyxy[:, :2]


def xyxy_to_ltwh(xyxy) -> np.ndarray:
    xyxy = np.asarray(xyxy)
    return np.hstack([xyxy[:, :2], xyxy_sizes(xyxy)])


def ltwh_to_xyxy(ltwh) -> np.ndarray:
    ltwh = np.asarray(ltwh)
    return np.hstack([ltwh[:, :2], ltwh[:, :2] + ltwh[:, 2:]])


def to_xyxy(boxes, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """``boxes`` of format ``fmt`` as ``xyxy``."""
    boxes = np.asarray(boxes)
    if fmt == "xyxy":
        return boxes
    if fmt == "ltwh":
        return ltwh_to_xyxy(boxes)
    if fmt == "cxcywh":
        return centres_to_xyxy(boxes[:, :2], boxes[:, 2:])
    raise ValueError(f"box format {fmt!r}: use one of {', '.join(BOX_FORMATS)}")


# -- overlap ---------------------------------------------------------------------------------------

def _corners(boxes, fmt: BoxFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo (N, 2), hi (N, 2), area (N,))`` in float64."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if fmt == "xyxy":
        lo, hi = b[:, :2], b[:, 2:]
        return lo, hi, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if fmt == "ltwh":
        return b[:, :2], b[:, :2] + b[:, 2:], b[:, 2] * b[:, 3]
    if fmt == "cxcywh":
        return b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2, b[:, 2] * b[:, 3]
    raise ValueError(f"box format {fmt!r}: use one of {', '.join(BOX_FORMATS)}")


def _intersection(a, b, fmt: BoxFormat):
    lo_a, hi_a, area_a = _corners(a, fmt)
    lo_b, hi_b, area_b = _corners(b, fmt)
    side = np.clip(np.minimum(hi_a[:, None], hi_b[None]) - np.maximum(lo_a[:, None], lo_b[None]), 0.0, None)
    return side[..., 0] * side[..., 1], area_a, area_b


def box_iou(a, b, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Args:
        a, b: ``(N, 4)`` and ``(M, 4)`` boxes in format ``fmt``.

    Returns:
        ``(N, M)`` float64; 0 for a pair involving a box of zero area.
    """
    inter, area_a, area_b = _intersection(a, b, fmt)
    union = area_a[:, None] + area_b[None, :] - inter
    valid = (union > _EPS) & (area_a[:, None] > _EPS) & (area_b[None, :] > _EPS)
    return np.where(valid, inter / np.where(valid, union, 1.0), 0.0)


def box_ios(a, b, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """Intersection over the smaller box's area, ``(N, M)`` float64 (a box cut by a tile border
    lies almost whole inside the full box: IoS near 1 where IoU is at most 0.5); 0 for a pair
    involving a box of zero area."""
    inter, area_a, area_b = _intersection(a, b, fmt)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    valid = smaller > _EPS
    return np.where(valid, inter / np.where(valid, smaller, 1.0), 0.0)


def point_box_distance(xy, xyxy) -> np.ndarray:
    """``(N, M)`` distance from each point ``(N, 2)`` to each ``xyxy`` box ``(M, 4)`` (0 inside)."""
    xy, xyxy = np.asarray(xy), np.asarray(xyxy)
    dx = np.maximum(np.maximum(xyxy[None, :, 0] - xy[:, None, 0], 0), xy[:, None, 0] - xyxy[None, :, 2])
    dy = np.maximum(np.maximum(xyxy[None, :, 1] - xy[:, None, 1], 0), xy[:, None, 1] - xyxy[None, :, 3])
    return np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
