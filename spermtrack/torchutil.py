"""Torch and ultralytics settings shared by every model in the package: which device to run on,
and how ultralytics is kept offline.

Importing this module imports neither torch nor ultralytics (they are loaded when a device has to
be chosen or a model is trained).
"""

from __future__ import annotations

import os

#: ``model.train`` arguments of every ultralytics training run: no data-loader worker processes,
#: no automatic mixed precision (its check downloads a model), no plot files, no pretrained
#: weights (the model YAML is trained from scratch; nothing is downloaded).
ULTRALYTICS_TRAIN_ARGS: dict[str, object] = {"workers": 0, "amp": False, "plots": False, "pretrained": False}


def choose_device(requested: str | None = None, *, ultralytics: bool = False) -> str:
    """The device a model runs on: ``requested`` when given, else the first CUDA GPU when one is
    available, else ``"cpu"``.

    Args:
        requested: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"0"``...; None or ``""``: choose.
        ultralytics: spell the GPU the ultralytics way (``"0"``) instead of torch's (``"cuda"``).
    """
    if requested:
        return requested
    import torch

    if torch.cuda.is_available():
        return "0" if ultralytics else "cuda"
    return "cpu"


def ultralytics_offline(*, training: bool = False) -> None:
    """Keep ultralytics off the network: ``YOLO_OFFLINE=1`` (unless the environment already says
    otherwise) before ultralytics is imported; for training also no settings sync."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if training:
        from ultralytics import settings

        settings.update({"sync": False})
