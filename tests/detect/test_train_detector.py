"""``spermtrack train detector`` end to end on a tiny synthetic set (CPU, offline).

The dataset checks are truth tests (every tile label is a source label box, clipped to the tile
and shifted); the 1-epoch training checks the plumbing only: a model trained this briefly may
find nothing, so the detection is checked for structure, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from spermtrack.cli.main import main
from spermtrack.detect.slicing import tile_grid
from spermtrack.detect.train import DetectorTrainConfig, build_yolo_dataset

W, H = 320, 240


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    assert main(["synth", str(root), "--videos", "2", "--seconds", "0.4", "--width", str(W), "--height", str(H),
                 "--cells", "15", "--seed", "5"]) == 0
    return root


def _read_labels(path: Path) -> np.ndarray:
    """YOLO label lines as an ``(n, 5)`` array, checking each line's syntax and ranges."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        assert len(parts) == 5, f"{path}: {line!r}"
        cls, xc, yc, w, h = int(parts[0]), *map(float, parts[1:])
        assert cls in (0, 1, 2) and 0 <= xc <= 1 and 0 <= yc <= 1 and 0 < w <= 1 and 0 < h <= 1, f"{path}: {line!r}"
        assert xc - w / 2 >= -1e-5 and xc + w / 2 <= 1 + 1e-5 and yc - h / 2 >= -1e-5 and yc + h / 2 <= 1 + 1e-5
        rows.append((cls, xc, yc, w, h))
    return np.array(rows, np.float64).reshape(-1, 5)


def _to_xyxy(lab: np.ndarray, x0: float, y0: float, tw: float, th: float) -> np.ndarray:
    xc, yc, w, h = lab[:, 1] * tw + x0, lab[:, 2] * th + y0, lab[:, 3] * tw, lab[:, 4] * th
    return np.c_[xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]


def test_full_frames_are_linked_and_labels_round_trip(synth_root, tmp_path):
    cfg = DetectorTrainConfig(tile=0, enhance=False, frame_step=2)
    yaml_path = build_yolo_dataset(synth_root, tmp_path / "ds", cfg)
    ds = yaml_path.parent
    train, val = sorted((ds / "images" / "train").iterdir()), sorted((ds / "images" / "val").iterdir())
    assert len(train) == len(val) == 10  # 20 frames per video, every 2nd; last video held out
    assert {p.name.split("_")[0] for p in val} == {"102"}
    for img in train + val:
        assert img.is_symlink() and img.resolve().parent.name == "images"
        src = img.resolve().parent.parent / "labels" / (img.stem + ".txt")
        got = _read_labels(ds / "labels" / img.parent.name / (img.stem + ".txt"))
        np.testing.assert_allclose(got, _read_labels(src), atol=2e-6)
    text = yaml_path.read_text()
    assert f"path: {ds.resolve()}" in text and "train: images/train" in text and "val: images/val" in text


def test_tiles_are_cut_like_inference_and_labels_are_clipped_source_boxes(synth_root, tmp_path):
    cfg = DetectorTrainConfig(tile=160, overlap=0.15, enhance=True, frame_step=4)
    ds = build_yolo_dataset(synth_root, tmp_path / "ds", cfg).parent
    grid = tile_grid(H, W, 160, 0.15)
    n_frames = 5  # 20 frames, every 4th
    for split, vid in (("train", "101"), ("val", "102")):
        imgs = sorted((ds / "images" / split).glob("*.png"))
        assert len(imgs) == n_frames * len(grid)
        for img in imgs:
            stem, t = img.stem.rsplit("_t", 1)
            assert stem.startswith(vid)
            x0, y0, x1, y1 = grid[int(t)]
            pix = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
            assert pix.shape == (y1 - y0, x1 - x0)
            assert abs(float(np.median(pix)) - 128) <= 3  # HLDNBM: flat background at 128
            lab = _read_labels(ds / "labels" / split / f"{img.stem}.txt")
            src = _read_labels(synth_root / "Train" / vid / "labels" / f"{stem}.txt")
            src_xyxy = _to_xyxy(src, 0, 0, W, H)
            clipped = np.c_[np.maximum(src_xyxy[:, :2], [x0, y0]), np.minimum(src_xyxy[:, 2:], [x1, y1])]
            area = np.prod(src_xyxy[:, 2:] - src_xyxy[:, :2], axis=1)
            inside = np.prod(np.clip(clipped[:, 2:] - clipped[:, :2], 0, None), axis=1)
            expected = clipped[inside >= cfg.min_visible * area]
            got = _to_xyxy(lab, x0, y0, x1 - x0, y1 - y0)
            assert len(got) == len(expected)
            # every label is one of the source boxes clipped to the tile (order preserved)
            np.testing.assert_allclose(got, expected, atol=1e-3)
    # a rebuild in the same folder with other settings leaves no stale tile behind
    build_yolo_dataset(synth_root, ds, DetectorTrainConfig(tile=0, enhance=False, frame_step=4))
    assert not list(ds.rglob("*.png")) and len(list((ds / "labels").rglob("*.txt"))) == 2 * n_frames


@pytest.mark.slow
def test_train_one_epoch_reload_and_detect(synth_root, tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    out = tmp_path / "run"
    assert main(["train", "detector", str(synth_root), "--out", str(out), "--model", "yolo11n.yaml",
                 "--epochs", "1", "--imgsz", "160", "--tile", "160", "--batch", "8", "--frame-step", "2",
                 "--device", "cpu"]) == 0
    weights = out / "detector.pt"
    assert weights.is_file()
    meta = json.loads((out / "detector.json").read_text())
    assert meta["config"]["epochs"] == 1 and meta["config"]["tile"] == 160 and meta["device"] == "cpu"
    assert Path(meta["dataset_yaml"]).is_file() and "metrics/mAP50(B)" in meta["metrics"]

    from spermtrack.detect.yolo import SlicedYoloDetector

    det = SlicedYoloDetector(weights, tile_px=160, imgsz=160, conf=0.001, device="cpu")
    assert det.model.task == "detect"
    frames = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in
                       sorted((synth_root / "Train" / "101" / "images").glob("*.jpg"))[:3]])
    res = det.detect(frames)
    assert len(res) == 3 and det.n_predict_calls == 1  # all tiles of the 3 frames in one batch
    for d in res:
        assert d.xyxy.shape == (len(d), 4) and d.conf.shape == (len(d),) and d.cls.shape == (len(d),)
        # pixel-centre coordinates: the frame spans -0.5 .. W - 0.5
        assert np.all(d.xyxy[:, [0, 1]] >= -0.5 - 1e-3) and np.all(d.xyxy[:, 2] <= W - 0.5 + 1e-3)
        assert np.all(d.xyxy[:, 3] <= H - 0.5 + 1e-3) and np.all(d.xyxy[:, 2:] >= d.xyxy[:, :2])
        assert np.all((d.conf >= 0.001) & (d.conf <= 1)) and set(d.cls.tolist()) <= {0, 1, 2}
