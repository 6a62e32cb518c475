"""Semi-automatic annotation tool of the real morphology truth set (tests/data/morph_truth/).

The truth set is a list of real cells (VISEM-Tracking video 11 with its official tracks, and the
real frame 0 of video 12 with its official labels), each with a gray crop (PNG, axis-aligned,
``CROP`` px square, cut from the source frame: crop pixel ``(u, v)`` is frame pixel
``(x0 + u, y0 + v)``, pixel-centre convention) and hand-checked geometry in crop px:

- ``head.polygon``: the head outline (closed: the first point is repeated at the end), the
  bright phase-contrast head without its halo;
- ``midpiece.polyline``: from the head base (rear end of the head's long axis) to the end of the
  thicker, darker midpiece;
- ``tail.polyline``: from the midpiece end along the tail as far as it is visible;
  ``tail_end_visible`` says whether the trace reaches the tail's real end;
- lengths in px (head length = max Feret, width = min Feret of the polygon; arc lengths).

The procedure (docs/MORPHOLOGY_TRUTH.md): ``add`` a cell from its source (the crop is placed so
that the tail found by a simple ridge follower fits), ``propose`` the geometry (head: half-level
contour between background and head peak; path: this tool's own ridge follower, waypoints every
~12 px), ``render`` overlays (4x, contrast-stretched, with a coordinate grid, a 12x head zoom and
the darkness profile along the path), LOOK at them, correct the *inputs* by hand with ``edit``
(recorded in the cell's ``edits``; or directly in cells.json): ``input.waypoints`` (each snapped
to the strongest ridge pixel within 3 px; the path is the cheapest path along the dark ridge
between consecutive waypoints, or straight where a segment is listed in ``input.straight``),
``input.midpiece_end`` (a point, ``"auto"``: the half-level point of the darkness drop, or null),
``input.head_level`` / ``input.head_polygon``, ``tail_end`` (clear / fades / cut), difficulty,
rejection; ``build`` recomputes the polylines and lengths from the inputs; render again until the
overlay follows the visible structure. Everything in ``geometry`` is regenerated from ``input`` +
the crop by ``build``.

    python benchmarks/morph_truth_tool.py add v11 --track 7 --frame 0 [--centre X Y]
    python benchmarks/morph_truth_tool.py add f12 --label 3
    python benchmarks/morph_truth_tool.py propose [IDS...]     (overwrites the inputs!)
    python benchmarks/morph_truth_tool.py edit ID --waypoints "x,y x,y ..." --mid auto --end fades --render
    python benchmarks/morph_truth_tool.py build [IDS...]
    python benchmarks/morph_truth_tool.py render [IDS...] [--out DIR] [--sheet]
    python benchmarks/morph_truth_tool.py crops [--check]      (re-cut every crop from its source)
    python benchmarks/morph_truth_tool.py summary

``render`` and ``build`` need only the repository (crops and JSON); ``add`` and ``crops`` read
the real data in ../shared/data/visem.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRUTH_DIR = ROOT / "tests" / "data" / "morph_truth"
CELLS_JSON = TRUTH_DIR / "cells.json"
MEASUREMENTS_CSV = TRUTH_DIR / "measurements.csv"
VISEM = ROOT.parent / "shared" / "data" / "visem"
SOURCES = {
    "v11": {"file": "Train/11/11.mp4", "video": 11, "tracks": "gt/video11_gt_mot.txt.gz"},
    "f12": {"file": "frames12/12_frame_0.jpg", "video": 12, "labels": "frames12/labels/12_frame_0.txt"},
}
CROP = 160
UM_PER_PX = 0.5
SCALE = 4          # overlay upscaling
ZOOM = 12          # head zoom upscaling
ZOOM_HALF = 12     # head zoom half-side (crop px)

# ------------------------------------------------------------------------------------------------
# JSON i/o (points kept on one line each, so a cell is easy to read and edit by hand)


def load_cells(path: Path = CELLS_JSON) -> dict:
    if not Path(path).exists():
        return {"cells": []}
    return json.loads(Path(path).read_text())


def _dump(obj, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {_dump(v, indent + 1).lstrip()}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and all(isinstance(v, (list, tuple)) for v in obj) and \
            all(all(isinstance(x, (int, float)) for x in v) for v in obj):
        return "[" + ", ".join(json.dumps([round(float(x), 2) for x in v]) for v in obj) + "]"
    if isinstance(obj, list) and any(isinstance(v, dict) for v in obj):
        return "[\n" + ",\n".join(pad + " " + _dump(v, indent + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        return json.dumps(round(obj, 3))
    return json.dumps(obj)


def save_cells(data: dict, path: Path = CELLS_JSON) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(_dump(data) + "\n")


def cell_index(data: dict) -> dict:
    return {c["id"]: c for c in data["cells"]}


def crop_path(cell: dict, truth_dir: Path = TRUTH_DIR) -> Path:
    return Path(truth_dir) / cell["crop"]["file"]


_SOURCE_FRAMES: dict[tuple[str, int], np.ndarray] = {}


def load_crop(cell: dict, truth_dir: Path = TRUTH_DIR) -> np.ndarray:
    """The cell's crop: cut from its source frame in ../shared/data/visem (the repository keeps
    only the annotations and the crop rectangles, never copies of the shared data); a PNG at
    ``cell["crop"]["file"]`` is used when present (e.g. an annotator's working copy).

    Raises:
        FileNotFoundError / InputFileError: the shared source is absent.
    """
    p = crop_path(cell, truth_dir)
    if p.is_file():
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        if img is not None:
            return img
    src, cr = cell["source"], cell["crop"]
    key = (src["name"], int(src["frame"]))
    if key not in _SOURCE_FRAMES:
        _SOURCE_FRAMES[key] = read_frames(src["name"], [key[1]])[key[1]]
    return _SOURCE_FRAMES[key][cr["y0"]:cr["y0"] + cr["h"], cr["x0"]:cr["x0"] + cr["w"]].copy()


# ------------------------------------------------------------------------------------------------
# sources (need ../shared/data/visem)


def read_frames(source: str, frames) -> dict[int, np.ndarray]:
    """Gray frames of a source, as the package reads them (``VideoReader`` for the video,
    ``cv2.imread`` gray for the JPEG frame)."""
    frames = sorted(set(int(f) for f in frames))
    if source == "f12":
        g = cv2.imread(str(VISEM / SOURCES["f12"]["file"]), cv2.IMREAD_GRAYSCALE)
        if g is None:
            raise FileNotFoundError(VISEM / SOURCES["f12"]["file"])
        return {0: g}
    from spermtrack.io.video import VideoReader

    out: dict[int, np.ndarray] = {}
    with VideoReader(VISEM / SOURCES[source]["file"]) as reader:
        for i, _, g in reader.iter_frames():
            if i in frames:
                out[i] = g.copy()
            if i >= frames[-1]:
                break
    return out


def v11_tracks():
    import pandas as pd

    a = pd.read_csv(VISEM / SOURCES["v11"]["tracks"], header=None).to_numpy(np.float64)
    return pd.DataFrame({"track_id": a[:, 1].astype(int), "frame": a[:, 0].astype(int) - 1,
                         "x": a[:, 2] + a[:, 4] / 2, "y": a[:, 3] + a[:, 5] / 2, "w": a[:, 4], "h": a[:, 5]})


def f12_labels() -> np.ndarray:
    """``(n, 4)`` x, y, w, h in px of the official labels of frame 0 of video 12."""
    rows = []
    for line in (VISEM / SOURCES["f12"]["labels"]).read_text().split("\n"):
        p = line.split()
        if len(p) >= 5 and int(float(p[0])) == 0:
            rows.append([float(p[1]) * 640, float(p[2]) * 480, float(p[3]) * 640, float(p[4]) * 480])
    return np.array(rows)


# ------------------------------------------------------------------------------------------------
# image helpers


def bilinear(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    h, w = img.shape
    x = np.clip(pts[:, 0], 0, w - 1.001)
    y = np.clip(pts[:, 1], 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    a = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    b = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return a * (1 - fy) + b * fy


def arc_length(p) -> float:
    p = np.asarray(p, np.float64)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) >= 2 else 0.0


def resample(p: np.ndarray, step: float) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if len(p) < 2:
        return p
    s = np.r_[0.0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]
    if s[-1] <= 0:
        return p[:1]
    t = np.r_[np.arange(0.0, s[-1], step), s[-1]]
    return np.c_[np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])]


def feret(poly: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(max Feret, min Feret, end a, end b)`` of a polygon (ends of the max Feret chord)."""
    poly = np.asarray(poly, np.float64)
    d2 = ((poly[:, None, :] - poly[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    hull = cv2.convexHull(poly.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    e = np.roll(hull, -1, axis=0) - hull
    nrm = np.c_[-e[:, 1], e[:, 0]]
    nrm /= np.maximum(np.hypot(nrm[:, 0], nrm[:, 1]), 1e-12)[:, None]
    proj = hull @ nrm.T
    return float(np.sqrt(d2[i, j])), float((proj.max(0) - proj.min(0)).min()), poly[i], poly[j]


def ridge_map(img: np.ndarray) -> np.ndarray:
    """Dark-line strength (sato, black ridges, sigmas 0.8-1.6 px), scaled so that its 99.5th
    percentile is 1."""
    from skimage.filters import sato

    r = sato(img.astype(np.float64), sigmas=(0.8, 1.2, 1.6), black_ridges=True)
    return r / max(float(np.percentile(r, 99.5)), 1e-9)


def smooth(p: np.ndarray, k: int = 5) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if len(p) < k + 2:
        return p
    half = k // 2
    pad = np.concatenate([np.repeat(p[:1], half, 0), p, np.repeat(p[-1:], half, 0)])
    c = np.cumsum(np.vstack([np.zeros((1, 2)), pad]), axis=0)
    out = (c[k:] - c[:-k]) / k
    out[0], out[-1] = p[0], p[-1]
    return out


# ------------------------------------------------------------------------------------------------
# proposals


def head_outline(img: np.ndarray, centre, level: float = 0.5) -> np.ndarray | None:
    """Closed outline of the bright head at ``level`` between the background (crop median) and
    the head's peak (Gaussian 0.7 px; within 4 px of ``centre``), as 24 points."""
    from skimage.measure import find_contours

    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.7)
    bg = float(np.median(f))
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    r = 4
    win = f[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1]
    pi, pj = np.unravel_index(int(np.argmax(win)), win.shape)
    py, px = pi + max(cy - r, 0), pj + max(cx - r, 0)
    peak = float(f[py, px])
    lev = bg + level * (peak - bg)
    best = None
    for c in find_contours(f, lev):
        if len(c) < 5 or np.abs(c[0] - c[-1]).max() > 1e-6:
            continue
        xy = c[:, ::-1]
        if cv2.pointPolygonTest(xy.astype(np.float32), (float(px), float(py)), False) >= 0:
            a = cv2.contourArea(xy.astype(np.float32))
            if best is None or a < best[0]:
                best = (a, xy)
    if best is None:
        return None
    xy = resample(best[1], max(arc_length(best[1]) / 24.0, 0.3))[:-1]
    return np.vstack([xy, xy[:1]])


def rear_end(poly: np.ndarray, img: np.ndarray, toward=None) -> tuple[np.ndarray, np.ndarray]:
    """``(base, front)``: the end of the head's long axis where the midpiece leaves (the one
    nearer ``toward`` when given, else the one with the darker surroundings beyond it)."""
    _, _, a, b = feret(poly[:-1])
    if toward is not None:
        toward = np.asarray(toward, float)
        return (a, b) if np.hypot(*(a - toward)) <= np.hypot(*(b - toward)) else (b, a)
    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    u = (a - b) / max(np.hypot(*(a - b)), 1e-9)
    t = np.arange(3.0, 9.0)[:, None]
    da = bilinear(f, a + t * u).mean()
    db = bilinear(f, b - t * u).mean()
    return (a, b) if da <= db else (b, a)


def follow_ridge(ridge: np.ndarray, start, direction, *, max_len: int = 140, thr: float = 0.12,
                 avoid: np.ndarray | None = None) -> np.ndarray:
    """A simple ridge follower (proposal only): 1-px steps, heading within +-35 deg of the current
    one, maximising the ridge over the next 1-4 px minus a small turning penalty; stops when the
    mean ridge over the last 6 steps drops under ``thr``, at the border, or on ``avoid``."""
    h, w = ridge.shape
    p = np.asarray(start, np.float64)
    d = np.asarray(direction, np.float64)
    d /= max(np.hypot(*d), 1e-9)
    pts, scores = [p.copy()], []
    angs = np.radians(np.arange(-35, 36, 5))
    look = np.arange(1.0, 5.0)
    for _ in range(max_len):
        best = None
        for a in angs:
            c, s = np.cos(a), np.sin(a)
            dd = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
            q = p[None] + look[:, None] * dd[None]
            sc = float(bilinear(ridge, q).mean()) - 0.002 * abs(np.degrees(a))
            if best is None or sc > best[0]:
                best = (sc, dd)
        sc, dd = best
        d = 0.6 * d + 0.4 * dd
        d /= np.hypot(*d)
        p = p + d
        if not (1 <= p[0] <= w - 2 and 1 <= p[1] <= h - 2):
            break
        if avoid is not None and avoid[int(round(p[1])), int(round(p[0]))]:
            break
        pts.append(p.copy())
        scores.append(sc)
        if len(scores) >= 6 and np.mean(scores[-6:]) < thr:
            pts = pts[:-6]
            break
    return np.array(pts)


def propose(img: np.ndarray, centre) -> dict:
    """Proposal inputs for one crop: head level 0.5 (auto outline), waypoints every ~12 px of the
    ridge follower's path, the midpiece end at the darkness step of the first 20 px."""
    poly = head_outline(img, centre)
    if poly is None:
        return {"head_level": 0.5, "head_polygon": None, "waypoints": [], "straight": [], "midpiece_end": None}
    base, front, path = trace_from_head(img, poly)
    wp = resample(path, 12.0) if len(path) >= 2 else np.asarray([base])
    mid_end = _darkness_step(img, path) if len(path) >= 8 else None
    return {"head_level": 0.5, "head_polygon": None, "waypoints": np.round(wp, 1).tolist(), "straight": [],
            "midpiece_end": None if mid_end is None else np.round(mid_end, 1).tolist()}


def trace_from_head(img: np.ndarray, poly: np.ndarray, max_len: int = 140):
    """``(base, front, path)``: the ridge follower run from both ends of the head's long axis;
    the end whose trace is longer is the base (ties: the darker side)."""
    _, _, a, b = feret(poly[:-1])
    ridge = ridge_map(img)
    pa = follow_ridge(ridge, a, a - b, max_len=max_len)
    pb = follow_ridge(ridge, b, b - a, max_len=max_len)
    la, lb = arc_length(pa), arc_length(pb)
    if abs(la - lb) < 3.0:
        base, front = rear_end(poly, img)
        return (base, front, pa) if np.allclose(base, a) else (base, front, pb)
    return (a, b, pa) if la > lb else (b, a, pb)


def darkness_profile(img: np.ndarray, path: np.ndarray, step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(arc positions, darkness)`` along a path: background minus the Gaussian(0.7 px) image."""
    f = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.7)
    q = resample(path, step)
    s = np.r_[0.0, np.cumsum(np.hypot(*np.diff(q, axis=0).T))]
    return s, float(np.median(f)) - bilinear(f, q)


def midpiece_half_level(img: np.ndarray, path: np.ndarray) -> np.ndarray | None:
    """The midpiece end as the half-level point of the darkness drop along the path: the first
    point after the darkness peak of the first 12 px where the darkness falls below the mean of
    the peak and the median darkness 6-20 px past the peak (the proximal tail)."""
    s, dark = darkness_profile(img, path)
    m = s <= 12.0
    if m.sum() < 4:
        return None
    kp = int(np.argmax(np.where(m, dark, -np.inf)))
    far = (s >= s[kp] + 6.0) & (s <= s[kp] + 20.0)
    if not far.any():
        return None
    level = 0.5 * (dark[kp] + float(np.median(dark[far])))
    after = np.flatnonzero((np.arange(len(s)) > kp) & (dark < level))
    if not len(after):
        return None
    k = int(after[0])
    # linear interpolation between the samples around the crossing
    t = (dark[k - 1] - level) / max(dark[k - 1] - dark[k], 1e-9)
    s_cut = s[k - 1] + t * (s[k] - s[k - 1])
    q = resample(path, 0.5)
    a = np.r_[0.0, np.cumsum(np.hypot(*np.diff(q, axis=0).T))]
    return np.array([np.interp(s_cut, a, q[:, 0]), np.interp(s_cut, a, q[:, 1])])


def _darkness_step(img: np.ndarray, path: np.ndarray, span: float = 20.0) -> np.ndarray | None:
    s, dark = darkness_profile(img, path)
    m = (s >= 1.5) & (s <= span)
    y = dark[m]
    if len(y) < 8:
        return None
    best = None
    for k in range(3, len(y) - 3):
        e = ((y[:k] - y[:k].mean()) ** 2).sum() + ((y[k:] - y[k:].mean()) ** 2).sum()
        if y[:k].mean() > y[k:].mean() and (best is None or e < best[0]):
            best = (e, k)
    if best is None:
        return None
    s_cut = s[m][best[1]]
    q = resample(path, 0.5)
    return q[min(int(round(s_cut / 0.5)), len(q) - 1)]


# ------------------------------------------------------------------------------------------------
# build: inputs -> geometry


def snap_path(ridge: np.ndarray, waypoints: np.ndarray, straight=()) -> np.ndarray:
    """The path through the waypoints: between consecutive ones the cheapest 8-connected path on
    the cost ``1 / (ridge + 0.05)`` (geometric), or a straight segment where listed in
    ``straight`` (segment i joins waypoints i and i+1); smoothed (5-px moving average, waypoints
    at the ends kept; 7-px moving average) and resampled every 1 px."""
    from skimage.graph import route_through_array

    h, w = ridge.shape
    cost = 1.0 / (np.clip(ridge, 0, None) + 0.05)
    pts = [np.asarray(waypoints[0], np.float64)]
    for i in range(len(waypoints) - 1):
        a, b = np.asarray(waypoints[i], float), np.asarray(waypoints[i + 1], float)
        if i in set(straight):
            seg = resample(np.vstack([a, b]), 1.0)[1:]
        else:
            ra = (int(np.clip(round(a[1]), 0, h - 1)), int(np.clip(round(a[0]), 0, w - 1)))
            rb = (int(np.clip(round(b[1]), 0, h - 1)), int(np.clip(round(b[0]), 0, w - 1)))
            idx, _ = route_through_array(cost, ra, rb, fully_connected=True, geometric=True)
            seg = np.asarray(idx, np.float64)[:, ::-1]
            seg = smooth(seg, 7)
            seg[0], seg[-1] = a, b
            seg = seg[1:]
        pts.extend(seg)
    p = np.asarray(pts)
    keep = np.r_[True, np.hypot(*np.diff(p, axis=0).T) > 1e-6]
    return resample(p[keep], 1.0)


def snap_point(ridge: np.ndarray, pt, radius: int = 2) -> np.ndarray:
    """The pixel of strongest ridge within ``radius`` px of ``pt`` (a hand-placed waypoint lands
    on the line's centre), refined by a parabola through its neighbours."""
    h, w = ridge.shape
    x, y = int(round(pt[0])), int(round(pt[1]))
    best = None
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            u, v = x + dx, y + dy
            if 1 <= u < w - 1 and 1 <= v < h - 1 and (best is None or ridge[v, u] > best[0]):
                best = (ridge[v, u], u, v)
    if best is None:
        return np.asarray(pt, np.float64)
    _, u, v = best

    def vertex(a, b, c):
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0

    return np.array([u + vertex(ridge[v, u - 1], ridge[v, u], ridge[v, u + 1]),
                     v + vertex(ridge[v - 1, u], ridge[v, u], ridge[v + 1, u])])


def project(path: np.ndarray, pt) -> tuple[int, np.ndarray]:
    """Index of the segment end and the point of ``path`` nearest ``pt``."""
    pt = np.asarray(pt, np.float64)
    best = (np.inf, 1, path[0])
    for i in range(len(path) - 1):
        a, b = path[i], path[i + 1]
        ab = b - a
        t = float(np.clip(np.dot(pt - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1))
        q = a + t * ab
        d = float(np.hypot(*(pt - q)))
        if d < best[0]:
            best = (d, i + 1, q)
    return best[1], best[2]


def turning_deg(p: np.ndarray, step: float = 2.0) -> float:
    """|sum of signed heading changes| between consecutive ``step``-px chords (deg)."""
    q = resample(p, step)
    if len(q) < 3:
        return 0.0
    d = np.diff(q, axis=0)
    a = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    return float(abs(np.degrees(a[-1] - a[0])))


def build_cell(cell: dict, img: np.ndarray) -> dict:
    """Geometry (head polygon, midpiece and tail polylines, lengths in px and um) from the cell's
    inputs and its crop. Raises ValueError when the head outline is not found."""
    inp = cell["input"]
    centre = np.asarray(cell["crop"]["head_uv"], float)
    if inp.get("head_polygon"):
        poly = np.asarray(inp["head_polygon"], float)
        if np.abs(poly[0] - poly[-1]).max() > 1e-6:
            poly = np.vstack([poly, poly[:1]])
    else:
        poly = head_outline(img, centre, float(inp.get("head_level", 0.5)))
        if poly is None:
            raise ValueError(f"{cell['id']}: no head outline")
    poly = np.round(poly, 2)  # what is stored; every length below is computed from the stored points
    L, W, _, _ = feret(poly[:-1])
    wps = [np.asarray(p, float) for p in inp.get("waypoints") or []]
    geo = {"head": {"polygon": np.round(poly, 2).tolist(), "length_px": L, "width_px": W,
                    "length_um": L * UM_PER_PX, "width_um": W * UM_PER_PX,
                    "area_px2": float(cv2.contourArea(poly.astype(np.float32)))}}
    if wps:
        # the head base is the outline point nearest the first waypoint (where the midpiece
        # leaves; on a round head this need not be an end of the long axis)
        ring = resample(poly, 0.1)
        base = ring[int(np.argmin(np.hypot(*(ring - wps[0]).T)))]
        front = ring[int(np.argmax(np.hypot(*(ring - base).T)))]
    else:
        base, front = rear_end(poly, img)
    geo["head"]["base"] = np.round(base, 2).tolist()
    geo["head"]["front"] = np.round(front, 2).tolist()
    mid = tail = None
    if len(wps) >= 2:
        wps[0] = base  # the path starts at the head base
        ridge = ridge_map(img)
        if inp.get("snap_waypoints", True):
            wps = [wps[0]] + [snap_point(ridge, p, 3) for p in wps[1:]]
        path = snap_path(ridge, np.asarray(wps), inp.get("straight") or [])
        mend = inp.get("midpiece_end")
        if isinstance(mend, str) and mend == "auto":
            mend = midpiece_half_level(img, path)
        if mend is not None:
            k, q = project(path, mend)
            mid = np.vstack([path[:k], q])
            tail = np.vstack([q, path[k:]]) if k < len(path) else None
        else:
            tail = path
    mid = None if mid is None else np.round(mid, 2)
    tail = None if tail is None else np.round(tail, 2)
    if mid is not None and len(mid) >= 2:
        chord = mid[-1] - mid[0]
        axis = base - front
        cosang = float(np.dot(chord, axis) / max(np.hypot(*chord) * np.hypot(*axis), 1e-12))
        ml = arc_length(mid)
        geo["midpiece"] = {"polyline": np.round(mid[:: max(1, 1)], 2).tolist(), "length_px": ml,
                           "length_um": ml * UM_PER_PX,
                           "angle_deg": float(np.degrees(np.arccos(np.clip(cosang, -1, 1))))}
    else:
        geo["midpiece"] = None
    if tail is not None and len(tail) >= 2:
        tl = arc_length(tail)
        geo["tail"] = {"polyline": np.round(tail, 2).tolist(), "length_px": tl, "length_um": tl * UM_PER_PX,
                       "total_turning_deg": turning_deg(tail), "end_visible": bool(cell.get("tail_end_visible", False))}
    else:
        geo["tail"] = None
    return geo


# ------------------------------------------------------------------------------------------------
# rendering


def stretch(img: np.ndarray, lo_sigma: float = 9.0) -> np.ndarray:
    """Background-centred contrast stretch (faint dark tails visible, heads saturate)."""
    f = img.astype(np.float32)
    bg = float(np.median(f))
    noise = max(1.4826 * float(np.median(np.abs(f - bg))), 1.0)
    f = cv2.GaussianBlur(f, (0, 0), 0.5)
    out = 150.0 + (f - bg) * (140.0 / (lo_sigma * noise))
    return np.clip(out, 0, 255).astype(np.uint8)


def _pt(p, s, off=(0.0, 0.0)) -> tuple[int, int]:
    # pixel-centre convention: crop px (u, v) is the centre of upscaled block [s u, s u + s)
    return int(round((p[0] - off[0] + 0.5) * s * 16 - 8)), int(round((p[1] - off[1] + 0.5) * s * 16 - 8))


def _poly(img, pts, s, color, thick=1, closed=False, off=(0.0, 0.0)):
    if pts is None or len(pts) < 2:
        return
    a = np.array([_pt(p, s, off) for p in pts], np.int32)
    cv2.polylines(img, [a], closed, color, thick, cv2.LINE_AA, 4)


def render_cell(cell: dict, img: np.ndarray) -> np.ndarray:
    """Overlay panel (BGR): raw 4x | overlay 4x | head zoom 12x over the darkness profile."""
    s = SCALE
    h, w = img.shape
    st = stretch(img)
    big = cv2.resize(st, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
    raw = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    ov = raw.copy()
    for k in range(0, w, 10):
        x = int((k + 0.5) * s)
        cv2.line(ov, (x, 0), (x, h * s), (70, 70, 70) if k % 50 else (0, 110, 180), 1)
        cv2.line(ov, (0, x), (w * s, x), (70, 70, 70) if k % 50 else (0, 110, 180), 1)
        for pan in (raw, ov):
            cv2.putText(pan, str(k), (x + 2, 12), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 200, 255), 1)
            cv2.putText(pan, str(k), (2, x - 2), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 200, 255), 1)
            cv2.line(pan, (x, 0), (x, 5), (0, 200, 255), 1)
            cv2.line(pan, (0, x), (5, x), (0, 200, 255), 1)
    geo = cell.get("geometry") or {}
    inp = cell.get("input") or {}
    head = geo.get("head")
    if head:
        _poly(ov, head["polygon"], s, (0, 255, 0), 1, True)
    if geo.get("midpiece"):
        _poly(ov, geo["midpiece"]["polyline"], s, (255, 0, 255), 1)
    if geo.get("tail"):
        tl = geo["tail"]["polyline"]
        _poly(ov, tl, s, (255, 255, 0), 1)
        e = _pt(tl[-1], s)
        cv2.circle(ov, e, 7, (0, 255, 255), -1 if cell.get("tail_end_visible") else 2, cv2.LINE_AA, 4)
    for i, p in enumerate(inp.get("waypoints") or []):
        c = _pt(p, s)
        cv2.circle(ov, c, 12, (0, 0, 255), 1, cv2.LINE_AA, 4)
        cv2.putText(ov, str(i), (c[0] // 16 + 5, c[1] // 16 - 5), cv2.FONT_HERSHEY_PLAIN, 1.0, (60, 60, 255), 1)
    if geo.get("midpiece"):
        c = _pt(geo["midpiece"]["polyline"][-1], s)
        cv2.drawMarker(ov, (c[0] // 16, c[1] // 16), (0, 255, 255), cv2.MARKER_TILTED_CROSS, 10, 1)
    # head zoom
    hu = np.asarray(cell["crop"]["head_uv"], float)
    z, zh = ZOOM, ZOOM_HALF
    u0, v0 = int(round(hu[0])) - zh, int(round(hu[1])) - zh
    pad = np.pad(img, zh + 2, mode="edge")
    sub = pad[v0 + zh + 2:v0 + 3 * zh + 2, u0 + zh + 2:u0 + 3 * zh + 2]
    zs = (sub.astype(np.float32) - sub.min()) / max(float(sub.max() - sub.min()), 1.0) * 255
    zoom = cv2.cvtColor(cv2.resize(zs.astype(np.uint8), (2 * zh * z, 2 * zh * z), interpolation=cv2.INTER_CUBIC),
                        cv2.COLOR_GRAY2BGR)
    for k in range(0, 2 * zh, 2):
        x = int((k + 0.5) * z)
        col = (0, 110, 180) if (u0 + k) % 10 == 0 else (60, 60, 60)
        cv2.line(zoom, (x, 0), (x, 6), col, 1)
        cv2.line(zoom, (0, x), (6, x), col, 1)
        if (u0 + k) % 10 == 0:
            cv2.putText(zoom, str(u0 + k), (x + 2, 16), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 200, 255), 1)
        if (v0 + k) % 10 == 0:
            cv2.putText(zoom, str(v0 + k), (2, x - 2), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 200, 255), 1)
    if head:
        _poly(zoom, head["polygon"], z, (0, 255, 0), 1, True, (u0, v0))
    if geo.get("midpiece"):
        _poly(zoom, geo["midpiece"]["polyline"], z, (255, 0, 255), 1, False, (u0, v0))
    if geo.get("tail"):
        _poly(zoom, geo["tail"]["polyline"], z, (255, 255, 0), 1, False, (u0, v0))
    # darkness profile along the path (first 40 px)
    prof = np.full((h * s - 2 * zh * z, 2 * zh * z, 3), 30, np.uint8)
    path = None
    if geo.get("midpiece") and geo.get("tail"):
        path = np.vstack([geo["midpiece"]["polyline"], geo["tail"]["polyline"][1:]])
    elif geo.get("tail"):
        path = np.asarray(geo["tail"]["polyline"])
    if path is not None and len(path) >= 2 and prof.shape[0] > 40:
        sarc, dark = darkness_profile(img, np.asarray(path, float))
        m = sarc <= 40
        ph, pw = prof.shape[:2]
        lo, hi = min(float(dark[m].min()), 0.0), max(float(dark[m].max()), 1.0)
        xs = (sarc[m] / 40.0 * (pw - 20) + 10).astype(int)
        ys = (ph - 20 - (dark[m] - lo) / (hi - lo) * (ph - 40)).astype(int)
        y0 = int(ph - 20 - (0 - lo) / (hi - lo) * (ph - 40))
        cv2.line(prof, (10, y0), (pw - 10, y0), (90, 90, 90), 1)
        cv2.polylines(prof, [np.c_[xs, ys].astype(np.int32)], False, (255, 255, 255), 1, cv2.LINE_AA)
        for k in range(0, 41, 5):
            x = int(k / 40.0 * (pw - 20) + 10)
            cv2.line(prof, (x, ph - 18), (x, ph - 12), (0, 200, 255), 1)
            if k % 10 == 0:
                cv2.putText(prof, str(k), (x - 6, ph - 2), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 200, 255), 1)
        hl = midpiece_half_level(img, np.asarray(path, float))
        if hl is not None:
            k, q = project(np.asarray(path, float), hl)
            sa = arc_length(np.vstack([np.asarray(path, float)[:k], q]))
            x = int(sa / 40.0 * (pw - 20) + 10)
            cv2.line(prof, (x, 30), (x, ph - 20), (0, 160, 255), 1)
        if geo.get("midpiece"):
            ml = geo["midpiece"]["length_px"]
            x = int(ml / 40.0 * (pw - 20) + 10)
            cv2.line(prof, (x, 10), (x, ph - 20), (255, 0, 255), 1)
        cv2.putText(prof, "darkness along path (px)", (10, 14), cv2.FONT_HERSHEY_PLAIN, 0.9, (200, 200, 200), 1)
    right = np.vstack([zoom, prof])
    panel = np.hstack([raw, np.full((h * s, 4, 3), 255, np.uint8), ov, np.full((h * s, 4, 3), 255, np.uint8), right])
    txt = f"{cell['id']}  {cell.get('split', '')}  {cell.get('difficulty', '')}"
    if head:
        txt += f"  L {head['length_px']:.1f} W {head['width_px']:.1f} px"
    if geo.get("midpiece"):
        txt += f"  mid {geo['midpiece']['length_px']:.1f}"
    if geo.get("tail"):
        txt += f"  tail {geo['tail']['length_px']:.1f} px ({'end' if cell.get('tail_end_visible') else 'no end'})"
    bar = np.zeros((22, panel.shape[1], 3), np.uint8)
    cv2.putText(bar, txt, (6, 16), cv2.FONT_HERSHEY_PLAIN, 1.2, (255, 255, 255), 1)
    return np.vstack([panel, bar])  # the bar below: panel rows are crop rows x SCALE


def render_sheet(cells: list[dict], imgs: list[np.ndarray], scale: int = 2, cols: int = 4) -> np.ndarray:
    """A contact sheet: every cell's crop at ``scale`` with its geometry."""
    tiles = []
    for cell, img in zip(cells, imgs):
        h, w = img.shape
        t = cv2.cvtColor(cv2.resize(stretch(img), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC),
                         cv2.COLOR_GRAY2BGR)
        geo = cell.get("geometry") or {}
        if geo.get("head"):
            _poly(t, geo["head"]["polygon"], scale, (0, 255, 0), 1, True)
        if geo.get("midpiece"):
            _poly(t, geo["midpiece"]["polyline"], scale, (255, 0, 255), 1)
        if geo.get("tail"):
            _poly(t, geo["tail"]["polyline"], scale, (255, 255, 0), 1)
            cv2.circle(t, _pt(geo["tail"]["polyline"][-1], scale), 4 * 16,
                       (0, 255, 255), -1 if cell.get("tail_end_visible") else 1, cv2.LINE_AA, 4)
        cv2.putText(t, cell["id"], (4, 14), cv2.FONT_HERSHEY_PLAIN, 1.0, (0, 255, 255), 1)
        tiles.append(t)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)]
    return np.vstack(rows)


# ------------------------------------------------------------------------------------------------
# commands


def assign_splits(data: dict) -> None:
    """Per source, accepted cells ordered by the SHA-1 of their id, alternately tune / held."""
    for src in SOURCES:
        ids = sorted((c["id"] for c in data["cells"] if c["source"]["name"] == src and c.get("status") == "accepted"),
                     key=lambda i: hashlib.sha1(i.encode()).hexdigest())
        for k, i in enumerate(ids):
            cell_index(data)[i]["split"] = "tune" if k % 2 == 0 else "held"
    for c in data["cells"]:
        if c.get("status") != "accepted":
            c["split"] = None


def place_crop(gray: np.ndarray, x: float, y: float, centre_hint=None) -> tuple[int, int]:
    """Crop origin: centred between the head and the end of the ridge follower's path (or
    ``centre_hint``), inside the frame."""
    H, W = gray.shape
    if centre_hint is None:
        r = 130
        x0, y0 = int(np.clip(round(x) - r, 0, W - 2 * r)), int(np.clip(round(y) - r, 0, H - 2 * r))
        sub = gray[y0:y0 + 2 * r, x0:x0 + 2 * r]
        c = np.array([x - x0, y - y0])
        poly = head_outline(sub, c)
        cx, cy = x, y
        if poly is not None:
            _, _, path = trace_from_head(sub, poly, max_len=100)
            if len(path) > 10:
                cx, cy = 0.5 * (x + path[-1][0] + x0), 0.5 * (y + path[-1][1] + y0)
    else:
        cx, cy = centre_hint
    return (int(np.clip(round(cx - CROP / 2), 0, W - CROP)), int(np.clip(round(cy - CROP / 2), 0, H - CROP)))


def cmd_add(args) -> None:
    data = load_cells()
    idx = cell_index(data)
    if args.source == "v11":
        t = v11_tracks()
        row = t[(t.track_id == args.track) & (t.frame == args.frame)]
        if row.empty:
            sys.exit(f"track {args.track} has no row at frame {args.frame}")
        x, y = float(row.x.iloc[0]), float(row.y.iloc[0])
        cid = f"v11_t{args.track:02d}"
        src = {"name": "v11", "dataset": "VISEM-Tracking", "video": 11, "file": SOURCES["v11"]["file"],
               "frame": int(args.frame), "mot_frame": int(args.frame) + 1, "track_id": int(args.track),
               "head_xy": [round(x, 2), round(y, 2)], "box_wh": [float(row.w.iloc[0]), float(row.h.iloc[0])]}
        gray = read_frames("v11", [args.frame])[args.frame]
    else:
        lab = f12_labels()
        x, y, bw, bh = lab[args.label]
        cid = f"f12_l{args.label:02d}"
        src = {"name": "f12", "dataset": "VISEM-Tracking", "video": 12, "file": SOURCES["f12"]["file"], "frame": 0,
               "label_file": SOURCES["f12"]["labels"], "label_index": int(args.label),
               "head_xy": [round(float(x), 2), round(float(y), 2)], "box_wh": [round(float(bw), 2), round(float(bh), 2)]}
        gray = read_frames("f12", [0])[0]
    if cid in idx and not args.force:
        sys.exit(f"{cid} exists (--force to replace)")
    x0, y0 = place_crop(gray, x, y, args.centre)
    crop = gray[y0:y0 + CROP, x0:x0 + CROP]
    cell = {"id": cid, "status": "accepted", "difficulty": "easy", "hard_reasons": [], "split": None, "source": src,
            "crop": {"file": f"crops/{cid}.png", "x0": x0, "y0": y0, "w": CROP, "h": CROP,
                     "head_uv": [round(x - x0, 2), round(y - y0, 2)]},
            "tail_end": None, "tail_end_visible": False, "notes": "", "edits": []}
    (TRUTH_DIR / "crops").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(crop_path(cell)), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    cell["input"] = propose(crop, cell["crop"]["head_uv"])
    cell["input"]["proposal"] = "tool: half-level head outline + own ridge follower (unedited)"
    try:
        cell["geometry"] = build_cell(cell, crop)
    except ValueError as err:
        cell["geometry"] = None
        cell["notes"] = str(err)
    if cid in idx:
        data["cells"][[c["id"] for c in data["cells"]].index(cid)] = cell
    else:
        data["cells"].append(cell)
    data["cells"].sort(key=lambda c: c["id"])
    save_cells(data)
    print(f"added {cid} crop origin ({x0}, {y0})")


def _selected(data: dict, ids) -> list[dict]:
    if not ids:
        return list(data["cells"])
    idx = cell_index(data)
    missing = [i for i in ids if i not in idx]
    if missing:
        sys.exit(f"unknown cell id(s): {', '.join(missing)}")
    return [idx[i] for i in ids]


def build_all(data: dict, ids=None, truth_dir: Path = TRUTH_DIR) -> None:
    for cell in _selected(data, ids):
        if cell.get("status") == "rejected" and not cell.get("input"):
            cell["geometry"] = None
            continue
        cell["geometry"] = build_cell(cell, load_crop(cell, truth_dir))
    assign_splits(data)


def write_measurements(data: dict, path: Path = MEASUREMENTS_CSV) -> None:
    import pandas as pd

    rows = []
    for c in data["cells"]:
        if c.get("status") != "accepted" or not c.get("geometry"):
            continue
        g = c["geometry"]
        rows.append({"cell_id": c["id"], "split": c.get("split"), "difficulty": c.get("difficulty"),
                     "source": c["source"]["name"], "frame": c["source"]["frame"],
                     "track_id": c["source"].get("track_id"), "x": c["source"]["head_xy"][0],
                     "y": c["source"]["head_xy"][1],
                     "head_length_px": g["head"]["length_px"], "head_width_px": g["head"]["width_px"],
                     "midpiece_length_px": g["midpiece"]["length_px"] if g.get("midpiece") else np.nan,
                     "midpiece_angle_deg": g["midpiece"]["angle_deg"] if g.get("midpiece") else np.nan,
                     "tail_length_px": g["tail"]["length_px"] if g.get("tail") else np.nan,
                     "tail_total_turning_deg": g["tail"]["total_turning_deg"] if g.get("tail") else np.nan,
                     "tail_end_visible": bool(c.get("tail_end_visible")),
                     "tail_end": c.get("tail_end") if g.get("tail") else "none"})
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False, float_format="%.2f")


def cmd_propose(args) -> None:
    data = load_cells()
    for cell in _selected(data, args.ids):
        img = load_crop(cell)
        cell["input"] = propose(img, cell["crop"]["head_uv"])
        cell["input"]["proposal"] = "tool: half-level head outline + own ridge follower (unedited)"
        cell["geometry"] = build_cell(cell, img)
    save_cells(data)


def cmd_build(args) -> None:
    data = load_cells()
    build_all(data, args.ids)
    save_cells(data)
    write_measurements(data)
    print(f"built {len(_selected(data, args.ids))} cell(s); wrote {MEASUREMENTS_CSV}")


def cmd_render(args) -> None:
    data = load_cells()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cells = _selected(data, args.ids)
    if args.sheet:
        cells = [c for c in cells if c.get("geometry") and c.get("status") == "accepted"]
        for old in out.glob("sheet_*.png"):
            old.unlink()
        for k in range(0, len(cells), 12):
            part = cells[k:k + 12]
            p = out / f"sheet_{k // 12:02d}.png"
            cv2.imwrite(str(p), render_sheet(part, [load_crop(c) for c in part]))
            print(p)
        return
    for cell in cells:
        p = out / f"{cell['id']}.png"
        cv2.imwrite(str(p), render_cell(cell, load_crop(cell)))
        print(p)


def cmd_crops(args) -> None:
    """Re-cut every crop from its source frame; ``--check``: compare with the stored PNGs."""
    data = load_cells()
    by_src: dict[str, list] = {}
    for c in data["cells"]:
        by_src.setdefault(c["source"]["name"], []).append(c)
    bad = 0
    for src, cells in by_src.items():
        frames = read_frames(src, [c["source"]["frame"] for c in cells])
        for c in cells:
            g = frames[c["source"]["frame"]]
            x0, y0 = c["crop"]["x0"], c["crop"]["y0"]
            crop = g[y0:y0 + c["crop"]["h"], x0:x0 + c["crop"]["w"]]
            if args.check:
                old = load_crop(c)
                diff = int(np.abs(old.astype(int) - crop.astype(int)).max())
                if diff:
                    bad += 1
                    print(f"{c['id']}: differs from its source by up to {diff} gray levels")
            else:
                cv2.imwrite(str(crop_path(c)), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if args.check:
        print("all crops match their sources" if not bad else f"{bad} crop(s) differ")
        sys.exit(1 if bad else 0)


def _points(text: str) -> list[list[float]]:
    return [[float(v) for v in pt.split(",")] for pt in text.split()]


def cmd_edit(args) -> None:
    """Hand corrections of one cell's inputs (recorded in its ``edits``), then rebuild it."""
    data = load_cells()
    cell = _selected(data, [args.id])[0]
    inp = cell.setdefault("input", {})
    log = []
    if args.waypoints is not None:
        inp["waypoints"] = _points(args.waypoints)
        log.append(f"waypoints set by hand ({len(inp['waypoints'])})")
    if args.straight is not None:
        inp["straight"] = [int(v) for v in args.straight.split(",") if v != ""]
        log.append(f"straight segments {inp['straight']}")
    if args.mid is not None:
        inp["midpiece_end"] = None if args.mid == "none" else "auto" if args.mid == "auto" else _points(args.mid)[0]
        log.append("midpiece end " + {"none": "not visible", "auto": "at the half-level of the darkness drop (checked)"}.get(
            args.mid, "placed by hand"))
    if args.head_level is not None:
        inp["head_level"] = float(args.head_level)
        log.append(f"head level {args.head_level}")
    if args.head_polygon is not None:
        inp["head_polygon"] = None if args.head_polygon == "auto" else _points(args.head_polygon)
        log.append("head polygon " + ("auto" if args.head_polygon == "auto" else "drawn by hand"))
    if args.end is not None:
        end = {"visible": "clear", "hidden": "cut"}.get(args.end, args.end)
        cell["tail_end"] = end
        cell["tail_end_visible"] = end in ("clear", "fades")
        log.append(f"tail end {end}")
    if args.difficulty is not None:
        cell["difficulty"] = args.difficulty
    if args.reason:
        cell["hard_reasons"] = sorted(set(cell.get("hard_reasons") or []) | set(args.reason))
    if args.note is not None:
        cell["notes"] = args.note
    if args.reject is not None:
        cell["status"] = "rejected"
        cell["notes"] = args.reject
        log.append("rejected: " + args.reject)
    if args.accept:
        cell["status"] = "accepted"
        log.append("accepted")
    if log:
        base_txt = inp.get("proposal", "").replace(" (unedited)", "").replace("; edited by hand", "")
        inp["proposal"] = base_txt + "; edited by hand"
        cell.setdefault("edits", []).append("; ".join(log))
    if cell.get("status") == "accepted":
        cell["geometry"] = build_cell(cell, load_crop(cell))
    assign_splits(data)
    save_cells(data)
    write_measurements(data)
    if args.render:
        out = Path(args.render)
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / f"{cell['id']}.png"), render_cell(cell, load_crop(cell)))
    g = cell.get("geometry") or {}
    print(cell["id"], cell["status"], {k: round(v["length_px"], 1) for k, v in g.items() if v and "length_px" in v})


def cmd_summary(args) -> None:
    data = load_cells()
    acc = [c for c in data["cells"] if c.get("status") == "accepted"]
    rej = [c for c in data["cells"] if c.get("status") != "accepted"]
    print(f"{len(acc)} accepted, {len(rej)} rejected")
    for c in acc:
        g = c["geometry"] or {}
        h = g.get("head") or {}
        m = g.get("midpiece") or {}
        t = g.get("tail") or {}
        print(f"{c['id']:10s} {c.get('split') or '-':5s} {c.get('difficulty'):5s} L {h.get('length_um', np.nan):4.1f} "
              f"W {h.get('width_um', np.nan):4.1f} mid {m.get('length_um', np.nan):4.1f} "
              f"ang {m.get('angle_deg', np.nan):5.1f} tail {t.get('length_um', np.nan):5.1f} um "
              f"end {'Y' if c.get('tail_end_visible') else 'n'}")
    for c in rej:
        print(f"{c['id']:10s} rejected: {c.get('notes')}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add")
    a.add_argument("source", choices=sorted(SOURCES))
    a.add_argument("--track", type=int)
    a.add_argument("--frame", type=int, default=0)
    a.add_argument("--label", type=int)
    a.add_argument("--centre", type=float, nargs=2, default=None, help="crop centre in frame px")
    a.add_argument("--force", action="store_true")
    a.set_defaults(fn=cmd_add)
    for name, fn in (("propose", cmd_propose), ("build", cmd_build)):
        p = sub.add_parser(name)
        p.add_argument("ids", nargs="*")
        p.set_defaults(fn=fn)
    r = sub.add_parser("render")
    r.add_argument("ids", nargs="*")
    r.add_argument("--out", default=str(ROOT / "benchmarks" / "_work" / "morph_truth"))
    r.add_argument("--sheet", action="store_true")
    r.set_defaults(fn=cmd_render)
    c = sub.add_parser("crops")
    c.add_argument("--check", action="store_true")
    c.set_defaults(fn=cmd_crops)
    e = sub.add_parser("edit", help="hand corrections of one cell (recorded in its edits)")
    e.add_argument("id")
    e.add_argument("--waypoints", help='"x,y x,y ..." crop px, head base first')
    e.add_argument("--straight", help="segment indices drawn straight, e.g. 2,3 ('' for none)")
    e.add_argument("--mid", help='"x,y" midpiece end, or none')
    e.add_argument("--head-level", type=float)
    e.add_argument("--head-polygon", help='"x,y x,y ..." or auto')
    e.add_argument("--end", choices=["clear", "fades", "cut", "visible", "hidden"],
                   help="clear: the line ends crisply; fades: it fades out in clean background (its visible "
                        "end); cut: it is lost at a crossing, halo, debris, border or goes on out of focus "
                        "(visible / hidden: old names of clear / cut)")
    e.add_argument("--difficulty", choices=["easy", "hard"])
    e.add_argument("--reason", action="append", default=[])
    e.add_argument("--note")
    e.add_argument("--reject")
    e.add_argument("--accept", action="store_true")
    e.add_argument("--render", nargs="?", const=str(ROOT / "benchmarks" / "_work" / "morph_truth"), default=None)
    e.set_defaults(fn=cmd_edit)
    s = sub.add_parser("summary")
    s.set_defaults(fn=cmd_summary)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
