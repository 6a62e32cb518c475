"""Build a detector from options (shared by ``detect``, ``analyze`` and benchmarks)."""

from __future__ import annotations

from spermtrack.errors import ParameterError


def make_detector(kind: str = "blob", *, weights=None, enhance: bool = True, polarity: str = "auto", **kwargs):
    """``"blob"`` -> :class:`BlobDetector` (self-calibrating, ``polarity`` auto / bright / dark);
    ``"yolo"`` -> :class:`SlicedYoloDetector` (needs weights; dark-head videos are inverted
    before it when ``polarity="dark"``; ``auto`` means bright for a model trained on phase contrast)."""
    if kind == "blob":
        from spermtrack.detect.blob import BlobDetector

        return BlobDetector(enhance=enhance, polarity=polarity, **kwargs)
    if kind == "yolo":
        if not weights:
            raise ParameterError("the yolo detector needs weights: a .pt trained by `spermtrack train detector`")
        from spermtrack.detect.yolo import SlicedYoloDetector

        det = SlicedYoloDetector(weights, enhance=enhance, **kwargs)
        return _Inverted(det) if polarity == "dark" else det
    raise ParameterError(f"unknown detector {kind!r}; use blob or yolo")


class _Inverted:
    """A detector for bright heads run on a dark-head video: frames are inverted first."""

    def __init__(self, det):
        self.det = det

    def detect(self, frames):
        import numpy as np

        return self.det.detect(255 - np.asarray(frames, np.uint8))

    def __getattr__(self, name):
        return getattr(self.det, name)
