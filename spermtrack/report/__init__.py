"""What a person looks at: plots (:mod:`.plots`), the annotated video (:mod:`.video`), the
self-contained HTML report (:mod:`.html`) and the printable PDF (:mod:`.pdf`). Grade colours
(:data:`GRADE_COLORS`) and human column names (:func:`human_column`) are shared by all of them."""

from __future__ import annotations

import re

#: Okabe-Ito colours, per grade, as ``#rrggbb``: blue, bluish green, orange, reddish purple, light
#: grey, and black for cluster / other tracks (drawn only when a caller passes them). Simulated
#: protanopia and deuteranopia keep every pair at least ~15 CIELAB units apart (normal vision 45),
#: where the earlier blue / sky-blue and orange / vermillion pairs fell to 18-25 and were mixed up.
GRADE_COLORS: dict[str, str] = {
    "rapid_progressive": "#0072B2",
    "slow_progressive": "#009E73",
    "non_progressive": "#E69F00",
    "immotile": "#CC79A7",
    "not_graded": "#CCCCCC",
    "other": "#000000",
}

#: Short labels used in legends (WHO 2021 letters).
GRADE_LABELS: dict[str, str] = {
    "rapid_progressive": "a: rapid progressive",
    "slow_progressive": "b: slow progressive",
    "non_progressive": "c: non-progressive",
    "immotile": "d: immotile",
    "not_graded": "not graded (too short)",
    "other": "cluster / other (not graded)",
}

#: The grades of a motile cell (WHO a + b + c).
MOTILE_GRADES: tuple[str, ...] = ("rapid_progressive", "slow_progressive", "non_progressive")

#: The kinematic quantities of the distribution table and plots: ``(label, candidate columns)``;
#: the first candidate a table has is used (``kinematics.csv`` names first, then the short names
#: a summary may use).
KINEMATIC_QUANTITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("VCL", ("vcl_um_s",)),
    ("VSL", ("vsl_um_s",)),
    ("VAP", ("vap_um_s",)),
    ("LIN", ("lin_pct", "lin")),
    ("STR", ("str_pct", "str")),
    ("WOB", ("wob_pct", "wob")),
    ("ALH", ("alh_mean_um", "alh_um")),
    ("BCF", ("bcf_hz",)),
    ("MAD", ("mad_deg",)),
)

_NAMES: dict[str, str] = {
    "track_id": "track", "first_frame": "first frame", "last_frame": "last frame", "n_points": "points",
    "duration_s": "duration (s)", "vcl_um_s": "VCL (um/s)", "vsl_um_s": "VSL (um/s)", "vap_um_s": "VAP (um/s)",
    "lin_pct": "LIN (%)", "str_pct": "STR (%)", "wob_pct": "WOB (%)", "lin": "LIN", "str": "STR", "wob": "WOB",
    "alh_mean_um": "ALH mean (um)", "alh_max_um": "ALH max (um)", "alh_um": "ALH (um)", "bcf_hz": "BCF (Hz)",
    "mad_deg": "MAD (deg)", "dnc_um2_s": "DNC (um²/s)", "progression_um_s": "progression (um/s)",
    "motion_um_s": "motion (um/s)", "progressive_time_pct": "time progressive (%)",
    "non_progressive_time_pct": "time non-progressive (%)", "immotile_time_pct": "time immotile (%)",
    "grade": "grade", "hyperactivated": "hyperactivated",
    "concentration_million_per_ml": "concentration (million/mL)", "um_per_px": "scale (um/px)",
    "n_frames": "frames", "field_volume_nl": "field volume (nL)", "chamber_depth_um": "chamber depth (um)",
    "field_area_um2": "field area (um²)", "mean_heads_in_view": "mean heads in view",
    "per_field_million_per_ml": "per field (million/mL)",
}

# longest suffix first: "_um2_s" before "_um2" before "_um" before "_s"
_UNITS: tuple[tuple[str, str], ...] = (
    ("_um2_s", "um²/s"), ("_um_s", "um/s"), ("_um2", "um²"), ("_px2", "px²"), ("_um", "um"), ("_px", "px"),
    ("_pct", "%"), ("_hz", "Hz"), ("_deg", "deg"), ("_nl", "nL"), ("_s", "s"),
)
_ACRONYMS = {"vcl", "vsl", "vap", "lin", "str", "wob", "alh", "bcf", "mad", "dnc", "iqr", "id"}


def human_column(name: str) -> str:
    """A column name as a person reads it, unit in brackets: ``vcl_um_s`` -> ``"VCL (um/s)"``,
    ``head_length_iqr_um`` -> ``"head length IQR (um)"``, ``bcf_hz`` -> ``"BCF (Hz)"``.

    Known columns come from a fixed table; others are derived from their unit suffix, so a new
    column still gets a readable header (unknown names are returned with spaces for ``_``).
    """
    name = str(name)
    if name in _NAMES:
        return _NAMES[name]
    stem, unit = name, ""
    for suffix, u in _UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem, unit = name[: -len(suffix)], u
            break
    words = [w.upper() if w in _ACRONYMS else w for w in re.split(r"_+", stem) if w]
    text = " ".join(words) or name
    return f"{text} ({unit})" if unit else text


def grade_bgr(grade: str) -> tuple[int, int, int]:
    """The grade's colour as an OpenCV BGR tuple (unknown grades get the not-graded grey)."""
    h = GRADE_COLORS.get(str(grade), GRADE_COLORS["not_graded"]).lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return b, g, r


def kinematic_columns(columns) -> list[tuple[str, str]]:
    """``(label, column)`` of each :data:`KINEMATIC_QUANTITIES` entry found in ``columns``."""
    have = set(columns)
    out = []
    for label, cands in KINEMATIC_QUANTITIES:
        col = next((c for c in cands if c in have), None)
        if col is not None:
            out.append((label, col))
    return out


#: Short names a ``kinematics_distribution`` may carry beside the kinematics.csv names (the same
#: numbers): shown only when the full name is absent.
DISTRIBUTION_ALIASES: dict[str, str] = {"lin": "lin_pct", "str": "str_pct", "wob": "wob_pct", "alh_um": "alh_mean_um"}


def distribution_items(dist: dict) -> list[tuple[str, dict]]:
    """``(column, {"all": ..., "motile": ...})`` of a ``kinematics_distribution``, without the
    alias keys that repeat a column already there."""
    return [(c, g) for c, g in dist.items()
            if isinstance(g, dict) and not (c in DISTRIBUTION_ALIASES and DISTRIBUTION_ALIASES[c] in dist)]


def distribution_decimals(column: str, groups: dict) -> int:
    """Decimals to print a distribution's values with: 0 for percentages, 2 for ratios (0-1),
    1 otherwise (velocities, um, Hz, deg)."""
    if str(column).endswith("_pct"):
        return 0
    if column in ("lin", "str", "wob"):  # percent or ratio, whichever the writer chose
        means = [g.get("mean") for g in groups.values() if isinstance(g, dict) and g.get("mean") is not None]
        return 0 if means and max(abs(float(m)) for m in means) > 1.5 else 2
    return 1
