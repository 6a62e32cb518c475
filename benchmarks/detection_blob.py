"""BlobDetector + HLDNBM precision / recall per seed (quick: no YOLO), issue 4 targets.

Clips: ``simulate_cells(seconds=2, fps=50, cells=50, seed, difficulty)`` at 640x480, every 5th
frame, for easy (9001, 9002), medium (9001, 9002, 3, 11) and hard (9001, 9002, 8, 12); centres
matched within 5 px (:func:`~spermtrack.tracker.detmetrics.detection_scores`), clusters and
pinheads ignored. Rows: the default detector, and the same detector with the edge rule and the
sperm cues switched off (``edge_px=0, verify_low=1, oriented_gain=0, halo_gain=0``: the blob score
alone), timed on the same frames (HLDNBM included, median of 3 runs).

Run: ``python benchmarks/detection_blob.py`` (about 1 minute); writes
``benchmarks/results/detection_blob.md``.
"""

from __future__ import annotations

import datetime as _dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spermtrack.io.atomic import write_text_atomic  # noqa: E402
from spermtrack.synth import render_frame, simulate_cells  # noqa: E402
from spermtrack.detect.blob import BlobDetector  # noqa: E402
from spermtrack.tracker.detmetrics import detection_scores, truth_frames  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "detection_blob.md"
CLIPS = [("easy", 9001), ("easy", 9002), ("medium", 9001), ("medium", 9002), ("medium", 3), ("medium", 11),
         ("hard", 9001), ("hard", 9002), ("hard", 8), ("hard", 12)]
POPS = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile"]
VARIANTS = {"default": {}, "blob score only": dict(edge_px=0.0, verify_low=1.0, oriented_gain=0.0, halo_gain=0.0)}


def main() -> int:
    rows = []
    for diff, seed in CLIPS:
        scene = simulate_cells(seconds=2, fps=50, cells=50, seed=seed, difficulty=diff, width=640, height=480)
        idx = list(range(0, scene.n_frames, 5))
        frames = np.stack([render_frame(scene, i) for i in idx])
        truth = truth_frames(scene.boxes, idx)
        pop = scene.truth.set_index("track_id")["population"]
        for name, kw in VARIANTS.items():
            det = BlobDetector(**kw)
            det.detect(frames[:1])  # numba compile / cache load outside the timing
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                preds = det.detect(frames)
                times.append(time.perf_counter() - t0)
            s = detection_scores(preds, truth)
            tids = np.concatenate([t["track_id"][~t["ignore"]] for t in truth])
            hit = np.concatenate([m[~t["ignore"]] for m, t in zip(s.matched, truth)])
            per = pd.Series(hit).groupby(pop.reindex(tids).to_numpy()).mean()
            row = {"detector": name, "clip": f"{diff} {seed}", "P": s.precision, "R": s.recall, "F1": s.f1,
                   "FP": s.fp, "FN": s.fn, "frames/s": len(frames) / float(np.median(times))}
            row.update({f"R {p}": per.get(p, float("nan")) for p in POPS})
            rows.append(row)
            print(row, flush=True)
    df = pd.DataFrame(rows)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))  # noqa: E731
    cols = list(df.columns)
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in df[cols].itertuples(index=False)]
    d = df[df["detector"] == "default"]
    checks = []
    for diff, need in (("medium", 0.95), ("hard", 0.90)):
        g = d[d["clip"].str.startswith(diff)]
        ok = (g.P >= need).all() and (g.R >= need).all()
        checks.append(f"- P, R >= {need} on every {diff} clip: P {g.P.min():.3f}-{g.P.max():.3f}, "
                      f"R {g.R.min():.3f}-{g.R.max():.3f} -> **{'met' if ok else 'NOT met'}**")
    text = "\n".join([
        "# BlobDetector + HLDNBM per seed (synthetic truth)", "",
        "Command: `python benchmarks/detection_blob.py`",
        f"Date: {_dt.datetime.now().isoformat(timespec='minutes')}; machine: {platform.machine()}, "
        "2 shared CPU cores (OpenCV default threads)", "",
        __doc__.split("\n\n")[1].replace("\n", " "), "",
        *table, "", "## Targets (issue 4)", "", *checks, "",
    ])
    write_text_atomic(RESULTS, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
