"""Read VISEM-Tracking datasets (and ``spermtrack synth`` output, which uses the same layout).

Layout (VISEM_FORMAT.md)::

    ROOT/Train/<vid>/<vid>.mp4
                    images/<vid>_frame_<n>.jpg                    n is 0-based
                    labels/<vid>_frame_<n>.txt                    `class cx cy w h` (0..1)
                    labels_ftid/<vid>_frame_<n>_with_ftid.txt     `track_id class cx cy w h`

Rules this reader enforces:

- A **missing** label file means the frame was *not annotated*; an **empty** file means it was
  annotated and holds no object. :attr:`VisemVideo.annotated` keeps the difference.
- Track ids are Labelbox strings; they are mapped to dense ints ``0..K-1`` per video in order of
  first appearance (frame, then line); :attr:`VisemVideo.id_map` keeps the mapping.
- A malformed line raises :class:`~spermtrack.errors.InputFileError` naming the file and line.
- Boxes are converted to pixels with the frame size of the video (probed from the mp4, else an
  image, else ``gt/meta.json``, else 640x480 with a warning), and their centres from the labels'
  edge coordinates to spermtrack's pixel-centre coordinates (:data:`spermtrack.types.EDGE_OFFSET_PX`).

:func:`validate` checks per-frame class counts against ``sperm_counts_per_frame.csv`` (the
official counts; ``spermtrack synth`` writes its own) and the internal consistency of a folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError
from spermtrack.types import CLASS_NAMES, EDGE_OFFSET_PX, VideoMeta, make_tracks

#: The official VISEM-Tracking split (video ids).
OFFICIAL_SPLIT: dict[str, tuple[int, ...]] = {
    "train": (11, 12, 13, 14, 15, 19, 21, 22, 23, 24, 29, 30, 35, 36, 38, 47),
    "val": (52, 54, 60, 82),
}
DEFAULT_SIZE = (640, 480)
#: The official per-frame counts, where the project's ``shared/`` folder sits beside the checkout.
SHARED_COUNTS_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "visem" / "sperm_counts_per_frame.csv"
_FRAME_RE = re.compile(r"_frame_(\d+)(?:_with_ftid)?\.txt$")
COUNT_COLUMNS = ("sperm_count", "cluster_count", "small_or_pinhead_count")


@dataclass
class VisemVideo:
    """One annotated video.

    Attributes:
        video_id: the folder name (participant id for real VISEM).
        folder: the video folder.
        video_path: the mp4, or None when the folder has none.
        meta: :class:`~spermtrack.types.VideoMeta` (fps, size, frame count and their sources).
        tracks: ``Tracks`` table (0-based frames, px) from ``labels_ftid``, with an extra
            ``track_uid`` column (the original string id); empty when the folder has no ids.
        boxes: every box of ``labels/`` (or of ``labels_ftid`` when ``labels/`` is absent):
            ``frame, cls, x, y, w, h`` in px.
        id_map: original string id -> dense int id.
        annotated: ``(n_frames,) bool``: True where a label file exists.
        classes: class id -> name.
        split: ``"train"``, ``"val"`` or the name of the parent folder (lower case).
        warnings: notes about fallbacks used while reading.
    """

    video_id: str
    folder: Path
    video_path: Path | None
    meta: VideoMeta
    tracks: pd.DataFrame
    boxes: pd.DataFrame
    id_map: dict[str, int]
    annotated: np.ndarray
    classes: dict[int, str] = field(default_factory=lambda: dict(CLASS_NAMES))
    split: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def annotated_frames(self) -> np.ndarray:
        """0-based indices of the frames that have a label file."""
        return np.flatnonzero(self.annotated)

    def class_counts(self) -> pd.DataFrame:
        """Per annotated frame: counts of each class (columns of the official counts CSV)."""
        frames = self.annotated_frames
        out = pd.DataFrame(0, index=pd.Index(frames, name="frame"), columns=list(COUNT_COLUMNS))
        if len(self.boxes):
            ct = self.boxes.groupby(["frame", "cls"]).size().unstack(fill_value=0)
            for cls_id, col in enumerate(COUNT_COLUMNS):
                if cls_id in ct.columns:
                    out.loc[ct.index, col] = ct[cls_id].to_numpy()
        return out


def is_video_folder(path: Path) -> bool:
    return path.is_dir() and (
        (path / "labels").is_dir() or (path / "labels_ftid").is_dir() or (path / f"{path.name}.mp4").is_file()
    )


def list_video_folders(path: str | Path, split: str | None = None) -> list[Path]:
    """Video folders under a dataset root, a split folder, or the folder itself.

    Args:
        path: ``ROOT`` (holding ``Train/`` ...), a split folder (``ROOT/Train``) or one video folder.
        split: ``"train"``, ``"val"``, ``"all"`` or None (all). Real VISEM ids use the official
            split; other ids use their parent folder's name.

    Raises:
        InputFileError: ``path`` does not exist or holds no video folder (or none of ``split``).
    """
    root = Path(path)
    if not root.exists():
        raise InputFileError(root, "no such dataset folder")
    if is_video_folder(root):
        found = [root]
    else:
        found = sorted((p for p in root.iterdir() if is_video_folder(p)), key=_natural_key)
        if not found:
            for sub in sorted(p for p in root.iterdir() if p.is_dir()):
                found += sorted((p for p in sub.iterdir() if is_video_folder(p)), key=_natural_key)
    if not found:
        raise InputFileError(root, "holds no VISEM-Tracking video folder (expected <vid>/labels or "
                             "<vid>/labels_ftid, directly or under Train/)")
    if split not in (None, "all"):
        if split not in ("train", "val", "test"):
            raise InputFileError(root, f"unknown split {split!r}; use train, val or all")
        found = [p for p in found if split_of(p) == split]
        if not found:
            raise InputFileError(root, f"holds no video of split {split!r}")
    return found


def split_of(folder: Path) -> str:
    """The split of a video folder: official for VISEM ids, else the parent folder's name."""
    if folder.name.isdigit():
        vid = int(folder.name)
        for name, ids in OFFICIAL_SPLIT.items():
            if vid in ids:
                return name
    return folder.parent.name.lower()


def read_visem(path: str | Path, split: str | None = None, *, fps: float | None = None) -> list[VisemVideo]:
    """Read every video folder of a root, a split or one folder (see :func:`list_video_folders`)."""
    return [read_visem_video(p, fps=fps) for p in list_video_folders(path, split)]


def read_visem_video(folder: str | Path, *, fps: float | None = None) -> VisemVideo:
    """Read one video folder: metadata, ground-truth tracks, boxes and annotated frames.

    Args:
        folder: the video folder (``.../Train/<vid>``).
        fps: the frame rate to use; default: the mp4's, else ``gt/meta.json``'s, else 50 (flagged).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "no such video folder")
    vid = folder.name
    warnings: list[str] = []
    video_path = folder / f"{vid}.mp4"
    video_path = video_path if video_path.is_file() else None
    ftid_files = _label_files(folder / "labels_ftid")
    plain_files = _label_files(folder / "labels")
    if not ftid_files and not plain_files and video_path is None:
        raise InputFileError(folder, "has no labels/, labels_ftid/ nor video")

    meta_json = _read_meta_json(folder)
    width, height, n_video, fps_v, codec, fps_source = _frame_geometry(folder, video_path, meta_json, fps, warnings)
    last_label = max([*ftid_files, *plain_files], default=-1)
    if n_video is not None and last_label >= n_video:
        warnings.append(f"label files go up to frame {last_label} but the video has {n_video} frames")
    n_frames = max(n_video or 0, last_label + 1)
    annotated = np.zeros(n_frames, dtype=bool)
    annotated[list(ftid_files or plain_files)] = True

    size = np.array([width, height, width, height], dtype=np.float64)
    id_map: dict[str, int] = {}
    tracks = _read_ftid(ftid_files, size, id_map)
    if plain_files:
        boxes = _read_plain(plain_files, size)
    else:
        boxes = tracks[["frame", "cls", "x", "y", "w", "h"]].copy()
    meta = VideoMeta(
        path=str(video_path or folder), fps=fps_v, width=width, height=height, n_frames=n_frames,
        codec=codec, duration_s=n_frames / fps_v, fps_source=fps_source,
        n_frames_source="container" if n_video is not None else "labels", warnings=tuple(warnings),
    )
    return VisemVideo(vid, folder, video_path, meta, tracks, boxes, id_map, annotated,
                      split=split_of(folder), warnings=warnings)


@dataclass
class ValidationReport:
    """Result of :func:`validate`. ``ok`` is True when no problem was found."""

    video_id: str
    frames_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(video: VisemVideo, counts_csv: str | Path | None = None, *, max_problems: int = 20) -> ValidationReport:
    """Check a video's annotations.

    Checks: per-frame class counts equal ``counts_csv`` (rows ``<vid>_frame_<n>``; default: a
    ``sperm_counts_per_frame.csv`` in the dataset root or its parent, when present), every frame
    listed there has a label file; ``labels/`` and ``labels_ftid/`` agree frame by frame; boxes lie
    in the frame; ``gt/gt.txt`` (when present) equals the ``labels_ftid`` tracks.
    """
    rep = ValidationReport(video.video_id)
    counts = video.class_counts()
    rep.frames_checked = len(counts)
    csv_path = Path(counts_csv) if counts_csv is not None else _find_counts_csv(video.folder)
    if csv_path is not None:
        ref = read_counts_csv(csv_path)
        ref = ref[ref["video_id"] == video.video_id].set_index("frame")
        missing = ref.index.difference(counts.index)
        if len(missing):
            rep.problems.append(f"{len(missing)} frames listed in {csv_path} have no label file "
                                f"(first: frame {int(missing[0])})")
        common = ref.index.intersection(counts.index)
        diff = (ref.loc[common, list(COUNT_COLUMNS)] != counts.loc[common, list(COUNT_COLUMNS)]).any(axis=1)
        for f in common[diff.to_numpy()][:max_problems]:
            rep.problems.append(f"frame {int(f)}: counts {counts.loc[f].tolist()} != {csv_path.name} "
                                f"{ref.loc[f, list(COUNT_COLUMNS)].tolist()}")
    if len(video.tracks) and len(video.boxes):
        a = video.tracks.groupby("frame").size()
        b = video.boxes.groupby("frame").size()
        bad = a.index.symmetric_difference(b.index).union(a.index.intersection(b.index)[
            (a.loc[a.index.intersection(b.index)] != b.loc[a.index.intersection(b.index)]).to_numpy()])
        if len(bad):
            rep.problems.append(f"labels/ and labels_ftid/ disagree on {len(bad)} frames (first: {int(bad[0])})")
    W, H = video.meta.width, video.meta.height
    bx = video.boxes
    # in pixel-centre coordinates the frame spans -0.5 .. W - 0.5; half a pixel of tolerance
    x0, y0 = bx.x + EDGE_OFFSET_PX - bx.w / 2, bx.y + EDGE_OFFSET_PX - bx.h / 2
    outside = (x0 < -0.5) | (y0 < -0.5) | (x0 + bx.w > W + 0.5) | (y0 + bx.h > H + 0.5)
    if outside.any():
        rep.problems.append(f"{int(outside.sum())} boxes extend outside the {W}x{H} frame")
    gt = video.folder / "gt" / "gt.txt"
    if gt.is_file() and len(video.tracks):
        from spermtrack.io.mot import read_mot

        mot = read_mot(gt)
        mine = video.tracks[["track_id", "frame"]].reset_index(drop=True)
        theirs = mot[["track_id", "frame"]].reset_index(drop=True)
        if len(mine) != len(theirs) or not (mine.to_numpy() == theirs.to_numpy()).all():
            rep.problems.append(f"{gt} and labels_ftid/ hold different (track, frame) pairs")
        elif not np.allclose(mot[["x", "y"]].to_numpy(), video.tracks[["x", "y"]].to_numpy(), atol=1.0):
            rep.problems.append(f"{gt} box centres differ from labels_ftid/ by more than 1 px")
    return rep


def read_counts_csv(path: str | Path) -> pd.DataFrame:
    """The official per-frame counts: columns ``video_id, frame`` + :data:`COUNT_COLUMNS`."""
    path = Path(path)
    df = pd.read_csv(path, skipinitialspace=True)
    df.columns = [c.strip() for c in df.columns]
    need = {"frame_name", *COUNT_COLUMNS}
    if not need.issubset(df.columns):
        raise InputFileError(path, f"expected columns {sorted(need)}, found {list(df.columns)}")
    parts = df["frame_name"].astype(str).str.extract(r"^(.+)_frame_(\d+)$")
    if parts.isna().any(axis=None):
        bad = int(np.flatnonzero(parts.isna().any(axis=1).to_numpy())[0])
        raise InputFileError(path, f"frame_name {df['frame_name'].iloc[bad]!r} is not <vid>_frame_<n>", line=bad + 2)
    out = pd.DataFrame({"video_id": parts[0], "frame": parts[1].astype(np.int64)})
    for c in COUNT_COLUMNS:
        out[c] = df[c].astype(np.int64)
    return out


def write_counts_csv(path: str | Path, videos: list[VisemVideo]) -> Path:
    """Write per-frame class counts in the official format (what :func:`validate` reads)."""
    from spermtrack.io.atomic import write_text_atomic

    lines = ["frame_name, sperm_count, cluster_count, small_or_pinhead_count"]
    for v in videos:
        for f, row in v.class_counts().iterrows():
            lines.append(f"{v.video_id}_frame_{f},{row.iloc[0]},{row.iloc[1]},{row.iloc[2]}")
    return write_text_atomic(path, "\n".join(lines) + "\n")


def iter_video_frames(v: VisemVideo, frames) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame, gray uint8 image)`` for the chosen frames, in order: from ``images/`` when they
    are there, else decoded (streamed) from the video."""
    import cv2

    img_dir = v.folder / "images"
    wanted = set(int(f) for f in frames)
    if not wanted:
        return
    if img_dir.is_dir() and all((img_dir / f"{v.video_id}_frame_{f}.jpg").is_file() for f in list(wanted)[:3]):
        for f in sorted(wanted):
            p = img_dir / f"{v.video_id}_frame_{f}.jpg"
            img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise InputFileError(p, "cannot be read as an image")
            yield f, img
        return
    if v.video_path is None:
        raise InputFileError(v.folder, "has neither images/ nor a video to take frames from")
    from spermtrack.io.video import VideoReader

    last = max(wanted)
    with VideoReader(v.video_path) as reader:
        for idx, _, img in reader.iter_frames():
            if idx in wanted:
                yield idx, img
            if idx >= last:
                break


# --- internals -------------------------------------------------------------------------------

def _natural_key(p: Path):
    return (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name)


def _label_files(folder: Path) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    out = {}
    for p in folder.iterdir():
        m = _FRAME_RE.search(p.name)
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def _read_meta_json(folder: Path) -> dict:
    p = folder / "gt" / "meta.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFileError(p, f"not valid JSON ({err.msg})", line=err.lineno) from None


def _frame_geometry(folder, video_path, meta_json, fps, warnings):
    """(width, height, n_frames or None, fps, codec, fps_source) from the best available source."""
    width = height = n_video = None
    codec = ""
    fps_v, fps_source = (float(fps), "user") if fps is not None else (None, "")
    if video_path is not None:
        from spermtrack.io.video import probe_video

        vm = probe_video(video_path)
        width, height, n_video, codec = vm.width, vm.height, vm.n_frames, vm.codec
        if fps_v is None:
            fps_v, fps_source = vm.fps, vm.fps_source
    if width is None and meta_json.get("width"):
        width, height = int(meta_json["width"]), int(meta_json["height"])
    if width is None:
        img = next(iter(sorted((folder / "images").glob("*.jpg"))), None) if (folder / "images").is_dir() else None
        if img is not None:
            import cv2

            im = cv2.imread(str(img), cv2.IMREAD_GRAYSCALE)
            if im is not None:
                height, width = im.shape
    if width is None:
        width, height = DEFAULT_SIZE
        warnings.append(f"frame size unknown (no video, image or meta.json); assumed {width}x{height}")
    if fps_v is None and meta_json.get("fps"):
        fps_v, fps_source = float(meta_json["fps"]), "metadata"
    if fps_v is None:
        fps_v, fps_source = 50.0, "fallback"
        warnings.append("fps unknown (no video or meta.json); assumed 50 (VISEM is recorded at ~50 fps)")
    return int(width), int(height), n_video, float(fps_v), codec, fps_source


def _parse_label_file(path: Path, n_fields: int, with_id: bool):
    """Yield ``(line_no, fields)``; raise on a malformed line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, "is not a text label file") from None
    for i, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != n_fields:
            raise InputFileError(path, f"expected {n_fields} fields "
                                 f"({'track_id ' if with_id else ''}class cx cy w h), got {len(parts)}: {line.strip()!r}", line=i)
        nums = parts[1:] if with_id else parts
        try:
            cls = int(nums[0])
            vals = [float(v) for v in nums[1:]]
        except ValueError:
            raise InputFileError(path, f"non-numeric value in {line.strip()!r}", line=i) from None
        if cls not in CLASS_NAMES:
            raise InputFileError(path, f"unknown class {cls} (expected 0 sperm, 1 cluster, 2 small_or_pinhead)", line=i)
        if not all(np.isfinite(vals)) or not all(-1e-6 <= v <= 1 + 1e-6 for v in vals):
            raise InputFileError(path, f"box values must be normalised to [0, 1]: {line.strip()!r}", line=i)
        yield i, (parts[0] if with_id else None, cls, vals)


def _to_pixels(rows, size: np.ndarray) -> np.ndarray:
    """``(N, 4)`` boxes ``cx cy w h`` in pixels, centres in pixel-centre coordinates."""
    box = np.asarray(rows, np.float64).reshape(-1, 4) * size
    box[:, :2] -= EDGE_OFFSET_PX
    return box


def _read_ftid(files: dict[int, Path], size: np.ndarray, id_map: dict[str, int]) -> pd.DataFrame:
    rows_f, rows_id, rows_cls, rows_box, uids = [], [], [], [], []
    for frame, path in files.items():
        seen: set[str] = set()
        for line_no, (uid, cls, vals) in _parse_label_file(path, 6, True):
            if uid in seen:
                raise InputFileError(path, f"track id {uid} appears twice in one frame", line=line_no)
            seen.add(uid)
            tid = id_map.setdefault(uid, len(id_map))
            rows_f.append(frame)
            rows_id.append(tid)
            rows_cls.append(cls)
            rows_box.append(vals)
            uids.append(uid)
    box = _to_pixels(rows_box, size)
    df = pd.DataFrame({"track_id": rows_id, "frame": rows_f, "x": box[:, 0], "y": box[:, 1],
                       "w": box[:, 2], "h": box[:, 3], "conf": 1.0, "cls": rows_cls, "track_uid": uids})
    return make_tracks(df, source="labels_ftid")


def _read_plain(files: dict[int, Path], size: np.ndarray) -> pd.DataFrame:
    frames, classes, boxes = [], [], []
    for frame, path in files.items():
        for _, (_, cls, vals) in _parse_label_file(path, 5, False):
            frames.append(frame)
            classes.append(cls)
            boxes.append(vals)
    box = _to_pixels(boxes, size)
    return pd.DataFrame({"frame": np.asarray(frames, np.int64), "cls": np.asarray(classes, np.int64),
                         "x": box[:, 0], "y": box[:, 1], "w": box[:, 2], "h": box[:, 3]})


def _find_counts_csv(folder: Path) -> Path | None:
    """The dataset's own counts file, else the project's shared copy for real VISEM ids."""
    for parent in (folder.parent, folder.parent.parent):
        p = parent / "sperm_counts_per_frame.csv"
        if p.is_file():
            return p
    shared = SHARED_COUNTS_CSV
    if folder.name.isdigit() and int(folder.name) in OFFICIAL_SPLIT["train"] + OFFICIAL_SPLIT["val"] and shared.is_file():
        return shared
    return None
