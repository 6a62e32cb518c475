"""Sperm-vs-impurity classifier on detector candidate crops (0 sperm head, 1 impurity, 2 cluster).

The blob detector (:class:`~spermtrack.detect.blob.BlobDetector`) reports every bright blob:
on real VISEM video ~5x more candidates than labelled (in-focus) heads: background texture,
tail fragments, halo rims, debris, out-of-focus cells, round bright blobs without a tail. This
module decides per candidate, from a small gray crop centred on it:

- ``0`` sperm head (in focus, what VISEM labels count),
- ``1`` impurity (debris, out-of-focus blob, tail fragment, halo rim, background),
- ``2`` cluster (VISEM class 1, a clump of cells).

Two tiny models trained from scratch (torch, no pretrained weights): :class:`TinyViT` (patch 4,
3 blocks, after the small-ViT impurity study: accuracy 91.45 % -> 91.08 % under Poisson noise,
impurity F1 90.4 %) and :class:`TinyCNN` (3 conv layers). ``benchmarks/classifier.py`` compares
them on the same crops; the default weights (``detect/weights/classifier.pt``) ship the winner.

Crops (:func:`extract_crops`): ``size x size`` pixels around the rounded candidate centre;
outside the frame is filled with the frame's median (background). Each crop is normalised on
its own: minus the median of its 1-px border ring (local background), divided by
``max(1.4826 * MAD, SCALE_FLOOR)`` (MAD around that background level, in gray levels; the floor
keeps flat background crops from being blown up into texture), then compressed with
``asinh(z / 3)`` so saturated heads keep their shape. An offset or a gain on the illumination
changes nothing (above the floor).

Training samples (:mod:`spermtrack.detect.classifier_data`): on every chosen labelled frame,
the candidates of ``BlobDetector(score_threshold=LOW).candidates(frame)`` + a crop at every label
centre (positives even where the detector misses) + random background points + halo-rim points
(12-16 px from a labelled head) + dark-ridge (tail) points; a point within 8 px of a sperm label
centre is sperm (0), inside a cluster box cluster (2), farther than 12 px from every label
impurity (1); anything else (8-12 px, near a pinhead label) is ambiguous and dropped. Pinhead
labels (VISEM class 2) are never a class. Augmentation: any rotation and flips, brightness /
contrast, Gaussian blur, Poisson noise, +-1 px shift.

Frames passed in are gray ``uint8`` with heads BRIGHT (the detector inverts dark-head videos).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from spermtrack.errors import InputFileError

#: Class names by output index.
CLASSES: tuple[str, ...] = ("sperm", "impurity", "cluster")
#: Default crop side (px).
CROP_SIZE = 24
#: Floor of the robust scale used to normalise a crop (gray levels).
SCALE_FLOOR = 3.0
#: asinh compression scale (in units of the robust scale).
COMPRESS = 3.0
#: Compression of the calibration-aware channel: ``asinh(HC_GAIN * contrast / head contrast) / HC_GAIN``.
HC_GAIN = 2.0
#: Format version of the weights file (2: optional second, calibration-aware input channel).
FORMAT_VERSION = 2
#: Test-time augmentation views ``(quarter turns, mirrored)`` in the order they are used: 2 views =
#: identity + 180 degrees, 4 = + the two mirror images, 8 = the whole dihedral group.
TTA_VIEWS: tuple[tuple[int, bool], ...] = ((0, False), (2, False), (0, True), (2, True),
                                           (1, False), (3, False), (1, True), (3, True))
#: Default weights shipped inside the package.
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "classifier.pt"


# --------------------------------------------------------------------------------------- crops

def raw_patches(frame: np.ndarray, xs, ys, size: int, mirror=None) -> np.ndarray:
    """``(n, size, size) float32`` raw gray patches centred on the rounded ``(xs, ys)``.

    The patch's centre pixel is ``size // 2`` (both axes). Pixels outside the frame take the
    frame's median (background), so candidates on the border get full-size crops. ``mirror``
    (``(n,)`` bool, optional): those patches take the frame mirrored at its border instead
    (``cv2.BORDER_REFLECT``): a head cut by the border becomes a whole head (the detector uses it
    for candidates centred on the border; the rest keep the median, as in training).
    """
    img = np.asarray(frame)
    if img.ndim == 3:
        img = img[..., 0] if img.shape[2] == 1 else img.mean(2)
    img = img.astype(np.float32, copy=False)
    xs = np.asarray(xs, np.float64).reshape(-1)
    ys = np.asarray(ys, np.float64).reshape(-1)
    n = len(xs)
    if n == 0:
        return np.zeros((0, size, size), np.float32)
    H, W = img.shape
    pad = size
    fill = float(np.median(img[::4, ::4]))
    padded = np.full((H + 2 * pad, W + 2 * pad), fill, np.float32)
    padded[pad:pad + H, pad:pad + W] = img
    cx = np.clip(np.rint(np.nan_to_num(xs)).astype(np.int64), -pad // 2, W - 1 + pad // 2)
    cy = np.clip(np.rint(np.nan_to_num(ys)).astype(np.int64), -pad // 2, H - 1 + pad // 2)
    off = np.arange(size) - size // 2
    rows = (cy + pad)[:, None] + off[None, :]
    cols = (cx + pad)[:, None] + off[None, :]
    out = padded[rows[:, :, None], cols[:, None, :]]
    m = np.zeros(n, bool) if mirror is None else np.asarray(mirror, bool).reshape(-1)
    if m.any():
        import cv2

        mirrored = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        out[m] = mirrored[rows[m][:, :, None], cols[m][:, None, :]]
    return out


def normalise_patches(p: torch.Tensor) -> torch.Tensor:
    """Robust per-crop normalisation of raw patches ``(n, s, s)`` (see the module docstring)."""
    n, s = p.shape[0], p.shape[-1]
    if n == 0:
        return p.reshape(0, s, s)
    flat = p.reshape(n, -1)
    ring = torch.cat([p[:, 0, :], p[:, -1, :], p[:, 1:-1, 0], p[:, 1:-1, -1]], dim=1)
    bg = ring.median(dim=1).values
    mad = (flat - bg[:, None]).abs().median(dim=1).values
    scale = torch.clamp(1.4826 * mad, min=SCALE_FLOOR)
    z = (p - bg[:, None, None]) / scale[:, None, None]
    return torch.asinh(z / COMPRESS)


def _lower_median(a: np.ndarray) -> np.ndarray:
    """Median along the last axis, the lower middle value for even counts (as ``torch.median``)."""
    k = (a.shape[-1] - 1) // 2
    return np.partition(a, k, axis=-1)[..., k]


def normalise_patches_np(p: np.ndarray) -> np.ndarray:
    """:func:`normalise_patches` in numpy (same numbers, faster on small batches)."""
    n, s = p.shape[0], p.shape[-1]
    if n == 0:
        return np.zeros((0, s, s), np.float32)
    ring = np.concatenate([p[:, 0, :], p[:, -1, :], p[:, 1:-1, 0], p[:, 1:-1, -1]], axis=1)
    bg = _lower_median(ring)
    mad = _lower_median(np.abs(p.reshape(n, -1) - bg[:, None]))
    scale = np.maximum(np.float32(1.4826) * mad, np.float32(SCALE_FLOOR))
    z = (p - bg[:, None, None]) / scale[:, None, None]
    return np.arcsinh(z / np.float32(COMPRESS)).astype(np.float32, copy=False)


def contrast_channel_np(p: np.ndarray, head_contrast_gray) -> np.ndarray:
    """Calibration-aware channel of raw patches ``(n, s, s)``: minus the border-ring median, divided
    by the video's typical head contrast (gray levels; scalar or ``(n,)``), asinh-compressed
    (``asinh(HC_GAIN x) / HC_GAIN``): a typical in-focus head core reads ~1, a faint out-of-focus
    blob ~0.3, whatever the crop's own spread."""
    n, s = p.shape[0], p.shape[-1]
    if n == 0:
        return np.zeros((0, s, s), np.float32)
    ring = np.concatenate([p[:, 0, :], p[:, -1, :], p[:, 1:-1, 0], p[:, 1:-1, -1]], axis=1)
    bg = _lower_median(ring)
    hc = np.maximum(np.broadcast_to(np.asarray(head_contrast_gray, np.float32).reshape(-1), (n,)), 1.0)
    x = (p - bg[:, None, None]) / hc[:, None, None]
    return (np.arcsinh(np.float32(HC_GAIN) * x) / np.float32(HC_GAIN)).astype(np.float32, copy=False)


def contrast_channel(p: torch.Tensor, head_contrast_gray: torch.Tensor) -> torch.Tensor:
    """:func:`contrast_channel_np` in torch (training); ``head_contrast_gray`` is ``(n,)``."""
    n, s = p.shape[0], p.shape[-1]
    if n == 0:
        return p.reshape(0, s, s)
    ring = torch.cat([p[:, 0, :], p[:, -1, :], p[:, 1:-1, 0], p[:, 1:-1, -1]], dim=1)
    bg = ring.median(dim=1).values
    x = (p - bg[:, None, None]) / head_contrast_gray.clamp(min=1.0)[:, None, None]
    return torch.asinh(HC_GAIN * x) / HC_GAIN


def estimate_head_contrast(frame_gray_uint8: np.ndarray) -> float:
    """The typical head contrast (gray levels) of one bright-head frame, from
    :func:`~spermtrack.detect.calibrate.calibrate` on that frame alone (``polarity="bright"``);
    falls back to 8 x the frame's robust spread when calibration fails."""
    img = np.asarray(frame_gray_uint8)
    try:
        from spermtrack.detect.calibrate import calibrate

        cal = calibrate([img], polarity="bright")
        hc = float(cal.spread_gray * cal.head_level_z)
        if np.isfinite(hc) and hc > 1.0:
            return hc
    except Exception:  # noqa: BLE001 - any failure: the fallback below
        pass
    v = img[::2, ::2].astype(np.float32)
    return float(max(8.0 * 1.4826 * np.median(np.abs(v - np.median(v))), 10.0))


def extract_crops(frame_gray_uint8: np.ndarray, xs, ys, size: int = CROP_SIZE, *, channels: int = 1,
                  head_contrast_gray: float | None = None, mirror=None) -> np.ndarray:
    """Normalised crops centred on the candidates ``(xs, ys)`` (px): ``(n, size, size) float32``
    (``channels=1``) or ``(n, 2, size, size)`` (``channels=2``: + :func:`contrast_channel_np`).

    Channel 0 is robust to illumination: each crop minus its border median, divided by a robust
    scale with a floor, asinh-compressed. Channel 1 keeps how bright the candidate is relative to
    the video's typical head (``head_contrast_gray``; None: estimated from this frame).
    Candidates near (or past) the frame border get full crops padded with the frame's median
    (``mirror``: those mirrored at the border instead, see :func:`raw_patches`).
    """
    raw = raw_patches(frame_gray_uint8, xs, ys, size, mirror)
    c0 = normalise_patches_np(raw)
    if channels == 1:
        return c0
    if head_contrast_gray is None or not np.isfinite(head_contrast_gray) or head_contrast_gray <= 0:
        head_contrast_gray = estimate_head_contrast(frame_gray_uint8)
    return np.stack([c0, contrast_channel_np(raw, head_contrast_gray)], axis=1)


#: a candidate is taken for one of the previous frame when their centres are this close (px)
REUSE_MATCH_PX = 0.75


class ProbabilityReuse:
    """Class probabilities carried over from frame to frame for candidates that did not change.

    Most candidates of a real video are immotile (on VISEM video 11, 89 % lie within 0.75 px of a
    candidate of the previous frame), and the classifier's answer for an unchanged crop is the
    same answer. A candidate within :data:`REUSE_MATCH_PX` of one of the previous frame keeps that
    one's probabilities when its normalised crop (the central half, every channel) differs from
    the crop those probabilities were computed on by less than ``tol`` (mean absolute difference,
    asinh-compressed units: consecutive crops of an immotile head differ by ~0.02, the same place
    100 frames apart by ~0.12). A tail sweeping in, a drift of focus or a new head level (the
    contrast channel) changes the crop, and the candidate is classified again. Frames must come
    in order; :meth:`clear` between videos.
    """

    def __init__(self, tol: float):
        self.tol = float(tol)
        self.clear()

    def clear(self) -> None:
        self._xy: np.ndarray | None = None
        self._ref: np.ndarray | None = None
        self._prob: np.ndarray | None = None
        self.n_seen = 0
        self.n_computed = 0

    def predict_proba(self, clf: "CandidateClassifier", frame_gray_uint8: np.ndarray, xs, ys,
                      head_contrast_gray: float | None = None, mirror=None) -> np.ndarray:
        """:meth:`CandidateClassifier.predict_proba`, computed only for the changed candidates."""
        from scipy.spatial import cKDTree

        xy = np.c_[np.asarray(xs, np.float64).reshape(-1), np.asarray(ys, np.float64).reshape(-1)]
        crops = extract_crops(frame_gray_uint8, xy[:, 0], xy[:, 1], clf.crop_size, channels=clf.channels,
                              head_contrast_gray=head_contrast_gray, mirror=mirror)
        s = clf.crop_size
        q = s // 4
        core = (crops if crops.ndim == 4 else crops[:, None])[:, :, q:s - q, q:s - q]
        n = len(xy)
        prob = np.empty((n, len(clf.classes)), np.float64)
        ref = core.copy()
        fresh = np.ones(n, bool)
        if n and self._xy is not None and len(self._xy) and self.tol > 0:
            d, j = cKDTree(self._xy).query(xy)
            near = np.flatnonzero(d <= REUSE_MATCH_PX)
            if len(near):
                diff = np.abs(core[near] - self._ref[j[near]]).mean(axis=(1, 2, 3))
                keep = near[diff < self.tol]
                prob[keep] = self._prob[j[keep]]
                ref[keep] = self._ref[j[keep]]
                fresh[keep] = False
        if fresh.any():
            prob[fresh] = clf.predict_crops(crops[fresh])
        self._xy, self._ref, self._prob = xy, ref, prob
        self.n_seen += n
        self.n_computed += int(fresh.sum())
        return prob


def poisson_noise(img: np.ndarray, photons_per_level: float, rng=None) -> np.ndarray:
    """Shot noise: the image scaled to a photon count (``photons_per_level`` per gray level),
    Poisson-sampled and scaled back; ``uint8`` in, ``uint8`` out."""
    rng = np.random.default_rng(rng)
    lam = np.asarray(img, np.float64) * photons_per_level
    return np.clip(np.rint(rng.poisson(lam) / photons_per_level), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------- models

class TinyCNN(nn.Module):
    """3 conv layers (8-16-32 channels, BN, ReLU, 2 max-pools) + a linear layer on the
    flattened ``s/4 x s/4`` map (keeps where in the crop things are: the centre is the candidate)."""

    def __init__(self, size: int = CROP_SIZE, n_classes: int = 3, width: int = 8, in_channels: int = 1):
        super().__init__()
        self.init_kwargs = {"width": width, "in_channels": in_channels}
        c1, c2, c3 = width, 2 * width, 4 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(c3 * (size // 4) ** 2, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.n1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.n2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))
        self.keep_attn = False
        self.attn: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        h = self.heads
        qkv = self.qkv(self.n1(x)).reshape(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.keep_attn:
            a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // h), dim=-1)
            self.attn = a.detach()
            o = a @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(o.transpose(1, 2).reshape(B, N, D))
        return x + self.mlp(self.n2(x))


class TinyViT(nn.Module):
    """Vision Transformer: 4x4 patches, a class token, learned positions, ``depth`` pre-norm blocks."""

    def __init__(self, size: int = CROP_SIZE, n_classes: int = 3, patch: int = 4, dim: int = 32,
                 depth: int = 3, heads: int = 2, mlp: int = 64, in_channels: int = 1):
        super().__init__()
        self.init_kwargs = {"patch": patch, "dim": dim, "depth": depth, "heads": heads, "mlp": mlp,
                            "in_channels": in_channels}
        self.patch = patch
        self.grid = size // patch
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([_Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1) + self.pos
        for b in self.blocks:
            t = b(t)
        return self.fc(self.norm(t[:, 0]))

    def attention_rollout(self, x: torch.Tensor) -> torch.Tensor:
        """Attention rollout (Abnar & Zuidema 2020): ``(n, grid, grid)`` relevance of each patch
        to the class token, heads averaged, residual added (0.5 A + 0.5 I) and multiplied through."""
        for b in self.blocks:
            b.keep_attn = True
        try:
            with torch.no_grad():
                self.forward(x)
            r = None
            for b in self.blocks:
                a = b.attn.mean(1)
                a = 0.5 * a + 0.5 * torch.eye(a.shape[-1])
                a = a / a.sum(-1, keepdim=True)
                r = a if r is None else a @ r
        finally:
            for b in self.blocks:
                b.keep_attn = False
                b.attn = None
        return r[:, 0, 1:].reshape(-1, self.grid, self.grid)


def grad_cam(model: TinyCNN, x: torch.Tensor, target: int | None = None) -> torch.Tensor:
    """Grad-CAM ``(n, s/4, s/4)`` of the last conv block for class ``target`` (default: predicted)."""
    feats = {}
    layer = model.features[-1]
    h = layer.register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))
    try:
        x = x.clone().requires_grad_(False)
        out = model(x)
        cls = out.argmax(1) if target is None else torch.full((len(x),), target, dtype=torch.long)
        a = feats["a"]
        g = torch.autograd.grad(out.gather(1, cls[:, None]).sum(), a)[0]
    finally:
        h.remove()
    w = g.mean((2, 3), keepdim=True)
    return F.relu((w * a).sum(1)).detach()


ARCHS = {"cnn": TinyCNN, "vit": TinyViT}


def build_model(arch: str, size: int = CROP_SIZE, **kw) -> nn.Module:
    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r}: use one of {', '.join(ARCHS)}")
    return ARCHS[arch](size=size, **kw)


# ----------------------------------------------------------------------------------- classifier

class CandidateClassifier:
    """A trained crop classifier: ``predict_proba(frame, xs, ys) -> (n, 3)`` (sperm, impurity, cluster).

    Attributes:
        arch: ``"vit"`` or ``"cnn"``; model_kwargs: its constructor arguments.
        crop_size: crop side in px (must match training).
        classes: class names by column.
        provenance: what data trained it (sources, frames, sample counts, command, date).
        version: weights format version and the package version that wrote them.
        path: the weights file it was loaded from (None when built in memory).
        threads: torch threads used by inference (default 1: fastest for ~200 crops per frame;
            None keeps torch's setting).
        batch_size: crop views (crops x ``tta``) per forward pass. 256 keeps the activations in
            cache and the transient memory small: 400 crops x 4 views took 260 ms and +52 MiB at
            256 vs 428 ms and +224 MiB at 2048 (one core; the 2048 default let a 10x-candidate
            video's peak memory creep past 1.5 GB).
        tta: test-time augmentation, the number of views of each crop whose probabilities are
            averaged (1: none; 2: + the crop rotated by 180 degrees; 4: + its two mirror images;
            8: every rotation by 90 degrees and flip); costs ``tta`` x the model; the weights header
            records it and :meth:`load` restores it.
        model: the torch module (eval mode, CPU).
    """

    def __init__(self, model: nn.Module, arch: str, crop_size: int = CROP_SIZE, *, model_kwargs: dict | None = None,
                 provenance: dict | None = None, version: str = "", path: Path | None = None,
                 batch_size: int = 256, threads: int | None = 1, tta: int = 1,
                 head_length_px: float | None = None):
        self.model = model.eval()
        self.arch = arch
        self.crop_size = int(crop_size)
        self.model_kwargs = dict(model_kwargs if model_kwargs is not None else getattr(model, "init_kwargs", {}))
        self.classes = CLASSES
        self.provenance = dict(provenance or {})
        self.version = version
        self.path = path
        self.batch_size = batch_size
        self.threads = threads
        self.tta = tta
        #: head core length (px) of the heads it was trained on; None: not recorded (the shipped
        #: weights; the detector assumes calibrate.REFERENCE_HEAD_PX)
        self.head_length_px = head_length_px
        self._fast: tuple[nn.Module, nn.Module] | None = None  # (source model, its inference copy)

    @property
    def channels(self) -> int:
        """Input channels: 1 (per-crop normalised) or 2 (+ contrast relative to the video's head contrast)."""
        return int(self.model_kwargs.get("in_channels", 1))

    # -- io
    def header(self) -> dict:
        return {"format": FORMAT_VERSION, "arch": self.arch, "crop_size": self.crop_size,
                "model_kwargs": self.model_kwargs, "classes": list(self.classes),
                "normalisation": {"border_ring_px": 1, "scale": "max(1.4826*MAD, floor)",
                                  "floor": SCALE_FLOOR, "compress": f"asinh(z/{COMPRESS})",
                                  **({"channel_1": f"asinh({HC_GAIN:g} (crop - ring median) / head_contrast_gray) / {HC_GAIN:g}"}
                                     if self.channels == 2 else {})},
                "tta": self.tta, "provenance": self.provenance, "version": self.version,
                **({"head_length_px": self.head_length_px} if self.head_length_px else {})}

    def save(self, path: str | Path) -> Path:
        """Write ``{"header": JSON text, "state_dict": ...}`` (loadable with ``weights_only=True``)."""
        from spermtrack.io.atomic import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save({"header": json.dumps(self.header()), "state_dict": state}, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> "CandidateClassifier":
        """Load weights (``None``: the default shipped in the package). No network access.

        Raises:
            InputFileError: missing or unreadable file, or not a classifier weights file.
        """
        p = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not p.is_file():
            raise InputFileError(p, "classifier weights not found")
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any failure means the same to the user
            from spermtrack.tracker.reid import refused_by_weights_only

            if refused_by_weights_only(err, p):
                # it needs more than tensors and plain types (possibly code): nothing of it was run
                raise InputFileError(p, "refused: not a plain-tensor checkpoint (it may hold code); retrain "
                                        "with `spermtrack train classifier` (spermtrack's own checkpoints hold "
                                        "tensors and plain values only)") from None
            raise InputFileError(p, f"not a candidate-classifier weights file ({type(err).__name__})") from None
        try:
            head = json.loads(blob["header"])
            model = build_model(head["arch"], int(head["crop_size"]), **head.get("model_kwargs", {}))
            model.load_state_dict(blob["state_dict"])
        except Exception as err:  # noqa: BLE001 - any failure means the same to the user
            detail = " ".join(str(err).split())[:200]  # one line, whatever torch says
            raise InputFileError(p, f"not a candidate-classifier weights file ({type(err).__name__}: {detail})") from None
        if int(head.get("format", 0)) > FORMAT_VERSION:
            raise InputFileError(p, f"weights format {head['format']} is newer than this spermtrack ({FORMAT_VERSION})")
        return cls(model, head["arch"], int(head["crop_size"]), model_kwargs=head.get("model_kwargs", {}),
                   provenance=head.get("provenance", {}), version=head.get("version", ""), path=p,
                   tta=int(head.get("tta", 1)), head_length_px=head.get("head_length_px"))

    # -- inference
    def inference_model(self) -> nn.Module:
        """The module used by :meth:`predict_crops`: for a :class:`TinyCNN` a copy with each batch
        norm folded into its conv, in channels-last memory layout (same outputs to ~1e-6, ~2.5x
        faster on one CPU core); other models as they are. Rebuilt when ``model`` is replaced
        (not when its weights are changed in place)."""
        if self._fast is None or self._fast[0] is not self.model:
            m = self.model
            if isinstance(m, TinyCNN):
                import copy

                from torch.nn.utils.fusion import fuse_conv_bn_eval

                m = copy.deepcopy(m).eval()
                feats, out, i = list(m.features), [], 0
                while i < len(feats):
                    if (isinstance(feats[i], nn.Conv2d) and i + 1 < len(feats)
                            and isinstance(feats[i + 1], nn.BatchNorm2d)):
                        out.append(fuse_conv_bn_eval(feats[i], feats[i + 1]))
                        i += 2
                    else:
                        out.append(feats[i])
                        i += 1
                m.features = nn.Sequential(*out)
                m = m.to(memory_format=torch.channels_last).eval()
            self._fast = (self.model, m)
        return self._fast[1]

    def predict_crops(self, crops: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities ``(n, 3)`` of already normalised crops ``(n, s, s)`` or ``(n, c, s, s)``."""
        x = torch.as_tensor(np.asarray(crops, np.float32) if not torch.is_tensor(crops) else crops)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), np.float64)
        if x.ndim == 3:
            x = x[:, None]
        model = self.inference_model()
        cl = isinstance(model, TinyCNN)
        out = []
        # one thread: ~200 tiny crops per call; several threads spin and lose on a shared CPU
        prev = torch.get_num_threads()
        if self.threads and self.threads != prev:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                nv = max(1, min(len(TTA_VIEWS), int(self.tta)))
                step = max(1, self.batch_size // nv)
                for i in range(0, len(x), step):
                    xb = x[i:i + step]
                    if nv > 1:  # the views in one batch, probabilities averaged
                        xb = torch.cat([torch.rot90(xb.flip(3) if f else xb, k, (2, 3)) for k, f in TTA_VIEWS[:nv]])
                    if cl:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    p = torch.softmax(model(xb), dim=1)
                    out.append(p.reshape(nv, -1, p.shape[1]).mean(0) if nv > 1 else p)
        finally:
            if self.threads and self.threads != prev:
                torch.set_num_threads(prev)
        return torch.cat(out).double().numpy()

    def predict_proba(self, frame_gray_uint8: np.ndarray, xs, ys, head_contrast_gray: float | None = None,
                      mirror=None) -> np.ndarray:
        """``(n, 3)`` probabilities (sperm, impurity, cluster) of the candidates at ``(xs, ys)``
        (px, sub-pixel allowed) of one gray frame with bright heads. Rows sum to 1.

        ``head_contrast_gray``: the video's typical head contrast in gray levels
        (``cal.spread_gray * cal.head_level_z``); used by two-channel (calibration-aware) weights,
        ignored by one-channel ones; None: estimated from this frame alone (slower, noisier).
        ``mirror``: candidates whose crops are mirrored at the frame border (:func:`raw_patches`)."""
        return self.predict_crops(extract_crops(frame_gray_uint8, xs, ys, self.crop_size, channels=self.channels,
                                                head_contrast_gray=head_contrast_gray, mirror=mirror))

    def predict(self, frame_gray_uint8: np.ndarray, xs, ys, head_contrast_gray: float | None = None) -> np.ndarray:
        """Most probable class per candidate (0 sperm, 1 impurity, 2 cluster)."""
        return self.predict_proba(frame_gray_uint8, xs, ys, head_contrast_gray).argmax(1)

    def __repr__(self) -> str:
        return (f"CandidateClassifier(arch={self.arch!r}, crop_size={self.crop_size}, channels={self.channels}, "
                f"tta={self.tta}, version={self.version!r})")
