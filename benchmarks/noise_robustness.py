"""Other noise, defocus and compression: the default detector on REAL video 11 degraded in known
ways (writes benchmarks/results/noise_robustness.md).

Why: VISEM videos (and the clinic videos our users bring) differ from video 11 in camera noise,
focus and how hard they were compressed. The detector calibrates its threshold on the video, but
its candidate classifier learned crops of a few videos; a detector that is right on video 11 as
it is can lose heads or take debris for heads on a noisier, softer or more compressed one.
Degrading video 11 by known operations keeps its labels exact (nothing moves):

- ``gauss S``: Gaussian read noise, S gray levels (video 11's own background spread is ~2.7);
- ``poisson G``: shot noise, G photons per gray level (SD at mid-gray ~ sqrt(128 / G): 0.5 -> 16,
  0.2 -> 25 gray levels);
- ``blur S``: Gaussian blur of S px (defocus);
- ``h264 Q``: re-encoded with libx264 at CRF Q (PyAV, preset medium, yuv420p) and decoded again
  (VISEM's own files are H.264; 35 and 45 are much harder compression than theirs).

Rows: detector configurations (``--configs``: ``NAME=WEIGHTS@BAND`` as in ``scale_robustness.py``,
WEIGHTS ``none``: no classifier; default: the shipped detector and the same without its classifier)
and the two peer detectors of ``real_detection.py`` on the same frames (``--no-peers``: without).
Frames: video 11's validation frames 601-734 (every 2nd) and the held-out report half 735-1469
(every 5th), scored as ``real_detection.py`` scores them (class 0, centres within 8 px). Each
configuration, degradation and set is a fresh detector calibrated on the degraded frames (a new
video). Noise is drawn from a fixed seed: the run is reproducible.

Run: ``python benchmarks/noise_robustness.py`` (~4 min on 2 cores); ``--no-write`` prints only.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import realdata as rd  # noqa: E402
from benchmarks.real_detection import PEERS  # noqa: E402  (public Python CASA detectors, bright polarity)
from benchmarks.scale_robustness import SETS, detect_stack, load_sets, parse_config, sets_text  # noqa: E402

OUT = rd.RESULTS / "noise_robustness.md"
DEFAULT_CONFIGS = ["default (shipped classifier)=default@1.15", "without the classifier=none@1.15"]
DEFAULT_DEGRADATIONS = "clean,gauss 3,gauss 6,gauss 10,gauss 20,poisson 0.5,poisson 0.2,blur 1,blur 1.5,h264 35,h264 45"
SEED = 11


def h264(frames: np.ndarray, crf: float) -> np.ndarray:
    """The gray frames encoded with libx264 at ``crf`` (yuv420p, preset medium) and decoded back."""
    import av
    import cv2

    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "degraded.mp4")
        with av.open(path, "w") as out:
            st = out.add_stream("libx264", rate=50)
            st.width, st.height = frames.shape[2], frames.shape[1]
            st.pix_fmt = "yuv420p"
            st.options = {"crf": f"{crf:g}", "preset": "medium"}
            for f in frames:
                for pkt in st.encode(av.VideoFrame.from_ndarray(cv2.cvtColor(f, cv2.COLOR_GRAY2RGB), format="rgb24")):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
        with av.open(path) as inp:
            dec = np.stack([fr.to_ndarray(format="gray") for fr in inp.decode(video=0)])
    if dec.shape != frames.shape:
        raise RuntimeError(f"h264 round trip gave {dec.shape}, expected {frames.shape}")
    return dec


def degraded(frames: np.ndarray, spec: str, rng: np.random.Generator) -> np.ndarray:
    """``frames`` degraded by ``spec`` (``clean``, ``gauss S``, ``poisson G``, ``blur S``, ``h264 Q``)."""
    import cv2

    kind, _, val = spec.partition(" ")
    if kind == "clean":
        return frames
    v = float(val)
    f = frames.astype(np.float64)
    if kind == "gauss":
        out = f + rng.normal(0.0, v, f.shape)
    elif kind == "poisson":
        out = rng.poisson(f * v) / v
    elif kind == "blur":
        return np.stack([cv2.GaussianBlur(x, (0, 0), v) for x in frames])
    elif kind == "h264":
        return h264(frames, v)
    else:
        raise SystemExit(f"noise_robustness: unknown degradation {spec!r} (clean, gauss S, poisson G, blur S, h264 Q)")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="NAME=WEIGHTS@BAND (see the module doc)")
    ap.add_argument("--degradations", default=DEFAULT_DEGRADATIONS, help="comma-separated (see the module doc)")
    ap.add_argument("--no-peers", action="store_true", help="skip the peer detectors")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.LABELS11):
        return 0
    t0 = time.perf_counter()
    specs = [s.strip() for s in a.degradations.split(",") if s.strip()]
    frames, truths = load_sets()
    # every configuration sees the very same degraded frames
    rng = np.random.default_rng(SEED)
    inputs = {(spec, name): degraded(st, spec, rng) for spec in specs for name, st in frames.items()}
    labels = [c.split("=", 1)[0] for c in a.configs]
    results = {}
    with tempfile.TemporaryDirectory() as td:
        for cfg in a.configs:
            label, weights, band = parse_config(cfg, Path(td))
            for (spec, name), st in inputs.items():
                preds, cal, _ = detect_stack(weights, band, st)
                m = rd.score_frames(preds, truths[name])
                results[(label, spec, name)] = (m, cal.threshold_z, cal.spread_gray)
                print(f"{label} | {name} | {spec}: P {m.precision:.3f} R {m.recall:.3f} F1 {m.f1:.3f} "
                      f"threshold {cal.threshold_z:.1f} z, spread {cal.spread_gray:.2f}", file=sys.stderr, flush=True)
    if not a.no_peers:
        for label, fn in PEERS.items():
            labels.append(label)
            for (spec, name), st in inputs.items():
                m = rd.score_frames([fn(f) for f in st], truths[name])
                results[(label, spec, name)] = (m, float("nan"), float("nan"))
                print(f"{label} | {name} | {spec}: P {m.precision:.3f} R {m.recall:.3f} F1 {m.f1:.3f}",
                      file=sys.stderr, flush=True)
    minutes = (time.perf_counter() - t0) / 60

    lines = rd.header("Other noise, defocus and compression: video 11 degraded in known ways", __file__, argv)
    lines += [
        "Detector: `make_detector(\"blob\", polarity=\"auto\", classifier=WEIGHTS, classifier_scale_band=BAND)`, a "
        "fresh instance per configuration, degradation and frame set (calibrated on the degraded frames, 64-frame "
        f"batches). Total run time {minutes:.1f} min.",
        "",
        "Data: `" + rd.rel(rd.VIDEO11) + "` degraded as named in the columns (`gauss S`: Gaussian noise of S gray "
        "levels; `poisson G`: shot noise at G photons per gray level; `blur S`: Gaussian blur of S px; `h264 Q`: "
        f"re-encoded with libx264 at CRF Q and decoded; noise seed {SEED}, the same frames for every configuration), "
        f"scored against video 11's own labels (class 0, centres within {rd.MATCH_PX:g} px, cluster / pinhead "
        "objects ignored, as `real_detection.py`). Sets: "
        + sets_text()
        + ". The validation frames are where classifier recipes are chosen; the report half is held out.",
        "",
        "Configurations: " + "; ".join(f"`{c}`" for c in a.configs) + " (`git:REV`: the classifier file of "
        "that commit; `none`: no classifier). Peers: " + ", ".join(PEERS) + " (bright polarity, as in `real_detection.py`).",
        "",
    ]
    for name in SETS:
        lines += [f"## {name}: F1 (class 0) per degradation", "",
                  "| configuration | " + " | ".join(specs) + " | mean F1 | worst F1 |",
                  "|---|" + "---|" * (len(specs) + 2)]
        for label in labels:
            f1 = [results[(label, s, name)][0].f1 for s in specs]
            lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in f1) + f" | {np.mean(f1):.3f} | {np.min(f1):.3f} |")
        lines += ["", "P / R per degradation:", "",
                  "| configuration | " + " | ".join(specs) + " |", "|---|" + "---|" * len(specs)]
        for label in labels:
            lines.append(f"| {label} | " + " | ".join(
                f"{results[(label, s, name)][0].precision:.3f} / {results[(label, s, name)][0].recall:.3f}"
                for s in specs) + " |")
        lines += ["", "The detector's calibration per degradation (first configuration; threshold in z units / "
                  "background spread in gray levels):", "",
                  "- " + "; ".join(f"{s}: {results[(labels[0], s, name)][1]:.1f} z / {results[(labels[0], s, name)][2]:.2f}"
                                   for s in specs), ""]
    rd.publish(OUT, lines, write=not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
