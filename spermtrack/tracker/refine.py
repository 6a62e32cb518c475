"""Offline refinement of online tracks: stitch tracklets, fill short gaps, smooth.

CASA analyses a recorded video, so nothing forces the tracker to decide at frame t with only
frames <= t. After the online pass (:mod:`spermtrack.tracker.associate`):

1. :func:`stitch_tracklets` joins a track that ends to one that starts shortly after where the
   first was heading (position extrapolated both ways with each end's velocity, tolerance
   growing with the gap), solved as one assignment over all (end, start) pairs.
   The tolerance also grows with each end's wobble about its fitted line (``_STITCH_WOBBLE``).
2. :func:`resolve_crossings` re-decides who is who where two tracks meet, from the likelihood of the paths on both sides under the
   constant-velocity model, each path with its own acceleration level (offline: the future is
   known).
3. :func:`refine_tracks` fills gaps of up to ``max_interp_gap_s`` inside each (stitched) track
   and smooths positions with a constant-velocity Rauch-Tung-Striebel smoother
   (:func:`spermtrack.tracker.kalman.rts_smooth`), which is also what fills the gaps.

Output columns: the measured ``x, y`` (px) stay as the detector gave them (raw centroids are the
CASA convention for VCL, ALH, BCF); ``x_smooth, y_smooth`` (px) are the smoothed positions;
``interpolated`` (bool) marks rows added in gaps, whose ``x, y`` hold the smoothed estimate and
``w, h, conf`` the linear interpolation of the neighbouring detections. The MOT output of
``spermtrack track`` writes the smoothed, gap-filled boxes; kinematics drops interpolated rows
unless asked otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from spermtrack.errors import ParameterError
from spermtrack.tracker import kalman
from spermtrack.types import check_fps, check_ranges, make_tracks, ranged

_BIG = 1e9
#: :func:`resolve_crossings`: two tracks whose centres come within this many median box sides
#: meet (8 px at our detector's 22 px boxes; 6-11 px on the VISEM label boxes); ``CROSS_NEAR_PX``
#: when the tracks carry no boxes. Wider helped the oracle sets but made wrong exchanges between
#: the phantom's strongly beating cells (docs/TRACKER.md)
CROSS_NEAR_BOXES = 0.37
CROSS_NEAR_PX = 8.0
#: path (s) on each side of a meeting that the exchange decision looks at
CROSS_PAD_S = 0.4
#: tails are exchanged when that raises the two paths' log-likelihood by more than this (nats)
CROSS_MARGIN_NATS = 3.0
#: acceleration levels (px/s^2 s.d.) a path may pick from: an immotile head to a fast swimmer
_CROSS_ACCEL_GRID_PX_S2 = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
#: prior s.d. of a path's first velocity (px/s)
_CROSS_SPEED_PRIOR_PX_S = 150.0
#: floor of the measurement s.d. (px): exact boxes would make every wobble decisive
_CROSS_MIN_SIGMA_PX = 0.3
#: exchanges per meeting, and the longest window either side of an exchange point (x pad)
_CROSS_ROUNDS = 3
_CROSS_MAX_HALF = 3
#: divide the gain by the kept paths' over-dispersion (quasi-likelihood)
_CROSS_QUASI = True
#: nats per unit of class disagreement at an exchange point: a track whose detections are sperm
#: before a meeting should continue with sperm detections after it (and an ``other`` spot with
#: ``other``); 0 turns the class term off (:func:`_class_gains`)
CROSS_CLASS_NATS = 20.0
#: meetings of two tracks whose classes disagree reach this far (median box sides): a head's
#: ``other`` satellite rides up to ~12 px from it; an exchange there needs the class term's
#: support, never motion alone. ``_CROSS_CLASS_MIN``: smaller class gains are noise (count 0)
CROSS_CLASS_NEAR_BOXES = 1.0
_CROSS_CLASS_MIN = 0.5
#: weight of each fragment end's wobble about its fitted line (the head's lateral beat and the
#: detector jitter, px^2) in the stitch tolerance
_STITCH_WOBBLE = 4.0
#: largest component the stitcher solves with a dense cost matrix; larger ones go sparse
_DENSE_ASSIGN_CELLS = 1_000_000
#: cost of leaving an end or a start unmatched in the sparse assignment: far above a pair's cost
#: (<= stitch_chi2, ~9), so that the most pairs win first as with the dense solver's _BIG (the
#: sparse solver's time grows with it: 1e6 was 300x slower than 1e3 on random graphs)
_SKIP = 1e3
#: candidate (end, start) pairs scored at once by the stitcher (bounds its memory)
_STITCH_BLOCK_PAIRS = 200_000


@dataclass(frozen=True)
class RefineParams:
    """Offline refinement parameters (px and seconds).

    Attributes:
        max_gap_s: longest gap (time between a track's last and the next one's first frame)
            the stitcher bridges. Longer joins more fragments but risks joining two cells. Keep
            it above the online tracker's ``max_age_s`` (0.5 s), so that every link
            ``split_gap_s`` cuts can be re-made.
        split_gap_s: before stitching, a track is cut where it went unseen for longer than this
            (:func:`split_gaps`): the online tracker's re-links after a long coast (a track that
            lost its head for 7+ frames and then took the nearest detection in its wide gate)
            are decided again by the stitcher, which sees both sides. 0 turns it off.
        stitch_pos_sigma_px: position tolerance of a stitch at zero gap.
        stitch_speed_sigma_px_s: velocity uncertainty; the tolerance grows by this times the gap.
        stitch_chi2: gate on the normalised stitch error (chi-square, 2 dof).
        max_speed_px_s: a stitch never implies moving faster than this across the gap.
        stitch_size_sigma: s.d. of the log box size between the two ends of a stitch (size
            separates a head from a nearby cluster or a differently sized head).
        fit_s: duration of each track end used to estimate its position and velocity.
        max_interp_gap_s: gaps up to this long are filled (flagged ``interpolated``); longer
            ones are left empty (the track keeps its id).
        meas_sigma_px: detector centre noise assumed by the smoother; larger smooths more.
            ``None`` (default) estimates it from the tracks themselves
            (:func:`estimate_meas_sigma`), so exact boxes are barely touched and jittery
            ones are smoothed hard.
        accel_sigma_px_s2: white-acceleration s.d. of the smoother. Larger keeps more of the
            real wobble (and of the jitter); smaller gives straighter paths. ``None`` (default)
            estimates it per track from the excess of its second differences over the
            measurement noise (:func:`estimate_track_accel`): a beating head keeps its wobble
            (it is real motion that CASA's ALH and BCF measure), a smooth path has its jitter
            removed. ``min_accel_sigma_px_s2`` is the floor.
        min_accel_sigma_px_s2: floor of the per-track estimate.
        min_track_s: tracks shorter than this after stitching are dropped (0 keeps all).
        satellite_radius_boxes: :func:`mark_satellites` radius, in median sperm box sides.
        satellite_min_share: a sperm track beside a stronger one on at least this share of its
            frames is re-labelled ``other`` (:func:`mark_satellites`); 0 turns it off.
        jump_min_boxes, jump_factor: before stitching, tracks are cut where one step is longer
            than ``jump_min_boxes`` median box sides and ``jump_factor`` x the track's own
            median speed around it, and another track shows up where it left within
            ``jump_evidence_s``, or landed where another track was within ``jump_landing_s``
            before (:func:`split_jumps`; ``jump_landing_s`` 0 turns that second rule off);
            ``jump_min_boxes`` 0 turns it off.
        fill_margin_px: a gap-filled position stays inside the bounding box of the gap's two
            measured ends widened by this (px). The constant-velocity smoother carries the
            velocity of a gap's ends into it: one jittery end detection (a head half merged
            with a neighbour it passes) and it draws the fill 10-25 px off the head, onto the
            neighbour's path, where scoring against labels sees an ID switch (grading never
            uses filled rows). A negative value turns it off.

    Each field's sensible range is declared with it and checked on construction
    (:class:`~spermtrack.errors.ParameterError` naming the field); the ``track.refine`` section
    of :class:`~spermtrack.config.Config` holds the same fields.
    """

    max_gap_s: float = ranged(0.6, 0.0, 3600.0)
    split_gap_s: float = ranged(0.14, 0.0, 3600.0)
    stitch_pos_sigma_px: float = ranged(5.0, 1e-3, 1e4)
    stitch_speed_sigma_px_s: float = ranged(25.0, 0.0, 1e6)
    stitch_size_sigma: float = ranged(0.2, 0.0, 100.0)
    stitch_chi2: float = ranged(9.21, 0.01, 1e4)
    max_speed_px_s: float = ranged(600.0, 0.0, 1e7)
    fit_s: float = ranged(0.4, 0.0, 60.0)
    max_interp_gap_s: float = ranged(0.5, 0.0, 3600.0)
    meas_sigma_px: float | None = ranged(None, 1e-3, 100.0)
    accel_sigma_px_s2: float | None = ranged(None, 1e-3, 1e8)
    min_accel_sigma_px_s2: float = ranged(500.0, 1e-3, 1e8)
    min_track_s: float = ranged(0.0, 0.0, 3600.0)
    satellite_radius_boxes: float = ranged(0.55, 0.0, 10.0)
    satellite_min_share: float = ranged(0.5, 0.0, 1.0)
    jump_min_boxes: float = ranged(0.3, 0.0, 10.0)
    jump_factor: float = ranged(3.0, 1.0, 1000.0)
    jump_evidence_s: float = ranged(1.0, 0.0, 60.0)
    jump_landing_s: float = ranged(0.4, 0.0, 60.0)
    fill_margin_px: float = ranged(3.0, -1.0, 1e4)

    def __post_init__(self) -> None:
        check_ranges(self)

    def validate(self) -> "RefineParams":
        """Check the ranges again (they are checked on construction); returns ``self``."""
        check_ranges(self)
        return self


def estimate_meas_sigma(tracks: pd.DataFrame, *, lo_px: float = 0.01, hi_px: float = 4.0) -> float:
    """Detector centre noise (px) estimated from the tracks' own second differences.

    For a point observed with white noise ``sigma`` on consecutive frames,
    ``z[k+1] - 2 z[k] + z[k-1]`` has variance ``6 sigma^2`` plus the real acceleration. Each
    track with at least 10 such triples gives a robust (MAD) estimate; the 25th percentile over
    tracks is taken, because slow and immotile cells (present in every real sample) add little
    acceleration. Clipped to ``[lo_px, hi_px]``; ``lo_px`` when no track is long enough.
    """
    t = tracks.sort_values(["track_id", "frame"], kind="stable")
    tid = t["track_id"].to_numpy()
    fr = t["frame"].to_numpy()
    xy = t[["x", "y"]].to_numpy(np.float64)
    if len(t) < 3:
        return lo_px
    ok = (tid[2:] == tid[:-2]) & (fr[2:] - fr[:-2] == 2)
    d2 = (xy[2:] - 2 * xy[1:-1] + xy[:-2])[ok]
    owner = tid[1:-1][ok]
    if not len(owner):
        return lo_px
    df = pd.DataFrame({"id": np.repeat(owner, 2), "v": d2.ravel()})
    g = df.groupby("id")["v"]
    mad = g.apply(lambda v: np.median(np.abs(v - np.median(v))))
    mad = mad[g.size() >= 20]
    if mad.empty:
        return lo_px
    sigma = 1.4826 * float(np.percentile(mad.to_numpy(), 25)) / np.sqrt(6.0)
    return float(np.clip(sigma, lo_px, hi_px))


def estimate_track_accel(z: np.ndarray, offsets: np.ndarray, meas_sigma_px: float, q_min: float,
                         min_triples: int = 10) -> np.ndarray:
    """Per-track process noise ``q`` (px^2/frame^4) of the constant-velocity smoother.

    Under the model (white acceleration ``a`` of variance ``q`` per frame) the second
    difference of true positions is ``(a_k + a_k-1) / 2`` (variance ``q / 2``); white measurement
    noise adds ``6 sigma^2``. So ``q = 2 (var(d2) - 6 sigma^2)`` per axis, with ``var`` from the
    median absolute deviation (robust to a few bad associations). Tracks with fewer than
    ``min_triples`` measured triples get the median of the others; all are floored at ``q_min``.
    """
    n_tr = len(offsets) - 1
    q = np.full(n_tr, np.nan)
    for i in range(n_tr):
        seg = z[offsets[i]:offsets[i + 1]]
        d2 = seg[2:] - 2 * seg[1:-1] + seg[:-2]
        d2 = d2[~np.isnan(d2).any(axis=1)].ravel()
        if len(d2) >= 2 * min_triples:
            var = (1.4826 * np.median(np.abs(d2 - np.median(d2)))) ** 2
            q[i] = 2.0 * (var - 6.0 * meas_sigma_px ** 2)
    fill = np.nanmedian(q) if np.isfinite(q).any() else q_min
    return np.maximum(np.where(np.isfinite(q), q, fill), q_min)


def _end_states(frame: np.ndarray, xy: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int,
                at_end: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line fit to the first/last ``k`` points of each track: position at the
    track's first/last frame, velocity (px/frame), that frame, and the mean squared 2-D
    residual about the line (px^2: the head's wobble plus detector jitter)."""
    n = len(starts)
    pos, vel, fr = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros(n, np.int64)
    res2 = np.zeros(n)
    for i in range(n):
        lo, hi = starts[i], ends[i]
        sl = slice(max(lo, hi - k), hi) if at_end else slice(lo, min(hi, lo + k))
        t = frame[sl].astype(np.float64)
        p = xy[sl]
        t_ref = t[-1] if at_end else t[0]
        fr[i] = int(t_ref)
        if len(t) < 2:
            pos[i] = p[-1] if at_end else p[0]
            continue
        tc = t - t.mean()
        slope = (tc[:, None] * (p - p.mean(axis=0))).sum(axis=0) / (tc @ tc)
        vel[i] = slope
        pos[i] = p.mean(axis=0) + slope * (t_ref - t.mean())
        if len(t) > 2:
            res = p - p.mean(axis=0) - tc[:, None] * slope
            res2[i] = (res ** 2).sum() / (len(t) - 2)
    return pos, vel, fr, res2


def _median_box_side(t: pd.DataFrame) -> float | None:
    """The median box side (px, geometric mean of w and h) of a table; None without boxes."""
    with np.errstate(invalid="ignore"):
        side = float(np.nanmedian(np.sqrt(t["w"].to_numpy(float) * t["h"].to_numpy(float)))) if len(t) else np.nan
    return side if np.isfinite(side) and side > 0 else None


def split_gaps(tracks: pd.DataFrame, fps: float, gap_s: float) -> tuple[pd.DataFrame, int]:
    """Cut each track where it went unseen for more than ``gap_s`` seconds.

    The first piece keeps the track's id; later pieces get new ids above every id in the table.
    Returns ``(tracks, number of cuts)``.
    """
    t = make_tracks(tracks, source="tracks to split at gaps")
    max_gap = int(np.floor(gap_s * fps))
    if t.empty or gap_s <= 0:
        return t, 0
    tid = t["track_id"].to_numpy(np.int64)
    frame = t["frame"].to_numpy(np.int64)
    same = tid[1:] == tid[:-1]
    cut = np.r_[False, same & (np.diff(frame) - 1 > max_gap)]
    n_cuts = int(cut.sum())
    if not n_cuts:
        return t, 0
    return _cut_tracks(t, cut, "tracks split at gaps"), n_cuts


def _cut_tracks(t: pd.DataFrame, cut: np.ndarray, source: str) -> pd.DataFrame:
    """Start a new track at every row where ``cut`` (rows sorted by track, frame): the first piece
    of a track keeps its id, later pieces get new ids above every id in the table."""
    tid = t["track_id"].to_numpy(np.int64)
    piece = np.cumsum(cut | np.r_[True, tid[1:] != tid[:-1]])  # piece number along the table
    first_piece = pd.Series(piece).groupby(tid).transform("min").to_numpy()
    out = t.copy()
    out["track_id"] = np.where(piece == first_piece, tid, int(tid.max()) + 1 + piece)
    return make_tracks(out, source=source)


def split_jumps(tracks: pd.DataFrame, fps: float, *, min_jump_boxes: float = 0.3, factor: float = 3.0,
                evidence_s: float = 1.0, landing_s: float = 0.4, window: int = 5) -> tuple[pd.DataFrame, int]:
    """Cut tracks where they leap from an object onto a neighbour: ``(tracks, number of cuts)``.

    The online tracker sometimes carries a track from its head onto a neighbour (a spot on a
    halo, a debris dot, another head) when the head's own detection is missed for a frame: an
    immotile track then moves 12-15 px in one frame and stays there, while the head, still in
    place, comes back as a new track. A step is cut when (1) it is longer than both
    ``min_jump_boxes`` x the median box side (6.6 px for VISEM's ~22 px boxes) and ``factor`` x
    the displacement the track's own median speed over the ``window`` steps before and after it
    predicts for the step's frame gap, and (2) there is evidence that something was left
    behind: another track has a detection within that distance of the pre-leap position within
    ``evidence_s`` after it, or (2b; ``landing_s`` 0 turns it off) that the landing site was taken:
    another track has a detection within that distance of the post-leap position within
    ``landing_s`` before it (a satellite's or neighbour's track leaping onto a head as the head's
    own track loses it). Rule (2) keeps jumpy but continuous paths whole (annotators'
    keyframe steps in ground truth, a cell that darts). The part after a cut gets a new id; the
    stitcher then joins each part to the fragment that really continues it, using both sides.

    Chosen on VISEM video 11 frames 0-734 (rule (1): 0.25-0.3 box sides, factors 2-3 alike;
    evidence windows 0.5-1 s) and checked on the issue-14 oracle TUNING sets (without rule (2)
    the cuts split annotators' keyframe steps and cost 5 ID switches per set; with it, 0-1); on
    frames 735-1469, not looked at: HOTA 57.8 -> 59.5, ID switches 22 -> 9.
    """
    from scipy.spatial import cKDTree

    t = tracks
    if t.empty or min_jump_boxes <= 0:
        return t, 0
    side = _median_box_side(t)
    if side is None:
        return t, 0
    min_jump = min_jump_boxes * side
    tid = t["track_id"].to_numpy(np.int64)
    frame = t["frame"].to_numpy(np.int64)
    xy = t[["x", "y"]].to_numpy(np.float64)
    same = tid[1:] == tid[:-1]
    gap = np.maximum(np.diff(frame), 1).astype(np.float64)
    step = np.hypot(*np.diff(xy, axis=0).T)
    speed = np.where(same, step / gap, np.nan)
    candidates = np.flatnonzero(same & (step > min_jump))
    if not len(candidates):
        return t, 0
    # rule (1), vectorised over the candidates: the median speed of the steps around each
    offs = np.r_[np.arange(-window, 0), np.arange(1, window + 1)]
    nb = candidates[:, None] + offs[None, :]
    inside = (nb >= 0) & (nb < len(speed))
    nb = np.clip(nb, 0, len(speed) - 1)
    around = np.where(inside & (tid[nb] == tid[candidates][:, None]), speed[nb], np.nan)
    enough = np.isfinite(around).sum(axis=1) >= 2
    typical = np.full(len(candidates), np.inf)
    typical[enough] = np.nanmedian(around[enough], axis=1)
    candidates = candidates[step[candidates] > factor * typical * gap[candidates]]
    if not len(candidates):
        return t, 0
    horizon = max(1, int(round(evidence_s * fps)))
    before = int(round(landing_s * fps))
    tree = cKDTree(xy)
    cut = np.zeros(len(t), bool)
    for i in candidates:
        left = np.asarray(tree.query_ball_point(xy[i], min_jump), np.int64)
        left = left[(tid[left] != tid[i]) & (frame[left] > frame[i]) & (frame[left] <= frame[i] + horizon)]
        if len(left):
            cut[i + 1] = True
        elif before:
            # (2b) or it landed where another track was just before (that track's head, taken over)
            took = np.asarray(tree.query_ball_point(xy[i + 1], min_jump), np.int64)
            took = took[(tid[took] != tid[i]) & (frame[took] < frame[i + 1]) & (frame[took] >= frame[i + 1] - before)]
            if len(took):
                cut[i + 1] = True
    n_cuts = int(cut.sum())
    if not n_cuts:
        return t, 0
    return _cut_tracks(t, cut, "tracks split at jumps"), n_cuts


def stitch_tracklets(tracks: pd.DataFrame, fps: float, params: RefineParams | None = None) -> pd.DataFrame:
    """Join track fragments across gaps; returns the table with merged ``track_id`` values.

    For every pair (track A ends at frame ``e``, track B starts at frame ``s > e``, gap
    ``g = s - e <= max_gap_s * fps``): the error is the mean squared miss of A's end
    extrapolated forward to ``s`` and of B's start extrapolated back to ``e``, divided by
    ``sigma(g)^2 = pos_sigma^2 + (speed_sigma * g)^2``; pairs within ``stitch_chi2`` and
    ``max_speed_px_s`` are candidates, and one minimum-cost assignment picks at most one
    successor per end and one predecessor per start (chains A -> B -> C follow).
    Merged tracks take the id of the first fragment of their chain.
    """
    p = (params or RefineParams()).validate()
    t = make_tracks(tracks, source="tracks to stitch")
    if t.empty:
        return t
    frame = t["frame"].to_numpy(np.int64)
    xy = t[["x", "y"]].to_numpy(np.float64)
    ids, starts = np.unique(t["track_id"].to_numpy(), return_index=True)
    ends = np.append(starts[1:], len(t))
    k = max(2, int(round(p.fit_s * fps)))
    pe, ve, fe, re = _end_states(frame, xy, starts, ends, k, at_end=True)
    ps, vs, fs, rs = _end_states(frame, xy, starts, ends, k, at_end=False)
    # candidate pairs only (end i, start j with 1 <= gap <= max_gap): memory O(pairs), not
    # O(tracks^2) (2,700 fragments made ~0.8 GB of dense ends x starts arrays)
    max_gap = p.max_gap_s * fps
    order = np.argsort(fs, kind="stable")
    lo = np.searchsorted(fs[order], fe + 1, side="left")
    hi = np.searchsorted(fs[order], fe + max_gap, side="right")
    counts = np.maximum(hi - lo, 0)
    if not counts.any():
        return t
    if p.stitch_size_sigma > 0:
        logwh = np.log(np.maximum(t[["w", "h"]].fillna(1.0).to_numpy(np.float64), 1.0))
        size_end = np.array([np.median(logwh[max(a, b - k):b], axis=0) for a, b in zip(starts, ends)])
        size_start = np.array([np.median(logwh[a:min(b, a + k)], axis=0) for a, b in zip(starts, ends)])

    def scored(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The gated candidate pairs ``(i, j, cost)`` of the ends in ``block``."""
        i = np.repeat(block, counts[block])
        j = order[np.concatenate([np.arange(lo[b], hi[b]) for b in block if hi[b] > lo[b]])]
        g = (fs[j] - fe[i]).astype(np.float64)
        fwd = pe[i] + ve[i] * g[:, None] - ps[j]
        bwd = ps[j] - vs[j] * g[:, None] - pe[i]
        err2 = 0.5 * ((fwd ** 2).sum(-1) + (bwd ** 2).sum(-1))
        sig2 = (p.stitch_pos_sigma_px ** 2 + (p.stitch_speed_sigma_px_s / fps * g) ** 2
                + _STITCH_WOBBLE * (re[i] + rs[j]))
        cost = err2 / sig2
        if p.stitch_size_sigma > 0:
            cost = cost + ((size_end[i] - size_start[j]) ** 2).sum(-1) / p.stitch_size_sigma ** 2
        jump = np.hypot(*(ps[j] - pe[i]).T)
        slack = 2 * np.sqrt(p.stitch_pos_sigma_px ** 2 + _STITCH_WOBBLE * (re[i] + rs[j]))
        ok = (cost <= p.stitch_chi2) & (jump <= p.max_speed_px_s / fps * g + slack)
        return i[ok], j[ok], cost[ok]

    # ends in blocks of ~200k candidate pairs: memory stays bounded however many fragments
    # (14,000 fragments of a flood of detections made 3.4 M pairs, ~1 GB at once)
    with_pairs = np.flatnonzero(counts)
    block_id = np.cumsum(counts[with_pairs]) // _STITCH_BLOCK_PAIRS
    parts = [scored(with_pairs[block_id == b]) for b in np.unique(block_id)]
    i, j, cost = (np.concatenate(c) for c in zip(*parts))
    if not len(i):
        return t
    nxt = _assign_pairs(i, j, cost, len(ids))
    label = np.arange(len(ids))
    has_pred = set(nxt.values())
    for head in range(len(ids)):
        if head in has_pred:
            continue
        cur = head
        while cur in nxt:
            cur = nxt[cur]
            label[cur] = head
    new_ids = ids[label]
    out = t.copy()
    out["track_id"] = np.repeat(new_ids, ends - starts)
    return make_tracks(out, source="stitched tracks")


def _assign_pairs(i: np.ndarray, j: np.ndarray, cost: np.ndarray, n: int) -> dict[int, int]:
    """Minimum-cost one-to-one assignment of ends ``i`` to starts ``j`` over the candidate pairs,
    solved per connected component of the pair graph (components are local in time and space,
    so each dense sub-problem is small)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i)), (i, j + n)), shape=(2 * n, 2 * n))
    _, comp = connected_components(graph, directed=False)
    nxt: dict[int, int] = {}
    pair_comp = comp[i]
    for c in np.unique(pair_comp):
        sel = np.flatnonzero(pair_comp == c)
        rr, ri = np.unique(i[sel], return_inverse=True)
        cc, ci = np.unique(j[sel], return_inverse=True)
        if len(rr) * len(cc) > _DENSE_ASSIGN_CELLS:
            for x, y in _sparse_assignment(ri, ci, cost[sel], len(rr), len(cc)):
                nxt[int(rr[x])] = int(cc[y])
            continue
        m = np.full((len(rr), len(cc)), _BIG)
        m[ri, ci] = cost[sel]
        a, b = linear_sum_assignment(m)
        for x, y in zip(a, b):
            if m[x, y] < _BIG:
                nxt[int(rr[x])] = int(cc[y])
    return nxt


def _sparse_assignment(ri: np.ndarray, ci: np.ndarray, cost: np.ndarray, n_rows: int, n_cols: int
                       ) -> list[tuple[int, int]]:
    """The same minimum-cost partial assignment as the dense one (as many pairs as possible,
    then the least total cost) on a sparse graph, for components too large for a dense matrix
    (a flood of detections links thousands of fragments into one). Each row gets a private
    "unmatched" column and each column a private "unmatched" row (cost ``_SKIP`` each); a pair's
    two private nodes are joined at no cost, so every partial assignment is one full matching
    (LAPJVsp, :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    n_p = len(ri)
    rows = np.r_[ri, np.arange(n_rows), n_rows + np.arange(n_cols), n_rows + ci]
    cols = np.r_[ci, n_cols + np.arange(n_rows), np.arange(n_cols), n_cols + ri]
    # + 1 on every edge: every full matching has n_rows + n_cols edges, so the optimum does not
    # move, and no weight is zero (a zero would read as a missing edge)
    w = 1.0 + np.r_[cost, np.full(n_rows + n_cols, _SKIP), np.zeros(n_p)]
    n = n_rows + n_cols
    graph = coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    _, match = min_weight_full_bipartite_matching(graph)
    return [(int(r), int(match[r])) for r in range(n_rows) if match[r] < n_cols]


def _cross_events(tid: np.ndarray, frame: np.ndarray, xy: np.ndarray, near: float) -> list[tuple[int, int, int, int]]:
    """``(first frame, last frame, id a, id b)`` of every meeting: runs of frames where two
    tracks' centres are within ``near`` px (runs of a pair up to 5 frames apart merged)."""
    order = np.argsort(frame, kind="stable")
    fs = frame[order]
    bounds = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1], True])
    rows_of = {int(fs[a]): order[a:b] for a, b in zip(bounds[:-1], bounds[1:])}
    hits: dict[tuple[int, int], list[int]] = {}
    near2 = near * near
    for f, rows in rows_of.items():
        if len(rows) < 2:
            continue
        q = xy[rows]
        d2 = ((q[:, None, :] - q[None, :, :]) ** 2).sum(-1)
        for u, w in zip(*np.nonzero(np.triu(d2 <= near2, 1))):
            a, b = int(tid[rows[u]]), int(tid[rows[w]])
            hits.setdefault((min(a, b), max(a, b)), []).append(f)
    events = set()
    for (ia, ib), fl in hits.items():
        fl.sort()
        start = prev = fl[0]
        for f in fl[1:]:
            if f - prev > 5:
                events.add((start, prev, ia, ib))
                start = f
            prev = f
        events.add((start, prev, ia, ib))
    return sorted(events)


def _swap_gains(fa: np.ndarray, za: np.ndarray, fb: np.ndarray, zb: np.ndarray, f0: int, f1: int,
                pad: int, max_half: int, q_grid: np.ndarray, r: float, p0_vel: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """For each frame ``c`` in ``[f0 - 1, f1]``: the gain in log-likelihood (nats) of exchanging
    the tails of tracks A and B after ``c`` (``keep - swap`` negative log-likelihood), over the
    path from ``pad`` frames before the meeting to ``pad`` after it (at most ``max_half`` frames
    either side of ``c`` in long meetings). Each of the four paths is scored under the
    constant-velocity model with its own best acceleration level from ``q_grid``: a cell keeps
    its way of moving through a crossing, so an immotile head that suddenly swims (or a swimmer
    that stops dead) costs likelihood. Returns ``(candidates, gains)``."""
    w0, w1 = f0 - pad, f1 + pad
    n = w1 - w0 + 1
    da = np.full((n, 2), np.nan)
    db = np.full((n, 2), np.nan)
    ia, ib = (fa >= w0) & (fa <= w1), (fb >= w0) & (fb <= w1)
    da[fa[ia] - w0] = za[ia]
    db[fb[ib] - w0] = zb[ib]
    cands = np.arange(f0 - 1, f1 + 1)
    half = min(pad + (f1 - f0), max_half)
    lo = np.maximum(cands - half, w0) - w0
    hi = np.minimum(cands + half, w1) - w0
    width = int((hi - lo).max()) + 1
    idx = lo[:, None] + np.arange(width)[None, :]
    valid = idx <= hi[:, None]
    idx = np.minimum(idx, n - 1)
    after = (idx + w0) > cands[:, None]
    sa, sb = da[idx], db[idx]                         # (C, W, 2)
    sa[~valid], sb[~valid] = np.nan, np.nan
    seqs = np.concatenate([sa, sb, np.where(after[..., None], sb, sa), np.where(after[..., None], sa, sb)])
    runs = [kalman.neg_log_likelihood(seqs, q=q, r=r, p0_vel=p0_vel, details=True) for q in q_grid]
    all_nll = np.stack([x[0] for x in runs])
    best = np.argmin(all_nll, axis=0)
    pick = np.arange(len(seqs))
    nll = all_nll[best, pick]
    chi2 = np.stack([x[1] for x in runs])[best, pick]
    cnt = np.stack([x[2] for x in runs])[best, pick]
    c = len(cands)
    gain = (nll[:c] + nll[c:2 * c]) - (nll[2 * c:3 * c] + nll[3 * c:])
    if _CROSS_QUASI:
        # over-dispersion of the kept paths (a beat or a turn the model does not describe): the
        # likelihood's evidence is worth that much less (quasi-likelihood)
        phi = np.maximum(1.0, (chi2[:c] + chi2[c:2 * c]) / np.maximum(2.0 * (cnt[:c] + cnt[c:2 * c]), 1.0))
        gain = gain / phi
    return cands, gain


def _class_gains(fa: np.ndarray, sa: np.ndarray, fb: np.ndarray, sb: np.ndarray, cands: np.ndarray,
                 k: int) -> np.ndarray:
    """For each exchange point ``c`` in ``cands``: how much better the classes of A and B join
    when their tails are exchanged after ``c``. ``sa`` / ``sb``: 1 for a sperm-class row, 0
    otherwise. With ``p-`` the sperm share of a track's last ``k`` rows up to ``c`` and ``p+``
    that of its first ``k`` rows after ``c``, the gain is ``|pA- - pA+| + |pB- - pB+| -
    |pA- - pB+| - |pB- - pA+|`` (in [-2, 2]; 0 when both tracks are sperm throughout: heads
    that meet are told apart by their motion alone). 0 where a track has no rows on one side
    (it starts or ends at ``c``: a head entering at the frame border is classed ``other`` until
    it is whole), and 0 where its size is below ``_CROSS_CLASS_MIN`` (a few rows of the other
    class are the classifier's noise)."""
    def shares(f: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cs = np.r_[0.0, np.cumsum(s)]
        i = np.searchsorted(f, cands, side="right")          # rows <= c: [0, i)
        lo, hi = np.maximum(i - k, 0), np.minimum(i + k, len(f))
        with np.errstate(invalid="ignore", divide="ignore"):
            before = (cs[i] - cs[lo]) / (i - lo)
            after = (cs[hi] - cs[i]) / (hi - i)
        return before, after

    a0, a1 = shares(fa, sa)
    b0, b1 = shares(fb, sb)
    g = np.nan_to_num(np.abs(a0 - a1) + np.abs(b0 - b1) - np.abs(a0 - b1) - np.abs(b0 - a1), nan=0.0)
    # a few rows of the other class either side are the classifier's noise, not evidence
    return np.where(np.abs(g) >= _CROSS_CLASS_MIN, g, 0.0)


def resolve_crossings(tracks: pd.DataFrame, fps: float) -> pd.DataFrame:
    """Re-decide identities where two tracks meet (offline: the paths after the meeting are known).

    An online tracker must pick who is who while two heads overlap. Meetings
    (:func:`_cross_events`): two tracks' centres within ``CROSS_NEAR_BOXES`` median box sides
    (``CROSS_NEAR_PX`` without boxes). For each meeting every frame from its start to its end is
    a candidate exchange point: the two tracks' tails are exchanged there when that makes both
    paths more likely under the constant-velocity model, each path with its own acceleration
    level (:func:`_swap_gains`), by more than ``CROSS_MARGIN_NATS`` after dividing by the kept
    paths' over-dispersion (mean normalised squared innovation over its expected 2: a beat or turn
    the model does not describe makes the likelihood's evidence worth less). The measurement
    noise is the tracks' own (:func:`estimate_meas_sigma`). Up to ``_CROSS_ROUNDS`` exchanges per
    meeting, meetings in time order.

    When the tracks carry more than one class (the product tracks ``other`` spots too), the
    gain also counts how much better the classes join (:func:`_class_gains`, x
    ``CROSS_CLASS_NATS``), and meetings reach ``CROSS_CLASS_NEAR_BOXES``: a wider meeting in
    which an exchange would make the classes agree better is decided
    whole, motion and classes together; one that never comes close is decided only at such
    points. Other wide meetings fall back to their close meetings (docs/TRACKER.md, "Crossings
    where the classes disagree").
    """
    t = make_tracks(tracks, source="tracks to resolve")
    if t.empty or CROSS_NEAR_BOXES <= 0:
        return t
    side = _median_box_side(t)
    near = CROSS_NEAR_BOXES * side if side is not None else CROSS_NEAR_PX
    pad = max(3, int(round(CROSS_PAD_S * fps)))
    tid = t["track_id"].to_numpy(np.int64).copy()
    frame = t["frame"].to_numpy(np.int64)
    xy = t[["x", "y"]].to_numpy(np.float64)
    sperm = (t["cls"].to_numpy(np.int64) == 0).astype(np.float64)
    events = _cross_events(tid, frame, xy, near)
    use_class = CROSS_CLASS_NATS > 0 and 0 < sperm.sum() < len(sperm)
    wide = CROSS_CLASS_NEAR_BOXES * side if side is not None else near
    # meetings as (first, last, a, b, the close meetings inside): without classes, or no wider
    # reach, every close meeting is its own group
    groups = [(f0, f1, ia, ib, [(f0, f1)]) for f0, f1, ia, ib in events]
    if use_class and wide > near:
        close: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for f0, f1, ia, ib in events:
            close.setdefault((ia, ib), []).append((f0, f1))
        groups = [(f0, f1, ia, ib, [(g0, g1) for g0, g1 in close.get((ia, ib), []) if g0 <= f1 and f0 <= g1])
                  for f0, f1, ia, ib in _cross_events(tid, frame, xy, wide)]
    if not groups:
        return t
    r = max(estimate_meas_sigma(t), _CROSS_MIN_SIGMA_PX) ** 2
    q_grid = np.array([kalman.cv_noise_per_frame(a, fps) for a in _CROSS_ACCEL_GRID_PX_S2])
    p0_vel = (_CROSS_SPEED_PRIOR_PX_S / fps) ** 2

    def class_gains(ma: np.ndarray, mb: np.ndarray, f0: int, f1: int) -> np.ndarray:
        return _class_gains(frame[ma], sperm[ma], frame[mb], sperm[mb], np.arange(f0 - 1, f1 + 1), pad)

    def decide(f0: int, f1: int, ia: int, ib: int, class_only: bool) -> int:
        """Up to ``_CROSS_ROUNDS`` exchanges of the tails of ``ia`` and ``ib`` within the meeting
        ``f0..f1`` (ids as first seen; after an exchange the rows carry the current ids)."""
        done = 0
        for _ in range(_CROSS_ROUNDS):
            ma, mb = tid == ia, tid == ib
            if ma.sum() < 3 or mb.sum() < 3:
                break
            cands, gain = _swap_gains(frame[ma], xy[ma], frame[mb], xy[mb], f0, f1, pad, _CROSS_MAX_HALF * pad,
                                      q_grid, r, p0_vel)
            if use_class:
                cg = class_gains(ma, mb, f0, f1)
                gain = gain + CROSS_CLASS_NATS * cg
                if class_only:
                    gain = np.where(cg > 0, gain, -np.inf)
            j = int(np.argmax(gain))
            if not gain[j] > CROSS_MARGIN_NATS:
                break
            after = frame > cands[j]
            sa, sb = ma & after, mb & after
            tid[sa], tid[sb] = ib, ia
            done += 1
        return done

    n_swapped = 0
    for f0, f1, ia, ib, inner in groups:
        if use_class and (class_gains(tid == ia, tid == ib, f0, f1) > 0).any():
            # the classes disagree across this meeting: decide it whole, motion and classes together;
            # a meeting that never comes close is decided by the classes or not at all
            n_swapped += decide(f0, f1, ia, ib, class_only=not inner)
        else:
            for g0, g1 in inner:
                n_swapped += decide(g0, g1, ia, ib, class_only=False)
    if not n_swapped:
        return t
    out = t.copy()
    out["track_id"] = tid
    return make_tracks(out, source="crossing-resolved tracks")


def refine_tracks(tracks: pd.DataFrame, fps: float, *, stitch: bool = True, smooth: bool = True,
                  params: RefineParams | None = None) -> pd.DataFrame:
    """Stitch, fill short gaps and smooth a Tracks table (see the module docstring).

    Args:
        tracks: Tracks table of measured positions (e.g. :meth:`SpermTracker.run`).
        fps: frame rate (turns the seconds in ``params`` into frames).
        stitch: join fragments across gaps (:func:`stitch_tracklets`).
        smooth: RTS-smooth positions; when False ``x_smooth, y_smooth`` equal ``x, y`` and gaps
            are filled by linear interpolation.
        params: :class:`RefineParams`.

    Returns:
        Tracks table with extra columns ``x_smooth, y_smooth`` (px) and ``interpolated``;
        ``attrs["satellite_tracks"]``: the ids :func:`mark_satellites` re-labelled ``other``.
    """
    fps = check_fps(fps)
    p = (params or RefineParams()).validate()
    t = make_tracks(tracks, source="tracks to refine")
    if stitch:
        if p.split_gap_s > 0:
            t, _ = split_gaps(t, fps, p.split_gap_s)
        if p.jump_min_boxes > 0:
            t, _ = split_jumps(t, fps, min_jump_boxes=p.jump_min_boxes, factor=p.jump_factor,
                               evidence_s=p.jump_evidence_s, landing_s=p.jump_landing_s)
        t = stitch_tracklets(t, fps, p)
    t = resolve_crossings(t, fps)
    if t.empty:
        t = t.assign(x_smooth=pd.Series(dtype="float64"), y_smooth=pd.Series(dtype="float64"),
                     interpolated=pd.Series(dtype=bool))
        return t
    tid = t["track_id"].to_numpy(np.int64)
    frame = t["frame"].to_numpy(np.int64)
    same = np.r_[tid[1:] == tid[:-1], False]
    step = np.r_[np.diff(frame), 0]
    max_fill = int(np.floor(p.max_interp_gap_s * fps))
    joined = same & (step - 1 <= max_fill)
    if (same & (step <= 0)).any():
        raise ParameterError("a track has the same frame twice after stitching (bug)")
    # segments: maximal runs of rows joined by fillable gaps; each becomes one dense block
    seg_start = np.r_[True, ~joined[:-1]]
    seg = np.cumsum(seg_start) - 1
    seg_first = frame[seg_start]
    seg_last = frame[np.r_[seg_start[1:], True]]
    lengths = seg_last - seg_first + 1
    offsets = np.r_[0, np.cumsum(lengths)]
    dense_idx = offsets[seg] + frame - seg_first[seg]
    n_dense = int(offsets[-1])
    measured = np.zeros(n_dense, bool)
    measured[dense_idx] = True
    z = np.full((n_dense, 2), np.nan)
    z[dense_idx] = t[["x", "y"]].to_numpy(np.float64)
    dseg = np.repeat(np.arange(len(lengths)), lengths)
    dframe = seg_first[dseg] + (np.arange(n_dense) - offsets[dseg])
    pos = np.arange(n_dense, dtype=np.float64)

    def interp(values: np.ndarray) -> np.ndarray:
        # each segment starts and ends measured, so interpolation never crosses segments
        return np.interp(pos, dense_idx.astype(np.float64), values)

    if smooth:
        sigma = p.meas_sigma_px if p.meas_sigma_px is not None else estimate_meas_sigma(t)
        q_min = kalman.cv_noise_per_frame(p.min_accel_sigma_px_s2, fps)
        if p.accel_sigma_px_s2 is not None:
            q = kalman.cv_noise_per_frame(p.accel_sigma_px_s2, fps)
        else:
            q = estimate_track_accel(z, offsets, sigma, q_min)
        sm = kalman.rts_smooth(z, offsets, q=q, r=sigma ** 2)[:, :2]
    else:
        sm = np.column_stack([interp(z[dense_idx, 0]), interp(z[dense_idx, 1])])
    last_measured = np.maximum.accumulate(np.where(measured, np.arange(n_dense), 0))
    if p.fill_margin_px >= 0 and not measured.all():
        sm = _clamp_fills(sm, z, measured, last_measured, p.fill_margin_px)
    cls_dense = np.empty(n_dense, np.int64)
    cls_vals = t["cls"].to_numpy(np.int64)
    cls_dense[dense_idx] = cls_vals
    cls_dense = cls_dense[last_measured]
    x = np.where(measured, z[:, 0], sm[:, 0])
    y = np.where(measured, z[:, 1], sm[:, 1])
    out = pd.DataFrame({
        "track_id": np.repeat(tid[seg_start], lengths), "frame": dframe, "x": x, "y": y,
        "w": interp(t["w"].to_numpy(np.float64)), "h": interp(t["h"].to_numpy(np.float64)),
        "conf": interp(t["conf"].to_numpy(np.float64)), "cls": cls_dense,
        "x_smooth": sm[:, 0], "y_smooth": sm[:, 1], "interpolated": ~measured,
    })
    if p.min_track_s > 0:
        span = out.groupby("track_id")["frame"].transform(lambda f: f.max() - f.min() + 1)
        out = out[span >= p.min_track_s * fps]
    out = make_tracks(out, source="refined tracks")
    if p.satellite_min_share > 0 and p.satellite_radius_boxes > 0:
        out, marked = mark_satellites(out, radius_boxes=p.satellite_radius_boxes, min_share=p.satellite_min_share)
        out.attrs["satellite_tracks"] = marked
    return out


def _clamp_fills(sm: np.ndarray, z: np.ndarray, measured: np.ndarray, prev: np.ndarray, margin: float) -> np.ndarray:
    """``sm`` with every unmeasured row clipped into the bounding box of the measured rows just
    before (``prev``: index of the last measured row) and after it (every dense segment starts
    and ends measured) widened by ``margin``."""
    n = len(measured)
    nxt = np.minimum.accumulate(np.where(measured, np.arange(n), n - 1)[::-1])[::-1]
    gap = ~measured
    a, b = z[prev[gap]], z[nxt[gap]]
    out = sm.copy()
    out[gap] = np.clip(sm[gap], np.minimum(a, b) - margin, np.maximum(a, b) + margin)
    return out


def mark_satellites(tracks: pd.DataFrame, *, radius_boxes: float = 0.55, min_share: float = 0.5
                    ) -> tuple[pd.DataFrame, list[int]]:
    """Re-label as ``other`` the sperm tracks that live beside a stronger sperm track.

    On real phase-contrast video a head brings company: a bright spot on its halo rim, neck or
    tail, or a second maximum on a large head, each detected a few px from it and tracked as a
    cell of its own (on VISEM video 11, about a third of the false sperm detections lie within
    ten px of a true head). Such a *satellite* follows its host for most of its life, while two
    cells that cross or touch meet for a moment. A track whose majority class is sperm and
    which, on at least ``min_share`` of its frames, has within ``radius_boxes`` x the median
    sperm box side (12 px for VISEM's ~22 px boxes) a sperm track of higher mean confidence
    (ties: the longer, then the lower id) gets class ``other`` on every row: it stays in
    tracks.csv, visible, and is never graded.

    The defaults were chosen on VISEM video 11 frames 0-734 (a plateau from 0.5 to 0.7 box
    sides and shares 0.4-0.7); on frames 735-1469, not looked at: HOTA 56.3 -> 58.7, ID
    switches 31 -> 21, sperm tracks 77 -> 57 for 40 true ones.

    Returns:
        ``(tracks, ids of the re-labelled tracks)``; the table is unchanged when none is.
    """
    from scipy.spatial import cKDTree

    from spermtrack.types import OTHER_CLS

    t = tracks
    if t.empty or min_share <= 0 or radius_boxes <= 0:
        return t, []
    majority = t.groupby("track_id")["cls"].agg(lambda c: int(c.mode().iat[0]))
    sperm_ids = majority.index[majority == 0]
    sp = t[t["track_id"].isin(sperm_ids)]
    if sp["track_id"].nunique() < 2:
        return t, []
    measured = sp[~sp["interpolated"]] if "interpolated" in sp else sp
    side = _median_box_side(measured)
    if side is None:
        return t, []
    radius = radius_boxes * side
    g = measured.groupby("track_id")
    # strength rank: mean confidence, then length, then the lower id (a total order)
    strength = pd.DataFrame({"conf": g["conf"].mean(), "n": g.size()}).reset_index()
    strength = strength.sort_values(["conf", "n", "track_id"], ascending=[True, True, False])
    rank = pd.Series(np.arange(len(strength)), index=strength["track_id"].to_numpy())
    ids = sp["track_id"].to_numpy(np.int64)
    r = rank.reindex(ids).to_numpy()
    r = np.where(np.isnan(r), -1, r).astype(np.int64)  # a track with only interpolated rows is weakest
    xy = sp[["x", "y"]].to_numpy(np.float64)
    frame = sp["frame"].to_numpy(np.int64)
    order = np.argsort(frame, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(frame[order]) != 0, True])
    shadowed = np.zeros(len(sp), bool)
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        if len(rows) < 2:
            continue
        pairs = cKDTree(xy[rows]).query_pairs(radius, output_type="ndarray")
        if len(pairs):
            i, j = rows[pairs[:, 0]], rows[pairs[:, 1]]
            shadowed[np.where(r[i] < r[j], i, j)] = True
    share = pd.Series(shadowed).groupby(ids).mean()
    marked = [int(k) for k in share.index[share >= min_share]]
    if not marked:
        return t, []
    out = t.copy()
    out.loc[out["track_id"].isin(marked), "cls"] = OTHER_CLS
    return out, marked


def smoothed_boxes(tracks: pd.DataFrame) -> pd.DataFrame:
    """The Tracks table whose ``x, y`` are the smoothed positions (what the MOT output carries)."""
    if "x_smooth" not in tracks.columns:
        return tracks
    out = tracks.copy()
    out["x"], out["y"] = out["x_smooth"], out["y_smooth"]
    return out.drop(columns=["x_smooth", "y_smooth"])
