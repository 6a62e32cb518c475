"""End-to-end speed, memory and quality of ``spermtrack analyze`` (writes benchmarks/results/pipeline.md).

Measures, in one run on one machine, on synthetic 640x480, 50 fps clips with exact truth:

1. frames/s per stage of the streaming pass (decode, HLDNBM enhancement alone, detect incl.
   enhancement, online tracking) and end to end, on a 10 s clip with 50 cells, default blob
   detector, motion-only association (no ReID), without the annotated video;
2. the whole ``spermtrack analyze`` command (a fresh process: imports, report, plots, annotated
   video, morphology) on an 8 s clip with 35 cells;
3. peak resident memory of the whole command (``--no-video``) on a 60 s clip against the 10 s
   clip (each in its own process);
4. tracking quality (HOTA, IDF1, ID switches against ``gt/gt.txt``) and the grade mix against the
   true grades on the 10 s clip.

Run: ``python benchmarks/pipeline.py`` (``--quick`` for a smoke run with short clips).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_MEM_SNIPPET = """
import resource, sys
from spermtrack.cli.main import main
rc = main(sys.argv[1:])
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
sys.exit(rc)
"""


def make_clip(root: Path, seconds: float, cells: float, seed: int) -> Path:
    from spermtrack.synth import generate

    folder = generate(root / f"clip_{seconds:g}s_{cells:g}c", videos=1, seconds=seconds, cells=cells, seed=seed,
                      write_images=False)[0]
    return folder


def stage_speeds(folder: Path) -> dict:
    from spermtrack.io.video import VideoReader
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.detect.enhance import evidence_map
    from spermtrack.pipeline.stream import stream_video

    video = folder / f"{folder.name}.mp4"
    res = stream_video(video, detector=BlobDetector())
    frames = next(VideoReader(video).iter_chunks()).frames
    t = time.perf_counter()
    for f in frames:
        evidence_map(f)
    enhance_fps = len(frames) / (time.perf_counter() - t)
    n = res.n_frames
    return {"n_frames": n, "decode": n / res.times.decode_s, "enhance": enhance_fps,
            "detect": n / res.times.detect_s, "track": n / max(res.times.track_s, 1e-9),
            "stream": res.frames_per_s, "n_detections_per_frame": res.n_detections / n}


def analyze_in_process(folder: Path, out: Path) -> tuple[float, dict]:
    from spermtrack.pipeline.analyze import analyze_video
    from spermtrack.config import Config

    cfg = Config().replace("report", annotated_video=False)
    t = time.perf_counter()
    res = analyze_video(folder / f"{folder.name}.mp4", out, config=cfg, um_per_px=0.5, progress=False, truth=folder)
    return time.perf_counter() - t, res.meta


def run_command(args: list[str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (kB) and output of ``spermtrack ARGS`` in a fresh process."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _MEM_SNIPPET, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"spermtrack {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    rss = int(next(ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("MAXRSS_KB")))
    return wall, rss, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short clips (smoke run; numbers not comparable)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline.md")
    a = ap.parse_args()
    s10, s8, s60 = (2.0, 2.0, 6.0) if a.quick else (10.0, 8.0, 60.0)
    tmp = Path(tempfile.mkdtemp(prefix="spermtrack-bench-"))
    t0 = time.perf_counter()
    clip10 = make_clip(tmp, s10, 50, seed=3)
    clip8 = make_clip(tmp, s8, 35, seed=4)
    clip60 = make_clip(tmp, s60, 50, seed=3)
    t_gen = time.perf_counter() - t0
    print(f"clips rendered in {t_gen:.0f} s", file=sys.stderr)

    speeds = stage_speeds(clip10)
    _, meta10 = analyze_in_process(clip10, tmp / "a10")  # warm (numba cache, imports)
    wall10, meta10 = analyze_in_process(clip10, tmp / "a10")
    e2e_fps = meta10["n_frames_analysed"] / wall10
    wall8, rss8, _ = run_command(["analyze", str(clip8 / f"{clip8.name}.mp4"), "--out", str(tmp / "a8"),
                                  "--um-per-px", "0.5", "--quiet"])
    _, rss_10, _ = run_command(["analyze", str(clip10 / f"{clip10.name}.mp4"), "--out", str(tmp / "m10"),
                                "--um-per-px", "0.5", "--quiet", "--no-video"])
    wall60, rss_60, _ = run_command(["analyze", str(clip60 / f"{clip60.name}.mp4"), "--out", str(tmp / "m60"),
                                     "--um-per-px", "0.5", "--quiet", "--no-video"])
    tc = meta10["truth_check"]
    tr = tc["tracking"]
    t = meta10["timings_s"]
    cmd = "python benchmarks/pipeline.py" + (" --quick" if a.quick else "")
    verdict = lambda ok: "**met**" if ok else "**NOT met**"  # noqa: E731
    grades_ok = all(abs(v["diff_pct_points"]) <= 12 for v in tc["grades"].values())
    lines = [
        "# Pipeline benchmark: `spermtrack analyze` end to end",
        "",
        f"Command: `{cmd}`. Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs "
        f"while measured; 1-min load average {os.getloadavg()[0]:.1f} when written), Python {platform.python_version()}, {platform.platform()}. Synthetic 640x480, 50 fps "
        f"clips (`spermtrack.synth`, difficulty medium) with exact truth; um_per_px 0.5 given; default config "
        f"(blob detector with HLDNBM, motion-only association, stitching + smoothing, classical morphology).",
        "",
        f"## Speed ({s10:g} s clip, 50 cells, {speeds['n_detections_per_frame']:.1f} detections per frame)",
        "",
        "| stage | frames/s | target |",
        "|---|---|---|",
        f"| decode (PyAV, gray) | {speeds['decode']:.0f} | |",
        f"| HLDNBM enhancement alone | {speeds['enhance']:.0f} | |",
        f"| detect (blob, includes the enhancement) | {speeds['detect']:.0f} | |",
        f"| online tracking | {speeds['track']:.0f} | |",
        f"| streaming pass (decode -> detect -> track) | {speeds['stream']:.0f} | |",
        f"| `analyze` without the annotated video (stream, refine, kinematics, morphology, plots, report) | "
        f"**{e2e_fps:.0f}** ({wall10:.1f} s for {meta10['n_frames_analysed']} frames) | >= 25: {verdict(e2e_fps >= 25)} |",
        "",
        f"Time per step of that run (s): stream {t['stream_total_s']}, refine {t['refine_s']}, kinematics "
        f"{t['kinematics_s']}, morphology {t['morphology_s']}, plots {t.get('plots_s', 0)}, report total "
        f"{t['report_total_s']}.",
        "",
        f"Whole command with report, plots and annotated video on an {s8:g} s clip with 35 cells, in a fresh "
        f"process (imports included): **{wall8:.1f} s** (target <= 60 s: {verdict(wall8 <= 60)}); peak memory {rss8 / 1024:.0f} MiB.",
        "",
        "## Memory (whole command, `--no-video`, each in a fresh process)",
        "",
        "| clip | peak RSS (MiB) | wall (s) |",
        "|---|---|---|",
        f"| {s10:g} s | {rss_10 / 1024:.0f} | |",
        f"| {s60:g} s | {rss_60 / 1024:.0f} | {wall60:.1f} |",
        f"| ratio | **{rss_60 / rss_10:.2f}** (target <= 1.2: {verdict(rss_60 / rss_10 <= 1.2)}) | |",
        "",
        f"## Quality against the synthetic truth ({s10:g} s clip, 50 cells)",
        "",
        f"HOTA **{tr['HOTA']:.1f}** (target >= 70: {verdict(tr['HOTA'] >= 70)}), DetA {tr['DetA']:.1f}, AssA {tr['AssA']:.1f}, IDF1 {tr['IDF1']:.1f}, "
        f"MOTA {tr['MOTA']:.1f}, ID switches **{tr['IDSW']}** (target <= 10: {verdict(tr['IDSW'] <= 10)}), {tr['num_gt_ids']} true tracks, "
        f"{tr['num_pred_ids']} found.",
        "",
        f"| grade | truth % ({tc['n_true_tracks']} true tracks >= 0.5 s) | measured % ({tc['n_graded_tracks']} graded) "
        f"| difference (points, target within 12) |",
        "|---|---|---|---|",
    ]
    for g, v in tc["grades"].items():
        lines.append(f"| {g} | {v['truth_pct']:.1f} | {v['measured_pct']:.1f} | {v['diff_pct_points']:+.1f} |")
    lines += ["", f"Grade mix within 12 points of the truth on every grade: {verdict(grades_ok)}."]
    lines += ["", f"Rendering the clips took {t_gen:.0f} s (not included above).", ""]
    text = "\n".join(lines)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    from spermtrack.io.atomic import write_text_atomic

    write_text_atomic(a.out, text)
    print(text)
    print(json.dumps({"speeds": speeds, "e2e_fps": e2e_fps, "wall8": wall8, "rss_ratio": rss_60 / rss_10},
                     default=float), file=sys.stderr)


if __name__ == "__main__":
    main()
