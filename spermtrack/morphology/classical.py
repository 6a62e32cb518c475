"""The ``classical`` segmenter: no weights, a few OpenCV / SciPy / numba operations per crop.

Per crop (gray, head near the anchor):

1. Background = crop median, noise = MAD of the crop; ``d = crop - background``.
2. Head = the bright connected component nearest the anchor above ``head_snr`` noise levels of
   ``d`` smoothed at ``head_sigma_um``; when that component reaches a neighbouring head, the
   peak near the anchor is used. Its outline is the half-peak iso-contour of ``d`` smoothed
   less (``outline_sigma_um``), refined to the steepest descent along 48 rays: the bright head
   without its halo (smoothing a 5-10 px head widens it into the halo).
3. Midpiece + tail are traced on the *tail window* (a larger crop around the same head, same
   angle and sampling, cut from the same frame; the crop itself when there is none) with the
   tracker of :mod:`spermtrack.morphology.tailtrace`:

   - zones: the own head's outline + halo (``OWN``: the trace must leave it and never come
     back), other heads and bright debris (bright against the local background as a fraction
     ``other_head_frac`` of our own head's peak, not touching our head, at least
     ``other_min_area`` of our own head's area at that level) + halos (``OTHER``); the window's
     part beyond the frame (pixels 0: :func:`spermtrack.morphology.crops.cut_window`; ``BORDER``);
   - exit: where a radial line leaves the outline (a prior favours the ends of the head's long
     axis); the ``n_exits`` best rivals are each followed ``probe_um`` and the one along the most
     line evidence (step scores over the window's null level, capped) is followed to its end;
   - stop rule: the tracker's support (``t_stop``, ``rel_stop`` x the line's strongest level),
     and a step reading ``keep_null`` x the window's null level is supported whatever
     ``rel_stop`` says (the stop is relative to the local texture, not only to the dark
     midpiece's level);
   - a trace that faded right next to another head (``OTHER`` within ``look + halo``) is
     counted as having run into that cell (``stop = other cell``).
4. Confidence: the trace's median step score (beyond ``conf_skip_um``) over the window's null
   level (what the tracker reads where there is no line), mapped to 0..1 by ``conf_floor`` and
   ``conf_span``. ``tail_complete`` (a *measured* length) only for a confident trace that faded
   inside the window; a confident one that faded or left the window is a lower bound
   (``extra["tail_lower_bound"]``); a loop counts (``tail_loop``: coiled) only when confident.
5. Midpiece / tail split: the midpiece is thicker and darker than the principal piece, so the
   darkness profile along the path gets the least-squares single step, searched within
   ``split_span`` head lengths and ``max_midpiece_um`` of the exit; a step that noise explains
   (t below ``split_t``) leaves the midpiece unmeasured (NaN), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from skimage.measure import find_contours

from spermtrack.morphology import paths as P
from spermtrack.morphology import tailtrace as T
from spermtrack.morphology.segmentation import Segmentation, as_crop_stack, empty_segmentation


@dataclass(frozen=True)
class ClassicalParams:
    """Knobs of :class:`ClassicalSegmenter` (lengths in um, converted with ``um_per_px``).

    Attributes:
        head_sigma_um: smoothing before the head threshold.
        outline_sigma_um: smoothing before the head outline (less: a 5-10 px head's outline is
            what smoothing widens; the half-peak level and the edge are found on this image).
        dark_sigma_um: smoothing of the tail window's darkness (other heads, midpiece split).
        head_snr: detection threshold of the head core, in noise levels of the smoothed image.
        search_um: the head must lie within this distance of the anchor.
        halo_um: the halo ring around heads (own zone, other cells' zones).
        ridge_sigma_um: scale of the ridge maps (the tail is about 0.5 um wide).
        look_um: look-ahead of the tracker's arcs.
        min_radius_um: tightest bend the tracker follows (a coil of 30 um in 1.8 turns has 2 um).
        bend_penalty: tracker penalty per unit change of curvature (1/px), in units of the
            line's own level.
        t_stop: least mean step score (noise units of the ridge maps) that supports a step.
        rel_stop: ... and least share of the line's strongest running level.
        cap: arc samples are capped at this multiple of the line's running level.
        level_um: the running level is the median step score over this much path.
        gap_um: the trace stops after this much unsupported path (noise gaps, crossings).
        avg_um: the support of a step is the mean step score over this much path behind it.
        min_tail_um: a shorter path counts as no tail.
        split_t: least t statistic of the midpiece / tail darkness step.
        other_head_frac: another head is brighter (against the local background) than this
            share of our own head's peak.
        other_min_area: ... and, at that level, at least this share of our own head's area (a
            bright glint on a tail or a speck of a halo's fringe is no cell).
        near_um: within this distance of the own head's outline, only directions leading away
            from the head score (its halo rings are not followed).
        conf_skip_um: the confidence reads the step scores beyond this much path (the midpiece
            and halo are darker than any tail).
        conf_floor, conf_span: confidence = clip((contrast - floor) / span, 0, 1), contrast =
            median step score / null level.
        min_conf: a trace below this confidence measures nothing (no length, no bound, no loop).
        n_exits, rival_frac, exit_sep_deg: up to this many exits (at least this share of the best
            exit's score, this far apart) are followed ``probe_um`` ...
        probe_um: ... and compared by their evidence (step scores over the null level, each capped
            at ``evidence_cap``).
        split_span: the step is searched this many head lengths along the path (the midpiece is
            about one; a longer span reaches the fainter distal tail of a short tail).
        max_midpiece_um: ... and never beyond this (a midpiece is 3.5-5 um).
        keep_null: a step is also supported (whatever ``rel_stop`` says) while the mean step score
            reaches this multiple of the window's null level (what the tracker reads where there
            is no line): the stop is relative to the local texture, not only to the midpiece's
            darkness (0: off, the rule before).
        principal_um: the principal piece's width (the midpiece width's blur reference,
            ``extra["principal_width_px"]``) is measured over this much tail after the midpiece.
    """

    head_sigma_um: float = 0.35
    outline_sigma_um: float = 0.25
    dark_sigma_um: float = 0.35
    head_snr: float = 4.0
    search_um: float = 3.0
    halo_um: float = 1.2
    ridge_sigma_um: float = 0.5
    look_um: float = 3.0
    min_radius_um: float = 1.7
    bend_penalty: float = 1.0
    t_stop: float = 1.0
    rel_stop: float = 0.15
    cap: float = 1.25
    level_um: float = 10.0
    gap_um: float = 4.0
    avg_um: float = 6.0
    min_tail_um: float = 3.0
    split_t: float = 3.0
    other_head_frac: float = 0.35
    other_min_area: float = 0.3
    near_um: float = 5.0
    conf_skip_um: float = 5.0
    conf_floor: float = 1.5
    conf_span: float = 2.0
    min_conf: float = 0.25
    n_exits: int = 3
    rival_frac: float = 0.5
    exit_sep_deg: float = 45.0
    probe_um: float = 12.0
    evidence_cap: float = 3.0
    split_span: float = 2.2
    max_midpiece_um: float = 7.0
    principal_um: float = 4.0
    keep_null: float = 2.0

    def trace_params(self, um_per_px: float) -> T.TraceParams:
        """The tracker's parameters in px at this scale."""
        px = 1.0 / um_per_px
        return T.TraceParams(sigma=max(self.ridge_sigma_um * px, 0.7), look=max(3, int(round(self.look_um * px))),
                             kmax=min(1.0 / (self.min_radius_um * px), 0.5), bend_penalty=self.bend_penalty,
                             t_stop=self.t_stop, rel_stop=self.rel_stop, cap=self.cap,
                             gap=max(2, int(round(self.gap_um * px))),
                             loop_lag=max(8, int(round(8.0 * px))), max_len=int(round(120.0 * px)),
                             avg=max(2, int(round(self.avg_um * px))),
                             level_len=max(4, int(round(self.level_um * px))),
                             leave=int(np.ceil(2 * self.halo_um * px)) + 6)


class ClassicalSegmenter:
    """Weight-free segmentation of crops into head, midpiece and tail (see module docstring).

    Args:
        um_per_px: scale of the crops (sets the filter sizes, which are defined in um).
        params: :class:`ClassicalParams`.
    """

    name = "classical"

    takes_windows = True

    #: directions scanned for the tail's exit from the head
    n_exit = 48

    def __init__(self, um_per_px: float = 0.5, params: ClassicalParams | None = None):
        self.um_per_px = float(um_per_px)
        self.p = params or ClassicalParams()
        self.trace = self.p.trace_params(self.um_per_px)

    def px(self, um: float) -> float:
        return um / self.um_per_px

    def segment(self, crops: np.ndarray, anchors: np.ndarray | None = None, *, windows: np.ndarray | None = None,
                window_origin: tuple[int, int] = (0, 0)) -> list[Segmentation]:
        """Segment ``(N, H, W)`` uint8 crops.

        Args:
            crops: the crops (head near the anchor, +x forward).
            anchors: ``(N, 2)`` head centres (default: crop centre).
            windows: ``(N, Hw, Ww)`` tail windows around the same heads (see
                :meth:`spermtrack.morphology.crops.CropParams.window`); the tail is traced there.
            window_origin: ``(ou, ov)``: crop pixel ``(u, v)`` is window pixel ``(u + ou, v + ov)``.
        """
        crops, anchors = as_crop_stack(crops, anchors)
        n, h, w = crops.shape
        if windows is None:
            return [self.segment_one(c, a) for c, a in zip(crops, anchors)]
        return [self.segment_one(c, a, wnd, window_origin) for c, a, wnd in zip(crops, anchors, windows)]

    def segment_one(self, crop: np.ndarray, anchor, window: np.ndarray | None = None,
                    window_origin: tuple[int, int] = (0, 0)) -> Segmentation:
        f = crop.astype(np.float32)
        h, w = f.shape
        bg = float(np.median(f))
        d = f - bg
        noise = max(1.4826 * float(np.median(np.abs(d))), 0.5)
        sig = max(self.px(self.p.head_sigma_um), 0.5)
        ds = cv2.GaussianBlur(d, (0, 0), sig)
        noise_s = noise / (2.0 * np.sqrt(np.pi) * sig)
        so = max(self.px(self.p.outline_sigma_um), 0.35)
        head = self._head(ds, noise_s, np.asarray(anchor, np.float64), cv2.GaussianBlur(d, (0, 0), so))
        if head is None:
            return empty_segmentation((h, w), "no head near the anchor")
        mask, contour, peak = head
        snr = peak / noise_s
        touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        rear, front = _rear_front(contour)
        seg = Segmentation(head=mask.astype(bool), midpiece=np.zeros((h, w), bool), tail=np.zeros((h, w), bool),
                           quality=0.0, head_contour=contour, rear_xy=rear, front_xy=front,
                           head_snr=float(snr))
        if window is None:
            window, window_origin = crop, (0, 0)
        self._tail(seg, window, window_origin, bg, noise, max(self.px(self.p.dark_sigma_um), 0.5))
        q_head = float(np.clip((snr - self.p.head_snr) / (3.0 * self.p.head_snr), 0.0, 1.0))
        seg.quality = 0.0 if touches else q_head * (0.6 + 0.4 * float(seg.tail_path is not None))
        if touches:
            seg.notes = "head touches the crop border"
        return seg

    # -- head -------------------------------------------------------------------------------
    def _head(self, ds: np.ndarray, noise_s: float, anchor: np.ndarray, dso: np.ndarray):
        """The head nearest the anchor: detected on ``ds`` (threshold in noise levels), outlined
        on ``dso`` (less smoothed: the outline of a 5-10 px head is what the smoothing widens)."""
        binary = (ds > self.p.head_snr * noise_s).astype(np.uint8)
        n, lab, stats, cent = cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=_ltype(binary.shape, 8))
        if n <= 1:
            return None
        dist = np.hypot(cent[1:, 0] - anchor[0], cent[1:, 1] - anchor[1])
        # a large component far off-centre can still cover the anchor (e.g. an elongated head)
        ai, aj = int(np.clip(round(anchor[1]), 0, ds.shape[0] - 1)), int(np.clip(round(anchor[0]), 0, ds.shape[1] - 1))
        if lab[ai, aj] > 0:
            dist[lab[ai, aj] - 1] = 0.0
        k = int(np.argmin(dist))
        if dist[k] > self.px(self.p.search_um):
            return None
        k += 1
        x0, y0, bw, bh = stats[k, :4]
        pad = 2
        r0, r1 = max(y0 - pad, 0), min(y0 + bh + pad, ds.shape[0])
        c0, c1 = max(x0 - pad, 0), min(x0 + bw + pad, ds.shape[1])
        comp = lab[r0:r1, c0:c1] == k
        peak = float(ds[r0:r1, c0:c1][comp].max())
        sub = dso[r0:r1, c0:c1]
        got = self._half_peak(sub, np.where(comp, sub, -np.inf), r0, c0)
        if got is not None and np.hypot(*(got[1].mean(axis=0) - anchor)) > self.px(self.p.search_um):
            # at a low threshold a component can join a neighbouring head: take the peak near
            # the anchor instead
            yy, xx = np.mgrid[r0:r1, c0:c1]
            near = (xx - anchor[0]) ** 2 + (yy - anchor[1]) ** 2 <= self.px(self.p.search_um) ** 2
            if (comp & near).any():
                got = self._half_peak(sub, np.where(comp & near, sub, -np.inf), r0, c0) or got
        if got is None:
            return None
        region, contour, _ = got
        mask = np.zeros(ds.shape, bool)
        mask[r0:r1, c0:c1] = region
        edge = self._edge_outline(dso, contour)
        return mask, (contour if edge is None else edge), peak

    @staticmethod
    def _half_peak(sub: np.ndarray, vals: np.ndarray, r0: int, c0: int):
        """``(region, outline, peak)``: the iso-contour at half the peak of ``vals`` around it."""
        pi, pj = np.unravel_index(int(np.argmax(vals)), vals.shape)
        peak = float(sub[pi, pj])
        level = 0.5 * peak
        # iso-contour of the region above half-peak that holds the peak: other blobs are masked
        inside = (sub >= level).astype(np.uint8)
        _, lab2 = cv2.connectedComponents(inside, connectivity=4, ltype=_ltype(inside.shape, 4))
        region = lab2 == lab2[pi, pj]
        field = np.where(region, sub, np.minimum(sub, level - 1e-3))
        field = np.pad(field, 1, constant_values=float(min(field.min(), level - 1.0)))
        best = None
        for c in find_contours(field, level):
            if len(c) < 4 or np.abs(c[0] - c[-1]).max() > 1e-6:
                continue
            xy = np.stack([c[:, 1] - 1 + c0, c[:, 0] - 1 + r0], axis=1)
            if cv2.pointPolygonTest(xy.astype(np.float32), (float(pj + c0), float(pi + r0)), False) >= 0:
                area = _area(xy)
                if best is None or area > best[0]:
                    best = (area, xy[:-1])
        return None if best is None else (region, best[1], peak)

    def _edge_outline(self, ds: np.ndarray, iso: np.ndarray, n_rays: int = 48) -> np.ndarray | None:
        """Outline at the steepest descent along rays from the centre (the blurred edge's
        inflection), searched within 2 px of the half-peak outline."""
        # central differences (as np.gradient inside the image), via OpenCV for speed
        gx = cv2.Sobel(ds, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
        gy = cv2.Sobel(ds, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
        c = iso.mean(axis=0)
        th = np.linspace(0.0, 2 * np.pi, n_rays, endpoint=False)
        u = np.stack([np.cos(th), np.sin(th)], axis=1)
        v = iso - c
        ang = np.arctan2(v[:, 1], v[:, 0])
        rad = np.hypot(v[:, 0], v[:, 1])
        order = np.argsort(ang)
        r_iso = np.interp(th, ang[order], rad[order], period=2 * np.pi)
        step = 0.2
        rr = np.arange(0.0, r_iso.max() + 2.01, step)
        pts = c[None, None, :] + rr[None, :, None] * u[:, None, :]
        flat = pts.reshape(-1, 2)
        bx, by = P.bilinear_many((gx, gy), flat)
        dd = bx * np.repeat(u[:, 0], len(rr)) + by * np.repeat(u[:, 1], len(rr))
        dd = dd.reshape(n_rays, len(rr))
        lo = np.maximum(r_iso - 2.0, 0.3 * r_iso)[:, None]
        hi = (r_iso + 2.0)[:, None]
        dd = np.where((rr[None, :] >= lo) & (rr[None, :] <= hi), dd, np.inf)
        k = np.argmin(dd, axis=1)
        kk = np.clip(k, 1, len(rr) - 2)
        rows = np.arange(n_rays)
        a, b, cc = dd[rows, kk - 1], dd[rows, kk], dd[rows, kk + 1]
        den = a - 2 * b + cc
        with np.errstate(invalid="ignore", divide="ignore"):
            off = np.where(np.isfinite(den) & (den > 0), 0.5 * (a - cc) / np.where(den > 0, den, 1.0), 0.0)
        r_edge = rr[kk] + np.clip(off, -1.0, 1.0) * step
        if not np.isfinite(r_edge).all():
            return None
        return c[None, :] + r_edge[:, None] * u

    # -- midpiece and tail ------------------------------------------------------------------
    def _tail(self, seg: Segmentation, window: np.ndarray, origin: tuple[int, int], bg: float, noise: float,
              sig: float) -> None:
        """Trace midpiece + tail on the tail window (or the crop), then split and store them in
        crop coordinates (the path may leave the crop: it stays within the window)."""
        ou, ov = origin
        h, w = seg.head.shape
        wf = window.astype(np.float32)
        # beyond the frame (a tail window reaches past it; crops.cut_window marks those pixels 0):
        # filled with the background and closed to the trace
        beyond = _beyond_frame(window)
        if beyond is not None:
            wf[beyond] = float(np.median(wf[~beyond]))
        dsw = cv2.GaussianBlur(wf, (0, 0), sig)
        # local background (the window spans ~80 um: illumination gradients would read as heads)
        dsw -= cv2.blur(wf, (31, 31), borderType=cv2.BORDER_REFLECT)
        noise_s = noise / (2.0 * np.sqrt(np.pi) * sig)
        own = np.zeros(window.shape, bool)
        own[ov:ov + h, ou:ou + w] = seg.head
        off = np.array([ou, ov], np.float64)
        contour = seg.head_contour + off
        halo = int(np.ceil(self.px(self.p.halo_um)))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * halo + 1,) * 2)
        # the own head's zone: its outline (not the glow above the detection threshold) and halo
        core = np.zeros(window.shape, np.uint8)
        cv2.fillPoly(core, [np.round(contour * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        own_zone = cv2.dilate(core, disk) > 0
        # other heads: bright against the local background as a head is (a fraction of our own
        # head's peak); the faint bright rims around dark debris and tails are not heads
        peak = float(dsw[own].max()) if own.any() else 0.0
        level = max(self.p.head_snr * noise_s, self.p.other_head_frac * peak)
        bright = (dsw > level).astype(np.uint8)
        n_lab, lab, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8, ltype=_ltype(bright.shape, 8))
        keep = np.ones(n_lab, bool)
        keep[0] = False
        # a bright speck much smaller than a head (a glint on a tail, a fringe of the halo) is no
        # cell: the trace passes it as a gap (its line score is low there) rather than stop
        own_area = float(stats[np.unique(lab[own & (lab > 0)]), cv2.CC_STAT_AREA].sum()) if own.any() else 0.0
        keep &= stats[:, cv2.CC_STAT_AREA] >= self.p.other_min_area * own_area
        # what touches the own head within two halos is the own head's glow and rim, not another cell
        keep[lab[cv2.dilate(own_zone.astype(np.uint8), disk) > 0]] = False
        keep[lab[own]] = False
        # other heads and bright debris with their dark halos: a tail never runs through them
        others = keep[lab]
        blocked = cv2.dilate(others.astype(np.uint8), disk) > 0
        tp = self.trace
        zone = np.zeros(window.shape, np.uint8)
        zone[blocked] = T.OTHER
        zone[own_zone] = T.OWN
        if beyond is not None:
            # the ridge filter's reach past the fill's edge is closed too
            r = int(np.ceil(2.0 * tp.sigma)) + 2
            zone[cv2.dilate(beyond.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8)) > 0] = T.BORDER
        maps = T.ridge_maps(wf, tp.sigma)
        centre = contour.mean(axis=0)
        theta, r_edge = _polar(contour, centre, self.n_exit)
        ex = T.exit_scores(maps, zone, centre, r_edge, theta, float(halo), float(tp.look))
        rear, front = seg.rear_xy + off, seg.front_xy + off
        axis = np.arctan2(*(rear - front)[::-1])
        # the tail leaves near an end of the head's long axis (a bent neck turns after it)
        prior = 0.6 + 0.4 * np.cos(theta - axis) ** 2
        score = np.where(ex > 0, ex * prior, ex)
        r_near = float(r_edge.max()) + self.px(self.p.near_um)
        head = (centre[0], centre[1], r_near)
        # what the tracker reads off any line in this window (noise, debris rims, halo rings)
        null = T.null_level(maps, zone, tp)
        null = null if np.isfinite(null) and null > 0.5 * tp.t_stop else tp.t_stop
        # the best few exits are each followed a short way; the one that leads along the most
        # line evidence (length x contrast over the null level, capped) is followed to its end
        cands = _peaks(score, self.p.n_exits, int(round(self.p.exit_sep_deg / 360.0 * len(theta))))
        # (a rival exit at least half as dark as the best one; otherwise the best one is it)
        cands = [c for c in cands if score[c] >= self.p.rival_frac * score[cands[0]]]
        if len(cands) > 1:
            probe = replace(tp, max_len=int(round(self.px(self.p.probe_um))), depth=min(tp.depth, 1))
            ev = []
            for c in cands:
                u = np.array([np.cos(theta[c]), np.sin(theta[c])])
                t_ = T.trace_tail(maps, zone, centre + r_edge[c] * u, float(theta[c]), probe, head=head)
                e = float(np.minimum(t_.score / null, self.p.evidence_cap).sum())
                ev.append(e * (0.5 if t_.reason in (T.STOP_REENTRY, T.STOP_OTHER) else 1.0))
            k = cands[int(np.argmax(ev))]
        else:
            k = int(np.argmax(score))
        u = np.array([np.cos(theta[k]), np.sin(theta[k])])
        if np.dot(front - centre, u) > np.dot(rear - centre, u):
            rear, front = front, rear
            seg.rear_xy, seg.front_xy = seg.front_xy, seg.rear_xy
        start = centre + r_edge[k] * u
        # a step the line still supports clearly above what the tracker reads on this window's
        # texture (keep_null x its null level) is kept even where the line has faded under
        # rel_stop of its strongest level (the dark midpiece sets that level; the thinner distal
        # tail, or a tail turning out of focus, falls far under it while still well above noise)
        if self.p.keep_null > 0:
            tp = replace(tp, keep_abs=self.p.keep_null * null)
        tr = T.trace_tail(maps, zone, start, float(theta[k]), tp, head=head)
        full = tr.path
        reason = tr.reason
        if reason == T.STOP_FADED and _near(zone, full[-1], tp.look + halo, T.OTHER):
            # it faded on the halo of another head: it was following that cell's tail
            reason = T.STOP_OTHER
        seg.extra["exit_score"] = float(ex[k])
        # where the flagellum leaves the head's outline (crop px): the outline point nearest the
        # trace where it has left the head's halo (the exit ray is radial from the head's centre,
        # so its own start leans toward the head's axis; beyond the halo the trace is on the line)
        seg.extra["insertion_xy"] = _insertion(contour, full, float(halo)) - off
        seg.extra["tail_stop"] = T.STOP_NAMES[reason]
        if P.arc_length(full) < self.px(self.p.min_tail_um):
            return
        # confidence: the traced line's contrast over the window's null level
        skip = min(int(round(self.px(self.p.conf_skip_um))), max(len(tr.score) - 4, 1))
        contrast = float(np.median(tr.score[skip:])) / null if len(tr.score) > skip else 0.0
        conf = float(np.clip((contrast - self.p.conf_floor) / self.p.conf_span, 0.0, 1.0))
        looped = reason == T.STOP_LOOP and conf >= self.p.min_conf
        # a reliable trace: clearly above the texture, not into another cell or round its own head
        reliable = conf >= self.p.min_conf and reason not in (T.STOP_OTHER, T.STOP_REENTRY)
        seg.extra.update(tail_contrast=contrast, tail_confidence=conf, tail_loop=looped, tail_reliable=reliable)
        # only a line that faded inside the window, clearly above the texture, has a length;
        # every other trace is a lower bound (``tail_visible_length``) or nothing
        seg.tail_complete = reason == T.STOP_FADED and conf >= self.p.min_conf
        seg.extra["tail_lower_bound"] = reason in (T.STOP_FADED, T.STOP_BORDER, T.STOP_MAX) and conf >= self.p.min_conf
        s_exit = float(np.hypot(*(full[min(2, len(full) - 1)] - full[0])))
        self._split(seg, full, -dsw, s_exit)
        for name in ("midpiece_path", "tail_path"):
            v = getattr(seg, name)
            if v is not None:
                setattr(seg, name, v - off)
        seg.path_px = full - off
        mid_px = max(1, int(round(seg.midpiece_width_px))) if np.isfinite(seg.midpiece_width_px) else 1
        if seg.midpiece_path is not None:
            seg.midpiece = _draw(seg.midpiece_path, (h, w), mid_px) & ~seg.head
        seg.tail = _draw(seg.tail_path, (h, w), 1) & ~seg.head & ~seg.midpiece

    def _split(self, seg: Segmentation, full: np.ndarray, dark: np.ndarray, s_exit: float) -> None:
        """Midpiece / tail boundary from the darkness step along the path."""
        q = P.resample(full, 0.5)
        s = P.cumulative(q)
        prof = P.bilinear(dark, q)
        head_len = float(np.hypot(*(seg.rear_xy - seg.front_xy)))
        # bounded: the midpiece is about one head length (3.5-5 um); the step is not searched
        # beyond split_span head lengths nor max_midpiece_um (the halo and the distal contrast
        # drop of the tail must not pass for the midpiece's end)
        reach = min(self.p.split_span * max(head_len, 4.0), self.px(self.p.max_midpiece_um))
        window = (s >= s_exit) & (s <= s_exit + reach)
        k, m1, m2, t = P.step_split(prof[window], min_len=3)
        total = float(s[-1])
        if k > 0 and m1 > m2 and t >= self.p.split_t:
            s_cut = float(s[window][k])
            mid, tail = P.cut_at(full, s_cut)
            seg.midpiece_path, seg.tail_path = mid, tail
            seg.midpiece_width_px = _equivalent_width(dark, mid[1:] if len(mid) > 2 else mid)
            # the proximal principal piece, measured the same way on the same darkness map: the
            # blur reference of the midpiece's width (both are a few px, blur-dominated)
            pp = P.cut_at(tail, min(self.px(self.p.principal_um), P.arc_length(tail)))[0]
            if P.arc_length(pp) >= 0.5 * self.px(self.p.principal_um):
                seg.extra["principal_width_px"] = _equivalent_width(dark, pp)
        else:
            seg.tail_path = full
            seg.notes = (seg.notes + "; " if seg.notes else "") + "midpiece / tail boundary not resolved"
        seg.path_length_px = total


def _insertion(contour: np.ndarray, path: np.ndarray, halo: float) -> np.ndarray:
    """The outline point nearest the first point of ``path`` at least ``halo`` px outside the
    outline (the path's last point when none is; the path's start when it is a single point)."""
    ring = P.resample(np.vstack([contour, contour[:1]]), 0.25)
    # the path leaves the halo within a few px: its distances to the ring are computed a block of
    # points at a time, up to the first block that holds a far point (same values, same point)
    q = path[-1]
    for a in range(0, len(path), _INSERTION_BLOCK):
        blk = path[a:a + _INSERTION_BLOCK]
        d = np.sqrt(((blk[:, None, :] - ring[None, :, :]) ** 2).sum(-1)).min(axis=1)
        far = np.flatnonzero(d >= halo)
        if len(far):
            q = blk[far[0]]
            break
    return ring[int(np.argmin(np.hypot(ring[:, 0] - q[0], ring[:, 1] - q[1])))].copy()


#: path points per block in :func:`_insertion`
_INSERTION_BLOCK = 16


def _ltype(shape: tuple[int, ...], connectivity: int) -> int:
    """Label type of OpenCV's connected components: 16-bit (several times faster than 32-bit, and
    the same labels) when no labelling of an image this size can exceed 65535 components (8-
    connected components: at most one per 2 x 2 block; 4-connected: one per two pixels)."""
    h, w = int(shape[0]), int(shape[1])
    most = ((h + 1) // 2) * ((w + 1) // 2) if connectivity == 8 else (h * w + 1) // 2
    return cv2.CV_16U if most < 65535 else cv2.CV_32S


def _beyond_frame(window: np.ndarray) -> np.ndarray | None:
    """Pixels of a tail window beyond the frame (value 0, connected to the window's edge:
    :func:`spermtrack.morphology.crops.cut_window`), or None when there are none."""
    zero = (window == 0).astype(np.uint8)
    if not (zero[0].any() or zero[-1].any() or zero[:, 0].any() or zero[:, -1].any()):
        return None
    n, lab = cv2.connectedComponents(zero, connectivity=4, ltype=_ltype(zero.shape, 4))
    edge = np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    edge = edge[edge > 0]
    if not len(edge):
        return None
    # every zero component touches the edge (the usual case: the part beyond the frame): all of them
    out = zero.astype(bool) if len(edge) == n - 1 else np.isin(lab, edge)
    # a window that is all zero is no frame at all: nothing to close
    return out if not out.all() else None


def _equivalent_width(dark: np.ndarray, pts: np.ndarray) -> float:
    """Width of a dark line as (area of its cross profile) / (its peak depth), px."""
    q = P.resample(pts, 1.0)
    if len(q) < 2:
        return float("nan")
    t = np.empty_like(q)
    t[1:-1] = q[2:] - q[:-2]
    t[0], t[-1] = q[1] - q[0], q[-1] - q[-2]
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    nrm = np.stack([-t[:, 1], t[:, 0]], axis=1)
    offs = np.arange(-4.0, 4.01, 0.5)
    # every cross-profile sample in one call
    pts = (q[:, None, :] + offs[None, :, None] * nrm[:, None, :]).reshape(-1, 2)
    samples = P.bilinear(dark, pts).reshape(len(q), len(offs))
    base = np.minimum(samples[:, 0], samples[:, -1])[:, None]
    prof = np.clip(samples - base, 0.0, None).mean(axis=0)
    peak = prof.max()
    return float(prof.sum() * 0.5 / peak) if peak > 0 else float("nan")


def _peaks(score: np.ndarray, n: int, sep: int) -> list[int]:
    """Up to ``n`` best positive local maxima of a circular profile, at least ``sep`` apart."""
    order = np.argsort(score)[::-1]
    out: list[int] = []
    m = len(score)
    for i in order:
        if score[i] <= 0 or len(out) >= n:
            break
        if all(min(abs(i - j), m - abs(i - j)) >= sep for j in out):
            out.append(int(i))
    return out or [int(order[0])]


def _near(zone: np.ndarray, xy: np.ndarray, r: float, value: int) -> bool:
    """Whether ``zone == value`` anywhere within ``r`` px of ``xy``."""
    h, w = zone.shape
    x, y = int(round(xy[0])), int(round(xy[1]))
    ri = int(np.ceil(r))
    sub = zone[max(y - ri, 0):min(y + ri + 1, h), max(x - ri, 0):min(x + ri + 1, w)]
    if sub.size == 0:
        return False
    yy, xx = np.mgrid[max(y - ri, 0):min(y + ri + 1, h), max(x - ri, 0):min(x + ri + 1, w)]
    return bool(((sub == value) & ((xx - x) ** 2 + (yy - y) ** 2 <= r * r)).any())


def _polar(contour: np.ndarray, centre: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` directions and the outline's radius from ``centre`` along each."""
    th = np.linspace(-np.pi, np.pi, n, endpoint=False)
    v = contour - centre
    ang = np.arctan2(v[:, 1], v[:, 0])
    rad = np.hypot(v[:, 0], v[:, 1])
    order = np.argsort(ang)
    return th, np.interp(th, ang[order], rad[order], period=2 * np.pi)


def _rear_front(contour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ends of the max-Feret axis: rear = the one toward -x (the crop's rear)."""
    d = contour[:, None, :] - contour[None, :, :]
    i, j = np.unravel_index(int(np.argmax((d ** 2).sum(-1))), d.shape[:2])
    a, b = contour[i], contour[j]
    return (a, b) if a[0] <= b[0] else (b, a)


def _area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    # shoelace with slices (np.roll is slow on short arrays)
    return float(0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0]))


def _draw(pts: np.ndarray | None, shape, thickness: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    if pts is not None and len(pts) >= 2:
        cv2.polylines(out, [np.round(pts * 16).astype(np.int32)], False, 1, thickness, cv2.LINE_8, 4)
    return out > 0
