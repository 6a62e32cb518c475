"""Shared helpers of the real-data benchmarks (``benchmarks/real_*.py``, ``id_switches_real.py``).

- where the real data lives (``../shared/data`` beside the checkout; never copied into the repo)
  and :func:`require` to skip cleanly when it is absent;
- VISEM YOLO label files (``cls cx cy w h``, normalised) -> pixel arrays and truth frames;
- centre matching at <= 8 px with ignored classes (cluster 1, pinhead 2): a detection that
  matches no sperm head but lies on an ignored object is neither TP nor FP;
- the official gzipped MOT ground-truth tracks (``gt/videoNN_gt_mot.txt.gz``);
- frames of a video streamed in batches; the default detector built through the public factory;
- peer detectors of public Python CASA code (global Otsu + connected components; OpenCV
  ``SimpleBlobDetector``) as baselines;
- the header lines every results file carries (command, date, machine).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
import platform
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spermtrack.types import EDGE_OFFSET_PX

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
VISEM = SHARED_DATA / "visem"
TRAIN = VISEM / "Train"
VIDEO11 = TRAIN / "11" / "11.mp4"
LABELS11 = TRAIN / "11" / "labels"
FRAMES12 = VISEM / "frames12"
GT_DIR = VISEM / "gt"
S0001 = SHARED_DATA / "real_other" / "S_0001.mp4"
RESULTS = ROOT / "benchmarks" / "results"

SPERM, CLUSTER, PINHEAD = 0, 1, 2
MATCH_PX = 8.0


def require(*paths: Path) -> bool:
    """True when every path exists; else print which is missing (stderr) and return False."""
    missing = [p for p in paths if not Path(p).exists()]
    for p in missing:
        print(f"skipping: {p} is not present (real data lives in ../shared/data)", file=sys.stderr)
    return not missing


def rel(p: Path) -> str:
    """A path as the user would type it from the repository root (``../shared/...``)."""
    try:
        return os.path.relpath(p, ROOT)
    except ValueError:
        return str(p)


# --- labels and truth -------------------------------------------------------------------------

def read_yolo_labels(path: str | Path, width: int = 640, height: int = 480) -> np.ndarray:
    """``(N, 5)`` float array ``cls, cx, cy, w, h`` in pixels from a YOLO label file, centres in
    spermtrack's pixel-centre coordinates (the labels' edge coordinates minus
    :data:`spermtrack.types.EDGE_OFFSET_PX`).

    An empty file gives ``(0, 5)``. Blank lines are skipped; a malformed line raises ValueError
    naming the file and line.
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 5:
                raise ValueError(f"{path}:{n}: expected 'cls cx cy w h', got {line.strip()!r}")
            rows.append([float(v) for v in parts])
    a = np.asarray(rows, np.float64).reshape(-1, 5)
    a[:, 1:] *= np.array([width, height, width, height], np.float64)
    a[:, 1:3] -= EDGE_OFFSET_PX
    return a


def label_path(labels_dir: Path, video_id: str | int, frame: int) -> Path:
    return Path(labels_dir) / f"{video_id}_frame_{int(frame)}.txt"


@dataclass
class Truth:
    """One frame's labels: centres ``xy (N, 2)``, boxes ``xyxy (N, 4)``, ``cls (N,)``."""

    xy: np.ndarray
    xyxy: np.ndarray
    cls: np.ndarray

    @classmethod
    def from_labels(cls, a: np.ndarray) -> "Truth":
        a = np.asarray(a, np.float64).reshape(-1, 5)
        c, x, y, w, h = a.T
        return cls(np.c_[x, y], np.c_[x - w / 2, y - h / 2, x + w / 2, y + h / 2], c.astype(np.int64))

    @property
    def n_sperm(self) -> int:
        return int((self.cls == SPERM).sum())


@dataclass
class MatchCounts:
    """Summed centre-matching counts over frames, and per-frame counts."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0
    n_pred: list[int] = field(default_factory=list)
    n_true: list[int] = field(default_factory=list)
    errors_px: list[float] = field(default_factory=list)

    def add(self, other: "MatchCounts") -> "MatchCounts":
        return MatchCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                           self.ignored + other.ignored, self.n_pred + other.n_pred,
                           self.n_true + other.n_true, self.errors_px + other.errors_px)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def n_frames(self) -> int:
        return len(self.n_pred)


def match_frame(pred_xy: np.ndarray, truth: Truth, max_dist_px: float = MATCH_PX,
                ignore_cls: Sequence[int] = (CLUSTER, PINHEAD)) -> MatchCounts:
    """Match predicted centres to the sperm heads of one frame (Hungarian, <= ``max_dist_px``).

    Sperm heads are matched first (one to one, :func:`spermtrack.evaluate.detmetrics.match_centres`).
    A prediction left unmatched whose centre lies inside an ignored object's box or within
    ``max_dist_px`` of its centre is *ignored* (neither TP nor FP; several may sit on one cluster).
    Ignored objects do not count towards recall.
    """
    pred_xy = np.asarray(pred_xy, np.float64).reshape(-1, 2)
    pi, ti, fp, n_ign = match_frame_detail(pred_xy, truth, max_dist_px, ignore_cls)
    txy = truth.xy[truth.cls == SPERM]
    err = np.linalg.norm(pred_xy[pi] - txy[ti], axis=1).tolist() if len(pi) else []
    return MatchCounts(tp=len(pi), fp=len(fp), fn=len(txy) - len(ti), ignored=n_ign,
                       n_pred=[len(pred_xy)], n_true=[len(txy)], errors_px=err)


def match_frame_detail(pred_xy: np.ndarray, truth: Truth, max_dist_px: float = MATCH_PX,
                       ignore_cls: Sequence[int] = (CLUSTER, PINHEAD)
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`match_frame`'s matching itself: ``(matched prediction indices, the sperm-label
    indices they match (among ``truth.cls == SPERM``), false-positive prediction indices,
    number of ignored predictions)``."""
    from spermtrack.evaluate.detmetrics import match_centres

    pred_xy = np.asarray(pred_xy, np.float64).reshape(-1, 2)
    sperm = truth.cls == SPERM
    pi, ti = match_centres(pred_xy, truth.xy[sperm], max_dist_px)
    rest = np.setdiff1d(np.arange(len(pred_xy)), pi)
    ign = np.isin(truth.cls, list(ignore_cls))
    ignored = np.zeros(len(rest), bool)
    if len(rest) and ign.any():
        p = pred_xy[rest]
        b = truth.xyxy[ign]
        inside = ((p[:, None, 0] >= b[None, :, 0]) & (p[:, None, 0] <= b[None, :, 2])
                  & (p[:, None, 1] >= b[None, :, 1]) & (p[:, None, 1] <= b[None, :, 3]))
        near = np.linalg.norm(p[:, None, :] - truth.xy[ign][None], axis=2) <= max_dist_px
        ignored = (inside | near).any(axis=1)
    return np.asarray(pi), np.asarray(ti), rest[~ignored], int(ignored.sum())


def score_frames(preds: Iterable[np.ndarray], truths: Iterable[Truth], max_dist_px: float = MATCH_PX) -> MatchCounts:
    """:func:`match_frame` summed over frames (``preds``: one ``(N, 2)`` centre array a frame)."""
    total = MatchCounts()
    for p, t in zip(preds, truths, strict=True):
        total = total.add(match_frame(p, t, max_dist_px))
    return total


def det_centres(det, classes: Sequence[int] | None = (SPERM,)) -> np.ndarray:
    """Centres of a :class:`~spermtrack.types.Detections`, only the given predicted classes."""
    xy = det.centers
    if classes is not None and len(det):
        xy = xy[np.isin(det.cls, list(classes))]
    return np.asarray(xy, np.float64).reshape(-1, 2)


# --- ground-truth tracks ----------------------------------------------------------------------

def gt_video_ids() -> list[int]:
    """Video ids of the official gt track files present (sorted)."""
    return sorted(int(p.name[5:7]) for p in GT_DIR.glob("video*_gt_mot.txt.gz"))


def read_gt_tracks(video_id: int, sperm_only: bool = True) -> pd.DataFrame:
    """Tracks table (``track_id, frame`` 0-based, ``x, y`` box centre, ``w, h``, ``cls``) of
    ``gt/video{id}_gt_mot.txt.gz`` (MOT: ``frame(1-based),id,left,top,w,h,1,class,1``, edge
    coordinates as the YOLO labels they come from; centres here in pixel-centre coordinates)."""
    from spermtrack.types import make_tracks

    path = GT_DIR / f"video{int(video_id)}_gt_mot.txt.gz"
    a = pd.read_csv(path, header=None).to_numpy(np.float64)
    df = pd.DataFrame({"track_id": a[:, 1].astype(np.int64), "frame": a[:, 0].astype(np.int64) - 1,
                       "x": a[:, 2] + a[:, 4] / 2 - EDGE_OFFSET_PX, "y": a[:, 3] + a[:, 5] / 2 - EDGE_OFFSET_PX,
                       "w": a[:, 4], "h": a[:, 5],
                       "conf": 1.0, "cls": a[:, 7].astype(np.int64)})
    if sperm_only:
        df = df[df["cls"] == SPERM]
    return make_tracks(df.reset_index(drop=True), source=str(path))


def with_fixed_boxes(tracks: pd.DataFrame, size_px: float = 22.0) -> pd.DataFrame:
    """A copy whose boxes are all ``size_px`` square at their centres (tracking scores then
    measure centre accuracy, not box-size agreement)."""
    out = tracks.copy()
    out["w"] = float(size_px)
    out["h"] = float(size_px)
    return out


# --- frames and detectors ---------------------------------------------------------------------

def iter_frame_batches(video: Path, wanted: Iterable[int] | None = None, batch: int = 32,
                       ) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(frame indices, (n, H, W) uint8 stack)`` of the wanted frames (all when None), in order,
    streamed from the video (the whole video is never held in memory)."""
    from spermtrack.io.video import VideoReader

    want = None if wanted is None else set(int(f) for f in wanted)
    last = None if want is None else max(want)
    idx: list[int] = []
    buf: list[np.ndarray] = []
    with VideoReader(video) as reader:
        for i, _, img in reader.iter_frames():
            if want is None or i in want:
                idx.append(i)
                buf.append(img)
                if len(buf) == batch:
                    yield idx, np.stack(buf)
                    idx, buf = [], []
            if last is not None and i >= last:
                break
    if buf:
        yield idx, np.stack(buf)


def make_default_detector(polarity: str = "auto"):
    """``(detector, how)``: ``make_detector("blob", polarity=...)`` when the signature accepts
    ``polarity``, else ``make_detector("blob")``; ``how`` says which call was made."""
    from spermtrack.detect.factory import make_detector

    try:
        det = make_detector("blob", polarity=polarity)
        return det, f'make_detector("blob", polarity="{polarity}")'
    except TypeError:
        pass
    return make_detector("blob"), 'make_detector("blob") (polarity not accepted by the current signature)'


def calibration_of(det) -> object:
    """The detector's ``calibration`` after detection, if it exposes one (else None)."""
    cal = getattr(det, "calibration", None)
    if callable(cal) and not isinstance(cal, dict):
        try:
            cal = cal()
        except TypeError:
            return None
    return cal


def format_calibration(cal) -> str:
    if cal is None:
        return "the detector exposes no `calibration` attribute"
    if hasattr(cal, "__dict__") and not isinstance(cal, dict):
        cal = dict(vars(cal))
    if isinstance(cal, dict):
        def f(v):
            if isinstance(v, (float, np.floating)):
                return f"{float(v):.4g}"
            if isinstance(v, np.ndarray):
                return np.array2string(v, precision=3, threshold=8)
            if isinstance(v, dict):
                return "{" + ", ".join(f"{k}: {f(x)}" for k, x in v.items()) + "}"
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(f(x) for x in v) + "]"
            return str(v)
        return "; ".join(f"{k} = {f(v)}" for k, v in cal.items())
    return str(cal)


def otsu_cc_centres(frame: np.ndarray, polarity: str = "bright", min_area_px: int = 8,
                    max_area_px: int = 400, blur_px: int = 3) -> np.ndarray:
    """Peer baseline: Gaussian blur, one global Otsu threshold, 8-connected components, area
    filter, component centroids (the recipe of public Python CASA scripts)."""
    import cv2

    img = cv2.GaussianBlur(frame, (blur_px, blur_px), 0) if blur_px > 1 else frame
    mode = cv2.THRESH_BINARY if polarity == "bright" else cv2.THRESH_BINARY_INV
    _, bw = cv2.threshold(img, 0, 255, mode | cv2.THRESH_OTSU)
    n, _, stats, cent = cv2.connectedComponentsWithStats(bw, connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    ok = (area >= min_area_px) & (area <= max_area_px)
    return cent[1:][ok].astype(np.float64).reshape(-1, 2)


def simple_blob_centres(frame: np.ndarray, polarity: str = "bright", min_area_px: float = 10,
                        max_area_px: float = 400) -> np.ndarray:
    """Peer baseline: OpenCV ``SimpleBlobDetector`` with its default thresholds, colour set by
    ``polarity``, area filter only (circularity / convexity / inertia filters off)."""
    import cv2

    p = cv2.SimpleBlobDetector_Params()
    p.filterByColor = True
    p.blobColor = 255 if polarity == "bright" else 0
    p.filterByArea = True
    p.minArea, p.maxArea = float(min_area_px), float(max_area_px)
    p.filterByCircularity = p.filterByConvexity = p.filterByInertia = False
    kps = cv2.SimpleBlobDetector_create(p).detect(frame)
    return np.array([k.pt for k in kps], np.float64).reshape(-1, 2)


# --- results files ----------------------------------------------------------------------------

def header(title: str, script: str, argv: Sequence[str] | None = None) -> list[str]:
    """Title, command line, date and machine lines of a results file (``script``: its file name)."""
    args = sys.argv[1:] if argv is None else list(argv)
    cmd = " ".join(["python", f"benchmarks/{Path(script).name}", *args])
    return [f"# {title}", "",
            f"Command: `{cmd}`  ",
            f"Date: {_dt.datetime.now().isoformat(timespec='minutes')}  ",
            f"Machine: {machine()}  ",
            f"Code: {git_rev()}", ""]


def write_results(path: Path, text: str) -> Path:
    """Write a results file atomically (complete or absent, never half-written)."""
    from spermtrack.io.atomic import write_text_atomic

    return write_text_atomic(path, text if text.endswith("\n") else text + "\n")


def publish(path: Path, lines: list[str], write: bool = True) -> str:
    """Print a results page and, unless ``write`` is False, write it atomically to ``path``."""
    text = "\n".join(lines)
    print(text)
    if write:
        write_results(path, text)
        print(f"wrote {path}", file=sys.stderr)
    return text


def machine() -> str:
    try:
        load = "load average %.1f / %.1f / %.1f (1 / 5 / 15 min) when the results were written" % os.getloadavg()
    except OSError:
        load = "load average unknown"
    return (f"{platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
            f"(shared with other jobs; {load}), Python {platform.python_version()}, {platform.platform()}")


def git_rev() -> str:
    """The checkout's commit (and whether spermtrack/ has uncommitted changes), or where the
    imported spermtrack package lives when it is not this checkout's."""
    import subprocess

    import spermtrack

    pkg = Path(spermtrack.__file__).resolve().parent
    if pkg != (ROOT / "spermtrack").resolve():
        return f"spermtrack imported from {pkg} (not this checkout), version {getattr(spermtrack, '__version__', '?')}"

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "spermtrack"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"commit {rev}" + (" + uncommitted changes under spermtrack/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def accepts_kwarg(fn, name: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return name in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
