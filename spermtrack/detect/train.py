"""Train a YOLO head detector (ultralytics) from VISEM-Tracking labels or ``spermtrack synth`` output.

The dataset is cut the way :class:`~spermtrack.detect.yolo.SlicedYoloDetector` slices at
inference (same tile grid, same HLDNBM enhancement when asked, gray replicated to 3 channels),
so the model sees at training exactly what it sees later. Full frames without enhancement are
linked, not copied. Optional offline augmentation re-renders tiles over new Laplace backgrounds
(:func:`~spermtrack.detect.enhance.rerender_background`). Training runs offline: a model YAML
(no pretrained weights) with the package's offline settings
(:func:`~spermtrack.torchutil.ultralytics_offline`, :data:`~spermtrack.torchutil.ULTRALYTICS_TRAIN_ARGS`:
``YOLO_OFFLINE=1``, ``workers=0``, ``amp=False``, ``plots=False``).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from spermtrack import __version__
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.geometry import centres_to_xyxy
from spermtrack.io.atomic import write_json_atomic, write_text_atomic
from spermtrack.io.visem import iter_video_frames, list_video_folders, read_visem_video
from spermtrack.detect.enhance import HLDNBM, rerender_background
from spermtrack.detect.slicing import tile_grid
from spermtrack.detect.yolo import collect_training_run
from spermtrack.torchutil import ULTRALYTICS_TRAIN_ARGS, choose_device, ultralytics_offline
from spermtrack.types import CLASS_NAMES, EDGE_OFFSET_PX


@dataclass(frozen=True)
class DetectorTrainConfig:
    """Parameters of ``spermtrack train detector``.

    Attributes:
        model: an ultralytics model YAML (``yolo11n.yaml``: trained from scratch) or a ``.pt`` to
            fine-tune.
        epochs, imgsz, batch: as in ultralytics; ``imgsz`` is the size each tile is resized to.
        tile: tile side in px (0 = full frames, no slicing); must match inference.
        overlap: tile overlap fraction.
        enhance: HLDNBM-enhance the frames (must match inference).
        frame_step: use every n-th annotated frame (neighbouring frames are near duplicates).
        min_visible: a box cut by a tile border is kept when at least this fraction of it lies
            inside the tile.
        augment_copies: extra copies of each tile re-rendered over a new Laplace background.
        device: ``"cpu"``, ``"0"``...; default the first GPU when available.
        seed: ultralytics seed and augmentation seed.
        hours: wall-clock training budget (ultralytics ``time``); when set it overrides
            ``epochs`` (ultralytics re-plans the epoch count after the first epoch).
    """

    model: str = "yolo11n.yaml"
    epochs: int = 30
    imgsz: int = 320
    batch: int = 16
    tile: int = 320
    overlap: float = 0.15
    enhance: bool = True
    frame_step: int = 5
    min_visible: float = 0.5
    augment_copies: int = 0
    device: str | None = None
    seed: int = 0
    hours: float | None = None


def build_yolo_dataset(data: str | Path, out: str | Path, cfg: DetectorTrainConfig) -> Path:
    """Write an ultralytics dataset (tiles + YOLO labels + ``data.yaml``); return the YAML path.

    Videos of the official (or folder-named) ``val`` split go to validation; when there is none,
    the last video is held out, or the last 20 % of frames of a single video.
    """
    out = Path(out)
    for sub in ("images", "labels"):
        # a rebuild with other tiles or enhancement must not mix with stale images, labels or
        # ultralytics' label caches of an earlier run (only our own sub-folders are removed)
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    folders = list_video_folders(data)
    videos = [read_visem_video(f) for f in folders]
    split_of = {v.video_id: ("val" if v.split == "val" else "train") for v in videos}
    if "val" not in split_of.values() and len(videos) > 1:
        split_of[videos[-1].video_id] = "val"
    enhancer = HLDNBM() if cfg.enhance else None
    rng = np.random.default_rng(cfg.seed)
    counts = {"train": 0, "val": 0}
    for v in videos:
        frames = v.annotated_frames[:: max(1, cfg.frame_step)]
        if not len(frames):
            continue
        single_split = len(videos) == 1
        for f, img in iter_video_frames(v, frames):
            split = split_of[v.video_id]
            if single_split:
                split = "val" if f >= frames[int(len(frames) * 0.8)] else "train"
            counts[split] += _write_frame_samples(out, split, v, f, img, cfg, enhancer, rng)
    if counts["train"] == 0 or counts["val"] == 0:
        raise InputFileError(data, f"too few annotated frames to train (train {counts['train']}, "
                             f"val {counts['val']} samples); lower --frame-step or add videos")
    yaml_path = out / "data.yaml"
    names = "\n".join(f"  {k}: {n}" for k, n in CLASS_NAMES.items())
    write_text_atomic(yaml_path, f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml_path


def _write_frame_samples(out, split, v, f, img, cfg, enhancer, rng) -> int:
    boxes = v.boxes[v.boxes.frame == f]
    xyxy = centres_to_xyxy(boxes[["x", "y"]].to_numpy(), boxes[["w", "h"]].to_numpy())
    cls = boxes.cls.to_numpy()
    stem = f"{v.video_id}_frame_{f}"
    h, w = img.shape
    if cfg.tile <= 0 and enhancer is None and (v.folder / "images" / f"{stem}.jpg").is_file():
        _link(v.folder / "images" / f"{stem}.jpg", out / "images" / split / f"{stem}.jpg")
        _write_labels(out / "labels" / split / f"{stem}.txt", xyxy, cls, 0, 0, w, h, cfg.min_visible)
        return 1
    src = enhancer(img) if enhancer is not None else img
    tiles = tile_grid(h, w, cfg.tile, cfg.overlap) if cfg.tile > 0 else np.array([[0, 0, w, h]])
    n = 0
    for t, (x0, y0, x1, y1) in enumerate(tiles):
        crop = src[y0:y1, x0:x1]
        variants = [crop]
        for _ in range(cfg.augment_copies if split == "train" else 0):
            raw = rerender_background(img[y0:y1, x0:x1], rng)
            variants.append(enhancer(raw) if enhancer is not None else raw)
        for a, im in enumerate(variants):
            name = f"{stem}_t{t}" + (f"_a{a}" if a else "")
            _write_image(out / "images" / split / f"{name}.png", im)
            _write_labels(out / "labels" / split / f"{name}.txt", xyxy, cls, x0, y0, x1 - x0, y1 - y0, cfg.min_visible)
            n += 1
    return n


def _write_image(path: Path, gray: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), gray):
        raise InputFileError(path, "could not be written")


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_labels(path: Path, xyxy, cls, x0, y0, tw, th, min_visible) -> None:
    """YOLO label lines for the boxes visible in a tile (clipped; enough of them visible), in the
    labels' edge coordinates (``xyxy`` comes in pixel-centre coordinates: :data:`EDGE_OFFSET_PX`)."""
    lines = []
    for (l, t, r, b), c in zip(np.asarray(xyxy, np.float64).reshape(-1, 4) + EDGE_OFFSET_PX, cls):
        area = max(r - l, 0) * max(b - t, 0)
        cl, ct = max(l, x0), max(t, y0)
        cr, cb = min(r, x0 + tw), min(b, y0 + th)
        if cr <= cl or cb <= ct or area <= 0 or (cr - cl) * (cb - ct) < min_visible * area:
            continue
        lines.append(f"{int(c)} {((cl + cr) / 2 - x0) / tw:.6f} {((ct + cb) / 2 - y0) / th:.6f} "
                     f"{(cr - cl) / tw:.6f} {(cb - ct) / th:.6f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def train_detector(data: str | Path, out: str | Path, cfg: DetectorTrainConfig | None = None) -> Path:
    """Build the tiled dataset under ``OUT/dataset``, train, and copy the best weights to
    ``OUT/detector.pt`` (plus ``OUT/detector.json``: config, dataset, metrics, versions)."""
    cfg = cfg or DetectorTrainConfig()
    if cfg.epochs < 1 or cfg.imgsz < 32 or cfg.batch < 1:
        raise ParameterError(f"epochs, imgsz, batch must be >= 1, 32, 1 (got {cfg.epochs}, {cfg.imgsz}, {cfg.batch})")
    out = Path(out).resolve()
    t0 = time.perf_counter()
    data_yaml = build_yolo_dataset(data, out / "dataset", cfg)
    ultralytics_offline(training=True)
    from ultralytics import YOLO

    device = choose_device(cfg.device, ultralytics=True)
    model = YOLO(cfg.model)
    model.train(data=str(data_yaml), epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, device=device,
                **ULTRALYTICS_TRAIN_ARGS, project=str(out), name="ultralytics",
                exist_ok=True, seed=cfg.seed, verbose=False, fliplr=0.5, flipud=0.5, mosaic=1.0,
                hsv_h=0.0, hsv_s=0.0, **({"time": cfg.hours} if cfg.hours else {}))
    final = out / "detector.pt"
    metrics = collect_training_run(out / "ultralytics", final)
    write_json_atomic(out / "detector.json", {
        "weights": str(final), "config": asdict(cfg), "device": device, "data": str(Path(data).resolve()),
        "dataset_yaml": str(data_yaml), "metrics": metrics, "train_seconds": round(time.perf_counter() - t0, 1),
        "spermtrack_version": __version__,
    })
    return final
