"""ID switches and tracking quality of spermtrack's tracker vs peers, on identical detections.

Detection sets (fixed seeds), from the real ground-truth tracks of VISEM-Tracking video 24
(``shared/data/visem/video24_gt_mot.txt``: 1470 frames at 50 fps, 111 ids, ~66 objects a frame):

- ``clean``: the ground-truth boxes as they are.
- ``noisy``: box centres jittered by N(0, 1 px) per axis, 5 % of boxes dropped at random,
  false positives = 2 % of the boxes (uniform over the 640x480 frame, sizes drawn from the
  ground truth).
- ``hard``: jitter N(0, 2 px), dropouts in runs of 1-5 frames (about 8 % of boxes), 5 % false
  positives.

All detections have ``conf = 1``. Trackers: ours online (motion only), ours + offline
refinement (stitching, gap filling, RTS smoothing), ours + an *oracle* appearance cue (a one-hot
of the true identity, computed on demand vs for every detection: shows the savings and the
cost of on-demand embedding, not the quality of a trained ReID), deep-sort-realtime as shipped
(motion only), ultralytics ByteTrack and BoT-SORT, trackpy ``link``, SORT. Peer configs:
``benchmarks/configs/*.yaml``. Every tracker, ours and the peers, is a
:class:`spermtrack.tracker.base.Tracker` driven by the same loop (:func:`drive`). Metrics: :func:`spermtrack.evaluate.metrics.evaluate_tracks`
(TrackEval; CLEAR/Identity at IoU 0.5). frames/s is tracking only (no evaluation), one thread.

Synthetic sets, through the real detector (HLDNBM + BlobDetector) with a ResNet50 ReID trained
on two other clips (seed 12): ``synth-medium`` (seed 11), the clip the appearance gate and the
ReID's training length were tuned on, and ``synth-heldout`` (seed 13), on which nothing was
tuned: quote the held-out one.

A detection-set source is a function returning :class:`DetectionSet` objects; add one to
``SOURCES``.

Run: ``python benchmarks/id_switches.py`` (writes ``benchmarks/results/id_switches.md``; about
15-20 min on 2 shared CPU cores, ReID training included; the ReID weights and clips are cached
in ``benchmarks/_work/id_switches``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peers import adapters  # noqa: E402
from spermtrack.io.atomic import write_text_atomic  # noqa: E402
from spermtrack.io.mot import read_mot  # noqa: E402
from spermtrack.tracker.associate import SpermTracker, TrackerParams  # noqa: E402
from spermtrack.tracker.base import Tracker  # noqa: E402
from spermtrack.evaluate.metrics import evaluate_tracks  # noqa: E402
from spermtrack.tracker.refine import refine_tracks, smoothed_boxes  # noqa: E402
from spermtrack.types import Detections  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "id_switches.md"
CONFIGS = ROOT / "benchmarks" / "configs"
VIDEO24 = ROOT.parent / "shared" / "data" / "visem" / "video24_gt_mot.txt"


@dataclass
class DetectionSet:
    """One benchmark input: ground truth, detections, and optionally an appearance embedder."""

    name: str
    gt: pd.DataFrame
    dets: dict[int, Detections]
    n_frames: int
    fps: float
    embed_fn: Callable | None = None          # a trained ReID (pixels available)
    oracle_embed_fn: Callable | None = None   # identity one-hot (no pixels: oracle sets)
    notes: str = ""
    n_dets: int = field(init=False)

    def __post_init__(self):
        self.n_dets = int(sum(len(d) for d in self.dets.values()))


class OracleEmbedder:
    """One-hot of each detection's true identity (false positives get their own), L2-normalised.

    Looks detections up by their exact box, so it only works on the detection set it was made
    with. Counts the boxes it embedded.
    """

    def __init__(self, lookup: dict[tuple[int, tuple], int], n_ids: int):
        self.lookup, self.n_ids, self.calls = lookup, n_ids, 0

    def embed(self, frame: int, boxes: np.ndarray) -> np.ndarray:
        out = np.zeros((len(boxes), self.n_ids), np.float32)
        for i, b in enumerate(np.round(boxes.astype(np.float64), 3)):
            out[i, self.lookup[(frame, tuple(b))]] = 1.0
        self.calls += len(boxes)
        return out


def _oracle_set(name: str, gt: pd.DataFrame, n_frames: int, fps: float, *, jitter_px: float,
                drop: str, drop_frac: float, fp_frac: float, seed: int) -> DetectionSet:
    rng = np.random.default_rng(seed)
    d = gt[["track_id", "frame", "x", "y", "w", "h"]].copy()
    if drop == "random":
        d = d[rng.random(len(d)) >= drop_frac]
    elif drop == "runs":
        keep = np.ones(len(d), bool)
        tid = d["track_id"].to_numpy()
        p_start = drop_frac / 3.0            # runs of 1-5 frames, mean 3
        for k in np.unique(tid):
            idx = np.flatnonzero(tid == k)
            i = 0
            while i < len(idx):
                if rng.random() < p_start:
                    n = int(rng.integers(1, 6))
                    keep[idx[i:i + n]] = False
                    i += n
                else:
                    i += 1
        d = d[keep]
    d = d.copy()
    if jitter_px:
        d["x"] += rng.normal(0, jitter_px, len(d))
        d["y"] += rng.normal(0, jitter_px, len(d))
    n_fp = int(round(fp_frac * len(d)))
    src = gt.iloc[rng.integers(0, len(gt), n_fp)]
    fp = pd.DataFrame({"track_id": -1 - np.arange(n_fp), "frame": rng.integers(0, n_frames, n_fp),
                       "x": rng.uniform(0, 640, n_fp), "y": rng.uniform(0, 480, n_fp),
                       "w": src["w"].to_numpy(), "h": src["h"].to_numpy()})
    d = pd.concat([d, fp], ignore_index=True)
    ids = {v: i for i, v in enumerate(np.unique(d["track_id"]))}
    dets, lookup = {}, {}
    for f, g in d.groupby("frame"):
        det = Detections.from_centers(g[["x", "y"]].to_numpy(), g[["w", "h"]].to_numpy(), 1.0, 0)
        dets[int(f)] = det
        for b, t in zip(np.round(det.ltwh.astype(np.float64), 3), g["track_id"]):
            lookup[(int(f), tuple(b))] = ids[t]
    notes = f"jitter {jitter_px} px, drop {drop_frac:.0%} ({drop}), FP {fp_frac:.0%}, seed {seed}"
    return DetectionSet(name, gt, dets, n_frames, fps, oracle_embed_fn=OracleEmbedder(lookup, len(ids)),
                        notes=notes)


def video24_sets() -> list[DetectionSet]:
    """``clean``, ``noisy`` and ``hard`` from the real video-24 tracks (TRACKING.md)."""
    if not VIDEO24.exists():
        print(f"skipping video-24 sets: {VIDEO24} not present", file=sys.stderr)
        return []
    gt = read_mot(VIDEO24)
    n, fps = int(gt["frame"].max()) + 1, 50.0
    return [
        _oracle_set("clean", gt, n, fps, jitter_px=0.0, drop="none", drop_frac=0.0, fp_frac=0.0, seed=0),
        _oracle_set("noisy", gt, n, fps, jitter_px=1.0, drop="random", drop_frac=0.05, fp_frac=0.02, seed=1),
        _oracle_set("hard", gt, n, fps, jitter_px=2.0, drop="runs", drop_frac=0.08, fp_frac=0.05, seed=2),
    ]


WORK = ROOT / "benchmarks" / "_work"


#: Synthetic clips of the ReID rows: (set name, seed, role). The appearance gate
#: (``TrackerParams.max_cosine_distance`` = 0.7) and the ReID's training length (20 epochs) were
#: chosen by looking at ``synth-medium`` (seed 11): its ReID rows are tuning numbers. Nothing was
#: chosen on ``synth-heldout`` (seed 13): its rows are the held-out result.
SYNTH_CLIPS = (("synth-medium", 11, "TUNING clip: the appearance gate and the ReID epochs were chosen on it"),
               ("synth-heldout", 13, "HELD OUT: nothing was tuned on it"))


def synthetic_sets(seconds: float = 6.0, cells: int = 40, reid_epochs: int = 20) -> list[DetectionSet]:
    """``synth-medium`` (tuning) and ``synth-heldout``: synthetic clips through the real
    pipeline (HLDNBM + BlobDetector), with a ResNet50 ReID trained briefly (CPU) on two other
    synthetic clips (seed 12) for the ReID rows."""
    from spermtrack.io.video import VideoReader
    from spermtrack.synth import generate
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.tracker.reid import ReIDTrainConfig, load_embedder, train_reid

    work = WORK / "id_switches"
    train_root = work / "synth_reid_train"
    if not train_root.exists():
        generate(train_root, videos=2, seconds=4, fps=50, cells=cells, seed=12, difficulty="medium",
                 write_images=False, first_video_id=201)
    weights = work / f"reid_e{reid_epochs}.pt"
    if not weights.exists():
        t0 = time.perf_counter()
        train_reid(train_root, weights, ReIDTrainConfig(epochs=reid_epochs, crops_per_track=12))
        print(f"ReID trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    sets = []
    for name, seed, role in SYNTH_CLIPS:
        test_root = work / ("synth_test" if seed == 11 else f"synth_test_{seed}")
        if not test_root.exists():
            generate(test_root, videos=1, seconds=seconds, fps=50, cells=cells, seed=seed, difficulty="medium",
                     write_images=False)
        video = next(test_root.rglob("*.mp4"))
        gt = read_mot(video.parent / "gt" / "gt.txt")
        det = BlobDetector()
        dets: dict[int, Detections] = {}
        with VideoReader(video) as reader:
            n_frames = reader.meta.n_frames
            for chunk in reader.iter_chunks():
                for i, d in enumerate(det.detect(chunk.frames)):
                    dets[chunk.start + i] = d
        notes = (f"synthetic medium clip ({seconds:g} s, {cells} cells, seed {seed}; {role}) -> HLDNBM + "
                 f"BlobDetector; ReID: ResNet50 trained {reid_epochs} epochs on 2 other synthetic clips (seed 12, CPU)")
        sets.append(DetectionSet(name, gt, dets, n_frames, 50.0, embed_fn=load_embedder(weights, video),
                                 notes=notes))
    return sets


#: detection-set sources, run in order; each returns a list of DetectionSet.
SOURCES: list[Callable[[], list[DetectionSet]]] = [video24_sets, synthetic_sets]


def _cfg(name: str) -> dict:
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def drive(tracker: Tracker, ds: DetectionSet) -> pd.DataFrame:
    """The one loop every tracker runs through: push each frame's detections, read the tracks."""
    return tracker.run(ds.dets, ds.n_frames)


def _ours_online(ds: DetectionSet):
    return drive(SpermTracker(ds.fps), ds), None


def _ours_refined(ds: DetectionSet):
    return smoothed_boxes(refine_tracks(drive(SpermTracker(ds.fps), ds), ds.fps)), None


def _ours_embed(ds: DetectionSet, fn, params: TrackerParams | None = None):
    trk = SpermTracker(ds.fps, params=params, embed_fn=fn)
    return smoothed_boxes(refine_tracks(drive(trk, ds), ds.fps)), trk.n_embeddings_computed


def _peer(config: str) -> Callable[[DetectionSet], tuple[pd.DataFrame, None]]:
    """A row for the peer of ``benchmarks/configs/<config>.yaml``."""
    return lambda ds: (drive(adapters.PEERS[config](_cfg(config)), ds), None)


def trackers_for(ds: DetectionSet) -> list[tuple[str, Callable]]:
    """(row name, function(ds) -> (tracks, embeddings computed or None)) for one set."""
    rows: list[tuple[str, Callable]] = [
        ("ours online (motion)", _ours_online),
        ("ours + stitch/smooth", _ours_refined),
    ]
    if ds.embed_fn is not None:
        rows.append(("ours + ReID on demand", lambda d: _ours_embed(d, d.embed_fn)))
        rows.append(("ours + ReID every det", lambda d: _ours_embed(d, d.embed_fn, TrackerParams(embed_min_candidates=0))))
    if ds.oracle_embed_fn is not None:
        rows.append(("ours + oracle app. on demand", lambda d: _ours_embed(d, d.oracle_embed_fn)))
        rows.append(("ours + oracle app. every det",
                     lambda d: _ours_embed(d, d.oracle_embed_fn, TrackerParams(embed_min_candidates=0))))
    rows += [
        ("deep-sort-realtime (shipped)", _peer("deepsort_shipped")),
        ("ultralytics ByteTrack", _peer("bytetrack")),
        ("ultralytics BoT-SORT", _peer("botsort")),
        ("trackpy link", _peer("trackpy")),
        ("SORT", _peer("sort")),
    ]
    return rows


def speed_check(ds: DetectionSet, repeats: int = 3) -> str:
    """Best-of-``repeats`` frames/s of the online motion-only pass."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        drive(SpermTracker(ds.fps), ds)
        best = max(best, ds.n_frames / (time.perf_counter() - t0))
    per_frame = ds.n_dets / ds.n_frames
    return (f"Online motion-only speed on `{ds.name}` ({per_frame:.0f} detections a frame, one thread, "
            f"best of {repeats}): **{best:.0f} frames/s** (target >= 300).")


def run_set(ds: DetectionSet, only: set[str] | None) -> tuple[str, list[dict]]:
    lines = [f"### `{ds.name}` ({ds.notes}; {ds.n_frames} frames, {ds.n_dets} detections)", "",
             "| tracker | HOTA | AssA | MOTA | IDF1 | IDSW | Frag | frames/s | embeddings |",
             "|---|---|---|---|---|---|---|---|---|"]
    recs = []
    for name, fn in trackers_for(ds):
        if only and not any(o in name for o in only):
            continue
        t0 = time.perf_counter()
        tracks, n_emb = fn(ds)
        dt = time.perf_counter() - t0
        m = evaluate_tracks(ds.gt, tracks, n_frames=ds.n_frames)
        emb = "-" if n_emb is None else f"{n_emb} ({n_emb / max(ds.n_dets, 1):.1%})"
        lines.append(f"| {name} | {100 * m['HOTA']:.1f} | {100 * m['AssA']:.1f} | {100 * m['MOTA']:.1f} | "
                     f"{100 * m['IDF1']:.1f} | {m['IDSW']} | {m['Frag']} | {ds.n_frames / dt:.0f} | {emb} |")
        print(lines[-1], flush=True)
        recs.append({"set": ds.name, "tracker": name, **m, "fps": ds.n_frames / dt, "emb": n_emb})
    return "\n".join(lines), recs


def _verdict(recs: list[dict]) -> str:
    out = ["", "Targets (peers = every non-`ours` row):"]
    order = ["clean", "noisy", "hard"]
    shown = order + [n for n, _, _ in SYNTH_CLIPS]
    for s in sorted({r["set"] for r in recs}, key=lambda n: shown.index(n) if n in shown else len(shown)):
        rs = [r for r in recs if r["set"] == s]
        peers = [r for r in rs if not r["tracker"].startswith("ours")]
        ours = next((r for r in rs if r["tracker"] == "ours + stitch/smooth"), None)
        if not peers or ours is None:
            continue
        best_sw = min(p["IDSW"] for p in peers)
        best_h = max(p["HOTA"] for p in peers)
        if s == "clean":
            ok = ours["HOTA"] >= best_h - 1e-9 and ours["IDSW"] <= best_sw
            out.append(f"- `{s}`: ours HOTA {100 * ours['HOTA']:.1f} / IDSW {ours['IDSW']} vs best peer "
                       f"HOTA {100 * best_h:.1f} / IDSW {best_sw}: {'met' if ok else 'NOT met'} (no worse).")
        elif s in order:
            ok = ours["IDSW"] <= best_sw / 2 and ours["HOTA"] >= best_h + 0.02
            out.append(f"- `{s}`: ours IDSW {ours['IDSW']} (target <= {best_sw / 2:g}), HOTA "
                       f"{100 * ours['HOTA']:.1f} (target >= {100 * best_h + 2:.1f}): {'met' if ok else 'NOT met'}.")
        else:
            out.append(f"- `{s}`: ours HOTA {100 * ours['HOTA']:.1f} / IDSW {ours['IDSW']} vs best peer "
                       f"HOTA {100 * best_h:.1f} / IDSW {best_sw} (no target set on this set).")
        for kind in ("ReID", "oracle app."):
            od = next((r for r in rs if r["tracker"] == f"ours + {kind} on demand"), None)
            ev = next((r for r in rs if r["tracker"] == f"ours + {kind} every det"), None)
            if od and ev and od["emb"]:
                ok = ev["emb"] >= 5 * od["emb"] and od["IDSW"] <= ev["IDSW"]
                out.append(f"  - {kind} on demand: {od['emb']} embeddings vs {ev['emb']} for every detection "
                           f"({ev['emb'] / od['emb']:.1f}x fewer), IDSW {od['IDSW']} vs {ev['IDSW']}: "
                           f"{'met' if ok else 'NOT met'} (>= 5x fewer at no more ID switches).")
            if kind == "ReID" and od:
                role = next((r for n, _, r in SYNTH_CLIPS if n == s), "")
                out.append(f"  - ReID on demand vs motion only (ours + stitch/smooth): IDSW {od['IDSW']} vs "
                           f"{ours['IDSW']}, HOTA {100 * od['HOTA']:.1f} vs {100 * ours['HOTA']:.1f}, IDF1 "
                           f"{100 * od['IDF1']:.1f} vs {100 * ours['IDF1']:.1f}"
                           + (f" ({role.split(':')[0].lower()})" if role else "") + ".")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run only trackers whose name contains one of these")
    ap.add_argument("--sets", nargs="*", help="run only these detection sets")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    sets = [ds for src in SOURCES for ds in src() if not a.sets or ds.name in a.sets]
    parts, recs = [], []
    for ds in sets:
        md, r = run_set(ds, set(a.only) if a.only else None)
        parts.append(md)
        recs += r
    speed = speed_check(sets[0]) if sets else ""
    header = [
        "# ID switches: real motion (VISEM-Tracking video 24) and synthetic clips through the real detector", "",
        f"`python benchmarks/id_switches.py` on {platform.node()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} shared cores, one thread), {_dt.date.today().isoformat()}. "
        "HOTA/AssA/MOTA/IDF1 in %, CLEAR/Identity at IoU 0.5 (TrackEval). "
        "Ours + stitch/smooth writes the smoothed, gap-filled boxes (what `spermtrack track` writes). "
        "Oracle appearance = one-hot of the true identity (no pixels in these sets): it measures how many "
        "embeddings on-demand saves and what it costs, not a trained ReID. Peer configs in benchmarks/configs/. "
        "The tracker's motion parameters were tuned on the video-24 sets (docs/TRACKER.md): they are not held out "
        "(benchmarks/results/id_switches_real.md has tuning and report videos). The appearance gate and the ReID's "
        "training length were chosen on `synth-medium`; `synth-heldout` is the held-out ReID result.",
        "",
    ]
    text = "\n".join(header + ["\n\n".join(parts), _verdict(recs), "", speed, ""])
    print(_verdict(recs))
    print(speed)
    if not a.no_write and not a.only and not a.sets:
        write_text_atomic(RESULTS, text)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
