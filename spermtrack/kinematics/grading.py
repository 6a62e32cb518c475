"""Motility grades per track: WHO 2021 as technicians apply it, and the gate presets CASA users expect.

Every preset answers the same two questions per graded track, vectorised over a metrics table:
*which grade* (``rapid_progressive``, ``slow_progressive``, ``non_progressive``, ``immotile``) and
*hyperactivated or not*. Tracks shorter than the minimum duration are ``not_graded``.

The default ``who2021`` preset judges a cell the way a technician watching the field does: over
short looks (:class:`WindowRule`, 1.5 s), a cell is progressive when it gets somewhere (net
displacement) along a fairly straight path, immotile when its head does not move, otherwise
non-progressive; each cell spends a fraction of its time in each grade, and its ``grade`` is the
one it spends most time in. The rule's three thresholds were fitted to the lab's manual WHO
assessment of the 16 VISEM-Tracking videos with true tracks, with leave-one-video-out
validation (``benchmarks/motility_real.py``, ``docs/MOTILITY_VALIDATION.md``).
``who2021-literal`` keeps the manual's formula read literally (progression >= 5 um/s).

The immotile decision of the literal presets never rests on VCL (localisation noise alone gives a still cell a VCL of
~18 um/s at 50 fps). Every preset shares one noise-robust motion test: the track's ``motion``
speed (``sqrt(MSD(0.2 s) - MSD(1 step)) / 0.2 s``, see ``docs/KINEMATICS_CONVENTIONS.md``) must
reach :data:`MOTION_MIN_UM_S`. A preset may add its own static rule on top (e.g. casa-gui's
``VAP <= 5``), never remove the common one. A progressive gate that passes wins over the motion
test: a net 5 um per second is far above any localisation noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from spermtrack.errors import ParameterError

#: Grade names in code order (codes 0..4 index this tuple).
GRADES: tuple[str, ...] = ("rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded")
RAPID, SLOW, NONPROG, IMMOTILE, NOT_GRADED = range(5)

#: Lag of the motion test (s) and the motion speed below which a cell counts as not moving (um/s).
#: 0.2 s is long enough for a 4 um/s cell to move 0.8 um (above typical 0.2-0.5 um localisation
#: noise, which the MSD difference removes anyway) and short enough that a cell circling with a
#: 5 um radius at 30 um/s (period ~1 s) is still seen to move.
MOTION_LAG_S = 0.2
MOTION_MIN_UM_S = 4.0

Metrics = Mapping[str, np.ndarray]

#: Columns with the time fractions (%) of :func:`grade_tracks`'s three motility grades.
TIME_COLUMNS: tuple[str, ...] = ("progressive_time_pct", "non_progressive_time_pct", "immotile_time_pct")

#: Rapid progressive: a progressive cell whose progression (mean VSL over 1-s windows) is at least this.
RAPID_UM_S = 25.0


@dataclass(frozen=True)
class WindowRule:
    """How a technician judges a cell over a short look (see :func:`kernels.window_grade_kernel`).

    Attributes:
        window_s: length of one look (s); tracks shorter than it are judged over their length.
        n_steps: the look's path is sampled at ``n_steps + 1`` times (0.3 s apart by default):
            coarse enough that the flagellar beat and localisation noise stay below the step.
        progressive_um_s: progressive needs a net displacement of at least this speed ...
        straightness_min: ... along a path whose net / coarse length is at least this.
        still_um_s: immotile when the coarse path speed is below this.
        validation: how the numbers were chosen.
        loo_rmse_pct: the rule's own error against technicians per class (``progressive``,
            ``non_progressive``, ``immotile``), in points: its leave-one-video-out RMSE with the
            share explained by sampling removed in quadrature (``benchmarks/motility_real.py``).
    """

    window_s: float
    n_steps: int
    progressive_um_s: float
    straightness_min: float
    still_um_s: float
    validation: str = ""
    loo_rmse_pct: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Preset:
    """A grading preset.

    Attributes:
        name: the ``--preset`` value.
        source: where the thresholds come from (reported in every output's metadata).
        description: the rules in one paragraph.
        progressive: ``metrics -> (rapid, slow)`` boolean arrays (disjoint).
        static: ``metrics -> bool`` array of the preset's own "not moving" rule (on top of the
            common motion test).
        hyperactivated: ``metrics -> bool`` array.
        windows: a :class:`WindowRule` when the grade comes from time fractions over short looks
            (``progressive`` then only splits rapid from slow, ``static`` is unused).
    """

    name: str
    source: str
    description: str
    progressive: Callable[[Metrics], tuple[np.ndarray, np.ndarray]]
    static: Callable[[Metrics], np.ndarray]
    hyperactivated: Callable[[Metrics], np.ndarray]
    windows: WindowRule | None = None


def _ge(a: np.ndarray, v: float) -> np.ndarray:
    # NaN compares False: an undefined metric never passes a gate
    return np.greater_equal(a, v, where=~np.isnan(a), out=np.zeros(a.shape, bool))


def _gt(a: np.ndarray, v: float) -> np.ndarray:
    return np.greater(a, v, where=~np.isnan(a), out=np.zeros(a.shape, bool))


def _le(a: np.ndarray, v: float) -> np.ndarray:
    return np.less_equal(a, v, where=~np.isnan(a), out=np.zeros(a.shape, bool))


def _lt(a: np.ndarray, v: float) -> np.ndarray:
    return np.less(a, v, where=~np.isnan(a), out=np.zeros(a.shape, bool))


def _nothing(m: Metrics) -> np.ndarray:
    return np.zeros(len(m["vcl_um_s"]), bool)


def _hyper_human(m: Metrics) -> np.ndarray:
    return _ge(m["vcl_um_s"], 150.0) & _le(m["lin_pct"], 50.0) & _ge(m["alh_mean_um"], 7.0)


def _who_progressive(m: Metrics):
    p = m["progression_um_s"]
    rapid = _ge(p, RAPID_UM_S)
    return rapid, _ge(p, 5.0) & ~rapid


def _rapid_split(m: Metrics):
    rapid = _ge(m["progression_um_s"], RAPID_UM_S)
    return rapid, ~rapid


#: The default rule (fitted on all 16 videos by ``benchmarks/motility_real.py``; its
#: leave-one-video-out errors are in ``benchmarks/results/motility_real.md``).
WHO2021_WINDOWS = WindowRule(
    window_s=1.5, n_steps=5, progressive_um_s=18.0, straightness_min=0.8, still_um_s=3.0,
    validation="thresholds fitted to the lab's manual WHO motility of the 16 VISEM-Tracking videos "
               "with official tracks (0.5 um/px, 50 fps), leave-one-video-out errors in "
               "benchmarks/results/motility_real.md",
    loo_rmse_pct=(("progressive", 7.9), ("non_progressive", 9.0), ("immotile", 13.0)))


def _ht_progressive(m: Metrics):
    rapid = _ge(m["vap_um_s"], 25.0) & _ge(m["str_pct"], 80.0)
    return rapid, np.zeros_like(rapid)


def _ht_static(m: Metrics) -> np.ndarray:
    return _lt(m["vap_um_s"], 5.0) & _lt(m["vsl_um_s"], 11.0)


def _cg_progressive(m: Metrics):
    rapid = _gt(m["vap_um_s"], 25.0) & _gt(m["str_pct"], 75.0)
    return rapid, np.zeros_like(rapid)


def _cg_static(m: Metrics) -> np.ndarray:
    return ~_gt(m["vap_um_s"], 5.0)


def _cg_hyper(m: Metrics) -> np.ndarray:
    return _gt(m["vcl_um_s"], 150.0) & _le(m["lin_pct"], 50.0) & _gt(m["alh_mean_um"], 7.0)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "who2021",
            "WHO laboratory manual, 6th ed. (2021), motility categories as technicians apply them: "
            "rule validated against manual assessment of VISEM-Tracking (docs/MOTILITY_VALIDATION.md); "
            "hyperactivation: Mortimer, Swan & Mortimer, Hum Reprod 1998 (human, 60 Hz)",
            f"over looks of {WHO2021_WINDOWS.window_s:g} s (path sampled every "
            f"{WHO2021_WINDOWS.window_s / WHO2021_WINDOWS.n_steps:g} s, after field drift is removed) a cell is "
            f"progressive when its net displacement speed is >= {WHO2021_WINDOWS.progressive_um_s:g} um/s and its "
            f"path is straight (net / path >= {WHO2021_WINDOWS.straightness_min:g}), immotile when its path "
            f"speed is < {WHO2021_WINDOWS.still_um_s:g} um/s, otherwise non-progressive; the grade is the one "
            "it spends most time in, and sample percentages split each cell by its time fractions. Rapid "
            f"progressive: progression >= {RAPID_UM_S:g} um/s. Hyperactivated: VCL >= 150 um/s, LIN <= 50 %, "
            "ALH >= 7 um.",
            _rapid_split, _nothing, _hyper_human, WHO2021_WINDOWS),
        Preset(
            "who2021-literal",
            "WHO laboratory manual for the examination and processing of human semen, 6th ed. "
            "(2021), motility categories read as formulas; hyperactivation: Mortimer, Swan & Mortimer, "
            "Hum Reprod 1998 (human, 60 Hz)",
            "progression = mean VSL over 1-s windows; rapid progressive >= 25 um/s, slow progressive "
            "5 to < 25 um/s, otherwise non-progressive if the cell moves (motion test), else immotile. "
            "Hyperactivated: VCL >= 150 um/s, LIN <= 50 %, ALH >= 7 um.",
            _who_progressive, _nothing, _hyper_human),
        Preset(
            "hamilton-thorne",
            "Hamilton Thorne IVOS/CEROS human set-up as reported in published methods: progressive "
            "VAP >= 25 um/s and STR >= 80 %; static VAP < 5 um/s and VSL < 11 um/s (check your "
            "instrument's set-up file); hyperactivation as who2021",
            "progressive (reported as rapid_progressive; this preset has no slow progressive class) = "
            "VAP >= 25 um/s and STR >= 80 %; immotile = (VAP < 5 and VSL < 11) or no motion; "
            "otherwise non-progressive. Hyperactivated as who2021.",
            _ht_progressive, _ht_static, _hyper_human),
        Preset(
            "casa-gui",
            "CASA_GUI / Wilson-Leedy & Loskutoff (2009) CASA plugin default gates as listed in "
            "spermtrack KINEMATICS.md",
            "progressive (reported as rapid_progressive; no slow progressive class) = VAP > 25 um/s "
            "and STR > 75 %; motile = VAP > 5 um/s and motion; otherwise non-progressive. "
            "Hyperactivated: VCL > 150 um/s, LIN <= 50 %, ALH > 7 um.",
            _cg_progressive, _cg_static, _cg_hyper),
    )
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` or raise :class:`ParameterError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(f"unknown grading preset {name!r}; known: {', '.join(PRESETS)}") from None


def time_fractions(codes: np.ndarray) -> np.ndarray:
    """``(n, 3)`` percentages (progressive, non-progressive, immotile) of hard grades: 100 in the
    grade's column, NaN rows for ``not_graded``."""
    out = np.zeros((len(codes), 3))
    col = np.select([codes <= SLOW, codes == NONPROG, codes == IMMOTILE], [0, 1, 2], -1)
    ok = col >= 0
    out[np.flatnonzero(ok), col[ok]] = 100.0
    out[~ok] = np.nan
    return out


def grade_tracks(metrics: Metrics, preset: str = "who2021", *, min_duration_s: float = 0.5,
                 motion_min_um_s: float = MOTION_MIN_UM_S) -> tuple[np.ndarray, np.ndarray]:
    """Grade tracks from their metrics (full precision, not the rounded CSV values).

    Args:
        metrics: arrays ``duration_s, vcl_um_s, vsl_um_s, vap_um_s, lin_pct, str_pct,
            alh_mean_um, progression_um_s, motion_um_s`` (a DataFrame works), and
            :data:`TIME_COLUMNS` for a preset with a :class:`WindowRule` (``who2021``).
        preset: a key of :data:`PRESETS`.
        min_duration_s: tracks shorter than this are ``not_graded`` (counted, never graded).
        motion_min_um_s: the common motion test; raising it calls more slow cells immotile.

    Returns:
        ``(codes, hyperactivated)``: int8 codes indexing :data:`GRADES`, and a bool array
        (only motile graded tracks can be hyperactivated).
    """
    p = get_preset(preset)
    dur = np.asarray(metrics["duration_s"], np.float64)
    m = {k: np.asarray(metrics[k], np.float64) for k in
         ("vcl_um_s", "vsl_um_s", "vap_um_s", "lin_pct", "str_pct", "alh_mean_um",
          "progression_um_s", "motion_um_s")}
    rapid, slow = p.progressive(m)
    codes = np.full(len(dur), NONPROG, np.int8)
    if p.windows is not None:
        missing = [c for c in TIME_COLUMNS if c not in metrics]
        if missing:
            raise ParameterError(f"preset {preset!r} needs the columns {', '.join(missing)} "
                                 "(computed by compute_track_metrics)")
        frac = np.column_stack([np.asarray(metrics[c], np.float64) for c in TIME_COLUMNS])
        top = np.argmax(np.nan_to_num(frac, nan=-1.0), axis=1)
        codes[top == 2] = IMMOTILE
        codes[(top == 0) & slow] = SLOW
        codes[(top == 0) & rapid] = RAPID
        codes[np.isnan(frac).all(axis=1)] = IMMOTILE  # a single point has not moved
    else:
        moving = _ge(m["motion_um_s"], motion_min_um_s) & ~p.static(m)
        codes[~moving] = IMMOTILE
        codes[slow] = SLOW
        codes[rapid] = RAPID
    graded = _ge(dur, min_duration_s)
    codes[~graded] = NOT_GRADED
    hyper = p.hyperactivated(m) & graded & (codes != IMMOTILE)
    return codes, hyper
