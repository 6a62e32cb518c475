"""Learned segmentation (yolo-seg) vs the classical segmenter on the HELD-BACK part of the real
truth set (issue 15, item 3).

What it does (``benchmarks/results/morphology_learned.md``, written only by this script):

1. **Phantom crops**: ``spermtrack synth`` with the realistic ``visem`` look (fixed seed), cut
   into crops with their head / midpiece / tail polygon labels by
   :func:`spermtrack.morphology.train_seg.build_seg_dataset` (as ``spermtrack train seg`` does).
2. **Real crops, TUNE part only**: every accepted truth cell of ``tests/data/morph_truth`` with
   ``split == "tune"``, cut from its source frame as at inference (head centre at the anchor, +x
   toward the head's front) ``--copies`` times (random yaw up to 20 deg, centre shift up to 1 px),
   labels rasterised from the truth head outline and the midpiece / tail polylines
   (:func:`spermtrack.morphology.train_seg.add_truth_crops`). Held-back cells are never seen in
   training or validation; nothing is tuned on them.
3. **Training**: :func:`spermtrack.morphology.train_seg.train_seg` on that dataset (yolo11n-seg
   from its YAML, no pretrained weights, seed 0, CPU, one thread).
4. **Scoring**: part 1 of ``benchmarks/morphology_real.py`` (its functions, imported: the same
   cells, frames, official tracks, ``crop_params(k=1)`` crops through the public chain
   ``morphology_from_frames``, and its ``accuracy``), once with ``segmenter="classical"`` and once
   with the trained yolo-seg model; per split head length / width and midpiece median absolute
   errors (um), tail length median relative error, cells measured, seconds per crop.
5. **Decision**: the learned model "beats classical" only when, on the held-back part, its head
   length AND head width errors are lower and it is not worse on midpiece, tail length or cells
   measured.

Usage (the recorded command; ~10 min on one CPU core)::

    OMP_NUM_THREADS=1 python benchmarks/morphology_learned.py [--epochs 12] [--no-write]

``--weights W.pt`` scores existing weights instead of training. Work files (synth videos, dataset,
ultralytics run, weights) go to ``benchmarks/_work/learned/`` (git-ignored). Needs
``../shared/data/visem`` (skips with a message when absent).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import morphology_real as MR  # noqa: E402
import realdata as rd  # noqa: E402

from spermtrack.morphology import segment as SEG  # noqa: E402
from spermtrack.morphology import train_seg as TS  # noqa: E402

OUT = rd.RESULTS / "morphology_learned.md"
WORK = rd.ROOT / "benchmarks" / "_work" / "learned"
#: phantom: realistic look, fixed seed
SYNTH_ARGS = ["--videos", "4", "--seconds", "1.5", "--cells", "30", "--seed", "15", "--look", "visem",
              "--width", "320", "--height", "320", "--no-images", "--quiet"]
SEED = 0


def synth(out: Path) -> list[str]:
    cmd = [str(Path(sys.executable).with_name("spermtrack")), "synth", str(out), *SYNTH_ARGS]
    if not Path(cmd[0]).is_file():
        cmd = [sys.executable, "-m", "spermtrack", "synth", str(out), *SYNTH_ARGS]
    subprocess.run(cmd, check=True)
    return cmd


def count(folder: Path) -> int:
    return len(list(folder.glob("*.png"))) if folder.is_dir() else 0


def score(gray11, tracks11, gray12, tracks12, truth, segmenter) -> dict:
    t0 = time.perf_counter()
    j = MR.run_truth_frames(gray11, tracks11, gray12, tracks12, truth, segmenter=segmenter)
    t = time.perf_counter() - t0
    n = j.attrs.get("n_crops", 0)
    return {"acc": {p: MR.accuracy(j[j.split == p]) for p in ("held", "tune")}, "t": t, "n_crops": n,
            "s_per_crop": t / n if n else float("nan"), "table": j}


def beats(learned: dict, classical: dict) -> tuple[bool, list[str]]:
    """The decision rule on the held-back part, with the reasons."""
    L, C = learned["acc"]["held"], classical["acc"]["held"]
    why, ok = [], True

    def err(a, m):
        v = a[m]["median_abs"]
        return v if np.isfinite(v) else np.inf

    for m, name in (("head_length_um", "head length"), ("head_width_um", "head width")):
        better = err(L, m) < err(C, m)
        ok &= better
        why.append(f"{name}: {MR.fmt(L[m]['median_abs'])} vs {MR.fmt(C[m]['median_abs'])} um "
                   f"({'better' if better else 'NOT better'})")
    for m, name in (("midpiece_length_um", "midpiece"), ("tail_length_rel", "tail length")):
        worse = err(L, m) > err(C, m) or L[m]["n"] < C[m]["n"]
        ok &= not worse
        why.append(f"{name}: {MR.fmt(L[m]['median_abs'])} vs {MR.fmt(C[m]['median_abs'])} "
                   f"({L[m]['n']} vs {C[m]['n']} measured; {'worse' if worse else 'not worse'})")
    worse = L["n_measured"] < C["n_measured"]
    ok &= not worse
    why.append(f"cells measured: {L['n_measured']} vs {C['n_measured']} ({'worse' if worse else 'not worse'})")
    return bool(ok), why


def table(results: dict[str, dict]) -> list[str]:
    L = ["| split | segmenter | cells measured | head length (um) | head width (um) | midpiece (um) | "
         "tail length (rel.) | s / crop |", "|---|---|---|---|---|---|---|---|"]

    def cell(d, scale=1.0, unit=""):
        return f"{MR.fmt(d['median_abs'] * scale, 2)}{unit} ({d['n']} / {d['of']})"

    for part, pname in (("held", "**held-back**"), ("tune", "tune (trained on)")):
        for name, r in results.items():
            a = r["acc"][part]
            L.append(f"| {pname} | {name} | {a['n_measured']} / {a['n_cells']} | {cell(a['head_length_um'])} | "
                     f"{cell(a['head_width_um'])} | {cell(a['midpiece_length_um'])} | "
                     f"{cell(a['tail_length_rel'], 100, ' %')} | {r['s_per_crop']:.3f} |")
    return L


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--copies", type=int, default=16, help="crops per tune cell (random yaw / shift)")
    ap.add_argument("--weights", type=Path, default=None, help="score these weights, do not train")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.FRAMES12, rd.GT_DIR / "video11_gt_mot.txt.gz", MR.TRUTH_DIR / "cells.json"):
        return 0
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    t_start = time.perf_counter()
    truth, cells = MR.load_truth()
    gray11, tracks11 = MR.video11_frame0_and_tracks()
    gray12 = cv2.imread(str(rd.FRAMES12 / "12_frame_0.jpg"), cv2.IMREAD_GRAYSCALE)
    tracks12 = MR.frame12_tracks()
    frames = {("v11", 0): gray11, ("f12", 0): gray12}
    tune_cells = [c for c in cells if c["split"] == "tune"]
    held_ids = set(truth.loc[truth.split == "held", "cell_id"])
    assert not held_ids & {c["id"] for c in tune_cells}

    cfg = TS.SegTrainConfig(epochs=args.epochs, device="cpu", seed=SEED)
    info: dict = {}
    if args.weights is None:
        import shutil

        if WORK.exists():
            shutil.rmtree(WORK)
        WORK.mkdir(parents=True)
        t0 = time.perf_counter()
        info["synth_cmd"] = synth(WORK / "synth")
        yaml_path = TS.build_seg_dataset(WORK / "synth", WORK / "dataset", cfg)
        ds = yaml_path.parent
        info["phantom_train"], info["phantom_val"] = count(ds / "images" / "train"), count(ds / "images" / "val")
        info["real_train"] = TS.add_truth_crops(yaml_path, tune_cells, frames, cfg, copies=args.copies)
        info["t_data"] = time.perf_counter() - t0
        weights = WORK / "yoloseg_learned.pt"
        t0 = time.perf_counter()
        TS.train_seg(yaml_path, weights, cfg)
        info["t_train"] = time.perf_counter() - t0
        meta = json.loads(weights.with_suffix(".json").read_text())
        info["metrics"] = meta.get("metrics")
    else:
        weights = args.weights
    info["weights_mb"] = weights.stat().st_size / 2**20

    classical = score(gray11, tracks11, gray12, tracks12, truth, "classical")
    seg = SEG.get_segmenter("yolo-seg", weights=weights, um_per_px=MR.UM, device="cpu")
    learned = score(gray11, tracks11, gray12, tracks12, truth, seg)
    ok, why = beats(learned, classical)
    t_total = time.perf_counter() - t_start

    res = {"classical": classical, "yolo-seg (learned)": learned}
    L = ["# Learned segmentation (yolo-seg) vs classical on the real truth set", "",
         "Written by `benchmarks/morphology_learned.py` (issue 15, item 3); method and decision in "
         "docs/MORPHOLOGY_LEARNED.md.", ""]
    if args.weights is None:
        L += ["## Training", "",
              f"- phantom: `spermtrack synth OUT {' '.join(SYNTH_ARGS)}` -> "
              f"{info['phantom_train']} train / {info['phantom_val']} val crops (`build_seg_dataset`, 64 px, "
              f"anchor 0.5, yaw jitter 20 deg);",
              f"- real: the {len(tune_cells)} TUNE cells of tests/data/morph_truth x {args.copies} crops = "
              f"{info['real_train']} train crops (labels rasterised from the truth outlines / polylines, 3 px wide "
              f"lines); the {len(held_ids)} held-back cells are not used in training or validation;",
              f"- model: {cfg.model} from scratch, {cfg.epochs} epochs, imgsz {cfg.imgsz}, batch {cfg.batch}, "
              f"seed {cfg.seed}, CPU, one thread; data {info['t_data']:.0f} s, training {info['t_train']:.0f} s; "
              f"weights {info['weights_mb']:.1f} MB;",
              "- phantom validation (ultralytics, last metrics): "
              + (", ".join(f"{k} {v:.3f}" for k, v in (info.get("metrics") or {}).items()
                           if isinstance(v, (int, float)) and k.endswith("(M)")) or "n/a") + ".",
              "", "Command: `OMP_NUM_THREADS=1 python benchmarks/morphology_learned.py "
              f"--epochs {args.epochs} --copies {args.copies}`.", ""]
    else:
        L += [f"Scored existing weights `{weights}` ({info['weights_mb']:.1f} MB); no training in this run.", ""]
    L += ["## Held-back part of the real truth set", "",
          "Part 1 of `benchmarks/morphology_real.py` (same cells, frames, official tracks, `crop_params(k=1)`, "
          "public chain, same scoring), once per segmenter. Median absolute error (measured / truth cells with "
          "the measurement); tail length: median relative error on tails whose end is visible; s / crop: the "
          "whole part-1 run (cropping, segmentation, morphometry) / crops, one CPU thread, model load excluded.", ""]
    L += table(res)
    L += ["", f"## Decision: {'learned BEATS classical (weights may ship)' if ok else 'learned does NOT beat classical: yolo-seg stays EXPERIMENTAL, no weights shipped'}",
          "", "Rule: better on held-back head length AND head width, not worse on midpiece, tail length or cells "
          "measured.", ""]
    L += [f"- {w}" for w in why]
    L += ["", f"Total run time {t_total:.0f} s."]
    text = "\n".join(L) + "\n"
    print(text)
    if not args.no_write:
        rd.RESULTS.mkdir(parents=True, exist_ok=True)
        OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
