"""Candidate classifier (sperm / impurity / cluster): small ViT vs small CNN on real VISEM crops.

Train (both models, same samples, same recipe as ``spermtrack train classifier``): real VISEM-Tracking
video 11 frames 0-734 (every ``--frame-step``-th), the 3 labelled real frames of video 12
(``frames12``) and ``--synth-videos`` synthetic videos. Evaluate on the HELD-OUT second half of
video 11 (frames 735-1469, every 5th frame; never trained on):

- classification of every detector candidate (``BlobDetector(classifier=None).candidates(frame, min_z=2)``),
  labelled by distance to the labels (sperm <= 8 px from a sperm label centre, cluster inside a
  cluster box, impurity > 12 px from every label, else dropped): accuracy, per-class P / R / F1;
  clean and under Poisson noise (frame x k photons per gray level, Poisson-sampled, / k; k = 4
  and k = 1), the crops taken at the same positions;
- detection P / R: label sperm centres vs points (one-to-one, within 8 px; unmatched points
  within 12 px of a pinhead label or inside a cluster box are not counted) for the detector
  without a classifier, the detector with each classifier (its class-0 detections), every
  candidate, and every candidate the classifier calls sperm;
- throughput of ``CandidateClassifier.predict_proba`` (crop extraction included) on 200
  candidates per frame;
- attention rollout (ViT) and Grad-CAM (CNN) of a few held-out crops -> ``results/classifier_maps/``.

The shipped default weights (``spermtrack/detect/weights/classifier.pt``) are evaluated too.

Run: ``python benchmarks/classifier.py --epochs 3 --frame-step 10`` (the recorded run; about 15-20 min on 2 busy CPU cores); writes
``benchmarks/results/classifier.md`` and ``benchmarks/results/classifier_maps/*.png``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spermtrack.detect.blob import BlobDetector  # noqa: E402
from spermtrack.detect.classifier import (CLASSES, CandidateClassifier, TinyViT, extract_crops,  # noqa: E402
                                          grad_cam, poisson_noise)
from spermtrack.detect.classifier_data import (IMPURITY_RADIUS, RAW_SIZE, ClassifierTrainConfig,  # noqa: E402
                                               _plain_detector, assign_labels, build_samples, detector_candidates,
                                               raw_size_for, train_model)
from spermtrack.io.atomic import write_text_atomic  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "visem"
VIDEO = SHARED / "Train" / "11"
FRAMES12 = SHARED / "frames12"
RESULTS = ROOT / "benchmarks" / "results" / "classifier.md"
MAPS = ROOT / "benchmarks" / "results" / "classifier_maps"
EVAL_FRAMES = range(735, 1470, 5)
PHOTONS = (4.0, 1.0)
MATCH_PX = 8.0


def eval_frames(step: int = 5, limit: int | None = None):
    from spermtrack.io.visem import iter_video_frames, read_visem_video

    v = read_visem_video(VIDEO)
    boxes = v.boxes
    for f, img in iter_video_frames(v, list(range(735, 1470, step))[:limit]):
        g = boxes[boxes["frame"] == f]
        yield f, img, g[["cls", "x", "y", "w", "h"]].to_numpy(np.float64)


def match(pts: np.ndarray, boxes: np.ndarray) -> tuple[int, int, int]:
    """(tp, fp, fn): sperm label centres vs points, one-to-one within MATCH_PX."""
    from scipy.optimize import linear_sum_assignment

    gt = boxes[boxes[:, 0] == 0][:, 1:3]
    if len(pts) == 0 or len(gt) == 0:
        tp = 0
        un = np.ones(len(pts), bool)
    else:
        d = np.hypot(pts[:, None, 0] - gt[None, :, 0], pts[:, None, 1] - gt[None, :, 1])
        r, c = linear_sum_assignment(np.where(d <= MATCH_PX, d, 1e6))
        ok = d[r, c] <= MATCH_PX
        tp = int(ok.sum())
        un = np.ones(len(pts), bool)
        un[r[ok]] = False
    # unmatched points near pinheads or inside cluster boxes are not graded
    lab = assign_labels(pts[un, 0], pts[un, 1], boxes) if un.any() else np.zeros(0)
    near_other = np.zeros(un.sum(), bool)
    other = boxes[boxes[:, 0] == 2]
    if len(other) and un.any():
        q = pts[un]
        near_other = (np.hypot(q[:, None, 0] - other[None, :, 1], q[:, None, 1] - other[None, :, 2]) <= IMPURITY_RADIUS).any(1)
    fp = int((~((lab == 2) | near_other)).sum())
    return tp, fp, len(gt) - tp


def prf(y, p, k):
    tp = int(((p == k) & (y == k)).sum())
    P = tp / max(1, int((p == k).sum()))
    R = tp / max(1, int((y == k).sum()))
    return P, R, (2 * P * R / (P + R) if P + R else 0.0), int((y == k).sum())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--frame-step", type=int, default=5)
    ap.add_argument("--synth-videos", type=int, default=4)
    ap.add_argument("--synth-looks", default="visem,classic")
    ap.add_argument("--synth-difficulties", default="medium,hard")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crop-size", type=int, default=24)
    ap.add_argument("--channels", type=int, default=2, choices=(1, 2))
    ap.add_argument("--max-impurity-ratio", type=float, default=2.0)
    ap.add_argument("--eval-step", type=int, default=5, help="every n-th held-out frame")
    ap.add_argument("--smoke", action="store_true", help="wiring check: 2 training frames, 3 eval frames, no results")
    ap.add_argument("--save-dir", type=Path, default=None, help="also save the trained ViT / CNN here")
    args = ap.parse_args()
    if not VIDEO.is_dir():
        print(f"{VIDEO} not found: nothing to benchmark")
        return 1
    t_start = time.time()
    log = lambda m: print(m, flush=True)  # noqa: E731
    samples = build_samples([VIDEO], frames="0:12" if args.smoke else "0:735", frame_step=args.frame_step, extra_frames=[FRAMES12],
                            synth_videos=args.synth_videos, seed=args.seed, max_impurity_ratio=args.max_impurity_ratio,
                            raw_size=max(RAW_SIZE, raw_size_for(args.crop_size)), synth_looks=args.synth_looks.split(","),
                            synth_difficulties=args.synth_difficulties.split(","), log=log)
    log(f"train samples {samples.counts()}")
    models: dict[str, CandidateClassifier] = {}
    train_s = {}
    for arch in ("vit", "cnn"):
        t0 = time.time()
        m = train_model(samples, ClassifierTrainConfig(arch=arch, epochs=args.epochs, seed=args.seed,
                                                       crop_size=args.crop_size, channels=args.channels), log=log)
        train_s[arch] = time.time() - t0
        models[arch] = CandidateClassifier(m, arch, args.crop_size, provenance={"benchmark": "benchmarks/classifier.py"})
        if args.save_dir:
            models[arch].save(args.save_dir / f"classifier_{arch}.pt")
    try:
        models["default"] = CandidateClassifier.load()
    except Exception as err:  # noqa: BLE001
        log(f"no default weights: {err}")

    dets_by = {"detector, no classifier": _plain_detector()}
    for name, clf in models.items():
        try:
            dets_by[f"detector + {name} classifier"] = BlobDetector(classifier=clf)
        except TypeError:
            pass
    # calibrate every detector on the first 16 held-out frames (as `analyze` does on its first chunk)
    first = np.stack([img for _, img, _ in eval_frames(args.eval_step, 16)])
    for d in dets_by.values():
        d.calibrate(first)
    cal = next(iter(dets_by.values())).calibration
    hc = float(cal.spread_gray * cal.head_level_z)
    log(f"held-out calibration: spread {cal.spread_gray:.2f} gray, head level {cal.head_level_z:.1f} z, "
        f"head contrast {hc:.1f} gray levels, threshold {cal.threshold_z:.2f} z")
    ys, probs = [], {(n, k): [] for n in models for k in (0.0, *PHOTONS)}
    detc = {}
    keep_crops = []
    rng = np.random.default_rng(123)
    n_frames = 0

    def add(key, pts, boxes):
        detc.setdefault(key, np.zeros(3, int))[:] += match(np.asarray(pts, float).reshape(-1, 2), boxes)

    for f, img, boxes in eval_frames(args.eval_step, 3 if args.smoke else None):
        n_frames += 1
        c, bright = detector_candidates(img)
        x, y = np.asarray(c["x"], float), np.asarray(c["y"], float)
        lab = assign_labels(x, y, boxes)
        ok = lab >= 0
        ys.append(lab[ok])
        for key, d in dets_by.items():
            dd = d.detect(img[None])[0]
            sel = dd.cls == 0
            add(key, np.c_[(dd.xyxy[sel, 0] + dd.xyxy[sel, 2]) / 2, (dd.xyxy[sel, 1] + dd.xyxy[sel, 3]) / 2], boxes)
        add("all candidates (floor z=2)", np.c_[x, y], boxes)
        noisy = {k: poisson_noise(bright, k, rng) for k in PHOTONS}
        for name, clf in models.items():
            p = clf.predict_proba(bright, x, y, head_contrast_gray=hc)
            probs[(name, 0.0)].append(p[ok])
            for k in PHOTONS:
                probs[(name, k)].append(clf.predict_proba(noisy[k], x[ok], y[ok], head_contrast_gray=hc))
            add(f"all candidates -> {name} (p_sperm >= 0.5)", np.c_[x, y][p[:, 0] >= 0.5], boxes)
        if len(keep_crops) < 1 and (f >= 1000 or args.smoke):
            keep_crops.append((bright, x[ok], y[ok], lab[ok]))
    y_all = np.concatenate(ys)
    log(f"eval: {n_frames} frames, {len(y_all)} candidates {np.bincount(y_all, minlength=3)}")

    # throughput: 200 candidates per frame, crop extraction included
    img = keep_crops[0][0]
    cx = rng.uniform(0, 639, 200)
    cy = rng.uniform(0, 479, 200)
    thr = {}
    for name in [n for n in ("vit", "cnn", "default") if n in models]:
        clf = models[name]
        clf.predict_proba(img, cx, cy, head_contrast_gray=hc)
        t0 = time.perf_counter()
        for _ in range(50):
            clf.predict_proba(img, cx, cy, head_contrast_gray=hc)
        dt = (time.perf_counter() - t0) / 50
        thr[name] = (200 / dt, dt * 1470)

    lines = ["# Candidate classifier: small ViT vs small CNN (real VISEM, held-out frames)", "",
             f"- command: `python benchmarks/classifier.py --epochs {args.epochs} --frame-step {args.frame_step} "
             f"--synth-videos {args.synth_videos} --synth-looks {args.synth_looks} "
             f"--synth-difficulties {args.synth_difficulties} --seed {args.seed} --eval-step {args.eval_step} "
             f"--crop-size {args.crop_size} --channels {args.channels} --max-impurity-ratio {args.max_impurity_ratio:g}`",
             f"- date: {_dt.datetime.now().isoformat(timespec='minutes')}; machine: {platform.machine()}, "
             f"{os.cpu_count()} CPU cores (shared), torch {torch.__version__} ({torch.get_num_threads()} threads), no GPU; "
             f"total run time {(time.time() - t_start) / 60:.1f} min",
             f"- trained on: VISEM-Tracking video 11 frames 0-734 every {args.frame_step}th frame, frames12 (3 real "
             f"frames of video 12), {args.synth_videos} synthetic videos x 8 frames (looks {args.synth_looks}, difficulties "
             f"{args.synth_difficulties}, seeds >= 20000); samples {samples.counts()} "
             f"(candidates + label centres + random background + dark-ridge + halo-rim points); "
             f"{args.epochs} epochs, seed {args.seed}, crop {args.crop_size} px, {args.channels} input channel(s)"
             f"{' (per-crop normalised + contrast / video head contrast)' if args.channels == 2 else ''}; "
             f"training time ViT {train_s['vit']:.0f} s, CNN {train_s['cnn']:.0f} s",
             f"- detectors calibrated on the first 16 held-out frames (head contrast {hc:.1f} gray levels, "
             f"passed to every classifier as `head_contrast_gray`)",
             f"- evaluated on: HELD-OUT video 11 frames 735-1469, every 5th ({n_frames} frames): "
             f"{len(y_all)} detector candidates (BlobDetector(classifier=None).candidates(frame, min_z=2)) labelled by "
             f"distance (sperm <= 8 px of a sperm label, cluster inside a cluster box, impurity > 12 px from every "
             f"label, rest dropped): sperm {int((y_all == 0).sum())}, impurity {int((y_all == 1).sum())}, "
             f"cluster {int((y_all == 2).sum())}",
             "- Poisson noise: frame x k photons per gray level, Poisson-sampled, / k (k = 4: background "
             "~70-90 gray levels gets sd ~4-5 levels; k = 1: sd ~8-9 levels); same candidate positions",
             ""]
    if "default" in models:
        d = models["default"]
        lines.append(f"- default weights: arch `{d.arch}`, crop {d.crop_size} px, {d.channels} channel(s), test-time "
                     f"augmentation {d.tta} views, {d.version}, trained by "
                     f"`{d.provenance.get('command', '?')}`")
        lines.append("")
    lines += ["## Classification of held-out candidates", "",
              "| model | noise | accuracy | impurity P | impurity R | impurity F1 | sperm P | sperm R | sperm F1 | cluster F1 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    acc = {}
    imp_f1 = {}
    for name in models:
        for k in (0.0, *PHOTONS):
            p = np.concatenate(probs[(name, k)]).argmax(1)
            a = float((p == y_all).mean())
            acc[(name, k)] = a
            ip, sp, cl = prf(y_all, p, 1), prf(y_all, p, 0), prf(y_all, p, 2)
            imp_f1[(name, k)] = ip[2]
            noise = "clean" if k == 0 else f"Poisson k={k:g}"
            lines.append(f"| {name} | {noise} | {a:.4f} | {ip[0]:.3f} | {ip[1]:.3f} | {ip[2]:.3f} | {sp[0]:.3f} | "
                         f"{sp[1]:.3f} | {sp[2]:.3f} | {cl[2]:.3f} |")
    lines += ["", "## Targets (held-out real data)", ""]
    for name in models:
        f1 = imp_f1[(name, 0.0)]
        drop = 100 * (acc[(name, 0.0)] - acc[(name, PHOTONS[0])])
        drop1 = 100 * (acc[(name, 0.0)] - acc[(name, PHOTONS[1])])
        lines.append(f"- {name}: impurity F1 {f1:.3f} >= 0.90: **{'met' if f1 >= 0.9 else 'NOT met'}**; accuracy drop "
                     f"under Poisson k={PHOTONS[0]:g} {drop:+.2f} points <= 1: **{'met' if drop <= 1 else 'NOT met'}** "
                     f"(k={PHOTONS[1]:g}: {drop1:+.2f} points, {'met' if drop1 <= 1 else 'NOT met'})")
    lines += ["", "## Detection P / R on held-out frames (sperm label centres, one-to-one within 8 px)", "",
              "| points | precision | recall | F1 | TP | FP | FN |", "|---|---|---|---|---|---|---|"]
    for key, (tp, fp, fn) in detc.items():
        P, R = tp / max(1, tp + fp), tp / max(1, tp + fn)
        lines.append(f"| {key} | {P:.3f} | {R:.3f} | {2 * P * R / max(P + R, 1e-9):.3f} | {tp} | {fp} | {fn} |")
    lines += ["", "## Throughput (`predict_proba`, crop extraction included, 200 candidates per frame)", "",
              "| model | params | test-time views | crops / s | 1,470 frames x 200 candidates |", "|---|---|---|---|---|"]
    for name in thr:
        npar = sum(p.numel() for p in models[name].model.parameters())
        lines.append(f"| {name} | {npar:,} | {models[name].tta} | {thr[name][0]:,.0f} | {thr[name][1]:.1f} s |")

    # maps
    MAPS.mkdir(parents=True, exist_ok=True)
    img, x, y, lab = keep_crops[0]
    pick = []
    for k, n in ((0, 3), (1, 3), (2, 1)):
        idx = np.flatnonzero(lab == k)
        pick += list(rng.choice(idx, min(n, len(idx)), replace=False))
    S = args.crop_size
    crops = torch.from_numpy(extract_crops(img, x[pick], y[pick], S, channels=args.channels, head_contrast_gray=hc))
    xin = crops if crops.ndim == 4 else crops[:, None]
    show = xin[:, 0]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vit, cnn = models["vit"].model, models["cnn"].model
    roll = vit.attention_rollout(xin) if isinstance(vit, TinyViT) else None
    cam = grad_cam(cnn, xin)
    pv = models["vit"].predict_crops(crops)
    pc = models["cnn"].predict_crops(crops)
    fig, axes = plt.subplots(3, len(pick), figsize=(1.6 * len(pick), 5.2))
    for j in range(len(pick)):
        axes[0, j].imshow(show[j], cmap="gray")
        axes[0, j].set_title(f"true {CLASSES[lab[pick[j]]]}", fontsize=7)
        axes[1, j].imshow(show[j], cmap="gray")
        axes[1, j].imshow(torch.nn.functional.interpolate(roll[j][None, None], size=S, mode="bilinear")[0, 0],
                          cmap="jet", alpha=0.45)
        axes[1, j].set_title(f"ViT: {CLASSES[pv[j].argmax()]} {pv[j].max():.2f}", fontsize=7)
        axes[2, j].imshow(show[j], cmap="gray")
        axes[2, j].imshow(torch.nn.functional.interpolate(cam[j][None, None], size=S, mode="bilinear")[0, 0],
                          cmap="jet", alpha=0.45)
        axes[2, j].set_title(f"CNN: {CLASSES[pc[j].argmax()]} {pc[j].max():.2f}", fontsize=7)
        for i in range(3):
            axes[i, j].axis("off")
    fig.suptitle("held-out video 11 crops: input / ViT attention rollout / CNN Grad-CAM", fontsize=8)
    fig.tight_layout()
    fig.savefig(MAPS / ("maps_smoke.png" if args.smoke else "maps.png"), dpi=80)
    plt.close(fig)
    lines += ["", "## Explanation maps", "",
              "`classifier_maps/maps.png`: held-out crops (row 1, true class), ViT attention rollout (row 2) and "
              "CNN Grad-CAM (row 3) with each model's prediction.", ""]
    if not args.smoke:
        write_text_atomic(RESULTS, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
