"""Sliced YOLO detection (ultralytics) behind the HLDNBM enhancement.

All tiles of a chunk of frames go to ultralytics in **one** ``predict`` call (a list of arrays is
one batch), boxes are shifted back to frame coordinates and duplicates across tile borders are
fused (:func:`~spermtrack.detect.slicing.fuse_boxes`). SAHI does the same one tile at a time.

Colour order: ultralytics treats numpy arrays as BGR (OpenCV order); SAHI treats them as RGB.
Our frames are gray, replicated to 3 identical channels, so the order cannot matter, and a
model trained by ``spermtrack train detector`` saw exactly that. A BGR colour input is
converted to gray first, the same way training data is.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from spermtrack.errors import InputFileError
from spermtrack.detect.enhance import HLDNBM
from spermtrack.detect.slicing import fuse_boxes, tile_grid
from spermtrack.torchutil import choose_device, ultralytics_offline
from spermtrack.types import EDGE_OFFSET_PX, Detections


def load_yolo(weights: str | os.PathLike, task: str = "detect"):
    """Load an ultralytics model from a user ``.pt``, with clear errors.

    Raises:
        InputFileError: missing file, not an ultralytics checkpoint, or a model of another task
            (e.g. a segmentation model given to the detector).
    """
    ultralytics_offline()
    path = Path(weights)
    if not path.is_file():
        raise InputFileError(path, "weights file not found (train one with `spermtrack train detector`)")
    from ultralytics import YOLO

    try:
        model = YOLO(str(path))
    except Exception as err:  # noqa: BLE001 - torch / ultralytics raise many types for a bad file
        raise InputFileError(path, f"not an ultralytics weights file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:160] if str(err) else ''})") from None
    if model.task != task:
        raise InputFileError(path, f"is a {model.task!r} model; a {task!r} model is needed here")
    return model


class SlicedYoloDetector:
    """Detect heads with an ultralytics model on overlapping tiles.

    Args:
        weights: path of a ``.pt`` trained by ``spermtrack train detector`` (or any ultralytics
            detection model whose class 0 is a sperm head).
        tile_px: tile side. Smaller tiles upsample heads more (better recall on tiny heads) but
            cost more tiles per frame. ``0`` disables slicing (full frame only).
        overlap: tile overlap fraction (0.1-0.2); must exceed a head box / tile size.
        imgsz: model input size; default: ``tile_px`` rounded up to a multiple of 32.
        conf: confidence threshold.
        enhance: feed HLDNBM-enhanced frames (must match how the model was trained).
        full_frame: also run the model on the whole frame (catches objects larger than a tile).
        ios_threshold: intersection-over-smaller above which boxes from different tiles fuse.
        device: ``"cpu"``, ``"0"``, ``"cuda:0"``...; default: the first GPU when available
            (:func:`~spermtrack.torchutil.choose_device`).
        batch_frames: frames whose tiles go in one predict call.
    """

    def __init__(self, weights, *, tile_px: int = 320, overlap: float = 0.15, imgsz: int | None = None,
                 conf: float = 0.25, enhance: bool = True, full_frame: bool = False,
                 ios_threshold: float = 0.6, device: str | None = None, batch_frames: int = 8,
                 enhancer: HLDNBM | None = None):
        self.model = load_yolo(weights)
        self.tile_px = int(tile_px)
        self.overlap = float(overlap)
        base = self.tile_px if self.tile_px > 0 else 640
        self.imgsz = int(imgsz or int(np.ceil(base / 32) * 32))
        self.conf = float(conf)
        self.enhancer = (enhancer or HLDNBM()) if enhance else None
        self.full_frame = bool(full_frame) or self.tile_px <= 0
        self.ios_threshold = float(ios_threshold)
        self.device = choose_device(device, ultralytics=True)
        self.batch_frames = max(1, int(batch_frames))
        self.n_predict_calls = 0

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Gray (enhanced if asked) frame as 3 identical channels, the model's input."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.enhancer is not None:
            gray = self.enhancer(gray)
        return cv2.merge([gray, gray, gray])

    def detect(self, frames) -> list[Detections]:
        frames = list(frames) if not (isinstance(frames, np.ndarray) and frames.ndim == 2) else [frames]
        out: list[Detections] = []
        for start in range(0, len(frames), self.batch_frames):
            out.extend(self._detect_chunk(frames[start:start + self.batch_frames]))
        return out

    def _detect_chunk(self, frames: list[np.ndarray]) -> list[Detections]:
        images, owners, offsets = [], [], []
        for i, frame in enumerate(frames):
            img = self.prepare(frame)
            h, w = img.shape[:2]
            if self.tile_px > 0:
                for x0, y0, x1, y1 in tile_grid(h, w, self.tile_px, self.overlap):
                    images.append(img[y0:y1, x0:x1])
                    owners.append(i)
                    offsets.append((x0, y0))
            if self.full_frame:
                images.append(img)
                owners.append(i)
                offsets.append((0, 0))
        if not images:
            return []
        tile_imgsz = self.imgsz
        results = self.model.predict(images, imgsz=tile_imgsz, conf=self.conf, device=self.device,
                                     verbose=False)
        self.n_predict_calls += 1
        per_frame: list[list[np.ndarray]] = [[] for _ in frames]
        for res, i, (x0, y0) in zip(results, owners, offsets):
            b = res.boxes
            if b is None or len(b) == 0:
                continue
            # ultralytics boxes are in edge coordinates (as the YOLO labels it learnt from)
            xyxy = (b.xyxy.cpu().numpy().astype(np.float64) + np.array([x0, y0, x0, y0], np.float64)
                    - EDGE_OFFSET_PX)
            per_frame[i].append(np.c_[xyxy, b.conf.cpu().numpy(), b.cls.cpu().numpy()])
        out = []
        for rows in per_frame:
            if not rows:
                out.append(Detections.empty())
                continue
            a = np.vstack(rows)
            xyxy, conf, cls = fuse_boxes(a[:, :4], a[:, 4], a[:, 5].astype(np.int64), ios_threshold=self.ios_threshold)
            out.append(Detections(xyxy, conf, cls))
        return out


def collect_training_run(run_root: Path, out_weights: Path) -> dict[str, float]:
    """Copy the best weights of an ultralytics training run (``run_root/weights``) to
    ``out_weights`` and return the last epoch's validation metrics from ``results.csv``."""
    import shutil

    import pandas as pd

    weights = run_root / "weights"
    best = weights / "best.pt" if (weights / "best.pt").is_file() else weights / "last.pt"
    if not best.is_file():
        raise InputFileError(weights, "training produced no weights")
    out_weights.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(best, out_weights)
    results = run_root / "results.csv"
    if not results.is_file():
        return {}
    last = pd.read_csv(results).iloc[-1]
    return {k.strip(): float(v) for k, v in last.items() if "metrics" in k}
