"""CASA kinematics (numba kernels), WHO / preset grading and the sample summary.

Importing this package loads numpy, pandas and numba only (never torch or ultralytics), so
``spermtrack kinematics`` starts fast. Conventions: ``docs/KINEMATICS_CONVENTIONS.md``.
"""

from spermtrack.kinematics.casa import (
    METRIC_COLUMNS,
    compute_track_metrics,
    default_window,
    round_for_csv,
)
from spermtrack.kinematics.grading import GRADES, PRESETS, get_preset, grade_tracks
from spermtrack.kinematics.summary import (
    WHO_LRL,
    MotilitySummary,
    ScaleEstimate,
    estimate_um_per_px,
    summarize_motility,
    wilson_interval,
)

__all__ = [
    "GRADES", "METRIC_COLUMNS", "PRESETS", "WHO_LRL", "MotilitySummary", "ScaleEstimate",
    "compute_track_metrics", "default_window", "estimate_um_per_px", "get_preset", "grade_tracks",
    "round_for_csv", "summarize_motility", "wilson_interval",
]
