"""Motility grading against the lab's manual WHO assessment, on the official tracks of 16 real
VISEM-Tracking videos (perfect tracking: every point of error is the grader's or the sample's).

What it measures and writes (``benchmarks/results/motility_real.md``):

1. Every preset (``who2021`` default, ``who2021-literal``, ``hamilton-thorne``, ``casa-gui``),
   both aggregation modes: per-video progressive / non-progressive / immotile vs the lab, MAE and
   bias per class.
2. The default rule's leave-one-video-out validation: for each video, the window rule's free
   parameters (look length, progressive speed, straightness, still speed) are chosen on the 15
   other videos (grid search, mean absolute error over the three classes) and the held-out video
   is scored with them. The rule fitted on all 16 is the shipped default; the script checks that
   ``spermtrack.kinematics.grading.WHO2021_WINDOWS`` equals it.
3. The floor set by sampling alone: the expected MAE of a perfect grader that sees as many cells
   as the true tracks hold, drawn from the lab's proportions.
4. Field drift per video (``spermtrack.kinematics.drift``) and the effect of the scale
   (0.4 / 0.5 / 0.6 um/px) on the default's errors.

Usage: ``python benchmarks/motility_real.py [--no-write]``. Needs ``../shared/data/visem/gt`` and
``visem_tracking_20_motility.csv``; skips with a message when absent.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata as rd  # noqa: E402

from spermtrack.kinematics import compute_track_metrics, kernels, summarize_motility  # noqa: E402
from spermtrack.kinematics.drift import estimate_drift  # noqa: E402
from spermtrack.kinematics.grading import WHO2021_WINDOWS, WindowRule  # noqa: E402

CLINICAL = rd.VISEM / "visem_tracking_20_motility.csv"
OUT = rd.RESULTS / "motility_real.md"
FPS, UM_PER_PX, MIN_DURATION_S = 50.0, 0.5, 0.5
CLASSES = ("progressive", "non_progressive", "immotile")
SHORT = {"progressive": "PR", "non_progressive": "NP", "immotile": "IM"}
PRESETS = ("who2021", "who2021-literal", "hamilton-thorne", "casa-gui")
#: The grid searched inside every leave-one-out fold (and on all 16 for the shipped default).
GRID = dict(window_s=(1.0, 1.5, 2.0), progressive_um_s=(8.0, 10.0, 12.0, 15.0, 18.0, 20.0, 22.0, 25.0),
            straightness_min=(0.5, 0.6, 0.7, 0.8, 0.9), still_um_s=(2.0, 3.0, 4.0, 5.0, 6.0))


class Video:
    """One video's drift-corrected points in the kernel's CSR layout."""

    def __init__(self, vid: int, tracks: pd.DataFrame, um_per_px: float = UM_PER_PX):
        t = tracks.sort_values(["track_id", "frame"], kind="stable")
        self.vid, self.tracks = vid, t
        self.tid = t["track_id"].to_numpy(np.int64)
        self.frame = t["frame"].to_numpy(np.int64)
        x, y = t["x"].to_numpy(np.float64), t["y"].to_numpy(np.float64)
        dx, dy, self.drift = estimate_drift(self.tid, self.frame, x, y, FPS, um_per_px)
        self.x, self.y = x - dx[self.frame], y - dy[self.frame]
        self.offsets = kernels.track_offsets(self.tid)
        span = self.frame[self.offsets[1:] - 1] - self.frame[self.offsets[:-1]]
        self.graded = span / FPS >= MIN_DURATION_S
        self.um_per_px = um_per_px

    def shares(self, rule: WindowRule) -> np.ndarray:
        """Sample % (PR, NP, IM) in track mode: each graded cell split by its time fractions."""
        f = kernels.window_grade_kernel(self.x, self.y, self.frame, self.offsets, self.um_per_px,
                                        rule.window_s * FPS, rule.n_steps, rule.progressive_um_s / FPS,
                                        rule.straightness_min, rule.still_um_s / FPS)
        return 100.0 * np.nanmean(f[self.graded], axis=0)


def lab_table() -> dict[int, np.ndarray]:
    c = pd.read_csv(CLINICAL).set_index("ID")
    return {int(i): c.loc[i, ["progressive_pct", "non_progressive_pct", "immotile_pct"]].to_numpy(np.float64)
            for i in c.index}


def preset_shares(tracks: pd.DataFrame, preset: str, aggregate: str, um_per_px: float = UM_PER_PX,
                  drift: str = "auto"):
    m = compute_track_metrics(tracks, FPS, um_per_px, preset=preset, min_duration_s=MIN_DURATION_S, drift=drift)
    s = summarize_motility(m, aggregate=aggregate)
    return np.array([s.pct(q) for q in CLASSES]), s, m


def errors_block(title: str, pred: dict[int, np.ndarray], lab: dict[int, np.ndarray]) -> tuple[list[str], np.ndarray]:
    vids = sorted(pred)
    err = np.array([pred[v] - lab[v] for v in vids])
    lines = [f"**{title}**: MAE PR / NP / IM = " + " / ".join(f"{e:.1f}" for e in np.abs(err).mean(0))
             + f" (mean {np.abs(err).mean():.1f}); bias " + " / ".join(f"{e:+.1f}" for e in err.mean(0)), ""]
    return lines, err


def sampling_floor(vids, lab, n_cells) -> tuple[np.ndarray, np.ndarray]:
    """Expected MAE and RMSE per class of a perfect grader seeing ``n_cells`` cells drawn from
    the lab's proportions (multinomial, 20,000 draws per video)."""
    rng = np.random.default_rng(0)
    mae, mse = [], []
    for v in vids:
        n = max(1, n_cells[v])
        draws = rng.multinomial(n, lab[v] / lab[v].sum(), size=20000) / n * 100 - lab[v]
        mae.append(np.abs(draws).mean(0))
        mse.append((draws ** 2).mean(0))
    return np.mean(mae, axis=0), np.sqrt(np.mean(mse, axis=0))


def rule_grid() -> list[WindowRule]:
    keys = list(GRID)
    return [replace(WHO2021_WINDOWS, **dict(zip(keys, vals))) for vals in itertools.product(*GRID.values())]


def best_rule(scores: np.ndarray, rows: list[int]) -> int:
    """Index of the rule with the lowest mean absolute error over ``rows`` (first on ties)."""
    return int(np.argmin(scores[:, rows].mean(axis=1)))


def plot(vids, lab, loo_pred, literal) -> Path:
    """Lab vs graded, one panel per class: the default's LOO predictions and the literal formula."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spermtrack.io.atomic import atomic_path

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    for c, ax in enumerate(axes):
        ax.plot([0, 100], [0, 100], color="0.7", lw=1)
        ax.scatter([lab[v][c] for v in vids], [literal[v][c] for v in vids], marker="x", color="tab:red",
                   label="who2021-literal (formula)")
        ax.scatter([lab[v][c] for v in vids], [loo_pred[v][c] for v in vids], color="tab:blue",
                   label="who2021 (leave-one-video-out)")
        for v in vids:
            ax.annotate(str(v), (lab[v][c], loo_pred[v][c]), fontsize=7, xytext=(2, 2), textcoords="offset points")
        ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="lab (manual WHO) %", ylabel="graded from true tracks %",
               title=CLASSES[c].replace("_", "-"))
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    out = rd.RESULTS / "motility_real.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only, do not write the results file")
    args = ap.parse_args(argv)
    if not rd.require(rd.GT_DIR, CLINICAL):
        return 0
    t0 = time.time()
    lab = lab_table()
    vids = [v for v in rd.gt_video_ids() if v in lab]
    tracks = {v: rd.read_gt_tracks(v) for v in vids}
    videos = {v: Video(v, tracks[v]) for v in vids}
    n_cells = {v: int(videos[v].graded.sum()) for v in vids}

    # 2. leave-one-video-out over the grid
    grid = rule_grid()
    shares = np.array([[videos[v].shares(r) for v in vids] for r in grid])  # (rules, videos, 3)
    labs = np.array([lab[v] for v in vids])
    abs_err = np.abs(shares - labs[None]).mean(axis=2)  # (rules, videos)
    loo_pred, loo_rule = {}, {}
    for i, v in enumerate(vids):
        k = best_rule(abs_err, [j for j in range(len(vids)) if j != i])
        loo_pred[v], loo_rule[v] = shares[k, i], grid[k]
    k_all = best_rule(abs_err, list(range(len(vids))))
    fitted = grid[k_all]
    shipped_ok = all(getattr(fitted, k) == getattr(WHO2021_WINDOWS, k) for k in GRID)

    lines = rd.header("Motility grading vs the lab's manual WHO assessment (16 real VISEM-Tracking videos, true tracks)",
                      "motility_real.py", argv)
    lines += [
        f"Data: official sperm tracks `{rd.rel(rd.GT_DIR)}/videoNN_gt_mot.txt.gz` of videos "
        f"{', '.join(map(str, vids))}; lab values `{rd.rel(CLINICAL)}` (progressive = WHO a + b). "
        f"{FPS:g} fps, {UM_PER_PX:g} um/px (VISEM publishes no scale; 0.5 is the head-size estimate), "
        f"tracks shorter than {MIN_DURATION_S:g} s not graded. Graded cells per video: "
        + ", ".join(f"{v}: {n_cells[v]}" for v in vids) + ".",
        "",
        "The lab assessed motility by hand on the sample, not on these tracks; the annotators tracked "
        "in-focus sperm only, so even a perfect grader differs from the lab by the sampling error "
        "(section 3).",
        "",
        "## Targets (issue 11; leave-one-video-out, true tracks, track mode)",
        "",
    ]
    loo_lines, loo_err = errors_block("who2021 rule, leave-one-video-out", loo_pred, lab)
    mae = np.abs(loo_err).mean(0)
    bias = loo_err.mean(0)
    lines += [
        f"- mean MAE over PR / NP / IM <= 8 points: {mae.mean():.1f} -> {rd.verdict(mae.mean() <= 8)}",
        "- no class above 10 points: " + " / ".join(f"{m:.1f}" for m in mae) + f" -> {rd.verdict(bool((mae <= 10).all()))}",
        "- bias within +-3 points per class: " + " / ".join(f"{b:+.1f}" for b in bias)
        + f" -> {rd.verdict(bool((np.abs(bias) <= 3).all()))}",
        "",
        "## 1. Leave-one-video-out validation of the default rule",
        "",
        "For each video the rule's four free parameters are chosen on the other 15 videos (grid: "
        + "; ".join(f"{k} {', '.join(f'{x:g}' for x in vals)}" for k, vals in GRID.items())
        + "; objective: mean absolute error over PR / NP / IM, averaged over videos) and the video "
          "is scored with them. Field drift is estimated and subtracted first.",
        "",
        *loo_lines,
        "| video | cells | lab PR / NP / IM | LOO PR / NP / IM | error PR / NP / IM | rule chosen without it (window s, PR um/s, straightness, still um/s) |",
        "|---|---|---|---|---|---|",
    ]
    for i, v in enumerate(vids):
        r = loo_rule[v]
        lines.append(f"| {v} | {n_cells[v]} | {' / '.join(f'{x:.0f}' for x in lab[v])} | "
                     f"{' / '.join(f'{x:.1f}' for x in loo_pred[v])} | {' / '.join(f'{x:+.1f}' for x in loo_err[i])} | "
                     f"{r.window_s:g}, {r.progressive_um_s:g}, {r.straightness_min:g}, {r.still_um_s:g} |")
    rmse = np.sqrt((loo_err ** 2).mean(0))
    floor_mae, floor_rmse = sampling_floor(vids, lab, n_cells)
    own = np.sqrt(np.maximum(0.0, rmse ** 2 - floor_rmse ** 2))
    shipped_rmse = dict(WHO2021_WINDOWS.loo_rmse_pct)
    rmse_ok = all(abs(shipped_rmse.get(q, np.nan) - round(float(o), 1)) < 0.051 for q, o in zip(CLASSES, own))
    lines += [
        "",
        f"LOO root-mean-square error PR / NP / IM: {' / '.join(f'{x:.1f}' for x in rmse)} points; of which "
        f"sampling alone (section 3) explains {' / '.join(f'{x:.1f}' for x in floor_rmse)}; the grader's own "
        f"error (in quadrature, the rest): {' / '.join(f'{x:.1f}' for x in own)} points. This is the "
        "`grader_rmse_pct` every summary quotes and widens its `agreement95` interval with ("
        + ("`WHO2021_WINDOWS.loo_rmse_pct` matches it)." if rmse_ok else
           f"**`WHO2021_WINDOWS.loo_rmse_pct` {shipped_rmse} does NOT match it: update grading.py**)."),
        "",
        f"Fitted on all 16 videos (the shipped default): window {fitted.window_s:g} s, progressive >= "
        f"{fitted.progressive_um_s:g} um/s, straightness >= {fitted.straightness_min:g}, still < "
        f"{fitted.still_um_s:g} um/s; in-sample MAE {abs_err[k_all].mean():.1f}. "
        + ("`WHO2021_WINDOWS` matches it." if shipped_ok else
           f"**`WHO2021_WINDOWS` ({WHO2021_WINDOWS}) does NOT match it: update grading.py.**"),
        "",
    ]

    # 1. every preset, both modes
    lines += ["## 2. Every preset on the true tracks", ""]
    preset_pred: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for preset in PRESETS:
        for agg in ("track", "window"):
            preset_pred[(preset, agg)] = {v: preset_shares(tracks[v], preset, agg)[0] for v in vids}
            lines += errors_block(f"{preset}, {agg} mode (in-sample for who2021)", preset_pred[(preset, agg)], lab)[0]
    lines += ["| video | lab PR / NP / IM | " + " | ".join(f"{p} (track)" for p in PRESETS) + " |",
              "|---|---|" + "---|" * len(PRESETS)]
    for v in vids:
        lines.append(f"| {v} | {' / '.join(f'{x:.0f}' for x in lab[v])} | "
                     + " | ".join(" / ".join(f"{x:.0f}" for x in preset_pred[(p, 'track')][v]) for p in PRESETS) + " |")
    direct = np.array([videos[v].shares(WHO2021_WINDOWS) for v in vids])
    via_api = np.array([preset_pred[("who2021", "track")][v] for v in vids])
    lines += ["", f"Check: the fit's direct kernel path and `compute_track_metrics` + `summarize_motility` "
                  f"agree to {np.abs(direct - via_api).max():.2g} points.", ""]

    # 3. sampling floor
    floor = floor_mae
    lines += ["## 3. The sampling floor", "",
              "A perfect grader that sees as many cells as each video's true tracks hold, drawn at random "
              f"from the lab's proportions, is expected to miss the lab by MAE PR / NP / IM "
              f"{' / '.join(f'{x:.1f}' for x in floor)} (mean {floor.mean():.1f}) points: the targets' "
              "8 points leave little room above it. The annotators' choice of cells (in focus, mostly motile "
              "in some videos: 47 has 19 tracked cells for a lab immotile share of 46 %) adds to it.", ""]

    # 4. drift and scale
    lines += ["## 4. Field drift and scale", "",
              "| video | drift applied | median drift um/s | p90 um/s | frames with a still group % | reason |",
              "|---|---|---|---|---|---|"]
    for v in vids:
        d = videos[v].drift
        lines.append(f"| {v} | {'yes' if d.applied else 'no'} | {d.median_speed_um_s:.2f} | {d.p90_speed_um_s:.2f} | "
                     f"{d.frames_estimated_pct:.0f} | {d.reason} |")
    lines += [""]
    pred = {v: preset_shares(tracks[v], "who2021", "track", drift="none")[0] for v in vids}
    lines += errors_block("who2021 (shipped rule) without drift subtraction", pred, lab)[0]
    for scale in (0.4, 0.5, 0.6):
        pred = {v: preset_shares(tracks[v], "who2021", "track", scale)[0] for v in vids}
        lines += errors_block(f"who2021 (shipped rule) at {scale:g} um/px", pred, lab)[0]
    if not args.no_write:
        png = plot(vids, lab, loo_pred, preset_pred[("who2021-literal", "track")])
        lines += [f"Plot: `{rd.rel(png)}` (lab vs graded per class, every video).", ""]
    lines += [f"Total run time {(time.time() - t0) / 60:.1f} min."]
    rd.publish(OUT, lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
