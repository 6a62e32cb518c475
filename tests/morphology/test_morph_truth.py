"""The real morphology truth set (tests/data/morph_truth/, docs/MORPHOLOGY_TRUTH.md): it loads,
holds at least 40 distinct real cells, its geometry is sane, and the annotation tool regenerates
the geometry and an overlay from the stored inputs. Uses only the repository's files (no shared
data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import morph_truth_tool as T  # noqa: E402
from conftest import shared_file  # noqa: E402

TRUTH = ROOT / "tests" / "data" / "morph_truth"
UM = 0.5


@pytest.fixture(scope="module")
def data():
    return json.loads((TRUTH / "cells.json").read_text())


@pytest.fixture(scope="module")
def accepted(data):
    return [c for c in data["cells"] if c["status"] == "accepted"]


def _arc(p) -> float:
    p = np.asarray(p, float)
    return float(np.hypot(*np.diff(p, axis=0).T).sum())


def _inside(p, w, h) -> bool:
    p = np.asarray(p, float)
    return bool((p[:, 0] >= -0.5).all() and (p[:, 0] <= w - 0.5).all() and (p[:, 1] >= -0.5).all()
                and (p[:, 1] <= h - 0.5).all())


def _dist_to_polyline(pt, poly) -> float:
    pt, poly = np.asarray(pt, float), np.asarray(poly, float)
    a, b = poly[:-1], poly[1:]
    ab = b - a
    t = np.clip(((pt - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    q = a + t[:, None] * ab
    return float(np.hypot(*(q - pt).T).min())


def test_at_least_40_distinct_real_cells(data, accepted):
    assert len(accepted) >= 40
    ids = [c["id"] for c in data["cells"]]
    assert len(ids) == len(set(ids))
    # distinct cells: one per official track / label, and no two heads at the same place of a frame
    keys = {(c["source"]["video"], c["source"].get("track_id"), c["source"].get("label_index")) for c in accepted}
    assert len(keys) == len(accepted)
    for i, a in enumerate(accepted):
        for b in accepted[i + 1:]:
            if (a["source"]["video"], a["source"]["frame"]) == (b["source"]["video"], b["source"]["frame"]):
                assert np.hypot(*np.subtract(a["source"]["head_xy"], b["source"]["head_xy"])) > 3.0
    assert {c["source"]["video"] for c in accepted} == {11, 12}
    # provenance: where every cell comes from
    for c in data["cells"]:
        s = c["source"]
        assert s["dataset"] == "VISEM-Tracking" and s["file"] and s["frame"] >= 0
        assert ("track_id" in s) or ("label_index" in s)
        if c["status"] != "accepted":
            assert c["notes"], f"{c['id']}: a rejected cell says why"


def test_fixed_split_and_difficulty(accepted):
    splits = pd.Series([c["split"] for c in accepted])
    assert set(splits) == {"tune", "held"}
    assert splits.value_counts().min() >= 15
    assert {c["difficulty"] for c in accepted} <= {"easy", "hard"}
    assert any(c["difficulty"] == "hard" for c in accepted)
    for c in accepted:
        if c["difficulty"] == "hard":
            assert c["hard_reasons"], f"{c['id']}: a hard cell says why"


def _need_shared_sources():
    """Crops are cut from the shared VISEM frames (never copied into the repo): skip without them."""
    shared_file("data", "visem", "Train", "11", "11.mp4")
    shared_file("data", "visem", "frames12", "12_frame_0.jpg")


def test_crops_and_geometry_are_sane(accepted):
    _need_shared_sources()
    n_mid = n_tail = 0
    for c in accepted:
        cr = c["crop"]
        img = T.load_crop(c, TRUTH)
        assert img is not None and img.shape == (cr["h"], cr["w"]), c["id"]
        assert cr["x0"] >= 0 and cr["y0"] >= 0 and cr["x0"] + cr["w"] <= 640 and cr["y0"] + cr["h"] <= 480
        np.testing.assert_allclose(np.add(cr["head_uv"], [cr["x0"], cr["y0"]]), c["source"]["head_xy"], atol=0.02)
        g = c["geometry"]
        poly = np.asarray(g["head"]["polygon"], float)
        assert len(poly) >= 7 and np.allclose(poly[0], poly[-1]), f"{c['id']}: head polygon closed"
        assert _inside(poly, cr["w"], cr["h"])
        area = cv2.contourArea(poly.astype(np.float32))
        assert area > 4.0
        # the labelled head centre lies in or next to the outline
        inside = cv2.pointPolygonTest(poly.astype(np.float32), tuple(float(v) for v in cr["head_uv"]), True)
        assert inside > -3.0, f"{c['id']}: head centre {inside:.1f} px outside its outline"
        L, W, _, _ = T.feret(poly[:-1])
        assert L == pytest.approx(g["head"]["length_px"], abs=1e-3)
        assert W == pytest.approx(g["head"]["width_px"], abs=1e-3)
        assert 1.5 <= L * UM <= 8.0 and 1.0 <= W * UM <= 5.0 and W <= L + 1e-9, c["id"]
        base = np.asarray(g["head"]["base"], float)
        assert _dist_to_polyline(base, poly) < 0.2
        start = base
        if g.get("midpiece"):
            n_mid += 1
            mp = np.asarray(g["midpiece"]["polyline"], float)
            assert _inside(mp, cr["w"], cr["h"])
            assert np.hypot(*(mp[0] - base)) < 0.5
            assert _arc(mp) == pytest.approx(g["midpiece"]["length_px"], abs=1e-2)
            assert 1.0 <= _arc(mp) * UM <= 8.0, c["id"]
            start = mp[-1]
        if g.get("tail"):
            n_tail += 1
            tp = np.asarray(g["tail"]["polyline"], float)
            assert _inside(tp, cr["w"], cr["h"])
            assert np.hypot(*(tp[0] - start)) < 0.5, f"{c['id']}: the tail starts where the midpiece ends"
            assert _arc(tp) == pytest.approx(g["tail"]["length_px"], abs=1e-2)
            assert _arc(tp) * UM <= 70.0
            # no jumps: consecutive points about 1 px apart
            assert np.hypot(*np.diff(tp, axis=0).T).max() < 2.0
            assert c["tail_end"] in ("clear", "fades", "cut")
            assert c["tail_end_visible"] == (c["tail_end"] in ("clear", "fades"))
        else:
            assert not c["tail_end_visible"]
    assert n_mid >= 10 and n_tail >= 30


def test_measurements_table_matches_the_json(accepted):
    m = pd.read_csv(TRUTH / "measurements.csv").set_index("cell_id")
    assert set(m.index) == {c["id"] for c in accepted}
    for c in accepted:
        g, r = c["geometry"], m.loc[c["id"]]
        assert r.head_length_px == pytest.approx(g["head"]["length_px"], abs=0.01)
        assert r.head_width_px == pytest.approx(g["head"]["width_px"], abs=0.01)
        assert r.split == c["split"]
        if g.get("tail"):
            assert r.tail_length_px == pytest.approx(g["tail"]["length_px"], abs=0.01)
        else:
            assert np.isnan(r.tail_length_px)
    # plausible real values (um at 0.5 um/px): bright phase-contrast heads of a few um
    assert 2.0 <= (m.head_length_px * UM).median() <= 6.0
    assert (m.midpiece_length_px.dropna() * UM).median() == pytest.approx(4.0, abs=2.0)


def test_tool_regenerates_geometry_and_overlay(accepted, tmp_path):
    _need_shared_sources()
    # a few cells of each kind (midpiece, clear / fading / cut tail, head only): fast
    pick = {}
    for c in accepted:
        kind = (bool(c["geometry"].get("midpiece")), c.get("tail_end") if c["geometry"].get("tail") else "none")
        pick.setdefault(kind, c)
    assert len(pick) >= 4
    for c in pick.values():
        img = T.load_crop(c, TRUTH)
        geo = T.build_cell(c, img)
        for part in ("head", "midpiece", "tail"):
            if c["geometry"].get(part) is None:
                assert geo.get(part) is None
            else:
                assert geo[part]["length_px"] == pytest.approx(c["geometry"][part]["length_px"], abs=0.05), (c["id"], part)
        panel = T.render_cell(c, img)
        assert panel.ndim == 3 and panel.shape[2] == 3
        assert panel.shape[0] >= img.shape[0] * T.SCALE and panel.shape[1] >= 2 * img.shape[1] * T.SCALE
        # the overlay half differs from the raw half: geometry was drawn
        h, w = img.shape[0] * T.SCALE, img.shape[1] * T.SCALE
        assert np.abs(panel[:h, :w].astype(int) - panel[:h, w + 4:2 * w + 4].astype(int)).sum() > 0
        out = tmp_path / f"{c['id']}.png"
        assert cv2.imwrite(str(out), panel) and out.stat().st_size > 0
    sheet = T.render_sheet(list(pick.values()), [T.load_crop(c, TRUTH) for c in pick.values()], scale=1, cols=3)
    assert sheet.ndim == 3


def test_truth_set_is_small():
    total = sum(p.stat().st_size for p in TRUTH.rglob("*") if p.is_file())
    assert total < 1.5e6
    assert {p.suffix for p in TRUTH.rglob("*") if p.is_file()} <= {".png", ".json", ".csv"}
