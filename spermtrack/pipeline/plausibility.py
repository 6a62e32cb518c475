"""Plausibility checks of one analysed video: numbers that cannot all be right at once.

Each check returns a one-line warning (stderr, ``summary.json`` ``warnings``, the report) that
says what was seen and what to check; none of them stops the analysis. They catch a detector
firing on background structure, fragmented tracking, a wrong ``--um-per-px`` or ``--fps``, and
clips too short to grade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a sperm head's half-maximum core is ~3-6 um long (head 4-5 um); outside this range the head
#: size in px contradicts the scale
HEAD_CORE_UM = (2.0, 9.0)
#: median VCL of motile cells, um/s, outside which the frame rate or scale is suspect
MOTILE_VCL_UM_S = (10.0, 300.0)
#: typical time a cell stays in a 640x480 field at 400x (s): sets how many tracks are plausible
RESIDENCE_S = 5.0


def plausibility_warnings(*, n_frames: int, fps: float, n_detections: int, tracks: pd.DataFrame,
                          metrics: pd.DataFrame | None, um_per_px: float | None, um_per_px_source: str | None,
                          calibration: dict | None, min_duration_s: float) -> list[str]:
    """Warnings for one video.

    Args:
        n_frames, fps: frames analysed and the frame rate used.
        n_detections: detections of the sperm class over all frames.
        tracks: the sperm tracks (Tracks table; ``interpolated`` rows are not counted in view).
        metrics: the per-track CASA table (``vcl_um_s``, ``grade``), or None.
        um_per_px, um_per_px_source: the scale and where it came from.
        calibration: the detector's ``detector_calibration`` record, or None.
        min_duration_s: the shortest graded track.
    """
    out: list[str] = []
    duration = n_frames / fps if fps > 0 else float("nan")
    if duration < min_duration_s:
        out.append(f"the clip lasts {duration:.2f} s, shorter than the minimum graded track duration "
                   f"({min_duration_s} s): no cell can be graded; record longer clips")
    if n_detections == 0:
        out.append("zero sperm heads were detected in the whole video: check focus, illumination, "
                   "--polarity and the detector calibration in summary.json")
        return out
    measured = tracks[~tracks["interpolated"]] if "interpolated" in tracks.columns else tracks
    in_view = measured.groupby("frame").size().reindex(range(n_frames), fill_value=0) if len(measured) else None
    mean_in_view = float(in_view.mean()) if in_view is not None else 0.0
    dets_per_frame = n_detections / max(n_frames, 1)
    if dets_per_frame > 3 * max(mean_in_view, 1.0):
        out.append(f"{dets_per_frame:.1f} head detections per frame but only {mean_in_view:.1f} tracked cells "
                   f"in view: the detector fires on background structure or the tracker drops cells")
    strong = (calibration or {}).get("strong_per_frame")
    if strong is not None and np.isfinite(strong) and dets_per_frame > 3 * max(strong, 1.0):
        out.append(f"{dets_per_frame:.1f} head detections per frame where the calibration saw about {strong:.0f} "
                   f"clear heads per frame: the operating point is too low (a fixed --config threshold?) or the "
                   f"classifier accepts impurities")
    n_tracks = int(tracks["track_id"].nunique()) if len(tracks) else 0
    if mean_in_view > 0 and n_tracks:
        # a field holds ~mean_in_view cells at a time; swimmers cross it in a few seconds, so
        # new cells arrive at about mean_in_view per RESIDENCE_S
        expected_max = 2.0 * mean_in_view * (1.0 + duration / RESIDENCE_S) + 10
        if n_tracks > expected_max:
            out.append(f"{n_tracks} tracks for about {mean_in_view:.0f} heads in view over {duration:.1f} s "
                       f"(at most ~{expected_max:.0f} expected): tracks are fragmented or false tracks were made")
        span = measured.groupby("track_id")["frame"].agg(lambda f: f.max() - f.min() + 1) / fps
        if duration >= 2.0 and float(span.median()) < 0.5:
            out.append(f"half of the {n_tracks} tracks last less than {float(span.median()):.2f} s: tracking is "
                       f"fragmented (too many detections of non-sperm objects, or a wrong frame rate)")
    if calibration and um_per_px and calibration.get("head_length_px"):
        core_um = calibration["head_length_px"] * um_per_px
        lo, hi = HEAD_CORE_UM
        if not lo <= core_um <= hi:
            out.append(f"the head core measures {calibration['head_length_px']:.1f} px = {core_um:.1f} um at "
                       f"um_per_px {um_per_px:g} ({um_per_px_source}); sperm head cores are {lo:g}-{hi:g} um: "
                       f"check --um-per-px")
    if metrics is not None and len(metrics) and "grade" in metrics.columns:
        motile = metrics[metrics["grade"].astype(str).isin(["rapid_progressive", "slow_progressive",
                                                            "progressive", "non_progressive"])]
        if len(motile) >= 5:
            v = float(np.nanmedian(motile["vcl_um_s"]))
            lo, hi = MOTILE_VCL_UM_S
            if not lo <= v <= hi:
                out.append(f"the median VCL of motile cells is {v:.0f} um/s (expected {lo:g}-{hi:g}): "
                           f"the frame rate ({fps:g} fps) or um_per_px ({um_per_px:g}) is probably wrong")
    return out
