"""Neck / midpiece measurements and flags (issue 15): insertion offset, principal-piece width and
the midpiece width's lower bound, the flags built on them and the sample's neck / midpiece
finding. Synthetic geometry with a known answer; drawn windows for the segmenter's end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spermtrack.morphology.morphometry import (REFERENCE, SAMPLE_FINDINGS, insertion_offset, measure_crop,
                                               morphology_summary, polygon_axis, track_flags)

from test_morphology import _head, _line, _segment_window, _window

UM = 0.5


def _ellipse(a, b, c=(0.0, 0.0), tilt_deg=0.0, n=400):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = a * np.cos(t), b * np.sin(t)
    r = np.radians(tilt_deg)
    return np.c_[c[0] + np.cos(r) * x - np.sin(r) * y, c[1] + np.sin(r) * x + np.cos(r) * y]


def _outline_point(a, b, y, c, tilt_deg):
    """The rear outline point of the ellipse at lateral offset ``y`` from its long axis."""
    x = -a * np.sqrt(1 - (y / b) ** 2)
    r = np.radians(tilt_deg)
    return np.array([c[0] + np.cos(r) * x - np.sin(r) * y, c[1] + np.sin(r) * x + np.cos(r) * y])


@pytest.mark.parametrize("tilt", [0.0, 33.0, -120.0])
@pytest.mark.parametrize("y", [0.0, 0.75, 1.5, -2.25])
def test_insertion_offset_is_the_distance_from_the_long_axis(tilt, y):
    a, b, c = 4.0, 3.0, (20.0, 15.0)             # head 8 x 6 px
    poly = _ellipse(a, b, c, tilt)
    off, rel = insertion_offset(poly, _outline_point(a, b, y, c, tilt))
    assert off == pytest.approx(abs(y), abs=0.02)
    assert rel == pytest.approx(abs(y) / (2 * b), abs=0.005)


def test_the_long_axis_is_the_principal_axis_not_a_tilted_feret_chord():
    # a head whose rear tip is flattened (the midpiece's darkness pulls the outline in): its
    # longest chord is a diagonal, its principal axis is still the symmetry axis
    poly = _ellipse(4.5, 3.0)
    poly = poly[poly[:, 0] > -3.8]
    c, u = polygon_axis(poly)
    assert abs(u[1]) < 1e-6 and c[1] == pytest.approx(0.0, abs=1e-9)
    off, _ = insertion_offset(poly, (-3.8, 0.0))
    assert off == pytest.approx(0.0, abs=1e-6)


def test_insertion_offset_is_nan_without_an_outline_or_insertion():
    assert np.isnan(insertion_offset(None, (0, 0))[0])
    assert np.isnan(insertion_offset(_ellipse(4, 3), None)[1])


def _drawn(y_off, mid_width, seed):
    """A drawn head (8.9 x 6 px outline) with a midpiece leaving its outline ``y_off`` px off the
    long axis, parallel to it, then a fainter, thinner principal piece."""
    img = _window(seed=seed)
    _head(img, (110, 45))
    x0 = 110 - 4.5 * np.sqrt(1 - (y_off / 3.0) ** 2) - 1.0
    _line(img, (x0, 45 + y_off), (x0 - 8, 45 + y_off), 24, width=mid_width)
    _line(img, (x0 - 8, 45 + y_off), (30, 45 + y_off), 14, width=1.0)
    seg, _ = _segment_window(img, (110, 45))
    return measure_crop(seg)


def test_a_midpiece_on_the_axis_reads_on_the_axis_and_one_off_it_reads_off():
    on = [_drawn(0.0, 1.0, s)["midpiece_insertion_rel"] for s in (4, 8)]
    off = [_drawn(y, 1.0, s)["midpiece_insertion_rel"] for y, s in ((2.4, 5), (-2.4, 6))]
    assert max(on) < 0.05
    # truth 0.4: read low (the outline point nearest the line beyond the halo sits toward the
    # head's tip, as the truth set's own "head base" does), but clearly off the axis
    assert min(off) > 0.15 and min(off) > max(on) + 0.1


def test_a_thick_midpiece_has_a_width_lower_bound_over_the_limit():
    thick = _drawn(0.0, 2.5, 4)                  # Gaussian cross profile sigma 2.5 px (~3 um wide)
    thin = _drawn(0.0, 1.0, 4)                   # as thin as the principal piece
    assert thick["principal_width"] > 0 and thin["principal_width"] > 0
    assert thick["midpiece_width_lower"] * UM > REFERENCE["midpiece_width_um_max"]
    assert thin["midpiece_width_lower"] * UM < REFERENCE["midpiece_width_um_max"]
    # a lower bound: never more than the blurred width itself
    assert thick["midpiece_width_lower"] <= thick["midpiece_width"]


def _flag_table(ins, ell, wlo, angle):
    n = len(ins)
    return pd.DataFrame({"head_length_um": [4.5] * n, "head_width_um": [3.0] * n, "head_ellipticity": ell,
                         "head_regularity": [1.0] * n, "midpiece_angle_deg": angle, "midpiece_insertion_rel": ins,
                         "midpiece_width_lower_um": wlo, "tail_length_um": [np.nan] * n,
                         "tail_total_turning_deg": [np.nan] * n})


def test_asymmetric_insertion_and_thick_midpiece_flags():
    R = REFERENCE
    lim, m = R["midpiece_insertion_rel_max"], R["midpiece_insertion_rel_margin"]
    t = _flag_table(ins=[0.05, lim + m + 0.05, lim, lim - m - 0.01, 0.45, np.nan],
                    ell=[1.5, 1.5, 1.5, 1.5, 1.1, 1.5],
                    wlo=[0.5, 1.4, np.nan, 0.0, 1.0, 2.0], angle=[10.0] * 6)
    f = track_flags(t)
    a = f.flag_asymmetric_insertion
    assert a.iloc[0] == False and a.iloc[1] == True and a.iloc[3] == False  # noqa: E712
    assert pd.isna(a.iloc[2])        # within the margin of the limit: not known
    assert pd.isna(a.iloc[4])        # a round head has no long axis to be off
    assert pd.isna(a.iloc[5])
    th = f.flag_thick_midpiece
    assert th.iloc[1] == True and th.iloc[0] == False and pd.isna(th.iloc[2])  # noqa: E712
    assert th.iloc[4] == False       # at the limit is not over it  # noqa: E712


def test_tables_without_the_new_columns_get_empty_flags():
    t = _flag_table([0.4], [1.5], [2.0], [60.0]).drop(columns=["midpiece_insertion_rel", "midpiece_width_lower_um"])
    f = track_flags(t)
    assert pd.isna(f.flag_asymmetric_insertion.iloc[0]) and pd.isna(f.flag_thick_midpiece.iloc[0])
    assert f.flag_bent_neck.iloc[0] == True  # noqa: E712


def test_neck_midpiece_finding_is_the_union_of_bent_neck_and_asymmetric_insertion():
    assert set(SAMPLE_FINDINGS["neck_midpiece_defect"]) == {"flag_bent_neck", "flag_asymmetric_insertion"}
    na = pd.NA
    t = pd.DataFrame({"n_crops": [3, 3, 3, 3, 3],
                      "flag_bent_neck": pd.array([True, False, na, False, na], dtype="boolean"),
                      "flag_asymmetric_insertion": pd.array([False, True, True, False, na], dtype="boolean"),
                      # reported, not counted in the finding
                      "flag_thick_midpiece": pd.array([False, False, False, True, True], dtype="boolean")})
    s = morphology_summary(t)["neck_midpiece_defect_pct"]
    assert (s["k"], s["n"]) == (3, 4)
