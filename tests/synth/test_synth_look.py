"""The phantom's looks: ``visem`` (default) resembles real VISEM frames, ``classic`` is unchanged."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from spermtrack.errors import ParameterError
from spermtrack.synth import generate, render_frame, simulate_cells
from spermtrack.synth.render import colorize

from conftest import SHARED

REAL = SHARED / "data" / "visem"

# Measured on the real frames with benchmarks/phantom_realism.py (frames12/12_frame_0.jpg and the
# 15 Train/11/images_sample JPEGs; see benchmarks/results/phantom_realism.md):
#   background (frame median) 76 (video 12) and 90 (video 11); the brief's range is 55-80
#   noise (1.4826 MAD of the frame minus its 2-px Gaussian blur) 1.48 (video 12), 2.31-2.86 (video 11)
#   head core: peak 158-176 above the background (saturating near 250), half-maximum region
#   7.5-8.4 px long and 5.4-5.7 px wide; label boxes (16 gt/ videos) w p10/50/90 17/22/31,
#   h 16/21/31, w/h p10-p90 0.87-1.26
REAL_BG = (55.0, 95.0)
REAL_NOISE = (1.0, 3.5)
REAL_CORE_LEN = (6.0, 10.5)
REAL_CORE_WID = (4.0, 7.5)

# sha256 of frames 0, 5, 9 + label boxes of simulate_cells(seconds=0.2, cells=20, seed=3) per
# difficulty, recorded before the visem look existed: the classic look must stay bit-for-bit
# (boxes re-hashed 2026-12-01: label boxes are now clipped to the frame in pixel-centre
# coordinates, -0.5 .. W - 0.5; the rendered frames are unchanged)
CLASSIC_SHA = {
    "easy": "55a7ae7fc1a57dd422e839d052c39d3d748f2f39bdabf4911b8407a492279219",
    "medium": "2ada45d1d5d3e08f739a1b462fe1da2cbd6851e7f50e802b10b68d92b67a2a3e",
    "hard": "f333b1ade3f13ec553c9cb4ccd5b244917fd526df818a971877758c9e3dd60ff",
}


def _jpeg_gray(bgr: np.ndarray) -> np.ndarray:
    return cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], cv2.IMREAD_GRAYSCALE)


def _noise(g: np.ndarray) -> float:
    g = g.astype(np.float32)
    hp = g - cv2.GaussianBlur(g, (0, 0), 2.0)
    return float(1.4826 * np.median(np.abs(hp - np.median(hp))))


def _core(g: np.ndarray, x: float, y: float) -> tuple[float, float, float] | None:
    """(peak above background, half-max length, width) of the core around (x, y)."""
    R = 15
    xi, yi = int(round(x)), int(round(y))
    if not (R <= xi < g.shape[1] - R and R <= yi < g.shape[0] - R):
        return None
    p = g[yi - R:yi + R + 1, xi - R:xi + R + 1].astype(np.float32) - np.median(g)
    yy, xx = np.mgrid[-R:R + 1, -R:R + 1]
    rr = np.hypot(xx, yy)
    pk = p[rr <= 3].max()
    n, lab = cv2.connectedComponents(((p > 0.5 * pk) & (rr <= 8)).astype(np.uint8))
    c = np.unravel_index(np.argmax(np.where(rr <= 3, p, -1e9)), p.shape)
    ys, xs = np.nonzero(lab == lab[c])
    if len(xs) < 3:
        return None
    ev = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)) + np.eye(2) / 12.0)
    return float(pk), float(4 * np.sqrt(ev[1])), float(4 * np.sqrt(ev[0]))


@pytest.fixture(scope="module")
def visem_scene():
    return simulate_cells(seconds=0.4, fps=50.0, cells=30, seed=1, difficulty="medium")


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_classic_look_is_bit_for_bit_unchanged(difficulty):
    sc = simulate_cells(seconds=0.2, fps=50, cells=20, seed=3, difficulty=difficulty, look="classic")
    h = hashlib.sha256()
    for i in (0, 5, 9):
        h.update(render_frame(sc, i).tobytes())
    h.update(sc.boxes[["x", "y", "w", "h"]].to_numpy().tobytes())
    assert h.hexdigest() == CLASSIC_SHA[difficulty]
    assert sc.look == "classic" and sc.params["look"] == "classic" and sc.distractors is None


def test_visem_is_the_default_and_keeps_the_cells_of_the_classic_look(visem_scene):
    sc = visem_scene
    assert sc.look == "visem" and sc.params["look"] == "visem"
    cl = simulate_cells(seconds=0.4, fps=50.0, cells=30, seed=1, difficulty="medium", look="classic")
    # same motion and same labelled objects; distractors are extra and never labelled
    np.testing.assert_array_equal(sc.head_px, cl.head_px)
    assert len(sc.boxes) == len(cl.boxes)
    # same (track, frame) pairs; centres differ only where the (larger) visem boxes are clipped
    np.testing.assert_array_equal(sc.boxes[["track_id", "frame"]].to_numpy(), cl.boxes[["track_id", "frame"]].to_numpy())
    assert len(sc.truth) == len(cl.truth)
    d = sc.distractors
    assert d is not None and {0, 1}.issubset(set(d.kind.tolist()))


def test_visem_background_and_noise_are_in_the_real_range(visem_scene):
    g = _jpeg_gray(colorize(visem_scene, render_frame(visem_scene, 3)))
    assert REAL_BG[0] <= np.median(g) <= REAL_BG[1]
    assert REAL_NOISE[0] <= _noise(g) <= REAL_NOISE[1]
    # the classic look is far outside (bright, noisy): the point of the new look
    cl = simulate_cells(seconds=0.1, fps=50.0, cells=5, seed=1, difficulty="medium", look="classic")
    gc = render_frame(cl, 0)
    assert np.median(gc) > REAL_BG[1] or _noise(gc) > REAL_NOISE[1]


def test_visem_heads_have_a_real_core_size_and_saturate(visem_scene):
    sc, i = visem_scene, 10
    g = _jpeg_gray(colorize(sc, render_frame(sc, i)))
    b = sc.boxes[(sc.boxes.frame == i) & (sc.boxes.cls == 0)]
    cores = [c for c in (_core(g, x, y) for x, y in b[["x", "y"]].to_numpy()) if c is not None]
    assert len(cores) >= 10
    peak, length, width = np.median(np.array(cores), axis=0)
    assert REAL_CORE_LEN[0] <= length <= REAL_CORE_LEN[1]
    assert REAL_CORE_WID[0] <= width <= REAL_CORE_WID[1]
    assert peak > 120 and np.median(g) + peak > 200  # near saturation, like real heads


def test_visem_label_boxes_look_like_visem_labels(visem_scene):
    b = visem_scene.boxes[visem_scene.boxes.cls == 0]
    w, h = b["w"].to_numpy(), b["h"].to_numpy()
    inner = (b["x"] - w / 2 > 1) & (b["x"] + w / 2 < 639) & (b["y"] - h / 2 > 1) & (b["y"] + h / 2 < 479)
    w, h = w[inner.to_numpy()], h[inner.to_numpy()]
    assert 18.0 <= np.median(w) <= 28.0 and 18.0 <= np.median(h) <= 28.0
    r = np.percentile(w / h, [10, 90])
    assert r[0] > 0.8 and r[1] < 1.3  # near-square like the annotators' boxes


def test_visem_difficulty_scales_the_clutter():
    lo = simulate_cells(seconds=0.1, fps=50.0, cells=5, seed=2, difficulty="easy")
    hi = simulate_cells(seconds=0.1, fps=50.0, cells=5, seed=2, difficulty="hard")
    assert hi.look_params.dark_dots > lo.look_params.dark_dots
    assert (hi.distractors.kind == 0).sum() > (lo.distractors.kind == 0).sum()
    assert hi.preset.read_noise > lo.preset.read_noise
    assert _noise(render_frame(hi, 0)) > _noise(render_frame(lo, 0))


def test_look_is_stored_in_meta_and_bad_look_is_refused(tmp_path):
    small = dict(seconds=0.1, fps=50.0, cells=4, width=160, height=120, seed=4, mask_every=5)
    (folder,) = generate(tmp_path / "v", **small)
    meta = json.loads((folder / "gt" / "meta.json").read_text())
    assert meta["look"] == "visem" and meta["parameters"]["look"] == "visem"
    img = cv2.imread(str(folder / "images" / "101_frame_0.jpg"), cv2.IMREAD_UNCHANGED)
    assert img.ndim == 3  # colour camera in the visem look
    (folder,) = generate(tmp_path / "c", **small, look="classic")
    assert json.loads((folder / "gt" / "meta.json").read_text())["look"] == "classic"
    for bad in ("VISEMX", "", None, 3):
        with pytest.raises(ParameterError, match="look"):
            simulate_cells(seconds=0.1, cells=2, look=bad)
        with pytest.raises(ParameterError, match="look"):
            generate(tmp_path / "bad", **small, look=bad)


def test_cli_look_option(tmp_path):
    from click.testing import CliRunner

    from spermtrack.cli.synth_cmd import synth

    res = CliRunner().invoke(synth, [str(tmp_path / "o"), "--seconds", "0.1", "--width", "160", "--height", "120",
                                     "--cells", "3", "--look", "classic", "--no-images"])
    assert res.exit_code == 0, res.output
    assert "classic look" in res.output
    res = CliRunner().invoke(synth, [str(tmp_path / "o"), "--look", "fancy"])
    assert res.exit_code != 0


@pytest.mark.skipif(not (REAL / "frames12" / "12_frame_0.jpg").is_file(), reason="real VISEM frames absent")
def test_hard_coded_real_ranges_hold_on_the_real_frames():
    g = cv2.imread(str(REAL / "frames12" / "12_frame_0.jpg"), cv2.IMREAD_GRAYSCALE)
    assert REAL_BG[0] <= np.median(g) <= REAL_BG[1]
    assert REAL_NOISE[0] <= _noise(g) <= REAL_NOISE[1]
    lab = np.loadtxt(REAL / "frames12" / "labels" / "12_frame_0.txt", ndmin=2)
    cores = [c for c in (_core(g, cx * 640 - 0.5, cy * 480 - 0.5) for _, cx, cy, _, _ in lab) if c is not None]
    _, length, width = np.median(np.array(cores), axis=0)
    assert REAL_CORE_LEN[0] <= length <= REAL_CORE_LEN[1] and REAL_CORE_WID[0] <= width <= REAL_CORE_WID[1]
