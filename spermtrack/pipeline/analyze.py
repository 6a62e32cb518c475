"""``analyze``: one video in, a folder of results out (the product's composition of the stages).

One function per stage, called in this order by :func:`analyze_video`::

    VIDEO ─► probe                 container description (read 1 of at most 3)
          ─► stream_stage          decode ─► HLDNBM ─► detect ─► track (read 2: the streaming pass)
          ─► refine_stage          stitch, fill short gaps, smooth; sperm vs cluster / other tracks
          ─► scale_stage           the Calibration: um_per_px (user's, or estimated loudly) and fps
          ─► kinematics_stage      CASA metrics, grades, sample summary (track and window), concentration
          ─► checks_stage          detector and plausibility warnings
          ─► morphology_stage      the morphology chain of the graded tracks (morphology.chain, also
                                   the chain of `spermtrack morphology`)
          ─► second_pass           read 3: ONE decoding pass feeds the morphology crop router and the
                                   annotated-video renderer (+ gallery crops); then segment and measure
          ─► export_stage          tracks.csv, tracks_mot.txt, kinematics.csv, summary.csv, morphology.csv
          ─► report_assets_stage   plots/*.png, gallery
          ─► report_stage          report.html, report.pdf
          ─► summary.json          (pipeline.results.build_summary) written last: its presence with
                                   status "complete" marks a finished folder

One run, one folder: everything is written into ``OUT/<stem>.partial/`` and swapped into place as
``OUT/<stem>/`` at the very end (the previous complete result stays untouched until then). A
failed or interrupted run leaves the previous result as it was and its own work in
``OUT/<stem>.partial/`` (``summary.json`` there says ``"status": "failed"`` and why). Every file is
written atomically with the user's umask. A truncated video is analysed up to its last decodable
frame, every later pass stops there, and the result says so (``summary.json`` ``truncated``, a
warning on stderr and in the report).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from spermtrack.config import Config, check_config
from spermtrack.pipeline.stages import make_detector, refine_params, tracker_params
from spermtrack.errors import InputFileError, ParameterError, VideoError, user_message
from spermtrack.types import FPS_RANGE, OTHER_CLS, UM_PER_PX_RANGE, Calibration, check_positive

Echo = Callable[[str], None]



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
    calibration: Calibration | None = None


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

    echo = echo or _stderr
    cfg = check_config(config or Config())
    t_start = time.perf_counter()
    video, fps, out = _check_request(video, out_root, out_dir, fps, um_per_px, echo)
    meta_v, warnings = _probe(video, fps, cfg, echo)
    detector, embedder = make_detector(cfg), _embedder(cfg)
    ids = {"sample_id": _ident("sample_id", sample_id), "patient_id": _ident("patient_id", patient_id)}
    work = start_run_folder(out)
    try:
        result = _run_stages(work, video, cfg, meta_v, detector, embedder, fps=fps, um_per_px=um_per_px,
                             progress=progress, echo=echo, truth=truth, warnings=warnings, ids=ids, t_start=t_start)
    except BaseException as err:
        _mark_failed(work, video, err, echo)
        raise
    commit_run_folder(work, out)
    result.out_dir = out
    return result


def _check_request(video, out_root, out_dir, fps, um_per_px, echo: Echo) -> tuple[Path, float | None, Path]:
    """The video, the user's fps and the output folder, checked before anything is decoded."""
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
    return video, fps, out


def _probe(video: Path, fps: float | None, cfg: Config, echo: Echo):
    """The container's description (the first of the at most three reads of the video), and its warnings."""
    from spermtrack.io.video import check_frame_size, probe_video

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
    return meta_v, warnings


def _embedder(cfg: Config):
    if not cfg.track.reid_weights:
        return None
    from spermtrack.tracker.reid import load_embedder

    return load_embedder(cfg.track.reid_weights)


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


# ------------------------------------------------------------------------------------- the stages

def _run_stages(out: Path, video: Path, cfg: Config, meta_v, detector, embedder, *, fps, um_per_px, progress,
                echo: Echo, truth, warnings: list[str], ids: dict, t_start: float) -> AnalysisResult:
    """The stages of :func:`analyze_video`, one function each, writing into the run's working folder ``out``."""
    from spermtrack.pipeline import results

    timings: dict[str, float] = {}
    res = stream_stage(video, cfg, meta_v, detector, embedder, fps=fps, progress=progress, echo=echo,
                       warnings=warnings)
    all_tracks, tracks, n_other = refine_stage(res, cfg, warnings, timings)
    det_cal = detector.calibration_record() if hasattr(detector, "calibration_record") else None
    t0 = time.perf_counter()
    cal, scale_info = scale_stage(tracks, res, um_per_px, detector, det_cal, video, echo, warnings)
    kin = kinematics_stage(tracks, res, cal, cfg, video, warnings)
    timings["kinematics_s"] = time.perf_counter() - t0
    checks_stage(video, res, tracks, kin, cal, det_cal, cfg, echo, warnings)
    chain = morphology_stage(tracks, kin.metrics, cal, cfg, warnings)
    second = second_pass(video, out, res, tracks, kin.metrics, cal, cfg, chain, progress=progress)
    morph = second.morphology
    timings.update(second.timings)
    files = export_stage(out, video, all_tracks, kin, morph, cal, res, ids, preset=cfg.kinematics.preset)
    t0 = time.perf_counter()
    assets = report_assets_stage(out, tracks, kin, morph, second, cfg, res)
    timings["report_total_s"] = timings.get("video_s", 0.0) + time.perf_counter() - t0
    files.update(assets["files"])
    truth_check = truth_stage(truth, all_tracks, kin, cfg) if truth is not None else None
    timings = _ordered_timings(res, timings, assets["timings"], t_start)
    meta = results.build_summary(
        video=video, probe=meta_v, stream=res, calibration=cal, scale_estimate=scale_info, ids=ids, tracks=tracks,
        metrics=kin.metrics, summaries=kin.summaries, kinematics_config=cfg.kinematics, n_other_tracks=n_other,
        concentration=kin.concentration, distribution=kin.distribution, morphology=morph,
        detector_calibration=det_cal, truth_check=truth_check, warnings=warnings, config=cfg.to_dict(),
        timings=timings, files=files)
    report_stage(out, meta, kin, morph, assets, files)
    meta["timings_s"]["total_s"] = round(time.perf_counter() - t_start, 3)
    from spermtrack.io.atomic import write_json_atomic

    write_json_atomic(out / "summary.json", meta)
    return AnalysisResult(out, tracks, kin.metrics, kin.summary, meta, morph, {**files, **results.REPORT_FILES},
                          calibration=cal)


def stream_stage(video: Path, cfg: Config, meta_v, detector, embedder, *, fps, progress: bool, echo: Echo,
                 warnings: list[str]):
    """Decode -> enhance -> detect -> track, one streaming pass (a truncated file: up to its last
    decodable frame, said loudly)."""
    from spermtrack.pipeline.stream import stream_video
    from spermtrack.progress import ProgressBar

    bar = ProgressBar(video.name, enabled=progress)
    try:
        res = stream_video(video, detector=detector, fps=fps, chunk_frames=cfg.video.chunk_frames,
                           tracker_params=tracker_params(cfg), embedder=embedder, progress=bar, meta=meta_v)
    finally:
        bar.close()
    warnings += res.warnings
    if res.decode_error:
        msg = (f"TRUNCATED video: {res.n_frames} of {meta_v.n_frames} frames could be decoded; "
               f"the analysis uses those frames only ({res.decode_error})")
        warnings.append(msg)
        echo(f"warning: {msg}")
    return res


def refine_stage(res, cfg: Config, warnings: list[str], timings: dict) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Stitch, fill short gaps, smooth; then split by class: ``(all tracks, sperm tracks, n other)``.
    Clusters (and other non-sperm classes) are tracked and exported, never graded as cells."""
    from spermtrack.tracker.refine import refine_tracks

    t0 = time.perf_counter()
    all_tracks = refine_tracks(res.tracks, res.meta.fps, stitch=cfg.track.stitch, params=refine_params(cfg))
    timings["refine_s"] = time.perf_counter() - t0
    satellites = all_tracks.attrs.get("satellite_tracks", [])
    if satellites:
        warnings.append(f"{len(satellites)} track(s) riding beside a stronger head (halo, neck or tail spots, "
                        f"double detections) re-labelled other (track.refine.satellite_min_share)")
    tracks, n_other = sperm_only(all_tracks)
    if n_other:
        warnings.append(f"{n_other} cluster / other (non-sperm) track(s) kept in tracks.csv but not graded "
                        f"(WHO counts single sperm cells)")
    return all_tracks, tracks, n_other


def scale_stage(tracks: pd.DataFrame, res, um_per_px, detector, det_cal: dict | None, video: Path, echo: Echo,
                warnings: list[str]) -> tuple[Calibration, dict | None]:
    """The :class:`~spermtrack.types.Calibration` of the result (the user's um_per_px, or one
    estimated from the head size, flagged loudly) and how it was estimated (None when given)."""
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
    cal = Calibration(um_per_px=scale, fps=res.meta.fps, um_per_px_source=scale_source,
                      fps_source=res.meta.fps_source)
    return cal, scale_info


@dataclass
class Kinematics:
    """What the kinematics stage produced: per-track metrics, the sample summary per aggregation
    mode (``summary``: the configured one), the distribution and the concentration (None without
    a chamber depth)."""

    metrics: pd.DataFrame
    summaries: dict
    aggregate: str
    distribution: dict
    concentration: dict | None = None

    @property
    def summary(self):
        return self.summaries[self.aggregate]


def kinematics_stage(tracks: pd.DataFrame, res, cal: Calibration, cfg: Config, video: Path,
                     warnings: list[str]) -> Kinematics:
    """CASA metrics and grades per track, the sample summary (track and window aggregation), the
    kinematics distribution and (with a chamber depth) the concentration."""
    from spermtrack.kinematics import compute_track_metrics, summarize_motility
    from spermtrack.kinematics.summary import kinematics_distribution

    k = cfg.kinematics
    metrics = compute_track_metrics(tracks, cal.fps, cal.um_per_px, window=k.window, min_duration_s=k.min_duration_s,
                                    preset=k.preset, source=str(video))
    summaries = {mode: summarize_motility(metrics, aggregate=mode, window_s=k.aggregate_window_s, fps=cal.fps)
                 for mode in ("track", "window")}
    summary = summaries[k.aggregate]
    if not summary.meets_who_count:
        warnings.append(f"only {summary.n_graded} graded tracks; WHO asks for at least 200 cells "
                        f"(analyse more fields or a longer recording)")
    conc = None
    if cfg.sample.chamber_depth_um is not None:
        from spermtrack.kinematics.concentration import concentration

        conc = concentration(tracks, n_frames=res.n_frames, width_px=res.meta.width, height_px=res.meta.height,
                             um_per_px=cal.um_per_px, chamber_depth_um=cfg.sample.chamber_depth_um)
    return Kinematics(metrics, summaries, k.aggregate, kinematics_distribution(metrics), conc)


def checks_stage(video: Path, res, tracks: pd.DataFrame, kin: Kinematics, cal: Calibration, det_cal: dict | None,
                 cfg: Config, echo: Echo, warnings: list[str]) -> None:
    """The detector's own warnings and the plausibility checks (warnings, echoed)."""
    from spermtrack.pipeline.plausibility import plausibility_warnings

    for w in (det_cal or {}).get("warnings", []):
        warnings.append(f"detector: {w}")
        echo(f"warning: {video.name}: detector: {w}")
    for w in plausibility_warnings(n_frames=res.n_frames, fps=cal.fps, n_detections=res.n_sperm_detections,
                                   tracks=tracks, metrics=kin.metrics, um_per_px=cal.um_per_px,
                                   um_per_px_source=cal.um_per_px_source, calibration=det_cal,
                                   min_duration_s=cfg.kinematics.min_duration_s):
        warnings.append(w)
        echo(f"warning: {video.name}: {w}")


def morphology_stage(tracks: pd.DataFrame, metrics: pd.DataFrame, cal: Calibration, cfg: Config,
                     warnings: list[str]):
    """The morphology chain of the graded tracks (the one ``spermtrack morphology`` runs), ready
    to be fed by the second pass; None (with a warning) when no track is graded or the stage is
    unavailable."""
    try:
        from spermtrack.morphology.chain import MorphologyChain, crop_params, graded_track_ids, select_tracks
    except ImportError as err:  # the stage is optional: the motility result stands without it
        warnings.append(f"morphology skipped ({err})")
        return None
    graded = graded_track_ids(metrics)
    if not graded:
        warnings.append("morphology: no graded track, nothing to measure")
        return None
    rows, ids = select_tracks(tracks, graded)
    if rows.empty:
        warnings.append("morphology: no graded track, nothing to measure")
        return None
    m = cfg.morphology
    chain = MorphologyChain(rows, cal.um_per_px, track_ids=ids, segmenter=m.segmenter, weights=m.weights,
                            crop_params=crop_params(k=int(m.crops_per_track), size=int(m.crop_px)))
    if chain.experimental:
        warnings.append(chain.experimental)
    return chain


@dataclass
class SecondPass:
    """What the one decoding pass after the tracking gave: the morphology table (and its crops),
    the gallery picks, what the renderer returned (None when it did not run), timings (s)."""

    morphology: pd.DataFrame | None
    crops: object | None
    picks: dict
    rendered: dict | None
    timings: dict


class _Consumer:
    """A frame consumer of the shared pass: its ``feed``, the frame it stops at, the time it took."""

    def __init__(self, stop: int, feed):
        self.stop, self._feed, self.seconds = int(stop), feed, 0.0

    def feed(self, index: int, gray) -> None:
        t = time.perf_counter()
        self._feed(index, gray)
        self.seconds += time.perf_counter() - t


def second_pass(video: Path, out: Path, res, tracks: pd.DataFrame, metrics: pd.DataFrame, cal: Calibration,
                cfg: Config, chain, *, progress: bool) -> SecondPass:
    """The morphology crops, the annotated video and the gallery crops from ONE decoding pass
    (up to the last frame any of them needs, never past the last analysed frame); then the
    morphology chain is finished on its crops."""
    from spermtrack.progress import ProgressBar
    from spermtrack.report.build import plan_render

    n, width, height = res.n_frames, res.meta.width, res.meta.height
    consumers = []
    router = chain.router(width, height) if chain is not None else None
    if router is not None:
        consumers.append(_Consumer(min(n, router.last_frame + 1), router.feed))
    picks, renderer = plan_render(out, tracks, metrics, cfg=cfg, fps=cal.fps, n_frames=n, width=width, height=height,
                                  have_crop=router.track_ids if router is not None else frozenset())
    if renderer is not None:
        consumers.append(_Consumer(renderer.stop, renderer.feed))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    what = ", ".join(w for w, on in (("crops", router is not None), ("annotated video", renderer is not None)) if on)
    bar = ProgressBar(f"{video.name} ({what or 'second pass'})", enabled=progress)
    try:
        decode_pass(video, consumers, progress=bar)
    except BaseException:
        if renderer is not None:
            renderer.abort()
        raise
    finally:
        bar.close()
    rendered = renderer.close() if renderer is not None else None
    timings["second_pass_s"] = time.perf_counter() - t0
    morph, crops = None, None
    t0 = time.perf_counter()
    if chain is not None:
        result = chain.finish(router.result())
        morph, crops = result.per_track, result.crops
    timings["morphology_s"] = (consumers[0].seconds if router is not None else 0.0) + time.perf_counter() - t0
    if rendered is not None:
        timings["video_s"] = rendered["seconds"]
    return SecondPass(morph, crops, picks, rendered, timings)


def decode_pass(video: Path, consumers: list, *, progress=None) -> int:
    """Decode ``video`` once (one open), handing every frame to each consumer (``.feed(index,
    gray)``) while its index is below the consumer's ``.stop``; decoding stops at the largest
    ``.stop``. A file damaged beyond that (a truncated recording) is not an error: its good frames
    were what the streaming pass analysed. Returns the frames decoded."""
    from spermtrack.errors import VideoDecodeError
    from spermtrack.io.video import iter_gray_frames

    stop = max((c.stop for c in consumers), default=0)
    if stop <= 0:
        return 0
    t0 = time.perf_counter()
    done = 0
    frames = iter_gray_frames(video)
    try:
        for index, _, gray in frames:
            if index >= stop:
                break
            for c in consumers:
                if index < c.stop:
                    c.feed(index, gray)
            done = index + 1
            if progress is not None and done % 64 == 0:
                progress(done, stop, time.perf_counter() - t0)
    except VideoDecodeError:
        pass
    finally:
        frames.close()
    if progress is not None:
        progress(done, stop, time.perf_counter() - t0)
    return done


def export_stage(out: Path, video: Path, all_tracks: pd.DataFrame, kin: Kinematics, morph: pd.DataFrame | None,
                 cal: Calibration, res, ids: dict, *, preset: str) -> dict[str, str]:
    """tracks.csv, tracks_mot.txt, kinematics.csv (morphology joined), summary.csv, morphology.csv."""
    from spermtrack.pipeline import results

    context = results.summary_context(ids, video=video.name, calibration=cal, n_frames=res.n_frames,
                                      truncated=res.decode_error is not None, preset=preset,
                                      concentration=kin.concentration)
    files = results.write_tracks(out, all_tracks, fps=cal.fps, um_per_px=cal.um_per_px)
    results.write_kinematics(out / "kinematics.csv", kin.metrics, morph)
    files["kinematics_csv"] = "kinematics.csv"
    results.write_summary(out, kin.summaries, context=context, distribution=kin.distribution)
    files["summary_csv"] = "summary.csv"
    if morph is not None:
        results.write_morphology(out / "morphology.csv", morph)
        files["morphology_csv"] = "morphology.csv"
    return files


def report_assets_stage(out: Path, tracks: pd.DataFrame, kin: Kinematics, morph: pd.DataFrame | None,
                        second: SecondPass, cfg: Config, res) -> dict:
    """plots/*.png (and the gallery) from the tables and the second pass's crops."""
    from spermtrack.report.build import build_report_assets

    return build_report_assets(out, tracks, kin.metrics, kin.summary, morph, second.crops, cfg=cfg,
                               picks=second.picks, rendered=second.rendered, background=res.preview,
                               width=res.meta.width, height=res.meta.height)


def truth_stage(truth, all_tracks: pd.DataFrame, kin: Kinematics, cfg: Config) -> dict:
    """The result against a synthetic video's exact truth (HOTA, ID switches, grade mix)."""
    from spermtrack.evaluate.truth import check_against_truth

    # the truth holds sperm and clusters; impurities (class 3) are not objects of the truth
    return check_against_truth(truth, without_other(all_tracks), kin.summaries["track"],
                               min_duration_s=cfg.kinematics.min_duration_s,
                               grader={q: kin.metrics.attrs[q] for q in ("fps", "um_per_px", "preset")},
                               concentration=kin.concentration)


def _ordered_timings(res, stages: dict, assets: dict, t_start: float) -> dict:
    """summary.json ``timings_s`` (s): the streaming pass's, then each later stage's, rounded.
    ``second_pass_s`` is the whole shared decoding pass; ``morphology_s`` and ``video_s`` the
    time its two consumers took in it (plus segmentation, plus encoding)."""
    later = {k: stages[k] for k in ("refine_s", "kinematics_s", "morphology_s", "second_pass_s")}
    return {**res.times.to_dict(), "stream_total_s": round(res.total_s, 3),
            **{k: round(v, 3) for k, v in {**later, **assets}.items()},
            "report_total_s": round(stages["report_total_s"], 3),
            "total_s": round(time.perf_counter() - t_start, 3),
            "stream_frames_per_s": round(res.frames_per_s, 1)}


def report_stage(out: Path, meta: dict, kin: Kinematics, morph: pd.DataFrame | None, assets: dict,
                 files: dict) -> None:
    """report.html and report.pdf."""
    from spermtrack.pipeline import results
    from spermtrack.report.html import write_report
    from spermtrack.report.pdf import write_report_pdf

    table = results.round_table(results.join_morphology(kin.metrics, morph))
    write_report(out / "report.html", meta=meta, summary=kin.summary, summaries=kin.summaries, table=table,
                 plots=assets["plots"], files={**files, "summary_json": "summary.json"})
    write_report_pdf(out / "report.pdf", meta, kin.metrics, assets["plots"])
