"""``spermtrack train seg``: an ultralytics segmentation model (head, midpiece, tail) on crops.

Dataset: from ``spermtrack synth`` output, every stored outline (``gt/masks/masks.npz``, one row
per object and sampled frame) of a free sperm whose head is away from the border gives one crop,
cut exactly as at inference (:func:`spermtrack.morphology.crops.cut_crop`: head at the anchor,
+x toward the head's front, plus a random yaw of up to ``jitter_deg`` as the direction of
motion differs from the head axis), and the outlines mapped into the crop become YOLO polygon
labels ``cls x1 y1 ... xn yn`` (0 head, 1 midpiece, 2 tail; the 1-px tail and the midpiece are
labelled 3 px wide so the model can learn them at crop resolution). Only the centred cell is
labelled: the model learns to segment the cell at the anchor, not its neighbours. A folder or
YAML that already is an ultralytics segmentation dataset (user polygons) is trained as it is.

Training runs offline from a model YAML (``yolo11n-seg.yaml``, no pretrained weights):
``YOLO_OFFLINE=1``, ``workers=0``, ``amp=False``, ``plots=False``, ``data=`` an absolute path.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from spermtrack import __version__
from spermtrack.errors import InputFileError, ParameterError
from spermtrack.io.atomic import write_json_atomic, write_text_atomic
from spermtrack.morphology.crops import CropParams, cut_crop
from spermtrack.morphology.segment import SEG_CLASSES
from spermtrack.detect.yolo import collect_training_run


@dataclass(frozen=True)
class SegTrainConfig:
    """Parameters of ``spermtrack train seg`` (crop geometry must match inference)."""

    model: str = "yolo11n-seg.yaml"
    epochs: int = 30
    imgsz: int = 64
    batch: int = 32
    crop_size: int = 64
    anchor: float = 0.5
    jitter_deg: float = 20.0
    max_crops: int = 5000
    label_width_px: int = 3
    device: str | None = None
    seed: int = 0


def _crop_labels(masks: dict, row: int, angle: float, params: CropParams, label_width: int) -> list[str]:
    """YOLO polygon lines of one outline row, mapped into the crop."""
    from spermtrack.synth.masks import rasterize

    w, h = params.wh
    au, av = params.anchor_uv
    c = masks["head_xy"][row].mean(axis=0)
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])

    def to_crop(p):
        return (np.asarray(p, np.float64) - c) @ rot.T + (au, av)

    one = {"head_xy": to_crop(masks["head_xy"][row])[None], "midpiece_xy": to_crop(masks["midpiece_xy"][row])[None],
           "tail_xy": to_crop(masks["tail_xy"][row])[None],
           "midpiece_width_px": np.array([max(float(masks["midpiece_width_px"][row]), label_width)]),
           "tail_width_px": np.array([float(label_width)]), "width": w, "height": h}
    return _mask_lines(rasterize(one, 0, shape=(h, w)), w, h)


def build_seg_dataset(data: str | Path, out: str | Path, cfg: SegTrainConfig | None = None) -> Path:
    """Write crops + polygon labels + ``data.yaml`` under ``out``; return the YAML's absolute path."""
    from spermtrack.io.visem import iter_video_frames, list_video_folders, read_visem_video
    from spermtrack.synth.masks import load_masks

    cfg = cfg or SegTrainConfig()
    out = Path(out).resolve()
    params = CropParams(size=cfg.crop_size, anchor=cfg.anchor).validate()
    folders = [f for f in list_video_folders(data) if (f / "gt" / "masks" / "masks.npz").is_file()]
    if not folders:
        raise InputFileError(data, "no video folder with gt/masks/masks.npz (make one with `spermtrack synth`, "
                                   "or pass an ultralytics segmentation dataset YAML)")
    rng = np.random.default_rng(cfg.seed)
    counts = {"train": 0, "val": 0}
    per_video = max(1, cfg.max_crops // len(folders))
    border = 16.0
    for k, folder in enumerate(folders):
        v = read_visem_video(folder)
        m = load_masks(folder)
        ok = m["member"] == -1
        cen = m["head_xy"].mean(axis=1)
        W, H = int(m["width"]), int(m["height"])
        ok &= (cen[:, 0] > border) & (cen[:, 0] < W - 1 - border) & (cen[:, 1] > border) & (cen[:, 1] < H - 1 - border)
        rows = np.flatnonzero(ok)
        if len(rows) > per_video:
            rows = np.sort(rng.choice(rows, per_video, replace=False))
        by_frame: dict[int, list[int]] = {}
        for r in rows:
            by_frame.setdefault(int(m["frame"][r]), []).append(int(r))
        for f, gray in iter_video_frames(v, sorted(by_frame)):
            for r in by_frame.get(int(f), []):
                if len(folders) > 1:
                    split = "val" if k == len(folders) - 1 else "train"
                else:
                    split = "val" if rng.random() < 0.2 else "train"
                c = m["head_xy"][r].mean(axis=0)
                fwd = c - m["midpiece_xy"][r][0]
                angle = float(np.arctan2(fwd[1], fwd[0]) + np.radians(rng.uniform(-cfg.jitter_deg, cfg.jitter_deg)))
                crop = cut_crop(gray, float(c[0]), float(c[1]), angle, params)
                lines = _crop_labels(m, r, angle, params, cfg.label_width_px)
                stem = f"{v.video_id}_f{f}_r{r}"
                (out / "images" / split).mkdir(parents=True, exist_ok=True)
                (out / "labels" / split).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out / "images" / split / f"{stem}.png"), crop)
                (out / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
                counts[split] += 1
    if counts["train"] == 0 or counts["val"] == 0:
        raise InputFileError(data, f"too few crops to train (train {counts['train']}, val {counts['val']}); "
                                   f"synthesize more cells or frames")
    names = "\n".join(f"  {k}: {n}" for k, n in SEG_CLASSES.items())
    yaml_path = out / "data.yaml"
    write_text_atomic(yaml_path, f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml_path


def train_seg(data: str | Path, out_weights: str | Path, cfg: SegTrainConfig | None = None) -> Path:
    """Build the crop dataset (or use a user dataset YAML), train, copy the best weights to ``out_weights``.

    Writes ``out_weights`` (``.pt``) and ``out_weights`` with ``.json`` (config, metrics,
    versions); the ultralytics run and the dataset go to ``<out_weights stem>_run/``.
    """
    cfg = cfg or SegTrainConfig()
    if cfg.epochs < 1 or cfg.imgsz < 32 or cfg.batch < 1:
        raise ParameterError(f"epochs, imgsz, batch must be >= 1, 32, 1 (got {cfg.epochs}, {cfg.imgsz}, {cfg.batch})")
    out_weights = Path(out_weights).resolve()
    if out_weights.suffix != ".pt":
        raise ParameterError(f"--out {out_weights} must end in .pt")
    work = out_weights.with_name(out_weights.stem + "_run")
    t0 = time.perf_counter()
    data = Path(data)
    if data.suffix in (".yaml", ".yml") and data.is_file():
        data_yaml = data.resolve()
    elif (data / "data.yaml").is_file() and (data / "images").is_dir():
        data_yaml = (data / "data.yaml").resolve()
    else:
        data_yaml = build_seg_dataset(data, work / "dataset", cfg)
    from spermtrack.torchutil import ULTRALYTICS_TRAIN_ARGS, ultralytics_offline

    ultralytics_offline(training=True)
    from ultralytics import YOLO

    from spermtrack.torchutil import choose_device

    device = choose_device(cfg.device, ultralytics=True)
    model = YOLO(cfg.model)
    # no left-right flip, rotation, translation or mosaic: the crop convention (head at the
    # anchor, facing +x) is what tells the model which cell to segment
    model.train(data=str(data_yaml), epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch, device=device,
                **ULTRALYTICS_TRAIN_ARGS, project=str(work), name="ultralytics", exist_ok=True,
                seed=cfg.seed, verbose=False, fliplr=0.0, flipud=0.5, mosaic=0.0, translate=0.0, scale=0.1,
                degrees=0.0, hsv_h=0.0, hsv_s=0.0, val=True)
    metrics = collect_training_run(work / "ultralytics", out_weights)
    write_json_atomic(out_weights.with_suffix(".json"), {
        "weights": str(out_weights), "config": asdict(cfg), "device": device, "data": str(data.resolve()),
        "dataset_yaml": str(data_yaml), "classes": SEG_CLASSES, "metrics": metrics,
        "train_seconds": round(time.perf_counter() - t0, 1), "spermtrack_version": __version__,
    })
    return out_weights


# ------------------------------------------------------------------------------------------------
# real truth cells (tests/data/morph_truth) as training crops


def rasterize_parts(head_polygon, midpiece_line=None, tail_line=None, *, shape: tuple[int, int],
                    label_width: float = 3.0, supersample: int = 4) -> dict[str, np.ndarray]:
    """Disjoint ``uint8`` (0/1) masks ``{"head", "midpiece", "tail"}`` of one annotated cell.

    Coordinates are px with pixel centres at integers (pixel ``(r, c)`` covers ``[c - 0.5, c + 0.5]``
    x ``[r - 0.5, r + 0.5]``). The head polygon is filled and the midpiece / tail polylines are drawn
    ``label_width`` px wide, each at ``supersample`` x; a pixel is set when at least half of it is
    covered (so a mask's area matches the outline's area). The midpiece excludes the head, the tail
    excludes both. ``midpiece_line`` / ``tail_line`` may be None (not annotated).
    """
    h, w = shape
    ss = max(int(supersample), 1)
    shift = 4

    def to_cv(a):
        u = (np.asarray(a, np.float64) + 0.5) * ss - 0.5
        return np.round(u * (1 << shift)).astype(np.int32)

    def reduce(big):
        if ss == 1:
            return (big > 0).astype(np.uint8)
        cov = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        return (cov >= 128).astype(np.uint8)

    out = {}
    big = np.zeros((h * ss, w * ss), np.uint8)
    poly = np.asarray(head_polygon, np.float64)
    if len(poly) >= 3:
        if ss > 1:  # a fill sets every pixel the edge touches: pull the edge in (as the phantom's masks)
            from spermtrack.synth.morph import FILL_INSET, inset_polygon

            poly = inset_polygon(poly, FILL_INSET / ss)
        cv2.fillPoly(big, [to_cv(poly)], 255, cv2.LINE_8, shift)
    out["head"] = reduce(big)
    for name, line in (("midpiece", midpiece_line), ("tail", tail_line)):
        big[:] = 0
        if line is not None and len(line) >= 2:
            cv2.polylines(big, [to_cv(line)], False, 255, max(1, int(round(label_width * ss))), cv2.LINE_8, shift)
        out[name] = reduce(big)
    out["midpiece"] &= 1 - out["head"]
    out["tail"] &= 1 - (out["head"] | out["midpiece"])
    return out


def _mask_lines(layers: dict[str, np.ndarray], w: int, h: int) -> list[str]:
    """YOLO polygon label lines (``cls x1 y1 ...``, normalised) of the masks' outer contours."""
    lines = []
    for cls, name in SEG_CLASSES.items():
        cs, _ = cv2.findContours(layers[name].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for cnt in cs:
            pts = cnt.reshape(-1, 2).astype(np.float64)
            if len(pts) < 3 or cv2.contourArea(cnt) < 1.0:
                continue
            lines.append(f"{cls} " + " ".join(f"{x / w:.5f} {y / h:.5f}" for x, y in pts))
    return lines


def truth_cell_crop(gray: np.ndarray, cell: dict, params: CropParams, *, yaw_deg: float = 0.0,
                    shift_px: tuple[float, float] = (0.0, 0.0), label_width: float = 3.0):
    """One training crop of a real truth cell (``tests/data/morph_truth/cells.json`` record, its
    geometry in the coordinates of its stored crop box): cut from the source frame ``gray`` as at
    inference (:func:`cut_crop`: head centre at the anchor, +x toward the head's front, turned by
    ``yaw_deg``, the centre moved by ``shift_px``), and the masks of the truth outline / polylines
    mapped into the crop. Returns ``(crop, layers)``."""
    g = cell["geometry"]
    off = np.array([cell["crop"]["x0"], cell["crop"]["y0"]], np.float64)
    poly = np.asarray(g["head"]["polygon"], np.float64)[:-1] + off
    base, front = np.asarray(g["head"]["base"], float) + off, np.asarray(g["head"]["front"], float) + off
    mid = (np.asarray(g["midpiece"]["polyline"], float) + off) if g.get("midpiece") else None
    tail = (np.asarray(g["tail"]["polyline"], float) + off) if g.get("tail") else None
    c = poly.mean(axis=0) + np.asarray(shift_px, float)
    fwd = front - base
    angle = float(np.arctan2(fwd[1], fwd[0]) + np.radians(yaw_deg))
    crop = cut_crop(gray, float(c[0]), float(c[1]), angle, params)
    au, av = params.anchor_uv
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])

    def to_crop(p):
        return None if p is None else (np.asarray(p, np.float64) - c) @ rot.T + (au, av)

    w, h = params.wh
    layers = rasterize_parts(to_crop(poly), to_crop(mid), to_crop(tail), shape=(h, w), label_width=label_width)
    return crop, layers


def add_truth_crops(dataset_yaml: str | Path, cells: list[dict], frames: dict, cfg: SegTrainConfig | None = None,
                    *, copies: int = 16, max_shift_px: float = 1.0, split: str = "train") -> int:
    """Add ``copies`` crops of each real truth cell (random yaw up to ``cfg.jitter_deg``, random
    centre shift up to ``max_shift_px``; the first copy unturned) with their polygon labels to the
    ``split`` of an ultralytics dataset written by :func:`build_seg_dataset`. ``frames`` maps
    ``(source name, frame)`` to the grey frame. Returns the number of crops written."""
    cfg = cfg or SegTrainConfig()
    root = Path(dataset_yaml).resolve().parent
    params = CropParams(size=cfg.crop_size, anchor=cfg.anchor).validate()
    w, h = params.wh
    rng = np.random.default_rng(cfg.seed + 1)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    n = 0
    for cell in cells:
        gray = frames[(cell["source"]["name"], cell["source"]["frame"])]
        for k in range(copies):
            yaw = 0.0 if k == 0 else float(rng.uniform(-cfg.jitter_deg, cfg.jitter_deg))
            shift = (0.0, 0.0) if k == 0 else tuple(rng.uniform(-max_shift_px, max_shift_px, 2))
            crop, layers = truth_cell_crop(gray, cell, params, yaw_deg=yaw, shift_px=shift,
                                           label_width=cfg.label_width_px)
            stem = f"real_{cell['id']}_{k:02d}"
            cv2.imwrite(str(root / "images" / split / f"{stem}.png"), crop)
            lines = _mask_lines(layers, w, h)
            (root / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            n += 1
    return n
