"""Tracking metrics: the published MOTChallenge TUD values and hand-worked tiny cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.evaluate.metrics import (
    COUNT_KEYS,
    SCORE_KEYS,
    box_iou_ltwh,
    build_trackeval_data,
    evaluate_many,
    evaluate_mot_files,
    evaluate_tracks,
)

# shared/data/mot/README.md (py-motmetrics' expected values; HOTA from TrackEval). FM is
# compared with TrackEval's Frag (same on these sequences), MOTP(dist) with 1 - MOTP (IoU).
README = {
    "TUD-Campus": dict(IDF1=0.557659, IDP=0.729730, IDR=0.451253, recall=0.582173, precision=0.941441,
                       num_gt_ids=8, MT=1, PT=6, ML=1, FP=13, FN=150, IDSW=7, Frag=7, MOTA=0.526462,
                       MOTP_dist=0.277201, HOTA=0.391397),
    "TUD-Stadtmitte": dict(IDF1=0.644619, IDP=0.819760, IDR=0.531142, recall=0.608997, precision=0.939920,
                           num_gt_ids=10, MT=5, PT=4, ML=1, FP=45, FN=452, IDSW=7, Frag=6, MOTA=0.564014,
                           MOTP_dist=0.345904, HOTA=0.397849),
    "overall": dict(IDF1=0.624296, IDP=0.799176, IDR=0.512211, recall=0.602640, precision=0.940268,
                    num_gt_ids=18, MT=6, PT=10, ML=2, FP=58, FN=602, IDSW=14, Frag=13, MOTA=0.555116,
                    MOTP_dist=0.330177),
}
REQUIRED_JSON_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag", "MT", "ML")


def _check_reference(res: dict, expected: dict) -> None:
    for key, want in expected.items():
        got = 1.0 - res["MOTP"] if key == "MOTP_dist" else res[key]
        if isinstance(want, int):
            assert got == want and isinstance(got, int), (key, got, want)
        else:
            assert got == pytest.approx(want, abs=1e-3), (key, got, want)


def _tud(name: str) -> tuple:
    return (shared_file("data", "mot", name, "gt.txt"), shared_file("data", "mot", name, "test.txt"))


@pytest.mark.parametrize("seq", ["TUD-Campus", "TUD-Stadtmitte"])
def test_reproduces_readme_per_sequence(seq):
    gt, pred = _tud(seq)
    _check_reference(evaluate_mot_files(gt, pred), README[seq])


def test_reproduces_readme_overall_with_trackeval_combination():
    pairs = {s: _tud(s) for s in ("TUD-Campus", "TUD-Stadtmitte")}
    res = evaluate_many(pairs)
    _check_reference(res["overall"], README["overall"])
    for s in pairs:
        _check_reference(res["sequences"][s], README[s])
    # TrackEval's combination equals evaluating one long sequence made of both, ids kept apart
    # (HOTA included: AssA is a per-match average, so the TP-weighted mean is the pooled value)
    from spermtrack.io.mot import read_mot

    parts, offset_frames = {"gt": [], "pred": []}, 0
    for k, s in enumerate(pairs):
        gt, pred = (read_mot(p) for p in pairs[s])
        n = int(max(gt.frame.max(), pred.frame.max())) + 1
        for key, t in (("gt", gt), ("pred", pred)):
            parts[key].append(t.assign(frame=t.frame + offset_frames, track_id=t.track_id + 1000 * k))
        offset_frames += n
    joined = evaluate_tracks(pd.concat(parts["gt"]), pd.concat(parts["pred"]))
    for key, v in res["overall"].items():
        assert joined[key] == pytest.approx(v, abs=1e-12), key
    # a list of pairs, files and tables mixed, gives the same
    gt_c, pred_c = pairs["TUD-Campus"]
    res2 = evaluate_many([(gt_c, read_mot(pred_c)), pairs["TUD-Stadtmitte"]])
    assert list(res2["sequences"]) == ["seq0", "seq1"]
    assert res2["overall"] == pytest.approx(res["overall"])


def test_iou_matches_trackeval():
    from trackeval.datasets._base_dataset import _BaseDataset

    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0, 50, (40, 2)), rng.uniform(0, 30, (40, 2))])
    b = np.column_stack([rng.uniform(0, 50, (30, 2)), rng.uniform(0, 30, (30, 2))])
    a[0, 2] = 0.0  # a zero-area box
    want = _BaseDataset._calculate_box_ious(a.copy(), b.copy(), box_format="xywh")
    np.testing.assert_allclose(box_iou_ltwh(a, b), want, atol=1e-12)
    assert box_iou_ltwh(a[:0], b).shape == (0, 30)


# ---- hand-made sequences -------------------------------------------------------------------

def _tracks(rows) -> pd.DataFrame:
    """rows of (track_id, frame, x, y); boxes are 10 x 10 px."""
    df = pd.DataFrame(rows, columns=["track_id", "frame", "x", "y"])
    df["w"] = 10.0
    df["h"] = 10.0
    return df


def _two_objects(n=10, ids=(1, 2)):
    # A at x=20, B at x=100: far apart, so no box of one overlaps the other
    return _tracks([(ids[0], t, 20.0, 50.0) for t in range(n)] + [(ids[1], t, 100.0, 50.0) for t in range(n)])


def test_perfect_tracking_scores_one():
    gt = _two_objects()
    pred = _two_objects(ids=(10**12, -7))  # arbitrary ids
    r = evaluate_tracks(gt, pred)
    for k in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "recall", "precision"):
        assert r[k] == pytest.approx(1.0), k
    assert (r["IDSW"], r["Frag"], r["MT"], r["PT"], r["ML"], r["FP"], r["FN"]) == (0, 0, 2, 0, 0, 0, 0)
    assert (r["num_gt_ids"], r["num_pred_ids"], r["num_frames"]) == (2, 2, 10)
    assert set(r) == set(COUNT_KEYS) | set(SCORE_KEYS)
    assert all(type(r[k]) is int for k in COUNT_KEYS) and all(type(r[k]) is float for k in SCORE_KEYS)


def test_one_id_switch_worked_values():
    # A is followed by pred 1 in all 10 frames; B by pred 2 in frames 0-4, then by pred 3.
    gt = _two_objects()
    pred = _tracks([(1, t, 20.0, 50.0) for t in range(10)]
                   + [(2 if t < 5 else 3, t, 100.0, 50.0) for t in range(10)])
    r = evaluate_tracks(gt, pred)
    assert r["IDSW"] == 1 and r["Frag"] == 0 and r["FP"] == 0 and r["FN"] == 0
    assert r["MOTA"] == pytest.approx((20 - 0 - 1) / 20)
    # Identity: best one-to-one A<->1 (10 frames), B<->2 or 3 (5): IDTP 15, IDFP = IDFN = 5
    assert (r["IDTP"], r["IDFP"], r["IDFN"]) == (15, 5, 5)
    assert r["IDF1"] == pytest.approx(15 / (15 + 0.5 * 5 + 0.5 * 5))
    # HOTA: every box matched at IoU 1 (DetA 1); AssA = (10*1 + 5*(5/10) + 5*(5/10)) / 20 = 0.75
    assert r["DetA"] == pytest.approx(1.0)
    assert r["AssA"] == pytest.approx(0.75)
    assert r["HOTA"] == pytest.approx(np.sqrt(0.75))


def test_partial_overlap_worked_values_and_threshold():
    # pred box shifted 2 px: intersection 8*10 = 80, union 120, IoU 2/3
    gt = _tracks([(1, t, 20.0, 50.0) for t in range(6)])
    pred = _tracks([(5, t, 22.0, 50.0) for t in range(6)])
    r = evaluate_tracks(gt, pred)
    assert r["MOTP"] == pytest.approx(2 / 3) and r["MOTA"] == pytest.approx(1.0)
    # HOTA's alphas 0.05..0.95 (19): matched for the 13 alphas <= 2/3, nothing above
    assert r["DetA"] == pytest.approx(13 / 19) and r["AssA"] == pytest.approx(13 / 19)
    assert r["HOTA"] == pytest.approx(13 / 19)
    assert r["LocA"] == pytest.approx((13 * 2 / 3 + 6 * 1.0) / 19)  # LocA is 1 where nothing matched
    strict = evaluate_tracks(gt, pred, iou_threshold=0.7)
    assert (strict["TP"], strict["FP"], strict["FN"]) == (0, 6, 6)
    assert strict["MOTA"] == pytest.approx(-1.0) and strict["IDF1"] == 0.0
    assert strict["HOTA"] == pytest.approx(r["HOTA"])  # HOTA does not use the threshold


def test_all_false_positives():
    gt = _tracks([(1, t, 20.0, 50.0) for t in range(5)])
    pred = _tracks([(1, t, 200.0, 50.0) for t in range(5)])  # never overlaps
    r = evaluate_tracks(gt, pred)
    assert (r["TP"], r["FP"], r["FN"], r["IDSW"], r["ML"]) == (0, 5, 5, 0, 1)
    assert r["MOTA"] == pytest.approx((0 - 5 - 0) / 5)
    for k in ("HOTA", "DetA", "AssA", "IDF1", "recall", "precision"):
        assert r[k] == 0.0, k


def test_empty_prediction():
    gt = _two_objects(n=4)
    pred = gt.iloc[:0]
    r = evaluate_tracks(gt, pred)
    assert r["MOTA"] == 0.0 and r["HOTA"] == 0.0 and r["recall"] == 0.0 and r["IDF1"] == 0.0
    assert (r["FN"], r["FP"], r["ML"], r["MT"], r["num_pred_ids"], r["num_frames"]) == (8, 0, 2, 0, 0, 4)


def test_empty_gt_and_both_empty():
    pred = _two_objects(n=3)
    r = evaluate_tracks(pred.iloc[:0], pred)
    assert (r["FP"], r["FN"], r["num_gt_ids"]) == (6, 0, 0)
    assert r["MOTA"] == 0.0 and r["HOTA"] == 0.0 and r["precision"] == 0.0
    r = evaluate_tracks(pred.iloc[:0], pred.iloc[:0])
    assert r["num_frames"] == 0 and r["HOTA"] == 0.0 and r["FP"] == 0 and r["FN"] == 0


def test_mt_boundary_is_strictly_more_than_80_percent():
    # tracked in 4 of 5 frames (ratio exactly 0.8): TrackEval says PT (py-motmetrics would say MT)
    gt = _tracks([(1, t, 20.0, 50.0) for t in range(5)])
    pred = _tracks([(1, t, 20.0, 50.0) for t in range(4)])
    r = evaluate_tracks(gt, pred)
    assert (r["MT"], r["PT"], r["ML"], r["FN"]) == (0, 1, 0, 1)


def test_frag_counts_a_restart_after_an_annotation_gap():
    # A is annotated in frames 0-2 and 5-7 only and tracked whenever annotated; B is always there.
    # TrackEval's Frag counts A's restart at frame 5 (py-motmetrics' FM would count 0).
    gt = _tracks([(1, t, 20.0, 50.0) for t in (0, 1, 2, 5, 6, 7)] + [(2, t, 100.0, 50.0) for t in range(8)])
    r = evaluate_tracks(gt, gt.copy())
    assert r["Frag"] == 1 and r["IDSW"] == 0 and r["MOTA"] == pytest.approx(1.0)


def test_frag_ignores_a_miss_in_a_frame_with_no_prediction_at_all():
    # tracked in frames 0,1,3,4; missed in frame 2. When frame 2 holds another (far) prediction
    # the miss breaks the run (Frag 1, as py-motmetrics' FM); when frame 2 holds no prediction at
    # all TrackEval skips the frame and keeps the run (Frag 0, FM would still be 1).
    gt = _tracks([(1, t, 20.0, 50.0) for t in range(5)])
    tracked = [(1, t, 20.0, 50.0) for t in (0, 1, 3, 4)]
    assert evaluate_tracks(gt, _tracks(tracked + [(9, 2, 300.0, 50.0)]))["Frag"] == 1
    assert evaluate_tracks(gt, _tracks(tracked))["Frag"] == 0


def test_dataframe_order_ids_and_trailing_frames_do_not_change_scores():
    gt = _two_objects()
    pred = _tracks([(1, t, 21.0, 50.0) for t in range(10)] + [(2 if t < 5 else 3, t, 100.0, 52.0) for t in range(10)])
    base = evaluate_tracks(gt, pred)
    shuffled = pred.sample(frac=1.0, random_state=0).assign(track_id=lambda d: d.track_id * 1000 - 99)
    more = evaluate_tracks(gt, shuffled, n_frames=25)
    assert more["num_frames"] == 25
    for k, v in base.items():
        if k != "num_frames":
            assert more[k] == pytest.approx(v), k


def test_bad_inputs_raise_clear_errors():
    gt = _two_objects()
    with pytest.raises(ParameterError, match="n_frames"):
        evaluate_tracks(gt, gt, n_frames=5)
    with pytest.raises(ParameterError, match="iou_threshold"):
        evaluate_tracks(gt, gt, iou_threshold=0.0)
    with pytest.raises(InputFileError, match="box size"):
        evaluate_tracks(gt, gt.drop(columns=["w"]))
    with pytest.raises(InputFileError, match="twice"):
        evaluate_tracks(pd.concat([gt, gt.iloc[:1]]), gt)


def test_trackeval_data_layout():
    gt = _tracks([(7, 0, 20.0, 50.0), (9, 2, 20.0, 50.0)])
    d = build_trackeval_data(gt, gt.iloc[:1])
    assert d["num_timesteps"] == 3 and d["num_gt_ids"] == 2 and d["num_tracker_ids"] == 1
    assert [len(x) for x in d["gt_ids"]] == [1, 0, 1] and [len(x) for x in d["tracker_ids"]] == [1, 0, 0]
    assert d["gt_ids"][2].tolist() == [1] and d["gt_ids"][1].dtype.kind == "i"
    assert [s.shape for s in d["similarity_scores"]] == [(1, 1), (0, 0), (1, 0)]


def test_mot_files_drop_zero_marked_gt(tmp_path):
    gt = tmp_path / "gt.txt"
    pred = tmp_path / "pred.txt"
    # frame 3 of id 2 is marked "ignore" (conf 0) and the tracker missed it: not an FN
    gt.write_text("1,1,10,10,10,10,1,-1,-1,-1\n2,1,10,10,10,10,1,-1,-1,-1\n3,2,80,10,10,10,0,-1,-1,-1\n")
    pred.write_text("1,4,10,10,10,10,-1,-1,-1,-1\n2,4,11,10,10,10,-1,-1,-1,-1\n")
    r = evaluate_mot_files(gt, pred)
    assert (r["FN"], r["FP"], r["num_gt_ids"], r["num_frames"]) == (0, 0, 1, 3)
    assert r["MOTA"] == pytest.approx(1.0) and r["MOTP"] == pytest.approx((1 + 90 / 110) / 2)


def test_cli_writes_json_and_reports_bad_files(tmp_path, capsys):
    from spermtrack.cli.main import main

    gt, pred = _tud("TUD-Campus")
    out = tmp_path / "res" / "metrics.json"
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HOTA" in printed and "0.3914" in printed and "IDSW" in printed
    res = json.loads(out.read_text())
    for k in REQUIRED_JSON_KEYS:
        assert k in res, k
    for k in ("IDSW", "Frag", "MT", "ML"):
        assert isinstance(res[k], int)
    assert res["HOTA"] == pytest.approx(0.391397, abs=1e-3) and res["IDF1"] == pytest.approx(0.557659, abs=1e-3)
    assert res["meta"]["iou_threshold"] == 0.5 and res["meta"]["trackeval_version"] == "1.3.0"
    assert [p.name for p in out.parent.iterdir()] == ["metrics.json"]  # no temporary left behind

    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10\n")
    assert main(["evaluate", "--gt", str(gt), "--pred", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.txt, line 1" in err
