"""The ``classical`` segmenter: no weights, a few OpenCV / SciPy operations per crop.

Per crop (gray, head near the anchor, +x = forward):

1. Background = crop median, noise = MAD of the crop; ``d = crop - background``, lightly smoothed.
2. Head = the bright connected component nearest the anchor above ``head_snr`` noise levels.
   Its outline is the sub-pixel iso-contour at **half of its peak** above background: on a
   blurred step edge the half-maximum lies on the edge whatever the blur (for a phase-contrast
   head the halo lowers the plateau and the peak alike, and the core's edge is steep, so the
   level error moves the outline by a few hundredths of a pixel).
3. Dark ridges: largest Hessian eigenvalue of the smoothed image (a valley across a dark line),
   minus the smaller one when positive (dark blobs / debris are not lines), in noise units;
   hysteresis threshold, outside the head and its dark halo; skeleton.
4. Midpiece + tail: from the head's rear tip (the max-Feret end toward -x) to the skeleton pixel
   nearest it, then the geodesic longest path through the skeleton (Dijkstra), bridging gaps up
   to ``gap_um`` that continue the path's direction; smoothed.
5. Midpiece / tail split: the midpiece is thicker and darker than the principal piece, so the
   darkness profile along the path gets the least-squares single step; a step that noise
   explains (t below ``split_t``) leaves the midpiece unmeasured (NaN), never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.filters import apply_hysteresis_threshold
from skimage.measure import find_contours
from skimage.morphology import skeletonize

from spermtrack.morphology import paths as P
from spermtrack.morphology.segment import Segmentation, empty_segmentation


_DISK5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


@dataclass(frozen=True)
class ClassicalParams:
    """Knobs of :class:`ClassicalSegmenter` (lengths in um, converted with ``um_per_px``).

    Attributes:
        head_sigma_um: smoothing before the head threshold.
        head_snr: detection threshold of the head core, in noise levels of the smoothed image.
        search_um: the head must lie within this distance of the anchor.
        halo_um: the dark halo ring around the head (excluded from the ridge search).
        ridge_sigma_um: scale of the ridge filter (tail about 0.5 um wide; a wider filter integrates
            more of the faint distal tail).
        ridge_low, ridge_high: hysteresis thresholds of the ridge response, in noise levels.
        start_um: the tail must start this close to the head's rear tip.
        gap_um: largest gap bridged between ridge pieces.
        min_tail_um: a shorter path counts as no tail.
        split_t: least t statistic of the midpiece / tail darkness step.
    """

    head_sigma_um: float = 0.35
    head_snr: float = 4.0
    search_um: float = 3.0
    halo_um: float = 1.2
    ridge_sigma_um: float = 0.75
    ridge_low: float = 2.0
    ridge_high: float = 4.0
    start_um: float = 3.5
    gap_um: float = 3.0
    min_tail_um: float = 3.0
    split_t: float = 3.0


class ClassicalSegmenter:
    """Weight-free segmentation of crops into head, midpiece and tail (see module docstring).

    Args:
        um_per_px: scale of the crops (sets the filter sizes, which are defined in um).
        params: :class:`ClassicalParams`.
    """

    name = "classical"

    def __init__(self, um_per_px: float = 0.5, params: ClassicalParams | None = None):
        self.um_per_px = float(um_per_px)
        self.p = params or ClassicalParams()

    def px(self, um: float) -> float:
        return um / self.um_per_px

    def segment(self, crops: np.ndarray, anchors: np.ndarray | None = None) -> list[Segmentation]:
        """Segment ``(N, H, W)`` uint8 crops; ``anchors (N, 2)`` head centres (default: crop centre)."""
        crops = np.asarray(crops)
        if crops.ndim == 2:
            crops = crops[None]
        n, h, w = crops.shape
        if anchors is None:
            anchors = np.tile([(w - 1) / 2.0, (h - 1) / 2.0], (n, 1))
        return [self.segment_one(c, a) for c, a in zip(crops, np.asarray(anchors, np.float64))]

    def segment_one(self, crop: np.ndarray, anchor) -> Segmentation:
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
        self._tail(seg, d, ds, noise, ds > self.p.head_snr * noise_s)
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
        gy, gx = np.gradient(ds)
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
    def _ridge(self, ds_dark: np.ndarray) -> np.ndarray:
        s = max(self.px(self.p.ridge_sigma_um), 0.7)
        g = cv2.GaussianBlur(ds_dark, (0, 0), s)
        dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3)
        dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3)
        dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3)
        half = 0.5 * (dxx + dyy)
        root = np.sqrt(0.25 * (dxx - dyy) ** 2 + dxy ** 2)
        l1, l2 = half + root, half - root
        return l1 - np.maximum(l2, 0.0)

    def _tail(self, seg: Segmentation, d: np.ndarray, ds: np.ndarray, noise: float, bright: np.ndarray) -> None:
        h, w = d.shape
        r = self._ridge(d)
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) + 1e-6
        rn = r / scale
        halo = int(np.ceil(self.px(self.p.halo_um)))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * halo + 1,) * 2)
        zone = cv2.dilate(seg.head.astype(np.uint8), disk) > 0
        # other heads and bright debris with their halos: a tail never runs through them
        others = cv2.dilate((bright & ~seg.head).astype(np.uint8), disk) > 0
        rn[zone | others] = 0.0
        mask = apply_hysteresis_threshold(rn, self.p.ridge_low, self.p.ridge_high)
        if not mask.any():
            return
        # closing joins ridge pieces split by noise (a few px) before thinning
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, _DISK5) > 0
        mask &= ~(zone | others)
        skel = P.prune(skeletonize(mask), max(2, int(round(self.px(1.5)))))
        rc = np.argwhere(skel)
        if len(rc) < 2:
            return
        rear = seg.rear_xy
        xy = rc[:, ::-1].astype(np.float64)
        dist = np.hypot(xy[:, 0] - rear[0], xy[:, 1] - rear[1])
        # the tail leaves the rear, not the side or the front of the head
        axis = (rear - seg.front_xy) / max(np.hypot(*(rear - seg.front_xy)), 1e-9)
        v = xy - rear
        cosang = (v @ axis) / np.maximum(dist, 1e-9)
        near = np.flatnonzero((dist <= self.px(self.p.start_um) + halo) & (cosang > 0.3))
        if len(near) == 0:
            return
        # try the nearest few start pixels (a halo remnant can be nearest): keep the longest trace
        best = None
        for j in near[np.argsort(dist[near])][:4]:
            path = P.trace(skel, (int(rc[j, 0]), int(rc[j, 1])), axis, gap_px=self.px(self.p.gap_um))
            length = P.arc_length(path) + dist[j]
            if best is None or length > best[0] + 1.0:
                best = (length, path)
            if best[0] >= 2.0 * self.px(self.p.min_tail_um) + halo:
                break
        path = best[1]
        full = np.vstack([rear[None], P.smooth_path(path, 5)])
        total = P.arc_length(full)
        if total < self.px(self.p.min_tail_um):
            return
        tip = full[-1]
        seg.tail_complete = bool(1.5 <= tip[0] <= w - 2.5 and 1.5 <= tip[1] <= h - 2.5)
        s_exit = float(np.hypot(*(full[1] - full[0])))
        self._split(seg, full, -ds, s_exit)
        mid_px = max(1, int(round(seg.midpiece_width_px))) if np.isfinite(seg.midpiece_width_px) else 1
        if seg.midpiece_path is not None:
            seg.midpiece = _draw(seg.midpiece_path, (h, w), mid_px) & ~seg.head
        seg.tail = _draw(seg.tail_path, (h, w), 1) & ~seg.head & ~seg.midpiece
        seg.path_px = full

    def _split(self, seg: Segmentation, full: np.ndarray, dark: np.ndarray, s_exit: float) -> None:
        """Midpiece / tail boundary from the darkness step along the path."""
        q = P.resample(full, 0.5)
        s = P.cumulative(q)
        prof = P.bilinear(dark, q)
        head_len = float(np.hypot(*(seg.rear_xy - seg.front_xy)))
        window = (s >= s_exit) & (s <= s_exit + 3.0 * max(head_len, 4.0))
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
    t = np.gradient(q, axis=0)
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-9)[:, None]
    nrm = np.c_[-t[:, 1], t[:, 0]]
    offs = np.arange(-4.0, 4.01, 0.5)
    samples = np.stack([P.bilinear(dark, q + o * nrm) for o in offs], axis=1)
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
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _draw(pts: np.ndarray | None, shape, thickness: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    if pts is not None and len(pts) >= 2:
        cv2.polylines(out, [np.round(pts * 16).astype(np.int32)], False, 1, thickness, cv2.LINE_8, 4)
    return out > 0
