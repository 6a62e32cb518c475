"""ResNet50 ReID: crops, a short real training on synthetic tracks, loading, on-demand use."""

from __future__ import annotations

import numpy as np
import pytest

from spermtrack.cli.main import main
from spermtrack.errors import InputFileError
from spermtrack.tracker.reid import INPUT_PX, ReIDTrainConfig, batch_hard_triplet, crop_heads, load_embedder, train_reid


def test_crops_are_centred_with_subpixel_precision():
    img = np.zeros((60, 80), np.uint8)
    img[30, 40] = 255
    c = crop_heads(img, np.array([[40.0, 30.0], [2.0, 2.0]]), crop_px=16, out_px=16)
    assert c.shape == (2, 16, 16)
    yy, xx = np.unravel_index(np.argmax(c[0]), c[0].shape)
    assert (yy, xx) == (8, 8)
    assert c[1].dtype == np.uint8  # near the border: reflected, no exception


def test_batch_hard_triplet_is_zero_when_ids_are_separated():
    import torch

    emb = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert float(batch_hard_triplet(emb, labels, 0.3)) == 0.0
    assert float(batch_hard_triplet(emb, torch.tensor([0, 1, 0, 1]), 0.3)) > 1.0


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    from spermtrack.synth import generate

    out = tmp_path_factory.mktemp("reid_synth")
    generate(out, videos=1, seconds=0.6, fps=50, cells=12, width=320, height=240, seed=3, write_images=False)
    return out


@pytest.mark.slow
def test_train_load_embed_and_track_with_reid(synth_data, tmp_path):
    weights = tmp_path / "reid.pt"
    cfg = ReIDTrainConfig(epochs=1, ids_per_batch=4, crops_per_id=2, crops_per_track=4, embedding_dim=32)
    train_reid(synth_data, weights, cfg)
    assert weights.is_file() and weights.with_suffix(".json").is_file()
    # tensors and plain values only: readable with weights_only=True, header as JSON text
    import json

    import torch

    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"header", "state_dict"}
    assert json.loads(ckpt["header"])["embedding_dim"] == 32
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())
    emb = load_embedder(weights)
    crops = np.random.default_rng(0).integers(0, 255, (5, INPUT_PX, INPUT_PX), dtype=np.uint8)
    e = emb.embed_crops(crops)
    assert e.shape == (5, 32)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert emb.n_computed == 5

    # the track CLI with ReID on demand, on the video's own ground-truth boxes as detections
    video = next(synth_data.rglob("*.mp4"))
    from spermtrack.io.mot import read_mot, write_mot_detections
    from spermtrack.types import Detections

    gt = read_mot(video.parent / "gt" / "gt.txt")
    dets = {int(f): Detections.from_centers(g[["x", "y"]].to_numpy(), g[["w", "h"]].to_numpy())
            for f, g in gt.groupby("frame")}
    det_path = tmp_path / "dets.txt"
    write_mot_detections(det_path, dets)
    out = tmp_path / "tracks.txt"
    assert main(["track", "--detections", str(det_path), "--out", str(out), "--fps", "50",
                 "--video", str(video), "--reid-weights", str(weights)]) == 0
    assert read_mot(out).track_id.nunique() >= 1


def test_bad_weights_are_clear_errors(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        load_embedder(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError, match="not a spermtrack ReID checkpoint"):
        load_embedder(bad)
    import torch

    for blob in ({"state_dict": {}}, {"header": "{not json", "state_dict": {}}, [1, 2],
                 {"header": {"embedding_dim": 8}, "state_dict": {"w": 3}}):
        torch.save(blob, bad)
        with pytest.raises(InputFileError, match="not a spermtrack ReID checkpoint"):
            load_embedder(bad)
    # (crafted pickles that would run code: tests/test_security.py)
