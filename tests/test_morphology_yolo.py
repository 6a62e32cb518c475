"""``yolo-seg``: train one epoch on phantom crops (CPU, offline), reload, segment; SAM errors."""

from __future__ import annotations

import numpy as np
import pytest

from spermtrack.errors import InputFileError, SpermtrackError
from spermtrack.morphology.segment import get_segmenter


@pytest.mark.slow
def test_train_seg_one_epoch_then_segment(tmp_path):
    import cv2

    from spermtrack.morphology.train_seg import SegTrainConfig, train_seg
    from spermtrack.synth import generate

    generate(tmp_path / "syn", videos=1, seconds=0.5, cells=12, seed=2, write_images=False, mask_every=5)
    w = train_seg(tmp_path / "syn", tmp_path / "seg.pt",
                  SegTrainConfig(epochs=1, imgsz=64, batch=16, max_crops=60, device="cpu"))
    assert w.is_file() and w.with_suffix(".json").is_file()
    labels = list((tmp_path / "seg_run" / "dataset" / "labels" / "train").glob("*.txt"))
    assert labels and all(ln.split()[0] in "012" for ln in labels[0].read_text().splitlines())
    seg = get_segmenter("yolo-seg", weights=w)
    ims = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                    for p in sorted((tmp_path / "seg_run" / "dataset" / "images" / "train").glob("*.png"))[:4]])
    out = seg.segment(ims)
    assert len(out) == 4
    for s in out:
        assert s.head.shape == (64, 64) and 0.0 <= s.quality <= 1.0
        assert not (s.head & s.tail).any()


def test_yolo_seg_needs_weights(tmp_path):
    with pytest.raises(SpermtrackError, match="--weights"):
        get_segmenter("yolo-seg")
    with pytest.raises(InputFileError, match="not found"):
        get_segmenter("yolo-seg", weights=tmp_path / "none.pt")


def test_sam_errors_are_clear(tmp_path):
    with pytest.raises(SpermtrackError, match="needs --weights SAM_CHECKPOINT.pth"):
        get_segmenter("sam")
    with pytest.raises(InputFileError, match="not found"):
        get_segmenter("sam", weights=tmp_path / "sam.pth")
    ck = tmp_path / "sam_vit_b.pth"
    ck.write_bytes(b"x")
    try:
        import segment_anything  # noqa: F401
    except ImportError:
        with pytest.raises(SpermtrackError, match="segment-anything"):
            get_segmenter("sam", weights=ck)
