"""Training samples and training loop of the candidate classifier (:mod:`spermtrack.detect.classifier`).

Samples per labelled frame (all as raw ``RAW_SIZE`` patches, so augmentation can rotate them
and still cut a full ``crop_size`` crop from the middle):

- every candidate of ``BlobDetector(classifier=None).candidates(frame, min_z=LOW_Z)`` (keys ``x, y``;
  older detectors: ``BlobDetector(score_threshold=LOW_Z).candidates(frame)``),
- a point at every sperm and cluster label centre (positives even where the detector misses),
- ``n_background`` random points anywhere, ``n_ridge`` dark-ridge points (tails: the darkest
  pixels of a lightly smoothed frame, minus its local background), and one halo-rim point per
  labelled head at 12-16 px from its centre,

labelled by distance to the labels: within ``SPERM_RADIUS`` (8 px) of a sperm label centre ->
0 sperm; inside a cluster box -> 2 cluster; farther than ``IMPURITY_RADIUS`` (12 px) from every
label centre (any class) and outside every cluster box -> 1 impurity; else (8-12 px from a head,
near a pinhead label) ambiguous, dropped. VISEM pinhead labels (class 2) only make points
ambiguous. Impurities are then subsampled to at most ``max_impurity_ratio`` (2) x the other
samples (halo-rim, ridge and background points kept first) to keep training cheap on a CPU.

Sources: VISEM-layout video folders or roots (real or ``spermtrack synth`` output; frames from
``images/`` or the mp4), a folder of labelled JPEGs (``frames12``-style: ``<vid>_frame_<n>[_approx].jpg``
+ ``labels/<vid>_frame_<m>.txt``; an ``_approx`` frame takes the label set whose centres lie
nearest the frame's confident detections), and synthetic videos rendered on the fly.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from spermtrack.detect.classifier import (CROP_SIZE, CandidateClassifier, build_model, contrast_channel,
                                          normalise_patches, raw_patches)
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.types import EDGE_OFFSET_PX

#: Side of the stored raw patches for the default crop (>= crop_size * sqrt(2) + 2: any rotation
#: still fills the crop); :func:`raw_size_for` gives it for other crops.
RAW_SIZE = 38


def raw_size_for(crop: int) -> int:
    """Raw patch side that lets any rotation of a ``crop`` crop stay inside (24 -> 38, 32 -> 50, 40 -> 62)."""
    r = int(math.ceil(crop * math.sqrt(2))) + 4
    return r + (r % 2)

SPERM_RADIUS = 8.0
IMPURITY_RADIUS = 12.0
#: Candidate floor (z units of the detector) used when making samples: low, so that nearly every
#: labelled head is a candidate (the detector itself passes only candidates above its threshold).
LOW_Z = 2.0


def detector_candidates(frame: np.ndarray, low: float = LOW_Z) -> tuple[dict, np.ndarray]:
    """``(candidates, bright frame)`` of the blob detector without its classifier, at a low floor.

    Relies only on ``BlobDetector().candidates(frame)`` giving ``x, y`` arrays; uses the
    ``classifier=None`` / ``min_z`` / ``_bright`` extras when the detector has them.
    """
    from spermtrack.detect.blob import BlobDetector

    try:
        det = BlobDetector(classifier=None)
    except TypeError:
        det = BlobDetector(score_threshold=low)
    try:
        c = det.candidates(frame, min_z=low)
    except TypeError:
        c = det.candidates(frame)
    bright = c.get("_bright", frame)
    return c, np.asarray(bright)


def _plain_detector():
    from spermtrack.detect.blob import BlobDetector

    try:
        return BlobDetector(classifier=None)
    except TypeError:
        return BlobDetector()


@dataclass
class Samples:
    """Raw patches ``(n, RAW_SIZE, RAW_SIZE) uint8``, labels ``(n,)`` and where they came from."""

    patches: np.ndarray
    labels: np.ndarray
    source: np.ndarray          # (n,) int index into ``sources``
    kind: np.ndarray            # (n,) 0 candidate, 1 label centre, 2 background, 3 ridge, 4 halo rim
    frame: np.ndarray
    xy: np.ndarray
    sources: list[str] = field(default_factory=list)
    #: ``(n,)`` the source video's typical head contrast in gray levels (``spread_gray * head_level_z``).
    hc: np.ndarray | None = None

    def __post_init__(self):
        if self.hc is None:
            self.hc = np.full(len(self.labels), np.nan, np.float32)

    @staticmethod
    def concat(parts: list["Samples"]) -> "Samples":
        parts = [p for p in parts if len(p.labels)]
        if not parts:
            return Samples(np.zeros((0, RAW_SIZE, RAW_SIZE), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), [], np.zeros(0, np.float32))
        sources, src = [], []
        for p in parts:
            src.append(p.source + len(sources))
            sources += p.sources
        return Samples(np.concatenate([p.patches for p in parts]), np.concatenate([p.labels for p in parts]),
                       np.concatenate(src), np.concatenate([p.kind for p in parts]),
                       np.concatenate([p.frame for p in parts]), np.concatenate([p.xy for p in parts]), sources,
                       np.concatenate([p.hc for p in parts]))

    def counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(("sperm", "impurity", "cluster"))}


# ------------------------------------------------------------------------------------- labelling

def assign_labels(x: np.ndarray, y: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Class of each point from the frame's labels ``boxes (m, 5) = cls, cx, cy, w, h`` (VISEM
    classes 0 sperm, 1 cluster, 2 pinhead); -1 = ambiguous (dropped)."""
    n = len(x)
    out = np.full(n, -1, np.int64)
    if n == 0:
        return out
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    pts = np.c_[x, y]
    d_all = np.full(n, np.inf)
    d_sperm = np.full(n, np.inf)
    in_cluster = np.zeros(n, bool)
    if len(boxes):
        d = np.hypot(pts[:, None, 0] - boxes[None, :, 1], pts[:, None, 1] - boxes[None, :, 2])
        d_all = d.min(1)
        sp = boxes[:, 0] == 0
        if sp.any():
            d_sperm = d[:, sp].min(1)
        cl = boxes[boxes[:, 0] == 1]
        if len(cl):
            in_cluster = ((np.abs(pts[:, None, 0] - cl[None, :, 1]) <= cl[None, :, 3] / 2)
                          & (np.abs(pts[:, None, 1] - cl[None, :, 2]) <= cl[None, :, 4] / 2)).any(1)
    out[d_all > IMPURITY_RADIUS] = 1
    out[in_cluster] = 2
    out[d_sperm <= SPERM_RADIUS] = 0
    return out


def frame_points(frame: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *,
                 n_background: int = 30, n_ridge: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, kind, bright frame)`` of the sample points of one frame (see the module docstring)."""
    H, W = frame.shape
    c, frame = detector_candidates(frame)  # crops and ridges on the detector's bright-head frame
    xs, ys, kinds = [np.asarray(c["x"], float)], [np.asarray(c["y"], float)], [np.zeros(len(c["x"]), np.int64)]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    lab = boxes[boxes[:, 0] != 2]
    xs.append(lab[:, 1]), ys.append(lab[:, 2]), kinds.append(np.ones(len(lab), np.int64))
    xs.append(rng.uniform(0, W - 1, n_background)), ys.append(rng.uniform(0, H - 1, n_background))
    kinds.append(np.full(n_background, 2))
    if n_ridge:
        g = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 1.0)
        dark = g - cv2.blur(g, (15, 15))
        thr = np.quantile(dark, 0.02)
        ry, rx = np.nonzero(dark <= thr)
        if len(rx):
            pick = rng.choice(len(rx), min(n_ridge, len(rx)), replace=False)
            xs.append(rx[pick].astype(float)), ys.append(ry[pick].astype(float))
            kinds.append(np.full(len(pick), 3))
    heads = boxes[boxes[:, 0] == 0]
    if len(heads):
        ang = rng.uniform(0, 2 * np.pi, len(heads))
        r = rng.uniform(IMPURITY_RADIUS, 16.0, len(heads))
        xs.append(heads[:, 1] + r * np.cos(ang)), ys.append(heads[:, 2] + r * np.sin(ang))
        kinds.append(np.full(len(heads), 4))
    x, y, k = np.concatenate(xs), np.concatenate(ys), np.concatenate(kinds)
    ok = (x >= 0) & (x <= W - 1) & (y >= 0) & (y <= H - 1) & np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok], k[ok], frame


def frame_samples(frame: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, source: str, frame_idx: int,
                  hc: float = float("nan"), raw_size: int = RAW_SIZE, **kw) -> Samples:
    x, y, k, frame = frame_points(frame, boxes, rng, **kw)
    lab = assign_labels(x, y, boxes)
    keep = lab >= 0
    x, y, k, lab = x[keep], y[keep], k[keep], lab[keep]
    patches = np.clip(np.rint(raw_patches(frame, x, y, raw_size)), 0, 255).astype(np.uint8)
    n = len(lab)
    return Samples(patches, lab, np.zeros(n, np.int64), k, np.full(n, frame_idx), np.c_[x, y], [source],
                   np.full(n, hc, np.float32))


def head_contrast_of(frames) -> float:
    """The typical head contrast (gray levels) of one video: ``spread_gray x head_level_z`` of
    :func:`~spermtrack.detect.calibrate.calibrate` on its frames (NaN when it fails)."""
    from spermtrack.detect.calibrate import calibrate

    try:
        cal = calibrate(list(frames))
        hc = float(cal.spread_gray * cal.head_level_z)
        return hc if np.isfinite(hc) and hc > 1 else float("nan")
    except Exception:  # noqa: BLE001
        return float("nan")


# --------------------------------------------------------------------------------------- sources

def parse_frames(spec: str | None) -> tuple[int, int | None]:
    """``"A:B"`` -> ``(A, B)`` half-open (python slice: ``0:735`` is frames 0-734); None -> all."""
    if spec in (None, "", ":"):
        return 0, None
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", spec)
    if not m:
        raise ParameterError(f"frames={spec!r}: use A:B (0-based, B excluded), e.g. 0:735")
    a = int(m.group(1)) if m.group(1) else 0
    b = int(m.group(2)) if m.group(2) else None
    if b is not None and b <= a:
        raise ParameterError(f"frames={spec!r}: B must be > A")
    return a, b


def _boxes_of(df, frame: int) -> np.ndarray:
    g = df[df["frame"] == frame]
    return g[["cls", "x", "y", "w", "h"]].to_numpy(np.float64)


def video_samples(folder: Path, frames: tuple[int, int | None], step: int, rng, log=None, **kw) -> Samples:
    """Samples of the annotated frames ``frames[0] <= f < frames[1]`` (every ``step``-th) of a
    VISEM-layout video folder (real or synthetic)."""
    from spermtrack.io.visem import iter_video_frames, read_visem_video

    v = read_visem_video(folder)
    a, b = frames
    ann = v.annotated_frames
    ann = ann[(ann >= a) & ((ann < b) if b is not None else True)][::max(1, step)]
    imgs = list(iter_video_frames(v, ann))
    hc = head_contrast_of([img for _, img in imgs]) if imgs else float("nan")
    parts = []
    for f, img in imgs:
        parts.append(frame_samples(img, _boxes_of(v.boxes, f), rng, f"{folder}", int(f), hc=hc, **kw))
    if log:
        log(f"  {folder}: {len(parts)} frames")
    out = Samples.concat(parts)
    out.sources = [str(folder)] if len(out.labels) else []
    out.source[:] = 0
    return out


def read_yolo_labels(path: Path, W: int, H: int) -> np.ndarray:
    arr = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 5))
    if arr.size and arr.shape[1] < 5:
        raise InputFileError(path, "expected `cls cx cy w h` per line")
    arr = arr[:, :5].astype(np.float64).reshape(-1, 5) * np.array([1, W, H, W, H])
    arr[:, 1:3] -= EDGE_OFFSET_PX  # labels' edge coordinates -> pixel-centre coordinates
    return arr


def match_label_set(frame: np.ndarray, label_sets: dict[int, np.ndarray]) -> int:
    """The label set whose sperm centres lie nearest the frame's confident detections."""
    from scipy.spatial import cKDTree

    d = _plain_detector().detect(frame[None])[0]
    pts = d.centers
    if len(pts) < 5:  # nothing confident: the strongest third of the candidates
        c, _ = detector_candidates(frame)
        sc = np.nan_to_num(np.asarray(c["score"], float), neginf=-1e9)
        ok = sc >= np.quantile(sc, 2 / 3)
        pts = np.c_[c["x"][ok], c["y"][ok]]
    tree = cKDTree(pts)
    best, best_d = None, np.inf
    for k, boxes in label_sets.items():
        s = boxes[boxes[:, 0] == 0]
        if not len(s):
            continue
        d = np.mean(np.minimum(tree.query(s[:, 1:3])[0], 10.0))
        if d < best_d:
            best, best_d = k, d
    return best


def extra_frame_samples(folder: Path, rng, log=None, **kw) -> Samples:
    """Samples of labelled JPEGs ``<vid>_frame_<n>[_approx].jpg`` with ``labels/<vid>_frame_<m>.txt``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "no such folder of labelled frames")
    lab_dir = folder / "labels" if (folder / "labels").is_dir() else folder
    todo = []
    for img_path in sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png")):
        m = re.match(r"(.+)_frame_(\d+)(_approx)?$", img_path.stem)
        if not m:
            continue
        img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise InputFileError(img_path, "cannot be read as an image")
        H, W = img.shape
        vid, n, approx = m.group(1), int(m.group(2)), bool(m.group(3))
        sets = {int(re.search(r"_frame_(\d+)\.txt$", p.name).group(1)): read_yolo_labels(p, W, H)
                for p in lab_dir.glob(f"{vid}_frame_*.txt") if re.search(r"_frame_(\d+)\.txt$", p.name)}
        if not sets:
            continue
        if approx or n not in sets:
            k = match_label_set(img, sets)
            if k is None:
                continue
        else:
            k = n
        if log:
            log(f"  {img_path.name}: labels of frame {k}")
        todo.append((img, sets[k], str(img_path), k))
    # one calibration over the folder's frames (all of one video, as frames12)
    hc = head_contrast_of([t[0] for t in todo]) if todo else float("nan")
    parts = [frame_samples(img, b, rng, name, k, hc=hc, **kw) for img, b, name, k in todo]
    out = Samples.concat(parts)
    if not len(out.labels):
        raise InputFileError(folder, "holds no labelled frame (<vid>_frame_<n>.jpg + labels/<vid>_frame_<n>.txt)")
    return out


#: Seeds of the synthetic training videos start here (the phantom benchmark clips use seeds 3-12
#: and 9001-9002: held out).
SYNTH_SEED_BASE = 20000


def synth_samples(n_videos: int, seed: int, frames_per_video: int = 8, log=None, *,
                  looks=("visem",), difficulties=("easy", "medium", "hard"), **kw) -> Samples:
    """Samples of ``n_videos`` synthetic videos rendered on the fly, ``frames_per_video`` frames each.

    The videos cycle over every ``(look, difficulty)`` pair of ``looks`` x ``difficulties``
    (``simulate_cells(look=...)``; a simulator without looks renders its only one), 640x480,
    15-60 cells, seeds ``SYNTH_SEED_BASE + 1000 * seed + i`` (never a phantom benchmark seed). The
    phantom's exact truth labels the points: label boxes of class 0 are sperm heads, class 1
    clusters, everything else impurity (pinheads only make points ambiguous, as on real video)."""
    from spermtrack.synth import render_frame, simulate_cells

    has_look = "look" in inspect.signature(simulate_cells).parameters
    looks = tuple(looks) if has_look else ("default",)
    combos = [(lk, d) for lk in looks for d in difficulties]
    if not combos:
        raise ParameterError("synthetic samples need at least one look and one difficulty")
    parts = []
    rng = np.random.default_rng(seed)
    for i in range(n_videos):
        look, diff = combos[i % len(combos)]
        extra = {"look": look} if has_look else {}
        vseed = SYNTH_SEED_BASE + 1000 * seed + i
        scene = simulate_cells(seconds=1.0, fps=50, cells=float(rng.uniform(15, 60)), seed=vseed,
                               difficulty=diff, **extra)
        fs = np.linspace(0, scene.n_frames - 1, frames_per_video).astype(int)
        imgs = [render_frame(scene, int(f)) for f in fs]
        hc = head_contrast_of(imgs)
        for f, img in zip(fs, imgs):
            b = scene.boxes[scene.boxes["frame"] == f]
            boxes = b[["cls", "x", "y", "w", "h"]].to_numpy(np.float64)
            parts.append(frame_samples(img, boxes, rng, f"synth:{look}:{diff}:{vseed}", int(f), hc=hc, **kw))
    if log:
        log(f"  synthetic: {n_videos} videos x {frames_per_video} frames over looks {','.join(looks)} x "
            f"difficulties {','.join(difficulties)}")
    return Samples.concat(parts)


def parse_list(spec, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``, each checked against ``allowed``."""
    items = tuple(x.strip() for x in (spec.split(",") if isinstance(spec, str) else spec) if x.strip())
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise ParameterError(f"{what} {spec!r}: use a comma-separated list of {', '.join(allowed)}")
    return items


def build_samples(data: list[Path], *, frames: str | None = None, frame_step: int = 3, extra_frames: list[Path] = (),
                  synth_videos: int = 0, seed: int = 0, max_impurity_ratio: float = 2.0, raw_size: int = RAW_SIZE,
                  synth_looks=("visem",), synth_difficulties=("easy", "medium", "hard"), log=None) -> Samples:
    """All training samples of the given sources (see the module docstring).

    Raises:
        InputFileError: a DATA path does not exist or holds no VISEM-layout video folder.
    """
    from spermtrack.io.visem import list_video_folders

    rng = np.random.default_rng(seed)
    rng_frames = parse_frames(frames)
    parts = []
    for d in data:
        d = Path(d)
        if not d.exists():
            raise InputFileError(d, "no such DATA folder")
        for folder in list_video_folders(d):
            parts.append(video_samples(folder, rng_frames, frame_step, rng, log=log, raw_size=raw_size))
    for e in extra_frames:
        parts.append(extra_frame_samples(Path(e), rng, log=log, raw_size=raw_size))
    if synth_videos:
        parts.append(synth_samples(synth_videos, seed, log=log, raw_size=raw_size, looks=synth_looks,
                                   difficulties=synth_difficulties))
    out = Samples.concat(parts)
    return subsample_impurities(out, max_impurity_ratio, rng) if max_impurity_ratio else out


def subsample_impurities(s: Samples, ratio: float, rng) -> Samples:
    """Keep at most ``ratio`` x (sperm + cluster) impurity samples (random; every halo-rim,
    ridge and background point is kept first, candidates fill the rest). Training cost on 2 CPU
    cores is the limit; the loss re-weights the classes anyway."""
    imp = np.flatnonzero(s.labels == 1)
    cap = int(ratio * (len(s.labels) - len(imp)))
    if len(imp) <= cap:
        return s
    special = imp[s.kind[imp] != 0]
    cand = imp[s.kind[imp] == 0]
    keep_imp = np.concatenate([special[:cap], rng.choice(cand, max(0, cap - len(special)), replace=False)])
    keep = np.sort(np.concatenate([np.flatnonzero(s.labels != 1), keep_imp]))
    return Samples(s.patches[keep], s.labels[keep], s.source[keep], s.kind[keep], s.frame[keep], s.xy[keep], s.sources,
                   s.hc[keep])


# ------------------------------------------------------------------------------------ augmenting

def augment(raw: torch.Tensor, crop: int, gen: torch.Generator, hc: torch.Tensor | None = None,
            scale_jitter: float = 0.0) -> torch.Tensor:
    """Augmented, normalised crops ``(B, crop, crop)`` from raw patches ``(B, R, R)`` (float, 0-255):
    rotation (any angle for half, multiples of 90 deg for the rest) + flip + +-1 px shift,
    brightness / contrast, Gaussian blur (30 %), Poisson noise (50 %, 1.5-30 photons per level);
    with ``scale_jitter`` s > 0 also a zoom, log-uniform in ``[1/(1+s), 1+s]`` (heads of other
    sizes: the detector shows the classifier heads within its ``classifier_scale_band`` of the
    trained size unresized; s = 0 draws nothing, so older recipes give the same crops).

    With ``hc`` (``(B,)`` head contrast of each sample's video, gray levels): ``(B, 2, crop, crop)``,
    channel 1 = :func:`~spermtrack.detect.classifier.contrast_channel` with the head contrast
    scaled by the same gain as the crop and jittered x0.8-1.25 (calibration error)."""
    B = raw.shape[0]
    u = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    ang = torch.where(u(B) < 0.5, u(B) * 2 * np.pi, torch.randint(0, 4, (B,), generator=gen).float() * np.pi / 2)
    flip = torch.where(u(B) < 0.5, -1.0, 1.0)
    shift = torch.randint(-1, 2, (B, 2), generator=gen).float()
    zoom = torch.exp((u(B) - 0.5) * 2 * math.log1p(scale_jitter)) if scale_jitter > 0 else None
    x = warp(raw, crop, ang, flip, shift, zoom)
    # brightness / contrast around the crop's mean
    med = x.reshape(B, -1).mean(1)[:, None, None]
    gain = torch.exp((u(B) - 0.5) * 0.9)[:, None, None]
    offs = ((u(B) - 0.5) * 60)[:, None, None]
    x = ((x - med) * gain + med * (0.6 + 0.8 * u(B))[:, None, None] + offs).clamp(0, 255)
    # Gaussian blur on ~30 %
    sig = 0.5 + 0.8 * float(u(1))
    k = torch.arange(-2, 3).float()
    k = torch.exp(-k ** 2 / (2 * sig ** 2))
    k = (k / k.sum())
    blurred = F.conv2d(F.pad(x[:, None], (2, 2, 2, 2), mode="replicate"), (k[:, None] * k[None, :])[None, None])[:, 0]
    x = torch.where((u(B) < 0.3)[:, None, None], blurred, x)
    # Poisson noise on ~50 %
    lam = torch.exp(np.log(1.5) + u(B) * (np.log(30) - np.log(1.5)))[:, None, None]
    noisy = torch.poisson(x * lam, generator=gen) / lam
    x = torch.round(torch.where((u(B) < 0.5)[:, None, None], noisy, x).clamp(0, 255))
    c0 = normalise_patches(x)
    if hc is None:
        return c0
    jitter = torch.exp((u(B) - 0.5) * 2 * math.log(1.25))
    return torch.stack([c0, contrast_channel(x, hc * gain[:, 0, 0] * jitter)], dim=1)


def warp(raw: torch.Tensor, crop: int, ang: torch.Tensor, flip: torch.Tensor, shift: torch.Tensor,
         zoom: torch.Tensor | None = None) -> torch.Tensor:
    """Rotated (``ang`` rad), flipped (``flip`` = -1), shifted (px) and zoomed (``zoom`` raw px
    per output px: > 1 shows more of the patch, objects look smaller) ``crop x crop`` crops of raw
    patches ``(B, R, R)``; the output centre pixel (``crop // 2``) samples the raw centre pixel
    (``R // 2``) + shift, so angle 0 / no flip / no shift / no zoom gives exactly the centre crop."""
    B, R = raw.shape[0], raw.shape[-1]
    cos, sin = torch.cos(ang), torch.sin(ang)
    if zoom is not None:
        cos, sin = cos * zoom, sin * zoom
    m00, m01, m10, m11 = cos * flip, -sin, sin * flip, cos
    s = crop / R
    c = R // 2 - (R - 1) / 2
    cc = crop // 2 - (crop - 1) / 2
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = m00 * s, m01 * s, m10 * s, m11 * s
    theta[:, 0, 2] = (c + shift[:, 0] - (m00 + m01) * cc) * 2 / R
    theta[:, 1, 2] = (c + shift[:, 1] - (m10 + m11) * cc) * 2 / R
    grid = F.affine_grid(theta, (B, 1, crop, crop), align_corners=False)
    return F.grid_sample(raw[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]


def center_crops(raw: np.ndarray | torch.Tensor, crop: int, hc=None) -> torch.Tensor:
    """Unaugmented normalised crops, identical to :func:`~spermtrack.detect.classifier.extract_crops`
    (two channels when ``hc``, the ``(n,)`` head contrasts, is given)."""
    raw = torch.as_tensor(np.asarray(raw, np.float32))
    R = raw.shape[-1]
    o = R // 2 - crop // 2
    p = raw[:, o:o + crop, o:o + crop]
    if hc is None:
        return normalise_patches(p)
    return torch.stack([normalise_patches(p), contrast_channel(p, torch.as_tensor(np.asarray(hc, np.float32)))], 1)


# -------------------------------------------------------------------------------------- training

@dataclass
class ClassifierTrainConfig:
    arch: str = "cnn"
    crop_size: int = CROP_SIZE
    epochs: int = 6
    batch: int = 256
    lr: float | None = None          # default: 3e-3 (cnn), 1e-3 (vit)
    weight_decay: float = 0.05
    seed: int = 0
    threads: int | None = None
    channels: int = 2                # 2: + contrast relative to the video's head contrast
    width: int = 8                   # CNN width (8-16-32 channels at 8)
    label_smoothing: float = 0.05
    scale_jitter: float = 0.0        # zoom augmentation, log-uniform in [1/(1+s), 1+s] (0: none)


def train_model(samples: Samples, cfg: ClassifierTrainConfig, log=None) -> torch.nn.Module:
    """Train a fresh model on ``samples`` (AdamW, one-cycle cosine, cross-entropy weighted by
    inverse square-root class frequency)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    kw = {"in_channels": cfg.channels}
    if cfg.arch == "cnn":
        kw["width"] = cfg.width
    model = build_model(cfg.arch, cfg.crop_size, **kw)
    n = len(samples.labels)
    if n == 0:
        raise ParameterError("no training samples (no labelled frame in DATA?)")
    if samples.patches.shape[-1] < cfg.crop_size * math.sqrt(2) + 2:
        raise ParameterError(f"raw patches of {samples.patches.shape[-1]} px are too small for crop {cfg.crop_size}")
    hc = None
    if cfg.channels == 2:
        h = np.asarray(samples.hc, np.float32)
        fill = float(np.nanmedian(h)) if np.isfinite(h).any() else 80.0
        hc = torch.from_numpy(np.where(np.isfinite(h), h, fill).astype(np.float32))
    raw = torch.from_numpy(samples.patches)
    y = torch.from_numpy(samples.labels)
    cnt = torch.bincount(y, minlength=3).float()
    w = torch.where(cnt > 0, (cnt.max() / cnt.clamp(min=1)).sqrt().clamp(max=4.0), torch.zeros(()))
    lr = cfg.lr or (3e-3 if cfg.arch == "cnn" else 1e-3)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, (n + cfg.batch - 1) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for ep in range(cfg.epochs):
        model.train()
        t0, tot, correct = time.time(), 0.0, 0
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, cfg.batch):
            idx = perm[i:i + cfg.batch]
            xb = augment(raw[idx].float(), cfg.crop_size, gen, None if hc is None else hc[idx], cfg.scale_jitter)
            out = model(xb[:, None] if xb.ndim == 3 else xb)
            loss = F.cross_entropy(out, y[idx], weight=w, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
        if log:
            log(f"  epoch {ep + 1}/{cfg.epochs}: loss {tot / n:.4f}, train acc {correct / n:.4f} ({time.time() - t0:.0f} s)")
    return model.eval()


def train_classifier(data: list[Path], out: Path, cfg: ClassifierTrainConfig, *, frames: str | None = None,
                     frame_step: int = 3, extra_frames: list[Path] = (), synth_videos: int = 0,
                     max_impurity_ratio: float = 2.0, synth_looks=("visem",),
                     synth_difficulties=("easy", "medium", "hard"), tta: int = 1, command: str = "",
                     log=None) -> Path:
    """Build samples, train, save a :class:`~spermtrack.detect.classifier.CandidateClassifier`."""
    import spermtrack

    t0 = time.time()
    samples = build_samples(data, frames=frames, frame_step=frame_step, extra_frames=extra_frames,
                            synth_videos=synth_videos, seed=cfg.seed, max_impurity_ratio=max_impurity_ratio,
                            raw_size=max(RAW_SIZE, raw_size_for(math.ceil(cfg.crop_size * (1 + cfg.scale_jitter)))),
                            synth_looks=synth_looks,
                            synth_difficulties=synth_difficulties, log=log)
    if log:
        log(f"samples: {samples.counts()} ({time.time() - t0:.0f} s)")
    model = train_model(samples, cfg, log=log)
    prov = {"data": [str(d) for d in data], "frames": frames or "all", "frame_step": frame_step,
            "extra_frames": [str(e) for e in extra_frames], "synth_videos": synth_videos,
            "synth_looks": list(synth_looks) if synth_videos else [],
            "synth_difficulties": list(synth_difficulties) if synth_videos else [],
            "synth_seeds": f"{SYNTH_SEED_BASE + 1000 * cfg.seed}+" if synth_videos else "",
            "samples": samples.counts(), "max_impurity_ratio": max_impurity_ratio, "n_sources": len(samples.sources), "train_config": asdict(cfg),
            "command": command, "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "train_seconds": round(time.time() - t0, 1),
            "labelling": f"sperm <= {SPERM_RADIUS} px of a sperm label centre, cluster inside a cluster box, "
                         f"impurity > {IMPURITY_RADIUS} px from every label, else dropped; "
                         f"candidates BlobDetector(classifier=None).candidates(frame, min_z={LOW_Z})"}
    clf = CandidateClassifier(model, cfg.arch, cfg.crop_size, provenance=prov,
                              version=f"classifier-v5 (spermtrack {getattr(spermtrack, '__version__', '?')})", tta=tta)
    return clf.save(out)
