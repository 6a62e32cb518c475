"""What a segmenter returns: :class:`Segmentation` (masks, outline, traced path, quality), and
the helpers every segmenter shares. Its own module so that the segmenters
(:mod:`~spermtrack.morphology.classical`, :mod:`~spermtrack.morphology.segment`) and the
measurements (:mod:`~spermtrack.morphology.morphometry`) import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Segmentation:
    """Result for one crop (crop px coordinates, pixel centres).

    Attributes:
        head, midpiece, tail: boolean masks ``(H, W)`` (disjoint).
        quality: 0 (nothing usable) .. 1 (clear head, traced tail).
        head_contour: sub-pixel head outline ``(n, 2)`` x, y (open polygon), or None.
        rear_xy, front_xy: ends of the head's long axis (rear = where the midpiece leaves).
        midpiece_path, tail_path: ordered centre lines (midpiece from the rear tip; tail from
            the midpiece end to the tip), or None.
        path_px: the whole traced path from the rear tip, or None.
        path_length_px: its arc length.
        midpiece_width_px: equivalent width of the midpiece (indicative), NaN when unknown.
        tail_complete: False when the tail reaches the crop border (its length is then a lower bound).
        head_snr: head peak contrast over noise (classical only).
        notes: why something is missing.
    """

    head: np.ndarray
    midpiece: np.ndarray
    tail: np.ndarray
    quality: float = 0.0
    head_contour: np.ndarray | None = None
    rear_xy: np.ndarray | None = None
    front_xy: np.ndarray | None = None
    midpiece_path: np.ndarray | None = None
    tail_path: np.ndarray | None = None
    path_px: np.ndarray | None = None
    path_length_px: float = float("nan")
    midpiece_width_px: float = float("nan")
    tail_complete: bool = False
    head_snr: float = float("nan")
    notes: str = ""
    extra: dict = field(default_factory=dict)


def empty_segmentation(shape: tuple[int, int], note: str = "") -> Segmentation:
    """A result with empty masks and quality 0 (every measurement becomes NaN)."""
    z = np.zeros(shape, bool)
    return Segmentation(head=z, midpiece=z.copy(), tail=z.copy(), quality=0.0, notes=note)


def as_crop_stack(crops, anchors=None) -> tuple[np.ndarray, np.ndarray]:
    """``(N, H, W)`` crops and ``(N, 2)`` float anchors (default: each crop's centre)."""
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    n, h, w = crops.shape
    if anchors is None:
        anchors = np.tile([(w - 1) / 2.0, (h - 1) / 2.0], (n, 1))
    return crops, np.asarray(anchors, np.float64)
