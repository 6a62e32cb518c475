"""Morphology: per-track crops -> segmentation (head, midpiece, tail) -> indicative morphometry.

Entry points:

- :func:`analyze_morphology` (video file + Tracks table -> per-track and per-crop tables);
- :func:`spermtrack.morphology.crops.route_crops` (choose and cut crops from any frame stream);
- :func:`spermtrack.morphology.segment.get_segmenter` (``classical``, ``yolo-seg``, ``sam``);
- :func:`spermtrack.morphology.morphometry.measure_crops` / ``summarize_tracks``;
- :func:`spermtrack.morphology.gallery.write_gallery` (PNG mosaic with mask outlines).

See docs/MORPHOLOGY_METHOD.md for definitions, conventions and limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from spermtrack.morphology.crops import CropParams, CropSet, route_crops, route_crops_from_video
from spermtrack.morphology.morphometry import INDICATIVE_NOTE, measure_crops, summarize_tracks
from spermtrack.morphology.segment import SEGMENTERS, Segmentation, get_segmenter, segment_crops

__all__ = ["analyze_morphology", "morphology_from_frames", "MorphologyResult", "CropParams", "CropSet",
           "route_crops", "route_crops_from_video", "get_segmenter", "segment_crops", "Segmentation", "measure_crops",
           "summarize_tracks", "SEGMENTERS", "INDICATIVE_NOTE"]


@dataclass
class MorphologyResult:
    """Everything one run produced: per-track table, per-crop table, crops and their segmentations."""

    per_track: pd.DataFrame
    per_crop: pd.DataFrame
    crops: CropSet
    segmentations: list[Segmentation]


def _with_scale(crop_params: CropParams | None, um_per_px: float) -> CropParams:
    """The crop parameters with the scale filled in (it sizes the tail window)."""
    p = crop_params or CropParams()
    return p if p.um_per_px is not None else replace(p, um_per_px=float(um_per_px))


def _finish(crops: CropSet, tracks: pd.DataFrame, segmenter, um_per_px: float, min_quality: float) -> MorphologyResult:
    segs = segment_crops(segmenter, crops)
    per_crop = measure_crops(segs, crops.images, crops.table, um_per_px)
    if len(crops):
        per_crop.insert(2, "angle_rad", crops.table["angle_rad"].to_numpy())
        per_crop.insert(3, "sharpness", crops.table["sharpness"].to_numpy())
    ids = np.unique(tracks["track_id"].to_numpy()) if len(tracks) else []
    per_track = summarize_tracks(per_crop, ids, min_quality=min_quality)
    return MorphologyResult(per_track, per_crop, crops, segs)


def morphology_from_frames(frames, tracks: pd.DataFrame, width: int, height: int, um_per_px: float, *,
                           segmenter="classical", weights=None, crop_params: CropParams | None = None,
                           min_quality: float = 0.2) -> MorphologyResult:
    """:func:`analyze_morphology` on an iterable of ``(index, gray)`` frames (e.g. rendered in memory)."""
    seg = get_segmenter(segmenter, weights=weights, um_per_px=um_per_px) if isinstance(segmenter, str) else segmenter
    crops = route_crops(frames, tracks, width, height, _with_scale(crop_params, um_per_px))
    return _finish(crops, tracks, seg, um_per_px, min_quality)


def analyze_morphology(video: str | os.PathLike, tracks: pd.DataFrame, um_per_px: float, *,
                       segmenter="classical", weights=None, crop_params: CropParams | None = None,
                       min_quality: float = 0.2, fps: float | None = None) -> MorphologyResult:
    """Route K crops per track from ``video`` (streamed), segment them, measure, summarise per track.

    Args:
        video: the video file the tracks were made from.
        tracks: a Tracks table (0-based frames, head centres px).
        um_per_px: scale.
        segmenter: ``classical``, ``yolo-seg``, ``sam`` or a segmenter object.
        weights: model weights (``yolo-seg``: ``.pt``; ``sam``: a checkpoint).
        crop_params: :class:`CropParams` (K, size, anchor, orientation, selection, tail window);
            its ``um_per_px`` defaults to ``um_per_px``, which sizes the tail window.
        min_quality: crops below this quality are measured but not used per track.
    """
    seg = get_segmenter(segmenter, weights=weights, um_per_px=um_per_px) if isinstance(segmenter, str) else segmenter
    crops = route_crops_from_video(video, tracks, _with_scale(crop_params, um_per_px), fps=fps)
    return _finish(crops, tracks, seg, um_per_px, min_quality)
