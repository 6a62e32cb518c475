"""What VCL, ALH and BCF can and cannot resolve on REAL tracks (writes
benchmarks/results/kinematics_real.md and benchmarks/results/kinematics_real.png).

1. Annotation structure of the 16 official VISEM-Tracking ground-truth files
   (``../shared/data/visem/gt/videoNN_gt_mot.txt.gz``): the files store centres to 0.01 px, so a
   frame whose position is the linear interpolation of its neighbours has a second difference
   ``|x[i+1] - 2 x[i] + x[i-1]| <= 0.02 px`` in both axes (rounding of three values), not exactly
   0. Measured per video: still frames (both steps exactly 0), interpolated frames among the
   moving ones, the same with an exact-zero test, keyframe spacing (frames between two
   non-interpolated points) of motile tracks, integer box corners of keyframes and of
   interpolated frames, and steps longer than 5 px. The same measures are taken on the engine's
   own tracks of video 11 (positions to 0.001 px, tolerance 0.002 px).
2. Per-track VCL, VAP, ALH (mean, max) and BCF with
   :func:`spermtrack.kinematics.compute_track_metrics` (50 fps, 0.5 um/px, preset who2021) on the
   gt tracks of all 16 videos and on the engine's tracks of video 11 (``spermtrack analyze`` run
   into a temporary folder, or ``--engine-tracks PATH`` to a ``tracks.csv`` of an earlier run;
   sperm tracks = majority class 0 as ``analyze`` grades them, measured rows only), split into
   motile (rapid / slow / non-progressive) and immotile by the same call's grade. ALH and BCF are
   also computed by the plain-numpy reference of the definitions
   (``tests/kinematics_reference.py``), which applies no reporting rule, so that the value the
   formula gives on an immotile cell is visible even when the engine leaves it empty.
3. Per video: the motile cells' keyframe spacing against their ALH and BCF (Spearman
   correlation over the 16 videos).
4. Video 11, cell by cell: each gt track is matched to the engine track that holds the nearest
   detection (<= 8 px) on most of its frames; both are cut to their common frames (>= 1 s) and
   compared (paired VCL ratio, ALH, BCF), and the lateral offset from a 15-point (0.3 s) running
   mean is analysed by frequency (Welch, contiguous runs >= 64 frames): RMS lateral motion per
   band, against the detector's noise floor (engine tracks of immotile cells).
5. Noise floor of the detector centroids (engine immotile cells): sigma from the mean squared
   step, the formula's ALH and BCF of cells that do not move.
6. Synthetic check: a straight path (40 um/s) with a sinusoidal lateral beat of amplitude 2 um
   (ALH 4 um) at 5, 8 and 12 Hz (BCF = 2 f), sampled at 50 fps, then kept only every k frames
   and linearly interpolated between those keyframes (as the annotation tool did), with the
   keyframes exact or on the 1-px grid of the annotations (then rounded to 0.01 px like the
   files), next to every-frame sampling with the detector's noise; and noise alone (no beat).

Run: ``python benchmarks/kinematics_real.py`` (``--engine-tracks OUT/11/tracks.csv`` to reuse a
run, ``--no-write`` to print only, ``--no-plot``). Skips with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.append(str(_p))  # appended: an installed / PYTHONPATH spermtrack keeps priority

from benchmarks import realdata as rd  # noqa: E402
from spermtrack.types import EDGE_OFFSET_PX  # noqa: E402

OUT = rd.RESULTS / "kinematics_real.md"
PLOT = rd.RESULTS / "kinematics_real.png"
FPS = 50.0
UM_PER_PX = 0.5
PRESET = "who2021"
TOL_GT_PX = 0.0201       # gt files: 0.01 px rounding -> |second difference| <= 0.02 px
TOL_ENGINE_PX = 0.0021   # engine tracks.csv: 0.001 px rounding
JUMP_PX = 5.0            # a step > 5 px (2.5 um in 20 ms = 125 um/s) between two frames
MATCH_PX = 8.0
MIN_PAIR_FRAMES = 50     # >= 1 s of common frames for a matched pair
MOTILE = ("rapid_progressive", "slow_progressive", "non_progressive")

# synthetic check
SYN_V_UM_S = 40.0
SYN_A_UM = 2.0
SYN_F_HZ = (5.0, 8.0, 12.0)
SYN_K = (1, 2, 3, 4, 6, 10)
SYN_DURATION_S = 2.0
SYN_REPS = 40
SYN_NOISY_UM = 0.25      # a noisier detector than ours, for comparison
LAT_WINDOW = 15          # running mean of the lateral-offset analysis (0.3 s)
LAT_MIN_RUN = 64
BANDS_HZ = ((2.0, 6.0), (6.0, 12.0), (12.0, 18.0), (18.0, 25.01))


# --- reading ----------------------------------------------------------------------------------

def sperm_tracks(tracks: pd.DataFrame) -> pd.DataFrame:
    """Tracks whose majority class is 0 (ties to the lower class), as ``analyze`` grades them."""
    if "cls" not in tracks.columns:
        return tracks
    maj = tracks.groupby("track_id")["cls"].agg(lambda c: int(c.mode().iat[0]))
    return tracks[tracks["track_id"].isin(maj.index[maj == 0])].reset_index(drop=True)


def engine_tracks(path: str | None) -> tuple[pd.DataFrame, str]:
    """The engine's sperm tracks of video 11 (measured rows kept; ``interpolated`` column kept so
    that compute_track_metrics drops those rows itself) and how they were obtained."""
    if path:
        p = Path(path)
        how = f"read from `{p}` (an earlier `spermtrack analyze` run)"
        t = pd.read_csv(p)
        meta = p.parent / "summary.json"
        if meta.exists():
            s = json.loads(meta.read_text())
            kin = s.get("kinematics") or {}
            ver = (s.get("versions") or {}).get("spermtrack", "?")
            how += (f"; its summary.json: spermtrack {ver}, created {s.get('created', '?')}, "
                    f"fps {kin.get('fps')}, um_per_px {kin.get('um_per_px')}")
        return sperm_tracks(t), how
    with tempfile.TemporaryDirectory(prefix="kinematics_real_") as tmp:
        args = ["analyze", str(rd.VIDEO11), "--out", tmp, "--fps", str(FPS), "--um-per-px", str(UM_PER_PX),
                "--no-video", "--quiet"]
        code = "import sys; from spermtrack.cli.main import main; sys.argv[0] = 'spermtrack'; main()"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"spermtrack analyze failed ({r.returncode}):\n{r.stderr[-3000:]}")
        tracks = pd.read_csv(Path(tmp) / "11" / "tracks.csv")
        shown = " ".join(args).replace(tmp, "TMP").replace(str(rd.VIDEO11), rd.rel(rd.VIDEO11))
    how = f"`spermtrack {shown}` run by this script ({dt:.0f} s)"
    return sperm_tracks(tracks), how


# --- annotation structure ---------------------------------------------------------------------

def _isint(a: np.ndarray) -> np.ndarray:
    return np.abs(a - np.round(a)) < 1e-6


def track_structure(t: pd.DataFrame, tol: float) -> pd.DataFrame:
    """One row per track: frame triples, still / interpolated / keyframe counts, keyframe
    spacings, integer box corners, long steps (positions in px, rows of one track sorted)."""
    rows = []
    t = t.sort_values(["track_id", "frame"])
    if "interpolated" in t.columns:
        t = t[~t["interpolated"].astype(bool)]
    for tid, g in t.groupby("track_id", sort=True):
        f = g["frame"].to_numpy(np.int64)
        x = g["x"].to_numpy(np.float64)
        y = g["y"].to_numpy(np.float64)
        w = g["w"].to_numpy(np.float64) if "w" in g else np.zeros_like(x)
        h = g["h"].to_numpy(np.float64) if "h" in g else np.zeros_like(x)
        corner_int = _isint(x - w / 2) & _isint(y - h / 2)
        step = np.hypot(np.diff(x), np.diff(y))
        r = dict(track_id=tid, n=len(f), triples=0, still=0, interp=0, interp_exact=0, key=0,
                 key_int=0, interp_int=0, steps=len(step), jumps=int((step > JUMP_PX).sum()),
                 spacings=np.zeros(0, np.int64), key_per_s=np.nan, interp_frac=np.nan)
        if len(f) >= 3:
            cont = (f[2:] - f[1:-1] == 1) & (f[1:-1] - f[:-2] == 1)
            d2x = x[2:] - 2 * x[1:-1] + x[:-2]
            d2y = y[2:] - 2 * y[1:-1] + y[:-2]
            zero_step = (np.abs(np.diff(x)) < 1e-9) & (np.abs(np.diff(y)) < 1e-9)
            still = cont & zero_step[1:] & zero_step[:-1]
            lin = cont & (np.abs(d2x) <= tol) & (np.abs(d2y) <= tol) & ~still
            exact = cont & (d2x == 0) & (d2y == 0) & ~still
            key = cont & ~still & ~lin
            mid_int = corner_int[1:-1]
            # keyframes: interior points that are not interpolations, plus both track ends
            kf = np.unique(np.r_[0, np.flatnonzero(~lin & ~still) + 1, len(f) - 1])
            sp = np.diff(f[kf])
            dur = (f[-1] - f[0]) / FPS
            r.update(triples=int(cont.sum()), still=int(still.sum()), interp=int(lin.sum()),
                     interp_exact=int(exact.sum()), key=int(key.sum()), key_int=int((mid_int & key).sum()),
                     interp_int=int((mid_int & lin).sum()), spacings=sp,
                     key_per_s=(int(key.sum()) / dur) if dur > 0 else np.nan,
                     interp_frac=lin.sum() / max(1, (cont & ~still).sum()))
        rows.append(r)
    return pd.DataFrame(rows)


def structure_row(name: str, s: pd.DataFrame, motile_ids) -> list[str]:
    moving = s["triples"].sum() - s["still"].sum()
    mot = s[s["track_id"].isin(motile_ids)]
    sp = np.concatenate(list(mot["spacings"])) if len(mot) else np.zeros(0)
    sp = sp[sp > 0]
    frames_in_long = (sp[sp >= 3].sum() / sp.sum()) if sp.size else np.nan
    pct = lambda a, b: f"{100 * a / b:.1f}" if b else "-"  # noqa: E731
    return [name, f"{len(s)}", f"{int(s['n'].sum()):,}", pct(s["still"].sum(), s["triples"].sum()),
            pct(s["interp"].sum(), moving), pct(s["interp_exact"].sum(), moving),
            f"{np.median(sp):.0f}" if sp.size else "-", f"{np.percentile(sp, 90):.0f}" if sp.size else "-",
            pct(frames_in_long * 100, 100) if sp.size else "-",
            pct(s["key_int"].sum(), s["key"].sum()), pct(s["interp_int"].sum(), s["interp"].sum()),
            pct(s["jumps"].sum(), s["steps"].sum())]


# --- metrics ----------------------------------------------------------------------------------

def cm_kwargs(synthetic: bool) -> dict:
    """Extra arguments of compute_track_metrics: synthetic tracks that all start together are
    not a field, so drift subtraction (when the engine has it) is switched off for them."""
    from spermtrack.kinematics import compute_track_metrics

    return {"drift": "none"} if synthetic and rd.accepts_kwarg(compute_track_metrics, "drift") else {}


def metrics(tracks: pd.DataFrame, synthetic: bool = False) -> pd.DataFrame:
    """compute_track_metrics (reported values) plus the reference formula's ALH / BCF / VCL
    (suffix ``_f``: the CASA definitions with no reporting rule, positions as given) and a
    motile / immotile class."""
    from spermtrack.kinematics import compute_track_metrics, default_window

    m = compute_track_metrics(tracks, FPS, UM_PER_PX, preset=PRESET, diagnostics=True, **cm_kwargs(synthetic))
    g = m["grade"].astype(str)
    m["klass"] = np.where(g.isin(MOTILE), "motile", np.where(g == "immotile", "immotile", "not graded"))
    try:
        from kinematics_reference import reference_metrics
    except ImportError:
        reference_metrics = None
    if reference_metrics is not None:
        t = tracks
        if "interpolated" in t.columns:
            t = t[~t["interpolated"].astype(bool)]
        ref = reference_metrics(t, FPS, UM_PER_PX, default_window(FPS)).set_index("track_id")
        for c in ("alh_mean_um", "alh_max_um", "bcf_hz", "vcl_um_s"):
            m[c + "_f"] = m["track_id"].map(ref[c]).to_numpy()
    else:
        for c in ("alh_mean_um", "alh_max_um", "bcf_hz", "vcl_um_s"):
            m[c + "_f"] = m[c]
    return m


def q(a, fmt: str = "{:.1f}") -> str:
    """``median [p10, p90]`` of the finite values (or '-')."""
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    if not a.size:
        return "-"
    p10, p50, p90 = np.percentile(a, [10, 50, 90])
    return f"{fmt.format(p50)} [{fmt.format(p10)}, {fmt.format(p90)}]"


def med(a) -> float:
    a = np.asarray(a, np.float64)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


def metric_rows(name: str, m: pd.DataFrame) -> list[list[str]]:
    out = []
    for k in ("motile", "immotile"):
        s = m[m["klass"] == k]
        filled = int((s["alh_mean_um"].notna() & s["bcf_hz"].notna()).sum())
        out.append([name, k, f"{len(s)}", q(s["vcl_um_s"]), q(s["vap_um_s"]), q(s["alh_mean_um_f"], "{:.2f}"),
                    q(s["alh_max_um_f"], "{:.2f}"), q(s["bcf_hz_f"]), f"{filled} / {len(s)}"])
    return out


# --- matching gt <-> engine (video 11) ---------------------------------------------------------

def match_pairs(gt: pd.DataFrame, eng: pd.DataFrame) -> list[tuple[int, int, np.ndarray]]:
    """``(gt id, engine id, common frames)`` for every gt track whose best engine track (the one
    holding the nearest detection <= MATCH_PX on most of its frames) shares >= MIN_PAIR_FRAMES."""
    from scipy.spatial import cKDTree

    e = eng
    if "interpolated" in e.columns:
        e = e[~e["interpolated"].astype(bool)]
    by_frame = {f: g for f, g in e.groupby("frame")}
    hits = []
    for f, g in gt.groupby("frame"):
        ef = by_frame.get(f)
        if ef is None:
            continue
        d, i = cKDTree(ef[["x", "y"]].to_numpy()).query(g[["x", "y"]].to_numpy(), distance_upper_bound=MATCH_PX)
        ok = np.isfinite(d)
        hits.append(pd.DataFrame({"gt": g["track_id"].to_numpy()[ok], "frame": f,
                                  "eng": ef["track_id"].to_numpy()[i[ok]]}))
    h = pd.concat(hits, ignore_index=True)
    pairs = []
    for gid, g in h.groupby("gt"):
        best = g["eng"].value_counts().idxmax()
        frames = np.sort(g.loc[g["eng"] == best, "frame"].to_numpy())
        if len(frames) >= MIN_PAIR_FRAMES:
            pairs.append((int(gid), int(best), frames))
    return pairs


def pair_metrics(gt: pd.DataFrame, eng: pd.DataFrame, pairs) -> pd.DataFrame:
    """Metrics of both members of each pair on their common frames (new ids = pair index)."""
    gi = gt.set_index(["track_id", "frame"])
    e = eng[~eng["interpolated"].astype(bool)] if "interpolated" in eng.columns else eng
    ei = e.set_index(["track_id", "frame"])
    gs, es = [], []
    for k, (gid, eid, frames) in enumerate(pairs):
        idx_g = pd.MultiIndex.from_arrays([np.full(len(frames), gid), frames])
        idx_e = pd.MultiIndex.from_arrays([np.full(len(frames), eid), frames])
        a = gi.loc[idx_g, ["x", "y"]].reset_index(drop=True)
        b = ei.loc[idx_e, ["x", "y"]].reset_index(drop=True)
        a["frame"] = b["frame"] = frames
        a["track_id"] = b["track_id"] = k
        gs.append(a)
        es.append(b)
    mg = metrics(pd.concat(gs, ignore_index=True)).set_index("track_id")
    me = metrics(pd.concat(es, ignore_index=True)).set_index("track_id")
    out = pd.DataFrame({"gt_id": [p[0] for p in pairs], "eng_id": [p[1] for p in pairs],
                        "frames": [len(p[2]) for p in pairs]})
    for c in ("vcl_um_s", "alh_mean_um_f", "alh_max_um_f", "bcf_hz_f", "klass"):
        out["gt_" + c] = mg[c].to_numpy()
        out["eng_" + c] = me[c].to_numpy()
    return out


def _lateral(x: np.ndarray, y: np.ndarray, w: int = LAT_WINDOW) -> np.ndarray:
    """Signed lateral offset (um) of each point from the centred ``w``-point running mean."""
    k = np.ones(w) / w
    ax, ay = np.convolve(x, k, "valid"), np.convolve(y, k, "valid")
    h = w // 2
    tx, ty = np.gradient(ax), np.gradient(ay)
    n = np.hypot(tx, ty) + 1e-12
    return ((x[h:-h] - ax) * -ty + (y[h:-h] - ay) * tx) / n


def lateral_spectra(gt: pd.DataFrame, eng: pd.DataFrame, pairs, pm: pd.DataFrame) -> dict:
    """``{(class, 'gt'|'engine'): (freqs, mean PSD um^2/Hz, n runs)}`` of the lateral offset on the
    contiguous common runs (>= LAT_MIN_RUN frames) of the matched pairs."""
    from scipy.signal import welch

    gi = gt.set_index(["track_id", "frame"])
    e = eng[~eng["interpolated"].astype(bool)] if "interpolated" in eng.columns else eng
    ei = e.set_index(["track_id", "frame"])
    acc: dict = {}
    freqs = None
    for (gid, eid, frames), klass in zip(pairs, pm["gt_klass"]):
        cuts = np.flatnonzero(np.diff(frames) != 1) + 1
        for run in np.split(frames, cuts):
            if len(run) < LAT_MIN_RUN:
                continue
            for src, tab, tid in (("gt", gi, gid), ("engine", ei, eid)):
                xy = tab.loc[pd.MultiIndex.from_arrays([np.full(len(run), tid), run]), ["x", "y"]].to_numpy() * UM_PER_PX
                freqs, pxx = welch(_lateral(xy[:, 0], xy[:, 1]), fs=FPS, nperseg=32, detrend="linear")
                acc.setdefault((klass, src), []).append(pxx)
    return {k: (freqs, np.mean(v, axis=0), len(v)) for k, v in acc.items()}


def band_rms(freqs: np.ndarray, psd: np.ndarray, lo: float, hi: float) -> float:
    """RMS (um) of the lateral offset in ``[lo, hi)`` Hz from a one-sided PSD."""
    df = freqs[1] - freqs[0]
    sel = (freqs >= lo) & (freqs < hi)
    return float(np.sqrt(psd[sel].sum() * df))


# --- synthetic --------------------------------------------------------------------------------

def synthetic(noise_um: float, seed: int = 0) -> pd.DataFrame:
    """Median ALH_mean, ALH_max, BCF and VCL per (variant, k, f); ``f = 0`` rows: noise alone."""
    from spermtrack.kinematics import compute_track_metrics

    rng = np.random.default_rng(seed)
    n = int(round(SYN_DURATION_S * FPS)) + 1
    fr = np.arange(n)
    t = fr / FPS
    variants = [("exact keyframes", False, 0.0), ("keyframes on the 1-px grid, 0.01-px file", True, 0.0),
                (f"every frame + noise {noise_um:.2f} um (our detector)", False, noise_um),
                (f"every frame + noise {SYN_NOISY_UM:.2f} um", False, SYN_NOISY_UM)]

    def run(xs: np.ndarray, ys: np.ndarray, formula: bool = False) -> dict:
        tr = pd.DataFrame({"track_id": np.repeat(np.arange(len(xs)), n), "frame": np.tile(fr, len(xs)),
                           "x": xs.ravel(), "y": ys.ravel()})
        m = metrics(tr, synthetic=True) if formula else compute_track_metrics(tr, FPS, UM_PER_PX, preset=PRESET,
                                                                               **cm_kwargs(True))
        sfx = "_f" if formula else ""
        return dict(alh_mean=med(m["alh_mean_um" + sfx]), alh_max=med(m["alh_max_um" + sfx]),
                    bcf=med(m["bcf_hz" + sfx]), vcl=med(m["vcl_um_s"]),
                    reported=f"{int(m['alh_mean_um'].notna().sum())} / {len(m)}")

    rows = []
    for f in SYN_F_HZ:
        phase = rng.uniform(0, 2 * np.pi, SYN_REPS)
        ang = rng.uniform(0, 2 * np.pi, SYN_REPS)
        off = rng.uniform(0, 1, (SYN_REPS, 2))
        lat = SYN_A_UM * np.sin(2 * np.pi * f * t[None, :] + phase[:, None])
        lon = SYN_V_UM_S * t[None, :]
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        X = (lon * c - lat * s) / UM_PER_PX + 320 + off[:, :1]
        Y = (lon * s + lat * c) / UM_PER_PX + 240 + off[:, 1:]
        for vname, grid, sig in variants:
            for k in (SYN_K if sig == 0 else (1,)):
                kf = np.arange(0, n, k)
                if kf[-1] != n - 1:
                    kf = np.r_[kf, n - 1]
                kx, ky = X[:, kf], Y[:, kf]
                if grid:
                    kx, ky = np.round(kx), np.round(ky)
                x = np.stack([np.interp(fr, kf, r) for r in kx])
                y = np.stack([np.interp(fr, kf, r) for r in ky])
                if grid:
                    x, y = np.round(x, 2), np.round(y, 2)
                if sig > 0:
                    x = x + rng.normal(0, sig / UM_PER_PX, x.shape)
                    y = y + rng.normal(0, sig / UM_PER_PX, y.shape)
                rows.append(dict(variant=vname, k=k, f=f, **run(x, y)))
    # noise alone, every frame: a straight swimmer without beat, and a still cell
    for sig in (noise_um, SYN_NOISY_UM):
        for vname, v in (("straight 40 um/s, no beat", SYN_V_UM_S), ("still cell", 0.0)):
            ang = rng.uniform(0, 2 * np.pi, SYN_REPS)[:, None]
            x = v * t[None, :] * np.cos(ang) / UM_PER_PX + 320 + rng.normal(0, sig / UM_PER_PX, (SYN_REPS, n))
            y = v * t[None, :] * np.sin(ang) / UM_PER_PX + 240 + rng.normal(0, sig / UM_PER_PX, (SYN_REPS, n))
            rows.append(dict(variant=f"{vname} + noise {sig:.2f} um", k=1, f=0.0, **run(x, y, formula=True)))
    return pd.DataFrame(rows)


# --- plot -------------------------------------------------------------------------------------

def make_plot(path: Path, gt11: pd.DataFrame, eng: pd.DataFrame, pairs, pm: pd.DataFrame, spectra: dict,
              mg: pd.DataFrame, me: pd.DataFrame, syn: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    ax = ax.ravel()
    # (a) one motile matched cell: 1 s of common frames, gt polyline vs detector centroids
    mot = [(p, r) for p, (_, r) in zip(pairs, pm.iterrows()) if r["gt_klass"] == "motile"]
    if mot:  # the pair whose gt VCL is nearest the motile pairs' median
        v_med = np.median([r["gt_vcl_um_s"] for _, r in mot])
        (gid, eid, frames), _ = min(mot, key=lambda pr: abs(pr[1]["gt_vcl_um_s"] - v_med))
        cuts = np.flatnonzero(np.diff(frames) != 1) + 1
        run = max(np.split(frames, cuts), key=len)[:50]
        g = gt11.set_index(["track_id", "frame"]).loc[pd.MultiIndex.from_arrays([np.full(len(run), gid), run])]
        e = eng.set_index(["track_id", "frame"]).loc[pd.MultiIndex.from_arrays([np.full(len(run), eid), run])]
        ax[0].plot(g["x"] * UM_PER_PX, g["y"] * UM_PER_PX, "o-", ms=2.5, lw=1, label="VISEM gt (keyframes + lines)")
        ax[0].plot(e["x"] * UM_PER_PX, e["y"] * UM_PER_PX, ".-", ms=3, lw=0.8, label="detector centroids")
        ax[0].set_aspect("equal", adjustable="datalim")
        ax[0].invert_yaxis()
        ax[0].set_xlabel("x (um)")
        ax[0].set_ylabel("y (um)")
        ax[0].set_title(f"video 11, gt id {gid} / engine id {eid}: frames {run[0]}-{run[-1]}", fontsize=9)
        ax[0].legend(fontsize=7)
    # (b) lateral-offset spectra
    for (klass, src), (f, psd, nr) in sorted(spectra.items()):
        ax[1].semilogy(f[1:], psd[1:], ("-" if src == "engine" else "--"), color="C0" if klass == "motile" else "C3",
                       label=f"{src}, {klass} ({nr} runs)")
    ax[1].set_xlabel("frequency (Hz)")
    ax[1].set_ylabel("lateral offset PSD (um^2/Hz)")
    ax[1].set_title("video 11, matched cells: lateral motion by frequency", fontsize=9)
    ax[1].legend(fontsize=7)
    # (c) BCF (formula) motile vs immotile, gt (16 videos) and engine (video 11)
    bins = np.arange(0, 40, 2.0)
    for m, lab, ls in ((mg, "gt 16 videos", "--"), (me, "engine video 11", "-")):
        for k, col in (("motile", "C0"), ("immotile", "C3")):
            v = m.loc[m["klass"] == k, "bcf_hz_f"].dropna()
            if len(v):
                ax[2].hist(v, bins=bins, density=True, histtype="step", ls=ls, color=col, label=f"{lab}, {k} (n={len(v)})")
    ax[2].set_xlabel("BCF given by the formula (Hz)")
    ax[2].set_ylabel("density")
    ax[2].set_title("BCF: immotile cells still get crossings (noise)", fontsize=9)
    ax[2].legend(fontsize=7)
    # (d) synthetic ALH and BCF against keyframe spacing
    for f, col in zip(SYN_F_HZ, ("C0", "C1", "C2")):
        s = syn[(syn["variant"] == "exact keyframes") & (syn["f"] == f)]
        ax[3].plot(s["k"], s["alh_mean"], "o-", color=col, label=f"ALH mean, {f:g} Hz beat")
        ax[3].plot(s["k"], s["bcf"] / 10, "s:", color=col, ms=3, label=f"BCF / 10 (true {2 * f:g} Hz)")
    ax[3].axhline(2 * SYN_A_UM, color="k", lw=0.7)
    ax[3].set_xlabel("keyframe spacing k (frames at 50 fps)")
    ax[3].set_ylabel("ALH (um); BCF / 10 (Hz)")
    ax[3].set_title(f"synthetic beat (true ALH {2 * SYN_A_UM:g} um), linear interpolation", fontsize=9)
    ax[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return f"{path.stat().st_size / 1024:.0f} KB"


# --- main -------------------------------------------------------------------------------------

def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(r) + " |" for r in rows] + [""])


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine-tracks", help="tracks.csv of an earlier `spermtrack analyze` of video 11 "
                                            "(default: run it into a temporary folder)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args(argv)
    if not rd.require(rd.GT_DIR) or not rd.gt_video_ids():
        return 0
    if not a.engine_tracks and not rd.require(rd.VIDEO11):
        return 0
    t_start = time.perf_counter()

    # ---- ground truth: structure and metrics of every video
    videos = rd.gt_video_ids()
    gts, structs, mets, drift = {}, {}, {}, {}
    for v in videos:
        gts[v] = rd.read_gt_tracks(v)
        # the annotators' boxes are judged in the labels' own edge coordinates (read_gt_tracks
        # returns pixel-centre ones: spermtrack.types.EDGE_OFFSET_PX)
        edge = gts[v].assign(x=gts[v]["x"] + EDGE_OFFSET_PX, y=gts[v]["y"] + EDGE_OFFSET_PX)
        structs[v] = track_structure(edge, TOL_GT_PX).assign(video=v)
        m = metrics(gts[v])
        drift[f"gt {v}"] = m.attrs.get("drift")
        mets[v] = m.assign(video=v)
    mg = pd.concat(mets.values(), ignore_index=True)
    sg = pd.concat(structs.values(), ignore_index=True)
    sg = sg.merge(mg[["video", "track_id", "klass"]], on=["video", "track_id"], how="left")

    # ---- engine, video 11
    eng, how = engine_tracks(a.engine_tracks)
    me = metrics(eng)
    drift["engine 11"] = me.attrs.get("drift")
    se = track_structure(eng, TOL_ENGINE_PX).merge(me[["track_id", "klass"]], on="track_id", how="left")
    have11 = 11 in gts
    pairs = match_pairs(gts[11], eng) if have11 else []
    pm = pair_metrics(gts[11], eng, pairs) if pairs else pd.DataFrame()
    spectra = lateral_spectra(gts[11], eng, pairs, pm) if pairs else {}

    # ---- detector noise floor: steps of the engine-immotile cells
    imm_ids = me.loc[me["klass"] == "immotile", "track_id"]
    e_meas = eng[~eng["interpolated"].astype(bool)] if "interpolated" in eng.columns else eng
    sig_msd, zero_steps = [], []
    for _, g in e_meas[e_meas["track_id"].isin(imm_ids)].sort_values(["track_id", "frame"]).groupby("track_id"):
        ok = np.diff(g["frame"].to_numpy()) == 1
        d = np.c_[np.diff(g["x"].to_numpy()), np.diff(g["y"].to_numpy())][ok] * UM_PER_PX
        if len(d) >= 10:
            sig_msd.append(np.sqrt(np.mean(d ** 2) / 2))  # per axis: var(step) = 2 sigma^2
            zero_steps.append(np.mean(np.all(d == 0, axis=1)))
    sigma = med(sig_msd)
    syn_sigma = round(sigma, 2) if np.isfinite(sigma) and sigma > 0 else 0.05
    syn = synthetic(noise_um=syn_sigma)

    # ==== page
    lines = rd.header("Kinematics on real tracks: what VCL, ALH and BCF can resolve", __file__, argv)
    lines += [f"Data: the {len(videos)} official VISEM-Tracking gt files `{rd.rel(rd.GT_DIR)}/videoNN_gt_mot.txt.gz` "
              f"(videos {', '.join(map(str, videos))}; sperm class) and the engine's tracks of the real video "
              f"`{rd.rel(rd.VIDEO11)}`: {how}. All at {FPS:g} fps and {UM_PER_PX} um/px (assumed; every "
              f"length and speed scales with it, BCF does not), preset `{PRESET}`, average-path window "
              "5 points. *Motile* = graded rapid / slow / non-progressive by `compute_track_metrics`, "
              "*immotile* = graded immotile; tracks shorter than 0.5 s (not graded) are left out of the "
              "class tables. *Formula* ALH / BCF: the plain-numpy reference of the definitions "
              "(`tests/kinematics_reference.py`), which applies no reporting rule, so that the value an "
              "immotile cell would get stays visible; *reported*: what `compute_track_metrics` returns.", ""]
    applied = {k: d for k, d in drift.items() if isinstance(d, dict) and d.get("applied")}
    if any(d is not None for d in drift.values()):
        lines += ["Field drift (`compute_track_metrics`, `drift='auto'`): subtracted on "
                  + (", ".join(f"{k} (median {d.get('median_speed_um_s', float('nan')):.1f} um/s)" for k, d in applied.items())
                     if applied else "none of the inputs")
                  + "; the formula columns use the positions as given.", ""]

    # 1. structure
    lines += ["## 1. How the ground-truth positions were made", "",
              "A frame is *interpolated* when its position is the linear interpolation of its two "
              f"neighbours within the file's rounding (|second difference| <= {TOL_GT_PX:.2f} px in x and y; "
              f"{TOL_ENGINE_PX:.3f} px for the engine's 0.001-px centroids), counted among *moving* frames "
              "(frames whose two adjacent steps are both exactly 0 are *still*, counted apart). *exact 0*: "
              "the same test without tolerance (misses the interpolations whose 0.01-px rounding left a "
              "second difference of 0.01 px). Keyframes are the other frames (and track ends); *spacing*: "
              "frames between consecutive keyframes of motile tracks; *frames in spacing >= 3*: share of "
              "motile-track frames on a straight segment of 3 frames or more (a 10 Hz beat at 50 fps "
              "needs a sample at least every 2.5 frames). *int corners*: box corner (left, top) on whole "
              "pixels. *steps > 5 px*: one-frame steps above 5 px (125 um/s).", ""]
    head = ["source", "tracks", "boxes", "still %", "interpolated % of moving", "exact 0 %", "spacing median",
            "spacing p90", "frames in spacing >= 3 %", "keyframes int corners %", "interpolated int corners %",
            "steps > 5 px %"]
    rows = [structure_row(f"gt {v}", structs[v], mets[v].loc[mets[v]["klass"] == "motile", "track_id"])
            for v in videos]
    sg_all = sg.assign(track_id=np.arange(len(sg)))
    rows.append(["**gt, all videos**"] + structure_row("", sg_all, sg_all.loc[sg_all["klass"] == "motile", "track_id"])[1:])
    rows.append(["**engine, video 11**"] + structure_row("", se, se.loc[se["klass"] == "motile", "track_id"])[1:])
    lines += table(head, rows)
    moving = sg["triples"].sum() - sg["still"].sum()
    gt_interp = 100 * sg["interp"].sum() / moving
    gt_exact = 100 * sg["interp_exact"].sum() / moving
    e_interp = 100 * se["interp"].sum() / max(1, se["triples"].sum() - se["still"].sum())
    key_int = 100 * sg["key_int"].sum() / max(1, sg["key"].sum())
    itp_int = 100 * sg["interp_int"].sum() / max(1, sg["interp"].sum())
    spm = np.concatenate(list(sg.loc[sg["klass"] == "motile", "spacings"]))
    spm = spm[spm > 0]
    long_share = 100 * spm[spm >= 3].sum() / spm.sum()
    lines += [f"Over the {len(videos)} videos **{gt_interp:.1f} %** of the moving gt frames are linear "
              f"interpolations ({gt_exact:.1f} % by an exact-zero test: the 0.01-px rounding hides the "
              f"rest). **{key_int:.1f} %** of the keyframes have their box corner on whole pixels (drawn by "
              f"hand on the pixel grid), {itp_int:.1f} % of the interpolated frames. On motile tracks the "
              f"median keyframe spacing is **{np.median(spm):.0f} frames** ({np.median(spm) / FPS * 1000:.0f} ms; "
              f"p90 {np.percentile(spm, 90):.0f}) and {long_share:.0f} % of the frames lie on straight "
              f"segments of 3 frames or more. The engine's centroids of video 11: {e_interp:.1f} % of the "
              "moving frames pass the same test (chance): every frame is a measurement, and its spacings of 3 "
              "frames or more are detection gaps (the tracker's interpolated rows are dropped), not straight "
              "segments.", ""]

    # 2. per video
    lines += ["## 2. Per video: keyframe spacing against ALH and BCF of the motile gt cells", "",
              "Medians over the motile tracks of each video (formula ALH / BCF). Immotile: the median "
              "formula BCF of the immotile tracks.", ""]
    head = ["video", "motile", "immotile", "spacing median", "VCL um/s", "ALH mean um", "ALH max um", "BCF Hz",
            "BCF immotile Hz"]
    rows, per_video = [], []
    for v in videos:
        m, s_ = mets[v], sg[sg["video"] == v]
        mot_m, imm_m = m[m["klass"] == "motile"], m[m["klass"] == "immotile"]
        sp = np.concatenate(list(s_.loc[s_["klass"] == "motile", "spacings"])) if (s_["klass"] == "motile").any() else np.zeros(0)
        sp = sp[sp > 0]
        r = dict(video=v, spacing=np.median(sp) if sp.size else np.nan, alh=med(mot_m["alh_mean_um_f"]),
                 alhmax=med(mot_m["alh_max_um_f"]), bcf=med(mot_m["bcf_hz_f"]), vcl=med(mot_m["vcl_um_s"]))
        per_video.append(r)
        rows.append([f"{v}", f"{len(mot_m)}", f"{len(imm_m)}", f"{r['spacing']:.0f}", f"{r['vcl']:.1f}",
                     f"{r['alh']:.2f}", f"{r['alhmax']:.2f}", f"{r['bcf']:.1f}", f"{med(imm_m['bcf_hz_f']):.1f}"])
    lines += table(head, rows)
    pv = pd.DataFrame(per_video).dropna()
    if len(pv) >= 5:
        rs = {c: spearmanr(pv["spacing"], pv[c]) for c in ("alh", "alhmax", "bcf", "vcl")}
        lines += ["Spearman correlation over the videos between the keyframe spacing and the median motile "
                  + ", ".join(f"{lab} rho = {rs[c].statistic:+.2f} (p = {rs[c].pvalue:.2g})"
                              for c, lab in (("alh", "ALH mean"), ("alhmax", "ALH max"), ("bcf", "BCF"),
                                             ("vcl", "VCL"))) + f" (n = {len(pv)} videos).", ""]

    # 3. class table
    lines += ["## 3. Per-track VCL, VAP, ALH, BCF: motile versus immotile", "",
              "median [p10, p90] over tracks; VCL and VAP as reported, ALH and BCF from the formula; "
              "*ALH & BCF reported*: tracks for which `compute_track_metrics` returns both (not NaN).", ""]
    head = ["tracks", "class", "n", "VCL um/s", "VAP um/s", "ALH mean um", "ALH max um", "BCF Hz",
            "ALH & BCF reported"]
    rows = metric_rows("gt, all videos", mg) + (metric_rows("gt, video 11", mets[11]) if have11 else []) \
        + metric_rows("engine, video 11", me)
    lines += table(head, rows)

    # 4. same cells
    if len(pm):
        lines += ["## 4. Same cells, same frames (video 11)", "",
                  f"{len(pm)} gt tracks of video 11 matched to an engine track (nearest detection <= "
                  f"{MATCH_PX:g} px on most frames) with >= {MIN_PAIR_FRAMES} common frames; both cut to "
                  "the common frames; median [p10, p90]; class from the gt segment; *VCL ratio*: engine / "
                  "gt per pair.", ""]
        head = ["class (gt)", "pairs", "common frames", "VCL gt", "VCL engine", "VCL ratio engine/gt",
                "ALH mean gt", "ALH mean engine", "ALH max gt", "ALH max engine", "BCF gt", "BCF engine"]
        rows = []
        for k in ("motile", "immotile"):
            p = pm[pm["gt_klass"] == k]
            if not len(p):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = p["eng_vcl_um_s"] / p["gt_vcl_um_s"]
            rows.append([k, f"{len(p)}", q(p["frames"], "{:.0f}"), q(p["gt_vcl_um_s"]), q(p["eng_vcl_um_s"]),
                         q(ratio, "{:.2f}"), q(p["gt_alh_mean_um_f"], "{:.2f}"), q(p["eng_alh_mean_um_f"], "{:.2f}"),
                         q(p["gt_alh_max_um_f"], "{:.2f}"), q(p["eng_alh_max_um_f"], "{:.2f}"),
                         q(p["gt_bcf_hz_f"]), q(p["eng_bcf_hz_f"])])
        lines += table(head, rows)
        lines += ["Lateral motion by frequency on the same pairs: signed offset of each point from the "
                  f"{LAT_WINDOW}-point ({LAT_WINDOW / FPS:.2f} s) running mean, Welch PSD (32-frame segments) "
                  f"of every contiguous common run of >= {LAT_MIN_RUN} frames, averaged over runs; RMS offset "
                  "(um) per band. The engine's immotile cells are the detector's noise floor.", ""]
        head = ["tracks", "runs"] + [f"{lo:g}-{min(hi, FPS / 2):g} Hz" for lo, hi in BANDS_HZ]
        rows = []
        for klass in ("motile", "immotile"):
            for src in ("gt", "engine"):
                if (klass, src) in spectra:
                    f, psd, nr = spectra[(klass, src)]
                    rows.append([f"{src}, {klass}", f"{nr}"] + [f"{band_rms(f, psd, lo, hi):.3f}" for lo, hi in BANDS_HZ])
        if ("motile", "engine") in spectra and ("immotile", "engine") in spectra:
            fm, pmot, _ = spectra[("motile", "engine")]
            _, pimm, _ = spectra[("immotile", "engine")]
            rows.append(["engine motile / noise floor", ""] + [
                f"{band_rms(fm, pmot, lo, hi) / max(band_rms(fm, pimm, lo, hi), 1e-12):.1f}x" for lo, hi in BANDS_HZ])
        if ("motile", "engine") in spectra and ("motile", "gt") in spectra:
            fm, pe, _ = spectra[("motile", "engine")]
            _, pg, _ = spectra[("motile", "gt")]
            rows.append(["gt motile / engine motile", ""] + [
                f"{band_rms(fm, pg, lo, hi) / max(band_rms(fm, pe, lo, hi), 1e-12):.2f}x" for lo, hi in BANDS_HZ])
        lines += table(head, rows)

    # 5. noise floor
    imm, mot = me[me["klass"] == "immotile"], me[me["klass"] == "motile"]
    alh95 = float(np.nanpercentile(imm["alh_mean_um_f"], 95)) if imm["alh_mean_um_f"].notna().any() else np.nan
    above = float((mot["alh_mean_um_f"] > alh95).mean() * 100) if len(mot) else np.nan
    bcf_lo = float(np.nanpercentile(imm["bcf_hz_f"], 10)) if imm["bcf_hz_f"].notna().any() else np.nan
    in_noise = float((mot["bcf_hz_f"] >= bcf_lo).mean() * 100) if len(mot) else np.nan
    gimm, gmot = mg[mg["klass"] == "immotile"], mg[mg["klass"] == "motile"]
    lines += ["## 5. Noise floor", "",
              f"Detector centroids, the {len(imm)} engine-immotile cells of video 11: localisation noise "
              f"sigma = **{sigma:.3f} um** per axis ({sigma / UM_PER_PX:.2f} px; median over cells of "
              f"sqrt(mean squared step / 2)); {100 * med(zero_steps):.0f} % of their steps are exactly 0 "
              f"(identical pixels), so the noise is heavy-tailed and their VCL, {q(imm['vcl_um_s'])} um/s, is "
              f"below sigma sqrt(pi) fps = {sigma * np.sqrt(np.pi) * FPS:.1f} um/s. Formula on these still "
              f"cells: BCF {q(imm['bcf_hz_f'])} Hz (crossings of noise, near fps / 2 = {FPS / 2:g} Hz), ALH "
              f"mean {q(imm['alh_mean_um_f'], '{:.2f}')} um, ALH max {q(imm['alh_max_um_f'], '{:.2f}')} um "
              f"(the tail: short jumps to a neighbour). {above:.0f} % of the {len(mot)} engine-motile cells "
              f"have an ALH mean above the immotile 95th percentile ({alh95:.2f} um); {in_noise:.0f} % have "
              f"a BCF at or above the immotile 10th percentile ({bcf_lo:.1f} Hz).", "",
              f"Ground truth, all videos: immotile cells get a formula BCF of {q(gimm['bcf_hz_f'])} Hz from "
              f"ALH means of {q(gimm['alh_mean_um_f'], '{:.3f}')} um, i.e. crossings of the 0.01-px rounding "
              f"and of sub-pixel drift; motile cells BCF {q(gmot['bcf_hz_f'])} Hz, ALH mean "
              f"{q(gmot['alh_mean_um_f'], '{:.2f}')} um.", ""]

    # 6. synthetic
    lines += ["## 6. Synthetic: a known beat, then keyframes + linear interpolation", "",
              f"Straight path at {SYN_V_UM_S:g} um/s plus a lateral sine of amplitude {SYN_A_UM:g} um (true "
              f"ALH = {2 * SYN_A_UM:g} um) at f = {', '.join(f'{f:g}' for f in SYN_F_HZ)} Hz (true BCF = 2 f "
              f"crossings/s), {SYN_DURATION_S:g} s at {FPS:g} fps, {SYN_REPS} tracks per cell (random phase, "
              "direction, sub-pixel offset); the position is kept every k frames and linearly interpolated "
              "in between. Medians of `compute_track_metrics`: ALH mean / BCF (Hz) / VCL as % of the "
              "every-frame exact path's VCL.", ""]
    head = ["positions", "k"] + [f"{f:g} Hz: ALH mean / BCF / VCL %" for f in SYN_F_HZ]
    syn_b = syn[syn["f"] > 0]
    ref_vcl = {f: syn_b[(syn_b["variant"] == "exact keyframes") & (syn_b["k"] == 1) & (syn_b["f"] == f)]["vcl"].iat[0]
               for f in SYN_F_HZ}
    rows = []
    for (vname, k), s_ in syn_b.groupby(["variant", "k"], sort=False):
        cells = []
        for f in SYN_F_HZ:
            r = s_[s_["f"] == f].iloc[0]
            cells.append(f"{r['alh_mean']:.2f} / {r['bcf']:.1f} / {100 * r['vcl'] / ref_vcl[f]:.0f}")
        rows.append([vname, f"{k}"] + cells)
    lines += table(head, rows)
    lines += ["Noise alone (no beat), every frame; formula ALH / BCF:", ""]
    head = ["track", "ALH mean um", "ALH max um", "BCF Hz", "VCL um/s", "ALH reported"]
    lines += table(head, [[r.variant, f"{r.alh_mean:.2f}", f"{r.alh_max:.2f}", f"{r.bcf:.1f}", f"{r.vcl:.1f}",
                           r.reported] for r in syn[syn["f"] == 0].itertuples()])

    if not a.no_plot and not a.no_write:
        size = make_plot(PLOT, gts.get(11, mg.iloc[:0]), eng, pairs, pm, spectra, mg, me, syn)
        lines += [f"Plot: `benchmarks/results/{PLOT.name}` ({size}): (a) one motile cell of video 11, gt "
                  "polyline against detector centroids on the same frames; (b) lateral-offset spectra of "
                  "the matched cells; (c) formula BCF of motile and immotile cells; (d) synthetic ALH and BCF "
                  "against the keyframe spacing.", ""]
    lines += [f"Run time: {time.perf_counter() - t_start:.0f} s.", ""]
    rd.publish(OUT, lines, write=not a.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
