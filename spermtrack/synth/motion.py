"""Cell parameters and noise-free paths of the phantom (um, seconds).

Motion model (SYNTHETIC.md). The average path ``c(t)`` moves at constant speed ``v_ap`` along a
heading ``theta(t)`` that turns at ``omega0 + eta(t)``; ``eta`` is an Ornstein-Uhlenbeck turning
rate (correlation time :data:`TURN_TAU_S`, variance ``D_r / tau``) so the heading diffuses with
coefficient ``D_r`` at long times while the path stays smooth at the scale of one beat (a white
-noise heading would make the path jagged frame to frame, which real sperm are not). The head is

    p(t) = c(t) + n(theta(t)) * A * sin(2 pi f t + phi),   n = unit normal of the path,

so ALH = 2A, BCF = 2f and VAP = v_ap by construction. Between frames ``theta`` is linear in
time and ``c`` follows the exact circular arc, so :func:`head_at` evaluates the continuous path
at any time (truth VCL integrates it densely) and agrees with the frame samples exactly.
Immotile cells (and pinheads, clusters) are Brownian: ``c`` steps by ``N(0, 2 D dt)`` per axis
and is linear between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.signal import lfilter

from spermtrack.synth import morph
from spermtrack.synth.presets import HEAD_VARIANTS, TAIL_VARIANTS, Difficulty, Population

#: Correlation time of the random turning rate (s).
TURN_TAU_S = 0.3
#: Redraws allowed for a cell whose realised progression falls outside its population's range.
MAX_REDRAWS = 8


@dataclass
class CellParams:
    """Generating parameters of one object (sperm, pinhead or cluster member / cluster).

    Angles in radians, lengths in um, rates in Hz (or um/s). ``motion`` is ``"swim"`` (the
    sinusoid-about-a-path model) or ``"brownian"``.
    """

    cls: int
    population: str
    motion: str
    pattern: str = "straight"
    v_ap_um_s: float = 0.0
    amp_um: float = 0.0
    beat_hz: float = 0.0
    phase_rad: float = 0.0
    omega0_rad_s: float = 0.0
    d_r_rad2_s: float = 0.0
    d_um2_s: float = 0.0
    yaw_amp_deg: float = 0.0
    head_variant: str = "normal"
    head_poly_um: np.ndarray = field(default_factory=lambda: np.zeros((morph.HEAD_VERTICES, 2)))
    head_length_um: float = 0.0
    head_width_um: float = 0.0
    head_area_um2: float = 0.0
    midpiece_length_um: float = 0.0
    midpiece_width_um: float = 0.0
    tail_variant: str = "normal"
    tail_length_um: float = 0.0
    tail_wavelength_um: float = 30.0
    tail_amp_base_um: float = 0.0
    tail_amp_tip_um: float = 0.0
    tail_phase_rad: float = 0.0
    coil_turns: float = 0.0
    defocus_px: float = 0.0
    contrast: float = 1.0
    #: cluster members: (offset from the cluster centre um, head angle rad, member params)
    members: list = field(default_factory=list)


@dataclass
class Paths:
    """Noise-free paths of ``n`` objects at the ``T`` frame times (arrays ``(n, T, ...)``).

    ``omega`` is the turning rate on the interval from frame ``i`` to ``i + 1`` (rad/s);
    ``angle`` the head orientation (heading plus yaw).
    """

    centre_um: np.ndarray
    theta: np.ndarray
    omega: np.ndarray
    head_um: np.ndarray
    angle: np.ndarray
    fps: float


def draw_shape(cell: CellParams, rng: np.random.Generator, variant: str | None = None,
               tail_variant: str | None = None) -> None:
    """Draw head, midpiece and tail morphology of ``cell`` in place."""
    names = list(HEAD_VARIANTS)
    if variant is None:
        variant = names[rng.choice(len(names), p=[HEAD_VARIANTS[n][0] for n in names])]
    _, (l0, l1), (w0, w1) = HEAD_VARIANTS[variant]
    length = rng.uniform(l0, l1)
    if variant == "normal":
        # normal heads keep L/W within 1.35-1.75 (WHO ellipticity about 1.3-1.8)
        width = float(np.clip(length / rng.uniform(1.35, 1.75), w0, w1))
    else:
        width = rng.uniform(w0, w1)
    poly = morph.head_polygon_um(variant, length, width, rng)
    cell.head_variant = variant
    cell.head_poly_um = poly
    cell.head_length_um, cell.head_width_um = morph.feret_diameters(poly)
    cell.head_area_um2 = morph.polygon_area(poly)
    cell.midpiece_length_um = cell.head_length_um * rng.uniform(0.9, 1.15)
    cell.midpiece_width_um = rng.uniform(0.6, 0.9)
    tnames = list(TAIL_VARIANTS)
    if tail_variant is None:
        tail_variant = tnames[rng.choice(len(tnames), p=[TAIL_VARIANTS[n][0] for n in tnames])]
    cell.tail_variant = tail_variant
    cell.tail_length_um = rng.uniform(*TAIL_VARIANTS[tail_variant][1])
    cell.tail_wavelength_um = rng.uniform(25.0, 40.0)
    cell.tail_amp_base_um = rng.uniform(0.2, 0.6)
    swimming = cell.motion == "swim"
    tip = (5.0, 9.0) if cell.population == "hyperactivated" else ((2.0, 5.0) if swimming else (0.5, 2.0))
    cell.tail_amp_tip_um = rng.uniform(*tip)
    cell.tail_phase_rad = rng.uniform(0.0, 2.0 * np.pi)
    cell.coil_turns = rng.uniform(1.2, 1.8) if tail_variant == "coiled" else 0.0


def draw_population(pop: Population, n: int, rng: np.random.Generator) -> list[CellParams]:
    """Draw the motion parameters of ``n`` cells of population ``pop``.

    Shapes are drawn later (:func:`draw_shape`), only for cells that come near the frame.
    """
    out = []
    for _ in range(n):
        swim = pop.name != "immotile"
        c = CellParams(cls=0, population=pop.name, motion="swim" if swim else "brownian",
                       pattern=pop.pattern)
        if swim:
            c.v_ap_um_s = rng.uniform(*pop.v_ap_um_s)
            c.amp_um = rng.uniform(*pop.amp_um)
            c.beat_hz = rng.uniform(*pop.beat_hz)
            c.phase_rad = rng.uniform(0.0, 2.0 * np.pi)
            c.omega0_rad_s = rng.uniform(*pop.omega0_rad_s) * rng.choice((-1.0, 1.0))
            c.yaw_amp_deg = rng.uniform(10.0, 20.0)
        else:
            c.d_um2_s = rng.uniform(*pop.d_um2_s)
        c.d_r_rad2_s = rng.uniform(*pop.d_r_rad2_s)
        out.append(c)
    return out


def simulate_paths(cells: list[CellParams], centre0_um: np.ndarray, theta0: np.ndarray,
                   n_frames: int, fps: float, rng: np.random.Generator) -> Paths:
    """Noise-free paths of ``cells`` starting at ``centre0_um`` (n, 2) with headings ``theta0``."""
    n, T, dt = len(cells), int(n_frames), 1.0 / fps
    col = lambda name: np.array([getattr(c, name) for c in cells], dtype=np.float64)  # noqa: E731
    v, amp, f, phi = col("v_ap_um_s"), col("amp_um"), col("beat_hz"), col("phase_rad")
    omega0, d_r, d = col("omega0_rad_s"), col("d_r_rad2_s"), col("d_um2_s")
    swim = np.array([c.motion == "swim" for c in cells], dtype=bool)
    t = np.arange(T) * dt

    # turning rate: OU for swimmers (smooth path), white for Brownian orientation
    a = np.exp(-dt / TURN_TAU_S)
    sigma = np.sqrt(d_r / TURN_TAU_S)
    xi = rng.standard_normal((n, T))
    innov = (sigma * np.sqrt(1.0 - a * a))[:, None] * xi
    innov[:, 0] = sigma * xi[:, 0]
    eta = lfilter([1.0], [1.0, -a], innov, axis=1)
    white = np.sqrt(2.0 * d_r / dt)[:, None] * xi
    omega = np.where(swim[:, None], omega0[:, None] + eta, white)
    dtheta = omega[:, :-1] * dt
    theta = theta0[:, None] + np.concatenate([np.zeros((n, 1)), np.cumsum(dtheta, axis=1)], axis=1)

    # exact arc per frame interval: chord v dt sinc(dtheta/2) along the mid-interval heading
    mid = theta[:, :-1] + dtheta / 2.0
    chord = v[:, None] * dt * np.sinc(dtheta / (2.0 * np.pi))
    step = np.stack([chord * np.cos(mid), chord * np.sin(mid)], axis=-1)
    brown = rng.standard_normal((n, T - 1, 2)) * np.sqrt(2.0 * d * dt)[:, None, None]
    step = np.where(swim[:, None, None], step, brown)
    centre = centre0_um[:, None, :] + np.concatenate([np.zeros((n, 1, 2)), np.cumsum(step, axis=1)], axis=1)

    lateral = amp[:, None] * np.sin(2.0 * np.pi * f[:, None] * t[None, :] + phi[:, None])
    normal = np.stack([-np.sin(theta), np.cos(theta)], axis=-1)
    head = centre + normal * lateral[..., None]
    yaw = np.deg2rad(col("yaw_amp_deg"))[:, None] * np.cos(2.0 * np.pi * f[:, None] * t[None, :] + phi[:, None])
    return Paths(centre, theta, omega, head, theta + yaw, fps)


def head_at(cell: CellParams, paths: Paths, row: int, t_s: np.ndarray) -> np.ndarray:
    """The continuous noise-free head position of object ``row`` at times ``t_s`` (um, (m, 2)).

    Equals ``paths.head_um[row, i]`` at ``t_s = i / fps``. Swimmers follow the exact arc between
    frames (heading linear in time); Brownian objects are linear between frames.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    T = paths.theta.shape[1]
    i = np.clip(np.floor(t_s * paths.fps + 1e-9).astype(np.int64), 0, max(T - 2, 0))
    tau = t_s - i / paths.fps
    c_i = paths.centre_um[row, i]
    if cell.motion != "swim":
        nxt = paths.centre_um[row, np.minimum(i + 1, T - 1)]
        return c_i + (nxt - c_i) * (tau * paths.fps)[:, None]
    th_i, om = paths.theta[row, i], paths.omega[row, i]
    dth = om * tau
    chord = cell.v_ap_um_s * tau * np.sinc(dth / (2.0 * np.pi))
    c = c_i + np.stack([chord * np.cos(th_i + dth / 2), chord * np.sin(th_i + dth / 2)], axis=1)
    th = th_i + dth
    lat = cell.amp_um * np.sin(2.0 * np.pi * cell.beat_hz * t_s + cell.phase_rad)
    return c + np.stack([-np.sin(th), np.cos(th)], axis=1) * lat[:, None]


def progression_um_s(head_um: np.ndarray, fps: float, window_s: float = 1.0) -> np.ndarray:
    """WHO progression of each row of ``head_um`` (n, T, 2): mean VSL over all 1-s windows.

    Windows start at every frame and span ``round(window_s * fps)`` frame intervals; a path
    shorter than one window uses its whole span (NaN for a single point).
    """
    n, T, _ = head_um.shape
    w = max(int(round(window_s * fps)), 1)
    if T < 2:
        return np.full(n, np.nan)
    if T - 1 < w:
        return np.linalg.norm(head_um[:, -1] - head_um[:, 0], axis=-1) / ((T - 1) / fps)
    d = np.linalg.norm(head_um[:, w:] - head_um[:, :-w], axis=-1)
    return d.mean(axis=1) / (w / fps)


def draw_and_simulate(pop: Population, n: int, region_um: tuple[float, float, float, float],
                      n_frames: int, fps: float, rng: np.random.Generator) -> tuple[list[CellParams], Paths]:
    """Draw ``n`` cells of ``pop`` uniformly in ``region_um`` (x0, y0, x1, y1) and simulate them.

    Cells whose realised progression (whole simulated duration) falls outside the population's
    range are redrawn up to :data:`MAX_REDRAWS` times, so e.g. a "slow progressive" cell really
    progresses 5-25 um/s; the truth grade is still computed from the realised path.
    """
    cells = draw_population(pop, n, rng)
    x0, y0, x1, y1 = region_um
    start = np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], axis=1)
    theta0 = rng.uniform(0.0, 2.0 * np.pi, n)
    paths = simulate_paths(cells, start, theta0, n_frames, fps, rng)
    lo, hi = pop.progression_um_s
    for _ in range(MAX_REDRAWS):
        prog = progression_um_s(paths.head_um, fps)
        bad = np.flatnonzero(~((prog >= lo) & (prog <= hi)))
        if len(bad) == 0 or n_frames < 2:
            break
        redo = draw_population(pop, len(bad), rng)
        new = simulate_paths(redo, start[bad], rng.uniform(0.0, 2.0 * np.pi, len(bad)), n_frames, fps, rng)
        for j, b in enumerate(bad):
            cells[b] = redo[j]
        for name in ("centre_um", "theta", "omega", "head_um", "angle"):
            getattr(paths, name)[bad] = getattr(new, name)
    return cells, paths


def concat_paths(parts: list[Paths], fps: float, n_frames: int) -> Paths:
    parts = [p for p in parts if p.theta.shape[0]]
    if not parts:
        z = np.zeros((0, n_frames))
        return Paths(np.zeros((0, n_frames, 2)), z, z.copy(), np.zeros((0, n_frames, 2)), z.copy(), fps)
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts], axis=0)  # noqa: E731
    return Paths(cat("centre_um"), cat("theta"), cat("omega"), cat("head_um"), cat("angle"), fps)


def population_counts(mix: dict[str, float], cells: float, frame_um: tuple[float, float],
                      margin_um: float) -> dict[str, int]:
    """How many cells of each population to simulate on the torus around the frame.

    Cells live on a torus of the frame grown by ``margin_um`` on every side, at the density
    that puts ``cells * share`` heads in view on average.
    """
    W, H = frame_um
    ratio = (W + 2 * margin_um) * (H + 2 * margin_um) / (W * H)
    return {key: int(round(cells * share * ratio)) for key, share in mix.items()}


def wrap_copies(cells: list[CellParams], paths: Paths, margin_um: float, frame_um: tuple[float, float]
                ) -> tuple[list[CellParams], Paths]:
    """Split paths on the torus into one object per torus tile visited.

    The plane is tiled by copies of the grown frame; a path that crosses into another tile is
    that tile's copy re-entering from the opposite side, i.e. a new cell swimming in. Each
    (cell, tile) pair becomes an object whose path is shifted back by the tile offset; it is
    more than ``margin_um`` outside the frame whenever the cell is in another tile, so it is
    drawn and labelled only during its own visit. Copies after the first get their own shape
    (``head_area_um2 = 0`` marks them for :func:`draw_shape`). Objects that never come within
    ``margin_um`` of the frame are dropped.
    """
    W, H = frame_um
    L = np.array([W + 2 * margin_um, H + 2 * margin_um])
    tiles = np.floor((paths.head_um + margin_um) / L).astype(np.int64)
    out_cells, idx, shifts = [], [], []
    for i, c in enumerate(cells):
        for j, k in enumerate(np.unique(tiles[i], axis=0)):
            shift = k * L
            h = paths.head_um[i] - shift
            near = ((h[:, 0] > -margin_um) & (h[:, 0] < W + margin_um)
                    & (h[:, 1] > -margin_um) & (h[:, 1] < H + margin_um)).any()
            if not near:
                continue
            copy = c if j == 0 else replace(c, head_area_um2=0.0)
            out_cells.append(copy)
            idx.append(i)
            shifts.append(shift)
    idx = np.array(idx, dtype=np.int64)
    sh = np.array(shifts, dtype=np.float64).reshape(-1, 1, 2)
    return out_cells, Paths(paths.centre_um[idx] - sh, paths.theta[idx], paths.omega[idx],
                            paths.head_um[idx] - sh, paths.angle[idx], paths.fps)


def draw_mix(rng: np.random.Generator, hyperactivated: float, mix: dict[str, float] | None,
             base: dict[str, float], concentration: float, circling_share: float) -> dict[str, float]:
    """Population shares of one video, keyed by :data:`POPULATIONS` names (sum 1).

    ``mix`` (WHO categories) is used exactly when given; otherwise the shares are drawn from a
    Dirichlet around ``base``. ``hyperactivated`` (share of all sperm) is taken out of the rapid
    share first, then proportionally from the others.
    """
    keys = ["rapid_progressive", "slow_progressive", "non_progressive", "immotile"]
    if mix is None:
        alpha = np.array([base[k] for k in keys]) * concentration
        shares = dict(zip(keys, rng.dirichlet(alpha)))
    else:
        tot = sum(float(mix.get(k, 0.0)) for k in keys)
        shares = {k: float(mix.get(k, 0.0)) / tot for k in keys}
    h = float(hyperactivated)
    take = min(h, shares["rapid_progressive"])
    shares["rapid_progressive"] -= take
    rest = h - take
    if rest > 0:
        others = [k for k in keys if k != "rapid_progressive"]
        s = sum(shares[k] for k in others)
        for k in others:
            shares[k] -= rest * shares[k] / s if s > 0 else 0.0
    npg = shares.pop("non_progressive")
    shares["non_progressive_circling"] = npg * circling_share
    shares["non_progressive_wobbling"] = npg * (1.0 - circling_share)
    shares["hyperactivated"] = h
    return {k: max(v, 0.0) for k, v in shares.items()}


def appearance(cell: CellParams, preset: Difficulty, rng: np.random.Generator) -> None:
    """Per-cell depth blur and contrast scale (in place)."""
    cell.defocus_px = rng.uniform(*preset.defocus_px)
    cell.contrast = float(np.clip(1.0 + preset.contrast_spread * rng.standard_normal(), 0.5, 1.5))
