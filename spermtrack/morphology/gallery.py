"""Gallery: a PNG mosaic of crops with mask outlines, one row per track (K crops per row)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from spermtrack.io.atomic import atomic_path
from spermtrack.morphology.crops import CropSet
from spermtrack.morphology.segmentation import Segmentation

#: BGR colours of the outlines: head green, midpiece orange, tail red.
COLOURS = {"head": (0, 220, 0), "midpiece": (0, 160, 255), "tail": (0, 0, 255)}


def render_gallery(crops: CropSet, segs: list[Segmentation], *, scale: int = 2, max_tracks: int = 200) -> np.ndarray:
    """BGR mosaic: row = track (first ``max_tracks``), columns = its crops, label = id and frame."""
    k = crops.params.k
    w, h = crops.params.wh
    tw, th = w * scale, h * scale
    ids = list(dict.fromkeys(crops.table["track_id"].tolist()))[:max_tracks]
    canvas = np.full((max(len(ids), 1) * (th + 2), k * (tw + 2) + 60, 3), 32, np.uint8)
    row_of = {t: i for i, t in enumerate(ids)}
    col = {t: 0 for t in ids}
    for i, (t, f) in enumerate(zip(crops.table["track_id"], crops.table["frame"])):
        if t not in row_of:
            continue
        tile = cv2.cvtColor(cv2.resize(crops.images[i], (tw, th), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        seg = segs[i]
        for part in ("tail", "midpiece", "head"):
            m = getattr(seg, part)
            if m.any():
                big = cv2.resize(m.astype(np.uint8), (tw, th), interpolation=cv2.INTER_NEAREST)
                cs, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(tile, cs, -1, COLOURS[part], 1)
        cv2.putText(tile, f"f{f} q{seg.quality:.1f}", (2, th - 4), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 0), 1)
        r, c = row_of[t], col[t]
        y0, x0 = r * (th + 2), 60 + c * (tw + 2)
        canvas[y0:y0 + th, x0:x0 + tw] = tile
        col[t] += 1
    for t, r in row_of.items():
        cv2.putText(canvas, f"#{t}", (2, r * (th + 2) + th // 2), cv2.FONT_HERSHEY_PLAIN, 1.0, (255, 255, 255), 1)
    return canvas


def write_gallery(path: str | os.PathLike, crops: CropSet, segs: list[Segmentation], **kwargs) -> None:
    """Write :func:`render_gallery` as a PNG, atomically."""
    img = render_gallery(crops, segs, **kwargs)
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(".png", img)
        if not ok:
            raise OSError(f"cannot encode the gallery for {path}")
        tmp.write_bytes(buf.tobytes())
