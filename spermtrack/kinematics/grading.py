"""Motility grades per track: WHO 2021 and the gate presets CASA users expect.

Every preset answers the same two questions per graded track, vectorised over a metrics table:
*which grade* (``rapid_progressive``, ``slow_progressive``, ``non_progressive``, ``immotile``) and
*hyperactivated or not*. Tracks shorter than the minimum duration are ``not_graded``.

The immotile decision never rests on VCL (localisation noise alone gives a still cell a VCL of
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
    """

    name: str
    source: str
    description: str
    progressive: Callable[[Metrics], tuple[np.ndarray, np.ndarray]]
    static: Callable[[Metrics], np.ndarray]
    hyperactivated: Callable[[Metrics], np.ndarray]


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
    rapid = _ge(p, 25.0)
    return rapid, _ge(p, 5.0) & ~rapid


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
            "WHO laboratory manual for the examination and processing of human semen, 6th ed. "
            "(2021), motility categories; hyperactivation: Mortimer, Swan & Mortimer, Hum Reprod 1998 "
            "(human, 60 Hz)",
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


def grade_tracks(metrics: Metrics, preset: str = "who2021", *, min_duration_s: float = 0.5,
                 motion_min_um_s: float = MOTION_MIN_UM_S) -> tuple[np.ndarray, np.ndarray]:
    """Grade tracks from their metrics (full precision, not the rounded CSV values).

    Args:
        metrics: arrays ``duration_s, vcl_um_s, vsl_um_s, vap_um_s, lin_pct, str_pct,
            alh_mean_um, progression_um_s, motion_um_s`` (a DataFrame works).
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
    moving = _ge(m["motion_um_s"], motion_min_um_s) & ~p.static(m)
    codes = np.full(len(dur), NONPROG, np.int8)
    codes[~moving] = IMMOTILE
    codes[slow] = SLOW
    codes[rapid] = RAPID
    graded = _ge(dur, min_duration_s)
    codes[~graded] = NOT_GRADED
    hyper = p.hyperactivated(m) & graded & (codes != IMMOTILE)
    return codes, hyper
