"""Per-frame head count on a real BRIGHT-FIELD clip with DARK heads, against a count by eye
(writes benchmarks/results/real_count_s0001.md).

Clip: ``../shared/data/real_other/S_0001.mp4`` (45 frames, 698x528, 30 fps, dark heads on a light
background, no labels; never used for tuning). The default detector
(``make_detector("blob", polarity="auto")`` when accepted, else ``make_detector("blob")``) runs on
all 45 frames in one batch; we report the per-frame count (mean / SD / min / max) of class-0
detections (and of all classes), and compare frames 0 and 30 with the heads counted by eye on
those frames (``docs/S0001_COUNT.md``: procedure, coordinates and marked images). Besides the
counts, the class-0 detections of frames 0 and 30 are matched (<= 8 px) to the eye marks: clear
heads must be found, ambiguous objects are ignored.

Baselines (dark polarity): global Otsu + connected components and OpenCV SimpleBlobDetector.

Target: the per-frame count within +-20 % of the eye count (clear heads) on frames 0 and 30.

Run: ``python benchmarks/real_count_s0001.py`` (seconds); ``--draw-marks`` also (re)writes
``docs/s0001_frame{0,30}_marked.png`` from the eye marks below.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import realdata as rd  # noqa: E402

OUT = rd.RESULTS / "real_count_s0001.md"
TOLERANCE = 0.20

# Eye marks (full-frame pixel x, y), made by looking at 2.5x upscaled quadrants with a 50-px grid
# (docs/S0001_COUNT.md). CLEAR: an in-focus dark head (elongated, ~8-14 px, often with a visible
# tail). AMBIGUOUS: head-sized dark or grey blobs without a visible tail or elongation, heads cut
# by the frame edge, pairs of small dark dots, out-of-focus grey heads.
EYE = {
    0: {
        "clear": [(22, 170), (208, 225), (140, 254), (374, 29), (600, 42), (373, 119), (427, 130), (455, 142),
                  (647, 119), (593, 194), (37, 291), (240, 272), (166, 302), (130, 330), (18, 369), (41, 378),
                  (124, 372), (136, 420), (28, 492), (156, 492), (138, 520), (557, 320), (567, 312), (473, 456),
                  (595, 444), (563, 480), (683, 518)],
        "ambiguous": [(12, 52), (115, 153), (200, 150), (243, 240), (253, 243), (1, 237), (165, 2), (317, 4),
                      (427, 2), (379, 194), (681, 258), (2, 282), (182, 426), (316, 426), (237, 464), (248, 464),
                      (338, 318), (338, 370), (553, 311), (585, 308), (519, 370), (580, 389), (655, 468)],
    },
    30: {
        "clear": [(293, 13), (26, 88), (409, 58), (509, 55), (669, 56), (367, 116), (445, 136), (637, 114),
                  (187, 220), (174, 247), (656, 200), (234, 270), (28, 283), (66, 314), (24, 331), (41, 332),
                  (25, 370), (119, 375), (75, 437), (112, 486), (112, 507), (397, 348), (359, 514), (557, 314),
                  (567, 308), (616, 398), (632, 448), (628, 467), (575, 494)],
        "ambiguous": [(5, 49), (370, 189), (107, 151), (188, 144), (238, 241), (244, 244), (8, 0), (432, 0),
                      (3, 367), (183, 355), (5, 433), (233, 458), (243, 460), (311, 421), (333, 368), (331, 318),
                      (553, 305), (580, 384), (505, 482)],
    },
}
PEERS = {
    "peer: Otsu + connected components (dark)": lambda f: rd.otsu_cc_centres(f, "dark"),
    "peer: OpenCV SimpleBlobDetector (dark)": lambda f: rd.simple_blob_centres(f, "dark"),
}


def eye_truth(frame: int) -> rd.Truth:
    """Clear heads as class 0, ambiguous objects as ignored (class 2) with 16-px boxes."""
    e = EYE[frame]
    rows = [(0, x, y, 16, 16) for x, y in e["clear"]] + [(2, x, y, 16, 16) for x, y in e["ambiguous"]]
    return rd.Truth.from_labels(np.array(rows, np.float64))


def draw_marks(frames: dict[int, np.ndarray], out_dir: Path) -> list[Path]:
    import cv2

    paths = []
    for f, img in frames.items():
        im = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        for x, y in EYE[f]["clear"]:
            cv2.circle(im, (x, y), 9, (0, 170, 0), 2)
        for x, y in EYE[f]["ambiguous"]:
            cv2.circle(im, (x, y), 9, (0, 190, 255), 1)
        im = cv2.copyMakeBorder(im, 0, 20, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(im, f"S_0001 frame {f}: {len(EYE[f]['clear'])} clear heads (green), "
                        f"{len(EYE[f]['ambiguous'])} ambiguous (orange)", (6, im.shape[0] - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 160), 1, cv2.LINE_AA)
        p = out_dir / f"s0001_frame{f}_marked.png"
        try:  # a 64-colour palette keeps the PNG small
            from PIL import Image

            Image.fromarray(im[:, :, ::-1]).quantize(colors=64).save(p, optimize=True)
        except ImportError:
            cv2.imwrite(str(p), im, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        paths.append(p)
    return paths


def stats(counts: np.ndarray) -> str:
    return f"{counts.mean():.1f} | {counts.std():.1f} | {counts.min():.0f} | {counts.max():.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draw-marks", action="store_true", help="write docs/s0001_frame{0,30}_marked.png")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if not rd.require(rd.S0001):
        return 0
    frames = np.concatenate([s for _, s in rd.iter_frame_batches(rd.S0001, None, batch=64)])
    if a.draw_marks:
        for p in draw_marks({f: frames[f] for f in EYE}, ROOT / "docs"):
            print(f"wrote {p}", file=sys.stderr)
    det, how = rd.make_default_detector("auto")
    t0 = time.perf_counter()
    dets = det.detect(frames)
    dt = time.perf_counter() - t0
    cal = rd.format_calibration(rd.calibration_of(det))
    series = {"ours (class 0)": [rd.det_centres(d) for d in dets],
              "ours (any class)": [rd.det_centres(d, None) for d in dets]}
    for k, fn in PEERS.items():
        series[k] = [fn(f) for f in frames]
    counts = {k: np.array([len(p) for p in v], float) for k, v in series.items()}
    eye = {f: len(EYE[f]["clear"]) for f in EYE}
    eye_all = {f: len(EYE[f]["clear"]) + len(EYE[f]["ambiguous"]) for f in EYE}
    ours = counts["ours (class 0)"]
    ok_frames = {f: abs(ours[f] - eye[f]) <= TOLERANCE * eye[f] for f in EYE}
    eye_mean = float(np.mean(list(eye.values())))
    frac_within = float(np.mean(np.abs(ours - eye_mean) <= TOLERANCE * eye_mean))

    lines = rd.header("Per-frame head count on real bright-field clip S_0001 (dark heads) vs a count by eye",
                      __file__, argv)
    lines += [
        f"Clip: `{rd.rel(rd.S0001)}` ({len(frames)} frames, {frames.shape[2]}x{frames.shape[1]}, 30 fps, dark heads on a "
        "light background, no labels; report only, never used for tuning). Detector: "
        f"`{how}`, all frames in one batch ({len(frames) / dt:.0f} frames/s). Eye count: "
        "[docs/S0001_COUNT.md](../../docs/S0001_COUNT.md) (frames 0 and 30, marked images beside it).",
        "",
        "## Target",
        "",
    ]
    for f in EYE:
        lines.append(f"- frame {f}: {ours[f]:.0f} class-0 detections vs {eye[f]} clear heads by eye "
                     f"(+-{TOLERANCE:.0%}: {eye[f] * (1 - TOLERANCE):.1f}-{eye[f] * (1 + TOLERANCE):.1f}; "
                     f"{(ours[f] / eye[f] - 1):+.0%}) -> {rd.verdict(ok_frames[f])}")
    lines += [
        f"- all {len(frames)} frames: {frac_within:.0%} of frames within +-{TOLERANCE:.0%} of the mean eye count "
        f"{eye_mean:.1f} (for information)",
        "",
        "## Per-frame counts (all 45 frames)",
        "",
        "| detector | mean | SD | min | max | frame 0 | frame 30 |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, c in counts.items():
        lines.append(f"| {k} | {stats(c)} | {c[0]:.0f} | {c[30]:.0f} |")
    lines += [f"| eye: clear heads | | | | | {eye[0]} | {eye[30]} |",
              f"| eye: clear + ambiguous | | | | | {eye_all[0]} | {eye_all[30]} |", "",
              "## Detections vs the eye marks (frames 0 and 30, centres <= 8 px; ambiguous objects ignored)", "",
              "| detector | P | R | TP | FP | FN | ignored (on ambiguous objects) |", "|---|---|---|---|---|---|---|"]
    for k, v in series.items():
        m = rd.score_frames([v[f] for f in EYE], [eye_truth(f) for f in EYE])
        lines.append(f"| {k} | {m.precision:.3f} | {m.recall:.3f} | {m.tp} | {m.fp} | {m.fn} | {m.ignored} |")
    lines += ["", "Per-frame class-0 counts of ours, frames 0-44: " + ", ".join(f"{c:.0f}" for c in ours) + ".", "",
              f"Detector calibration after the clip: {cal}", ""]
    if hasattr(det, "classifier_scale"):
        lines += [f"Classifier input: {det.classifier_scale()[1]}.", ""]
    rd.publish(OUT, lines, write=not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
