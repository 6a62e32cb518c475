"""Training labels of real truth cells for the learned segmenter (benchmarks/morphology_learned.py,
docs/MORPHOLOGY_LEARNED.md): the rasterisation of truth outlines / polylines and the mapping of a
truth cell into an inference-style crop. No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from spermtrack.morphology.crops import CropParams
from spermtrack.morphology.train_seg import _mask_lines, rasterize_parts, truth_cell_crop


def test_square_head_gives_its_area():
    # pixel centres at integers: a square from 4.5 to 14.5 covers exactly pixels 5..14
    sq = [(4.5, 4.5), (14.5, 4.5), (14.5, 14.5), (4.5, 14.5)]
    m = rasterize_parts(sq, shape=(32, 48))
    assert m["head"].sum() == 100
    ys, xs = np.nonzero(m["head"])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (5, 14, 5, 14)
    assert m["midpiece"].sum() == 0 and m["tail"].sum() == 0


@pytest.mark.parametrize("r", [3.0, 4.3, 6.0])
def test_disc_head_area_within_5_percent(r):
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    disc = np.c_[20 + r * np.cos(t), 16 + r * np.sin(t)]
    area = rasterize_parts(disc, shape=(32, 48))["head"].sum()
    assert abs(area - np.pi * r * r) <= 0.05 * np.pi * r * r + 1


def test_lines_are_label_width_wide_and_parts_disjoint():
    sq = [(4.5, 4.5), (14.5, 4.5), (14.5, 14.5), (4.5, 14.5)]
    m = rasterize_parts(sq, [(14.5, 10.0), (20.0, 10.0)], [(20.0, 10.0), (40.0, 10.0)], shape=(32, 48),
                        label_width=3)
    assert not (m["head"] & m["midpiece"]).any()
    assert not ((m["head"] | m["midpiece"]) & m["tail"]).any()
    # a horizontal 3-px line: 3 rows at x = 30
    assert m["tail"][:, 30].sum() == 3 and m["tail"][9:12, 30].all()
    # 20 px long (+ at most a label width of end caps), minus what the midpiece took
    assert 3 * 18 <= m["tail"].sum() <= 3 * 24
    lines = _mask_lines(m, 48, 32)
    assert sorted({ln.split()[0] for ln in lines}) == ["0", "1", "2"]


def test_truth_cell_crop_puts_the_head_at_the_anchor_facing_plus_x():
    # a bright elliptic head at frame (100, 60) whose front points up (-y); the tail goes down
    gray = np.full((160, 200), 40, np.uint8)
    yy, xx = np.mgrid[:160, :200]
    gray[((xx - 100) / 3.0) ** 2 + ((yy - 60) / 4.5) ** 2 <= 1.0] = 220
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    x0, y0 = 50, 20  # the truth geometry is in its crop box's coordinates
    poly = np.c_[100 + 3.0 * np.cos(t), 60 + 4.5 * np.sin(t)] - (x0, y0)
    poly = np.vstack([poly, poly[:1]])  # stored closed
    cell = {"crop": {"x0": x0, "y0": y0},
            "geometry": {"head": {"polygon": poly.tolist(), "base": [100 - x0, 64.5 - y0],
                                  "front": [100 - x0, 55.5 - y0]},
                         "midpiece": {"polyline": [[100 - x0, 64.5 - y0], [100 - x0, 72 - y0]]},
                         "tail": {"polyline": [[100 - x0, 72 - y0], [100 - x0, 90 - y0]]}}}
    params = CropParams(size=64, anchor=0.5).validate()
    crop, m = truth_cell_crop(gray, cell, params)
    assert crop.shape == (64, 64)
    au, av = params.anchor_uv
    ys, xs = np.nonzero(m["head"])
    assert abs(xs.mean() - au) < 0.5 and abs(ys.mean() - av) < 0.5
    # turned so the head's long axis lies along x, the flagellum behind it (-x)
    assert np.ptp(xs) > np.ptp(ys)
    assert np.nonzero(m["tail"])[1].max() < au and np.nonzero(m["midpiece"])[1].max() < au
    # the labels sit on the bright head of the crop
    assert crop[m["head"] > 0].mean() > 150 and crop[m["head"] == 0].mean() < 80


def test_yolo_seg_note_quotes_the_measured_held_back_numbers():
    # the note (warning / --help) must quote what benchmarks/morphology_learned.py last measured
    import re
    from pathlib import Path

    from spermtrack.morphology.segment import EXPERIMENTAL_NOTE, EXPERIMENTAL_NOTES

    md = (Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "morphology_learned.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r"^\| \*\*held-back\*\* \| (classical|yolo-seg \(learned\)) \| [^|]+\| (\d+\.\d+) \(", md, re.M)}
    assert set(rows) == {"classical", "yolo-seg (learned)"}
    assert "does NOT beat classical" in md  # the note says "worse": only true while the benchmark says so
    assert EXPERIMENTAL_NOTES["yolo-seg"] == EXPERIMENTAL_NOTE and EXPERIMENTAL_NOTE.startswith("experimental")
    assert f"{rows['yolo-seg (learned)']} um vs {rows['classical']} um" in EXPERIMENTAL_NOTE
