"""Detector truth tests: BlobDetector against synthetic clips with exact head centres, the
detection metrics against hand-computed cases, and the ``detect`` CLI (output format, errors).

Thresholds are what the current detector (calibrated on each clip, shipped classifier) reaches
on these seeds with a safety margin. Measured on medium seed 3 (480x360, the phantom's default
``visem`` look, with its unlabelled distractors): P 1.000 / R 0.928; per population: immotile
0.97, non-progressive 0.99, slow 0.94, rapid 0.88 (fast heads are the hardest); strong gradient:
R 0.91 with HLDNBM, 0.0 with one global background. Real-data detection is judged in benchmarks/results/real_detection.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spermtrack.cli.main import main
from spermtrack.synth import generate, render_frame, simulate_cells
from spermtrack.detect.blob import BlobDetector
from spermtrack.evaluate.detmetrics import (average_precision, detection_scores, match_centres,
                                           truth_frames)
from spermtrack.types import EDGE_OFFSET_PX, Detections


def _clip(difficulty: str, seed: int):
    scene = simulate_cells(seconds=0.4, fps=50, cells=40, seed=seed, difficulty=difficulty, width=480, height=360)
    frames = list(range(0, scene.n_frames, 2))
    return scene, np.stack([render_frame(scene, i) for i in frames]), truth_frames(scene.boxes, frames)


@pytest.fixture(scope="module")
def medium():
    return _clip("medium", 3)


def _recall_by_population(scene, truth, scores) -> pd.Series:
    pop = scene.truth.set_index("track_id")["population"]
    tids = np.concatenate([t["track_id"][~t["ignore"]] for t in truth])
    hit = np.concatenate([m[~t["ignore"]] for m, t in zip(scores.matched, truth)])
    return pd.Series(hit).groupby(pop.reindex(tids).to_numpy()).mean()


# --- metrics on hand cases ---------------------------------------------------------------------

def test_match_centres_is_optimal_not_greedy():
    # greedy nearest-first would pair (4,0)->(6,0) and leave (10,0) unmatched; the optimum pairs both
    pi, ti = match_centres(np.array([[4.0, 0], [10.0, 0]]), np.array([[0.0, 0], [6.0, 0]]), 5.0)
    assert sorted(zip(pi.tolist(), ti.tolist())) == [(0, 0), (1, 1)]
    pi, ti = match_centres(np.array([[0.0, 0]]), np.array([[5.01, 0]]), 5.0)
    assert len(pi) == 0


def test_detection_scores_counts_and_ignore_zone():
    truth = [{"xy": np.array([[10.0, 10], [50, 50], [100, 100]]),
              "xyxy": np.array([[5.0, 5, 15, 15], [45, 45, 55, 55], [90, 90, 110, 110]]),
              "ignore": np.array([False, False, True]), "track_id": np.array([0, 1, 2])}]
    # one hit (3 px off), one far false positive, one prediction 8 px from the ignored box (dropped)
    det = Detections.from_centers(np.array([[13.0, 10], [200, 200], [118, 100]]), np.array([[10.0, 10]] * 3))
    s = detection_scores([det], truth, max_dist_px=5, ignore_px=10)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(0.5) and s.f1 == pytest.approx(0.5)
    assert s.matched[0].tolist() == [True, False, False]
    assert s.mean_error_px == pytest.approx(3.0)


def test_average_precision_hand_case():
    truth = [{"xyxy": np.array([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "ignore": np.array([False, False])},
             {"xyxy": np.array([[0.0, 0, 10, 10], [40, 40, 60, 60]]), "ignore": np.array([False, True])}]
    preds = [Detections(np.array([[0.0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]]), np.array([0.9, 0.8, 0.3]),
                        np.zeros(3, int)),
             Detections(np.array([[1.0, 0, 11, 10], [40, 40, 60, 60]]), np.array([0.7, 0.95]), np.zeros(2, int))]
    # ranked: ignored-box hit (dropped), TP, FP, TP (IoU 90/110), duplicate (FP); 3 truth boxes.
    # recall 1/3, 1/3, 2/3, 2/3; precision envelope 1 up to r=1/3 (34 points: 0.00..0.33),
    # 2/3 up to r=2/3 (33 points: 0.34..0.66), 0 beyond
    assert average_precision(preds, truth) == pytest.approx((34 * 1.0 + 33 * 2 / 3) / 101)
    perfect = [Detections(t["xyxy"][~t["ignore"]], np.ones((~t["ignore"]).sum()), np.zeros((~t["ignore"]).sum(), int))
               for t in truth]
    assert average_precision(perfect, truth) == pytest.approx(1.0)
    assert average_precision([Detections.empty()] * 2, truth) == 0.0


# --- BlobDetector against synthetic truth ------------------------------------------------------

def test_blob_hldnbm_medium_precision_recall(medium):
    scene, frames, truth = medium
    s = detection_scores(BlobDetector().detect(frames), truth)
    assert s.tp + s.fn > 300  # enough heads for the ratios to mean something
    assert s.precision >= 0.97 and s.recall >= 0.9, (s.precision, s.recall)
    assert s.mean_error_px < 1.5


def test_immotile_cells_are_detected(medium):
    scene, frames, truth = medium
    per = _recall_by_population(scene, truth, detection_scores(BlobDetector().detect(frames), truth))
    assert set(per.index) >= {"immotile", "rapid_progressive", "slow_progressive", "non_progressive"}
    assert per["immotile"] >= 0.92, per.to_dict()
    assert per.min() >= 0.83, per.to_dict()


def test_head_centred_outside_the_frame_is_not_reported_without_edge_heads(medium):
    # crop a frame so the right edge passes just beside a well-detected head: with its centre
    # 2 px beyond the last column over half of it still shows (no truth head there: the phantom's
    # truth needs the centre in the frame; measured: 7 of 8 reported without the edge rule, 0 with
    # it); with its centre 2 px inside the last column it is a head to report
    scene, frames, truth = medium
    det = BlobDetector(edge_heads=False)
    full = det.detect_frame(frames[0])
    t = truth[0]
    ok = ~t["ignore"] & (t["xy"][:, 0] > 60) & (t["xy"][:, 1] > 20) & (t["xy"][:, 1] < frames.shape[1] - 20)
    hits = [j for j in np.flatnonzero(ok) if len(full) and np.min(np.linalg.norm(full.centers - t["xy"][j], axis=1)) < 1.5]
    assert len(hits) >= 5
    outside = inside = 0
    for j in hits[:8]:
        x, y = t["xy"][j]
        for shift, want in ((-1, False), (3, True)):
            right = int(round(x)) + shift  # exclusive crop edge: last column is right - 1
            d = det.detect_frame(frames[0][:, :right])
            near = len(d) and bool((np.linalg.norm(d.centers - [min(x, right - 1), y], axis=1) < 6).any())
            outside += (not want) and not near
            inside += want and near
    n = min(len(hits), 8)
    assert outside >= n - 1 and inside >= n - 1, (outside, inside, n)


def test_hldnbm_beats_global_background_under_strong_gradient(medium):
    scene, frames, truth = medium
    ramp = 0.45 + np.arange(frames.shape[2], dtype=np.float32) / frames.shape[2]  # 0.45x .. 1.45x
    lit = np.clip(frames.astype(np.float32) * ramp[None, None, :], 0, 255).astype(np.uint8)
    with_model = detection_scores(BlobDetector(enhance=True).detect(lit), truth)
    without = detection_scores(BlobDetector(enhance=False).detect(lit), truth)
    assert with_model.recall >= 0.85, with_model.recall
    assert with_model.recall > without.recall + 0.3, (with_model.recall, without.recall)


@pytest.mark.parametrize("frame", [np.full((240, 320), 120, np.uint8), np.zeros((240, 320), np.uint8),
                                   np.clip(120 + np.random.default_rng(0).normal(0, 3, (240, 320)), 0, 255
                                           ).astype(np.uint8)], ids=["flat", "black", "noise"])
@pytest.mark.parametrize("enhance", [True, False])
def test_empty_frames_give_no_detections(frame, enhance):
    det = BlobDetector(enhance=enhance).detect(frame)
    assert len(det) == 1 and len(det[0]) == 0


# --- CLI -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    folder = generate(root, videos=1, seconds=0.2, width=320, height=240, cells=15, seed=7, write_images=False)[0]
    return next(folder.glob("*.mp4"))


def test_detect_cli_writes_mot_lines_with_one_based_frames(tiny_video, tmp_path):
    from spermtrack.io.video import VideoReader

    out = tmp_path / "dets.txt"
    assert main(["detect", str(tiny_video), "--out", str(out)]) == 0
    rows = np.array([[float(v) for v in line.split(",")] for line in out.read_text().splitlines()])
    assert rows.shape[1] == 10
    assert (rows[:, 1] == -1).all() and (rows[:, 7:] == -1).all()
    with VideoReader(tiny_video) as reader:
        frames = [f for _, _, f in reader.iter_frames()]
    expected = [d.select(d.cls == 0) for d in BlobDetector().detect(np.stack(frames))]
    # 1-based frames, every frame with detections present, same sperm-head boxes as the detector gives
    assert rows[:, 0].min() == 1 and rows[:, 0].max() == len(frames)
    for i, d in enumerate(expected):
        got = rows[rows[:, 0] == i + 1]
        assert len(got) == len(d)
        np.testing.assert_allclose(got[:, 2:6], d.ltwh + [EDGE_OFFSET_PX, EDGE_OFFSET_PX, 0, 0], atol=1e-3)
        np.testing.assert_allclose(got[:, 6], d.conf, atol=1e-3)


def _error_lines(stderr: str) -> list[str]:
    """The CLI's own error lines (ultralytics' logger may also complain about pytest's closed
    capture streams; that noise is not ours)."""
    lines = stderr.strip().splitlines()
    assert not any("Traceback" in ln for ln in lines if "Logging error" not in stderr), stderr
    return [ln for ln in lines if ln.startswith("spermtrack:")]


def test_detect_cli_errors_are_one_line(tiny_video, tmp_path, capsys):
    out = str(tmp_path / "d.txt")
    bad = tmp_path / "bad.pt"
    bad.write_text("not a model")
    cases = {
        "video file not found": ["detect", str(tmp_path / "missing.mp4"), "--out", out],
        "needs --weights": ["detect", str(tiny_video), "--out", out, "--detector", "yolo"],
        "weights file not found": ["detect", str(tiny_video), "--out", out, "--detector", "yolo", "--weights",
                                   str(tmp_path / "none.pt")],
        "not an ultralytics weights file": ["detect", str(tiny_video), "--out", out, "--detector", "yolo",
                                            "--weights", str(bad)],
    }
    for needle, argv in cases.items():
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = _error_lines(capsys.readouterr().err)
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "d.txt").exists()


def test_detect_cli_rejects_model_of_another_task(tiny_video, tmp_path, capsys):
    from ultralytics import YOLO

    weights = tmp_path / "cls.pt"
    YOLO("yolo11n-cls.yaml").save(str(weights))  # an untrained classifier: wrong task, no download
    assert main(["detect", str(tiny_video), "--out", str(tmp_path / "d.txt"), "--detector", "yolo",
                 "--weights", str(weights)]) == 2
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "'classify' model" in err[0] and str(weights) in err[0], err


def test_detect_cli_takes_the_detector_from_a_config(tiny_video, tmp_path):
    """``--config``: the config's detect section builds the detector (as in analyze); options
    given on the command line override it."""
    import json

    from spermtrack.io.video import VideoReader

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"detect": {"classifier": None, "polarity": "dark", "blob": {"box_margin_px": 6.0}}}))
    out = tmp_path / "dets.txt"
    assert main(["detect", str(tiny_video), "--out", str(out), "--config", str(cfg), "--polarity", "bright"]) == 0
    rows = np.array([[float(v) for v in line.split(",")] for line in out.read_text().splitlines()])
    with VideoReader(tiny_video) as reader:
        frames = np.stack([f for _, _, f in reader.iter_frames()])
    expected = [d.select(d.cls == 0) for d in
                BlobDetector(classifier=None, polarity="bright", box_margin_px=6.0).detect(frames)]
    assert len(rows) == sum(len(d) for d in expected) > 0
    for i, d in enumerate(expected):
        np.testing.assert_allclose(rows[rows[:, 0] == i + 1][:, 2:6], d.ltwh + [EDGE_OFFSET_PX, EDGE_OFFSET_PX, 0, 0],
                                   atol=1e-3)


def test_duplicates_keep_the_most_probable_head_of_each_cell():
    """Greedy suppression by distance, best first: a point within the radius of a KEPT better
    point is a duplicate; a point near only a suppressed one is kept; points outside ``among``
    are neither suppressed nor suppress."""
    from spermtrack.detect.blob import duplicates

    xy = np.array([[0, 0], [5, 0], [20, 0], [24, 0], [100, 0], [108, 0], [116, 0], [200, 0], [203, 0]], float)
    p = np.array([0.9, 0.8, 0.7, 0.95, 0.9, 0.8, 0.7, 0.6, 0.99])
    among = np.array([True] * 8 + [False])
    dup = duplicates(xy, p, among, 10.0)
    # 1 near 0; 2 near 3 (better); 5 near 4; 6 is 8 from 5 (suppressed) and 16 from 4: kept;
    # 7 is near 8, which is not a head (not among): kept
    assert list(np.flatnonzero(dup)) == [1, 2, 5]
    assert not duplicates(xy, p, among, 0.0).any()


def test_one_detection_per_real_head():
    """Real VISEM frames (video 11 frame 1000, frames12): no two class-0 detections closer than
    duplicate_factor head lengths, and each label keeps a class-0 detection as often as with the
    suppression off (no label lost to it)."""
    import cv2

    from conftest import SHARED
    from spermtrack.evaluate.detmetrics import match_centres

    root = SHARED / "data" / "visem"
    pairs = [(root / "Train" / "11" / "images_sample" / "11_frame_1000.jpg",
              root / "Train" / "11" / "labels" / "11_frame_1000.txt"),
             (root / "frames12" / "12_frame_0.jpg", root / "frames12" / "labels" / "12_frame_0.txt")]
    pairs = [(i, lab) for i, lab in pairs if i.is_file() and lab.is_file()]
    if not pairs:
        pytest.skip("no real VISEM frame in ../shared")
    for img_path, lab_path in pairs:
        img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
        H, W = img.shape
        lab = np.loadtxt(lab_path, ndmin=2)
        heads = lab[lab[:, 0] == 0][:, 1:3] * [W, H]
        found = {}
        for factor in (1.25, 0.0):
            det = BlobDetector(duplicate_factor=factor)
            det.calibrate(img[None])
            d = det.detect(img[None])[0]
            d = d.select(d.cls == 0)
            c = np.c_[(d.xyxy[:, 0] + d.xyxy[:, 2]) / 2, (d.xyxy[:, 1] + d.xyxy[:, 3]) / 2]
            found[factor] = (c, len(match_centres(c, heads, 8.0)[0]))
            if factor:
                dist = np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
                np.fill_diagonal(dist, np.inf)
                assert dist.min() > 1.25 * det.calibration.head_length_px
        assert found[1.25][1] >= found[0.0][1] - 1, (img_path.name, found[1.25][1], found[0.0][1])
        assert len(found[1.25][0]) <= len(found[0.0][0])


class _StubClassifier:
    """Fixed sperm probability; records which candidates were asked with mirrored crops."""

    def __init__(self, p_sperm: float):
        self.p = p_sperm
        self.mirror = []

    def predict_proba(self, frame, xs, ys, head_contrast_gray=None, mirror=None):
        n = len(np.asarray(xs).reshape(-1))
        self.mirror.append(np.zeros(n, bool) if mirror is None else np.asarray(mirror, bool).copy())
        return np.tile([self.p, 1 - self.p, 0.0], (n, 1))


@pytest.mark.parametrize("p_sperm, want_head", [(0.95, True), (0.8, False)])
def test_a_head_cut_by_the_border_is_judged_on_its_mirrored_crop(medium, p_sperm, want_head):
    """A head whose visible centroid lies on the border goes to the classifier with a mirrored
    crop, and is a head only above ``edge_min_prob`` (0.9); heads inside the frame need 0.6."""
    scene, frames, truth = medium
    t = truth[0]
    j = next(j for j in np.flatnonzero(~t["ignore"]) if 60 < t["xy"][j, 0] and 20 < t["xy"][j, 1] < frames.shape[1] - 20)
    x, y = t["xy"][j]
    img = frames[0][:, :int(round(x)) + 1]  # the head's centre on the last column
    stub = _StubClassifier(p_sperm)
    det = BlobDetector(classifier=stub)
    det.calibrate(frames)
    d = det.detect_frame(img)
    near = np.linalg.norm(d.centers - [img.shape[1] - 4, y], axis=1) < 8
    assert near.any()  # judged, never silently dropped
    assert bool((d.cls[near] == 0).any()) is want_head
    asked = stub.mirror[-1]
    assert asked.sum() >= 1 and asked.sum() < len(asked)  # only border candidates are mirrored
    c = d.centers
    inside = np.minimum.reduce([c[:, 0], c[:, 1], img.shape[1] - c[:, 0], img.shape[0] - c[:, 1]]) > 8
    assert (d.cls[inside] == 0).mean() > 0.8  # 0.8 and 0.95 are both heads away from the border
    off = BlobDetector(classifier=_StubClassifier(p_sperm), edge_heads=False)
    off.calibrate(frames)
    d_off = off.detect_frame(img)
    assert not (np.linalg.norm(d_off.centers - [img.shape[1] - 4, y], axis=1) < 8).any()


def test_mirrored_crop_makes_a_cut_blob_whole():
    from spermtrack.detect.classifier import raw_patches

    yy, xx = np.mgrid[0:60, 0:60]
    img = (40 + 120 * np.exp(-((xx - 0.0) ** 2 + (yy - 30.0) ** 2) / 8.0)).astype(np.uint8)  # centred on column 0
    p = raw_patches(img, [0.0, 30.0], [30.0, 30.0], 16, mirror=[True, False])
    m = p[0]
    # the mirrored crop holds the blob on both sides of the border (column 7 is the border column
    # 0, column 8 its mirror image), the median-padded one only on the frame side
    assert m[8, 7] == m[8, 8] and m[8, 6] == m[8, 9] and m[8, 6] > 100
    q = raw_patches(img, [0.0], [30.0], 16)[0]
    assert q[8, 6] < 60 and np.array_equal(q[:, 8:], m[:, 8:])
    np.testing.assert_array_equal(p[1], raw_patches(img, [30.0], [30.0], 16)[0])


def test_real_border_heads_are_found():
    """VISEM labels heads cut by the frame border: on the sample frames of video 11 the default
    finds more of the labelled heads within 8 px of the border than with ``edge_heads=False``,
    at about the same precision."""
    import cv2

    from conftest import SHARED
    sample = SHARED / "data" / "visem" / "Train" / "11"
    frames = sorted((sample / "images_sample").glob("*.jpg"), key=lambda q: int(q.stem.split("_")[-1]))
    if not frames:
        pytest.skip("video 11 sample frames absent")
    imgs = np.stack([cv2.imread(str(q), cv2.IMREAD_GRAYSCALE) for q in frames])
    from spermtrack.detect.classifier_data import read_yolo_labels

    labels = []
    for q in frames:
        a = read_yolo_labels(sample / "labels" / (q.stem + ".txt"), 640, 480)
        labels.append(a[a[:, 0] == 0, 1:3])
    found, prec = [], []
    for kw in ({"edge_heads": False}, {}):
        det = BlobDetector(**kw)
        det.calibrate(imgs)
        n_edge = hit_edge = tp = n_pred = 0
        for d, xy in zip(det.detect(imgs), labels):
            pred = d.centers[d.cls == 0]
            e = np.minimum.reduce([xy[:, 0], xy[:, 1], 640 - xy[:, 0], 480 - xy[:, 1]])
            pi, ti = match_centres(pred, xy, 8.0)
            n_edge += int((e < 8).sum())
            hit_edge += int((e[ti] < 8).sum())
            tp += len(pi)
            n_pred += len(pred)
        found.append(hit_edge)
        prec.append(tp / n_pred)
    assert n_edge >= 10
    assert found[1] > found[0], found
    assert prec[1] > prec[0] - 0.02, prec
