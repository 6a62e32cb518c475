"""Difficulty presets and cell populations of the synthetic phantom.

Every appearance knob lives in one frozen dataclass per difficulty, so a benchmark can name the
exact imaging conditions it ran under (``meta.json`` stores the whole table row). Density of
sperm is *not* part of a preset: it is the ``cells`` argument of
:func:`spermtrack.synth.generate` (expected number of sperm heads in view), so the same cell
count can be rendered easy or hard.

Gray levels are on the 0..255 scale of the output frames. Contrasts are amplitudes added to the
background before noise (positive: brighter).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from spermtrack.errors import ParameterError


@dataclass(frozen=True)
class Difficulty:
    """Imaging conditions of one difficulty level.

    Attributes:
        name: ``easy``, ``medium`` or ``hard``.
        background: mean background gray level.
        gradient: peak relative illumination gradient across the frame (0.1 = +-10 %).
        vignetting: relative darkening at the frame corners.
        flicker: standard deviation of the per-frame gain (lamp flicker), relative.
        noise_gain: Poisson part of the noise: variance = ``noise_gain * I + read_noise**2``.
        read_noise: Gaussian read noise, gray levels.
        head_core: brightness of the head core (difference-of-Gaussians positive lobe).
        head_halo: depth of the dark halo (negative lobe, wider Gaussian).
        midpiece_contrast: darkness of the midpiece.
        tail_contrast: darkness of the tail (thin, faint).
        defocus_px: per-cell extra Gaussian blur sigma range (px), drawn uniformly per cell.
        debris_per_frame: expected number of debris discs in a 640x480 frame (scaled by area).
        debris_contrast: amplitude range of debris (sign drawn per disc).
        clusters: inclusive range of the number of clusters (class 1) per video.
        pinhead_prob: chance that a sperm is a pinhead (class 2) instead.
        head_jitter_um: per-frame Gaussian jitter of the rendered head centre (um); the truth
            kinematics stay noise-free, labels follow the rendered position.
        contrast_spread: relative spread of per-cell contrast (some cells are fainter).
    """

    name: str
    background: float
    gradient: float
    vignetting: float
    flicker: float
    noise_gain: float
    read_noise: float
    head_core: float
    head_halo: float
    midpiece_contrast: float
    tail_contrast: float
    defocus_px: tuple[float, float]
    debris_per_frame: float
    debris_contrast: tuple[float, float]
    clusters: tuple[int, int]
    pinhead_prob: float
    head_jitter_um: float
    contrast_spread: float

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy", background=110.0, gradient=0.04, vignetting=0.05, flicker=0.0,
        noise_gain=0.05, read_noise=1.5, head_core=110.0, head_halo=70.0, midpiece_contrast=35.0,
        tail_contrast=30.0, defocus_px=(0.0, 0.3), debris_per_frame=4.0,
        debris_contrast=(10.0, 25.0), clusters=(0, 0), pinhead_prob=0.0, head_jitter_um=0.0,
        contrast_spread=0.05,
    ),
    "medium": Difficulty(
        name="medium", background=115.0, gradient=0.10, vignetting=0.12, flicker=0.01,
        noise_gain=0.15, read_noise=3.0, head_core=85.0, head_halo=58.0, midpiece_contrast=25.0,
        tail_contrast=20.0, defocus_px=(0.0, 0.8), debris_per_frame=15.0,
        debris_contrast=(10.0, 35.0), clusters=(0, 2), pinhead_prob=0.02, head_jitter_um=0.0,
        contrast_spread=0.15,
    ),
    "hard": Difficulty(
        name="hard", background=120.0, gradient=0.18, vignetting=0.22, flicker=0.03,
        noise_gain=0.3, read_noise=4.0, head_core=68.0, head_halo=45.0, midpiece_contrast=15.0,
        tail_contrast=14.0, defocus_px=(0.2, 1.5), debris_per_frame=40.0,
        debris_contrast=(10.0, 35.0), clusters=(1, 3), pinhead_prob=0.04, head_jitter_um=0.03,
        contrast_spread=0.25,
    ),
}


#: Looks of the phantom: ``visem`` (default) imitates real VISEM-Tracking frames (dark flat
#: background, tiny noise, bright saturating heads with a glow, debris and out-of-focus
#: distractors); ``classic`` is the original bright noisy phase-contrast look, kept bit-for-bit.
LOOKS = ("visem", "classic")
DEFAULT_LOOK = "visem"

#: The ``visem`` look's imaging conditions per difficulty (same fields as :data:`PRESETS`).
#: Measured on real frames (frames12/ and Train/11/images_sample/ of the shared VISEM data, see
#: docs/PHANTOM.md): background 76-90, robust noise of a 2-px high-pass 1.5-2.9 gray levels
#: (JPEG q95), head cores saturating near 250, dark midpieces, faint thin tails.
#: ``head_core`` / ``head_halo`` are the bright core and the thin dark phase rim around it; the
#: wide bright glow is a :class:`VisemLook` knob.
VISEM_PRESETS: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy", background=74.0, gradient=0.02, vignetting=0.02, flicker=0.0,
        noise_gain=0.01, read_noise=0.8, head_core=150.0, head_halo=40.0, midpiece_contrast=35.0,
        tail_contrast=26.0, defocus_px=(0.0, 0.2), debris_per_frame=10.0,
        debris_contrast=(10.0, 30.0), clusters=(0, 0), pinhead_prob=0.0, head_jitter_um=0.0,
        contrast_spread=0.05,
    ),
    "medium": Difficulty(
        name="medium", background=76.0, gradient=0.03, vignetting=0.04, flicker=0.005,
        noise_gain=0.015, read_noise=1.1, head_core=140.0, head_halo=40.0, midpiece_contrast=32.0,
        tail_contrast=22.0, defocus_px=(0.0, 0.5), debris_per_frame=25.0,
        debris_contrast=(8.0, 35.0), clusters=(0, 2), pinhead_prob=0.02, head_jitter_um=0.0,
        contrast_spread=0.15,
    ),
    "hard": Difficulty(
        name="hard", background=80.0, gradient=0.05, vignetting=0.06, flicker=0.015,
        noise_gain=0.02, read_noise=1.6, head_core=125.0, head_halo=35.0, midpiece_contrast=28.0,
        tail_contrast=18.0, defocus_px=(0.2, 1.0), debris_per_frame=50.0,
        debris_contrast=(8.0, 35.0), clusters=(1, 3), pinhead_prob=0.04, head_jitter_um=0.03,
        contrast_spread=0.25,
    ),
}


@dataclass(frozen=True)
class VisemLook:
    """Extra knobs of the ``visem`` look (unlabelled structure of real VISEM frames).

    Counts are per 640x480 frame (scaled by area); ranges are drawn uniformly per video or per
    object.

    Attributes:
        background_range: per-video background level (real: 76 in video 12, 90 in video 11).
        illumination: relative amplitude of soft, smooth illumination changes (sigma ~60 px).
        texture_sd: gray-level SD of the static fine mottle of the background (sigma ~1 px).
        dark_dots: static dark debris dots 2-5 px (real: 460-1200 dark local minima below -15).
        dark_dot_contrast: depth range of the dots.
        bright_specks: faint static bright specks (1-2 px).
        speck_contrast: brightness range of the specks.
        oof_cells: out-of-focus sperm in view (grey or dark blobs, most with a faint tail);
            unlabelled, they drift and swim slowly.
        bright_blobs: round bright impurities without a tail (unlabelled).
        large_cells: large round cells (leukocytes, epithelial cells; unlabelled), radius 7-16 px.
        glow: amplitude of the wide bright glow around in-focus heads (real mean radial profile:
            +40 at 6 px, +20 at 10 px).
        box_margin_um: per-video range of the label-box margin (VISEM annotators draw near-square
            boxes ~24x22 px including the glow; per-video medians 17-31 px).
        fringe: strength of the colour (cyan / magenta) fringe on written colour frames.
    """

    name: str
    background_range: tuple[float, float]
    illumination: float
    texture_sd: float
    dark_dots: float
    dark_dot_contrast: tuple[float, float]
    bright_specks: float
    speck_contrast: tuple[float, float]
    oof_cells: float
    bright_blobs: float
    large_cells: tuple[int, int]
    glow: float
    box_margin_um: tuple[float, float]
    fringe: float

    def to_dict(self) -> dict:
        return asdict(self)


VISEM_LOOKS: dict[str, VisemLook] = {
    "easy": VisemLook("easy", (66.0, 80.0), 0.02, 0.7, 300.0, (8.0, 50.0), 250.0, (5.0, 30.0), 4.0, 5.0,
                      (0, 1), 80.0, (3.0, 4.4), 2.0),
    "medium": VisemLook("medium", (66.0, 90.0), 0.03, 0.9, 550.0, (8.0, 65.0), 450.0, (5.0, 35.0), 12.0, 10.0,
                        (1, 2), 75.0, (2.8, 5.2), 2.0),
    "hard": VisemLook("hard", (60.0, 95.0), 0.05, 1.2, 900.0, (8.0, 70.0), 650.0, (5.0, 40.0), 20.0, 16.0,
                      (2, 4), 65.0, (2.6, 5.4), 2.0),
}


def check_look(look: str) -> str:
    """Return ``look`` normalised (``visem`` or ``classic``); raise ParameterError otherwise."""
    key = str(look).lower() if isinstance(look, str) else None
    if key not in LOOKS:
        raise ParameterError(f"look={look!r} is unknown; use one of {', '.join(LOOKS)} "
                             f"(visem: like real VISEM frames, the default; classic: the original phantom)")
    return key


def get_preset(name: str, look: str = "classic") -> Difficulty:
    """Return the preset called ``name`` (``easy``, ``medium``, ``hard``) of ``look``.

    Raises:
        ParameterError: unknown name or look.
    """
    table = VISEM_PRESETS if check_look(look) == "visem" else PRESETS
    try:
        return table[str(name).lower()]
    except KeyError:
        raise ParameterError(f"difficulty={name!r} is unknown; use one of {', '.join(PRESETS)}") from None


def get_visem_look(name: str) -> VisemLook:
    """The :class:`VisemLook` knobs of difficulty ``name``."""
    get_preset(name)
    return VISEM_LOOKS[str(name).lower()]


@dataclass(frozen=True)
class Population:
    """Parameter ranges of one motility population (uniform draws between the bounds).

    Attributes:
        name: population name (written to ``tracks_truth.csv``).
        v_ap_um_s: average-path speed range.
        amp_um: lateral head amplitude A (ALH = 2A).
        beat_hz: beat frequency f (BCF = 2f).
        d_r_rad2_s: long-time rotational diffusion of the heading.
        omega0_rad_s: magnitude range of the constant turning rate (sign drawn), 0 for straight.
        progression_um_s: accepted range of the realised progression (VSL over 1-s windows);
            a draw outside is redrawn (a few tries) so populations match their WHO grade.
        d_um2_s: translational diffusion (immotile cells only).
        pattern: motion pattern written to the truth (straight, circling, wobbling, brownian).
    """

    name: str
    v_ap_um_s: tuple[float, float]
    amp_um: tuple[float, float]
    beat_hz: tuple[float, float]
    d_r_rad2_s: tuple[float, float]
    omega0_rad_s: tuple[float, float]
    progression_um_s: tuple[float, float]
    d_um2_s: tuple[float, float] = (0.0, 0.0)
    pattern: str = "straight"


POPULATIONS: dict[str, Population] = {
    # STR of a path with heading diffusion D_r over T seconds is about 1 - D_r T / 6: D_r up to
    # 0.3 rad^2/s keeps STR at 80-95 % over the 2-6 s a rapid cell takes to cross the field
    "rapid_progressive": Population("rapid_progressive", (30.0, 80.0), (1.0, 3.0), (5.0, 15.0),
                                    (0.03, 0.3), (0.0, 0.0), (27.0, 1e9)),
    "slow_progressive": Population("slow_progressive", (8.0, 24.0), (0.7, 2.0), (4.0, 10.0),
                                   (0.05, 0.4), (0.0, 0.0), (6.0, 23.0)),
    # circling: tight circles (radius v/omega0 of a few um) so the net 1-s displacement is small
    "non_progressive_circling": Population("non_progressive", (6.0, 25.0), (0.5, 1.5), (3.0, 10.0),
                                           (0.05, 0.3), (3.0, 9.0), (0.0, 4.0),
                                           pattern="circling"),
    # wobbling in place: vigorous beat, almost no average-path motion
    "non_progressive_wobbling": Population("non_progressive", (0.0, 2.5), (0.5, 2.0), (3.0, 10.0),
                                           (0.5, 2.0), (0.0, 0.0), (0.0, 4.0),
                                           pattern="wobbling"),
    "immotile": Population("immotile", (0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.002, 0.02),
                           (0.0, 0.0), (0.0, 1e9), (0.02, 0.2), pattern="brownian"),
    # hyperactivated: large ALH, high VCL, curved low-linearity paths; f A >= 38.5 um/s keeps
    # VCL >= 4 f A >= 154 um/s (VCL of the sinusoid is at least 4 f A at any v)
    "hyperactivated": Population("hyperactivated", (25.0, 60.0), (5.5, 8.0), (7.0, 11.0),
                                 (0.3, 1.0), (1.5, 4.0), (0.0, 1e9), pattern="circling"),
}

#: Default share of sperm in each WHO category (rapid, slow, non-progressive, immotile).
DEFAULT_MIX: dict[str, float] = {
    "rapid_progressive": 0.35, "slow_progressive": 0.15, "non_progressive": 0.20, "immotile": 0.30,
}
#: Dirichlet concentration of the per-video mix around :data:`DEFAULT_MIX` (higher = less spread).
MIX_CONCENTRATION = 60.0
#: Share of circling (vs wobbling-in-place) among non-progressive cells.
CIRCLING_SHARE = 0.6

#: Head morphology variants: (probability, length range um, width range um).
HEAD_VARIANTS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "normal": (0.70, (4.0, 5.5), (2.5, 3.5)),
    "tapered": (0.08, (5.2, 6.0), (2.3, 2.8)),
    "round": (0.07, (3.3, 3.9), (3.1, 3.4)),
    "small": (0.05, (3.0, 3.6), (1.9, 2.4)),
    "large": (0.05, (6.0, 7.0), (3.8, 4.4)),
    "amorphous": (0.05, (4.0, 5.5), (2.8, 3.8)),
}
#: Tail variants: (probability, length range um).
TAIL_VARIANTS: dict[str, tuple[float, tuple[float, float]]] = {
    "normal": (0.88, (40.0, 50.0)),
    "coiled": (0.06, (30.0, 45.0)),
    "short": (0.06, (10.0, 25.0)),
}
