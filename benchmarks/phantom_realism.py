"""How much does the phantom look like real VISEM-Tracking frames? (real vs ``visem`` vs ``classic``)

Measures the same statistics on real frames (``../shared/data/visem/frames12`` and
``Train/11/images_sample``, JPEG q95) and on phantom frames of both looks (rendered in memory,
passed through the same JPEG q95 round trip the writer applies, read back as gray):

- background level (median) and robust noise (1.4826 x MAD of a 2-px high-pass);
- background power spectrum: SD contributed by spatial-frequency bands (radially averaged);
- head profile: mean radial intensity profile around labelled head centres, core peak, core size
  (half-maximum region's length / width), halo depth (p10 of the 4-8 px annulus) vs background;
- candidate contrast histograms: local maxima (bright) and minima (dark) of the
  background-subtracted frame (median-21 background), counts per frame per contrast bin;
- head box sizes (real: the 16 gt/ videos' MOT boxes; phantom: label boxes).

Writes ``benchmarks/results/phantom_realism.md`` and ``docs/phantom_vs_real.png``.

    python benchmarks/phantom_realism.py
"""

from __future__ import annotations

import datetime
import glob
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VISEM = ROOT.parent / "shared" / "data" / "visem"
OUT_MD = ROOT / "benchmarks" / "results" / "phantom_realism.md"
OUT_PNG = ROOT / "docs" / "phantom_vs_real.png"
BANDS = ((0.005, 0.02), (0.02, 0.06), (0.06, 0.15), (0.15, 0.3), (0.3, 0.5))
BRIGHT_BINS = (5, 10, 20, 40, 80, 160, 256)
DARK_BINS = (5, 10, 20, 40, 80, 256)
RADII = (0, 2, 4, 6, 8, 10, 12)


# ----------------------------------------------------------------------------- statistics

def noise_mad(g: np.ndarray) -> float:
    hp = g - cv2.GaussianBlur(g, (0, 0), 2.0)
    return float(1.4826 * np.median(np.abs(hp - np.median(hp))))


def band_sd(g: np.ndarray) -> list[float]:
    """SD (gray levels) contributed by each band of :data:`BANDS` (cycles / px), Hann window."""
    H, W = g.shape
    win = np.outer(np.hanning(H), np.hanning(W)).astype(np.float32)
    x = (g - g.mean()) * win
    P = np.abs(np.fft.fft2(x)) ** 2 / (win ** 2).sum() / (H * W)
    fy = np.fft.fftfreq(H)[:, None]
    fx = np.fft.fftfreq(W)[None, :]
    f = np.hypot(fx, fy)
    return [float(np.sqrt(P[(f >= lo) & (f < hi)].sum())) for lo, hi in BANDS]


def local_extrema(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contrasts of bright local maxima and dark local minima (5x5) of the background-subtracted frame."""
    bg = cv2.medianBlur(np.clip(g, 0, 255).astype(np.uint8), 21).astype(np.float32)
    d = g - bg
    k = np.ones((5, 5), np.uint8)
    out = []
    for sgn, lo in ((1.0, BRIGHT_BINS[0]), (-1.0, DARK_BINS[0])):
        e = sgn * d
        m = ((e == cv2.dilate(e, k)) & (e >= lo)).astype(np.uint8)
        # a flat (saturated) top is one candidate, not one per pixel
        n, lab = cv2.connectedComponents(m, connectivity=8)
        best = np.zeros(n, np.float32)
        np.maximum.at(best, lab[m > 0], e[m > 0])
        out.append(best[1:])
    return out[0], out[1]


def head_stats(g: np.ndarray, centres: np.ndarray, bg: float) -> dict:
    """Radial profile, core peak / size and halo depth around head ``centres`` (x, y px)."""
    H, W = g.shape
    R = 15
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1]
    rr = np.hypot(xx, yy)
    prof, peaks, halos, lens, wids = [], [], [], [], []
    for x, y in centres:
        xi, yi = int(round(x)), int(round(y))
        if not (R <= xi < W - R and R <= yi < H - R):
            continue
        p = g[yi - R:yi + R + 1, xi - R:xi + R + 1] - bg
        prof.append([p[(rr >= r - 0.5) & (rr < r + 0.5)].mean() for r in RADII])
        pk = p[rr <= 3].max()
        peaks.append(pk)
        halos.append(np.percentile(p[(rr >= 4) & (rr <= 8)], 10))
        # core: the half-maximum region connected to the brightest pixel near the centre
        m = ((p > 0.5 * pk) & (rr <= 8)).astype(np.uint8)
        n, lab = cv2.connectedComponents(m)
        c = np.unravel_index(np.argmax(np.where(rr <= 3, p, -1e9)), p.shape)
        sel = lab == lab[c]
        ys, xs = np.nonzero(sel)
        if len(xs) >= 3:
            ev = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)) + np.eye(2) / 12.0)
            lens.append(4 * np.sqrt(ev[1]))
            wids.append(4 * np.sqrt(ev[0]))
    return {"profile": np.array(prof), "peak": np.array(peaks), "halo": np.array(halos),
            "core_len": np.array(lens), "core_wid": np.array(wids)}


def frame_stats(g: np.ndarray, centres: np.ndarray) -> dict:
    g = g.astype(np.float32)
    bg = float(np.median(g))
    bright, dark = local_extrema(g)
    return {"bg": bg, "noise": noise_mad(g), "bands": band_sd(g), "bright": bright, "dark": dark,
            **head_stats(g, centres, bg)}


def summarise(frames: list[dict]) -> dict:
    cat = lambda k: np.concatenate([f[k] for f in frames])  # noqa: E731
    n = len(frames)
    prof = np.concatenate([f["profile"] for f in frames if len(f["profile"])])
    return {
        "n_frames": n, "n_heads": int(len(prof)),
        "bg": [float(np.min([f["bg"] for f in frames])), float(np.max([f["bg"] for f in frames]))],
        "noise": [float(np.min([f["noise"] for f in frames])), float(np.max([f["noise"] for f in frames]))],
        "bands": np.mean([f["bands"] for f in frames], axis=0),
        "bright_hist": np.histogram(cat("bright"), BRIGHT_BINS)[0] / n,
        "dark_hist": np.histogram(cat("dark"), DARK_BINS)[0] / n,
        "profile": prof.mean(0), "peak": float(np.median(cat("peak"))), "halo": float(np.median(cat("halo"))),
        "core_len": float(np.median(cat("core_len"))), "core_wid": float(np.median(cat("core_wid"))),
    }


# ----------------------------------------------------------------------------- data

def jpeg_gray(img: np.ndarray, quality: int = 95) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def yolo_centres(path: Path, W: int = 640, H: int = 480) -> np.ndarray:
    if not path.is_file() or path.stat().st_size == 0:
        return np.zeros((0, 2))
    a = np.loadtxt(path, ndmin=2)
    a = a[a[:, 0] == 0]
    return np.stack([a[:, 1] * W - 0.5, a[:, 2] * H - 0.5], 1)


def real_frames() -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """``{set name: [(gray, head centres, bgr)]}`` of the real frames (empty when absent)."""
    out: dict[str, list] = {}
    f12 = VISEM / "frames12" / "12_frame_0.jpg"
    if f12.is_file():
        bgr = cv2.imread(str(f12))
        out["real video 12 (frames12)"] = [(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), yolo_centres(
            VISEM / "frames12" / "labels" / "12_frame_0.txt"), bgr)]
    files = sorted(glob.glob(str(VISEM / "Train" / "11" / "images_sample" / "*.jpg")))
    if files:
        rows = []
        for f in files:
            bgr = cv2.imread(f)
            n = Path(f).stem
            rows.append((cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
                         yolo_centres(VISEM / "Train" / "11" / "labels" / f"{n}.txt"), bgr))
        out["real video 11 (images_sample)"] = rows
    return out


def phantom_frames(look: str, seeds=(1, 2, 3), frames=(0, 25, 49), cells: float = 32,
                   difficulty: str = "medium"):
    from spermtrack.synth import simulate_cells
    from spermtrack.synth.render import colorize, render_frame

    rows, boxes = [], []
    for seed in seeds:
        sc = simulate_cells(seconds=1.0, fps=50.0, cells=cells, seed=seed, difficulty=difficulty, look=look)
        b = sc.boxes[sc.boxes["cls"] == 0]
        boxes.append(b[["w", "h"]].to_numpy())
        for i in frames:
            g = render_frame(sc, i)
            bgr = colorize(sc, g) if look == "visem" else cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
            bi = b[b["frame"] == i]
            rows.append((jpeg_gray(bgr), bi[["x", "y"]].to_numpy(), cv2.imdecode(
                cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], cv2.IMREAD_COLOR)))
    return rows, np.concatenate(boxes)


def real_boxes() -> np.ndarray | None:
    files = sorted(glob.glob(str(VISEM / "gt" / "*.gz")))
    if not files:
        return None
    import pandas as pd

    d = pd.concat([pd.read_csv(f, header=None) for f in files])
    return d[[4, 5]].to_numpy(dtype=float)


# ----------------------------------------------------------------------------- picture

def picture(real: dict, ph_visem: list, ph_classic: list) -> None:
    crops = []
    (x0, y0), (cw, ch) = (150, 100), (320, 240)

    def tile(bgr, label):
        t = cv2.resize(bgr[y0:y0 + ch, x0:x0 + cw], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.putText(t, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2, cv2.LINE_AA)
        return t

    for name, rows in real.items():
        crops.append(tile(rows[0][2], name))
    crops.append(tile(ph_visem[0][2], "phantom --look visem (medium)"))
    crops.append(tile(ph_visem[4][2], "phantom --look visem (medium), other seed"))
    if len(crops) % 2:
        crops.append(tile(ph_classic[0][2], "phantom --look classic (medium)"))
    rows = [np.hstack(crops[k:k + 2]) for k in range(0, len(crops), 2)]
    OUT_PNG.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT_PNG), np.vstack(rows))


# ----------------------------------------------------------------------------- report

def fmt(v, d=1):
    return f"{v:.{d}f}"


def main() -> int:
    t0 = time.perf_counter()
    real = real_frames()
    if not real:
        print(f"real VISEM frames not found under {VISEM}; nothing to compare", file=sys.stderr)
        return 0
    sets = {name: summarise([frame_stats(g, c) for g, c, _ in rows]) for name, rows in real.items()}
    ph_v, boxes_v = phantom_frames("visem")
    ph_c, boxes_c = phantom_frames("classic")
    sets["phantom visem (medium)"] = summarise([frame_stats(g, c) for g, c, _ in ph_v])
    sets["phantom classic (medium)"] = summarise([frame_stats(g, c) for g, c, _ in ph_c])
    picture(real, ph_v, ph_c)
    rb = real_boxes()

    names = list(sets)
    L = ["# Phantom realism: real VISEM frames vs the phantom's looks", ""]
    L += [f"- command: `python {' '.join(['benchmarks/phantom_realism.py', *sys.argv[1:]])}`",
          f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
          f"- machine: {platform.node() or 'unknown'}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}",
          "- real: `../shared/data/visem/frames12/12_frame_0.jpg` (27 heads) and the 15 "
          "`Train/11/images_sample/` JPEGs (labels: official YOLO files); real boxes: the 16 `gt/` videos",
          "- phantom: `simulate_cells(seconds=1, cells=32, difficulty='medium', seed=1..3, look=...)`, frames "
          "0/25/49, colour (visem) or gray (classic) -> JPEG q95 -> gray, as the writer stores them",
          "- picture: `docs/phantom_vs_real.png` (same 320x240 crop, 2x, of a real frame and phantom frames)", ""]
    L += ["## Background and noise", "",
          "| set | frames | heads | background (median, min-max) | noise 1.4826 MAD of 2-px high-pass |",
          "|---|---|---|---|---|"]
    for n in names:
        s = sets[n]
        L.append(f"| {n} | {s['n_frames']} | {s['n_heads']} | {fmt(s['bg'][0])}-{fmt(s['bg'][1])} | "
                 f"{fmt(s['noise'][0], 2)}-{fmt(s['noise'][1], 2)} |")
    L += ["", "## Background power spectrum (SD in gray levels contributed by each band, cycles/px)", "",
          "| set | " + " | ".join(f"{lo}-{hi}" for lo, hi in BANDS) + " |", "|---|" + "---|" * len(BANDS)]
    for n in names:
        L.append(f"| {n} | " + " | ".join(fmt(v, 2) for v in sets[n]["bands"]) + " |")
    L += ["", "## Head profile (labelled head centres; gray levels relative to the frame median)", "",
          "| set | core peak | core length px | core width px | halo depth (p10, 4-8 px) | "
          + " | ".join(f"r={r}" for r in RADII) + " |", "|---|---|---|---|---|" + "---|" * len(RADII)]
    for n in names:
        s = sets[n]
        L.append(f"| {n} | {fmt(s['peak'])} | {fmt(s['core_len'])} | {fmt(s['core_wid'])} | {fmt(s['halo'])} | "
                 + " | ".join(fmt(v) for v in s["profile"]) + " |")
    L += ["", "## Candidate contrast histogram (local extrema 5x5 of frame - median21 background, per frame)", "",
          "Bright maxima:", "", "| set | " + " | ".join(f"{a}-{b}" for a, b in zip(BRIGHT_BINS, BRIGHT_BINS[1:]))
          + " |", "|---|" + "---|" * (len(BRIGHT_BINS) - 1)]
    for n in names:
        L.append(f"| {n} | " + " | ".join(fmt(v, 0) for v in sets[n]["bright_hist"]) + " |")
    L += ["", "Dark minima:", "", "| set | " + " | ".join(f"{a}-{b}" for a, b in zip(DARK_BINS, DARK_BINS[1:]))
          + " |", "|---|" + "---|" * (len(DARK_BINS) - 1)]
    for n in names:
        L.append(f"| {n} | " + " | ".join(fmt(v, 0) for v in sets[n]["dark_hist"]) + " |")
    L += ["", "## Head box sizes (px; sperm class)", "", "| set | boxes | w p10 / p50 / p90 | h p10 / p50 / p90 | "
          "w/h p10-p90 |", "|---|---|---|---|---|"]
    for n, b in (("real (16 gt/ videos)", rb), ("phantom visem (medium)", boxes_v),
                 ("phantom classic (medium)", boxes_c)):
        if b is None:
            continue
        w, h = np.percentile(b[:, 0], [10, 50, 90]), np.percentile(b[:, 1], [10, 50, 90])
        r = np.percentile(b[:, 0] / b[:, 1], [10, 90])
        L.append(f"| {n} | {len(b)} | {' / '.join(fmt(v) for v in w)} | {' / '.join(fmt(v) for v in h)} | "
                 f"{fmt(r[0], 2)}-{fmt(r[1], 2)} |")
    L += ["", f"Run time {time.perf_counter() - t0:.1f} s.", ""]
    OUT_MD.parent.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text("\n".join(L))
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
