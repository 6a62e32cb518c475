"""Write a simulated video as a VISEM-Tracking folder with its ground truth.

Layout (VISEM_FORMAT.md plus ``gt/``)::

    ROOT/Train/<vid>/<vid>.mp4
                    images/<vid>_frame_<n>.jpg              (JPEG quality 95; optional; colour in the visem look)
                    labels/<vid>_frame_<n>.txt              `class cx cy w h`, 6 decimals
                    labels_ftid/<vid>_frame_<n>_with_ftid.txt   `track_uid class cx cy w h`
                    gt/gt.txt            MOTChallenge, 1-based frames, ids = dense track_id (0..K-1)
                    gt/tracks_truth.csv  one row per track (spermtrack.synth.truth)
                    gt/paths.npz         noise-free head centres per track and frame (px)
                    gt/masks/masks.npz   head / midpiece / tail outlines (spermtrack.synth.masks)
                    gt/meta.json         every parameter, conventions, generator version
    ROOT/sperm_counts_per_frame.csv      per-frame class counts (the official format)

Every frame has a label file (empty when nothing is in view). The folder is written under a
hidden temporary name and renamed into place at the end, so an interrupted run never leaves a
folder that looks complete; files inside it are written directly (the folder rename is the
atomic step).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

import spermtrack
from spermtrack.errors import ParameterError
from spermtrack.io.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from spermtrack.synth import masks as masks_mod
from spermtrack.synth.render import colorize, frame_boxes, frame_geometry, render_frame
from spermtrack.synth.scene import Scene
from spermtrack.types import CLASS_NAMES, EDGE_OFFSET_PX

#: Version of the generator's model and output format (bump when truth or layout changes).
SYNTH_VERSION = "1"
GENERATOR = "spermtrack.synth"
#: JPEG quality of images/ (the real VISEM-Tracking JPEGs' quantisation tables are those of quality 95).
JPEG_QUALITY = 95
#: x264 speed preset of the mp4 (ignored by other encoders).
X264_PRESET = "veryfast"


def label_lines(boxes: pd.DataFrame, width: int, height: int, vid: str) -> tuple[str, str]:
    """``(labels text, labels_ftid text)`` of one frame's boxes (sorted by track id)."""
    if boxes.empty:
        return "", ""
    b = boxes.sort_values("track_id")
    # YOLO labels are in edge coordinates (spermtrack.types.EDGE_OFFSET_PX), as VISEM's are
    vals = np.column_stack([(b["x"] + EDGE_OFFSET_PX) / width, (b["y"] + EDGE_OFFSET_PX) / height,
                            b["w"] / width, b["h"] / height])
    vals = np.clip(vals, 0.0, 1.0)
    plain, ftid = [], []
    for tid, cls, v in zip(b["track_id"].to_numpy(), b["cls"].to_numpy(), vals):
        box = f"{v[0]:.6f} {v[1]:.6f} {v[2]:.6f} {v[3]:.6f}"
        plain.append(f"{cls} {box}\n")
        ftid.append(f"syn{vid}t{tid:04d} {cls} {box}\n")
    return "".join(plain), "".join(ftid)


def _is_synth_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / "gt" / "meta.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError):
        return False


def write_video_folder(scene: Scene, root: str | os.PathLike, *, write_images: bool = True,
                       mask_every: int = 5, extra_meta: dict | None = None) -> Path:
    """Render ``scene`` and write its VISEM-Tracking folder under ``root/Train``.

    Args:
        scene: from :func:`spermtrack.synth.scene.simulate_cells`.
        root: dataset root.
        write_images: also write every frame as JPEG (the mp4 is always written).
        mask_every: store outlines for frames ``0, k, 2k, ...`` (1 = every frame).
        extra_meta: merged into ``gt/meta.json``.

    Returns:
        The video folder.

    Raises:
        ParameterError: the target folder exists and was not written by this generator.
    """
    from spermtrack.io.mot import write_mot
    from spermtrack.io.video import VideoWriter

    vid = scene.video_id
    final = Path(root) / "Train" / vid
    if final.exists() and not _is_synth_folder(final):
        raise ParameterError(f"{final} exists and is not a spermtrack synth folder; refusing to replace it "
                             f"(choose another output folder)")
    tmp = final.parent / f".{vid}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("images", "labels", "labels_ftid", "gt/masks"):
        if sub != "images" or write_images:
            (tmp / sub).mkdir(parents=True, exist_ok=True)
    try:
        by_frame = frame_boxes(scene)
        empty = scene.boxes.iloc[0:0]
        chunks = []
        W, H = scene.width, scene.height
        # x264 "veryfast": 2.7x faster than "medium" on these noisy frames at the same CRF
        with VideoWriter(tmp / f"{vid}.mp4", scene.fps, W, H, options={"preset": X264_PRESET}) as vw:
            for i in range(scene.n_frames):
                geom = frame_geometry(scene, i)
                img = render_frame(scene, i, geom)
                if scene.look == "visem":
                    # colour camera: slight cyan / magenta fringe (luma is the gray frame)
                    img = colorize(scene, img)
                vw.write(img)
                if write_images:
                    cv2.imwrite(str(tmp / "images" / f"{vid}_frame_{i}.jpg"), img,
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                plain, ftid = label_lines(by_frame.get(i, empty), W, H, vid)
                (tmp / "labels" / f"{vid}_frame_{i}.txt").write_text(plain)
                (tmp / "labels_ftid" / f"{vid}_frame_{i}_with_ftid.txt").write_text(ftid)
                if i % mask_every == 0:
                    c = masks_mod.collect(scene, i, geom)
                    if c is not None:
                        chunks.append(c)
            codec = vw.codec
        masks_mod.save(tmp / "gt" / "masks" / "masks.npz", chunks, mask_every=mask_every, width=W, height=H,
                       um_per_px=scene.um_per_px)
        write_mot(tmp / "gt" / "gt.txt", scene.boxes)
        write_csv_atomic(tmp / "gt" / "tracks_truth.csv", scene.truth)
        _write_paths(tmp / "gt" / "paths.npz", scene)
        write_json_atomic(tmp / "gt" / "meta.json", _meta(scene, codec, write_images, mask_every, extra_meta))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.parent / f".{vid}.old-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(final)
    return final


def _write_paths(path: Path, scene: Scene) -> None:
    rows = np.flatnonzero(scene.track_of >= 0)
    rows = rows[np.argsort(scene.track_of[rows])]
    with open(path, "wb") as fh:
        np.savez_compressed(
            fh, track_id=scene.track_of[rows], head_xy_px=scene.paths.head_um[rows] / scene.um_per_px,
            rendered_xy_px=scene.head_px[rows], in_view=scene.in_view[rows],
            head_angle_rad=scene.paths.angle[rows].astype(np.float32),
            heading_rad=scene.paths.theta[rows].astype(np.float32), fps=np.float64(scene.fps),
            um_per_px=np.float64(scene.um_per_px))


def _meta(scene: Scene, codec: str, write_images: bool, mask_every: int, extra: dict | None) -> dict:
    tr = scene.truth
    sperm = tr[tr["cls"] != 1]
    return {
        "generator": GENERATOR, "generator_version": SYNTH_VERSION, "spermtrack_version": spermtrack.__version__,
        "video_id": scene.video_id, "fps": scene.fps, "um_per_px": scene.um_per_px, "width": scene.width,
        "height": scene.height, "n_frames": scene.n_frames, "seconds": scene.n_frames / scene.fps,
        "parameters": scene.params, "difficulty": scene.preset.name, "preset": scene.preset.to_dict(),
        "population_shares": {k: float(v) for k, v in scene.mix.items()},
        "seed_entropy": scene.render_entropy, "class_names": {str(k): v for k, v in CLASS_NAMES.items()},
        "codec": codec, "images_written": write_images, "mask_every": mask_every,
        "box_margin_um": scene.box_margin_um, "n_tracks": int(len(tr)), "look": scene.look,
        "box_rule": ("near-square: half-size = (rotated head extent + its larger side) / 2 + box_margin_um"
                     if scene.look == "visem" else "head outline extent + box_margin_um"),
        "grades": {str(k): int(v) for k, v in sperm["grade"].value_counts().items()},
        "conventions": {
            "frames": "0-based in file names and tables; 1-based in gt/gt.txt (MOTChallenge)",
            "coordinates": "px, pixel-centre convention (pixel column c spans x = c-0.5..c+0.5); labels store x/width",
            "track_ids": "dense ints 0..K-1 by first appearance (frame, then object); gt.txt uses them; "
                         "labels_ftid uses syn<vid>t<track_id:04d>",
            "boxes": "head outline extent + box_margin_um each side, centred on the head centroid, "
                     "clipped to the frame",
            "in_view": "head centre on the frame (0 <= x <= width-1, 0 <= y <= height-1)",
            "truth": "see spermtrack/synth/truth.py: vcl_source says which VCL definition applies",
            "masks": "gt/masks/masks.npz, frames 0, mask_every, 2*mask_every, ...; see spermtrack/synth/masks.py",
        },
        **(extra or {}),
    }


def update_counts_csv(root: str | os.PathLike, scenes: list[Scene]) -> Path:
    """Merge the per-frame class counts of ``scenes`` into ``root/sperm_counts_per_frame.csv``.

    Rows of other videos already in the file are kept; rows of these videos are replaced.
    """
    path = Path(root) / "sperm_counts_per_frame.csv"
    ids = {s.video_id for s in scenes}
    lines = ["frame_name, sperm_count, cluster_count, small_or_pinhead_count"]
    if path.is_file():
        for line in path.read_text().splitlines()[1:]:
            name = line.split(",", 1)[0].strip()
            if line.strip() and name.rsplit("_frame_", 1)[0] not in ids:
                lines.append(line)
    for s in scenes:
        counts = np.zeros((s.n_frames, 3), np.int64)
        if len(s.boxes):
            np.add.at(counts, (s.boxes["frame"].to_numpy(), s.boxes["cls"].to_numpy()), 1)
        lines += [f"{s.video_id}_frame_{i},{c[0]},{c[1]},{c[2]}" for i, c in enumerate(counts)]
    return write_text_atomic(path, "\n".join(lines) + "\n")
