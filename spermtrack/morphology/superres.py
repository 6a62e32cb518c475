"""x2 super-resolution of morphology crops (issue 15, item 4): a small EDSR-like network trained
on phantom pairs, and the geometry that puts its output through the morphology chain.

**Network** (:class:`EDSRLite`): head conv -> a few residual blocks (conv-ReLU-conv, residual
scale 0.1) -> conv -> pixel shuffle x2, added to a bicubic x2 of the input (the net learns the
residual over plain interpolation). ~85 k parameters (32 channels, 4 blocks); gray ``uint8`` in, gray ``uint8`` out.

**Geometry** (pixel-centre convention, as in :mod:`spermtrack.morphology.crops`): low-res pixel
``c`` covers high-res pixels ``2c`` and ``2c + 1``, so a point at low-res ``x`` is at high-res
``2 x + 0.5``. Pixel shuffle, ``cv2.resize(..., fx=2, fy=2)`` and the training pairs' area
downsampling all follow it. Lengths double; the scale halves (``um_per_px / 2``).

**Training pairs** (:func:`make_pairs`): the phantom (:func:`spermtrack.synth.simulate_cells`,
``look="visem"``) is simulated directly at half the scale, ``um_per_px = 0.25`` (the cells' motion
and shapes are simulated in um, so this is the same kind of scene drawn with twice the pixels per
um). High-res target: the noise-free render times the frame's gain
(:func:`spermtrack.synth.render.render_noise_free`). Low-res input: that image area-averaged 2 x 2
(what a sensor with pixels twice as large integrates), then the phantom's own noise model at the
low-res level (Poisson-like ``noise_gain * I + read_noise**2``), rounded to ``uint8`` and JPEG
encoded at a random quality 70-95 (block artefacts standing in for the real videos' H.264 and the
frames' JPEG q95). Patches are cut around cell heads (and some at random).

**In the chain** (:func:`upscale_cropset`, :func:`morphology_from_frames_sr`): the crops and tail
windows that the 1x chain routed are upscaled, their table moved to the virtual 2x frame
(``x, y, anchor -> 2 v + 0.5``, separations x2), and segmented and measured at ``um_per_px / 2``.
Crop selection is the 1x chain's, so the same frames are measured with and without SR.

Reproduce the benchmark's weights: ``python benchmarks/morphology_sr.py`` (trains with the fixed
seed when the cached weights are absent).
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

SCALE = 2


def _torch():
    import torch

    return torch


def build_model(channels: int = 32, blocks: int = 4):
    """The x2 EDSR-like network (``torch.nn.Module``; input and output ``(N, 1, H, W)`` in [0, 1])."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class ResBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c1 = nn.Conv2d(c, c, 3, padding=1)
            self.c2 = nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return x + 0.1 * self.c2(F.relu(self.c1(x)))

    class EDSRLite(nn.Module):
        def __init__(self, c, b):
            super().__init__()
            self.config = {"channels": int(c), "blocks": int(b)}
            self.head = nn.Conv2d(1, c, 3, padding=1)
            self.body = nn.Sequential(*[ResBlock(c) for _ in range(b)])
            self.tail = nn.Conv2d(c, c, 3, padding=1)
            self.up = nn.Conv2d(c, SCALE * SCALE, 3, padding=1)
            self.shuffle = nn.PixelShuffle(SCALE)
            # start as plain bicubic: the residual branch's last conv is zero
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

        def forward(self, x):
            base = F.interpolate(x, scale_factor=SCALE, mode="bicubic", align_corners=False)
            h = self.head(x)
            h = h + self.tail(self.body(h))
            return base + self.shuffle(self.up(h))

    return EDSRLite(channels, blocks)


# ------------------------------------------------------------------------------------------------
# training pairs


def degrade(hr: np.ndarray, rng: np.random.Generator, *, noise_gain: float, read_noise: float,
            jpeg_quality: int | None) -> np.ndarray:
    """Low-res ``uint8`` of a high-res float image: 2 x 2 area average, noise, rounding, JPEG."""
    h, w = hr.shape
    lr = cv2.resize(hr.astype(np.float32), (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA)
    np.maximum(lr, 0.0, out=lr)
    sd = np.sqrt(lr * np.float32(noise_gain) + np.float32(read_noise ** 2))
    lr = lr + sd * rng.standard_normal(lr.shape).astype(np.float32)
    lr = np.clip(np.rint(lr), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", lr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        lr = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return lr


def make_pairs(n_scenes: int = 8, frames_per_scene: int = 6, patch: int = 48, patches_per_frame: int = 24,
               seed: int = 0, width_hr: int = 768, height_hr: int = 576,
               target_blur_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Phantom training pairs: ``(lr (N, patch, patch) uint8, hr (N, 2 patch, 2 patch) uint8)``.

    Scenes at ``um_per_px = 0.25`` (``look="visem"``, difficulty cycling easy / medium / hard);
    see the module docstring for the degradation. 3 of 4 patches are centred (with jitter) on a
    cell head of the frame, the rest at random.

    ``target_blur_px``: Gaussian sigma (high-res px) applied to the high-res render before both
    the target and the low-res input are taken from it. The visem look defines some of its blurs
    in px (cell defocus, glow, tail blur), calibrated at 0.5 um/px; rendered at 0.25 um/px they
    are half as wide in um, so the plain high-res render is sharper than the same optics would
    give. ``0.6 * sqrt(3) ~ 1.0`` restores the tail blur's width in um (the other px blurs
    approximately).
    """
    from spermtrack.synth import simulate_cells
    from spermtrack.synth.render import render_noise_free

    rng = np.random.default_rng(seed)
    lrs, hrs = [], []
    PH = int(patch) * SCALE
    diffs = ("easy", "medium", "hard")
    for k in range(n_scenes):
        sc = simulate_cells(seconds=max(2, frames_per_scene) * 0.1, fps=10.0, cells=int(rng.integers(15, 40)),
                            um_per_px=0.25, width=width_hr, height=height_hr, seed=int(seed * 1000 + k),
                            difficulty=diffs[k % 3], look="visem")
        for i in range(min(frames_per_scene, sc.n_frames)):
            hr = render_noise_free(sc, i) * np.float32(sc.gain[i])
            if target_blur_px > 0:
                hr = cv2.GaussianBlur(hr, (0, 0), float(target_blur_px))
            hr = np.clip(hr, 0.0, 255.0)
            # crop at even offsets, so the LR grid is aligned with the HR grid
            boxes = sc.boxes[sc.boxes.frame == i]
            for _ in range(patches_per_frame):
                if len(boxes) and rng.random() < 0.75:
                    b = boxes.iloc[int(rng.integers(len(boxes)))]
                    cx, cy = b.x + rng.normal(0, 12), b.y + rng.normal(0, 12)
                else:
                    cx, cy = rng.uniform(0, width_hr), rng.uniform(0, height_hr)
                x0 = int(np.clip(cx - PH / 2, 0, width_hr - PH)) // 2 * 2
                y0 = int(np.clip(cy - PH / 2, 0, height_hr - PH)) // 2 * 2
                tile = hr[y0:y0 + PH, x0:x0 + PH]
                q = int(rng.integers(70, 96)) if rng.random() < 0.8 else None
                lr = degrade(tile, rng, noise_gain=sc.preset.noise_gain, read_noise=sc.preset.read_noise,
                             jpeg_quality=q)
                lrs.append(lr)
                hrs.append(np.clip(np.rint(tile), 0, 255).astype(np.uint8))
    return np.stack(lrs), np.stack(hrs)


# ------------------------------------------------------------------------------------------------
# training, save / load


def train(lr: np.ndarray, hr: np.ndarray, *, steps: int = 600, batch: int = 16, lr_rate: float = 1e-3,
          seed: int = 0, channels: int = 32, blocks: int = 4, time_limit_s: float | None = None,
          log=None):
    """Train the network on ``uint8`` pairs with L1 loss and Adam (fixed seed, one thread is
    the caller's choice). Returns ``(model, losses)``; ``losses`` is the per-step L1 (0-1 scale).
    Stops early at ``time_limit_s``."""
    torch = _torch()
    torch.manual_seed(seed)
    g = np.random.default_rng(seed)
    model = build_model(channels, blocks)
    opt = torch.optim.Adam(model.parameters(), lr=lr_rate)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    X = torch.from_numpy(lr.astype(np.float32) / 255.0)[:, None]
    Y = torch.from_numpy(hr.astype(np.float32) / 255.0)[:, None]
    losses = []
    t0 = time.perf_counter()
    model.train()
    for step in range(int(steps)):
        idx = torch.from_numpy(g.integers(0, len(X), size=batch))
        x, y = X[idx], Y[idx]
        # random flips / transposes (the phantom's cells point every way anyway)
        if g.random() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        if g.random() < 0.5:
            x, y = x.flip(-2), y.flip(-2)
        if g.random() < 0.5:
            x, y = x.transpose(-1, -2), y.transpose(-1, -2)
        loss = torch.nn.functional.l1_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log(f"step {step}: L1 {np.mean(losses[-50:]):.5f} ({time.perf_counter() - t0:.0f} s)")
        if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
            break
    model.eval()
    return model, losses


def save(model, path) -> Path:
    """Weights and config as a plain ``torch.save`` dict (tensors and ints only)."""
    torch = _torch()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": dict(model.config), "state_dict": model.state_dict()}, path)
    return path


def load(path):
    """The network saved by :func:`save`, loaded with ``weights_only=True``."""
    torch = _torch()
    d = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = build_model(**{k: int(v) for k, v in d["config"].items()})
    model.load_state_dict(d["state_dict"])
    model.eval()
    return model


# ------------------------------------------------------------------------------------------------
# inference


def upscale(crop: np.ndarray, model, *, tile: int | None = None) -> np.ndarray:
    """x2 of one gray ``uint8`` image (crop or tail window): ``(H, W) -> (2H, 2W)`` ``uint8``.

    ``model``: the network, or ``"bicubic"`` for plain bicubic interpolation (same geometry)."""
    img = np.asarray(crop)
    if img.ndim != 2:
        raise ValueError(f"upscale takes one gray image (H, W), got shape {img.shape}")
    if isinstance(model, str):
        if model != "bicubic":
            raise ValueError(f"unknown interpolation {model!r} (a network or 'bicubic')")
        out = cv2.resize(img.astype(np.float32), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    torch = _torch()
    with torch.no_grad():
        x = torch.from_numpy(img.astype(np.float32) / 255.0)[None, None]
        y = model(x)[0, 0].numpy()
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def upscale_window(win: np.ndarray, model) -> np.ndarray:
    """:func:`upscale` of a tail window, keeping its "beyond the frame" pixels (value
    ``crops.OUTSIDE``) outside: they are filled with the nearest inside value before upscaling
    (no dark edge is invented) and set back to ``OUTSIDE`` (nearest-neighbour mask) after."""
    from spermtrack.morphology.crops import OUTSIDE

    out_mask = win == OUTSIDE
    src = win
    if out_mask.any() and not out_mask.all():
        # fill outside pixels with the nearest inside value
        _, lab = cv2.distanceTransformWithLabels(out_mask.astype(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
        inside = ~out_mask
        ys, xs = np.nonzero(inside)
        lut = np.zeros(lab.max() + 1, np.uint8)
        lut[lab[inside]] = win[ys, xs]
        src = np.where(out_mask, lut[lab], win).astype(np.uint8)
    up = upscale(src, model)
    np.maximum(up, 1, out=up)
    if out_mask.any():
        m2 = cv2.resize(out_mask.astype(np.uint8), (up.shape[1], up.shape[0]), interpolation=cv2.INTER_NEAREST)
        up[m2.astype(bool)] = OUTSIDE
    return up


def to_hr(v):
    """A low-res pixel-centre coordinate at high res: ``2 v + 0.5``."""
    return SCALE * np.asarray(v, np.float64) + 0.5 * (SCALE - 1)


def upscale_cropset(crops, model):
    """The :class:`~spermtrack.morphology.crops.CropSet` at x2: images and tail windows upscaled,
    the table moved to the virtual 2x frame (``x, y, anchor_u, anchor_v -> 2 v + 0.5``,
    ``separation_px`` x2), the params' size doubled and scale halved, window origin doubled
    (crop pixel ``u`` is window pixel ``u + ou`` at 1x, so ``2u + 0.5`` is ``2u + 0.5 + 2 ou``)."""
    from spermtrack.morphology.crops import CropSet

    p = crops.params
    w, h = p.wh
    images = (np.stack([upscale(c, model) for c in crops.images]) if len(crops)
              else np.zeros((0, SCALE * h, SCALE * w), np.uint8))
    t = crops.table.copy()
    for c in ("x", "y", "anchor_u", "anchor_v"):
        t[c] = to_hr(t[c].to_numpy(np.float64))
    t["separation_px"] = t["separation_px"] * SCALE
    p2 = replace(p, size=(SCALE * w, SCALE * h), um_per_px=None if p.um_per_px is None else p.um_per_px / SCALE,
                 border_px=p.border_px * SCALE, min_separation_px=p.min_separation_px * SCALE,
                 min_motion_px=p.min_motion_px * SCALE, sharpness_radius_px=p.sharpness_radius_px * SCALE)
    windows = None
    if crops.windows is not None:
        windows = (np.stack([upscale_window(wi, model) for wi in crops.windows]) if len(crops)
                   else np.zeros((0, SCALE * crops.windows.shape[1], SCALE * crops.windows.shape[2]), np.uint8))
    ou, ov = crops.window_origin
    return CropSet(images, t, p2, windows, (SCALE * ou, SCALE * ov))


def morphology_from_frames_sr(frames, tracks, width: int, height: int, um_per_px: float, model, *,
                              segmenter="classical", crop_params=None, track_ids=None, min_quality=None):
    """:func:`spermtrack.morphology.morphology_from_frames` with x2 upscaling (network or
    ``"bicubic"``) between crop routing (at 1x) and segmentation (at ``um_per_px / 2``)."""
    from spermtrack.morphology.chain import MIN_QUALITY, MorphologyChain, with_scale

    mq = MIN_QUALITY if min_quality is None else float(min_quality)
    chain1 = MorphologyChain(tracks, um_per_px, track_ids=track_ids, segmenter="classical",
                             crop_params=crop_params, min_quality=mq)
    from spermtrack.morphology.crops import route_crops

    crops = route_crops(frames, chain1.rows, width, height, chain1.crop_params)
    return finish_sr(crops, tracks, um_per_px, model, segmenter=segmenter, track_ids=track_ids, min_quality=mq,
                     crop_params=with_scale(crop_params, um_per_px))


def finish_sr(crops, tracks, um_per_px: float, model, *, segmenter="classical", track_ids=None,
              min_quality=None, crop_params=None):
    """Upscale a 1x crop set and finish the chain at ``um_per_px / 2`` (a ``MorphologyResult``
    in the virtual 2x frame; lengths in um are comparable with the 1x run's)."""
    from spermtrack.morphology.chain import MIN_QUALITY, MorphologyChain

    mq = MIN_QUALITY if min_quality is None else float(min_quality)
    crops2 = upscale_cropset(crops, model)
    chain2 = MorphologyChain(tracks, um_per_px / SCALE, track_ids=track_ids, segmenter=segmenter,
                             crop_params=crops2.params, min_quality=mq)
    return chain2.finish(crops2)


def state_bytes(model) -> int:
    """Size of the saved weights (bytes)."""
    torch = _torch()
    buf = io.BytesIO()
    torch.save({"config": dict(model.config), "state_dict": model.state_dict()}, buf)
    return buf.getbuffer().nbytes
