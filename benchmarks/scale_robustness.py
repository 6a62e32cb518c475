"""Heads of other sizes: the default detector on REAL video 11 resampled by known factors
(writes benchmarks/results/scale_robustness.md).

Why: VISEM videos differ in how large a head is in pixels (the detector's calibrated head core:
video 11 8.9 px, video 12 7.4 px; the official label boxes of the 16 gt videos have medians of
18-32 px) and in focus (a defocused stretch of video 11 measures 9.4-9.9 px). The candidate
classifier learned heads of one size, so a detector that is right at video 11's size can lose
heads (smaller) or take debris for heads (larger) elsewhere. Resampling video 11 by a factor
``s`` gives videos whose heads are ``s`` times larger with the labels known exactly (label
centres x ``s``; predictions are scored back in the original pixels, within 8 px as
``real_detection.py`` scores them).

Rows: detector configurations (``--configs``: ``NAME=WEIGHTS@BAND``; WEIGHTS ``default`` = the
shipped classifier, ``git:REV`` = the classifier file of an earlier commit (extracted with ``git
show``), ``none`` = no classifier, or a path; BAND = ``detect.blob.classifier_scale_band``). Columns: scale factors.
Frames: video 11's validation frames 601-734 (every 2nd; the classifier's recipe and the band were
chosen there, docs/CLASSIFIER.md) and the held-out report half 735-1469 (every 5th). Each
configuration and scale is a fresh detector calibrated on the resampled frames (as a new video).

Run: ``python benchmarks/scale_robustness.py`` (~5 min on 2 cores); ``--no-write`` prints only.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import realdata as rd  # noqa: E402

OUT = rd.RESULTS / "scale_robustness.md"
WEIGHTS_PATH = "spermtrack/detect/weights/classifier.pt"
SETS = {"validation 601-734": (601, 734, 2), "report 735-1469": (735, 1469, 5)}
DEFAULT_CONFIGS = ["before (v4 weights, band 1.25)=git:e87654a@1.25", "now (shipped weights, band 1.15)=default@1.15"]
DEFAULT_SCALES = "0.8,0.9,1.0,1.1,1.2,1.3"


def resolve_weights(spec: str, tmp: Path) -> str:
    """``default``, a path, or ``git:REV`` (the classifier file of that commit, written to ``tmp``)."""
    if not spec.startswith("git:"):
        return spec
    rev = spec[4:]
    out = tmp / f"classifier_{rev}.pt"
    r = subprocess.run(["git", "show", f"{rev}:{WEIGHTS_PATH}"], cwd=ROOT, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"scale_robustness: cannot read {WEIGHTS_PATH} at commit {rev} (a shallow clone?): "
                         f"{r.stderr.decode(errors='replace').strip()}; pass --configs with a weights path instead")
    blob = r.stdout
    out.write_bytes(blob)
    return str(out)


def load_sets(sets: dict = SETS) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """``(frames, truths)`` of each set of video 11 (``name: (first, last, step)``): the frame
    stack and the label :class:`~benchmarks.realdata.Truth` of every frame."""
    frames, truths = {}, {}
    for name, (lo, hi, step) in sets.items():
        idx_all, stacks = [], []
        for idx, st in rd.iter_frame_batches(rd.VIDEO11, range(lo, hi + 1, step), batch=64):
            idx_all += idx
            stacks.append(st)
        frames[name] = np.concatenate(stacks)
        truths[name] = [rd.Truth.from_labels(rd.read_yolo_labels(rd.label_path(rd.LABELS11, 11, i))) for i in idx_all]
    return frames, truths


def sets_text(sets: dict = SETS) -> str:
    """The frame sets as the results files name them."""
    return "; ".join(f"{k} (one frame in {step})" for k, (_, _, step) in sets.items())


def resampled(frames: np.ndarray, s: float) -> np.ndarray:
    import cv2

    if s == 1.0:
        return frames
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, None, fx=s, fy=s, interpolation=interp) for f in frames])


def parse_config(cfg: str, tmp: Path) -> tuple[str, str | None, float]:
    """``NAME=WEIGHTS@BAND`` -> ``(name, weights, band)``; WEIGHTS ``none``: no classifier (None),
    else as :func:`resolve_weights`."""
    label, spec = cfg.split("=", 1)
    wspec, band = spec.rsplit("@", 1)
    return label, None if wspec == "none" else resolve_weights(wspec, tmp), float(band)


def detect_stack(weights: str | None, band: float, stack: np.ndarray) -> tuple[list[np.ndarray], object, float]:
    """``(class-0 centres per frame, calibration, classifier input scale)`` of a fresh default
    detector (classifier ``weights``, resize band ``band``) run on ``stack`` as a new video."""
    from spermtrack.detect.factory import make_detector

    det = make_detector("blob", polarity="auto", classifier=weights, classifier_scale_band=band)
    preds = []
    for i in range(0, len(stack), 64):
        preds += [rd.det_centres(d) for d in det.detect(stack[i:i + 64])]
    return preds, det.calibration, det.classifier_scale()[0]


def run_config(weights: str | None, band: float, frames: dict[str, np.ndarray], s: float) -> dict:
    out = {}
    for name, stack in frames.items():
        preds, cal, rs = detect_stack(weights, band, resampled(stack, s))
        out[name] = ([p / s for p in preds], cal.head_length_px, rs)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="NAME=WEIGHTS@BAND (see the module doc)")
    ap.add_argument("--scales", default=DEFAULT_SCALES)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.LABELS11):
        return 0
    t0 = time.perf_counter()
    scales = [float(x) for x in a.scales.split(",")]
    frames, truths = load_sets()
    results = {}
    with tempfile.TemporaryDirectory() as td:
        for cfg in a.configs:
            label, weights, band = parse_config(cfg, Path(td))
            for s in scales:
                r = run_config(weights, band, frames, s)
                for name, (preds, head, rs) in r.items():
                    m = rd.score_frames(preds, truths[name])
                    results[(label, name, s)] = (m, head, rs)
                    print(f"{label} | {name} | scale {s}: P {m.precision:.3f} R {m.recall:.3f} F1 {m.f1:.3f} "
                          f"head {head:.2f} px, classifier input x{rs:.3f}", file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - t0) / 60

    labels = [c.split("=", 1)[0] for c in a.configs]
    lines = rd.header("Heads of other sizes: video 11 resampled by known factors", __file__, argv)
    lines += [
        "Detector: `make_detector(\"blob\", polarity=\"auto\", classifier=WEIGHTS, classifier_scale_band=BAND)`, a "
        "fresh instance per configuration, scale and frame set (calibrated on the resampled frames, 64-frame "
        f"batches). Total run time {minutes:.1f} min.",
        "",
        "Data: `" + rd.rel(rd.VIDEO11) + "` resampled by each scale factor (cv2 INTER_AREA below 1, INTER_LINEAR "
        "above): heads `scale` times longer than video 11's. Predictions are divided by the factor and scored against "
        f"video 11's own labels (class 0, centres within {rd.MATCH_PX:g} px, cluster / pinhead objects ignored, as "
        "`real_detection.py`). Sets: " + sets_text()
        + ". The validation frames are where the recipe and the band were chosen; the report half is held out.",
        "",
        "Configurations: " + "; ".join(f"`{c}`" for c in a.configs) + " (`git:REV`: the classifier file of "
        "that commit).",
        "",
    ]
    for name in SETS:
        lines += [f"## {name}: P / R / F1 (class 0) per scale factor", "",
                  "| configuration | " + " | ".join(f"x{s:g}" for s in scales) + " | mean F1 | worst F1 |",
                  "|---|" + "---|" * (len(scales) + 2)]
        for label in labels:
            ms = [results[(label, name, s)][0] for s in scales]
            f1 = [m.f1 for m in ms]
            lines.append(f"| {label} | " + " | ".join(f"{m.precision:.3f} / {m.recall:.3f} / {m.f1:.3f}" for m in ms)
                         + f" | {np.mean(f1):.3f} | {np.min(f1):.3f} |")
        lines += ["", "Calibrated head core (px) and the classifier's input scale per scale factor:", ""]
        for label in labels:
            lines.append(f"- {label}: " + "; ".join(
                f"x{s:g}: {results[(label, name, s)][1]:.2f} px, input x{results[(label, name, s)][2]:.3f}"
                for s in scales))
        lines.append("")
    rd.publish(OUT, lines, write=not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
