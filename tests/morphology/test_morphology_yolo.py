"""``yolo-seg``: train one epoch on phantom crops (CPU, offline), reload, segment. ``yolo-seg`` and
``sam`` are marked experimental (a one-line warning when chosen). ``sam`` itself:
test_morphology_sam.py."""

from __future__ import annotations

import numpy as np
import pytest

from spermtrack.errors import InputFileError, SpermtrackError
from spermtrack.morphology.segment import EXPERIMENTAL_NOTE, EXPERIMENTAL_NOTES, SAM_EXPERIMENTAL_NOTE, get_segmenter


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
    assert seg.experimental == f"segmenter yolo-seg: {EXPERIMENTAL_NOTE}"
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


def test_experimental_segmenters_warn_in_one_line(monkeypatch, caplog):
    import logging

    from spermtrack.morphology import segment

    class Stub:
        def __init__(self, weights, **kwargs):
            self.weights = weights

    monkeypatch.setattr(segment, "YoloSegmenter", Stub)
    monkeypatch.setattr(segment, "SamSegmenter", Stub)
    assert EXPERIMENTAL_NOTE.startswith("experimental: worse than classical") and "0.74 um" in EXPERIMENTAL_NOTE
    assert EXPERIMENTAL_NOTES == {"yolo-seg": EXPERIMENTAL_NOTE, "sam": SAM_EXPERIMENTAL_NOTE}
    # sam is measured (worse than classical): its note says so, with the numbers
    assert SAM_EXPERIMENTAL_NOTE.startswith("experimental: worse than classical") and "0.64 um" in SAM_EXPERIMENTAL_NOTE
    with caplog.at_level(logging.WARNING, logger="spermtrack.morphology.segment"):
        classical = get_segmenter("classical")
        assert not caplog.records and getattr(classical, "experimental", None) is None
        for name in ("yolo-seg", "sam"):
            caplog.clear()
            seg = get_segmenter(name, weights="w.pt")
            assert seg.experimental == f"segmenter {name}: {EXPERIMENTAL_NOTES[name]}"
            assert [r.getMessage() for r in caplog.records] == [f"warning: segmenter {name}: {EXPERIMENTAL_NOTES[name]}"]


def test_experimental_warning_is_one_stderr_line_without_logging_setup():
    """Outside pytest nothing configures logging: the warning is one plain line on stderr."""
    import subprocess
    import sys

    code = ("from spermtrack.morphology import segment\n"
            "segment.YoloSegmenter = lambda w, **k: type('S', (), {})()\n"
            "segment.get_segmenter('yolo-seg', weights='w.pt')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"warning: segmenter yolo-seg: {EXPERIMENTAL_NOTE}"]
