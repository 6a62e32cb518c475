"""Super-resolution before morphometry (issue 15, item 4): does a small x2 network trained on
phantom pairs (``spermtrack.morphology.superres``) lower the classical segmenter's errors on the
REAL truth set, and the within-track spread of head length on video 11?

What it measures and writes (``benchmarks/results/morphology_sr.md``):

1. **Training** (skipped when the cached weights and their JSON record exist, ``--weights``,
   default ``/tmp/spermtrack_sr_x2.pt`` and ``/tmp/spermtrack_sr_x2_sr_soft.pt``): two networks,
   ``sr`` (target: the plain high-res phantom render) and ``sr-soft`` (target: the render blurred
   by 1 high-res px, so the visem look's px-defined blurs keep their width in um), each on phantom
   pairs (``superres.make_pairs``: scenes at 0.25 um/px, ``look="visem"``; low-res = 2 x 2 area
   average + the phantom's noise model + JPEG q70-95), ``superres.train`` with seed 0, one
   thread, 900 steps (about 5 minutes each). The phantom validation L1 of bicubic and of each net
   on pairs from another seed.
2. **Truth set** (``benchmarks/morphology_real.py`` section 1's cells, crops, joins and scoring,
   imported): the classical segmenter on the 1x crops (``none``), on bicubic x2 crops
   (``bicubic``) and on each network's x2 crops; crops and tail windows are routed at 1x (the
   same frames), upscaled, and segmented / measured at ``um_per_px / 2``
   (``superres.finish_sr``). Per part (tune, held-back): head length / width and midpiece median
   absolute errors (um), tail length median relative error, cells measured; per-cell paired
   counts against ``none``.
3. **Video 11** (official tracks, default crop parameters, ``--no-video11`` skips it): the median
   relative IQR of a track's head length (section 2 of morphology_real.py) for every variant, on
   the same routed crops (no tail window there, for time: the head outline comes from the crop).

Decision (on the tune part only), per network: it is kept as an option when, on the tune part,
its head length AND head width median absolute errors are both at or below those of ``none`` and
``bicubic``, one of them lower than both by at least 0.05 um, it measures at least as many cells,
and its midpiece error is not worse than the better of the two by more than 0.2 um; and the
held-back part does not contradict it (head length and width not both worse than ``none`` there).
Among networks that pass, the lowest tune head length + width error.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/morphology_sr.py [--no-write] [--retrain]
[--no-video11]``. Training takes about 11 minutes on one core (two networks); the rest about a
minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import morphology_real as MR  # noqa: E402
import realdata as rd  # noqa: E402

import spermtrack.morphology as M  # noqa: E402
from spermtrack.morphology import superres as SR  # noqa: E402
from spermtrack.morphology.chain import MorphologyChain  # noqa: E402
from spermtrack.morphology.crops import route_crops_from_video  # noqa: E402

OUT = rd.RESULTS / "morphology_sr.md"
WEIGHTS = Path("/tmp/spermtrack_sr_x2.pt")
#: the networks compared: name -> target_blur_px of make_pairs (``sr``: the plain high-res render;
#: ``sr-soft``: the render blurred so the phantom's px-defined blurs keep their width in um)
NETS = {"sr": 0.0, "sr-soft": 1.0}
UM = MR.UM
#: training recipe (the reproducible command is this script with --retrain)
TRAIN = dict(n_scenes=9, frames_per_scene=4, patches_per_frame=24, seed=0)
STEPS, BATCH, CHANNELS, BLOCKS = 900, 16, 32, 4
VARIANTS = ("none", "bicubic", *NETS)


class _ChainWith:
    """``spermtrack.morphology`` with ``morphology_from_frames`` replaced by the x2 variant, so
    morphology_real.run_truth_frames (its loop, joins and keys) runs unchanged."""

    def __init__(self, model):
        self._model = model

    def morphology_from_frames(self, frames, tracks, width, height, um_per_px, *, crop_params=None,
                               track_ids=None, segmenter="classical", **kw):
        return SR.morphology_from_frames_sr(frames, tracks, width, height, um_per_px, self._model,
                                            segmenter=segmenter, crop_params=crop_params, track_ids=track_ids)

    def __getattr__(self, name):
        return getattr(M, name)


def run_truth(variant, models, gray11, tracks11, gray12, tracks12, truth):
    if variant == "none":
        return MR.run_truth_frames(gray11, tracks11, gray12, tracks12, truth)
    saved = MR.M
    MR.M = _ChainWith(models.get(variant, "bicubic"))
    try:
        return MR.run_truth_frames(gray11, tracks11, gray12, tracks12, truth)
    finally:
        MR.M = saved


def weights_path(base: Path, name: str) -> Path:
    return base if name == "sr" else base.with_name(f"{base.stem}_{name.replace('-', '_')}{base.suffix}")


def get_model(retrain: bool, weights: Path, blur: float, log=print):
    """Cached network (and its training record, a JSON next to it) or a fresh one trained now."""
    import json

    import torch

    torch.set_num_threads(1)
    rec = weights.with_suffix(".json")
    if weights.is_file() and rec.is_file() and not retrain:
        info = json.loads(rec.read_text())
        info["source"] = f"cached weights {weights} (trained {info.get('date', '?')})"
        return SR.load(weights), info
    info = {"target_blur_px": blur}
    t0 = time.perf_counter()
    lr, hr = SR.make_pairs(**TRAIN, target_blur_px=blur)
    info["t_pairs"] = time.perf_counter() - t0
    info["n_pairs"] = len(lr)
    t0 = time.perf_counter()
    model, losses = SR.train(lr, hr, steps=STEPS, batch=BATCH, seed=0, channels=CHANNELS, blocks=BLOCKS,
                             time_limit_s=480, log=log)
    info["t_train"] = time.perf_counter() - t0
    info["steps"] = len(losses)
    info["loss_first"], info["loss_last"] = float(np.mean(losses[:20])), float(np.mean(losses[-50:]))
    SR.save(model, weights)
    info["date"] = time.strftime("%Y-%m-%dT%H:%M")
    rec.write_text(json.dumps(info))
    info["source"] = f"trained now, saved to {weights}"
    return model, info


def phantom_validation(model, blur: float) -> dict:
    """L1 (gray levels) of bicubic and of the net on held-out phantom pairs (another seed, the
    net's own target blur)."""
    lr, hr = SR.make_pairs(n_scenes=3, frames_per_scene=2, patches_per_frame=16, seed=99, target_blur_px=blur)
    hr = hr.astype(np.float64)
    b = np.stack([SR.upscale(x, "bicubic") for x in lr]).astype(np.float64)
    s = np.stack([SR.upscale(x, model) for x in lr]).astype(np.float64)
    return {"n": len(lr), "bicubic": float(np.abs(b - hr).mean()), "sr": float(np.abs(s - hr).mean())}


def video11_riqr(tracks11, models) -> dict:
    """Median relative IQR of a track's head length on video 11 for each variant (same crops)."""
    chain = MorphologyChain(tracks11, UM)
    p = chain.crop_params
    # tail windows are not needed for the head outline: route crops only (time)
    from dataclasses import replace

    p_nowin = replace(p, tail_um=None)
    t0 = time.perf_counter()
    crops = route_crops_from_video(rd.VIDEO11, chain.rows, p_nowin)
    out = {"t_route": time.perf_counter() - t0, "n_crops": len(crops)}
    for v in VARIANTS:
        t0 = time.perf_counter()
        if v == "none":
            res = MorphologyChain(tracks11, UM, crop_params=p_nowin).finish(crops)
        else:
            res = SR.finish_sr(crops, tracks11, UM, models.get(v, "bicubic"))
        pt = res.per_track
        m = pt[pt["n_crops"] > 0]
        riqr = (m["head_length_iqr_um"] / m["head_length_um"]).replace([np.inf, -np.inf], np.nan)
        out[v] = {"riqr": float(riqr.median()), "n": int(riqr.notna().sum()), "n_tracks": len(m),
                  "head_len": float(m["head_length_um"].median()), "t": time.perf_counter() - t0}
    return out


def row(name, a) -> str:
    f = MR.fmt
    return (f"| {name} | {a['n_measured']} / {a['n_cells']} | "
            f"{f(a['head_length_um']['median_abs'])} ({a['head_length_um']['n']}) | "
            f"{f(a['head_width_um']['median_abs'])} ({a['head_width_um']['n']}) | "
            f"{f(a['midpiece_length_um']['median_abs'])} ({a['midpiece_length_um']['n']}) | "
            f"{f(100 * a['tail_length_rel']['median_abs'], 0)} % ({a['tail_length_rel']['n']}) | "
            f"{f(a['head_length_um']['bias'])} / {f(a['head_width_um']['bias'])} |")


def paired(j0: pd.DataFrame, j1: pd.DataFrame, part: str, m: str) -> tuple[int, int]:
    """Cells of one part where variant ``j1``'s absolute error on ``m`` is lower / higher than ``j0``'s."""
    k = ["source", "cell_id"]
    a = j0[j0.split == part].set_index(k)
    b = j1[j1.split == part].set_index(k).reindex(a.index)
    e0 = (a["pkg_" + m] - a[m]).abs()
    e1 = (b["pkg_" + m] - b[m]).abs()
    ok = e0.notna() & e1.notna()
    d = (e1 - e0)[ok]
    return int((d < -0.01).sum()), int((d > 0.01).sum())


def decide(acc: dict) -> tuple[str | None, str]:
    """The network kept (None: none) and why, per the rule of the module docstring; among the
    networks that pass, the lowest tune head length + width error."""
    passed, whys = [], []
    for net in NETS:
        ok, why = decide_one(acc, net)
        whys.append(f"{net}: {why}")
        if ok:
            tn = acc["tune"][net]
            passed.append((tn["head_length_um"]["median_abs"] + tn["head_width_um"]["median_abs"], net))
    return (min(passed)[1] if passed else None), "; ".join(whys)


def decide_one(acc: dict, net: str) -> tuple[bool, str]:
    acc = {part: {**{v: acc[part][v] for v in ("none", "bicubic")}, "sr": acc[part][net]} for part in acc}
    tn = acc["tune"]

    def e(v, m):
        x = tn[v][m]["median_abs"]
        return x if np.isfinite(x) else np.inf

    hl = {v: e(v, "head_length_um") for v in ("none", "bicubic", "sr")}
    hw = {v: e(v, "head_width_um") for v in ("none", "bicubic", "sr")}
    mp = {v: e(v, "midpiece_length_um") for v in ("none", "bicubic", "sr")}
    best_hl, best_hw = min(hl["none"], hl["bicubic"]), min(hw["none"], hw["bicubic"])
    ok = (hl["sr"] <= best_hl and hw["sr"] <= best_hw
          and (hl["sr"] <= best_hl - 0.05 or hw["sr"] <= best_hw - 0.05)
          and tn["sr"]["n_measured"] >= max(tn["none"]["n_measured"], tn["bicubic"]["n_measured"])
          and mp["sr"] <= min(mp["none"], mp["bicubic"]) + 0.2)
    hd = acc["held"]
    contra = (hd["sr"]["head_length_um"]["median_abs"] > hd["none"]["head_length_um"]["median_abs"]
              and hd["sr"]["head_width_um"]["median_abs"] > hd["none"]["head_width_um"]["median_abs"])
    why = (f"tune part: head length {hl['sr']:.2f} um (net) vs {hl['none']:.2f} (none) / {hl['bicubic']:.2f} "
           f"(bicubic), head width {hw['sr']:.2f} vs {hw['none']:.2f} / {hw['bicubic']:.2f}, midpiece "
           f"{mp['sr']:.2f} vs {mp['none']:.2f} / {mp['bicubic']:.2f}, cells measured {tn['sr']['n_measured']} vs "
           f"{tn['none']['n_measured']} / {tn['bicubic']['n_measured']}")
    return ok and not contra, why + ("; held-back part contradicts" if ok and contra else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--retrain", action="store_true", help="train even when the cached weights exist")
    ap.add_argument("--weights", type=Path, default=WEIGHTS, help="cached weights (read, or written after training)")
    ap.add_argument("--no-video11", action="store_true", help="skip the video-11 spread measure")
    args = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.FRAMES12, MR.TRUTH_DIR / "cells.json"):
        return 0
    import cv2

    t_start = time.perf_counter()
    models, infos, vals = {}, {}, {}
    for net, blur in NETS.items():
        models[net], infos[net] = get_model(args.retrain, weights_path(args.weights, net), blur)
        vals[net] = phantom_validation(models[net], blur)
    truth, _ = MR.load_truth()
    gray11, tracks11 = MR.video11_frame0_and_tracks()
    gray12 = cv2.imread(str(rd.FRAMES12 / "12_frame_0.jpg"), cv2.IMREAD_GRAYSCALE)
    tracks12 = MR.frame12_tracks()
    acc, t_var, js = {"tune": {}, "held": {}}, {}, {}
    for v in VARIANTS:
        t0 = time.perf_counter()
        j = run_truth(v, models, gray11, tracks11, gray12, tracks12, truth)
        t_var[v] = time.perf_counter() - t0
        js[v] = j
        for part in ("tune", "held"):
            acc[part][v] = MR.accuracy(j[j.split == part])
        print(v, {p: (acc[p][v]["head_length_um"]["median_abs"], acc[p][v]["head_width_um"]["median_abs"])
                  for p in acc}, f"{t_var[v]:.1f} s")
    v11 = None if args.no_video11 else video11_riqr(tracks11, models)
    keep, why = decide(acc)

    L = rd.header("Morphology: x2 super-resolution before segmentation (real truth set)", __file__,
                  sys.argv[1:] if argv is None else argv)
    L += [f"**Decision: {f'{keep} helps on the tune part: kept as an option' if keep else 'not used'}** "
          f"({why}).", "",
          "## Networks and training", "",
          f"`spermtrack.morphology.superres`: EDSR-like x2 ({CHANNELS} channels, {BLOCKS} residual blocks, pixel "
          f"shuffle, added to bicubic; the residual branch starts at zero, i.e. as bicubic), "
          f"{sum(p.numel() for p in models['sr'].parameters())} parameters, "
          f"{SR.state_bytes(models['sr']) / 1024:.0f} KB saved. Training pairs: `make_pairs({TRAIN}, "
          f"target_blur_px=...)`: visem-look scenes simulated at 0.25 um/px (768 x 576 px), 48 -> 96 px patches, "
          f"3 of 4 on a cell head; low-res = 2x2 area average + the phantom's noise model + JPEG q70-95 (80 % of "
          f"patches). Adam, L1, batch {BATCH}, cosine schedule, seed 0, one thread. `sr`: target the plain "
          f"high-res render; `sr-soft`: the high-res render blurred by 1.0 px first (the visem look's blurs that are "
          f"defined in px are half as wide in um at 0.25 um/px; see `make_pairs`).", "",
          "| network | target blur (HR px) | pairs | steps | training time | L1 first 20 -> last 50 steps | "
          "phantom validation L1 (gray levels): bicubic / net | weights |",
          "|---|---|---|---|---|---|---|---|"]
    for net, blur in NETS.items():
        info, val = infos[net], vals[net]
        L.append(f"| {net} | {blur:g} | {info.get('n_pairs', '?')} | {info.get('steps', '?')} | "
                 f"{info.get('t_pairs', float('nan')):.0f} s pairs + {info.get('t_train', float('nan')):.0f} s | "
                 f"{info.get('loss_first', float('nan')):.4f} -> {info.get('loss_last', float('nan')):.4f} | "
                 f"{val['bicubic']:.2f} / {val['sr']:.2f} ({val['n']} pairs, seed 99) | {info['source']} |")
    L += ["",
          "## Real truth set (morphology_real.py section 1's cells and scoring)", "",
          "Crops (`crop_params(k=1)`) and tail windows routed at 1x, then upscaled x2 (table moved to the 2x frame: "
          "`2 v + 0.5`), segmented by the classical segmenter and measured at 0.25 um/px. Errors: median absolute "
          "(number of cells with both values); tail: median relative error of visible-end tails; bias: median "
          "signed error (package - truth) of head length / width.", ""]
    hdr = ["| variant | cells measured | head length (um) | head width (um) | midpiece (um) | tail length | "
           "bias L / W (um) |", "|---|---|---|---|---|---|---|"]
    for part, title in (("tune", "Tune part (decides)"), ("held", "Held-back part (reported)")):
        L += [f"### {title}", ""] + hdr + [row(v, acc[part][v]) for v in VARIANTS] + [""]
    L += ["Paired, per cell (same cells, same crops): cells whose absolute error is lower / higher than "
          "without upscaling (ties within 0.01 um not counted).", "",
          "| part | variant | head length lower / higher | head width lower / higher | midpiece lower / higher |",
          "|---|---|---|---|---|"]
    for part in ("tune", "held"):
        for v in VARIANTS[1:]:
            cells = []
            for m in ("head_length_um", "head_width_um", "midpiece_length_um"):
                a, b = paired(js["none"], js[v], part, m)
                cells.append(f"{a} / {b}")
            L.append(f"| {part} | {v} | " + " | ".join(cells) + " |")
    L += ["", "Run time on the truth set: " + ", ".join(f"{v} {t_var[v]:.1f} s" for v in VARIANTS) + ".", ""]
    if v11 is not None:
        L += ["## Video 11, official tracks: spread of head length within a track", "",
              f"Same routed crops for every variant ({v11['n_crops']} crops, default crop parameters, no tail window; "
              f"routing {v11['t_route']:.0f} s). Median over tracks of IQR / median of the track's head length "
              f"(issue target <= {MR.T_HEAD_RIQR}).", "",
              "| variant | median relative IQR | tracks with an IQR | median head length (um) | time (s) |",
              "|---|---|---|---|---|"]
        for v in VARIANTS:
            d = v11[v]
            L.append(f"| {v} | {MR.fmt(d['riqr'], 3)} | {d['n']} / {d['n_tracks']} | {MR.fmt(d['head_len'])} | "
                     f"{d['t']:.0f} |")
        L.append("")
    L += ["## Decision", "",
          (f"{keep} is kept as an option (`morphology_from_frames(..., superres=...)`)." if keep else
           "**Not used**: the network is not wired into the product; `spermtrack.morphology.superres` stays a "
           "research module exercised by this benchmark and its tests (docs/MORPHOLOGY_SR.md)."),
          f"Rule (decided on the tune part; see the script's docstring): {why}.", "",
          f"Whole benchmark {time.perf_counter() - t_start:.0f} s (wall, shared machine, one thread).", ""]
    rd.publish(OUT, L, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
