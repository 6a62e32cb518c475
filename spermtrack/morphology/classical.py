"""The ``classical`` segmenter: no weights, a few OpenCV / SciPy operations per crop.

Per crop (gray, head near the anchor, +x = forward):

1. Background = crop median, noise = MAD of the crop; ``d = crop - background``, lightly smoothed.
2. Head = the bright connected component nearest the anchor above ``head_snr`` noise levels.
   Its outline is the sub-pixel iso-contour at **half of its peak** above background: on a
   blurred step edge the half-maximum lies on the edge whatever the blur (for a phase-contrast
   head the halo lowers the plateau and the peak alike, and the core's edge is steep, so the
   level error moves the outline by a few hundredths of a pixel).
3. Midpiece + tail are traced on the *tail window* (a larger crop around the same head, same
   angle and sampling, cut from the same frame; the crop itself when there is none): oriented
   ridge maps in noise units, other heads and bright debris (with their halos) blocked, then
   the curvature-continuous tracker of :mod:`spermtrack.morphology.tailtrace` from the head's
   rear tip along the head axis. It passes crossings straight, follows coils round (a loop is
   detected and reported: ``extra["tail_loop"]``) and stops where the line's evidence fades.
4. ``tail_complete`` only when the trace faded inside the window (not at its border, not in a
   loop): only then is the tail length reported.
5. Midpiece / tail split: the midpiece is thicker and darker than the principal piece, so the
   darkness profile along the path gets the least-squares single step; a step that noise
   explains (t below ``split_t``) leaves the midpiece unmeasured (NaN), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        head_snr: detection threshold of the head core, in noise levels of the smoothed image.
        search_um: the head must lie within this distance of the anchor.
        halo_um: the dark halo ring around other heads / bright debris (blocked for the tracer).
        ridge_sigma_um: scale of the ridge maps (the tail is about 0.5 um wide).
        look_um: look-ahead of the tracker's arcs.
        min_radius_um: tightest bend the tracker follows (a coil of 30 um in 1.8 turns has 2 um).
        bend_penalty: tracker penalty per unit change of curvature (1/px), in score units.
        t_stop: least mean arc score (noise units of the ridge maps) that supports a step.
        gap_um: the trace stops after this much unsupported path (noise gaps, crossings).
        avg_um: the support of a step is the mean step score over this much path behind it.
        min_tail_um: a shorter path counts as no tail.
        split_t: least t statistic of the midpiece / tail darkness step.
        split_span: the step is searched this many head lengths along the path (the midpiece is
            about one; a longer span reaches the fainter distal tail of a short tail).
    """

    head_sigma_um: float = 0.35
    head_snr: float = 4.0
    search_um: float = 3.0
    halo_um: float = 1.2
    ridge_sigma_um: float = 0.5
    look_um: float = 3.0
    min_radius_um: float = 1.7
    bend_penalty: float = 4.0
    t_stop: float = 1.0
    gap_um: float = 4.0
    avg_um: float = 6.0
    min_tail_um: float = 3.0
    split_t: float = 3.0
    split_span: float = 2.2

    def trace_params(self, um_per_px: float) -> T.TraceParams:
        """The tracker's parameters in px at this scale."""
        px = 1.0 / um_per_px
        return T.TraceParams(sigma=max(self.ridge_sigma_um * px, 0.7), look=max(3, int(round(self.look_um * px))),
                             kmax=min(1.0 / (self.min_radius_um * px), 0.5), bend_penalty=self.bend_penalty,
                             t_stop=self.t_stop, gap=max(2, int(round(self.gap_um * px))),
                             loop_lag=max(8, int(round(8.0 * px))), max_len=int(round(120.0 * px)),
                             avg=max(2, int(round(self.avg_um * px))))


class ClassicalSegmenter:
    """Weight-free segmentation of crops into head, midpiece and tail (see module docstring).

    Args:
        um_per_px: scale of the crops (sets the filter sizes, which are defined in um).
        params: :class:`ClassicalParams`.
    """

    name = "classical"

    takes_windows = True

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
        head = self._head(ds, noise_s, np.asarray(anchor, np.float64))
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
        self._tail(seg, window, window_origin, bg, noise, sig)
        q_head = float(np.clip((snr - self.p.head_snr) / (3.0 * self.p.head_snr), 0.0, 1.0))
        seg.quality = 0.0 if touches else q_head * (0.6 + 0.4 * float(seg.tail_path is not None))
        if touches:
            seg.notes = "head touches the crop border"
        return seg

    # -- head -------------------------------------------------------------------------------
    def _head(self, ds: np.ndarray, noise_s: float, anchor: np.ndarray):
        binary = (ds > self.p.head_snr * noise_s).astype(np.uint8)
        n, lab, stats, cent = cv2.connectedComponentsWithStats(binary, connectivity=8)
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
        sub = ds[r0:r1, c0:c1]
        vals = np.where(comp, sub, -np.inf)
        pi, pj = np.unravel_index(int(np.argmax(vals)), vals.shape)
        peak = float(sub[pi, pj])
        level = 0.5 * peak
        # iso-contour of the region above half-peak that holds the peak: other blobs are masked
        inside = (sub >= level).astype(np.uint8)
        _, lab2 = cv2.connectedComponents(inside, connectivity=4)
        region = lab2 == lab2[pi, pj]
        field = np.where(region, sub, np.minimum(sub, level - 1e-3))
        field = np.pad(field, 1, constant_values=float(min(field.min(), level - 1.0)))
        best = None
        for c in find_contours(field, level):
            if len(c) < 4 or np.abs(c[0] - c[-1]).max() > 1e-6:
                continue
            xy = np.c_[c[:, 1] - 1 + c0, c[:, 0] - 1 + r0]
            if cv2.pointPolygonTest(xy.astype(np.float32), (float(pj + c0), float(pi + r0)), False) >= 0:
                area = _area(xy)
                if best is None or area > best[0]:
                    best = (area, xy[:-1])
        if best is None:
            return None
        mask = np.zeros(ds.shape, bool)
        mask[r0:r1, c0:c1] = region
        edge = self._edge_outline(ds, best[1])
        return mask, (best[1] if edge is None else edge), peak

    def _edge_outline(self, ds: np.ndarray, iso: np.ndarray, n_rays: int = 48) -> np.ndarray | None:
        """Outline at the steepest descent along rays from the centre (the blurred edge's
        inflection), searched within 2 px of the half-peak outline."""
        # central differences (as np.gradient inside the image), via OpenCV for speed
        gx = cv2.Sobel(ds, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
        gy = cv2.Sobel(ds, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
        c = iso.mean(axis=0)
        th = np.linspace(0.0, 2 * np.pi, n_rays, endpoint=False)
        u = np.c_[np.cos(th), np.sin(th)]
        v = iso - c
        ang = np.arctan2(v[:, 1], v[:, 0])
        rad = np.hypot(v[:, 0], v[:, 1])
        order = np.argsort(ang)
        r_iso = np.interp(th, ang[order], rad[order], period=2 * np.pi)
        step = 0.2
        rr = np.arange(0.0, r_iso.max() + 2.01, step)
        pts = c[None, None, :] + rr[None, :, None] * u[:, None, :]
        flat = pts.reshape(-1, 2)
        dd = (P.bilinear(gx, flat) * np.repeat(u[:, 0], len(rr)) + P.bilinear(gy, flat) * np.repeat(u[:, 1], len(rr)))
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
        dsw = cv2.GaussianBlur(wf, (0, 0), sig)
        # local background (the window spans ~80 um: illumination gradients would read as heads)
        dsw -= cv2.blur(wf, (31, 31), borderType=cv2.BORDER_REFLECT)
        noise_s = noise / (2.0 * np.sqrt(np.pi) * sig)
        bright = (dsw > self.p.head_snr * noise_s).astype(np.uint8)
        n_lab, lab = cv2.connectedComponents(bright, connectivity=8)
        own = np.zeros(window.shape, bool)
        own[ov:ov + h, ou:ou + w] = seg.head
        keep = np.ones(n_lab, bool)
        keep[0] = False
        keep[lab[own]] = False
        # other heads and bright debris with their dark halos: a tail never runs through them
        others = keep[lab]
        halo = int(np.ceil(self.px(self.p.halo_um)))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * halo + 1,) * 2)
        blocked = cv2.dilate(others.astype(np.uint8), disk) > 0
        tp = self.trace
        maps = T.ridge_maps(window, tp.sigma)
        off = np.array([ou, ov], np.float64)
        rear, front = seg.rear_xy + off, seg.front_xy + off
        axis = rear - front
        tr = T.trace_tail(maps, blocked, rear, float(np.arctan2(axis[1], axis[0])), tp)
        full = tr.path
        if P.arc_length(full) < self.px(self.p.min_tail_um):
            return
        seg.tail_complete = tr.reason == T.STOP_FADED
        seg.extra["tail_loop"] = tr.looped
        seg.extra["tail_stop"] = ("faded", "window border", "loop", "max length")[tr.reason]
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
        window = (s >= s_exit) & (s <= s_exit + self.p.split_span * max(head_len, 4.0))
        k, m1, m2, t = P.step_split(prof[window], min_len=3)
        total = float(s[-1])
        if k > 0 and m1 > m2 and t >= self.p.split_t:
            s_cut = float(s[window][k])
            mid, tail = P.cut_at(full, s_cut)
            seg.midpiece_path, seg.tail_path = mid, tail
            seg.midpiece_width_px = _equivalent_width(dark, mid[1:] if len(mid) > 2 else mid)
        else:
            seg.tail_path = full
            seg.notes = (seg.notes + "; " if seg.notes else "") + "midpiece / tail boundary not resolved"
        seg.path_length_px = total


def _equivalent_width(dark: np.ndarray, pts: np.ndarray) -> float:
    """Width of a dark line as (area of its cross profile) / (its peak depth), px."""
    q = P.resample(pts, 1.0)
    if len(q) < 2:
        return float("nan")
    t = np.empty_like(q)
    t[1:-1] = q[2:] - q[:-2]
    t[0], t[-1] = q[1] - q[0], q[-1] - q[-2]
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    nrm = np.c_[-t[:, 1], t[:, 0]]
    offs = np.arange(-4.0, 4.01, 0.5)
    # every cross-profile sample in one call
    pts = (q[:, None, :] + offs[None, :, None] * nrm[:, None, :]).reshape(-1, 2)
    samples = P.bilinear(dark, pts).reshape(len(q), len(offs))
    base = np.minimum(samples[:, 0], samples[:, -1])[:, None]
    prof = np.clip(samples - base, 0.0, None).mean(axis=0)
    peak = prof.max()
    return float(prof.sum() * 0.5 / peak) if peak > 0 else float("nan")


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
