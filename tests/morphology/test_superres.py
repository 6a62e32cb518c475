"""x2 super-resolution module (issue 15, item 4): shapes, geometry, save / load, training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from spermtrack.morphology import superres as SR  # noqa: E402
from spermtrack.morphology.crops import OUTSIDE, CropParams, CropSet  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _disc(h, w, cx, cy, r=3.0, bg=80, fg=220):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), float(bg))
    img[np.hypot(xx - cx, yy - cy) <= r] = fg
    return img.astype(np.uint8)


def _centroid(img):
    b = np.median(img)
    w = img.astype(float) - b
    w[w < 0.3 * (img.max() - b)] = 0.0
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()


def _random_model(seed=1):
    torch.manual_seed(seed)
    m = SR.build_model(channels=8, blocks=2)
    with torch.no_grad():  # a non-trivial residual branch (the fresh net starts as bicubic)
        m.up.weight.normal_(0, 0.05)
    m.eval()
    return m


def test_shapes_and_dtype():
    m = _random_model()
    for h, w in ((32, 32), (17, 40)):
        crop = np.random.default_rng(0).integers(0, 256, (h, w)).astype(np.uint8)
        for model in (m, "bicubic"):
            up = SR.upscale(crop, model)
            assert up.shape == (2 * h, 2 * w) and up.dtype == np.uint8
    with pytest.raises(ValueError):
        SR.upscale(np.zeros((4, 4, 3), np.uint8), m)


def _disc_pairs(n=32, seed=0):
    """Sharp discs (HR, 32 x 32) and their area-averaged, slightly noisy versions (LR, 16 x 16)."""
    rng = np.random.default_rng(seed)
    hr = np.stack([_disc(32, 32, rng.uniform(8, 24), rng.uniform(8, 24), r=rng.uniform(2, 5)) for _ in range(n)])
    lr = np.stack([SR.degrade(h.astype(np.float32), rng, noise_gain=0.0, read_noise=0.5, jpeg_quality=None)
                   for h in hr])
    return lr, hr


@pytest.fixture(scope="module")
def disc_model():
    torch.set_num_threads(1)
    lr, hr = _disc_pairs()
    model, losses = SR.train(lr, hr, steps=60, batch=8, lr_rate=2e-3, seed=0, channels=8, blocks=1)
    return model, losses


@pytest.mark.parametrize("cx,cy", [(20.0, 14.0), (11.5, 23.25), (7.25, 30.5)])
def test_disc_centroid_maps_to_2x(disc_model, cx, cy):
    lr = _disc(40, 36, cx, cy)
    ux, uy = _centroid(lr)
    for model in (disc_model[0], "bicubic"):
        hx, hy = _centroid(SR.upscale(lr, model))
        ex, ey = SR.to_hr(ux), SR.to_hr(uy)
        assert abs(hx - ex) < 1.0 and abs(hy - ey) < 1.0, (model, hx, hy, ex, ey)


def test_save_load_round_trip(tmp_path):
    m = _random_model(3)
    p = SR.save(m, tmp_path / "w.pt")
    m2 = SR.load(p)
    x = np.random.default_rng(2).integers(0, 256, (24, 20)).astype(np.uint8)
    assert np.array_equal(SR.upscale(x, m), SR.upscale(x, m2))
    assert m2.config == {"channels": 8, "blocks": 2}


def test_tiny_training_reduces_loss(disc_model):
    model, losses = disc_model
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])
    # and the trained net beats bicubic on fresh disc pairs
    lr, hr = _disc_pairs(16, seed=5)
    e_net = np.mean([np.abs(SR.upscale(x, model).astype(float) - y).mean() for x, y in zip(lr, hr)])
    e_bic = np.mean([np.abs(SR.upscale(x, "bicubic").astype(float) - y).mean() for x, y in zip(lr, hr)])
    assert e_net < e_bic


def test_make_pairs_aligned():
    lr, hr = SR.make_pairs(n_scenes=1, frames_per_scene=1, patch=24, patches_per_frame=4, seed=3,
                           width_hr=256, height_hr=192)
    assert lr.shape == (4, 24, 24) and hr.shape == (4, 48, 48)
    # the LR patch is the HR patch area-averaged (plus noise / JPEG): close to it, far from a shifted one
    down = hr.reshape(4, 24, 2, 24, 2).mean(axis=(2, 4))
    err = np.abs(lr.astype(float) - down).mean()
    shifted = np.abs(lr[:, :, 1:].astype(float) - down[:, :, :-1]).mean()
    assert err < 6.0 and err < shifted


def test_upscale_cropset_geometry():
    p = CropParams(size=16, um_per_px=0.5, tail_um=5.0, tail_side_um=5.0, tail_ahead_um=5.0)
    win = p.window()
    imgs = np.full((1, 16, 16), 90, np.uint8)
    wins = np.full((1, win[1], win[0]), 90, np.uint8)
    wins[0, :, :3] = OUTSIDE
    t = pd.DataFrame({"track_id": [1], "frame": [0], "x": [100.0], "y": [50.0], "angle_rad": [0.0],
                      "orient_source": ["none"], "sharpness": [1.0], "separation_px": [30.0]})
    t["anchor_u"], t["anchor_v"] = p.anchor_uv
    cs = CropSet(imgs, t, p, wins, (win[2], win[3]))
    c2 = SR.upscale_cropset(cs, "bicubic")
    assert c2.images.shape == (1, 32, 32) and c2.windows.shape == (1, 2 * win[1], 2 * win[0])
    assert c2.params.um_per_px == 0.25 and c2.params.wh == (32, 32)
    # anchor of the doubled crop is the doubled params' anchor; window origin doubled
    assert (c2.table.anchor_u[0], c2.table.anchor_v[0]) == c2.params.anchor_uv
    assert c2.window_origin == (2 * win[2], 2 * win[3])
    assert c2.table.x[0] == 200.5 and c2.table.separation_px[0] == 60.0
    # outside pixels stay outside, inside ones are >= 1
    assert (c2.windows[0, :, :6] == OUTSIDE).all() and (c2.windows[0, :, 6:] >= 1).all()
