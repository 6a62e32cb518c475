"""Several fields (videos) of one sample pooled into one result, as a CASA reports a sample.

WHO asks for at least 200 assessed cells per sample; one 30-s field of a VISEM-like video
grades 50-150. ``spermtrack analyze F1.mp4 F2.mp4 ... --sample NAME`` analyses each field into
its own folder as usual, then :func:`pool_sample` writes ``OUT/NAME/``:

- ``sample_summary.json``: the fields, the pooled grade table (every graded cell of every field
  counted once, Wilson 95 % intervals on ``n_graded`` = the sum over fields, WHO limits, the
  200-cell check), the pooled ``kinematics_distribution`` and ``morphology_summary`` (indicative
  % normal forms and head / neck-midpiece / tail findings), the pooled concentration (all heads in
  view over all analysed frames / the field volume; only when every field has a chamber depth),
  ids, warnings, configuration and versions;
- ``sample_summary.csv``: the same table, distribution rows and context columns as a field's
  ``summary.csv``;
- ``report.pdf``: the printable pooled report.

Pooling is per cell ("track" aggregation); fields must share the grading preset. The folder is
written as ``OUT/NAME.partial/`` and swapped into place when complete, like a field's.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spermtrack.errors import InputFileError, ParameterError

#: the files of a pooled sample folder
SAMPLE_FILES = ("sample_summary.json", "sample_summary.csv", "report.pdf")


@dataclass
class SampleResult:
    """What :func:`pool_sample` wrote."""

    out_dir: Path
    meta: dict
    summary: object
    metrics: pd.DataFrame
    fields: list[dict] = field(default_factory=list)


def check_sample_name(name: str, field_dirs: list[Path], out: Path) -> None:
    """A sample name is one folder name that is not one of the fields' folders."""
    n = str(name)
    if not n.strip() or n in (".", "..") or any(c in n for c in "/\\\0") or not n.isprintable():
        raise ParameterError(f"--sample {name!r} must be a plain folder name (no '/', not empty)")
    clash = [d for d in field_dirs if Path(d).resolve() == (Path(out) / n).resolve()]
    if clash:
        raise ParameterError(f"--sample {name!r} is also the folder of a field ({clash[0]}); choose another name")


def _load_field(folder: Path) -> tuple[dict, pd.DataFrame]:
    p = folder / "summary.json"
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(p, "missing: the field was not analysed") from None
    except (OSError, ValueError) as err:
        raise InputFileError(p, f"not readable as a summary.json ({err})") from None
    if meta.get("status") != "complete":
        raise InputFileError(p, f"the field's analysis is not complete (status {meta.get('status')!r})")
    k = folder / "kinematics.csv"
    try:
        metrics = pd.read_csv(k)
    except FileNotFoundError:
        raise InputFileError(k, "missing (the field's folder is incomplete)") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise InputFileError(k, f"not a readable kinematics table ({err})") from None
    for c in ("track_id", "grade"):
        if c not in metrics.columns:
            raise InputFileError(k, f"has no {c!r} column")
    return meta, metrics


def _same(values: list, what: str, warnings: list[str]):
    """The common value of the fields, or None (with a warning) when they differ."""
    uniq = list(dict.fromkeys(values))
    if len(uniq) == 1:
        return uniq[0]
    warnings.append(f"fields differ in {what}: {', '.join(str(u) for u in uniq)} (each field's value is in 'fields')")
    return None


def _pooled_concentration(metas: list[dict]) -> dict | None:
    """All heads in view over all analysed frames / the field volume (fields may differ in size)."""
    recs = [m.get("concentration") for m in metas]
    if not recs or any(r is None for r in recs):
        return None
    head_frames = sum(r["mean_heads_in_view"] * r["n_frames"] for r in recs)
    volume_frames = sum(r["field_area_um2"] * r["chamber_depth_um"] * r["n_frames"] for r in recs)
    depths = sorted({r["chamber_depth_um"] for r in recs})
    n_frames = sum(r["n_frames"] for r in recs)
    return {"concentration_million_per_ml": head_frames / volume_frames * 1e6,
            "mean_heads_in_view": head_frames / n_frames, "n_frames": n_frames,
            "chamber_depth_um": depths[0] if len(depths) == 1 else depths,
            "field_area_um2": recs[0]["field_area_um2"] if len({r["field_area_um2"] for r in recs}) == 1 else None,
            "per_field_million_per_ml": [r["concentration_million_per_ml"] for r in recs],
            "counting_rule": recs[0]["counting_rule"] + "; pooled: all head-frames of all fields / all frames x "
                                                        "field volume"}


def pool_sample(field_dirs: list[str | Path], out_root: str | Path, name: str, *, sample_id: str | None = None,
                patient_id: str | None = None) -> SampleResult:
    """Pool complete field folders (``analyze`` outputs) into ``out_root/name/``.

    Raises:
        InputFileError: a field folder is missing or incomplete.
        ParameterError: a bad name, no field, or fields graded with different presets.
    """
    from spermtrack.io.atomic import commit_run_folder, start_run_folder, write_csv_atomic, write_json_atomic
    from spermtrack.pipeline.results import software_versions, summary_frame, who_comparison
    from spermtrack.kinematics import summarize_motility
    from spermtrack.kinematics.summary import kinematics_distribution
    from spermtrack.morphology.morphometry import morphology_summary

    dirs = [Path(d) for d in dict.fromkeys(Path(d) for d in field_dirs)]
    if not dirs:
        raise ParameterError(f"sample {name!r}: no field to pool")
    out_root = Path(out_root)
    check_sample_name(name, dirs, out_root)
    loaded = [_load_field(d) for d in dirs]
    metas = [m for m, _ in loaded]
    warnings: list[str] = []
    presets = {m["kinematics"]["preset"] for m in metas}
    if len(presets) > 1:
        raise ParameterError(f"sample {name!r}: fields graded with different presets ({', '.join(sorted(presets))}); "
                             f"analyse them with one --preset")
    frames = []
    for i, (m, k) in enumerate(loaded):
        k = k.copy()
        k.insert(0, "field", m["video"]["name"])
        k["track_id"] = k["track_id"].astype(int) + (i + 1) * 1_000_000  # one id space over the fields
        frames.append(k)
    metrics = pd.concat(frames, ignore_index=True)
    metrics.attrs["window_rule"] = metas[0]["kinematics"].get("window_rule")
    if "hyperactivated" in metrics.columns:
        metrics["hyperactivated"] = metrics["hyperactivated"].astype(str).str.lower().isin(("true", "1"))
    summary = summarize_motility(metrics, aggregate="track")
    if not summary.meets_who_count:
        warnings.append(f"only {summary.n_graded} graded cells over {len(dirs)} field(s); WHO asks for at least 200 "
                        f"(analyse more fields)")
    for m in metas:
        warnings += [f"{m['video']['name']}: {w}" for w in m.get("warnings", [])]
    cal = {"fps": _same([m["calibration"]["fps"] for m in metas], "fps", warnings),
           "fps_source": _same([m["calibration"]["fps_source"] for m in metas], "fps source", warnings),
           "um_per_px": _same([m["calibration"]["um_per_px"] for m in metas], "um_per_px", warnings),
           "um_per_px_source": _same([m["calibration"]["um_per_px_source"] for m in metas], "um_per_px source",
                                     warnings),
           "um_per_px_estimated": any(m["calibration"].get("um_per_px_estimated") for m in metas)}
    fields = []
    for d, m in zip(dirs, metas):
        s = m["summary"]["track"]
        pct = {r["quantity"]: r["pct"] for r in s["table"]}
        fields.append({"video": m["video"]["name"], "folder": str(d), "n_graded": s["n_graded"],
                       "n_frames_analysed": m["n_frames_analysed"], "fps": m["calibration"]["fps"],
                       "um_per_px": m["calibration"]["um_per_px"],
                       "um_per_px_source": m["calibration"]["um_per_px_source"],
                       "progressive_pct": pct.get("progressive"), "total_motility_pct": pct.get("total_motility"),
                       "immotile_pct": pct.get("immotile"), "truncated": m.get("truncated", False),
                       "concentration_million_per_ml": m.get("concentration_million_per_ml")})
    conc = _pooled_concentration(metas)
    if conc is None and any(m.get("concentration") for m in metas):
        warnings.append("no pooled concentration: some fields were analysed without --chamber-depth-um")
    distribution = kinematics_distribution(metrics)
    morph = [pd.read_csv(d / "morphology.csv") for d in dirs if (d / "morphology.csv").is_file()]
    ids = {"sample_id": sample_id if sample_id is not None else name, "patient_id": patient_id}
    meta = {
        "software": "spermtrack", "command": "sample", "status": "complete",
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "sample_name": name, **ids, "n_fields": len(dirs), "fields": fields,
        "n_graded": summary.n_graded, "meets_who_count": summary.meets_who_count,
        "truncated": any(f["truncated"] for f in fields),
        "calibration": cal, "kinematics": {"preset": presets.pop(), "aggregate": "track",
                                           "window_rule": metrics.attrs["window_rule"]},
        **({"concentration_million_per_ml": conc["concentration_million_per_ml"], "concentration": conc}
           if conc is not None else {}),
        "summary": {"track": summary.to_dict()}, "primary_aggregate": "track",
        "who_comparison": who_comparison(summary), "kinematics_distribution": distribution,
        "morphology_summary": morphology_summary(pd.concat(morph, ignore_index=True)) if morph else None,
        "warnings": warnings, "config": metas[0].get("config"), "versions": software_versions(),
        "outputs": {"sample_summary_json": "sample_summary.json", "sample_summary_csv": "sample_summary.csv",
                    "report_pdf": "report.pdf"},
    }
    context = {**ids, "video": f"{len(dirs)} fields", "fps": cal["fps"], "fps_source": cal["fps_source"],
               "um_per_px": cal["um_per_px"], "um_per_px_source": cal["um_per_px_source"],
               "n_frames_analysed": sum(f["n_frames_analysed"] for f in fields), "truncated": meta["truncated"],
               "preset": meta["kinematics"]["preset"]}
    if conc is not None:
        context.update(chamber_depth_um=conc["chamber_depth_um"] if not isinstance(conc["chamber_depth_um"], list)
                       else None, concentration_million_per_ml=round(conc["concentration_million_per_ml"], 2))
    final = out_root / name
    work = start_run_folder(final)
    try:
        write_csv_atomic(work / "sample_summary.csv",
                         summary_frame({"track": summary}, context=context, distribution=distribution))
        from spermtrack.report.pdf import write_report_pdf

        write_report_pdf(work / "report.pdf", meta, metrics)
        write_json_atomic(work / "sample_summary.json", meta)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    commit_run_folder(work, final)
    return SampleResult(final, meta, summary, metrics, fields)
