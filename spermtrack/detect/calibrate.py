r"""The detector's operating point, calibrated on the video itself (no noise model, no weights).

A real phase-contrast frame has almost no sensor noise but a background full of small structure
(debris dots, specks, out-of-focus cells, tails, halo rims); a bright-field frame has dark heads on
a light background. A threshold in units of an assumed noise model means nothing on either. What
does carry over from video to video is the *shape of the candidate distribution*: heads are the
brightest compact objects in view, far above the background structure, so the peak contrasts of
all candidates are bimodal. This module measures that distribution on frames of the video and
places the operating point from it.

Response (one frame, one polarity ``s = +1`` bright heads, ``-1`` dark heads)::

    r(x) = s * (G_sigma * I)(x) - s * mu(x)          mu = HLDNBM location (local median, W px)
    z(x) = r(x) / spread,    spread = 1.4826 * median |r|     (the frame's own background spread)

Candidates are local maxima of ``z`` at least ``separation_px`` apart. Calibration (pooled over
``n`` frames spread over the first chunk of the video):

1. **Polarity** (``auto``): the polarity whose strongest candidates stand higher above their
   background is the heads' polarity: the levels that the 1, 2 and 3 strongest candidates a
   frame reach are compared, and the rank where they differ most decides (one head in view is
   enough; :func:`polarity_evidence`); the levels and the deciding ratio are recorded.
   Phase-contrast heads are bright with a dark halo; bright-field heads are dark.
2. **Head size**: the half-maximum core of the strongest candidates (second moments, median over
   up to 200) gives the head core length and width in px; ``sigma_px``, ``separation_px`` and the
   background window scale with it (defaults are for an ~8.5 px core, VISEM at 400x).
3. **Threshold**: ``log2 z`` of the candidates above ``floor_z`` is fitted by a two-component
   Gaussian mixture (EM); the upper component's centre is the *head level* ``H`` (the typical
   contrast of a head in this video). In a sparse video the heads are too few for a component
   of their own, and ``H`` comes from the highest bump of the candidates' density instead
   (:func:`head_level`). A head at a quarter of the typical head contrast (defocused,
   tilted, partly out of the focal plane) is still a head: ``threshold = max(floor_z, H / 4)``.
   When ``H`` is below ``min_head_level_z`` there is no head mode (a blank, flat or noise-only
   video): the threshold is set above every candidate and a warning says so.

Drift: each later chunk re-estimates ``H`` on a few of its frames; the video's head level is the
median of the last ``DRIFT_WINDOW`` estimates (the first calibration, on more frames, counting
``n_frames / chunk frames`` times), and the threshold and the classifier's contrast reference
follow it when it moved by more than ``DRIFT_TOLERANCE``; every change is recorded. One chunk's
mixture fit is noisy (the upper component's centre shifts with the share of middling
candidates), so one odd chunk never moves the operating point; a drift that lasts does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from spermtrack.detect.enhance import as_gray_uint8 as as_gray

#: :func:`head_level`: an upper mixture component wider than this (s.d. of log2 contrast) is no
#: head mode (real videos: 0.2-0.35; the sparse phantom's failed fits: 1.0-1.5)
MAX_HEAD_SD_LOG2 = 0.75
#: :func:`head_level`: a density bump this far (log2) above the upper component is the heads' level
HEADS_ABOVE_LOG2 = 1.0
#: :func:`density_mode`: kernel width (log2 contrast; 0.15 = a factor of 1.11)
MODE_BANDWIDTH_LOG2 = 0.15
#: head core length (px) the default scale parameters are written for (VISEM, 400x, ~0.5 um/px)
REFERENCE_HEAD_PX = 8.5
#: spread floor (gray levels): a flat or saturated frame must not divide by ~0
MIN_SPREAD = 0.25
#: drift rule: the head level is the median of this many latest estimates (calibration + chunks)
DRIFT_WINDOW = 5
#: drift rule: the threshold follows that median when it moved by more than this factor
DRIFT_TOLERANCE = 1.1


@dataclass(frozen=True)
class Scale:
    """Pixel scales of the detector, all derived from the head core length."""

    head_length_px: float = REFERENCE_HEAD_PX

    @property
    def sigma_px(self) -> float:
        return float(np.clip(1.5 * self.head_length_px / REFERENCE_HEAD_PX, 0.7, 6.0))

    @property
    def separation_px(self) -> float:
        return float(np.clip(5.0 * self.head_length_px / REFERENCE_HEAD_PX, 2.5, 30.0))

    @property
    def window_px(self) -> int:
        w = int(round(31 * self.head_length_px / REFERENCE_HEAD_PX))
        w = int(np.clip(w, 11, 201))
        return w if w % 2 else w + 1


@dataclass
class DetectorCalibration:
    """What the detector chose for this video, and why (saved as ``detector_calibration``).

    Attributes:
        polarity: ``"bright"`` or ``"dark"`` heads.
        polarity_source: ``"user"`` or ``"auto"``.
        polarity_evidence: strongest-candidate levels per polarity and the deciding ratio
            (:func:`polarity_evidence`).
        head_length_px, head_width_px: half-maximum core of the strongest candidates (median).
        head_size_source: ``"estimated"`` or ``"user"`` or ``"default"`` (too few strong candidates).
        sigma_px, separation_px, window_px: the scales used.
        floor_z, head_level_z, threshold_z: floor, head level H and operating point (z units).
        threshold_rule: how the threshold was placed.
        mixture: the two-component fit on log2 z (means, sds, weights; z units).
        n_frames, n_candidates: what the calibration saw.
        strong_per_frame: candidates per frame at or above half the head level: about the
            number of clear heads in view (a reference for the plausibility checks).
        spread_gray: median background spread of the calibration frames (gray levels).
        chunks: later moves of the operating point ``{"start_frame", "chunk_level_z" (that chunk's
            own estimate), "head_level_z" (the median that moved), "threshold_z"}``.
        warnings: notes (no head mode, ambiguous polarity, too few candidates).
        level_estimates: every head level estimate so far (z units): the first calibration's
            (repeated by its weight), then one per later chunk; the head level is their recent median.
    """

    polarity: str
    polarity_source: str
    polarity_evidence: dict
    head_length_px: float
    head_width_px: float
    head_size_source: str
    sigma_px: float
    separation_px: float
    window_px: int
    floor_z: float
    head_level_z: float
    threshold_z: float
    threshold_rule: str
    mixture: dict
    n_frames: int
    n_candidates: int
    spread_gray: float
    strong_per_frame: float = float("nan")
    chunks: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    level_estimates: list = field(default_factory=list)

    @property
    def sign(self) -> int:
        return 1 if self.polarity == "bright" else -1

    @property
    def scale(self) -> Scale:
        return Scale(self.head_length_px)

    @property
    def has_heads(self) -> bool:
        return np.isfinite(self.threshold_z)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["threshold_z"] = None if not np.isfinite(self.threshold_z) else round(float(self.threshold_z), 3)
        for k in ("head_length_px", "head_width_px", "sigma_px", "separation_px", "head_level_z", "spread_gray",
                  "strong_per_frame"):
            d[k] = round(float(d[k]), 3) if np.isfinite(d[k]) else None
        return d


def oriented(frame: np.ndarray, sign: int) -> np.ndarray:
    """The gray frame with heads bright (dark-head videos are inverted)."""
    g = as_gray(frame)
    return g if sign > 0 else cv2.bitwise_not(g)


def response(frame_bright: np.ndarray, scale: Scale, *, local_background: bool = True
             ) -> tuple[np.ndarray, float]:
    """``(z map float32, spread in gray levels)`` of a heads-bright uint8 frame (module doc).

    ``local_background=False`` replaces the HLDNBM local median by the frame's global median.
    """
    g = frame_bright.astype(np.float32)
    r = cv2.GaussianBlur(g, (0, 0), scale.sigma_px, borderType=cv2.BORDER_REPLICATE)
    if local_background:
        r -= local_median(frame_bright, scale.window_px)
    else:
        r -= np.float32(np.median(frame_bright))
    # the spread from every 3rd pixel of every 3rd row: the same median to ~1 %, 9x cheaper
    spread = max(float(1.4826 * np.median(np.abs(r[1::3, 1::3]))), MIN_SPREAD)
    r /= np.float32(spread)
    return r, spread


def local_median(img: np.ndarray, window_px: int) -> np.ndarray:
    """HLDNBM location: the median over a ``window_px`` square, float32.

    The background varies over tens of pixels, so the median is taken on the frame halved in
    each dimension (window halved) and interpolated back: ~4x cheaper, and a head (a few px)
    still never holds the median of its window.
    """
    h, w = img.shape
    if window_px < 15 or min(h, w) < 4 * window_px // 2:
        return cv2.medianBlur(img, window_px).astype(np.float32)
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    k = window_px // 2
    k = k if k % 2 else k + 1
    mu = cv2.medianBlur(small, k)
    return cv2.resize(mu, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def local_maxima(z: np.ndarray, separation_px: float, min_z: float, merge_px: float = 0.0,
                 saddle: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` int arrays of local maxima of ``z`` above ``min_z``.

    Maxima closer than ``separation_px`` are one (the stronger is kept; plateaus of saturated
    cores give several equal maxima). Two maxima up to ``merge_px`` apart are also one object when
    the response never dips between them below ``saddle`` x the weaker peak (one elongated or
    ring-shaped blob); two touching heads keep a dip and stay two.
    """
    r = max(1, int(round(separation_px)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    dil = cv2.dilate(z, k)
    y, x = np.nonzero((z >= dil) & (z > min_z))
    reach = max(separation_px, merge_px)
    if len(x) > 1:
        from scipy.spatial import cKDTree

        order = np.argsort(-z[y, x], kind="stable")
        x, y = x[order], y[order]
        pairs = cKDTree(np.c_[x, y]).query_pairs(reach, output_type="ndarray")
        if len(pairs):
            pairs = np.sort(pairs, axis=1)  # (stronger, weaker): indices follow descending z
            pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
            d = np.hypot(x[pairs[:, 0]] - x[pairs[:, 1]], y[pairs[:, 0]] - y[pairs[:, 1]])
            t = np.linspace(0.0, 1.0, 9)[None, :]
            sx = np.rint(x[pairs[:, 0], None] * (1 - t) + x[pairs[:, 1], None] * t).astype(np.int64)
            sy = np.rint(y[pairs[:, 0], None] * (1 - t) + y[pairs[:, 1], None] * t).astype(np.int64)
            dip = z[sy, sx].min(axis=1)
            same = (d <= separation_px) | (dip >= saddle * z[y[pairs[:, 1]], x[pairs[:, 1]]])
            drop = np.zeros(len(x), bool)
            for (i, j), s in zip(pairs, same):
                if s and not drop[i]:
                    drop[j] = True
            x, y = x[~drop], y[~drop]
    return x.astype(np.int64), y.astype(np.int64)


def two_component_fit(v: np.ndarray, iters: int = 200) -> dict:
    """EM fit of a two-Gaussian mixture on 1-D ``v``; components sorted by mean."""
    v = np.asarray(v, np.float64)
    lo, hi = np.percentile(v, [30, 97])
    mu = np.array([lo, hi])
    sd = np.full(2, max(v.std() / 2, 0.05))
    w = np.array([0.8, 0.2])
    for _ in range(iters):
        p = w / sd * np.exp(-0.5 * ((v[:, None] - mu) / sd) ** 2) + 1e-300
        r = p / p.sum(1, keepdims=True)
        n = r.sum(0) + 1e-12
        w_new = n / n.sum()
        mu_new = (r * v[:, None]).sum(0) / n
        sd = np.sqrt((r * (v[:, None] - mu_new) ** 2).sum(0) / n) + 0.02
        done = np.allclose(mu_new, mu, atol=1e-4) and np.allclose(w_new, w, atol=1e-4)
        mu, w = mu_new, w_new
        if done:
            break
    o = np.argsort(mu)
    return {"mean": mu[o].tolist(), "sd": sd[o].tolist(), "weight": w[o].tolist()}


def head_level(z_values: np.ndarray, floor_z: float, n_frames: int = 1) -> tuple[float, dict]:
    """Typical head contrast H (z units) and the mixture it came from (log2 z of candidates
    above ``floor_z``); NaN when there are fewer than 5 such candidates.

    H is the centre of the upper mixture component when that is the heads' mode. It is not when
    the heads are too few to pull a component of their own (a sparse video: 1-5 heads among
    100-300 candidates a frame): the two components then describe the background (dots, specks,
    halo rims), and the heads, the brightest compact objects in view, sit above them. So the
    candidates' density is searched for its highest bump holding at least half a candidate per
    frame above its valleys (:func:`density_mode`; ``n_frames``: the frames the values were
    pooled over, so a bump is an object seen in most of them). When that bump lies more than
    :data:`HEADS_ABOVE_LOG2` above the upper component, or the upper component is wider than
    :data:`MAX_HEAD_SD_LOG2` (no mode but the background's tail), H is the median of the
    candidates from a factor 2 below the bump up. ``mix["source"]`` says which rule gave H.
    """
    v = np.log2(z_values[z_values >= floor_z])
    if len(v) < 5:
        return float("nan"), {}
    fit = two_component_fit(v)
    out = {"mean_z": [2 ** m for m in fit["mean"]], "sd_log2": fit["sd"], "weight": fit["weight"],
           "n": int(len(v)), "source": "mixture"}
    level = fit["mean"][1]
    top = density_mode(v, min_mass=max(5.0, 0.5 * n_frames))
    wide = fit["sd"][1] > MAX_HEAD_SD_LOG2
    if top is not None and top > level and (wide or top > level + HEADS_ABOVE_LOG2):
        why = (f"the upper component is wide (sd_log2 {fit['sd'][1]:.2f} > {MAX_HEAD_SD_LOG2})" if wide else
               f"the highest bump ({2 ** top:.1f}) is over {2 ** HEADS_ABOVE_LOG2:g}x the upper component")
        level = float(np.median(v[v >= top - 1.0]))
        out["source"] = f"highest density bump: {why}"
    return float(2 ** level), out


def density_mode(v: np.ndarray, min_mass: float, bandwidth: float = MODE_BANDWIDTH_LOG2) -> float | None:
    """The highest bump of a Gaussian kernel density of ``v`` (log2 contrasts) whose *excess
    mass* (the number of values its density holds above the higher of its two valleys) is at
    least ``min_mass``. Returns the median of the values between its
    valleys, or None. Sampling noise on the background's falling tail makes bumps of a few values;
    an object seen in most of the pooled frames (a head, in a sparse video each head alone: one
    bump per cell) makes one of about one value per frame."""
    v = np.sort(np.asarray(v, np.float64))
    if len(v) < max(min_mass, 3):
        return None
    step = bandwidth / 5
    grid = np.arange(v[0] - 3 * bandwidth, v[-1] + 3 * bandwidth, step)
    # values per unit of log2 contrast: sums to len(v) over the grid
    dens = np.exp(-0.5 * ((grid[:, None] - v[None, :]) / bandwidth) ** 2).sum(1) / (np.sqrt(2 * np.pi) * bandwidth)
    peaks = np.flatnonzero((dens[1:-1] > dens[:-2]) & (dens[1:-1] >= dens[2:])) + 1
    for k in peaks[::-1]:
        left = k
        while left > 0 and dens[left - 1] <= dens[left]:
            left -= 1
        right = k
        while right < len(grid) - 1 and dens[right + 1] <= dens[right]:
            right += 1
        base = max(dens[left], dens[right])
        excess = float(np.clip(dens[left:right + 1] - base, 0, None).sum() * step)
        if excess >= min_mass:
            return float(np.median(v[(v >= grid[left]) & (v <= grid[right])]))
    return None


#: :func:`polarity_evidence`: ranks compared, in objects per frame
POLARITY_RANKS = (1, 2, 3)


def strongest(z_values: np.ndarray, n_frames: int, per_frame: int = 1) -> float:
    """The ``per_frame * n_frames``-th largest of the candidate contrasts pooled over ``n_frames``
    frames: the level the ``per_frame`` strongest objects of a frame reach (0 when there are
    fewer candidates)."""
    k = per_frame * n_frames
    if len(z_values) < k or k < 1:
        return 0.0
    return float(np.partition(z_values, len(z_values) - k)[len(z_values) - k])


def polarity_evidence(z_bright: np.ndarray, z_dark: np.ndarray, n_frames: int) -> dict:
    """Bright vs dark strongest-candidate levels at 1, 2 and 3 objects per frame
    (:func:`strongest`), and ``ratio_bright_dark``: the ratio of the rank where the two polarities
    differ most (log scale). That rank decides: one head in view (a sparse video) stands several
    times above everything of the other polarity at rank 1 only; with many weak heads (a hard
    phase-contrast phantom) a single strong dark object a frame can win rank 1 while the heads
    win the next ranks. A fixed percentile (the 99.9th, used before) is decided by the background
    when the heads are under 0.1 % of the candidates."""
    b = [strongest(z_bright, n_frames, k) for k in POLARITY_RANKS]
    d = [strongest(z_dark, n_frames, k) for k in POLARITY_RANKS]
    ratios = [bi / di if di > 0 else (float("inf") if bi > 0 else 1.0) for bi, di in zip(b, d)]
    deciding = max(ratios, key=lambda r: abs(np.log(r)) if 0 < r < float("inf") else float("inf"))
    return {"bright_top_z": [round(x, 3) for x in b], "dark_top_z": [round(x, 3) for x in d],
            "objects_per_frame": list(POLARITY_RANKS), "ratio_bright_dark": round(deciding, 3)}


def _core_size(frame_bright: np.ndarray, x: np.ndarray, y: np.ndarray, scale: Scale) -> tuple[float, float, int]:
    """Median half-maximum core length and width (px) of the candidates at ``(x, y)``."""
    r = cv2.GaussianBlur(frame_bright.astype(np.float32), (0, 0), 0.7) - local_median(frame_bright, scale.window_px)
    half = int(np.ceil(2.5 * scale.head_length_px))
    H, W = r.shape
    lengths, widths = [], []
    from scipy import ndimage

    for xi, yi in zip(x, y):
        x0, x1, y0, y1 = xi - half, xi + half + 1, yi - half, yi + half + 1
        if x0 < 0 or y0 < 0 or x1 > W or y1 > H:
            continue
        win = r[y0:y1, x0:x1]
        peak = win[half - 1:half + 2, half - 1:half + 2].max()
        if peak <= 0:
            continue
        lab, _ = ndimage.label(win >= 0.5 * peak)
        m = lab == lab[half, half]
        if not m[half, half] or m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any():
            continue  # the core touches the window edge: not an isolated compact blob
        yy, xx = np.nonzero(m)
        if len(xx) < 3:
            continue
        c = np.cov(np.c_[xx, yy].T) + np.eye(2) / 12
        l2, l1 = np.linalg.eigvalsh(c)
        lengths.append(4 * np.sqrt(l1))
        widths.append(4 * np.sqrt(max(l2, 1e-6)))
    if not lengths:
        return float("nan"), float("nan"), 0
    return float(np.median(lengths)), float(np.median(widths)), len(lengths)


def _candidates_z(frames_bright, scale: Scale, local_background: bool, min_z: float):
    zs, pts, spreads = [], [], []
    for f in frames_bright:
        z, spread = response(f, scale, local_background=local_background)
        x, y = local_maxima(z, scale.separation_px, min_z)
        zs.append(z[y, x])
        pts.append((x, y))
        spreads.append(spread)
    return zs, pts, spreads


def calibrate(frames, *, polarity: str = "auto", head_length_px: float | None = None, floor_z: float = 5.0,
              head_ratio: float = 0.25, min_head_level_z: float = 12.0, n_frames: int = 16,
              local_background: bool = True) -> DetectorCalibration:
    """Calibrate the detector on frames of one video (module doc).

    Args:
        frames: ``(N, H, W)`` uint8 (or a list of frames); up to ``n_frames`` evenly spaced are used.
        polarity: ``"auto"``, ``"bright"`` or ``"dark"``.
        head_length_px: the user's head core length (px); None estimates it.
        floor_z, head_ratio, min_head_level_z: the threshold rule (module doc).
        local_background: HLDNBM local median (True) or one global median per frame.
    """
    if polarity not in ("auto", "bright", "dark"):
        from spermtrack.errors import ParameterError

        raise ParameterError(f"polarity={polarity!r}: use auto, bright or dark")
    frames = list(frames)
    if not frames:
        from spermtrack.errors import ParameterError

        raise ParameterError("the detector cannot calibrate on zero frames")
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int))
    sample = [as_gray(frames[i]) for i in idx]
    warnings: list[str] = []
    scale = Scale(head_length_px or REFERENCE_HEAD_PX)

    # 1. polarity
    evidence: dict = {}
    if polarity == "auto":
        z_sign = [np.concatenate(_candidates_z([oriented(f, sign) for f in sample], scale, local_background, 0.5)[0])
                  for sign in (1, -1)]
        evidence = polarity_evidence(z_sign[0], z_sign[1], len(sample))
        ratio = evidence["ratio_bright_dark"]
        chosen = "bright" if ratio >= 1 else "dark"
        if 0.8 < ratio < 1.25:
            warnings.append(f"polarity is ambiguous (strongest candidates, 1-3 a frame: bright {evidence['bright_top_z']}, "
                            f"dark {evidence['dark_top_z']} background spreads); chose {chosen}: set --polarity if "
                            "heads are the other way")
        source = "auto"
    else:
        chosen, source = polarity, "user"
    sign = 1 if chosen == "bright" else -1
    bright = [oriented(f, sign) for f in sample]

    # 2. head size (two passes: the first at the reference scale)
    size_source = "user" if head_length_px else "default"
    width = float("nan")
    for _ in range(2 if not head_length_px else 1):
        zs, pts, _ = _candidates_z(bright, scale, local_background, floor_z)
        H, _ = head_level(np.concatenate(zs) if zs else np.zeros(0), floor_z, len(bright))
        if head_length_px or not np.isfinite(H):
            break
        xs, ys = [], []
        for f, z, (x, y) in zip(bright, zs, pts):
            strong = np.flatnonzero(z >= 0.5 * H)
            strong = strong[np.argsort(-z[strong])][:max(1, 200 // len(bright))]
            xs.append(x[strong])
            ys.append(y[strong])
        lengths = []
        widths = []
        for f, x, y in zip(bright, xs, ys):
            length, w, n = _core_size(f, x, y, scale)
            if n:
                lengths += [length] * n
                widths += [w] * n
        if len(lengths) < 5:
            warnings.append("too few strong, isolated candidates to measure the head size; the default "
                            f"{REFERENCE_HEAD_PX} px core is assumed")
            break
        new_len = float(np.median(lengths))
        width = float(np.median(widths))
        size_source = "estimated"
        if abs(np.log(new_len / scale.head_length_px)) < np.log(1.25):
            scale = Scale(new_len)
            break
        scale = Scale(new_len)

    # 3. threshold from the candidate distribution
    zs, _, spreads = _candidates_z(bright, scale, local_background, 0.5)
    allz = np.concatenate(zs) if zs else np.zeros(0)
    H, mix = head_level(allz, floor_z, len(sample))
    if not np.isfinite(H) or H < min_head_level_z:
        thr = float("inf")
        rule = (f"no head mode: the strongest candidates (head level {H:.1f}) are not above "
                f"{min_head_level_z} background spreads")
        warnings.append("no calibration possible: nothing in view stands out from the background "
                        "(blank, flat, out-of-focus or noise-only video?); zero detections")
    else:
        thr = max(floor_z, head_ratio * H)
        rule = f"max(floor {floor_z}, {head_ratio:.3f} x head level {H:.1f})"
    return DetectorCalibration(
        polarity=chosen, polarity_source=source, polarity_evidence=evidence,
        head_length_px=scale.head_length_px, head_width_px=width, head_size_source=size_source,
        sigma_px=scale.sigma_px, separation_px=scale.separation_px, window_px=scale.window_px,
        floor_z=floor_z, head_level_z=H, threshold_z=thr, threshold_rule=rule, mixture=mix,
        n_frames=len(sample), n_candidates=int((allz >= floor_z).sum()),
        strong_per_frame=float((allz >= 0.5 * H).sum() / len(sample)) if np.isfinite(H) else 0.0,
        spread_gray=float(np.median(spreads)) if spreads else float("nan"), warnings=warnings)


def recalibrate_chunk(cal: DetectorCalibration, frames, start_frame: int, *, head_ratio: float = 0.25,
                      min_head_level_z: float = 12.0, n_frames: int = 8, local_background: bool = True,
                      tolerance: float = DRIFT_TOLERANCE, window: int = DRIFT_WINDOW) -> None:
    """Re-estimate the head level on a later chunk; move the threshold when the video's level drifted.

    The chunk's own estimate (a mixture fit on ``n_frames`` of its frames) is noisy: on video 11's
    tuning half it wanders between 29 and 38 while the strongest candidates' percentiles do not
    move, because the upper component's mean shifts with the share of middling candidates. The level
    that counts is the median of the last ``window`` estimates (the first calibration included);
    the threshold and the classifier's contrast reference follow it when it moved by more than
    ``tolerance`` (a factor). One odd chunk cannot move it; a drift that lasts half the window does.
    """
    if not cal.has_heads or len(frames) == 0:
        return
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n_frames, len(frames))).round().astype(int))
    bright = [oriented(frames[i], cal.sign) for i in idx]
    zs, _, _ = _candidates_z(bright, cal.scale, local_background, cal.floor_z)
    H, _ = head_level(np.concatenate(zs), cal.floor_z, len(idx))
    if not np.isfinite(H) or H < min_head_level_z:
        return
    if not cal.level_estimates:
        # the first calibration pooled more frames than a chunk estimate: it counts that many times
        weight = max(1, round(cal.n_frames / max(len(idx), 1)))
        cal.level_estimates += [round(float(cal.head_level_z), 3)] * weight
    cal.level_estimates.append(round(float(H), 3))
    level = float(np.median(cal.level_estimates[-max(1, int(window)):]))
    if abs(np.log(level / cal.head_level_z)) > np.log(tolerance):
        cal.head_level_z = level
        cal.threshold_z = max(cal.floor_z, head_ratio * level)
        cal.threshold_rule = (f"max(floor {cal.floor_z}, {head_ratio:.3f} x head level {level:.1f}), "
                              f"head level = median of the last {int(window)} chunk estimates, from frame "
                              f"{start_frame}")
        cal.chunks.append({"start_frame": int(start_frame), "chunk_level_z": round(H, 3),
                           "head_level_z": round(level, 3), "threshold_z": round(cal.threshold_z, 3)})
