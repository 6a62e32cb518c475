"""Synthetic VISEM-Tracking-like videos with exact ground truth (a CASA validation phantom).

Files: :func:`generate` writes videos in the VISEM-Tracking layout plus ``gt/`` (see
:mod:`spermtrack.synth.writer`). In memory: :func:`simulate_cells` returns a
:class:`~spermtrack.synth.scene.Scene` (objects, noise-free paths, label boxes as a Tracks
table, per-track truth), and :func:`render_frame` / :func:`iter_frames` /
:func:`frame_geometry` turn it into gray frames and outlines.

Modules: ``presets`` (difficulty table, populations), ``motion`` (paths), ``morph`` (shapes),
``scene`` (visibility, boxes, ids), ``truth`` (kinematics and grades), ``render`` (pixels),
``masks`` (outlines on disk), ``writer`` (folders).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from spermtrack.errors import ParameterError
from spermtrack.synth.masks import load_masks, rasterize
from spermtrack.synth.presets import DEFAULT_LOOK, LOOKS, PRESETS, VISEM_PRESETS, Difficulty, check_look, get_preset
from spermtrack.synth.render import colorize, frame_geometry, iter_frames, render_frame, render_noise_free
from spermtrack.synth.scene import Scene, simulate_cells, validate_params
from spermtrack.synth.truth import TRUTH_COLUMNS, vcl_closed_form
from spermtrack.synth.writer import SYNTH_VERSION, update_counts_csv, write_video_folder

#: Id of the first video written by :func:`generate` (ids count up from here: "101", "102", ...;
#: chosen outside the real VISEM ids 11-82 so synthetic and real folders never collide).
FIRST_VIDEO_ID = 101

__all__ = [
    "generate", "simulate_cells", "render_frame", "render_noise_free", "iter_frames", "frame_geometry",
    "load_masks", "rasterize", "vcl_closed_form", "Scene", "Difficulty", "PRESETS", "get_preset",
    "TRUTH_COLUMNS", "SYNTH_VERSION", "FIRST_VIDEO_ID", "LOOKS", "DEFAULT_LOOK", "VISEM_PRESETS", "colorize",
]


def generate(out_dir: str | os.PathLike, *, videos: int = 1, seconds: float = 2.0, fps: float = 50.0,
             cells: float = 20, um_per_px: float = 0.5, seed: int = 0, difficulty: str = "medium",
             write_images: bool = True, width: int = 640, height: int = 480, hyperactivated: float = 0.0,
             mix: dict[str, float] | None = None, first_video_id: int = FIRST_VIDEO_ID, mask_every: int = 5,
             on_video: Callable[[Path, Scene], None] | None = None, look: str = DEFAULT_LOOK) -> list[Path]:
    """Write ``videos`` synthetic videos with ground truth under ``out_dir/Train/``.

    Video ``k`` (0-based) gets id ``first_video_id + k`` and its own random stream
    ``SeedSequence(seed).spawn(videos)[k]``: the same seed gives the same truth, labels and
    frames (bit-identical images; the mp4 bytes depend on the encoder build).

    Args:
        out_dir: dataset root (created).
        videos: number of videos.
        seconds, fps: duration and frame rate of each video.
        cells: expected number of sperm heads in view (density); cells swim in and out.
        um_per_px: scale (VISEM is about 0.5).
        seed: root seed.
        difficulty: ``easy``, ``medium`` or ``hard`` (:data:`PRESETS`).
        write_images: also write every frame as JPEG (the mp4 is always written).
        width, height: frame size (even numbers).
        hyperactivated: share of sperm that are hyperactivated.
        mix: exact WHO shares (``rapid_progressive``, ``slow_progressive``,
            ``non_progressive``, ``immotile``); default: drawn around 35/15/20/30 %.
        first_video_id: id of the first video.
        mask_every: outlines are stored for every ``mask_every``-th frame.
        on_video: called with ``(folder, scene)`` after each video is written (progress).
        look: ``visem`` (default; like real VISEM-Tracking frames: dark flat background, saturating
            heads with a glow, unlabelled debris / out-of-focus cells / blobs / large cells, colour
            fringe on the written frames) or ``classic`` (the original look, bit-for-bit). Stored
            in ``gt/meta.json`` (``look``).

    Returns:
        The video folders, in order.

    Raises:
        ParameterError: a parameter is out of range (the message names it and the range).
    """
    validate_params(seconds=seconds, fps=fps, cells=cells, um_per_px=um_per_px, width=width, height=height,
                    hyperactivated=hyperactivated)
    look = check_look(look)
    get_preset(difficulty, look)
    if int(videos) != videos or not 1 <= int(videos) <= 1000:
        raise ParameterError(f"videos={videos!r} must be an integer in [1, 1000]")
    if int(mask_every) != mask_every or not 1 <= int(mask_every) <= 10000:
        raise ParameterError(f"mask_every={mask_every!r} must be an integer >= 1")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative integer")
    if int(first_video_id) != first_video_id or first_video_id < 0:
        raise ParameterError(f"first_video_id={first_video_id!r} must be a non-negative integer")
    root = Path(out_dir)
    children = np.random.SeedSequence(int(seed)).spawn(int(videos))
    folders, scenes = [], []
    for k, ss in enumerate(children):
        vid = str(int(first_video_id) + k)
        scene = simulate_cells(seconds=seconds, fps=fps, cells=cells, um_per_px=um_per_px, seed=ss,
                               difficulty=difficulty, width=width, height=height,
                               hyperactivated=hyperactivated, mix=mix, video_id=vid, look=look)
        scene.params["seed"] = int(seed)
        folder = write_video_folder(scene, root, write_images=write_images, mask_every=int(mask_every),
                                    extra_meta={"seed": int(seed), "video_index": k})
        folders.append(folder)
        scenes.append(scene)
        if on_video is not None:
            on_video(folder, scene)
    update_counts_csv(root, scenes)
    return folders
