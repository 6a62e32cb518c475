"""Sperm concentration (million / mL) from the heads in view and the chamber depth.

A counting chamber of known depth ``D`` (e.g. a 20 um Leja slide) holds, in the camera's field
of ``W x H`` px at ``um_per_px``, the volume ``W * H * um_per_px**2 * D`` um^3
(1 mL = 1e12 um^3). The concentration is the mean number of sperm heads in view per frame
divided by that volume::

    concentration_million_per_ml = mean_heads_in_view / (field_area_um2 * D) * 1e12 / 1e6

**Counting rule** (:data:`COUNTING_RULE`): every analysed frame counts the sperm-head tracks
present in it (a head whose centre lies inside the frame; gap-filled frames of a track count,
since the cell was there); tracks whose majority class is not sperm (clusters, impurities) are
left out; the mean is over all analysed frames. Tracking is what keeps one head from counting
twice in a frame; a missed head lowers the count, a false track raises it (see the detection
precision and recall of the video). Without a chamber depth there is no concentration: it is
left out, never guessed.
"""

from __future__ import annotations

import pandas as pd

from spermtrack.errors import ParameterError

#: what :func:`concentration` counts (recorded beside every concentration)
COUNTING_RULE = ("mean over the analysed frames of the sperm-head tracks in view (centre inside the frame, "
                 "gap-filled frames included; clusters and impurities excluded) / (field area x chamber depth)")
#: accepted chamber depths (um): from thin counting slides to a deep Makler-like chamber
CHAMBER_DEPTH_RANGE_UM = (1.0, 1000.0)


def check_chamber_depth(depth_um) -> float | None:
    """``depth_um`` as a float (None stays None), or a :class:`ParameterError` naming the range."""
    if depth_um is None:
        return None
    try:
        d = float(depth_um)
    except (TypeError, ValueError):
        raise ParameterError(f"chamber_depth_um={depth_um!r} must be a number (um)") from None
    lo, hi = CHAMBER_DEPTH_RANGE_UM
    if not lo <= d <= hi:
        raise ParameterError(f"chamber_depth_um (--chamber-depth-um) {d:g} is outside {lo:g}-{hi:g} um (counting chambers are 10-20 um "
                             f"deep; a Makler chamber 10 um)")
    return d


def heads_in_view(tracks: pd.DataFrame, n_frames: int, width_px: int, height_px: int) -> float:
    """Mean sperm heads in view per frame over frames ``0 .. n_frames-1`` (rows of ``tracks``,
    one per track and frame, centre inside the frame)."""
    if n_frames <= 0:
        raise ParameterError(f"n_frames={n_frames} must be positive to count heads in view")
    if tracks.empty:
        return 0.0
    t = tracks[(tracks["frame"] >= 0) & (tracks["frame"] < n_frames)]
    inside = (t["x"] >= 0) & (t["x"] < width_px) & (t["y"] >= 0) & (t["y"] < height_px)
    per_frame = t[inside].drop_duplicates(["track_id", "frame"]).groupby("frame").size()
    return float(per_frame.sum()) / n_frames


def concentration(tracks: pd.DataFrame, *, n_frames: int, width_px: int, height_px: int, um_per_px: float,
                  chamber_depth_um: float) -> dict:
    """The concentration record written to ``summary.json`` (``concentration`` block).

    Args:
        tracks: the sperm tracks (one row per track and frame; ``x, y`` head centre in px).
        n_frames: frames analysed.
        width_px, height_px: the field of view.
        um_per_px: the scale.
        chamber_depth_um: the counting chamber's depth.

    Returns:
        ``{"concentration_million_per_ml", "mean_heads_in_view", "field_area_um2",
        "field_volume_nl", "chamber_depth_um", "n_frames", "width_px", "height_px", "um_per_px",
        "counting_rule"}``.
    """
    depth = check_chamber_depth(chamber_depth_um)
    mean_heads = heads_in_view(tracks, n_frames, width_px, height_px)
    area_um2 = float(width_px) * float(height_px) * float(um_per_px) ** 2
    volume_um3 = area_um2 * depth
    return {"concentration_million_per_ml": mean_heads / volume_um3 * 1e6,
            "mean_heads_in_view": mean_heads, "field_area_um2": area_um2,
            "field_volume_nl": volume_um3 * 1e-6, "chamber_depth_um": depth, "n_frames": int(n_frames),
            "width_px": int(width_px), "height_px": int(height_px), "um_per_px": float(um_per_px),
            "counting_rule": COUNTING_RULE}
