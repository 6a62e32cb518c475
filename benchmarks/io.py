"""I/O speed: gray-frame decode throughput of spermtrack's VideoReader (PyAV) vs OpenCV.

Both read the same 640x480, 50 fps H.264 file (noise + moving blobs, made here) to gray
``uint8`` frames (OpenCV: ``VideoCapture.read`` + ``cvtColor(BGR2GRAY)``, the usual way).
Reports frames/s, medians of ``--runs`` runs interleaved, and the ratio ours / OpenCV.

Run: ``python benchmarks/io.py`` (writes ``benchmarks/results/io.md``).

Each section is a function returning markdown; :func:`main` joins them and writes the file.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spermtrack.io.atomic import write_text_atomic
from spermtrack.io.video import VideoReader, VideoWriter

RESULTS = Path(__file__).resolve().parent / "results" / "io.md"


def make_test_video(path: Path, *, seconds: float = 10.0, fps: int = 50, width: int = 640,
                    height: int = 480, seed: int = 0) -> tuple[Path, float, str]:
    """Write gray noise with 40 moving Gaussian blobs; return (path, encode seconds, codec)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    yy, xx = np.mgrid[0:height, 0:width]
    pos = rng.uniform([0, 0], [width, height], size=(40, 2))
    vel = rng.normal(0, 3, size=(40, 2))
    t0 = time.perf_counter()
    with VideoWriter(path, fps, width, height) as vw:
        for _ in range(n):
            img = rng.normal(110, 12, (height, width))
            for (x, y) in pos:
                x0, x1, y0, y1 = int(x) - 8, int(x) + 9, int(y) - 8, int(y) + 9
                sl = (slice(max(y0, 0), max(y1, 0)), slice(max(x0, 0), max(x1, 0)))
                img[sl] += 80 * np.exp(-((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / 18.0)
            vw.write(np.clip(img, 0, 255).astype(np.uint8))
            pos = (pos + vel) % [width, height]
        codec = vw.codec
    return path, time.perf_counter() - t0, codec


def decode_spermtrack(path: Path) -> int:
    n = 0
    for _ in VideoReader(path).iter_frames():
        n += 1
    return n


def decode_spermtrack_chunks(path: Path) -> int:
    return sum(len(c) for c in VideoReader(path, chunk_frames=64).iter_chunks())


def decode_opencv(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            n += 1
    finally:
        cap.release()
    return n


def decode_section(runs: int, seconds: float) -> str:
    """Markdown for the decode-throughput comparison (the file is made in a temp folder)."""
    readers = {"spermtrack VideoReader.iter_frames (PyAV)": decode_spermtrack,
               "spermtrack VideoReader.iter_chunks(64) (PyAV)": decode_spermtrack_chunks,
               "OpenCV VideoCapture + cvtColor gray": decode_opencv}
    with tempfile.TemporaryDirectory() as tmp:
        path, enc_s, codec = make_test_video(Path(tmp) / "bench.mp4", seconds=seconds)
        times: dict[str, list[float]] = {k: [] for k in readers}
        counts: dict[str, int] = {}
        for _ in range(runs):  # interleaved, so drifting machine load hits every reader alike
            for name, fn in readers.items():
                t0 = time.perf_counter()
                counts[name] = fn(path)
                times[name].append(time.perf_counter() - t0)
    n_expected = int(round(seconds * 50))
    fps = {k: counts[k] / statistics.median(v) for k, v in times.items()}
    ref = fps["OpenCV VideoCapture + cvtColor gray"]
    lines = [
        "## Decode throughput (gray uint8 frames)",
        "",
        f"File: 640x480, 50 fps, {seconds:g} s = {n_expected} frames, {codec} (CRF 18, preset "
        f"veryfast), noise + 40 moving blobs; written by VideoWriter in {enc_s:.1f} s "
        f"({n_expected / enc_s:.0f} frames/s encode). Median of {runs} interleaved runs.",
        "",
        "| reader | frames | median s | frames/s | ratio vs OpenCV |",
        "|---|---|---|---|---|",
    ]
    for name in readers:
        lines.append(f"| {name} | {counts[name]} | {statistics.median(times[name]):.3f} | "
                     f"{fps[name]:.0f} | {fps[name] / ref:.2f} |")
    return "\n".join(lines) + "\n"


def synth_section(runs: int = 1) -> str:
    """Hook for synthetic-video generation speed: empty until ``spermtrack.synth.generate``
    exists, then the time to make one 10 s, 50 fps, 50-cell video (images not written)."""
    try:
        import spermtrack.synth as synth
    except ImportError:
        return ""
    generate = getattr(synth, "generate", None)
    if generate is None:
        return ""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(Path(tmp), videos=1, seconds=10, fps=50, cells=50, um_per_px=0.5, seed=0,
                     difficulty="medium", write_images=False)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return ("## Synthetic video generation\n\n"
            "`spermtrack.synth.generate(out, videos=1, seconds=10, fps=50, cells=50, "
            "um_per_px=0.5, seed=0, difficulty='medium', write_images=False)`\n\n"
            "| runs | median s | frames/s | real-time factor (10 s of video) |\n|---|---|---|---|\n"
            f"| {runs} | {med:.2f} | {500 / med:.0f} | {10 / med:.2f}x |\n\n"
            f"Target: a 10 s, 50 fps, 50-cell clip in under 60 s on one core: "
            f"{'met' if med < 60 else 'NOT met'} ({med:.1f} s; {len(os.sched_getaffinity(0))} core(s) "
            f"usable by this run).\n")


def machine_section(argv: list[str]) -> str:
    import av
    import cv2

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Command: `python {' '.join(['benchmarks/io.py', *argv])}`  \n"
            f"Date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}  \n"
            f"Machine: {os.cpu_count()} CPUs (nproc), {len(os.sched_getaffinity(0))} usable by this run "
            f"(run under `taskset -c 0` for one core), {cpu}; Python {platform.python_version()}, "
            f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
            f"OpenCV {cv2.__version__}\n")


def main(argv: list[str] | None = None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    sections = ["# I/O benchmark\n", machine_section(argv), decode_section(args.runs, args.seconds),
                synth_section(runs=3)]
    text = "\n".join(s for s in sections if s)
    print(text)
    write_text_atomic(args.out, text)
    return text


if __name__ == "__main__":
    main()
