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


def faststart_cut(src, dst, keep=0.5):
    """A faststart MP4 (index first) cut short: what an interrupted copy or a crashed camera leaves."""
    import av

    full = dst.with_name("full_" + dst.name)
    with av.open(str(src)) as i, av.open(str(full), "w", options={"movflags": "faststart"}) as o:
        st = o.add_stream_from_template(i.streams.video[0])
        for pkt in i.demux(i.streams.video[0]):
            if pkt.dts is None:
                continue
            pkt.stream = st
            o.mux(pkt)
    data = full.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst
