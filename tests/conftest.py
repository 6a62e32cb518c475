import os
import tempfile
from pathlib import Path

import pytest

#: ``shared/`` beside the repository (reference data; never copied into the repo).
SHARED = Path(__file__).resolve().parents[2] / "shared"

# Ultralytics must never touch the network or the user's settings during tests.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="spermtrack-yolo-"))


def shared_file(*parts: str) -> Path:
    """Path of a file in ``shared/``; skips the test cleanly when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not present")
    return p
