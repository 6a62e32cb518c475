"""``analyze``: one video in, a folder of results out (the product's composition of the stages).

::

    VIDEO ─► tracker.pipeline.stream_video   decode ─► HLDNBM ─► detect ─► track (one streaming pass)
          ─► tracker.refine.refine_tracks    stitch, fill short gaps, smooth
          ─► kinematics                      CASA metrics, grades, sample summary (track and window)
          ─► morphology                      crops ─► segmenter ─► morphometry (one call)
          ─► io.export                       tracks.csv, tracks_mot.txt, kinematics.csv, summary.csv, morphology.csv
          ─► report                          annotated.mp4 + gallery crops (one more decoding pass), plots, report.html
          ─► summary.json                    written last: its presence with status "complete" marks a finished folder

One run, one folder: everything is written into ``OUT/<stem>.partial/`` and swapped into place as
``OUT/<stem>/`` at the very end (the previous complete result stays untouched until then). A
failed or interrupted run leaves the previous result as it was and its own work in
``OUT/<stem>.partial/`` (``summary.json`` there says ``"status": "failed"`` and why). Every file is
written atomically with the user's umask. A truncated video is analysed up to its last decodable
frame, every later pass stops there, and the result says so (``summary.json`` ``truncated``, a
warning on stderr and in the report).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from spermtrack.config import Config, check_config
from spermtrack.pipeline.stages import make_detector, tracker_params
from spermtrack.errors import InputFileError, ParameterError, VideoError, user_message
from spermtrack.types import OTHER_CLS, check_positive

Echo = Callable[[str], None]

#: Range accepted for a user's um_per_px (below: electron microscopy; above: no head is 1 px).
UM_PER_PX_RANGE = (0.02, 10.0)
#: Range accepted for a user's fps.
FPS_RANGE = (1.0, 1000.0)


@dataclass
class AnalysisResult:
    """What :func:`analyze_video` produced: the folder, the tables and the metadata written."""

    out_dir: Path
    tracks: pd.DataFrame
    metrics: pd.DataFrame
    summary: object
    meta: dict
    morphology: pd.DataFrame | None = None
    files: dict[str, str] = field(default_factory=dict)


def output_folder(out_root: str | Path, video: str | Path) -> Path:
    """``OUT/<video stem>/``: where the results of ``video`` go."""
    return Path(out_root) / Path(video).stem


def unique_out_dirs(videos: list[Path], out: Path) -> dict[Path, Path]:
    """``OUT/<stem>`` per video; two videos with the same stem get ``<parent>_<stem>``."""
    stems: dict[str, int] = {}
    for v in videos:
        stems[v.stem] = stems.get(v.stem, 0) + 1
    return {v: out / (f"{v.parent.name}_{v.stem}" if stems[v.stem] > 1 else v.stem) for v in videos}


def is_complete(folder: str | Path) -> bool:
    """True when ``folder`` holds a finished analysis (``summary.json`` with status complete)."""
    import json

    p = Path(folder) / "summary.json"
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("status") == "complete"
    except (OSError, ValueError, AttributeError):
        return False


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InputFileError(folder, f"output folder cannot be written ({err.strerror or err})") from None


#: length of a sperm head (um) that the detector's measured head core is taken to be
HEAD_CORE_UM = 4.5


def _scale(tracks: pd.DataFrame, um_per_px, detector, source: str, echo: Echo) -> tuple[float, str, dict | None]:
    """The user's um_per_px, or an estimate from the median head box (flagged loudly)."""
    if um_per_px is not None and str(um_per_px).strip().lower() != "estimate":
        try:
            v = float(um_per_px)
        except ValueError:
            raise ParameterError(f"--um-per-px must be a number or 'estimate', got {um_per_px!r}") from None
        return check_positive("--um-per-px", v, *UM_PER_PX_RANGE), "user", None
    from spermtrack.kinematics import estimate_um_per_px

    cal = getattr(detector, "calibration", None)
    if cal is not None and getattr(cal, "head_size_source", "") == "estimated":
        # the detector measured the half-maximum head core on the strongest heads of the video
        um = HEAD_CORE_UM / cal.head_length_px
        info = {"um_per_px": um, "median_head_px": cal.head_length_px, "head_length_um": HEAD_CORE_UM,
                "source": "estimated from head size", "method": "detector calibration: median half-maximum "
                "head core length of the strongest heads"}
        echo(f"WARNING: um_per_px {um:.4f} is ESTIMATED from a median head core length of "
             f"{cal.head_length_px:.1f} px ({HEAD_CORE_UM} um heads); every velocity and grade depends on it: "
             f"give --um-per-px from a stage micrometer")
        return check_positive("estimated um_per_px", um, *UM_PER_PX_RANGE), info["source"], info
    boxes = tracks
    margin = float(getattr(getattr(detector, "params", None), "box_margin_px", 0.0))
    if margin > 0:
        # blob boxes add a fixed margin around the head ellipse: remove it to measure the head
        boxes = tracks.assign(w=tracks["w"] - 2 * margin, h=tracks["h"] - 2 * margin)
    est = estimate_um_per_px(boxes, source=source)
    info = {**est.__dict__, "box_margin_removed_px": margin}
    echo(f"WARNING: um_per_px {est.um_per_px:.4f} is ESTIMATED from a median head length of "
         f"{est.median_head_px:.1f} px (4.5 um heads); every velocity and grade depends on it: "
         f"give --um-per-px from a stage micrometer")
    return check_positive("estimated um_per_px", est.um_per_px, *UM_PER_PX_RANGE), est.source, info


def _majority(tracks: pd.DataFrame) -> pd.Series:
    return tracks.groupby("track_id")["cls"].agg(lambda c: int(c.mode().iat[0]))


def sperm_only(tracks: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The tracks whose majority class is 0 (sperm), and how many other tracks were left out."""
    if tracks.empty:
        return tracks, 0
    majority = _majority(tracks)
    keep = majority.index[majority == 0]
    return tracks[tracks["track_id"].isin(keep)], int(len(majority) - len(keep))


def without_other(tracks: pd.DataFrame) -> pd.DataFrame:
    """The tracks of sperm and clusters: those whose majority class is not 3 (impurity)."""
    if tracks.empty:
        return tracks
    majority = _majority(tracks)
    return tracks[tracks["track_id"].isin(majority.index[majority != OTHER_CLS])]


def run_morphology(video: str | Path, tracks: pd.DataFrame, metrics: pd.DataFrame, *, um_per_px: float,
                   config: Config, user_fps: float | None, warnings: list[str], n_frames: int | None = None,
                   progress=None):
    """The morphology stage in one call: best crops of every graded track -> segmenter ->
    per-crop measurements -> per-track medians, IQRs and flags.

    Returns:
        ``(per-track table or None, CropSet or None)``; None (with a warning appended) when no
        track is graded or the morphology stage is unavailable.
    """
    m = config.morphology
    graded = metrics.loc[metrics["grade"].astype(str) != "not_graded", "track_id"]
    sub = tracks[tracks["track_id"].isin(graded)]
    if "interpolated" in sub.columns:
        sub = sub[~sub["interpolated"].astype(bool)]
    if sub.empty:
        warnings.append("morphology: no graded track, nothing to measure")
        return None, None
    try:
        from spermtrack.morphology.crops import CropParams, route_crops_from_video
        from spermtrack.morphology.morphometry import measure_crops, summarize_tracks
        from spermtrack.morphology.segment import get_segmenter, segment_crops
    except ImportError as err:  # the stage is optional: the motility result stands without it
        warnings.append(f"morphology skipped ({err})")
        return None, None
    segmenter = get_segmenter(m.segmenter, weights=m.weights, um_per_px=um_per_px)
    if getattr(segmenter, "experimental", None):
        warnings.append(segmenter.experimental)
    crops = route_crops_from_video(video, sub.reset_index(drop=True),
                                   CropParams(k=int(m.crops_per_track), size=int(m.crop_px), um_per_px=um_per_px),
                                   fps=user_fps, n_frames=n_frames, progress=progress)
    segs = segment_crops(segmenter, crops)
    per_crop = measure_crops(segs, crops.images, crops.table, um_per_px)
    table = summarize_tracks(per_crop, track_ids=graded.astype(int).tolist())
    return table, crops


def analyze_video(video: str | Path, out_root: str | Path, *, config: Config | None = None,
                  fps: float | None = None, um_per_px: float | str | None = None,
                  progress: bool = True, echo: Echo | None = None, truth: str | Path | None = None,
                  out_dir: str | Path | None = None, sample_id: str | None = None,
                  patient_id: str | None = None) -> AnalysisResult:
    """Analyse one video and write its result folder ``out_root/<video stem>/``.

    Args:
        video: the video file.
        out_root: the output root (created).
        config: the configuration (detector, tracker, kinematics, morphology, report).
        fps: the user's frame rate; default the container's (an error when it has none).
        um_per_px: micrometres per pixel, or None / ``"estimate"`` to estimate it from the head
            size (flagged as estimated everywhere).
        progress: draw a progress bar on stderr.
        echo: where warnings go (default: stderr).
        truth: a synthetic video folder (``spermtrack synth`` output) to check the result
            against its exact truth (HOTA, ID switches, grade mix; in ``summary.json``).
        out_dir: the folder to write instead of ``out_root/<video stem>``.
        sample_id, patient_id: identifiers recorded in summary.json, summary.csv and the reports.

    Returns:
        An :class:`AnalysisResult`.

    Raises:
        InputFileError, VideoError, ParameterError: bad video, parameters or output folder (one
            clear line each); nothing is reported as complete in that case.
    """
    from spermtrack.io.atomic import commit_run_folder, start_run_folder
    from spermtrack.io.video import check_frame_size, probe_video

    echo = echo or _stderr
    cfg = check_config(config or Config())
    t_start = time.perf_counter()
    video = Path(video)
    if not video.exists():
        raise InputFileError(video, "video file not found")
    if video.is_dir():
        raise InputFileError(video, "is a folder, not a video file")
    if fps is not None:
        fps = check_positive("--fps", fps, *FPS_RANGE)
    if um_per_px is not None and str(um_per_px).strip().lower() != "estimate":
        _scale(pd.DataFrame(), um_per_px, None, str(video), echo)  # fail before decoding
    out = Path(out_dir) if out_dir is not None else output_folder(out_root, video)
    _check_writable(out.parent)
    meta_v = probe_video(video, fps=fps, fallback_fps=cfg.video.fallback_fps)
    check_frame_size(meta_v, video)
    if fps is None and (meta_v.fps_source == "fallback" or any("no timestamps" in w for w in meta_v.warnings)):
        raise ParameterError(f"{video}: the file gives no reliable frame rate; pass --fps (frames per second "
                             f"of the recording)")
    if meta_v.n_frames < 2:
        raise VideoError(f"{video}: has {meta_v.n_frames} frame; a motility analysis needs a video")
    warnings = list(meta_v.warnings)
    for w in warnings:
        echo(f"warning: {video.name}: {w}")
    detector = make_detector(cfg)
    embedder = None
    if cfg.track.reid_weights:
        from spermtrack.tracker.reid import load_embedder

        embedder = load_embedder(cfg.track.reid_weights)
    ids = {"sample_id": _ident("sample_id", sample_id), "patient_id": _ident("patient_id", patient_id)}
    work = start_run_folder(out)
    try:
        result = _analyze_into(work, video, cfg, meta_v, detector, embedder, fps=fps, um_per_px=um_per_px,
                               progress=progress, echo=echo, truth=truth, warnings=warnings, ids=ids,
                               t_start=t_start)
    except BaseException as err:
        _mark_failed(work, video, err, echo)
        raise
    commit_run_folder(work, out)
    result.out_dir = out
    return result


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _ident(name: str, value: str | None) -> str | None:
    """A sample / patient identifier: one printable line (it names files and lands in reports)."""
    if value is None:
        return None
    v = str(value).strip()
    if not v or len(v) > 200 or any(not ch.isprintable() for ch in v):
        raise ParameterError(f"{name} {value!r} must be one printable line of 1-200 characters")
    return v


def _mark_failed(work: Path, video: Path, err: BaseException, echo: Echo) -> None:
    """Leave a failed run's folder clearly marked (best effort: the disk may be full)."""
    import contextlib

    from spermtrack.io.atomic import write_json_atomic

    why = "interrupted" if isinstance(err, KeyboardInterrupt) else f"{type(err).__name__}: {user_message(err)}"
    with contextlib.suppress(OSError, ValueError):
        write_json_atomic(work / "summary.json", {"software": "spermtrack", "command": "analyze", "status": "failed",
                                                 "video": {"name": video.name}, "error": why})
        if any(p.name != "summary.json" for p in work.iterdir()):
            echo(f"note: partial results of {video.name} kept in {work} (the previous complete result, if any, "
                 f"is untouched)")
            return
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def _analyze_into(out: Path, video: Path, cfg: Config, meta_v, detector, embedder, *, fps, um_per_px, progress,
                  echo: Echo, truth, warnings: list[str], ids: dict, t_start: float) -> AnalysisResult:
    """The stages of :func:`analyze_video`, writing into the run's working folder ``out``."""
    from spermtrack.pipeline import results as export
    from spermtrack.io.atomic import write_json_atomic
    from spermtrack.kinematics import compute_track_metrics, summarize_motility
    from spermtrack.pipeline.stream import stream_video
    from spermtrack.progress import ProgressBar
    from spermtrack.tracker.refine import refine_tracks

    bar = ProgressBar(video.name, enabled=progress)
    try:
        res = stream_video(video, detector=detector, fps=fps, chunk_frames=cfg.video.chunk_frames,
                           tracker_params=tracker_params(cfg), embedder=embedder, progress=bar, meta=meta_v)
    finally:
        bar.close()
    fps_used = res.meta.fps
    warnings += res.warnings
    if res.decode_error:
        msg = (f"TRUNCATED video: {res.n_frames} of {meta_v.n_frames} frames could be decoded; "
               f"the analysis uses those frames only ({res.decode_error})")
        warnings.append(msg)
        echo(f"warning: {msg}")
    t0 = time.perf_counter()
    all_tracks = refine_tracks(res.tracks, fps_used, stitch=cfg.track.stitch)
    t_refine = time.perf_counter() - t0
    # clusters (and other non-sperm classes) are tracked and exported, never graded as cells
    tracks, n_other = sperm_only(all_tracks)
    if n_other:
        warnings.append(f"{n_other} cluster / other (non-sperm) track(s) kept in tracks.csv but not graded "
                        f"(WHO counts single sperm cells)")

    det_cal = detector.calibration_record() if hasattr(detector, "calibration_record") else None
    t0 = time.perf_counter()
    if len(tracks):
        scale, scale_source, scale_info = _scale(tracks, um_per_px, detector, str(video), echo)
    elif um_per_px is None or str(um_per_px).strip().lower() == "estimate":
        why = "; ".join((det_cal or {}).get("warnings", [])) or "check the video and the detector"
        raise InputFileError(video, "no sperm head was detected, so um_per_px cannot be estimated "
                                    f"(and there is nothing to grade): {why}")
    else:
        scale, scale_source, scale_info = float(um_per_px), "user", None
    if scale_info is not None:
        warnings.append(f"um_per_px {scale:.4f} ESTIMATED from head size; give --um-per-px for calibrated values")
    k = cfg.kinematics
    metrics = compute_track_metrics(tracks, fps_used, scale, window=k.window, min_duration_s=k.min_duration_s,
                                    preset=k.preset, source=str(video))
    summaries = {mode: summarize_motility(metrics, aggregate=mode, window_s=k.aggregate_window_s, fps=fps_used)
                 for mode in ("track", "window")}
    summary = summaries[k.aggregate]
    if not summary.meets_who_count:
        warnings.append(f"only {summary.n_graded} graded tracks; WHO asks for at least 200 cells "
                        f"(analyse more fields or a longer recording)")
    t_kin = time.perf_counter() - t0

    from spermtrack.pipeline.plausibility import plausibility_warnings

    for w in (det_cal or {}).get("warnings", []):
        warnings.append(f"detector: {w}")
        echo(f"warning: {video.name}: detector: {w}")
    for w in plausibility_warnings(n_frames=res.n_frames, fps=fps_used, n_detections=res.n_sperm_detections,
                                   tracks=tracks, metrics=metrics, um_per_px=scale, um_per_px_source=scale_source,
                                   calibration=det_cal, min_duration_s=k.min_duration_s):
        warnings.append(w)
        echo(f"warning: {video.name}: {w}")

    t0 = time.perf_counter()
    bar = ProgressBar(f"{video.name} (morphology crops)", enabled=progress)
    try:
        morph, crop_set = run_morphology(video, tracks, metrics, um_per_px=scale, config=cfg, user_fps=fps,
                                         warnings=warnings, n_frames=res.n_frames, progress=bar)
    finally:
        bar.close()
    t_morph = time.perf_counter() - t0

    from spermtrack.kinematics.summary import kinematics_distribution
    from spermtrack.morphology.morphometry import morphology_summary

    conc = None
    if cfg.sample.chamber_depth_um is not None:
        from spermtrack.kinematics.concentration import concentration

        conc = concentration(tracks, n_frames=res.n_frames, width_px=res.meta.width, height_px=res.meta.height,
                             um_per_px=scale, chamber_depth_um=cfg.sample.chamber_depth_um)
    distribution = kinematics_distribution(metrics)
    context = {**ids, "video": video.name, "fps": fps_used, "fps_source": res.meta.fps_source, "um_per_px": scale,
               "um_per_px_source": scale_source, "n_frames_analysed": res.n_frames,
               "truncated": res.decode_error is not None, "preset": k.preset}
    if conc is not None:
        context.update(chamber_depth_um=conc["chamber_depth_um"],
                       concentration_million_per_ml=round(conc["concentration_million_per_ml"], 2))
    files = export.write_tracks(out, all_tracks, fps=fps_used, um_per_px=scale)
    export.write_kinematics(out / "kinematics.csv", metrics, morph)
    files["kinematics_csv"] = "kinematics.csv"
    export.write_summary(out, summaries, context=context, distribution=distribution)
    files["summary_csv"] = "summary.csv"
    if morph is not None:
        from spermtrack.io.atomic import write_csv_atomic

        write_csv_atomic(out / "morphology.csv", export.round_table(morph))
        files["morphology_csv"] = "morphology.csv"

    from spermtrack.report.build import build_report_assets

    t0 = time.perf_counter()
    assets = build_report_assets(video, out, tracks, metrics, summary, morph, crop_set, cfg=cfg, fps=fps_used,
                                 user_fps=fps, n_frames=res.n_frames, background=res.preview,
                                 width=res.meta.width, height=res.meta.height, progress=progress)
    files.update(assets["files"])
    t_report = time.perf_counter() - t0

    truth_check = None
    if truth is not None:
        from spermtrack.evaluate.truth import check_against_truth

        # the truth holds sperm and clusters; impurities (class 3) are not objects of the truth
        truth_check = check_against_truth(truth, without_other(all_tracks), summaries["track"],
                                          min_duration_s=k.min_duration_s,
                                          grader={q: metrics.attrs[q] for q in ("fps", "um_per_px", "preset")},
                                          concentration=conc)

    meta = {
        "software": "spermtrack", "command": "analyze", "status": "complete",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **ids,
        "video": {"name": video.name, "path": str(video.resolve()), "n_frames_container": meta_v.n_frames,
                  "n_frames_analysed": res.n_frames, "duration_s": res.n_frames / fps_used,
                  "width": res.meta.width, "height": res.meta.height, "codec": meta_v.codec,
                  "fps_container_warnings": list(meta_v.warnings)},
        "truncated": res.decode_error is not None, "decode_error": res.decode_error,
        "n_frames_analysed": res.n_frames,
        "calibration": {"fps": fps_used, "fps_source": res.meta.fps_source, "um_per_px": scale,
                        "um_per_px_source": scale_source, "um_per_px_estimated": scale_info is not None,
                        "um_per_px_estimate": scale_info},
        "kinematics": export.kinematics_metadata(
            metrics, fps=fps_used, fps_source=res.meta.fps_source, um_per_px=scale, um_per_px_source=scale_source,
            scale_estimate=scale_info, preset=k.preset, aggregate=k.aggregate,
            aggregate_window_s=k.aggregate_window_s, min_duration_s=k.min_duration_s),
        **({"concentration_million_per_ml": conc["concentration_million_per_ml"], "concentration": conc}
           if conc is not None else {}),
        "kinematics_distribution": distribution,
        "morphology_summary": morphology_summary(morph),
        "detector_calibration": det_cal,
        "counts": {"n_detections": res.n_detections, "n_sperm_detections": res.n_sperm_detections, "n_online_tracks": int(res.tracks["track_id"].nunique()) if len(res.tracks) else 0,
                   "n_tracks": int(len(metrics)), "n_cluster_tracks": n_other, "n_graded": summary.n_graded,
                   "n_interpolated_rows": int(tracks["interpolated"].sum()) if len(tracks) else 0,
                   "n_embeddings_computed": res.n_embeddings},
        "summary": {mode: s.to_dict() for mode, s in summaries.items()},
        "primary_aggregate": k.aggregate,
        "who_comparison": export.who_comparison(summary),
        "truth_check": truth_check,
        "warnings": warnings,
        "config": cfg.to_dict(),
        "versions": export.software_versions(),
        "timings_s": {**res.times.to_dict(), "stream_total_s": round(res.total_s, 3), "refine_s": round(t_refine, 3),
                      "kinematics_s": round(t_kin, 3), "morphology_s": round(t_morph, 3),
                      **{k2: round(v, 3) for k2, v in assets["timings"].items()}, "report_total_s": round(t_report, 3),
                      "total_s": round(time.perf_counter() - t_start, 3),
                      "stream_frames_per_s": round(res.frames_per_s, 1)},
        "outputs": {**files, "report_html": "report.html", "report_pdf": "report.pdf", "summary_json": "summary.json"},
        "outputs_columns": {"tracks_csv": export.TRACKS_CSV_COLUMNS},
    }
    from spermtrack.report.html import write_report

    table = export.round_table(export.join_morphology(metrics, morph))
    write_report(out / "report.html", meta=meta, summary=summary, summaries=summaries, table=table,
                 plots=assets["plots"], files={**files, "summary_json": "summary.json"})
    from spermtrack.report.pdf import write_report_pdf

    write_report_pdf(out / "report.pdf", meta, metrics, assets["plots"])
    meta["timings_s"]["total_s"] = round(time.perf_counter() - t_start, 3)
    write_json_atomic(out / "summary.json", meta)
    return AnalysisResult(out, tracks, metrics, summary, meta, morph,
                          {**files, "report_html": "report.html", "report_pdf": "report.pdf",
                           "summary_json": "summary.json"})
