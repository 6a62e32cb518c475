"""The report's figures, drawn with matplotlib's Agg backend (no display needed), written
atomically as PNG.

- :func:`plot_trajectories`: every track over a frame of the video, coloured by grade;
- :func:`plot_vcl_vsl`: VCL against VSL per track with the preset's gates;
- :func:`plot_grades`: the grade shares with 95 % CIs against the WHO lower reference limits;
- :func:`plot_morphometry`: head length against width with the reference box (when measured);
- :func:`plot_gallery`: a grid of head crops labelled with track id and grade;
- :func:`plot_distributions`: box plots of VCL, VSL, VAP, LIN, STR, WOB, ALH, BCF (MAD) for all
  graded cells against the motile ones (:func:`draw_distributions` draws them into any axes, e.g.
  a PDF page).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spermtrack.io.atomic import atomic_path  # noqa: E402
from spermtrack.report import GRADE_COLORS, GRADE_LABELS, MOTILE_GRADES, human_column, kinematic_columns  # noqa: E402

DPI = 110
_ORDER = ("rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded")


def _save(fig, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _grade_of(metrics: pd.DataFrame) -> dict[int, str]:
    return dict(zip(metrics["track_id"].astype(int), metrics["grade"].astype(str)))


def plot_trajectories(path: str | Path, tracks: pd.DataFrame, metrics: pd.DataFrame, *,
                      background: np.ndarray | None = None, width: int | None = None,
                      height: int | None = None, title: str = "") -> Path:
    """Every track's smoothed path over ``background`` (a gray frame), coloured by grade.

    Each track ends in a dot (its last position) so direction is visible.
    """
    grade = _grade_of(metrics)
    h = height or (background.shape[0] if background is not None else int(tracks["y"].max() + 1))
    w = width or (background.shape[1] if background is not None else int(tracks["x"].max() + 1))
    fig, ax = plt.subplots(figsize=(7.5, 7.5 * h / max(w, 1) + 0.4))
    if background is not None:
        ax.imshow(background, cmap="gray", vmin=0, vmax=255, alpha=0.55, interpolation="nearest")
    xs = "x_smooth" if "x_smooth" in tracks.columns else "x"
    ys = "y_smooth" if "y_smooth" in tracks.columns else "y"
    counts = {g: 0 for g in _ORDER}
    for tid, t in tracks.groupby("track_id", sort=False):
        g = grade.get(int(tid), "not_graded")
        counts[g] = counts.get(g, 0) + 1
        ax.plot(t[xs].to_numpy(), t[ys].to_numpy(), "-", lw=1.1, color=GRADE_COLORS[g], alpha=0.9)
        ax.plot(t[xs].iloc[-1], t[ys].iloc[-1], "o", ms=2.5, color=GRADE_COLORS[g])
    handles = [plt.Line2D([], [], color=GRADE_COLORS[g], lw=2, label=f"{GRADE_LABELS[g]} ({counts[g]})")
               for g in _ORDER if counts.get(g)]
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.85)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(title or "Trajectories by grade (dot = last position)", fontsize=10)
    return _save(fig, path)


def plot_vcl_vsl(path: str | Path, metrics: pd.DataFrame, *, preset: str = "who2021") -> Path:
    """VCL against VSL per graded track; dashed lines are the gates that can be drawn on these axes.

    WHO 2021 grades on progression (VSL over 1-s windows), so its 5 and 25 um/s lines are a guide
    on whole-track VSL; hyperactivation needs VCL >= 150 and LIN <= 50 % (the diagonal).
    """
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    for g in _ORDER:
        m = metrics[metrics["grade"].astype(str) == g]
        if len(m):
            ax.scatter(m["vcl_um_s"], m["vsl_um_s"], s=14, color=GRADE_COLORS[g], alpha=0.85,
                       edgecolors="none", label=f"{GRADE_LABELS[g]} ({len(m)})")
    vmax = float(np.nanmax(np.r_[metrics["vcl_um_s"].to_numpy(float), 200.0]))
    ax.plot([0, vmax], [0, vmax], color="0.6", lw=0.8)
    ax.plot([0, vmax], [0, vmax / 2], color="0.6", lw=0.8, ls=":")
    ax.text(vmax * 0.98, vmax * 0.49, "LIN 50 %", ha="right", va="top", fontsize=7, color="0.4")
    if preset == "who2021":
        for v, lab in ((25, "rapid >= 25"), (5, "progressive >= 5")):
            ax.axhline(v, color="k", lw=0.9, ls="--")
            ax.text(vmax * 0.98, v + 1, f"{lab} um/s (on progression)", ha="right", va="bottom", fontsize=7)
    ax.axvline(150, color="#CC79A7", lw=0.9, ls="--")
    ax.text(152, vmax * 0.95, "hyperactivation\nVCL >= 150", fontsize=7, color="#CC79A7", va="top")
    ax.set_xlim(0, vmax * 1.02)
    ax.set_ylim(0, vmax * 1.02)
    ax.set_xlabel("VCL (um/s)")
    ax.set_ylabel("VSL (um/s)")
    ax.set_title(f"Curvilinear vs straight-line velocity per track ({preset})", fontsize=10)
    if len(metrics):
        ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def plot_grades(path: str | Path, summary) -> Path:
    """Bars of each grade and of PR / total motility with 95 % CIs; WHO 6th (and 5th) edition
    lower reference limits drawn on PR and total motility."""
    rows = {r["quantity"]: r for r in summary.table}
    names = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile", "progressive", "total_motility"]
    labels = ["a rapid", "b slow", "c non-prog.", "d immotile", "PR (a+b)", "total (a+b+c)"]
    colors = [GRADE_COLORS[n] for n in names[:4]] + ["#333333", "#777777"]
    pct = np.array([rows[n]["pct"] for n in names], float)
    lo = np.array([rows[n]["ci95_low_pct"] for n in names], float)
    hi = np.array([rows[n]["ci95_high_pct"] for n in names], float)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    x = np.arange(len(names))
    ax.bar(x, np.nan_to_num(pct), color=colors, alpha=0.9)
    # clipped at 0: a window-mode share can sit a hair outside its Kish-weighted Wilson interval
    err = np.clip(np.vstack([np.nan_to_num(pct - lo), np.nan_to_num(hi - pct)]), 0, None)
    ax.errorbar(x, np.nan_to_num(pct), yerr=err, fmt="none", ecolor="k", capsize=4, lw=1)
    for i, n in enumerate(names):
        if np.isfinite(pct[i]):
            ax.text(i, hi[i] + 1.5 if np.isfinite(hi[i]) else pct[i] + 1.5, f"{pct[i]:.0f} %",
                    ha="center", fontsize=8)
        lrl6, lrl5 = rows[n]["who6_lrl_pct"], rows[n]["who5_lrl_pct"]
        for lrl, style in ((lrl6, "-"), (lrl5, ":")):
            if lrl is not None:
                ax.plot([i - 0.42, i + 0.42], [lrl, lrl], color="crimson", lw=1.6, ls=style)
        if lrl6 is not None:
            ax.text(i + 0.44, max(lrl6, lrl5 or 0), f"WHO {lrl6:g} (6th)\n{lrl5:g} (5th)", fontsize=6.5,
                    color="crimson", va="center")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of graded cells")
    note = "" if summary.meets_who_count else "  (fewer than 200 cells)"
    ax.set_title(f"Motility grades, {summary.n_graded} graded tracks, aggregate {summary.aggregate}{note}\n"
                 f"bars: 95 % Wilson CI; red: WHO lower reference limits (solid 6th ed., dotted 5th ed.)",
                 fontsize=9)
    return _save(fig, path)


def plot_morphometry(path: str | Path, morphology: pd.DataFrame, metrics: pd.DataFrame) -> Path | None:
    """Head length against head width per track (um), coloured by grade, with the reference box
    (4.0-5.5 x 2.5-3.5 um). Returns None when the table has no head length and width columns."""
    lcol = next((c for c in morphology.columns if c.startswith("head_length") and c.endswith("_um")), None)
    wcol = next((c for c in morphology.columns if c.startswith("head_width") and c.endswith("_um")), None)
    if lcol is None or wcol is None or morphology[[lcol, wcol]].dropna().empty:
        return None
    m = morphology.merge(metrics[["track_id", "grade"]], on="track_id", how="left")
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    ax.add_patch(plt.Rectangle((2.5, 4.0), 1.0, 1.5, fill=True, color="#009E73", alpha=0.12,
                               label="reference head (stained, strict)"))
    for g in _ORDER:
        s = m[m["grade"].astype(str) == g]
        if len(s):
            ax.scatter(s[wcol], s[lcol], s=16, color=GRADE_COLORS[g], alpha=0.85, edgecolors="none",
                       label=GRADE_LABELS[g])
    ax.set_xlabel("head width (um, median over the track's crops)")
    ax.set_ylabel("head length (um)")
    ax.set_title("Head morphometry per track (indicative at 400x unstained)", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_gallery(path: str | Path, crops: list[tuple[np.ndarray, str, str]], *, columns: int = 8) -> Path | None:
    """A grid of gray crops; each item is ``(crop, caption, grade)`` (caption e.g.
    ``"#12 non_progressive"``). Columns are as wide as the longest caption needs, so no caption
    is cut or runs into its neighbour.

    Returns None when there is no crop.
    """
    if not crops:
        return None
    n = len(crops)
    cols = min(columns, n)
    rows = int(np.ceil(n / cols))
    fontsize = 7.0
    longest = max(len(str(c)) for _, c, _ in crops)
    col_w = max(1.25, longest * fontsize * 0.66 / 72 + 0.2)  # DejaVu Sans: ~0.6 em per character
    fig, axes = plt.subplots(rows, cols, figsize=(col_w * cols, 1.45 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, caption, grade) in zip(axes.ravel(), crops):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(caption, fontsize=fontsize, color=_text_color(grade))
        for s in ax.spines.values():
            s.set_visible(True)
            s.set_color(GRADE_COLORS.get(grade, "k"))
            s.set_linewidth(2)
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Head crops (one per track, sharpest frame), framed by grade", fontsize=9)
    return _save(fig, path)


def _text_color(grade: str) -> str:
    """The grade's colour for text on white; the light grey of "not graded" is darkened to be read."""
    return "#777777" if grade == "not_graded" else GRADE_COLORS.get(grade, "k")


def _distribution_groups(metrics: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the graded tracks and of the motile ones (a + b + c)."""
    grade = metrics["grade"].astype(str).to_numpy() if "grade" in metrics.columns else np.full(len(metrics), "")
    return grade != "not_graded", np.isin(grade, MOTILE_GRADES)


def draw_distributions(axes, metrics: pd.DataFrame, *, fontsize: float = 8.0) -> int:
    """Draw one box plot per kinematic column into ``axes`` (a flat sequence, one per column; the
    spare ones are switched off): all graded cells (grey) beside the motile ones (blue), each box
    with its median (line), mean (diamond), quartiles and 1.5 IQR whiskers; ``n`` under each box.

    Returns:
        The number of panels drawn.
    """
    cols = kinematic_columns(metrics.columns)
    graded, motile = _distribution_groups(metrics)
    axes = list(axes)
    for ax in axes[len(cols):]:
        ax.axis("off")
    for ax, (_, col) in zip(axes, cols):
        v = np.asarray(metrics[col], float)
        groups = [v[graded & np.isfinite(v)], v[motile & np.isfinite(v)]]
        names = [f"all graded\nn={len(groups[0])}", f"motile\nn={len(groups[1])}"]
        pos = [i for i, g in enumerate(groups) if len(g)]
        if pos:
            bp = ax.boxplot([groups[i] for i in pos], positions=pos, widths=0.55, patch_artist=True,
                            showmeans=True, showfliers=True,
                            meanprops={"marker": "D", "markersize": 3.5, "markerfacecolor": "white",
                                       "markeredgecolor": "k"},
                            medianprops={"color": "k", "lw": 1.2},
                            flierprops={"marker": ".", "markersize": 2.5, "alpha": 0.6})
            for patch, i in zip(bp["boxes"], pos):
                patch.set_facecolor(("#BBBBBB", "#56B4E9")[i])
                patch.set_alpha(0.9)
        else:
            ax.text(0.5, 0.5, "no value", ha="center", va="center", transform=ax.transAxes,
                    fontsize=fontsize, color="0.4")
        ax.set_xticks([0, 1], names, fontsize=fontsize * 0.85)
        ax.set_xlim(-0.6, 1.6)
        ax.set_ylabel(human_column(col), fontsize=fontsize)
        ax.tick_params(axis="y", labelsize=fontsize * 0.85)
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    return min(len(cols), len(axes))


def plot_distributions(path: str | Path, metrics: pd.DataFrame) -> Path | None:
    """Box plots of each kinematic column (VCL, VSL, VAP, LIN, STR, WOB, ALH, BCF and MAD where
    present), all graded cells against the motile ones (grades a + b + c), units on the axes.

    Tracks too short to grade are left out of both groups. Returns None when the table has no
    kinematic column or no graded track.
    """
    cols = kinematic_columns(metrics.columns)
    graded, _ = _distribution_groups(metrics)
    if not cols or not graded.any():
        return None
    ncols = 3 if len(cols) > 4 else len(cols)
    nrows = int(np.ceil(len(cols) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.5 * nrows), squeeze=False)
    draw_distributions(axes.ravel(), metrics)
    fig.suptitle("Kinematics: all graded cells vs motile cells (a+b+c); box = quartiles, line = median, "
                 "diamond = mean", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
