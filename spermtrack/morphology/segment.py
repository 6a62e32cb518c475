"""Segmenters: one interface, ``segment(crops) -> [Segmentation]`` (head, midpiece, tail + quality).

- ``classical`` (default, no weights): :class:`spermtrack.morphology.classical.ClassicalSegmenter`.
- ``yolo-seg`` (EXPERIMENTAL): an ultralytics segmentation model (``.pt``) trained with
  ``spermtrack train seg`` on crops cut the same way (classes ``0 head, 1 midpiece, 2 tail``).
  Not validated: in ``benchmarks/results/morphology.md`` a briefly trained model measures 0 of
  90 crops. An ultralytics ``.pt`` is a pickle that can run code: load only weights you trust.
- ``sam`` (EXPERIMENTAL): Segment Anything, only with a user checkpoint and the
  ``segment-anything`` package; SAM gives the head (point prompt at the anchor), the midpiece and
  tail are traced by the classical ridge tracer. Never benchmarked.

Choosing an experimental segmenter logs a one-line warning (:data:`EXPERIMENTAL_NOTE`, logger
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
#: Segmenters offered but not validated by a benchmark (no measured, non-zero result).
EXPERIMENTAL = ("yolo-seg", "sam")
EXPERIMENTAL_NOTE = "experimental: not validated (see benchmarks/results/morphology.md)"

log = logging.getLogger(__name__)


def get_segmenter(name: str = "classical", *, weights: str | os.PathLike | None = None, um_per_px: float = 0.5,
                  device: str | None = None):
    """Build a segmenter by name.

    ``yolo-seg`` and ``sam`` are :data:`EXPERIMENTAL`: choosing one logs the one-line warning
    ``segmenter NAME: experimental: not validated (see benchmarks/results/morphology.md)`` and
    sets it as the segmenter's ``experimental`` attribute (``classical`` has none:
    ``getattr(seg, "experimental", None)``).

    Raises:
        ParameterError: unknown name.
        SpermtrackError / InputFileError: ``yolo-seg`` or ``sam`` without usable weights, or
            ``sam`` without the ``segment-anything`` package.
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
    seg.experimental = f"segmenter {name}: {EXPERIMENTAL_NOTE}"
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


class SamSegmenter:
    """Segment Anything for the head (point prompt at the anchor) + the classical tail tracer.

    Raises:
        SpermtrackError: no checkpoint given, or the ``segment-anything`` package is missing.
        InputFileError: the checkpoint file does not exist or cannot be loaded.
    """

    name = "sam"
    experimental: str | None = EXPERIMENTAL_NOTE

    def __init__(self, checkpoint, *, um_per_px: float = 0.5, device: str | None = None, model_type: str | None = None):
        if checkpoint is None:
            raise SpermtrackError("--segmenter sam needs --weights SAM_CHECKPOINT.pth (a Segment Anything "
                                  "checkpoint, e.g. sam_vit_b_01ec64.pth; none is bundled or downloaded)")
        path = Path(checkpoint)
        if not path.is_file():
            raise InputFileError(path, "Segment Anything checkpoint not found")
        try:
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError:
            raise SpermtrackError("--segmenter sam needs the 'segment-anything' package "
                                  "(pip install segment-anything); it is not a spermtrack dependency") from None
        if model_type is None:
            stem = path.name.lower()
            model_type = "vit_h" if "vit_h" in stem else "vit_l" if "vit_l" in stem else "vit_b"
        try:
            sam = sam_model_registry[model_type](checkpoint=str(path))
        except Exception as err:  # noqa: BLE001 - torch raises many types for a bad checkpoint
            raise InputFileError(path, f"not a Segment Anything {model_type} checkpoint ({type(err).__name__})") from None
        from spermtrack.torchutil import choose_device

        sam.to(choose_device(device))
        self.predictor = SamPredictor(sam)
        from spermtrack.morphology.classical import ClassicalSegmenter

        self.tracer = ClassicalSegmenter(um_per_px=um_per_px)
        self.um_per_px = float(um_per_px)

    def segment(self, crops: np.ndarray, anchors: np.ndarray | None = None) -> list[Segmentation]:
        crops, anchors = as_crop_stack(crops, anchors)
        n, h, w = crops.shape
        out = []
        for c, a in zip(crops, anchors):
            self.predictor.set_image(cv2.merge([c, c, c]))
            masks, scores, _ = self.predictor.predict(point_coords=np.array([a], np.float32),
                                                      point_labels=np.array([1]), multimask_output=True)
            # the smallest confident mask is the head (SAM's larger ones take the whole cell)
            order = np.argsort([m.sum() for m in masks])
            pick = next((i for i in order if scores[i] >= 0.5 and masks[i].sum() >= 4), None)
            traced = self.tracer.segment_one(c, a)
            if pick is None:
                out.append(empty_segmentation((h, w), "SAM found no head"))
                continue
            head = _nearest_component(masks[pick], a)
            traced.head, traced.head_contour = head, None
            traced.midpiece &= ~head
            traced.tail &= ~head
            traced.quality = float(scores[pick])
            out.append(traced)
        return out
