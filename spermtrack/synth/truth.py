"""True kinematics, grades and morphology of each synthetic track (``gt/tracks_truth.csv``).

Computed here from the generating parameters and the noise-free path, never by the engine
under test (``spermtrack.kinematics`` is not imported). Which value is the truth:

- ``vap_um_s`` = ``v_ap`` (the average path's constant speed), ``alh_um`` = 2A,
  ``bcf_hz`` = 2f, for swimming cells (immotile / pinheads: ALH = BCF = 0 and VAP from the
  frames, see below).
- ``vcl_um_s``: the closed form of KINEMATICS.md (sinusoid about a straight path,
  :func:`vcl_closed_form`) for cells whose path is straight up to slow heading diffusion
  (``omega0 = 0`` and the dense length below within :data:`CLOSED_FORM_TOL` of it;
  ``vcl_source = "closed_form"``). Where the path curves (circling, hyperactivated, or a slow
  cell whose heading noise bends it at the beat scale) the closed form no longer holds and
  the truth is the length of the
  continuous noise-free head path, sampled :data:`DENSE_PER_FRAME` times per frame interval,
  between the first and last in-view frame divided by that duration (``"dense"``). Brownian
  objects have no finite continuous VCL: their truth is the frame-sampled noise-free polyline
  over the in-view frames (``"frames"``).
- ``vsl_um_s``: straight distance between the noise-free head positions at the first and last
  in-view frames, over that duration. LIN, STR, WOB follow from the values above.
- ``progression_um_s``: WHO progression, the mean VSL of all 1-s windows (start at every
  frame) of the noise-free head path between the first and last in-view frames (the whole
  span when shorter than 1 s); ``grade``: immotile for immotile / pinhead cells, else rapid
  (>= 25), slow (5-25) or non-progressive (< 5 um/s).
- A track keeps its id when its head leaves the frame and comes back (``n_segments > 1``);
  durations run from the first to the last in-view frame, gaps included.
- ``*_frames_*`` columns: the KINEMATICS.md definitions applied to the noise-free head points of
  the in-view frames only (what an ideal tracker would measure at this frame rate), for
  checking an implementation exactly. ``vcl_dense_um_s`` and ``vcl_closed_form_um_s`` are
  always given for swimmers, so the agreement of both is visible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ellipe

from spermtrack.synth.motion import CellParams, head_at, progression_um_s

#: Dense samples per frame interval for the continuous-path VCL.
DENSE_PER_FRAME = 32
#: Largest relative gap between dense and closed-form VCL for the closed form to be the truth.
CLOSED_FORM_TOL = 0.01
#: WHO thresholds of progression (um/s).
RAPID_UM_S, SLOW_UM_S = 25.0, 5.0


def vcl_closed_form(v_um_s: float, amp_um: float, beat_hz: float) -> float:
    """VCL of ``c(t) + A sin(2 pi f t) n`` about a straight path at speed ``v`` (um/s).

    ``(1 / 2 pi) * integral_0^{2 pi} sqrt(v^2 + b^2 cos^2 u) du`` with ``b = 2 pi f A``, written
    with the complete elliptic integral ``E(m)``, ``m = b^2 / (v^2 + b^2)``:
    ``VCL = (2 / pi) sqrt(v^2 + b^2) E(m)``; the same as KINEMATICS.md's
    ``(v / 2 pi) integral sqrt(1 + k^2 cos^2 u) du`` with ``k = b / v``, and finite at ``v = 0``.
    """
    b = 2.0 * np.pi * beat_hz * amp_um
    r2 = v_um_s ** 2 + b ** 2
    if r2 == 0.0:
        return 0.0
    return float(2.0 / np.pi * np.sqrt(r2) * ellipe(b ** 2 / r2))


def kinematics_window(fps: float) -> int:
    """Average-path window in points: ``fps / 12`` rounded, raised to the next odd, at least 3.

    KINEMATICS.md's "odd integer nearest fps/12 (5 points at 45-60 fps)" read by its stated
    outcome (strictly, the odd integer nearest 45/12 = 3.75 is 3); the same rule as
    ``spermtrack.kinematics.casa.default_window``, restated here so the truth never imports it.
    """
    n = int(np.floor(fps / 12.0 + 0.5))
    return max(3, n + 1 if n % 2 == 0 else n)


def frames_metrics(xy_um: np.ndarray, frames: np.ndarray, fps: float) -> tuple[float, float]:
    """``(VCL, VAP)`` in um/s of points at the given frames (gaps count as real time)."""
    t = frames / fps
    if len(t) < 2:
        return float("nan"), float("nan")
    vcl = np.linalg.norm(np.diff(xy_um, axis=0), axis=1).sum() / (t[-1] - t[0])
    w = kinematics_window(fps)
    if len(t) < w + 1:
        return float(vcl), float("nan")
    kernel = np.ones(w) / w
    q = np.stack([np.convolve(xy_um[:, 0], kernel, "valid"), np.convolve(xy_um[:, 1], kernel, "valid")], 1)
    qt = np.convolve(t, kernel, "valid")
    vap = np.linalg.norm(np.diff(q, axis=0), axis=1).sum() / (qt[-1] - qt[0])
    return float(vcl), float(vap)


def grade_of(progression: float, population: str) -> str:
    if population in ("immotile", "pinhead"):
        return "immotile"
    if not np.isfinite(progression):
        return ""
    if progression >= RAPID_UM_S:
        return "rapid_progressive"
    if progression >= SLOW_UM_S:
        return "slow_progressive"
    return "non_progressive"


def _pct(a: float, b: float) -> float:
    return float(100.0 * a / b) if b > 0 and np.isfinite(a) and np.isfinite(b) else float("nan")


def _track_row(scene, row: int) -> dict:
    cell: CellParams = scene.cells[row]
    fps = scene.fps
    frames = np.flatnonzero(scene.in_view[row])
    first, last = int(frames[0]), int(frames[-1])
    segments = int(1 + np.count_nonzero(np.diff(frames) > 1))
    dur = (last - first) / fps
    head = scene.paths.head_um[row]
    out = {
        "track_id": int(scene.track_of[row]), "track_uid": f"syn{scene.video_id}t{int(scene.track_of[row]):04d}",
        "cls": cell.cls, "population": cell.population, "pattern": cell.pattern,
        "first_frame": first, "last_frame": last, "n_frames_in_view": len(frames), "n_segments": segments,
        "duration_s": dur,
    }
    sperm = cell.cls != 1
    nan = float("nan")
    vcl = vsl = vap = alh = bcf = prog = prog_full = vcl_cf = vcl_dense = vcl_fr = vap_fr = nan
    source, grade = "", ""
    if sperm:
        vsl = float(np.linalg.norm(head[last] - head[first]) / dur) if dur > 0 else nan
        vcl_fr, vap_fr = frames_metrics(head[frames], frames, fps)
        prog = float(progression_um_s(head[None, first:last + 1], fps)[0])
        prog_full = float(progression_um_s(head[None], fps)[0])
        if cell.motion == "swim":
            vcl_cf = vcl_closed_form(cell.v_ap_um_s, cell.amp_um, cell.beat_hz)
            if dur > 0:
                t = np.linspace(first / fps, last / fps, (last - first) * DENSE_PER_FRAME + 1)
                p = head_at(cell, scene.paths, row, t)
                vcl_dense = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() / dur)
            # the closed form assumes a straight path; where heading noise bends the path on
            # the scale of one beat, the dense length of the generated path is the truth
            straight = cell.omega0_rad_s == 0.0 and (
                not np.isfinite(vcl_dense) or abs(vcl_dense / vcl_cf - 1.0) <= CLOSED_FORM_TOL)
            vcl, source = (vcl_cf, "closed_form") if straight else (vcl_dense, "dense")
            vap, alh, bcf = cell.v_ap_um_s, 2.0 * cell.amp_um, 2.0 * cell.beat_hz
        else:
            vcl, vap, alh, bcf, source = vcl_fr, vap_fr, 0.0, 0.0, "frames"
        grade = grade_of(prog, cell.population)
    lin, strv, wob = _pct(vsl, vcl), _pct(vsl, vap), _pct(vap, vcl)
    hyper = bool(sperm and np.isfinite(vcl) and vcl >= 150.0 and np.isfinite(lin) and lin <= 50.0 and alh >= 7.0)
    out.update({
        "vcl_um_s": vcl, "vcl_source": source, "vsl_um_s": vsl, "vap_um_s": vap, "alh_um": alh, "bcf_hz": bcf,
        "lin_pct": lin, "str_pct": strv, "wob_pct": wob, "progression_um_s": prog, "grade": grade,
        "hyperactivated": hyper, "vcl_closed_form_um_s": vcl_cf, "vcl_dense_um_s": vcl_dense,
        "vcl_frames_um_s": vcl_fr, "vap_frames_um_s": vap_fr, "progression_full_um_s": prog_full,
        "v_ap_um_s": cell.v_ap_um_s, "amp_um": cell.amp_um, "beat_hz": cell.beat_hz, "phase_rad": cell.phase_rad,
        "omega0_rad_s": cell.omega0_rad_s, "d_r_rad2_s": cell.d_r_rad2_s, "d_um2_s": cell.d_um2_s,
        "yaw_amp_deg": cell.yaw_amp_deg,
    })
    if sperm:
        out.update({
            "head_variant": cell.head_variant, "head_length_um": cell.head_length_um,
            "head_width_um": cell.head_width_um, "head_area_um2": cell.head_area_um2,
            "head_ellipticity": cell.head_length_um / cell.head_width_um,
            "midpiece_length_um": cell.midpiece_length_um, "midpiece_width_um": cell.midpiece_width_um,
            "tail_variant": cell.tail_variant, "tail_length_um": cell.tail_length_um,
            "tail_wavelength_um": cell.tail_wavelength_um, "tail_amp_tip_um": cell.tail_amp_tip_um,
            "tail_coil_turns": cell.coil_turns, "n_members": 0,
        })
    else:
        out.update({"head_variant": "", "head_length_um": nan, "head_width_um": nan, "head_area_um2": nan,
                    "head_ellipticity": nan, "midpiece_length_um": nan, "midpiece_width_um": nan,
                    "tail_variant": "", "tail_length_um": nan, "tail_wavelength_um": nan,
                    "tail_amp_tip_um": nan, "tail_coil_turns": nan, "n_members": len(cell.members)})
    out.update({"defocus_px": cell.defocus_px, "contrast_scale": cell.contrast})
    return out


TRUTH_COLUMNS: tuple[str, ...] = (
    "track_id", "track_uid", "cls", "population", "pattern", "first_frame", "last_frame",
    "n_frames_in_view", "n_segments", "duration_s", "vcl_um_s", "vcl_source", "vsl_um_s", "vap_um_s",
    "alh_um", "bcf_hz", "lin_pct", "str_pct", "wob_pct", "progression_um_s", "grade", "hyperactivated",
    "vcl_closed_form_um_s", "vcl_dense_um_s", "vcl_frames_um_s", "vap_frames_um_s",
    "progression_full_um_s", "v_ap_um_s", "amp_um", "beat_hz", "phase_rad", "omega0_rad_s",
    "d_r_rad2_s", "d_um2_s", "yaw_amp_deg", "head_variant", "head_length_um", "head_width_um",
    "head_area_um2", "head_ellipticity", "midpiece_length_um", "midpiece_width_um", "tail_variant",
    "tail_length_um", "tail_wavelength_um", "tail_amp_tip_um", "tail_coil_turns", "n_members",
    "defocus_px", "contrast_scale",
)


def truth_table(scene) -> pd.DataFrame:
    """One row per track (``track_id`` order) with the columns of :data:`TRUTH_COLUMNS`."""
    rows = np.flatnonzero(scene.track_of >= 0)
    rows = rows[np.argsort(scene.track_of[rows])]
    df = pd.DataFrame([_track_row(scene, r) for r in rows], columns=list(TRUTH_COLUMNS))
    return df.astype({"track_id": "int64", "cls": "int64", "first_frame": "int64", "last_frame": "int64",
                      "n_frames_in_view": "int64", "n_segments": "int64", "hyperactivated": bool,
                      "n_members": "int64"})
