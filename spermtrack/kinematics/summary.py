"""Sample summary: % a / b / c / d, PR, total motility, Wilson 95 % CIs, WHO reference limits.

Two ways to turn graded tracks into sample percentages (``docs/KINEMATICS_CONVENTIONS.md``):

- ``"track"`` (default): every graded track counts once, like a CASA acquisition. Fast cells
  cross the field and come back as new tracks, slow and immotile cells stay as one long track,
  so this mode leans towards motile cells when tracks are fragmented or the video is long.
- ``"window"``: the video is cut into windows of ``window_s`` seconds; in each window the graded
  cells present (first..last frame overlaps the window) are classified, and the per-window
  percentages are averaged. Like a technician counting a field at several moments, each cell
  weighs by the time it is in view. Use it to compare with a manual (WHO) count of the same
  video; use ``"track"`` to compare with a CASA instrument.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.kinematics.grading import GRADES, IMMOTILE, NONPROG, NOT_GRADED, RAPID, SLOW, TIME_COLUMNS

Z95 = 1.959963984540054

#: WHO lower reference limits (5th centile), % of graded cells.
WHO_LRL: dict[str, dict[str, float]] = {
    "who6": {"progressive": 30.0, "total_motility": 42.0},   # WHO 2021, 6th edition
    "who5": {"progressive": 32.0, "total_motility": 40.0},   # WHO 2010, 5th edition
}
WHO_MIN_CELLS = 200

SUMMARY_COLUMNS: tuple[str, ...] = (
    "quantity", "count", "n", "pct", "ci95_low_pct", "ci95_high_pct",
    "who6_lrl_pct", "who6_status", "who5_lrl_pct", "who5_status",
    "grader_rmse_pct", "agreement95_low_pct", "agreement95_high_pct",
)


def wilson_interval(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (as fractions; NaN when ``n == 0``).

    Unlike the textbook ``p +- z sqrt(p(1-p)/n)`` it stays inside [0, 1] and keeps its coverage
    near 0 % and 100 %, where motility percentages often sit. ``k`` and ``n`` may be effective
    (non-integer) counts.
    """
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    z2 = z * z
    den = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z2 / (4 * n * n))) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class MotilitySummary:
    """Sample-level motility.

    Attributes:
        aggregate: ``"track"`` or ``"window"``.
        window_s: window length of the ``"window"`` mode (None in ``"track"`` mode).
        n_tracks, n_graded, n_not_graded: track counts (not_graded = shorter than the minimum).
        n_windows: windows used (``"window"`` mode), mean_cells_per_window likewise.
        n_effective: the ``n`` behind the CIs: ``n_graded`` per track; Kish's effective sample
            size of the window weights per window (a cell seen in many windows is one cell).
        table: one row per quantity (:data:`SUMMARY_COLUMNS`).
    """

    aggregate: str
    window_s: float | None
    n_tracks: int
    n_graded: int
    n_not_graded: int
    n_effective: float
    n_windows: int | None = None
    mean_cells_per_window: float | None = None
    table: list[dict] = field(default_factory=list)

    @property
    def meets_who_count(self) -> bool:
        """WHO asks for at least 200 assessed spermatozoa."""
        return self.n_graded >= WHO_MIN_CELLS

    def pct(self, quantity: str) -> float:
        """Percentage of a quantity (``rapid_progressive``, ..., ``progressive``, ``total_motility``)."""
        for row in self.table:
            if row["quantity"] == quantity:
                return row["pct"]
        raise KeyError(quantity)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.table, columns=list(SUMMARY_COLUMNS))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["meets_who_count"] = self.meets_who_count
        return d


def summarize_motility(metrics: pd.DataFrame, *, aggregate: str = "track", window_s: float = 1.0,
                       fps: float | None = None) -> MotilitySummary:
    """Summarise graded tracks into sample percentages with Wilson 95 % CIs.

    Args:
        metrics: the table of :func:`spermtrack.kinematics.compute_track_metrics`.
        aggregate: ``"track"`` (each cell once) or ``"window"`` (cells present per window,
            averaged over windows); see the module docstring for which to use when.
        window_s: window length in seconds for ``"window"``.
        fps: frame rate for ``"window"``; defaults to ``metrics.attrs["fps"]``.

    Returns:
        A :class:`MotilitySummary`; PR = a + b, total motility = a + b + c, hyperactivated as %
        of graded cells; each of PR and total motility compared with the WHO 6th and 5th edition
        lower reference limits: ``"above"`` (CI entirely at or above), ``"below"`` (CI entirely
        below) or ``"inconclusive"`` (the CI straddles the limit).
    """
    codes = pd.Categorical(metrics["grade"], categories=list(GRADES)).codes.astype(np.int64)
    hyper = np.asarray(metrics["hyperactivated"], bool)
    graded = codes != NOT_GRADED
    n_tracks, n_graded = len(codes), int(graded.sum())
    if aggregate == "track":
        weights = graded.astype(np.float64)
        n_windows = mean_cells = None
        wsec = None
    elif aggregate == "window":
        fps = float(fps if fps is not None else metrics.attrs.get("fps", float("nan")))
        if not (fps > 0):
            raise ParameterError("aggregate='window' needs fps (pass fps= or use compute_track_metrics output)")
        if not (window_s > 0):
            raise ParameterError(f"window_s={window_s!r} must be > 0")
        weights, n_windows, mean_cells = _window_weights(
            np.asarray(metrics["first_frame"], np.int64), np.asarray(metrics["last_frame"], np.int64),
            graded, max(1, int(round(window_s * fps))))
        wsec = float(window_s)
    else:
        raise ParameterError(f"aggregate={aggregate!r} must be 'track' or 'window'")

    total = weights.sum()
    n_eff = float(total * total / (weights * weights).sum()) if total > 0 else 0.0
    prog, nonprog, still = _shares(metrics, codes)
    rapid = np.where(codes == RAPID, prog, 0.0)
    members = {
        "rapid_progressive": rapid,
        "slow_progressive": prog - rapid,
        "non_progressive": nonprog,
        "immotile": still,
        "progressive": prog,
        "total_motility": prog + nonprog,
        "hyperactivated": (hyper & graded).astype(np.float64),
    }
    rule = metrics.attrs.get("window_rule") or {}
    grader_rmse = dict(rule.get("loo_rmse_pct") or {})
    table = []
    for name, share in members.items():
        frac = float((weights * share).sum() / total) if total > 0 else float("nan")
        count = frac * n_eff if total > 0 else 0.0
        lo, hi = wilson_interval(count, n_eff)
        row = {"quantity": name, "count": round(count, 3), "n": round(n_eff, 3), "pct": 100 * frac,
               "ci95_low_pct": 100 * lo, "ci95_high_pct": 100 * hi}
        for ed in ("who6", "who5"):
            lrl = WHO_LRL[ed].get(name)
            row[f"{ed}_lrl_pct"] = lrl
            row[f"{ed}_status"] = _status(100 * lo, 100 * hi, lrl)
        row.update(_agreement(row, grader_rmse.get(name)))
        table.append(row)
    return MotilitySummary(aggregate, wsec, n_tracks, n_graded, n_tracks - n_graded, n_eff,
                           n_windows, mean_cells, table)


def _agreement(row: dict, rmse: float | None) -> dict:
    """Where a technician's count of the same sample is expected (95 %): the sampling interval
    widened, side by side in quadrature, by the grader's own leave-one-video-out error."""
    if rmse is None or not np.isfinite(row["pct"]):
        return {"grader_rmse_pct": None, "agreement95_low_pct": None, "agreement95_high_pct": None}
    g = Z95 * rmse
    lo = row["pct"] - math.hypot(row["pct"] - row["ci95_low_pct"], g)
    hi = row["pct"] + math.hypot(row["ci95_high_pct"] - row["pct"], g)
    return {"grader_rmse_pct": rmse, "agreement95_low_pct": max(0.0, lo), "agreement95_high_pct": min(100.0, hi)}


def _shares(metrics: pd.DataFrame, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-track share (0-1) of progressive, non-progressive and immotile.

    With the time columns (who2021) a cell counts in each grade for the share of its time spent
    there, as in a technician's count at a random moment; otherwise (and for tables without the
    columns) it counts wholly in its grade. Rapid vs slow follows the track's grade."""
    hard = [np.isin(codes, (RAPID, SLOW)), codes == NONPROG, codes == IMMOTILE]
    hard = [h.astype(np.float64) for h in hard]
    if not all(c in metrics.columns for c in TIME_COLUMNS):
        return hard[0], hard[1], hard[2]
    frac = np.column_stack([pd.to_numeric(metrics[c], errors="coerce").to_numpy(np.float64) for c in TIME_COLUMNS])
    frac = frac / 100.0
    bad = ~np.isfinite(frac).all(axis=1) | (codes == NOT_GRADED)
    frac[bad] = np.column_stack(hard)[bad]
    return frac[:, 0], frac[:, 1], frac[:, 2]


def _status(lo: float, hi: float, lrl: float | None) -> str:
    if lrl is None:
        return ""
    if not (lo == lo):
        return "no graded cells"
    if lo >= lrl:
        return "above"
    if hi < lrl:
        return "below"
    return "inconclusive"


def _window_weights(first: np.ndarray, last: np.ndarray, graded: np.ndarray, w: int):
    """Weight of each track when per-window percentages are averaged over windows.

    Windows are ``[f0 + k w, f0 + (k+1) w)`` from the first graded frame; only whole windows
    count (one window covers everything when the video is shorter than ``w``). A track weighs
    ``sum over its windows of 1 / (graded cells in that window) / (windows with cells)``.
    """
    weights = np.zeros(len(first))
    if not graded.any():
        return weights, 0, 0.0
    idx = np.flatnonzero(graded)
    f0, f1 = int(first[idx].min()), int(last[idx].max())
    n_win = max(1, (f1 - f0 + 1) // w)
    k_lo = (first[idx] - f0) // w
    k_hi = np.minimum((last[idx] - f0) // w, n_win - 1)
    keep = k_lo <= k_hi
    idx, k_lo, k_hi = idx[keep], k_lo[keep], k_hi[keep]
    reps = k_hi - k_lo + 1
    owner = np.repeat(idx, reps)
    win = np.repeat(k_lo, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
    per_win = np.bincount(win, minlength=n_win).astype(np.float64)
    used = per_win > 0
    np.add.at(weights, owner, 1.0 / per_win[win])
    weights /= used.sum()
    return weights, int(used.sum()), float(per_win[used].mean())


@dataclass(frozen=True)
class ScaleEstimate:
    """An um-per-px estimate from head size; always report it as estimated."""

    um_per_px: float
    median_head_px: float
    n_boxes: int
    head_length_um: float
    source: str = "estimated from head size"


def estimate_um_per_px(tracks: pd.DataFrame, *, head_length_um: float = 4.5,
                       source: str = "tracks") -> ScaleEstimate:
    """Estimate um per px as ``head_length_um / median head length in px``.

    The head length of a box is its longer side (``max(w, h)``); cluster boxes (``cls == 1``)
    are ignored. A box drawn loosely around the head makes the estimate too small, so label
    outputs with ``source`` = "estimated from head size" and prefer a stage micrometer.

    Raises:
        InputFileError: no box has a finite, positive size.
    """
    if "w" not in tracks.columns or "h" not in tracks.columns:
        raise InputFileError(source, "no box sizes (w, h) to estimate um_per_px from; give --um-per-px")
    w = tracks["w"].to_numpy(np.float64)
    h = tracks["h"].to_numpy(np.float64)
    ok = np.isfinite(w) & np.isfinite(h) & (w > 0) & (h > 0)
    if "cls" in tracks.columns:
        ok &= tracks["cls"].to_numpy() != 1
    if not ok.any():
        raise InputFileError(source, "no box has a usable size to estimate um_per_px from; give --um-per-px")
    med = float(np.median(np.maximum(w[ok], h[ok])))
    return ScaleEstimate(head_length_um / med, med, int(ok.sum()), head_length_um)


#: kinematic columns summarised by :func:`kinematics_distribution` (kinematics.csv names)
DISTRIBUTION_COLUMNS: tuple[str, ...] = (
    "vcl_um_s", "vsl_um_s", "vap_um_s", "lin_pct", "str_pct", "wob_pct", "alh_mean_um", "alh_max_um",
    "bcf_hz", "mad_deg", "dnc_um2_s", "progression_um_s", "duration_s",
)
#: the short names of issue 12 / CASA printouts, kept as extra keys of the JSON (same numbers)
DISTRIBUTION_ALIASES: dict[str, str] = {"lin": "lin_pct", "str": "str_pct", "wob": "wob_pct",
                                        "alh_um": "alh_mean_um"}
#: statistics of each column, in order
DISTRIBUTION_STATS: tuple[str, ...] = ("n", "mean", "sd", "median", "q25", "q75")


def _stats(values: pd.Series) -> dict:
    v = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    if not len(v):
        return {"n": 0, "mean": None, "sd": None, "median": None, "q25": None, "q75": None}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"n": int(len(v)), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
            "median": float(med), "q25": float(q25), "q75": float(q75)}


def kinematics_distribution(metrics: pd.DataFrame, *, aliases: bool = True) -> dict:
    """Sample-level distribution of each kinematic column over the graded cells.

    ``"all"``: every graded track (tracks too short to grade are left out: their kinematics are
    not reliable); ``"motile"``: the graded tracks not graded immotile. Each holds ``n`` (cells
    with a value: ALH / BCF are empty for immotile cells), ``mean``, ``sd`` (sample, ddof 1),
    ``median``, ``q25``, ``q75``; ``None`` where there is no value.

    Returns:
        ``{column: {"all": {...}, "motile": {...}}}`` for :data:`DISTRIBUTION_COLUMNS` present in
        ``metrics`` (plus :data:`DISTRIBUTION_ALIASES` when ``aliases``).
    """
    grade = metrics["grade"].astype(str) if "grade" in metrics.columns else pd.Series("", index=metrics.index)
    graded = metrics[grade != GRADES[NOT_GRADED]]
    motile = graded[grade[graded.index] != GRADES[IMMOTILE]]
    out = {c: {"all": _stats(graded[c]), "motile": _stats(motile[c])}
           for c in DISTRIBUTION_COLUMNS if c in metrics.columns}
    if aliases:
        out.update({a: out[c] for a, c in DISTRIBUTION_ALIASES.items() if c in out})
    return out


def distribution_frame(distribution: dict) -> pd.DataFrame:
    """:func:`kinematics_distribution` as a long table: ``quantity, cells, n, mean, sd, median, q25, q75``
    (alias keys left out)."""
    rows = [{"quantity": col, "cells": cells, **d[cells]}
            for col, d in distribution.items() if col not in DISTRIBUTION_ALIASES for cells in ("all", "motile")]
    return pd.DataFrame(rows, columns=["quantity", "cells", *DISTRIBUTION_STATS])
