"""Result tables on disk: the Tracks CSV and MOT file, the per-track kinematics CSV (morphology
columns joined), the sample summary CSV and the morphology CSV, all written atomically; and the
content of ``summary.json`` (:func:`build_summary`).

Also the pieces a command needs to record and print a result the same way:
:func:`kinematics_metadata`, :func:`summary_lines`, :func:`who_comparison`, :func:`software_versions`.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pandas as pd

from spermtrack.io.atomic import atomic_path, write_csv_atomic

#: Decimals of the Tracks CSV position and size columns (px): 1/1000 px is below any detector's precision.
TRACK_DECIMALS = 3
#: rows rounded and written per block in tracks.csv
CSV_BLOCK_ROWS = 100_000


#: what tracks.csv's columns mean (recorded in summary.json ``outputs_columns``)
TRACKS_CSV_COLUMNS: dict[str, str] = {
    "track_id": "track id (same as tracks_mot.txt and kinematics.csv)",
    "frame": "frame index, 0-based (tracks_mot.txt is 1-based: its frame = this frame + 1)",
    "time_s": "time of the frame from the start of the video, s (frame / fps)",
    "x": "head centre x, px (same as x_px; kept for readers of the original Tracks format)",
    "y": "head centre y, px (same as y_px)", "w": "box width, px (same as w_px)", "h": "box height, px (same as h_px)",
    "conf": "detector score", "cls": "class (0 sperm, 1 cluster, 2 small or pinhead, 3 other)",
    "x_smooth": "smoothed head centre x, px", "y_smooth": "smoothed head centre y, px",
    "interpolated": "True where a gap of the track was filled (no detection in that frame)",
    "x_px": "head centre x, px, pixel-centre coordinates (the top-left pixel's centre is 0; "
            "tracks_mot.txt and YOLO labels add 0.5)", "y_px": "head centre y, px, pixel-centre coordinates",
    "w_px": "box width, px", "h_px": "box height, px",
    "x_um": "head centre x, um (x_px * um_per_px)", "y_um": "head centre y, um (y_px * um_per_px)",
}


def tracks_for_csv(tracks: pd.DataFrame, fps: float | None = None, um_per_px: float | None = None) -> pd.DataFrame:
    """The Tracks table as tracks.csv holds it: the original columns plus ``time_s``, units in
    the names (``x_px .. h_px``) and micrometres (``x_um, y_um``) when the scale is known."""
    out = tracks.copy()
    pos = out.columns.get_loc("frame") + 1 if "frame" in out.columns else len(out.columns)
    if fps and "frame" in out.columns:
        out.insert(pos, "time_s", out["frame"].to_numpy(dtype=float) / float(fps))
    for c in ("x", "y", "w", "h"):
        if c in out.columns:
            out[f"{c}_px"] = out[c]
    if um_per_px:
        for c in ("x", "y"):
            if c in out.columns:
                out[f"{c}_um"] = out[c] * float(um_per_px)
    return out


def write_tracks(out_dir: str | Path, tracks: pd.DataFrame, *, fps: float | None = None,
                 um_per_px: float | None = None) -> dict[str, str]:
    """Write ``tracks.csv`` (:data:`TRACKS_CSV_COLUMNS`: measured ``x, y`` = ``x_px, y_px``;
    ``x_um, y_um``; ``time_s``; ``x_smooth, y_smooth``; ``interpolated``; 0-based ``frame``) and
    ``tracks_mot.txt`` (MOTChallenge, 1-based frames, smoothed gap-filled boxes).

    Returns:
        ``{"tracks_csv": name, "tracks_mot": name}``.
    """
    from spermtrack.io.mot import write_mot
    from spermtrack.tracker.refine import smoothed_boxes

    out_dir = Path(out_dir)
    # rounded and written in blocks of rows: no second copy of a million-row table
    with atomic_path(out_dir / "tracks.csv") as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        for start in range(0, max(len(tracks), 1), CSV_BLOCK_ROWS):
            block = tracks_for_csv(tracks.iloc[start:start + CSV_BLOCK_ROWS], fps, um_per_px)
            rounded = {c: TRACK_DECIMALS for c in block.columns
                       if c in ("x", "y", "w", "h", "conf", "x_smooth", "y_smooth", "x_px", "y_px", "w_px", "h_px")}
            rounded.update({c: 4 for c in ("x_um", "y_um", "time_s") if c in block.columns})
            block.round(rounded).to_csv(fh, index=False, header=start == 0)
    cols = [c for c in ("track_id", "frame", "x", "y", "w", "h", "conf", "cls", "x_smooth", "y_smooth")
            if c in tracks.columns]
    write_mot(out_dir / "tracks_mot.txt", smoothed_boxes(tracks[cols]))  # only the columns MOT needs
    return {"tracks_csv": "tracks.csv", "tracks_mot": "tracks_mot.txt"}


def join_morphology(metrics: pd.DataFrame, morphology: pd.DataFrame | None) -> pd.DataFrame:
    """Kinematics with the per-track morphology columns appended (left join on ``track_id``)."""
    if morphology is None or morphology.empty or "track_id" not in morphology.columns:
        return metrics
    extra = [c for c in morphology.columns if c == "track_id" or c not in metrics.columns]
    out = metrics.merge(morphology[extra], on="track_id", how="left")
    out.attrs.update(metrics.attrs)
    return out


def round_table(table: pd.DataFrame) -> pd.DataFrame:
    """Kinematics rounded as KINEMATICS.md asks; other float columns (morphology) to 0.01."""
    from spermtrack.kinematics import round_for_csv
    from spermtrack.kinematics.casa import CSV_DECIMALS

    out = round_for_csv(table)
    extra = [c for c in out.columns if c not in CSV_DECIMALS and out[c].dtype.kind == "f"]
    if extra:
        out[extra] = out[extra].round(2)
    return out


def write_kinematics(path: str | Path, metrics: pd.DataFrame, morphology: pd.DataFrame | None = None) -> Path:
    """Write the per-track kinematics CSV (rounded as KINEMATICS.md asks), morphology joined."""
    return write_csv_atomic(path, round_table(join_morphology(metrics, morphology)))


def whole_as_int(values: pd.Series, decimals: int = 1) -> pd.Series:
    """Numbers rounded to ``decimals``, whole ones written as integers (``28``, not ``28.0``):
    counts are cells; a count split by time (who2021 time fractions, window mode) keeps its decimal."""
    v = pd.to_numeric(values, errors="coerce").round(decimals)
    return pd.Series([int(x) if pd.notna(x) and float(x).is_integer() else x for x in v], index=v.index, dtype=object)


#: per-result context columns of summary.csv (the same value on every row)
SUMMARY_CONTEXT_COLUMNS: tuple[str, ...] = (
    "sample_id", "patient_id", "video", "fps", "fps_source", "um_per_px", "um_per_px_source",
    "chamber_depth_um", "concentration_million_per_ml", "n_frames_analysed", "truncated", "preset",
)


def summary_frame(summaries: dict, *, context: dict | None = None, distribution: dict | None = None) -> pd.DataFrame:
    """One table of several :class:`~spermtrack.kinematics.MotilitySummary` (column ``aggregate``
    first), then (``distribution``) the kinematics distribution rows (``aggregate`` =
    ``"distribution"``, ``quantity`` = the kinematics.csv column, ``cells`` = ``all`` / ``motile``,
    ``n, mean, sd, median, q25, q75``); ``context`` adds :data:`SUMMARY_CONTEXT_COLUMNS` (fps,
    um_per_px and their sources, ids, concentration) to every row."""
    frames = []
    for mode, s in summaries.items():
        f = s.to_frame()
        f.insert(0, "aggregate", mode)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out = out.round({"pct": 1, "ci95_low_pct": 1, "ci95_high_pct": 1, "count": 1, "n": 1,
                     "agreement95_low_pct": 1, "agreement95_high_pct": 1})
    out["count"], out["n"] = whole_as_int(out["count"]), whole_as_int(out["n"])
    if distribution:
        from spermtrack.kinematics.summary import distribution_frame

        d = distribution_frame(distribution)
        d["n"] = d["n"].astype(int).astype(object)
        for c in ("mean", "sd", "median", "q25", "q75"):
            d[c] = pd.to_numeric(d[c], errors="coerce").round(2)
        d.insert(0, "aggregate", "distribution")
        out = pd.concat([out, d], ignore_index=True)
    if context:
        for i, c in enumerate(c for c in SUMMARY_CONTEXT_COLUMNS if c in context):
            out.insert(1 + i, c, context[c])
    return out


def kinematics_metadata(metrics: pd.DataFrame, *, fps: float, fps_source: str, um_per_px: float,
                        um_per_px_source: str, scale_estimate: dict | None, preset: str,
                        aggregate: str, aggregate_window_s: float | None, min_duration_s: float) -> dict:
    """The calibration and kinematics settings every result records (fps and um_per_px with
    their sources, the average-path window, the preset and its source)."""
    from spermtrack.kinematics import get_preset
    from spermtrack.kinematics.casa import CSV_DECIMALS

    p = get_preset(preset)
    attrs = dict(metrics.attrs)
    return {
        "fps": fps, "fps_source": fps_source, "um_per_px": um_per_px, "um_per_px_source": um_per_px_source,
        "um_per_px_estimated": um_per_px_source.startswith("estimated"),
        "um_per_px_estimate": scale_estimate,
        "window_points": attrs.get("window_points"), "window_s": attrs.get("window_s"),
        "progression_window_s": attrs.get("progression_window_s"), "motion_lag_s": attrs.get("motion_lag_s"),
        "motion_min_um_s": attrs.get("motion_min_um_s"), "min_duration_s": min_duration_s,
        "preset": preset, "preset_source": p.source, "preset_rules": p.description,
        "window_rule": attrs.get("window_rule"), "drift": attrs.get("drift"),
        "aggregate": aggregate, "aggregate_window_s": aggregate_window_s if aggregate == "window" else None,
        "csv_decimals": CSV_DECIMALS, "conventions": "docs/KINEMATICS_CONVENTIONS.md",
    }


def summary_lines(summary, um_per_px: float, um_per_px_source: str) -> list[str]:
    """The sample summary as the lines the CLI prints (grades with 95 % CIs and WHO status)."""
    est = " ESTIMATED" if str(um_per_px_source).startswith("estimated") else ""
    scale = f"{um_per_px:g} ({um_per_px_source}){est}" if um_per_px is not None else "differs between fields"
    lines = [f"{summary.n_graded} graded tracks ({summary.n_not_graded} too short), "
             f"um_per_px {scale}, aggregate {summary.aggregate}"]
    if summary.n_graded == 0:
        return lines + ["  no sperm cell was graded: no percentages (see the warnings; an empty field is a valid "
                        "result, e.g. azoospermia, or a detection problem)"]
    for row in summary.table:
        who = f"  WHO6 {row['who6_status']}" if row["who6_status"] else ""
        tech = (f"  technician {row['agreement95_low_pct']:.0f}-{row['agreement95_high_pct']:.0f}"
                if row.get("agreement95_low_pct") is not None else "")
        lines.append(f"  {row['quantity']:<18} {row['pct']:5.1f} %  [{row['ci95_low_pct']:.1f}, "
                     f"{row['ci95_high_pct']:.1f}]{who}{tech}")
    if not summary.meets_who_count:
        lines.append("  note: fewer than 200 graded cells (WHO asks for >= 200)")
    return lines


def who_comparison(summary) -> dict:
    """Progressive and total motility against the WHO 6th and 5th edition lower reference limits."""
    out = {}
    for row in summary.table:
        if row["who6_lrl_pct"] is None:
            continue
        out[row["quantity"]] = {
            "pct": row["pct"], "ci95_pct": [row["ci95_low_pct"], row["ci95_high_pct"]],
            "who6_lrl_pct": row["who6_lrl_pct"], "who6_status": row["who6_status"],
            "who5_lrl_pct": row["who5_lrl_pct"], "who5_status": row["who5_status"],
        }
    out["meets_who_count"] = summary.meets_who_count
    out["n_graded"] = summary.n_graded
    return out


def software_versions() -> dict[str, str]:
    """Versions of the software that produced a result (only modules already imported, plus ours)."""
    from spermtrack import __version__

    out = {"spermtrack": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for mod in ("numpy", "pandas", "numba", "cv2", "av", "scipy", "deep_sort_realtime", "torch",
                "ultralytics", "matplotlib", "trackeval", "dask", "distributed"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "?"))
    return out


def write_summary(out_dir: str | Path, summaries: dict, *, context: dict | None = None,
                  distribution: dict | None = None) -> Path:
    """Write ``summary.csv``: every aggregation mode's summary table (column ``aggregate`` first),
    the kinematics distribution rows and the context columns (:func:`summary_frame`).

    ``summary.json`` is written separately and last by :func:`spermtrack.pipeline.analyze.analyze_video`,
    so its presence with ``"status": "complete"`` marks a finished analysis (batch runs resume on it).
    """
    return write_csv_atomic(Path(out_dir) / "summary.csv",
                            summary_frame(summaries, context=context, distribution=distribution))


def write_morphology(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a per-track morphology table (``morphology.csv`` of ``analyze``, the CSV of
    ``spermtrack morphology``): rounded as :func:`round_table` (measurements to 0.01)."""
    return write_csv_atomic(path, round_table(table))


#: the files every complete result folder ends with (``summary.json`` written last)
REPORT_FILES: dict[str, str] = {"report_html": "report.html", "report_pdf": "report.pdf",
                                "summary_json": "summary.json"}


def summary_context(ids: dict, *, video: str, calibration, n_frames: int, truncated: bool, preset: str,
                    concentration: dict | None) -> dict:
    """The per-result context of summary.csv (:data:`SUMMARY_CONTEXT_COLUMNS`): ids, video, the
    :class:`~spermtrack.types.Calibration` with its sources, frames, preset, concentration."""
    context = {**ids, "video": video, "fps": calibration.fps, "fps_source": calibration.fps_source,
               "um_per_px": calibration.um_per_px, "um_per_px_source": calibration.um_per_px_source,
               "n_frames_analysed": n_frames, "truncated": truncated, "preset": preset}
    if concentration is not None:
        context.update(chamber_depth_um=concentration["chamber_depth_um"],
                       concentration_million_per_ml=round(concentration["concentration_million_per_ml"], 2))
    return context


def build_summary(*, video: Path, probe, stream, calibration, scale_estimate: dict | None, ids: dict,
                  tracks: pd.DataFrame, metrics: pd.DataFrame, summaries: dict, kinematics_config,
                  n_other_tracks: int, concentration: dict | None, distribution: dict,
                  morphology: pd.DataFrame | None, detector_calibration: dict | None, truth_check: dict | None,
                  warnings: list[str], config: dict, timings: dict, files: dict) -> dict:
    """The content of ``summary.json`` of one analysed video (status complete).

    Args:
        video: the video file; probe: its :class:`~spermtrack.types.VideoMeta` as first probed;
            stream: the :class:`~spermtrack.pipeline.stream.StreamResult` of the streaming pass.
        calibration: the :class:`~spermtrack.types.Calibration` used; scale_estimate: how
            um_per_px was estimated (None when given).
        ids: ``sample_id``, ``patient_id``.
        tracks: the graded-population Tracks table (sperm); metrics, summaries: its per-track
            kinematics and the sample summary per aggregation mode; kinematics_config: the
            ``kinematics`` section of the config.
        n_other_tracks: cluster / other tracks kept out of the grading.
        concentration, distribution, morphology, detector_calibration, truth_check: the other
            results (None when absent).
        warnings, config (``Config.to_dict()``), timings (s), files (key -> name in the folder).
    """
    import datetime as _dt

    from spermtrack.morphology.morphometry import morphology_summary

    k = kinematics_config
    summary = summaries[k.aggregate]
    res, cal, conc = stream, calibration, concentration
    return {
        "software": "spermtrack", "command": "analyze", "status": "complete",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **ids,
        "video": {"name": video.name, "path": str(video.resolve()), "n_frames_container": probe.n_frames,
                  "n_frames_analysed": res.n_frames, "duration_s": res.n_frames / cal.fps,
                  "width": res.meta.width, "height": res.meta.height, "codec": probe.codec,
                  "fps_container_warnings": list(probe.warnings)},
        "truncated": res.decode_error is not None, "decode_error": res.decode_error,
        "n_frames_analysed": res.n_frames,
        "calibration": {"fps": cal.fps, "fps_source": cal.fps_source, "um_per_px": cal.um_per_px,
                        "um_per_px_source": cal.um_per_px_source, "um_per_px_estimated": scale_estimate is not None,
                        "um_per_px_estimate": scale_estimate},
        "kinematics": kinematics_metadata(
            metrics, fps=cal.fps, fps_source=cal.fps_source, um_per_px=cal.um_per_px,
            um_per_px_source=cal.um_per_px_source, scale_estimate=scale_estimate, preset=k.preset,
            aggregate=k.aggregate, aggregate_window_s=k.aggregate_window_s, min_duration_s=k.min_duration_s),
        **({"concentration_million_per_ml": conc["concentration_million_per_ml"], "concentration": conc}
           if conc is not None else {}),
        "kinematics_distribution": distribution,
        "morphology_summary": morphology_summary(morphology),
        "detector_calibration": detector_calibration,
        "counts": {"n_detections": res.n_detections, "n_sperm_detections": res.n_sperm_detections,
                   "n_online_tracks": int(res.tracks["track_id"].nunique()) if len(res.tracks) else 0,
                   "n_tracks": int(len(metrics)), "n_cluster_tracks": n_other_tracks, "n_graded": summary.n_graded,
                   "n_interpolated_rows": int(tracks["interpolated"].sum()) if len(tracks) else 0,
                   "n_embeddings_computed": res.n_embeddings},
        "summary": {mode: s.to_dict() for mode, s in summaries.items()},
        "primary_aggregate": k.aggregate,
        "who_comparison": who_comparison(summary),
        "truth_check": truth_check,
        "warnings": warnings,
        "config": config,
        "versions": software_versions(),
        "timings_s": timings,
        "outputs": {**files, **REPORT_FILES},
        "outputs_columns": {"tracks_csv": TRACKS_CSV_COLUMNS},
    }
