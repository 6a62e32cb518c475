"""Build a detector from options (shared by ``detect``, ``analyze`` and benchmarks)."""

from __future__ import annotations

from spermtrack.errors import ParameterError


def make_detector(kind: str = "blob", *, weights=None, enhance: bool = True, **kwargs):
    """``"blob"`` -> :class:`BlobDetector`; ``"yolo"`` -> :class:`SlicedYoloDetector` (needs weights)."""
    if kind == "blob":
        from spermtrack.detect.blob import BlobDetector

        return BlobDetector(enhance=enhance, **kwargs)
    if kind == "yolo":
        if not weights:
            raise ParameterError("--detector yolo needs --weights W.pt (train one with `spermtrack train detector`)")
        from spermtrack.detect.yolo import SlicedYoloDetector

        return SlicedYoloDetector(weights, enhance=enhance, **kwargs)
    raise ParameterError(f"unknown detector {kind!r}; use blob or yolo")
