"""Does the candidate classifier keep the phantom's heads? ``BlobDetector()`` vs ``BlobDetector(classifier=None)``.

Clips (the phantom benchmark of ``benchmarks/detection_blob.py``; never trained on: the classifier's
synthetic training videos use seeds >= 20000): ``simulate_cells(seconds=2, fps=50, cells=50, seed,
difficulty, look)`` at 640x480, every 5th frame, easy (9001, 9002), medium (9001, 9002, 3, 11)
and hard (9001, 9002, 8, 12), in both looks (``classic``: the older phantom, background ~115,
dimmer heads with a dark halo, Gaussian / Poisson noise; ``visem``: the default phantom). Each
detector is calibrated on the clip; class-0 detections are scored against the true head centres
(:func:`~spermtrack.tracker.detmetrics.detection_scores`, within 5 px, clusters and pinheads
ignored). ``before``: the detector of the earlier benchmark (no classifier, classic look,
``detection_blob.py`` BEFORE).

Run: ``python benchmarks/classifier_phantom.py [--weights W.pt]`` (about 2 minutes); writes
``benchmarks/results/classifier_phantom.md`` (only with the default weights).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spermtrack.detect.blob import BlobDetector  # noqa: E402
from spermtrack.detect.classifier import CandidateClassifier  # noqa: E402
from spermtrack.io.atomic import write_text_atomic  # noqa: E402
from spermtrack.synth import render_frame, simulate_cells  # noqa: E402
from spermtrack.tracker.detmetrics import detection_scores, truth_frames  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "classifier_phantom.md"
CLIPS = [(look, d, s) for look in ("classic", "visem") for d, s in
         [("easy", 9001), ("easy", 9002), ("medium", 9001), ("medium", 9002), ("medium", 3), ("medium", 11),
          ("hard", 9001), ("hard", 9002), ("hard", 8), ("hard", 12)]]
#: (P, R) of the detector before the classifier existed (classic look; detection_blob.py BEFORE)
BEFORE = {"easy 9001": (0.976, 0.983), "easy 9002": (0.982, 0.988), "medium 9001": (0.926, 0.977),
          "medium 9002": (0.990, 0.977), "medium 3": (0.995, 0.978), "medium 11": (0.974, 0.986),
          "hard 9001": (0.953, 0.774), "hard 9002": (0.920, 0.823), "hard 8": (0.979, 0.752),
          "hard 12": (0.963, 0.801)}


def score(det: BlobDetector, frames: np.ndarray, truth) -> tuple[float, float]:
    det.calibrate(frames)
    det.params = type(det.params)(**{**det.params.__dict__, "recalibrate": False})
    s = detection_scores(det.detect(frames), truth, classes=(0,))
    return s.precision, s.recall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path, default=None, help="classifier weights (default: the shipped ones)")
    ap.add_argument("--looks", default="classic,visem")
    args = ap.parse_args()
    t0 = time.time()
    clf = CandidateClassifier.load(args.weights)
    looks = args.looks.split(",")
    rows = []
    for look, diff, seed in CLIPS:
        if look not in looks:
            continue
        scene = simulate_cells(seconds=2, fps=50, cells=50, seed=seed, difficulty=diff, width=640, height=480,
                               look=look)
        idx = list(range(0, scene.n_frames, 5))
        frames = np.stack([render_frame(scene, i) for i in idx])
        truth = truth_frames(scene.boxes, idx)
        p1, r1 = score(BlobDetector(classifier=clf), frames, truth)
        p0, r0 = score(BlobDetector(classifier=None), frames, truth)
        clip = f"{diff} {seed}"
        rows.append((look, clip, p1, r1, p0, r0))
        print(f"{look} {clip}: classifier P {p1:.3f} R {r1:.3f} | none P {p0:.3f} R {r0:.3f}", flush=True)

    lines = ["# Candidate classifier on the phantom: `BlobDetector()` vs `BlobDetector(classifier=None)`", "",
             f"- command: `python benchmarks/classifier_phantom.py{f' --weights {args.weights}' if args.weights else ''}`",
             f"- date: {_dt.datetime.now().isoformat(timespec='minutes')}; machine: {platform.machine()}, 2 shared "
             f"CPU cores; run time {(time.time() - t0) / 60:.1f} min",
             f"- classifier: `{clf.path}` ({clf.arch}, crop {clf.crop_size}, {clf.channels} channels, tta {clf.tta}); "
             f"trained by `{clf.provenance.get('command', '?')}`",
             "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| look | clip | P with classifier | R with classifier | P no classifier | R no classifier | "
             "R ratio | P / R before (classic, old detector) |",
             "|---|---|---|---|---|---|---|---|"]
    for look, clip, p1, r1, p0, r0 in rows:
        b = BEFORE.get(clip) if look == "classic" else None
        lines.append(f"| {look} | {clip} | {p1:.3f} | {r1:.3f} | {p0:.3f} | {r0:.3f} | {r1 / max(r0, 1e-9):.3f} | "
                     f"{f'{b[0]:.3f} / {b[1]:.3f}' if b else ''} |")
    lines += ["", "## Checks (classic look: no lower than before the classifier, tolerance 0.005)", ""]
    for diff in ("easy", "medium", "hard"):
        g = [r for r in rows if r[0] == "classic" and r[1].startswith(diff)]
        if not g:
            continue
        okp = all(r[2] >= BEFORE[r[1]][0] - 0.005 for r in g)
        okr = all(r[3] >= BEFORE[r[1]][1] - 0.005 for r in g)
        lines.append(f"- classic {diff}: P {min(r[2] for r in g):.3f}-{max(r[2] for r in g):.3f} (before "
                     f"{min(BEFORE[r[1]][0] for r in g):.3f}-{max(BEFORE[r[1]][0] for r in g):.3f}) -> "
                     f"**{'met' if okp else 'NOT met'}**; R {min(r[3] for r in g):.3f}-{max(r[3] for r in g):.3f} "
                     f"(before {min(BEFORE[r[1]][1] for r in g):.3f}-{max(BEFORE[r[1]][1] for r in g):.3f}) -> "
                     f"**{'met' if okr else 'NOT met'}**")
    for look in looks:
        g = [r for r in rows if r[0] == look]
        if g:
            lines.append(f"- {look}: recall with / without the classifier {min(r[3] / max(r[5], 1e-9) for r in g):.3f}"
                         f"-{max(r[3] / max(r[5], 1e-9) for r in g):.3f}; precision with "
                         f"{np.mean([r[2] for r in g]):.3f} vs without {np.mean([r[4] for r in g]):.3f} (mean)")
    text = "\n".join(lines) + "\n"
    if args.weights is None:
        write_text_atomic(RESULTS, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
