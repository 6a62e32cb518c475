"""Fast checks of the real-data benchmark helpers (benchmarks/realdata.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import realdata as rd  # noqa: E402


def test_read_yolo_labels_to_pixels(tmp_path):
    p = tmp_path / "v_frame_0.txt"
    p.write_text("0 0.5 0.25 0.0375 0.05\n\n1 0.1 0.2 0.1 0.1\n")
    a = rd.read_yolo_labels(p, 640, 480)
    assert a.shape == (2, 5)
    np.testing.assert_allclose(a[0], [0, 319.5, 119.5, 24, 24])  # pixel-centre coordinates
    empty = tmp_path / "e.txt"
    empty.write_text("")
    assert rd.read_yolo_labels(empty).shape == (0, 5)
    bad = tmp_path / "b.txt"
    bad.write_text("0 0.5 0.5\n")
    with pytest.raises(ValueError, match="b.txt:1"):
        rd.read_yolo_labels(bad)


def test_match_frame_counts_and_ignored_objects():
    # two sperm heads, one cluster (class 1, 40x40 box at (300, 300)), one pinhead at (500, 100)
    truth = rd.Truth.from_labels(np.array([[0, 100, 100, 24, 22], [0, 200, 100, 24, 22],
                                           [1, 300, 300, 40, 40], [2, 500, 100, 8, 8]], float))
    pred = np.array([[103, 104],      # TP (5 px)
                     [209, 100],      # 9 px from the 2nd head: not a match -> FP
                     [315, 315],      # inside the cluster box -> ignored
                     [290, 290],      # inside the cluster box too -> ignored (several per cluster)
                     [506, 104],      # 7.2 px from the pinhead -> ignored
                     [50, 400]])      # FP
    m = rd.match_frame(pred, truth)
    assert (m.tp, m.fp, m.fn, m.ignored) == (1, 2, 1, 3)
    assert m.precision == pytest.approx(1 / 3) and m.recall == pytest.approx(0.5)
    # the same matching, by index: which prediction matched which head, which are false positives
    pi, ti, fp, n_ign = rd.match_frame_detail(pred, truth)
    assert pi.tolist() == [0] and ti.tolist() == [0] and fp.tolist() == [1, 5] and n_ign == 3
    # a prediction on a sperm head next to a cluster is matched to the head first
    m2 = rd.match_frame(np.array([[100, 100]]), truth)
    assert (m2.tp, m2.fp, m2.ignored) == (1, 0, 0)


def test_score_frames_sums_and_one_to_one():
    t = rd.Truth.from_labels(np.array([[0, 10, 10, 20, 20]], float))
    m = rd.score_frames([np.array([[10, 10], [11, 11]]), np.zeros((0, 2))], [t, t])
    assert (m.tp, m.fp, m.fn) == (1, 1, 1)
    assert m.n_pred == [2, 0] and m.n_true == [1, 1]


def test_fixed_boxes_and_peers_on_a_toy_frame():
    import pandas as pd

    tr = pd.DataFrame({"track_id": [1], "frame": [0], "x": [5.0], "y": [6.0], "w": [3.0], "h": [40.0]})
    out = rd.with_fixed_boxes(tr, 22)
    assert out[["w", "h"]].to_numpy().tolist() == [[22.0, 22.0]] and tr["w"].iat[0] == 3.0
    img = np.full((120, 160), 60, np.uint8)
    img[40:48, 50:58] = 250
    img[90:97, 120:126] = 250
    for fn in (rd.otsu_cc_centres, rd.simple_blob_centres):
        c = fn(img, "bright")
        assert len(c) == 2, fn.__name__
        assert np.min(np.linalg.norm(c - [53.5, 43.5], axis=1)) < 1.5
    dark = 255 - img
    assert len(rd.otsu_cc_centres(dark, "dark")) == 2


@pytest.mark.skipif(not rd.LABELS11.is_dir(), reason="real VISEM data (../shared/data) absent")
def test_real_labels_and_gt_tracks_agree():
    a = rd.read_yolo_labels(rd.label_path(rd.LABELS11, 11, 0))
    t = rd.Truth.from_labels(a)
    assert t.n_sperm > 20 and (t.xy[:, 0] < 640).all() and (t.xy[:, 1] < 480).all()
    gt = rd.read_gt_tracks(11)
    assert gt["track_id"].nunique() == 55
    # frame 0 of the official gt tracks holds the same heads as label file 0 (within a pixel)
    g0 = gt[gt["frame"] == 0][["x", "y"]].to_numpy()
    m = rd.match_frame(g0, t, 1.5)
    assert m.tp == t.n_sperm == len(g0)


# --- benchmarks/id_switches_real.py helpers ----------------------------------------------------

def _toy_detection_set():
    import pandas as pd

    from benchmarks import id_switches as ids

    rows = []
    for f in range(40):
        rows += [(1, f, 100.0 + 3 * f, 100.0), (2, f, 300.0, 50.0 + 2 * f)]
    gt = pd.DataFrame(rows, columns=["track_id", "frame", "x", "y"]).assign(w=14.0, h=14.0)
    return ids._oracle_set("noisy", gt, 40, 50.0, jitter_px=1.0, drop="random", drop_frac=0.1, fp_frac=0.0, seed=3)


def test_id_switches_real_seed_scheme():
    from benchmarks import id_switches_real as isr

    assert [isr.seed_of(12, s) for s in ("clean", "noisy", "hard")] == [12000, 12001, 12002]   # earlier scheme
    seeds = {isr.seed_of(v, s, k) for v in (11, 12) for s in isr.NOISE for k in range(3)}
    assert len(seeds) == 2 * 3 * 3                                                              # all distinct


def test_id_switches_real_mean_sd_and_targets():
    from benchmarks import id_switches_real as isr

    assert isr.mean_sd([1, 2, 3]) == "2.0 ± 1.0"
    assert isr.mean_sd([10, 14, 12], minmax=True) == "12.0 ± 2.0 (10-14)"
    assert isr.mean_sd([0.9], 1, 100.0) == "90.0 ± 0.0"
    recs = {"ours online": {"HOTA": 0.70, "IDSW": 40}, "ours + refine": {"HOTA": 0.90, "IDSW": 10},
            "A online": {"HOTA": 0.95, "IDSW": 2},            # online peer rows are not the reference
            "A + refine": {"HOTA": 0.87, "IDSW": 30}, "B + refine": {"HOTA": 0.80, "IDSW": 20}}
    ok, text = isr.target_check(recs)
    assert ok and "vs 87.0 (A + refine" in text and "vs 20 (B + refine" in text
    recs["B + refine"]["IDSW"] = 19                         # 10 > 19 / 2
    assert not isr.target_check(recs)[0]
    recs["B + refine"]["IDSW"] = 20
    recs["A + refine"]["HOTA"] = 0.885                      # 90.0 < 88.5 + 2
    assert not isr.target_check(recs)[0]


def test_id_switches_real_rows_refine_every_tracker_the_same_way():
    import pandas as pd

    from benchmarks import id_switches_real as isr

    ds = _toy_detection_set()
    trk = ((isr.OURS, None), ("SORT", "sort"))
    out = isr.run_rows(ds, trackers=trk)
    assert [r for r, _, _ in out] == ["ours online", "ours + refine", "SORT online", "SORT + refine"]
    for (_, online, t_on), (_, refined, t_ref) in zip(out[::2], out[1::2]):
        assert t_ref >= t_on
        pd.testing.assert_frame_equal(refined, isr.refine(online, ds.fps))
        assert refined["interpolated"].any()                # the 10 % drops are filled
    kept = isr.run_rows(ds, trackers=trk, keep=lambda n: n.startswith("SORT"))
    assert [r for r, _, _ in kept] == ["SORT online", "SORT + refine"]


@pytest.mark.skipif(not rd.GT_DIR.is_dir(), reason="real VISEM gt tracks (../shared/data) absent")
def test_id_switches_real_sets_keep_the_earlier_scheme_at_k0():
    from benchmarks import id_switches as ids
    from benchmarks import id_switches_real as isr

    sets = isr.build_sets(14, 60, n_seeds=3)
    assert [(ds.name, k) for k, ds in sets] == [("clean", 0), ("noisy", 0), ("noisy", 1), ("noisy", 2),
                                                ("hard", 0), ("hard", 1), ("hard", 2)]
    gt = sets[0][1].gt
    ref = ids._oracle_set("hard", gt, sets[0][1].n_frames, 50.0, jitter_px=2.0, drop="runs", drop_frac=0.08,
                          fp_frac=0.05, seed=14002)
    got = sets[4][1]
    assert sorted(got.dets) == sorted(ref.dets)
    assert all(np.array_equal(got.dets[f].ltwh, ref.dets[f].ltwh) for f in ref.dets)
    assert not all(np.array_equal(sets[5][1].dets.get(f, ref.dets[f]).ltwh, ref.dets[f].ltwh) for f in ref.dets)


def test_error_anatomy_groups_misses_by_track_and_false_positives_by_site(monkeypatch, tmp_path):
    """A head missed on every frame tops the miss table; a false positive that stays in one place
    is one persistent site, a wandering one is not."""
    import pandas as pd

    from benchmarks import real_detection as R

    n = 60
    gt = pd.DataFrame({"track_id": np.repeat([1, 2], n), "frame": np.tile(np.arange(n), 2),
                       "x": np.r_[np.full(n, 100.0), np.full(n, 300.0)], "y": np.r_[np.full(n, 100.0), np.full(n, 5.0)],
                       "w": 22.0, "h": 22.0, "cls": 0})
    monkeypatch.setattr(rd, "read_gt_tracks", lambda vid, sperm_only=True: gt)
    (tmp_path / "video11_gt_mot.txt.gz").write_bytes(b"")  # present; its content comes from read_gt_tracks
    monkeypatch.setattr(rd, "GT_DIR", tmp_path)
    truth = rd.Truth.from_labels(np.array([[0, 100, 100, 22, 22], [0, 300, 5, 22, 22]], float))
    preds = [np.array([[101.0, 100.0], [500.0, 200.0], [20.0 + 9 * f, 400.0]]) for f in range(n)]
    v = {"frames": list(range(n)), "ours0": preds, "truth": [truth] * n}
    text = "\n".join(R.error_anatomy(v, 0, n - 1))
    assert f"{n} misses, {2 * n} false positives" in text
    assert f"| 2 | {n} | {n} | 100.0% | (300, 5) | 0.0 | yes |" in text
    assert "1 persistent sites" in text and f"| (500, 200) | {n} | 0-{n - 1} | none |" in text
