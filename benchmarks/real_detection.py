"""Head detection on REAL VISEM-Tracking pixels: the default detector vs the labels (writes
benchmarks/results/real_detection.md).

Data (read from ``../shared/data``, skipped cleanly when absent):

- video 11 (``visem/Train/11/11.mp4``, 1470 frames, 640x480, 50 fps; labels
  ``labels/11_frame_N.txt``, N 0-based): frames 0-734 are the TUNING set (look at them as much as
  you like), frames 735-1469 the REPORT set (the targets are judged there only);
- frames12 (``visem/frames12/*.jpg``, 3 real JPEG frames of video 12): NOT held out. The
  shipped candidate classifier (part of the default detector) was trained on them
  (``spermtrack train classifier ... --extra-frames visem/frames12``, docs/CLASSIFIER.md), so
  its rows are in-sample. ``12_frame_0.jpg`` is frame 0; each ``_approx`` image is scored against the label set
  ``12_frame_{0..5}.txt`` that fits it best, chosen WITHOUT our detector (the label set whose
  sperm centres the OpenCV SimpleBlobDetector peer hits most often within 3 px).

Scoring (:mod:`benchmarks.realdata`): predicted centres matched one to one (Hungarian) to the
centres of class-0 (sperm) labels within 8 px; an unmatched prediction inside a cluster (class 1)
or pinhead (class 2) box, or within 8 px of its centre, is neither TP nor FP; those objects do not
count for recall. The main row scores predictions of class 0 (the product grades only tracks of
majority class 0); the "any class" row scores every prediction.

Detector: ``spermtrack.detect.factory.make_detector("blob", polarity="auto")`` when the signature
accepts ``polarity``, else ``make_detector("blob")``; one instance per source, fed 64-frame
batches in frame order as the streaming pipeline does. Its ``calibration`` attribute is recorded
when it has one. Baselines (peers of public Python CASA code, bright polarity as VISEM heads are
bright): a global Otsu threshold + 8-connected components (area 8-400 px) and OpenCV's
SimpleBlobDetector (bright blobs, area 10-400 px), on the same frames.

Run: ``python benchmarks/real_detection.py`` (~1-2 min on 2 cores); ``--step 2`` scores every 2nd
frame; ``--no-write`` prints only.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import realdata as rd  # noqa: E402

OUT = rd.RESULTS / "real_detection.md"
TUNE = (0, 734)
REPORT = (735, 1469)
TARGET_P, TARGET_R = 0.90, 0.95
PEERS = {
    "peer: Otsu + connected components": lambda f: rd.otsu_cc_centres(f, "bright"),
    "peer: OpenCV SimpleBlobDetector": lambda f: rd.simple_blob_centres(f, "bright"),
}


def run_video11(step: int) -> dict:
    """Per-frame centre lists of every detector on video 11, labels, timings and calibration."""
    det, how = rd.make_default_detector("auto")
    frames = list(range(0, REPORT[1] + 1, step))
    out = {"how": how, "frames": [], "truth": [], "ours0": [], "ours_any": [], "t_ours": 0.0,
           **{k: [] for k in PEERS}, **{f"t_{k}": 0.0 for k in PEERS}}
    for idx, stack in rd.iter_frame_batches(rd.VIDEO11, frames, batch=64):
        t0 = time.perf_counter()
        dets = det.detect(stack)
        out["t_ours"] += time.perf_counter() - t0
        out["frames"] += idx
        out["ours0"] += [rd.det_centres(d) for d in dets]
        out["ours_any"] += [rd.det_centres(d, None) for d in dets]
        for k, fn in PEERS.items():
            t0 = time.perf_counter()
            out[k] += [fn(f) for f in stack]
            out[f"t_{k}"] += time.perf_counter() - t0
        out["truth"] += [rd.Truth.from_labels(rd.read_yolo_labels(rd.label_path(rd.LABELS11, 11, i))) for i in idx]
    out["calibration"] = rd.format_calibration(rd.calibration_of(det))
    return out


def subset(v: dict, key: str, lo: int, hi: int) -> tuple[list, list]:
    sel = [i for i, f in enumerate(v["frames"]) if lo <= f <= hi]
    return [v[key][i] for i in sel], [v["truth"][i] for i in sel]


def pick_label_set(img: np.ndarray, candidates: list[int]) -> tuple[int, str]:
    """The frames12 label set that fits an image best, judged by the SimpleBlob peer (not ours)."""
    peer = rd.simple_blob_centres(img, "bright")
    scores = []
    for n in candidates:
        t = rd.Truth.from_labels(rd.read_yolo_labels(rd.FRAMES12 / "labels" / f"12_frame_{n}.txt"))
        m = rd.match_frame(peer, t, 3.0)
        scores.append((m.tp / max(t.n_sperm, 1), -np.mean(m.errors_px) if m.errors_px else -99, n))
    best = max(scores)
    return best[2], ", ".join(f"{n}: {s:.2f}" for s, _, n in scores)


def run_frames12() -> tuple[list[dict], str, str]:
    import cv2

    images = sorted(rd.FRAMES12.glob("12_frame_*.jpg"))
    label_sets = sorted(int(p.stem.split("_")[-1]) for p in (rd.FRAMES12 / "labels").glob("12_frame_*.txt"))
    stack, truths, notes = [], [], []
    for p in images:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        stack.append(img)
        if "_approx" in p.stem:
            n, detail = pick_label_set(img, label_sets)
            notes.append(f"`{p.name}` -> labels `12_frame_{n}.txt` (peer hit rate per label set: {detail})")
        else:
            n = int(p.stem.split("_")[-1])
            notes.append(f"`{p.name}` -> labels `12_frame_{n}.txt` (exact)")
        truths.append(rd.Truth.from_labels(rd.read_yolo_labels(rd.FRAMES12 / "labels" / f"12_frame_{n}.txt")))
    det, _ = rd.make_default_detector("auto")
    dets = det.detect(np.stack(stack))
    rows = [row("ours (class 0)", rd.score_frames([rd.det_centres(d) for d in dets], truths)),
            row("ours (any class)", rd.score_frames([rd.det_centres(d, None) for d in dets], truths))]
    for k, fn in PEERS.items():
        rows.append(row(k, rd.score_frames([fn(f) for f in stack], truths)))
    return rows, "; ".join(notes), rd.format_calibration(rd.calibration_of(det))


def row(name: str, m: rd.MatchCounts, seconds: float | None = None) -> dict:
    return {"detector": name, "P": m.precision, "R": m.recall, "F1": m.f1, "TP": m.tp, "FP": m.fp, "FN": m.fn,
            "ignored": m.ignored, "frames": m.n_frames, "dets/frame": float(np.mean(m.n_pred)) if m.n_pred else 0.0,
            "labels/frame": float(np.mean(m.n_true)) if m.n_true else 0.0,
            "err px": float(np.mean(m.errors_px)) if m.errors_px else float("nan"),
            "frames/s": (m.n_frames / seconds) if seconds else float("nan"), "_m": m}


COLS = ["detector", "P", "R", "F1", "TP", "FP", "FN", "ignored", "dets/frame", "labels/frame", "err px", "frames/s"]


def table(rows: list[dict]) -> list[str]:
    def f(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
        return str(v)
    out = ["| " + " | ".join(COLS) + " |", "|" + "---|" * len(COLS)]
    return out + ["| " + " | ".join(f(r[c]) for c in COLS) + " |" for r in rows]


def count_lines(v: dict, lo: int, hi: int) -> list[str]:
    """Per-frame detection count vs label count on one frame range."""
    ours, truth = subset(v, "ours0", lo, hi)
    anyc, _ = subset(v, "ours_any", lo, hi)
    n_lab = np.array([t.n_sperm for t in truth], float)
    n0 = np.array([len(p) for p in ours], float)
    na = np.array([len(p) for p in anyc], float)
    ratio = n0 / np.maximum(n_lab, 1)
    r = np.corrcoef(n0, n_lab)[0, 1] if n0.std() > 0 and n_lab.std() > 0 else float("nan")
    return [f"- frames {lo}-{hi} ({len(truth)} scored): labelled sperm heads per frame mean {n_lab.mean():.1f} "
            f"(min {n_lab.min():.0f}, max {n_lab.max():.0f}); our class-0 detections per frame mean {n0.mean():.1f} "
            f"(SD {n0.std():.1f}, min {n0.min():.0f}, max {n0.max():.0f}), all classes {na.mean():.1f}; "
            f"ratio detections / labels per frame median {np.median(ratio):.2f} (p10 {np.percentile(ratio, 10):.2f}, "
            f"p90 {np.percentile(ratio, 90):.2f}); Pearson r of the two counts over frames {r:.2f}; frames whose "
            f"class-0 count is within +-10 % of the label count: {np.mean(np.abs(n0 - n_lab) <= 0.1 * n_lab):.0%}."]


#: a false-positive site: unmatched class-0 detections within this many px of each other (any frame)
SITE_PX = 4.0
#: a site holding at least this many false-positive frames (1 s at 50 fps) is *persistent*
SITE_MIN_FRAMES = 50
#: a labelled track is *at the edge* when its mean centre is closer than this to the frame border (px)
EDGE_NEAR_PX = 12.0


def error_anatomy(v: dict, lo: int, hi: int, top: int = 8) -> list[str]:
    """Where the misses and false positives of ``ours (class 0)`` on frames ``lo..hi`` come from:
    misses per labelled track (official track ids of ``gt/``), false positives per place.

    A miss is mapped to the gt track whose centre in that frame is nearest (<= 1.5 px; the gt
    tracks and the labels are the same boxes). False positives are grouped into *sites*: single-
    linkage clusters of their centres within ``SITE_PX`` px over all frames of the range; a site is
    persistent when it holds >= ``SITE_MIN_FRAMES`` false-positive frames. A site is *labelled
    elsewhere* when a gt track's centre comes within 12 px of it on some frame of the whole video
    while the site has no false positive (a labelled object that the labels leave on other frames).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    gt_path = rd.GT_DIR / "video11_gt_mot.txt.gz"
    if not gt_path.is_file():
        return [f"(skipped: {rd.rel(gt_path)} absent)"]
    gt = rd.read_gt_tracks(11)
    by_frame = {f: g for f, g in gt.groupby("frame")}
    miss_ids, fps = [], []
    for f, pred, truth in zip(v["frames"], v["ours0"], v["truth"]):
        if not lo <= f <= hi:
            continue
        pi, ti, fp, _ = rd.match_frame_detail(pred, truth)
        sperm_xy = truth.xy[truth.cls == rd.SPERM]
        missed = np.setdiff1d(np.arange(len(sperm_xy)), ti)
        g = by_frame.get(f)
        for i in missed:
            tid = -1
            if g is not None and len(g):
                d = np.hypot(g["x"].to_numpy() - sperm_xy[i, 0], g["y"].to_numpy() - sperm_xy[i, 1])
                j = int(np.argmin(d))
                tid = int(g["track_id"].iat[j]) if d[j] <= 1.5 else -1
            miss_ids.append(tid)
        fps += [(f, *pred[k]) for k in fp]
    n_miss, n_fp = len(miss_ids), len(fps)
    out = [f"Frames {lo}-{hi}: {n_miss} misses, {n_fp} false positives (ours, class 0).", ""]
    if n_miss:
        ids, counts = np.unique(miss_ids, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:top]
        rng = gt[(gt["frame"] >= lo) & (gt["frame"] <= hi)]
        out += [f"Misses by labelled track (the {len(order)} with most; label moves: the largest distance of its "
                f"centre from its first position in these frames; edge: mean centre < {EDGE_NEAR_PX:g} px from the "
                "border):", "",
                "| gt track | labelled frames here | missed | share of all misses | mean centre (x, y) px | label moves (px) | at the edge |",
                "|---|---|---|---|---|---|---|"]
        for k in order:
            tid, c = int(ids[k]), int(counts[k])
            t = rng[rng["track_id"] == tid]
            if tid < 0 or t.empty:
                out.append(f"| (not mapped) | | {c} | {c / n_miss:.1%} | | | |")
                continue
            x, y = t["x"].to_numpy(), t["y"].to_numpy()
            moved = float(np.hypot(x - x[0], y - y[0]).max())
            edge = min(x.mean(), y.mean(), 640 - x.mean(), 480 - y.mean()) < EDGE_NEAR_PX
            out.append(f"| {tid} | {len(t)} | {c} | {c / n_miss:.1%} | ({x.mean():.0f}, {y.mean():.0f}) | "
                       f"{moved:.1f} | {'yes' if edge else 'no'} |")
        share = counts[order].sum() / n_miss
        out += ["", f"The {len(order)} tracks above hold {share:.0%} of the misses of these frames.", ""]
    if n_fp:
        a = np.asarray(fps, np.float64)
        pairs = cKDTree(a[:, 1:]).query_pairs(SITE_PX, output_type="ndarray")
        m = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(a), len(a))) if len(pairs) else \
            coo_matrix((len(a), len(a)))
        _, lab = connected_components(m, directed=False)
        sizes = np.bincount(lab)
        persistent = np.flatnonzero(sizes >= SITE_MIN_FRAMES)
        in_persistent = int(sizes[persistent].sum())
        gxy = gt[["x", "y"]].to_numpy()
        gtree = cKDTree(gxy)
        out += [f"False positives by site: {len(persistent)} persistent sites (>= {SITE_MIN_FRAMES} false-positive "
                f"frames within {SITE_PX:g} px linkage) hold {in_persistent} of the {n_fp} ({in_persistent / n_fp:.0%}); "
                f"the {min(top, len(persistent))} largest:", "",
                "| site centre (x, y) px | false-positive frames | first-last frame | a gt track within 12 px on other frames |",
                "|---|---|---|---|"]
        for s_ in persistent[np.argsort(-sizes[persistent], kind="stable")][:top]:
            q = a[lab == s_]
            cx, cy = q[:, 1].mean(), q[:, 2].mean()
            near = gtree.query_ball_point([cx, cy], 12.0)
            fp_frames = set(q[:, 0].astype(int))
            other = sorted({int(gt["track_id"].iat[i]) for i in near if int(gt["frame"].iat[i]) not in fp_frames})
            out.append(f"| ({cx:.0f}, {cy:.0f}) | {len(q)} | {int(q[:, 0].min())}-{int(q[:, 0].max())} | "
                       f"{', '.join(map(str, other[:6])) + (' ...' if len(other) > 6 else '') if other else 'none'} |")
        out.append("")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=1, help="score every n-th frame of video 11 (default every frame)")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    if not rd.require(rd.VIDEO11, rd.LABELS11):
        return 0
    t_start = time.perf_counter()
    v = run_video11(a.step)
    n_all = len(v["frames"])
    sets = {}
    for label, (lo, hi) in (("tuning", TUNE), ("report", REPORT)):
        rows = []
        frac = sum(lo <= f <= hi for f in v["frames"]) / n_all
        for key, name, t in (("ours0", "ours (class 0)", v["t_ours"]), ("ours_any", "ours (any class)", v["t_ours"])):
            p, tr = subset(v, key, lo, hi)
            rows.append(row(name, rd.score_frames(p, tr), t * frac))
        for k in PEERS:
            p, tr = subset(v, k, lo, hi)
            rows.append(row(k, rd.score_frames(p, tr), v[f"t_{k}"] * frac))
        sets[label] = rows
    f12 = run_frames12() if rd.require(rd.FRAMES12) else None
    minutes = (time.perf_counter() - t_start) / 60

    rep = sets["report"][0]
    ok = rep["P"] >= TARGET_P and rep["R"] >= TARGET_R
    lines = rd.header("Detection on real VISEM-Tracking frames (default detector vs labels)", __file__, argv)
    lines += [
        f"Detector: `{v['how']}` (`spermtrack.detect.factory`), one instance per source, 64-frame batches in "
        f"frame order. Total run time {minutes:.1f} min.",
        "",
        "Data: video 11 (`" + rd.rel(rd.VIDEO11) + f"`, labels `{rd.rel(rd.LABELS11)}`), "
        f"{'every frame' if a.step == 1 else f'every {a.step}-th frame'}; **tuning set: frames "
        f"{TUNE[0]}-{TUNE[1]}** (may be looked at while developing), **report set: frames {REPORT[0]}-{REPORT[1]}** "
        "(targets judged here only); frames12 (3 real JPEG frames of video 12): NOT held out, the shipped "
        "classifier was trained on them (in-sample; docs/CLASSIFIER.md).",
        "",
        "Scoring: predicted centres matched one to one (Hungarian) to class-0 (sperm) label centres within "
        f"{rd.MATCH_PX:g} px. A prediction left unmatched that lies inside a cluster (1) or pinhead (2) label box or "
        f"within {rd.MATCH_PX:g} px of its centre is *ignored* (neither TP nor FP); those labels do not count for "
        "recall. `ours (class 0)` scores only detections of predicted class 0 (the product grades tracks of majority "
        "class 0); `ours (any class)` scores all. `err px`: mean centre error of the TPs. frames/s: detection only "
        "(decoding excluded), 2 shared cores. Peers run with bright polarity (VISEM heads are bright).",
        "",
        "## Target (report set, frames 735-1469, ours class 0)",
        "",
        f"- P >= {TARGET_P} and R >= {TARGET_R}: P {rep['P']:.3f}, R {rep['R']:.3f} (F1 {rep['F1']:.3f}) -> "
        f"{rd.verdict(ok)}",
        "",
        f"## Video 11, report set (frames {REPORT[0]}-{REPORT[1]})", "", *table(sets["report"]), "",
        f"## Video 11, tuning set (frames {TUNE[0]}-{TUNE[1]})", "", *table(sets["tuning"]), "",
        "## Detections per frame vs labels per frame (video 11)", "",
        *count_lines(v, *TUNE), *count_lines(v, *REPORT), "",
        "## Where the errors are (video 11, ours class 0)", "",
        "Per labelled track and per place: a few objects hold most of the errors, so the per-frame P / R of a "
        "half is decided by how long each of them stays in view and how its label was drawn (see docs/DETECTOR.md).",
        "", "### Report set", "", *error_anatomy(v, *REPORT), "### Tuning set", "", *error_anatomy(v, *TUNE),
        "## Detector calibration (after video 11)", "", v["calibration"], "",
    ]
    if f12 is not None:
        rows, notes, cal = f12
        lines += ["## frames12 (3 real JPEG frames of video 12; in-sample: the shipped classifier was trained on them)", "", notes + ".", "", *table(rows), "",
                  f"Calibration after frames12: {cal}", ""]
    rd.publish(OUT, lines, write=not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
