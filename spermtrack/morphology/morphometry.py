"""Morphometry: per-crop measurements from a :class:`Segmentation`, per-track medians, IQRs and flags.

Definitions (crop px, converted to um with ``um_per_px``):

- Head: length L = max Feret, width W = min Feret (rotating calipers on the hull of the
  sub-pixel outline), area A (polygon), perimeter P, ellipticity L/W, elongation (L-W)/(L+W),
  roughness 4 pi A / P^2, regularity pi L W / (4 A) (1 for an ellipse), mean gray level.
- Midpiece: length (arc from the head's rear tip to the midpiece / tail boundary), equivalent
  width, angle between the head's long axis and the midpiece chord; insertion offset (the
  distance of the flagellum's insertion point from the head's principal axis, px and relative to
  the head's width: :func:`insertion_offset`); the principal piece's equivalent width and the
  midpiece width's blur-free lower bound sqrt(w_mid^2 - w_pp^2) (indicative).
- Tail: arc length (only when the tail ends inside the crop), straightness chord / arc, total
  turning |sum of signed heading changes| (360 per loop), sharpest bend (largest heading change
  between consecutive 1-um chords).

Per track: median and IQR (q75 - q25) over the crops whose quality reaches ``min_quality``; the
tail from the crops grouped into *views* (frames whose traced tails lie on one another, as a
still cell's do, are one piece of evidence: :func:`tail_views`);
flags compare the medians with the reference ranges of MORPHOLOGY.md. At 400x unstained a head
spans 5-15 px: the output is *indicative morphometry*, not a stained-smear diagnosis.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
from skimage.measure import find_contours
from skimage.morphology import skeletonize

from spermtrack.morphology import paths as P
from spermtrack.morphology.segmentation import Segmentation

#: two frames whose traced tails (relative to the head, in the frame's axes) lie within this
#: distance of one another (um) saw the same view of the tail (see :func:`tail_views`)
VIEW_UM = 2.0

#: (name, kind): kind ``len`` (px -> um), ``area`` (px2 -> um2), ``deg``, ``ratio``, ``gray``.
MEASUREMENTS: tuple[tuple[str, str], ...] = (
    ("head_length", "len"), ("head_width", "len"), ("head_area", "area"), ("head_perimeter", "len"),
    ("head_ellipticity", "ratio"), ("head_elongation", "ratio"), ("head_roughness", "ratio"),
    ("head_regularity", "ratio"), ("head_mean_gray", "gray"),
    ("midpiece_length", "len"), ("midpiece_width", "len"), ("midpiece_angle", "deg"),
    ("midpiece_insertion_offset", "len"), ("midpiece_insertion_rel", "ratio"), ("principal_width", "len"),
    ("midpiece_width_lower", "len"),
    ("tail_length", "len"), ("tail_straightness", "ratio"), ("tail_total_turning", "deg"),
    ("tail_sharpest_bend", "deg"), ("tail_loop", "ratio"), ("tail_confidence", "ratio"),
)

#: Reference ranges (MORPHOLOGY.md; strict criteria on stained smears; indicative here).
REFERENCE = {
    "head_length_um": (4.0, 5.5), "head_width_um": (2.5, 3.5), "head_ellipticity": (1.3, 1.8),
    "head_regularity": (0.85, 1.35), "midpiece_angle_deg_max": 45.0, "tail_turning_deg_max": 360.0,
    "tail_length_um_min": 27.0,
    # neck / midpiece (WHO: the midpiece's major axis aligned with the head's, inserted at its
    # base; slender, under 1 um wide). WHO gives no number for "asymmetrical insertion": the
    # limit is the midpoint between an insertion on the head's axis (0) and one at its side (0.5
    # of the width), judged only on heads with a long axis (L/W at least the round-head limit) and
    # only clear of the limit by the margin (the measurement's median error on the truth set's
    # tune part is 0.08-0.11 of the width, ~0.5 px): within it the flag is empty
    "midpiece_insertion_rel_max": 0.25, "midpiece_insertion_rel_margin": 0.10, "midpiece_width_um_max": 1.0,
}
FLAGS = ("flag_small_head", "flag_large_head", "flag_tapered_head", "flag_round_head", "flag_amorphous_head",
         "flag_bent_neck", "flag_asymmetric_insertion", "flag_thick_midpiece", "flag_coiled_tail",
         "flag_short_tail")
INDICATIVE_NOTE = "indicative morphometry (unstained phase contrast, heads of 5-15 px); not a stained-smear diagnosis"


def feret(poly: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(max Feret, min Feret, end a, end b)`` of a polygon (ends of the max Feret chord)."""
    d = poly[:, None, :] - poly[None, :, :]
    d2 = (d ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    hull = cv2.convexHull(poly.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return float(np.sqrt(d2[i, j])), 0.0, poly[i], poly[j]
    e = np.roll(hull, -1, axis=0) - hull
    nrm = np.stack([-e[:, 1], e[:, 0]], axis=1)
    nrm /= np.maximum(np.hypot(nrm[:, 0], nrm[:, 1]), 1e-12)[:, None]
    proj = hull @ nrm.T
    return float(np.sqrt(d2[i, j])), float((proj.max(0) - proj.min(0)).min()), poly[i], poly[j]


def _area_perimeter(poly: np.ndarray) -> tuple[float, float]:
    x, y = poly[:, 0], poly[:, 1]
    a = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return float(a), float(np.hypot(*(np.roll(poly, -1, axis=0) - poly).T).sum())


def polygon_axis(poly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(centroid, unit major axis)`` of a polygon's area (its second moments: the principal
    axis, which a flattened or notched tip does not tilt as it can the max-Feret chord); the vertex
    mean and the max-Feret direction when the polygon is degenerate."""
    p = np.asarray(poly, np.float64)
    x, y = p[:, 0], p[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cr = x * y1 - x1 * y
    a = 0.5 * cr.sum()
    if abs(a) < 1e-9:
        _, _, fa, fb = feret(p)
        d = fb - fa
        return p.mean(axis=0), d / max(float(np.hypot(*d)), 1e-12)
    cx, cy = ((x + x1) * cr).sum() / (6 * a), ((y + y1) * cr).sum() / (6 * a)
    mu20 = (cr * (x * x + x * x1 + x1 * x1)).sum() / (12 * a) - cx * cx
    mu02 = (cr * (y * y + y * y1 + y1 * y1)).sum() / (12 * a) - cy * cy
    mu11 = (cr * (x * y1 + 2 * x * y + 2 * x1 * y1 + x1 * y)).sum() / (24 * a) - cx * cy
    th = 0.5 * np.arctan2(2 * mu11, mu20 - mu02)
    return np.array([cx, cy]), np.array([np.cos(th), np.sin(th)])


def insertion_offset(poly: np.ndarray, insertion_xy, *, width: float | None = None) -> tuple[float, float]:
    """``(offset, offset / width)``: how far the flagellum's insertion point lies from the head's
    long axis (px, and relative to the head's width = min Feret).

    The long axis is the principal (major) axis of the outline's area through its centroid
    (:func:`polygon_axis`); the offset is the insertion point's perpendicular distance from it.
    A midpiece inserted on the axis (at the base of a symmetric head) reads 0; one leaving from
    the side of the head reads up to half the width (0.5 relative). NaN without an outline or an
    insertion point. ``width``: the outline's min Feret when the caller has it already (of the
    same float64 outline: the same value :func:`feret` gives here)."""
    nan = float("nan")
    if poly is None or insertion_xy is None or len(poly) < 4:
        return nan, nan
    p = np.asarray(poly, np.float64)
    W = feret(p)[1] if width is None else float(width)
    c, u = polygon_axis(p)
    v = np.asarray(insertion_xy, np.float64) - c
    off = float(abs(u[0] * v[1] - u[1] * v[0]))
    return off, (off / W if W > 0 else nan)


def geometry_from_masks(seg: Segmentation) -> Segmentation:
    """Fill a mask-only result (a model's) with outline, axis ends and ordered paths, in place."""
    if seg.head_contour is None and seg.head.any():
        f = np.pad(seg.head.astype(np.float32), 1)
        cs = [c for c in find_contours(f, 0.5) if len(c) >= 4]
        if cs:
            c = max(cs, key=lambda c: _area_perimeter(c[:, ::-1])[0])
            seg.head_contour = c[:-1, ::-1] - 1.0
    if seg.head_contour is None:
        return seg
    if seg.rear_xy is None:
        _, _, a, b = feret(seg.head_contour)
        seg.rear_xy, seg.front_xy = (a, b) if a[0] <= b[0] else (b, a)
    if seg.path_px is None and (seg.midpiece.any() or seg.tail.any()):
        skel = skeletonize(seg.midpiece | seg.tail)
        rc, graph = P.skeleton_graph(skel)
        if len(rc) >= 2:
            xy = rc[:, ::-1].astype(np.float64)
            start = int(np.argmin(np.hypot(xy[:, 0] - seg.rear_xy[0], xy[:, 1] - seg.rear_xy[1])))
            path, _ = P.farthest_path(rc, graph, start)
            # the insertion: the outline point nearest where the flagellum's skeleton begins
            c = seg.head_contour
            seg.extra.setdefault("insertion_xy", c[int(np.argmin(np.hypot(c[:, 0] - path[0, 0],
                                                                           c[:, 1] - path[0, 1])))].copy())
            full = np.vstack([seg.rear_xy[None], P.smooth_path(path, 5)])
            seg.path_px, seg.path_length_px = full, P.arc_length(full)
            h, w = seg.head.shape
            tip = full[-1]
            seg.tail_complete = bool(1.5 <= tip[0] <= w - 2.5 and 1.5 <= tip[1] <= h - 2.5)
            inside = P.bilinear(cv2.dilate(seg.midpiece.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32),
                                P.resample(full, 0.5)) > 0.5
            if seg.midpiece.any() and inside.any():
                s_cut = 0.5 * (np.flatnonzero(inside).max())
                seg.midpiece_path, seg.tail_path = P.cut_at(full, s_cut)
                seg.midpiece_width_px = float(seg.midpiece.sum() / max(P.arc_length(seg.midpiece_path), 1.0))
            else:
                seg.tail_path = full
    return seg


def measure_crop(seg: Segmentation, crop: np.ndarray | None = None) -> dict[str, float]:
    """Measurements of one crop in px / px2 / deg / ratios (NaN where not measurable)."""
    nan = float("nan")
    out = {f"{n}": nan for n, _ in MEASUREMENTS}
    out["quality"] = float(seg.quality)
    out["tail_complete"] = bool(seg.tail_complete)
    out.update(tail_visible_length=nan, tail_lower_bound=nan, tail_trace_length=nan)
    seg = geometry_from_masks(seg)
    poly = seg.head_contour
    if poly is None or len(poly) < 4:
        return out
    L, W, _, _ = feret(poly)
    A, Pm = _area_perimeter(poly)
    out.update(head_length=L, head_width=W, head_area=A, head_perimeter=Pm,
               head_ellipticity=L / W if W > 0 else nan, head_elongation=(L - W) / (L + W) if L + W > 0 else nan,
               head_roughness=4 * np.pi * A / Pm ** 2 if Pm > 0 else nan,
               head_regularity=np.pi * L * W / (4 * A) if A > 0 else nan)
    if crop is not None and seg.head.any():
        out["head_mean_gray"] = float(np.asarray(crop)[seg.head].mean())
    axis = seg.rear_xy - seg.front_xy
    ins = seg.extra.get("insertion_xy")
    if ins is not None and (seg.path_px is not None or seg.midpiece_path is not None):
        # (the min Feret above is the same computation on the same float64 outline: not redone)
        off, rel = insertion_offset(poly, ins, width=W if np.asarray(poly).dtype == np.float64 else None)
        out.update(midpiece_insertion_offset=off, midpiece_insertion_rel=rel)
    if seg.midpiece_path is not None and len(seg.midpiece_path) >= 2:
        mp = seg.midpiece_path
        out["midpiece_length"] = P.arc_length(mp)
        out["midpiece_width"] = seg.midpiece_width_px
        wp = float(seg.extra.get("principal_width_px", nan))
        out["principal_width"] = wp
        if np.isfinite(wp) and np.isfinite(seg.midpiece_width_px):
            # blurred widths add in quadrature (Gaussian profiles): w_mid^2 - w_pp^2 = the true
            # midpiece's squared width minus the true principal piece's, so its root is a lower
            # bound of the midpiece's true width whatever the blur
            out["midpiece_width_lower"] = float(np.sqrt(max(seg.midpiece_width_px ** 2 - wp ** 2, 0.0)))
        chord = mp[-1] - mp[0]
        cosang = float(np.dot(chord, axis) / max(np.hypot(*chord) * np.hypot(*axis), 1e-12))
        out["midpiece_angle"] = float(np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0))))
    tp = seg.tail_path
    if tp is not None and len(tp) >= 2:
        arc = P.arc_length(tp)
        step = max(2.0, arc / 60.0)
        net, _, sharp = P.turning(tp, step)
        out["tail_straightness"] = float(np.hypot(*(tp[-1] - tp[0])) / arc) if arc > 0 else nan
        out["tail_sharpest_bend"] = sharp
        out["tail_visible_length"] = arc
        conf = float(seg.extra.get("tail_confidence", 1.0))
        out["tail_confidence"] = conf
        # a lower bound of the tail's length: a confident trace that faded or left the window
        # (not one that ran into another cell or round its own head)
        if seg.extra.get("tail_lower_bound", seg.tail_complete):
            out["tail_lower_bound"] = arc
        if seg.path_px is not None:
            # the whole trace from the head (midpiece + tail): the track's midpiece turns it into
            # a tail length where this crop's own midpiece / tail boundary was not resolved
            out["tail_trace_length"] = P.arc_length(seg.path_px)
        looped = bool(seg.extra.get("tail_loop", False))
        # coiled or not is known from a reliable trace only (a faint one proves nothing)
        out["tail_loop"] = float(looped) if seg.extra.get("tail_reliable", True) else nan
        if seg.tail_complete and seg.midpiece_path is not None:
            out["tail_length"] = arc
            out["tail_total_turning"] = net
        elif looped or (net > REFERENCE["tail_turning_deg_max"] and seg.extra.get("tail_lower_bound", True)):
            # a loop is a coiled tail whatever lies beyond; its overlapping turns hide its length
            out["tail_total_turning"] = net
    return out


def measure_crops(segs: list[Segmentation], crops: np.ndarray, table: pd.DataFrame, um_per_px: float) -> pd.DataFrame:
    """Per-crop table: the crop table's ``track_id, frame`` plus every measurement in px and um."""
    rows = [measure_crop(s, c) for s, c in zip(segs, crops)]
    df = pd.DataFrame(rows)
    for extra in ("tail_visible_length", "tail_lower_bound", "tail_trace_length"):
        if extra not in df.columns:
            df[extra] = np.nan
    base = table[["track_id", "frame"]].reset_index(drop=True) if len(table) else pd.DataFrame(
        {"track_id": pd.Series(dtype="int64"), "frame": pd.Series(dtype="int64")})
    out = {"track_id": base["track_id"], "frame": base["frame"], "quality": df.get("quality", pd.Series(dtype=float)),
           "tail_complete": df.get("tail_complete", pd.Series(dtype=bool))}
    for name, kind in (*MEASUREMENTS, ("tail_visible_length", "len"), ("tail_lower_bound", "len"),
                       ("tail_trace_length", "len")):
        v = df[name].astype(float) if name in df else pd.Series(np.nan, index=base.index)
        out.update(_with_units(name, kind, v, um_per_px))
    out["tail_view"] = pd.Series(tail_views(segs, table, VIEW_UM / um_per_px), index=base.index, dtype="int64")
    return pd.DataFrame(out)


def _frame_paths(segs: list[Segmentation], table: pd.DataFrame) -> list[np.ndarray | None]:
    """Each crop's traced path (head centre to tail end, resampled every px), relative to the head
    centre in the frame's axes; None without a path, or without the crop's angle and anchor."""
    out: list[np.ndarray | None] = [None] * len(segs)
    if not len(segs) or any(c not in table.columns for c in ("angle_rad", "anchor_u", "anchor_v")):
        return out
    ang = table["angle_rad"].to_numpy(np.float64)
    anc = table[["anchor_u", "anchor_v"]].to_numpy(np.float64)
    for i, s in enumerate(segs):
        if s.path_px is None or len(s.path_px) < 2:
            continue
        d = P.resample(np.asarray(s.path_px, np.float64), 1.0) - anc[i]
        c, sn = np.cos(ang[i]), np.sin(ang[i])
        out[i] = np.stack([c * d[:, 0] - sn * d[:, 1], sn * d[:, 0] + c * d[:, 1]], axis=1)
    return out


#: a still cell turns a little between its frames: paths are compared up to this rotation about
#: the head centre (degrees)
VIEW_TURN_DEG = 15.0
_VIEW_T = np.radians(np.linspace(-VIEW_TURN_DEG, VIEW_TURN_DEG, 11))
_VIEW_COS, _VIEW_SIN = np.cos(_VIEW_T), np.sin(_VIEW_T)


def _path_gap(a: np.ndarray, b: np.ndarray) -> float:
    """How far the shorter of two paths strays from the longer (px): the 90th percentile of its
    points' distances to the other path's points, at the best rotation about the head centre
    within ``VIEW_TURN_DEG``."""
    if len(a) > len(b):
        a, b = b, a
    # all rotations at once (the same element-wise arithmetic as one rotation at a time; the
    # square root, monotone and correctly rounded, is taken after the minimum: same values)
    c, s = _VIEW_COS[:, None], _VIEW_SIN[:, None]
    rx = c * a[None, :, 0] - s * a[None, :, 1]
    ry = s * a[None, :, 0] + c * a[None, :, 1]
    dx = rx[:, :, None] - b[None, None, :, 0]
    dy = ry[:, :, None] - b[None, None, :, 1]
    d = np.sqrt((dx * dx + dy * dy).min(axis=2))
    best = np.inf
    for q in np.quantile(d, 0.9, axis=1):
        best = min(best, float(q))
    return best


def tail_views(segs: list[Segmentation], table: pd.DataFrame, same_px: float) -> np.ndarray:
    """Per crop, which *view* of its track's tail it saw (0, 1, ... within a track; -1 without a
    path). Frames of a still cell see one view of its tail: their traced paths (relative to the
    head, in the frame's axes) lie on one another, and where the tail fades there (out of focus,
    or its end) it fades in every such frame; they are one piece of evidence, not several. Greedy:
    a path joins the first view whose first path it stays within ``same_px`` of
    (:func:`_path_gap`), else it starts a view."""
    out = np.full(len(segs), -1, np.int64)
    if not len(segs) or "track_id" not in table.columns:
        return out
    paths = _frame_paths(segs, table)
    tid = table["track_id"].to_numpy()
    for t in np.unique(tid):
        seeds: list[np.ndarray] = []
        for i in np.flatnonzero(tid == t):
            p = paths[i]
            if p is None:
                continue
            k = next((v for v, q in enumerate(seeds) if _path_gap(p, q) < same_px), -1)
            if k < 0:
                k = len(seeds)
                seeds.append(p)
            out[i] = k
    return out


def _with_units(name: str, kind: str, v: pd.Series, s: float) -> dict[str, pd.Series]:
    if kind == "len":
        return {f"{name}_um": v * s, f"{name}_px": v}
    if kind == "area":
        return {f"{name}_um2": v * s * s, f"{name}_px2": v}
    if kind == "deg":
        return {f"{name}_deg": v}
    if kind == "gray":
        return {f"{name}_level": v}
    return {name: v}


def value_columns() -> list[str]:
    """Per-crop value columns that get a per-track median and IQR, in output order."""
    cols = []
    for name, kind in MEASUREMENTS:
        cols += list(_with_units(name, kind, pd.Series(dtype=float), 1.0))
    return cols


def _iqr_name(col: str) -> str:
    for unit in ("_um2", "_px2", "_um", "_px", "_deg", "_level"):
        if col.endswith(unit):
            return col[: -len(unit)] + "_iqr" + unit
    return col + "_iqr"


def summarize_tracks(per_crop: pd.DataFrame, track_ids=None, min_quality: float = 0.2) -> pd.DataFrame:
    """One row per track: ``track_id, n_crops``, medians and IQRs of the measurements, flags.

    Crops below ``min_quality`` are not used; ``n_crops`` counts the used ones (0: every value NaN,
    every flag empty). ``track_ids`` adds rows for tracks that had no crop at all.
    """
    cols = value_columns()
    used = per_crop[per_crop["quality"] >= min_quality] if len(per_crop) else per_crop
    ids = sorted(set(per_crop["track_id"].astype(int)) | set(int(t) for t in (track_ids if track_ids is not None else [])))
    g = used.groupby("track_id")
    med = g[cols].median() if len(used) else pd.DataFrame(columns=cols)
    q = g[cols].quantile([0.25, 0.75]) if len(used) else None
    out = pd.DataFrame({"track_id": pd.Series(ids, dtype="int64")})
    out["n_crops"] = out.track_id.map(g.size() if len(used) else {}).fillna(0).astype("int64")
    out["n_tail_complete"] = out.track_id.map(g["tail_complete"].sum() if len(used) else {}).fillna(0).astype("int64")
    out["quality_median"] = out.track_id.map(g["quality"].median() if len(used) else {}).astype(float)
    for c in cols:
        out[c] = out.track_id.map(med[c]).astype(float) if c in med else np.nan
        if q is not None:
            iqr = q[c].xs(0.75, level=1) - q[c].xs(0.25, level=1)
            out[_iqr_name(c)] = out.track_id.map(iqr).astype(float)
        else:
            out[_iqr_name(c)] = np.nan
    _tail_per_track(out, used)
    flags = track_flags(out)
    out = pd.concat([out, flags], axis=1)
    out["indicative"] = True
    return out


#: a crop's measured tail length is kept for its track when it reaches this share of the track's
#: lower bound (the frames where more of the tail was seen say the shorter ones stopped early)
TAIL_KEEP_FRAC = 0.8

#: a short tail is flagged only when measured short in at least this many crops (frames)
SHORT_MIN_CROPS = 2


def _tail_per_track(out: pd.DataFrame, used: pd.DataFrame) -> None:
    """The track's tail length from its crops (in place). The same tail is seen in every crop,
    but only in some does the trace reach its end; the confident traces that faded or left the
    window bound it from below. A crop whose midpiece / tail boundary was not resolved gets its
    tail as its whole trace minus the track's median midpiece, or, where no crop of the track
    resolved one (a flagellum uniformly dark from the head on), minus the sample's median
    midpiece (the median of the tracks' medians; none resolved in the sample: no tail length).
    The track's own ``midpiece_length_um`` stays unmeasured (NaN).

    - ``tail_lower_um``: per view (``tail_view``: :func:`tail_views`; without that column
      every crop is its own view) its longest lower bound (a shorter trace lying on a longer
      one stopped early), then the 75th percentile over the views (one trace that ran on past
      the tip does not set it);
    - ``tail_length_um``: the median of the measured lengths (traces that faded inside the
      window, confidently) that reach ``TAIL_KEEP_FRAC`` of ``tail_lower_um`` (the frames where
      more of the tail was seen say the shorter ones stopped early); NaN when none does: the
      tail was not seen to its end, so it is not measured (and not short);
    - ``n_tail_measured``: the crops behind ``tail_length_um``, ``n_tail_views`` their views
      (the short-tail flag needs two); ``tail_length_iqr_um`` their IQR.
    """
    cols = ("tail_length_um", "tail_length_px", "tail_length_iqr_um", "tail_length_iqr_px")
    need = ("tail_lower_bound_um", "tail_trace_length_um", "midpiece_length_um", "tail_complete")
    if not len(used) or any(c not in used for c in need):
        out["tail_lower_um"] = np.nan
        out["n_tail_measured"] = 0
        out["n_tail_views"] = 0
        return
    scale = (used["tail_trace_length_um"] / used["tail_trace_length_px"]).dropna()
    track_mid = used.groupby("track_id")["midpiece_length_um"].median()
    mid = used["midpiece_length_um"].fillna(used["track_id"].map(track_mid))
    # a track none of whose crops resolved its midpiece / tail boundary (a flagellum uniformly dark
    # from the head on): the sample's median midpiece (of the tracks that resolved one)
    if track_mid.notna().any():
        mid = mid.fillna(float(track_mid.median()))
    own = used["midpiece_length_um"].notna()
    tail = used["tail_length_um"].where(own, used["tail_trace_length_um"] - mid)
    tail = tail.where(used["tail_complete"].astype(bool))

    bound = used["tail_lower_bound_um"].where(own, used["tail_trace_length_um"] - mid).where(
        used["tail_lower_bound_um"].notna())
    # frames that saw the same view of the tail (its end at the same place relative to the head)
    # are one piece of evidence: bounds and measured lengths are counted per view
    if "tail_view" in used:
        view = used["tail_view"].astype("int64")
        # a crop without a path (no view) is evidence of its own
        view = view.where(view >= 0, -1 - pd.Series(np.arange(len(used)), index=used.index))
    else:
        view = pd.Series(np.arange(len(used)), index=used.index, dtype="int64")
    per_view = bound.groupby([used["track_id"], view]).max()
    lower = per_view.groupby(level=0).quantile(0.75)
    ok = tail.notna() & ~(tail < TAIL_KEEP_FRAC * used["track_id"].map(lower))
    g = tail[ok].groupby(used.loc[ok, "track_id"])
    out["tail_lower_um"] = out.track_id.map(lower).astype(float)
    out["n_tail_measured"] = out.track_id.map(g.size()).fillna(0).astype("int64")
    nv = view[ok].groupby(used.loc[ok, "track_id"]).nunique()
    out["n_tail_views"] = out.track_id.map(nv).fillna(0).astype("int64")
    med = out.track_id.map(g.median()).astype(float)
    iqr = out.track_id.map(g.quantile(0.75) - g.quantile(0.25)).astype(float)
    s = float(scale.iloc[0]) if len(scale) else np.nan
    out[cols[0]], out[cols[1]], out[cols[2]], out[cols[3]] = med, med / s, iqr, iqr / s


def track_flags(t: pd.DataFrame) -> pd.DataFrame:
    """Flags from per-track medians; <NA> where the measurement is missing."""
    R = REFERENCE
    L, W = t["head_length_um"], t["head_width_um"]
    e, reg = t["head_ellipticity"], t["head_regularity"]

    def flag(cond: pd.Series, known: pd.Series) -> pd.Series:
        return pd.Series(np.where(known, cond, pd.NA), index=t.index, dtype="boolean")

    head_ok = L.notna() & W.notna()
    loop = t["tail_loop"] if "tail_loop" in t else pd.Series(np.nan, index=t.index)
    turning = t["tail_total_turning_deg"]
    lower = t["tail_lower_um"] if "tail_lower_um" in t else pd.Series(np.nan, index=t.index)
    n_meas = t["n_tail_measured"] if "n_tail_measured" in t else pd.Series(np.inf, index=t.index)
    if "n_tail_views" in t:
        n_meas = np.minimum(n_meas, t["n_tail_views"])
    # not short: measured at least the limit, or seen that long; short: measured under it in at
    # least SHORT_MIN_CROPS frames of as many views and never seen longer (a tail that ends short
    # in one frame, or in the frames of one view of a still cell, may have left the focal plane
    # there: not known)
    long_ = (t["tail_length_um"] >= R["tail_length_um_min"]) | (lower >= R["tail_length_um_min"])
    short = (t["tail_length_um"] < R["tail_length_um_min"]) & ~long_ & (n_meas >= SHORT_MIN_CROPS)
    coiled = (turning > R["tail_turning_deg_max"]) | (loop >= 0.5)
    nan_col = pd.Series(np.nan, index=t.index)
    # asymmetric insertion: only a head with a long axis (not round) has an axis to be off
    ins = t["midpiece_insertion_rel"] if "midpiece_insertion_rel" in t else nan_col
    has_axis = e >= R["head_ellipticity"][0]
    # thick midpiece: the blur-free lower bound of its width over WHO's 1 um (indicative; not
    # part of the sample's neck / midpiece finding, see SAMPLE_FINDINGS)
    wlo = t["midpiece_width_lower_um"] if "midpiece_width_lower_um" in t else nan_col
    return pd.DataFrame({
        "flag_small_head": flag((L < R["head_length_um"][0]) & (W < R["head_width_um"][0]), head_ok),
        "flag_large_head": flag((L > R["head_length_um"][1]) & (W > R["head_width_um"][1]), head_ok),
        "flag_tapered_head": flag(e > R["head_ellipticity"][1], e.notna()),
        "flag_round_head": flag(e < R["head_ellipticity"][0], e.notna()),
        "flag_amorphous_head": flag((reg < R["head_regularity"][0]) | (reg > R["head_regularity"][1]), reg.notna()),
        "flag_bent_neck": flag(t["midpiece_angle_deg"] > R["midpiece_angle_deg_max"], t["midpiece_angle_deg"].notna()),
        "flag_asymmetric_insertion": flag(ins > R["midpiece_insertion_rel_max"],
                                          ins.notna() & has_axis & ((ins - R["midpiece_insertion_rel_max"]).abs()
                                                                    > R["midpiece_insertion_rel_margin"])),
        "flag_thick_midpiece": flag(wlo > R["midpiece_width_um_max"], wlo.notna()),
        "flag_coiled_tail": flag(coiled, turning.notna() | loop.notna()),
        # a coil looks short (its turns overlap): it is flagged coiled, not short; a tail seen
        # (in some frame) at least as long as the limit is not short, measured or not
        "flag_short_tail": flag(short & ~coiled.fillna(False), short | long_),
    })


#: sample-level morphology findings: name -> flag columns (a cell has the finding when any is True)
SAMPLE_FINDINGS: dict[str, tuple[str, ...]] = {
    "head_defect": ("flag_small_head", "flag_large_head", "flag_tapered_head", "flag_round_head",
                    "flag_amorphous_head"),
    # WHO's neck and midpiece defects that can be judged at ~0.5 um/px unstained: a bent neck and
    # an asymmetrical insertion. A thick midpiece (flag_thick_midpiece) is reported per track but
    # not counted: its width is blur-dominated (~4 px for < 2 px of structure) and has no truth
    # to check it against (docs/MORPHOLOGY_METHOD.md)
    "neck_midpiece_defect": ("flag_bent_neck", "flag_asymmetric_insertion"),
    "tail_defect": ("flag_coiled_tail", "flag_short_tail"),
}


def morphology_summary(table: pd.DataFrame | None) -> dict | None:
    """Sample-level indicative morphology: the share of measured cells with a head, neck /
    midpiece or tail finding, and of cells with none ("normal forms", among the cells where all
    three parts were measured), each with its Wilson 95 % interval and the cells behind it.

    A finding counts only over the cells where its part was measured (a flag that is empty is
    not a normal part). Indicative: unstained phase-contrast video, not a stained smear.
    Returns None when there is no table.
    """
    from spermtrack.kinematics.summary import wilson_interval

    if table is None or table.empty:
        return None

    def share(k: int, n: int) -> dict:
        lo, hi = wilson_interval(k, n)
        return {"k": int(k), "n": int(n), "pct": 100.0 * k / n if n else None,
                "ci95_low_pct": 100.0 * lo if n else None, "ci95_high_pct": 100.0 * hi if n else None}

    out = {"n_cells": int(len(table)), "n_measured": int((table["n_crops"] > 0).sum()) if "n_crops" in table else None}
    any_flag, all_known = pd.Series(False, index=table.index), pd.Series(True, index=table.index)
    for name, cols in SAMPLE_FINDINGS.items():
        cols = [c for c in cols if c in table.columns]
        flags = table[cols].astype("boolean") if cols else pd.DataFrame(index=table.index)
        known = flags.notna().any(axis=1) if cols else pd.Series(False, index=table.index)
        hit = flags.fillna(False).any(axis=1) if cols else pd.Series(False, index=table.index)
        out[f"{name}_pct"] = share(int((hit & known).sum()), int(known.sum()))
        any_flag |= hit & known
        all_known &= known
    out["normal_forms_pct"] = share(int((all_known & ~any_flag).sum()), int(all_known.sum()))
    out["note"] = INDICATIVE_NOTE
    return out
