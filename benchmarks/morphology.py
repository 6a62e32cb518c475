"""Morphology benchmark: accuracy per measurement and difficulty, and crops/s.

Segmenters: ``classical`` (default), a briefly trained ``yolo-seg`` (CPU, a few epochs on
phantom crops), and a naive baseline (Otsu threshold + regionprops ellipse axes for the head)
measured on the same crops in the same run. Truth: the phantom's per-track parameters
(``scene.truth``). Prints a markdown table and writes benchmarks/results/morphology.md.

The phantom is rendered in each of ``--looks`` (default both): ``classic`` (the original bright,
noisy phase-contrast look: the look of every number in this file before 2026-11-30) and
``visem`` (the synthetic phantom's default look since then, made to match real VISEM frames:
saturating bright heads with a wide glow, a dark rim and midpiece, debris). Until the looks were
named here the script took ``simulate_cells``' default, so its numbers silently moved from the
classic to the visem look when that default changed (commit a06e700). Each table says which look
it measured. The real pixels are judged by ``benchmarks/morphology_real.py``, not here.

    python benchmarks/morphology.py [--quick] [--yolo-epochs 5] [--looks classic,visem]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spermtrack.morphology import CropParams, morphology_from_frames  # noqa: E402
from spermtrack.morphology.classical import ClassicalSegmenter  # noqa: E402
from spermtrack.morphology.crops import route_crops  # noqa: E402
from spermtrack.synth import render_frame, simulate_cells  # noqa: E402

UM = 0.5
RESULTS = Path(__file__).resolve().parent / "results" / "morphology.md"


def scene_frames(sc):
    return ((i, render_frame(sc, i)) for i in range(sc.n_frames))


def otsu_baseline(crops, anchors):
    """Head L, W (px) from Otsu on the crop + regionprops ellipse axes of the component at the anchor."""
    from skimage.measure import label, regionprops

    out = []
    for c, a in zip(crops, anchors):
        _, b = cv2.threshold(cv2.GaussianBlur(c, (3, 3), 0), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        lab = label(b)
        k = lab[int(round(a[1])), int(round(a[0]))]
        if k == 0:
            out.append((np.nan, np.nan))
            continue
        rp = regionprops((lab == k).astype(np.uint8))[0]
        out.append((rp.axis_major_length, rp.axis_minor_length))
    return np.array(out)


def accuracy_rows(name, difficulty, per_crop, truth):
    j = per_crop.join(truth.set_index("track_id")[["head_length_um", "head_width_um", "midpiece_length_um",
                                                    "tail_length_um", "tail_variant", "cls"]], on="track_id",
                      rsuffix="_true")
    # tail length: normal and short tails (a coil's overlapping turns hide its length: flag only)
    j = j[j.cls == 0].copy()
    j.loc[j.tail_variant == "coiled", "tail_length_um"] = np.nan
    rows = []
    for m, unit in (("head_length", "px"), ("head_width", "px"), ("midpiece_length", "um"), ("tail_length", "%")):
        est, tru = j[f"{m}_um"], j[f"{m}_um_true"]
        ok = est.notna() & tru.notna()
        err = (est - tru)[ok]
        if unit == "px":
            e = err / UM
        elif unit == "%":
            e = 100 * err / tru[ok]
        else:
            e = err
        rows.append({"segmenter": name, "difficulty": difficulty, "measurement": m, "unit": unit,
                     "n": f"{int(ok.sum())}/{len(j)}", "bias": e.median() if len(e) else np.nan,
                     "median_abs": e.abs().median() if len(e) else np.nan,
                     "p90_abs": e.abs().quantile(0.9) if len(e) else np.nan})
    return rows


def flag_rows(difficulty, per_track, truth):
    j = per_track.join(truth.set_index("track_id")[["head_variant", "tail_variant", "cls"]], on="track_id")
    j = j[(j.cls == 0) & (j.n_crops > 0)]
    rows = []
    for variant, flag, col in (("tapered", "flag_tapered_head", "head_variant"), ("round", "flag_round_head", "head_variant"),
                               ("small", "flag_small_head", "head_variant"), ("large", "flag_large_head", "head_variant"),
                               ("coiled", "flag_coiled_tail", "tail_variant"), ("short", "flag_short_tail", "tail_variant")):
        pos = j[col] == variant
        f = j[flag].fillna(False).astype(bool)
        rows.append({"difficulty": difficulty, "flag": flag, "true_variant_n": int(pos.sum()),
                     "recall": f[pos].mean() if pos.any() else np.nan,
                     "false_pos_rate": f[~pos].mean() if (~pos).any() else np.nan})
    return rows


def speed(cs, seg, repeat=7):
    """Crops/s of ``segment_crops`` (with the tail windows when the crop set has them), best of
    ``repeat`` runs (the dev machine is shared: the best run is the least disturbed one)."""
    from spermtrack.morphology.segment import segment_crops

    segment_crops(seg, cs)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        segment_crops(seg, cs)
        best = min(best, time.perf_counter() - t0)
    return len(cs) / best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--yolo-epochs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--looks", default="classic,visem",
                    help="phantom looks to render, comma-separated (classic: the look of the numbers before "
                         "2026-11-30; visem: the phantom's default since then); 0 YOLO epochs skip yolo-seg")
    args = ap.parse_args(argv)
    from spermtrack.synth import check_look

    looks = [check_look(x.strip()) for x in args.looks.split(",") if x.strip()]
    cv2.setNumThreads(1)
    seconds = 1.0 if args.quick else args.seconds
    acc, flags, spd = [], [], []
    small = CropParams()
    nowin = CropParams(tail_um=None, um_per_px=UM)
    med_crops = None
    from spermtrack.morphology.morphometry import measure_crops
    from spermtrack.morphology.segment import segment_crops

    for look, diff in ((lk, d) for lk in looks for d in ("easy", "medium", "hard")):
        sc = simulate_cells(seconds=seconds, fps=50, cells=15, seed=21, difficulty=diff, look=look)
        res = morphology_from_frames(scene_frames(sc), sc.boxes, sc.width, sc.height, UM, crop_params=small)
        n0 = len(acc)
        acc += accuracy_rows("classical 64x64 + tail window", diff, res.per_crop, sc.truth)
        flags += [{"look": look, **r} for r in flag_rows(diff, res.per_track, sc.truth)]
        cs = res.crops
        seg = ClassicalSegmenter(UM)
        anchors = cs.table[["anchor_u", "anchor_v"]].to_numpy()
        ncs = route_crops(scene_frames(sc), sc.boxes, sc.width, sc.height, nowin)
        pc = measure_crops(segment_crops(seg, ncs), ncs.images, ncs.table, UM)
        acc += [r for r in accuracy_rows("classical 64x64, no window", diff, pc, sc.truth)
                if r["measurement"] == "tail_length"]
        base = otsu_baseline(cs.images, anchors)
        bpc = cs.table[["track_id", "frame"]].assign(head_length_um=base[:, 0] * UM, head_width_um=base[:, 1] * UM,
                                                     midpiece_length_um=np.nan, tail_length_um=np.nan)
        acc += [r for r in accuracy_rows("otsu+regionprops 64x64", diff, bpc, sc.truth)
                if r["measurement"].startswith("head")]
        for r in acc[n0:]:
            r["look"] = look
        if diff == "medium":
            med_crops = (cs, sc, look)
            spd.append(("classical", f"64x64 + tail window ({look})", speed(cs, seg)))
            spd.append(("classical", f"64x64, no window ({look})", speed(ncs, seg)))
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                otsu_baseline(cs.images, anchors)
                best = min(best, time.perf_counter() - t0)
            spd.append(("otsu+regionprops (head only)", f"64x64 ({look})", len(cs) / best))
    yolo_note = ""
    if args.yolo_epochs > 0:
        from spermtrack.morphology.morphometry import measure_crops
        from spermtrack.morphology.segment import get_segmenter
        from spermtrack.morphology.train_seg import SegTrainConfig, train_seg
        from spermtrack.synth import generate

        with tempfile.TemporaryDirectory() as tmp:
            # trained and measured on the last look of --looks (the default order ends with visem)
            cs, sc, ylook = med_crops
            generate(Path(tmp) / "syn", videos=2, seconds=2.0, cells=20, seed=5, write_images=False, mask_every=2,
                     look=ylook)
            t0 = time.perf_counter()
            w = train_seg(Path(tmp) / "syn", Path(tmp) / "seg.pt",
                          SegTrainConfig(epochs=args.yolo_epochs, imgsz=64, batch=32, max_crops=1500, device="cpu"))
            train_s = time.perf_counter() - t0
            yseg = get_segmenter("yolo-seg", weights=w, device="cpu")
            anchors = cs.table[["anchor_u", "anchor_v"]].to_numpy()
            t0 = time.perf_counter()
            ys = yseg.segment(cs.images, anchors)
            spd.append(("yolo-seg (CPU)", f"64x64 ({ylook})", len(cs) / (time.perf_counter() - t0)))
            acc += [{"look": ylook, **r} for r in accuracy_rows(f"yolo-seg {args.yolo_epochs} ep", "medium",
                                                                  measure_crops(ys, cs.images, cs.table, UM), sc.truth)]
            yolo_note = (f"yolo-seg: yolo11n-seg.yaml from scratch, {args.yolo_epochs} epochs on <= 1500 phantom crops "
                         f"(2 videos, medium, {ylook} look), CPU, trained in {train_s:.0f} s.")
    a = pd.DataFrame(acc)
    a = a[["look"] + [c for c in a.columns if c != "look"]]
    f = pd.DataFrame(flags)
    s = pd.DataFrame(spd, columns=["segmenter", "crop", "crops_per_s"])
    base = s.loc[s.segmenter == "classical", "crops_per_s"].iloc[0]
    s["vs_classical_64"] = s.crops_per_s / base
    text = "\n".join([
        "# Morphology benchmark", "",
        f"Command: `OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ",
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores (one thread used: "
        f"cv2.setNumThreads(1), OMP_NUM_THREADS=1), Python {platform.python_version()}.  ",
        f"Data: phantom scenes ({seconds:.0f} s, 50 fps, 15 cells, seed 21) per difficulty and look "
        f"({', '.join(looks)}), 0.5 um/px; "
        "K = 5 crops per track; errors per crop against the track's true parameters.  ",
        "Units: head errors in px, midpiece in um, tail in % of the true length; bias = median signed error. "
        "Tail length: normal and short tails, crops whose trace faded inside the tail window "
        "(`CropParams` default: 50 um from the head every way, cut from the same frame as the 64x64 crop); "
        "coiled tails are judged by the flag (their overlapping turns hide the length). "
        "'no window' = the tail traced in the 64x64 crop only (cut by its border).  ",
        "Looks: `classic` = the original bright noisy phase-contrast phantom (every number of this file before "
        "2026-11-30 is of this look); `visem` = the phantom's default look since commit a06e700 (like real VISEM "
        "frames: saturating heads with a wide glow, dark rim and midpiece, debris). Until the looks were named here "
        "the script rendered `simulate_cells`' default, so it silently switched to `visem` with that commit.  ",
        yolo_note, "",
        "## Accuracy", "", a.to_markdown(index=False, floatfmt=".2f"), "",
        "## Flags per track (median over K crops)", "", f.to_markdown(index=False, floatfmt=".2f"), "",
        "## Speed (one core)", "", s.to_markdown(index=False, floatfmt=".0f"), "",
        "Target: >= 500 crops/s for classical on 64x64 crops on one core. Speed = best of 7 runs over "
        "the medium crops (run under `taskset -c 0`; the dev machine is shared, so the best run is "
        "the least disturbed one).", "",
    ])
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
