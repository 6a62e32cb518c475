"""Candidate classifier: crops, default weights, predict_proba, real-frame separation, CLI training."""

from __future__ import annotations


from pathlib import Path

import numpy as np
import pytest

from spermtrack.detect.classifier import (CLASSES, DEFAULT_WEIGHTS, CandidateClassifier, TinyCNN, TinyViT,
                                          extract_crops, grad_cam)
from spermtrack.detect.classifier_data import assign_labels, parse_frames
from spermtrack.errors import InputFileError, ParameterError

from conftest import SHARED as _SHARED_ROOT

SHARED = _SHARED_ROOT / "data" / "visem"


def test_extract_crops_normalisation_is_illumination_invariant():
    rng = np.random.default_rng(0)
    img = (80 + rng.normal(0, 8, (120, 160))).astype(np.float32)
    img[58:63, 78:84] += 120  # a bright head
    xs, ys = np.array([80.0, 30.0]), np.array([60.0, 30.0])
    a = extract_crops(np.clip(img, 0, 255).astype(np.uint8), xs, ys, size=24)
    b = extract_crops(np.clip(0.7 * img + 20, 0, 255).astype(np.uint8), xs, ys, size=24)
    assert a.shape == (2, 24, 24) and a.dtype == np.float32
    assert np.abs(a - b).mean() < 0.1  # gain and offset do not matter (above the floor, beyond rounding)
    assert a[0, 12, 12] > 2 and abs(float(np.median(a[1]))) < 0.3  # head bright, background ~0
    flat = extract_crops(np.full((50, 50), 90, np.uint8), [25], [25])
    assert np.all(flat == 0)  # floor: a flat crop is not amplified into noise


def test_contrast_channel_is_relative_to_the_video_head_contrast():
    img = np.full((60, 80), 70, np.uint8)
    img[28:33, 38:43] = 150  # a head 80 levels above the background
    c = extract_crops(img, [40.0], [30.0], size=24, channels=2, head_contrast_gray=80.0)
    assert c.shape == (1, 2, 24, 24) and c.dtype == np.float32
    assert np.allclose(c[:, 0], extract_crops(img, [40.0], [30.0], size=24))  # channel 0 as before
    assert abs(c[0, 1, 12, 12] - np.arcsinh(2.0) / 2) < 1e-4 and abs(c[0, 1, 0, 0]) < 1e-6
    faint = extract_crops(img, [40.0], [30.0], size=24, channels=2, head_contrast_gray=320.0)
    assert faint[0, 1, 12, 12] < 0.5 * c[0, 1, 12, 12]  # the same blob in a video of brighter heads
    auto = extract_crops(img, [40.0], [30.0], size=24, channels=2)  # no calibration given: estimated
    assert auto.shape == (1, 2, 24, 24) and np.isfinite(auto).all()


def test_extract_crops_edges():
    rng = np.random.default_rng(1)
    img = rng.integers(60, 90, (48, 64)).astype(np.uint8)
    xs = np.array([0.0, 63.0, -3.0, 70.0, 10.4])
    ys = np.array([0.0, 47.0, 5.0, 20.0, np.nan])
    c = extract_crops(img, xs, ys, size=24)
    assert c.shape == (5, 24, 24) and np.isfinite(c).all()
    assert extract_crops(img, [], [], size=24).shape == (0, 24, 24)
    # centre pixel is the rounded candidate: a single bright pixel lands at (12, 12)
    img2 = np.full((40, 40), 70, np.uint8)
    img2[20, 10] = 250
    c2 = extract_crops(img2, [10.3], [19.6], size=24)
    assert np.unravel_index(np.argmax(c2[0]), c2[0].shape) == (12, 12)


def test_default_weights_load_and_predict_shapes():
    assert DEFAULT_WEIGHTS.is_file() and DEFAULT_WEIGHTS.stat().st_size <= 5 * 1024 * 1024
    clf = CandidateClassifier.load()
    assert clf.arch in ("vit", "cnn") and clf.crop_size > 0 and clf.version and clf.provenance
    assert tuple(clf.classes) == CLASSES
    rng = np.random.default_rng(2)
    img = rng.integers(50, 100, (480, 640)).astype(np.uint8)
    xs, ys = rng.uniform(0, 639, 37), rng.uniform(0, 479, 37)
    p = clf.predict_proba(img, xs, ys)
    assert p.shape == (37, 3) and np.allclose(p.sum(1), 1, atol=1e-5) and (p >= 0).all()
    q = clf.predict_proba(img, xs, ys, head_contrast_gray=80.0)
    assert q.shape == (37, 3) and np.allclose(q.sum(1), 1, atol=1e-5)
    assert clf.predict_proba(img, [], []).shape == (0, 3)
    assert clf.predict_proba(img, [], [], head_contrast_gray=80.0).shape == (0, 3)


def test_models_and_maps():
    import torch

    x = torch.randn(5, 1, 24, 24)
    vit, cnn = TinyViT(), TinyCNN()
    assert vit(x).shape == (5, 3) and cnn(x).shape == (5, 3)
    assert vit.attention_rollout(x).shape == (5, 6, 6)
    assert grad_cam(cnn.eval(), x).shape == (5, 6, 6)
    x2 = torch.randn(4, 2, 32, 32)
    vit2, cnn2 = TinyViT(size=32, in_channels=2), TinyCNN(size=32, in_channels=2, width=12)
    assert vit2(x2).shape == (4, 3) and cnn2(x2).shape == (4, 3)
    clf = CandidateClassifier(cnn2, "cnn", 32)
    assert clf.channels == 2 and clf.model_kwargs == {"width": 12, "in_channels": 2}


def test_labelling_rule_and_frames_spec():
    boxes = np.array([[0, 50, 50, 20, 20], [1, 200, 200, 60, 60], [2, 300, 100, 10, 10]], float)
    x = np.array([53, 60, 80, 210, 302, 400.0])
    y = np.array([50, 50, 50, 190, 100, 400.0])
    assert assign_labels(x, y, boxes).tolist() == [0, -1, 1, 2, -1, 1]
    assert parse_frames("0:735") == (0, 735) and parse_frames(None) == (0, None)
    with pytest.raises(ParameterError):
        parse_frames("9:3")


def _real_frame():
    for img_path, lab_path in ((SHARED / "Train" / "11" / "images_sample" / "11_frame_1000.jpg",
                                SHARED / "Train" / "11" / "labels" / "11_frame_1000.txt"),
                               (SHARED / "frames12" / "12_frame_0.jpg", SHARED / "frames12" / "labels" / "12_frame_0.txt")):
        if img_path.is_file() and lab_path.is_file():
            return img_path, lab_path
    pytest.skip("no real VISEM frame in ../shared")


def test_default_separates_real_heads_from_background():
    import cv2

    img_path, lab_path = _real_frame()  # video 11 frame 1000: held out from the default's training
    img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
    H, W = img.shape
    lab = np.loadtxt(lab_path, ndmin=2)
    heads = lab[lab[:, 0] == 0][:, 1:3] * [W, H]
    rng = np.random.default_rng(3)
    bg = rng.uniform([0, 0], [W - 1, H - 1], (400, 2))
    d = np.hypot(bg[:, None, 0] - lab[None, :, 1] * W, bg[:, None, 1] - lab[None, :, 2] * H).min(1)
    bg = bg[d > 15][:150]
    clf = CandidateClassifier.load()
    from spermtrack.detect.calibrate import calibrate

    cal = calibrate([img])
    hc = cal.spread_gray * cal.head_level_z
    ph = clf.predict_proba(img, heads[:, 0], heads[:, 1], head_contrast_gray=hc)[:, 0]
    pb = clf.predict_proba(img, bg[:, 0], bg[:, 1], head_contrast_gray=hc)[:, 0]
    assert ph.mean() > pb.mean() + 0.3
    auc = (ph[:, None] > pb[None, :]).mean() + 0.5 * (ph[:, None] == pb[None, :]).mean()
    assert auc > 0.9, auc


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    from spermtrack.synth import simulate_cells
    from spermtrack.synth.writer import write_video_folder

    root = tmp_path_factory.mktemp("clf_synth")
    scene = simulate_cells(seconds=0.2, fps=50, cells=15, seed=5, difficulty="easy", width=160, height=120,
                           video_id="s1")
    write_video_folder(scene, root)
    return root


def test_cli_tiny_training_run(tiny_synth, tmp_path):
    from spermtrack.cli.main import main

    out = tmp_path / "w.pt"
    rc = main(["train", "classifier", str(tiny_synth), "--out", str(out), "--arch", "cnn", "--epochs", "1",
               "--frame-step", "3", "--frames", "0:8"])
    assert rc == 0 and out.is_file()
    clf = CandidateClassifier.load(out)
    assert clf.arch == "cnn" and clf.provenance["frames"] == "0:8" and clf.channels == 2
    assert clf.predict_proba(np.full((60, 80), 80, np.uint8), [10, 40], [10, 30]).shape == (2, 3)


def test_cli_bad_data_path(tmp_path, capsys):
    from spermtrack.cli.main import main

    rc = main(["train", "classifier", str(tmp_path / "nope"), "--out", str(tmp_path / "w.pt")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "nope" in err and len(err.splitlines()) == 1
    with pytest.raises(InputFileError):
        CandidateClassifier.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("difficulty, keep", [("medium", 0.9), ("hard", 0.85)])
def test_default_keeps_classic_phantom_heads(difficulty, keep):
    """The shipped classifier accepts the heads of the older (classic) phantom look too: recall of
    the default detector with the classifier >= ``keep`` x recall without it on a small clip.

    Hard: 0.85, not 0.9, since v5 (scale jitter x1.1 in training, robust to real heads of other
    sizes): it keeps 0.87 of the classic look's hard heads on this clip (v4: 0.94). A classifier that
    loses the look's heads fails it: the 4-video crop-40 weights had recall 0.79-0.84 on the easy
    clips where earlier weights had 0.95-0.97 (docs/CLASSIFIER.md)."""
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.synth import render_frame, simulate_cells
    from spermtrack.evaluate.detmetrics import detection_scores, truth_frames

    scene = simulate_cells(seconds=0.4, fps=50, cells=40, seed=777, difficulty=difficulty, width=320, height=240,
                           look="classic")
    idx = list(range(0, scene.n_frames, 4))
    frames = np.stack([render_frame(scene, i) for i in idx])
    truth = truth_frames(scene.boxes, idx)
    rec = []
    for kw in ({}, {"classifier": None}):
        det = BlobDetector(**kw)
        det.calibrate(frames)
        rec.append(detection_scores(det.detect(frames), truth, classes=(0,)).recall)
    assert rec[1] > 0.5, rec
    assert rec[0] >= keep * rec[1], rec


def test_synth_samples_cycle_looks_and_difficulties(monkeypatch):
    from spermtrack.detect import classifier_data as cd

    seen = []
    import spermtrack.synth as synth

    real = synth.simulate_cells

    def spy(*, look="visem", **kw):
        seen.append((look, kw["difficulty"], kw["seed"]))
        return real(**{**kw, "look": look, "seconds": 0.04, "width": 96, "height": 80, "cells": 3})

    monkeypatch.setattr(synth, "simulate_cells", spy)
    s = cd.synth_samples(4, 0, frames_per_video=1, looks=("visem", "classic"), difficulties=("medium", "hard"))
    assert [x[:2] for x in seen] == [("visem", "medium"), ("visem", "hard"), ("classic", "medium"), ("classic", "hard")]
    assert min(x[2] for x in seen) >= cd.SYNTH_SEED_BASE and len(s.labels) > 0
    assert cd.parse_list("visem,classic", ("visem", "classic"), "--synth-looks") == ("visem", "classic")
    with pytest.raises(ParameterError):
        cd.parse_list("vis", ("visem", "classic"), "--synth-looks")


def test_tta_averages_views():
    import torch

    torch.manual_seed(0)
    clf = CandidateClassifier(TinyCNN(in_channels=2).eval(), "cnn", 24)
    img = np.random.default_rng(4).integers(50, 100, (80, 100)).astype(np.uint8)
    p0 = clf.predict_proba(img, [50, 20], [40, 30], head_contrast_gray=60.0)
    for n in (2, 4, 8):
        clf.tta = n
        p1 = clf.predict_proba(img, [50, 20], [40, 30], head_contrast_gray=60.0)
        assert p1.shape == (2, 3) and np.allclose(p1.sum(1), 1, atol=1e-5) and not np.allclose(p0, p1)
    assert clf.header()["tta"] == 8
    clf.batch_size = 5  # smaller batches than views: same numbers
    assert np.allclose(clf.predict_proba(img, [50, 20], [40, 30], head_contrast_gray=60.0), p1, atol=1e-6)



class _Recorder:
    """A classifier that records what it is shown and calls every candidate a head."""

    def __init__(self, head_length_px=None):
        self.head_length_px = head_length_px
        self.seen = []

    def predict_proba(self, frame, xs, ys, head_contrast_gray=None):
        xs, ys = np.asarray(xs), np.asarray(ys)
        self.seen.append((frame.shape, frame[np.rint(ys).astype(int), np.rint(xs).astype(int)]))
        return np.tile([1.0, 0.0, 0.0], (len(xs), 1))


@pytest.mark.parametrize("k, band, resized", [(1.0, 1.25, False), (1.6, 1.25, True), (1.6, 1000.0, False)])
def test_classifier_sees_heads_at_its_trained_size(k, band, resized):
    """Heads k times longer than the classifier's: outside the band the frame it sees is resized by
    trained / calibrated head length, and the candidates' coordinates follow (they land on the
    bright head cores of the resized frame)."""
    import cv2

    from spermtrack.detect.blob import BlobDetector
    from spermtrack.synth import render_frame, simulate_cells

    scene = simulate_cells(seconds=0.1, fps=50, cells=20, seed=779, difficulty="easy", width=240, height=180)
    frames = np.stack([cv2.resize(render_frame(scene, i), None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
                       for i in range(3)])
    rec = _Recorder()
    det = BlobDetector(classifier=rec, classifier_scale_band=band)
    det.calibrate(frames)
    dets = det.detect(frames)
    scale, why = det.classifier_scale()
    head = det.calibration.head_length_px
    assert ("resized" in why) == resized, why
    assert scale == (pytest.approx(8.5 / head) if resized else 1.0)
    assert head == pytest.approx(8.2 * k, rel=0.25)
    (h, w), values = rec.seen[0][0], rec.seen[0][1]
    assert (h, w) == (round(frames.shape[1] * scale), round(frames.shape[2] * scale))
    assert len(values) == len(dets[0]) > 5
    assert np.median(values) > np.median(frames[0]) + 20  # on head cores, not background
    assert det.calibration_record()["classifier_input_scale"] == scale


def test_bright_field_heads_at_the_classifier_scale():
    """Real bright-field clip S_0001 (dark heads, cores ~12 px: ~1.4x the training heads): class-0
    detections against the heads counted by eye on frames 0 and 30 (docs/S0001_COUNT.md; objects
    marked ambiguous ignored)."""
    import sys

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root))
    from benchmarks import realdata as rd
    from benchmarks import real_count_s0001 as rc
    from spermtrack.detect.blob import BlobDetector

    if not rd.S0001.is_file():
        pytest.skip(f"{rd.S0001} absent")
    frames = np.concatenate([s for _, s in rd.iter_frame_batches(rd.S0001, None, batch=64)])[:31]
    det = BlobDetector()
    det.calibrate(frames)
    dets = det.detect(frames[[0, 30]])
    assert det.classifier_scale()[0] < 0.8
    m = rd.score_frames([rd.det_centres(d) for d in dets], [rc.eye_truth(f) for f in rc.EYE])
    assert m.precision >= 0.9 and m.recall >= 0.8, m


def test_warp_zoom_and_scale_jitter():
    """warp's zoom shows a disc of radius r as radius r / zoom, centred where it was; augment with
    scale_jitter draws zooms within x(1 + s) and without it draws nothing extra (old recipes give
    the same crops)."""
    import torch

    from spermtrack.detect.classifier_data import augment, warp

    R, crop, r = 62, 40, 8.0
    yy, xx = np.mgrid[:R, :R] - R // 2
    raw = torch.as_tensor(np.where(np.hypot(xx, yy) <= r, 200.0, 50.0), dtype=torch.float32)[None].repeat(3, 1, 1)
    zoom = torch.tensor([1.0, 1.25, 0.8])
    out = warp(raw, crop, torch.zeros(3), torch.ones(3), torch.zeros(3, 2), zoom).numpy()
    for k, z in enumerate(zoom.tolist()):
        area = (out[k] > 125).sum()
        assert np.sqrt(area / np.pi) == pytest.approx(r / z, abs=0.5)
        ys, xs = np.nonzero(out[k] > 125)
        assert xs.mean() == pytest.approx(crop // 2, abs=0.3) and ys.mean() == pytest.approx(crop // 2, abs=0.3)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    a = augment(raw, crop, g())
    b = augment(raw, crop, g(), scale_jitter=0.0)
    assert torch.equal(a, b)
    radii = []
    for seed in range(8):
        x = augment(raw[:1].repeat(16, 1, 1), crop, torch.Generator().manual_seed(seed), scale_jitter=0.3)
        # channel 0 is asinh-normalised: the disc is where it is high
        radii += [np.sqrt((xi > xi.max() / 2).sum().item() / np.pi) for xi in x]
    radii = np.array(radii)
    assert radii.min() >= r / 1.3 - 1.0 and radii.max() <= r * 1.3 + 1.0
    assert radii.max() - radii.min() > 2.5  # the zoom varies


def test_probability_reuse_carries_unchanged_candidates_and_reclassifies_changed_ones():
    """A scene that does not move: from the second frame on the classifier runs on almost no
    crop, and each answer equals the one computed without reuse (same crop up to noise). A frame
    whose content changed under a candidate is classified again."""
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.synth import render_frame, simulate_cells

    scene = simulate_cells(seconds=0.3, fps=50, cells=30, seed=5, difficulty="medium", width=320, height=240)
    still = render_frame(scene, 0)
    rng = np.random.default_rng(0)
    frames = np.stack([np.clip(still.astype(np.int16) + rng.integers(-1, 2, still.shape), 0, 255).astype(np.uint8)
                       for _ in range(6)])
    base = BlobDetector(classifier_reuse_tol=0.0)
    base.calibrate(frames)
    reuse = BlobDetector()
    reuse.calibrate(frames)
    a, b = base.detect(frames), reuse.detect(frames)
    for da, db in zip(a, b):
        assert np.array_equal(da.cls, db.cls) and np.allclose(da.xyxy, db.xyxy)
        assert np.abs(da.conf - db.conf).max() < 0.1
    rec = reuse.calibration_record()["classifier_reuse"]
    n = sum(len(d) for d in b)
    assert rec["candidates"] == n and rec["classified"] <= len(b[0]) + 0.1 * n, rec
    # unrelated content at the same places: every candidate is classified again
    other = render_frame(simulate_cells(seconds=0.1, fps=50, cells=30, seed=6, difficulty="medium",
                                        width=320, height=240), 0)
    clf = reuse.classifier
    r = reuse._reuse
    xy = r._xy.copy()  # the candidates' places in the frame the classifier saw
    hc = 50.0
    r.predict_proba(clf, frames[0], xy[:, 0], xy[:, 1], head_contrast_gray=hc)  # reference crops at this contrast
    before = r.n_computed
    r.predict_proba(clf, frames[1], xy[:, 0], xy[:, 1], head_contrast_gray=hc)  # same scene, new noise
    assert r.n_computed - before <= 0.1 * len(xy)  # nearly all reused (flat crops amplify the noise)
    before = r.n_computed
    p = r.predict_proba(clf, other, xy[:, 0], xy[:, 1], head_contrast_gray=hc)
    assert r.n_computed - before == len(xy)
    np.testing.assert_allclose(p, clf.predict_proba(other, xy[:, 0], xy[:, 1], head_contrast_gray=hc))
    reuse.reset()
    assert r.n_seen == 0 and r._xy is None


def _video11_validation_frames(step: int = 4):
    """``(benchmarks.realdata, frames, truths)``: video 11's validation frames 601-734 (not trained
    on), every ``step``-th, as one stack, with their labels; skips when the real data is absent."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks import realdata as rd

    if not (rd.VIDEO11.is_file() and rd.LABELS11.is_dir()):
        pytest.skip(f"{rd.VIDEO11} absent")
    idx, frames = [], []
    for i, st in rd.iter_frame_batches(rd.VIDEO11, range(601, 735, step), batch=64):
        idx += i
        frames.append(st)
    return rd, np.concatenate(frames), [rd.Truth.from_labels(rd.read_yolo_labels(rd.label_path(rd.LABELS11, 11, i)))
                                        for i in idx]


@pytest.mark.parametrize("scale", [0.8, 1.2])
def test_real_heads_of_other_sizes(scale):
    """Real video 11 resampled by a known factor (heads 0.8x / 1.2x as long, labels known exactly),
    validation frames 601-734 (not trained on), every 4th: the default detector keeps finding heads
    (v5: P / R 0.94 / 0.92 at 0.8x, 0.86 / 0.90 at 1.2x; v4 with the x1.25 band fails: recall 0.84 at
    0.8x, precision 0.81 at 1.2x; benchmarks/scale_robustness.py)."""
    from benchmarks.scale_robustness import resampled
    from spermtrack.detect.blob import BlobDetector

    rd, frames, truths = _video11_validation_frames()
    dets = BlobDetector().detect(resampled(frames, scale))
    m = rd.score_frames([rd.det_centres(d) / scale for d in dets], truths)
    assert m.precision >= 0.84 and m.recall >= 0.87, (m.precision, m.recall)


@pytest.mark.parametrize("spec, min_p, min_r", [("gauss 10", 0.87, 0.90), ("blur 1", 0.85, 0.85),
                                                ("h264 35", 0.85, 0.84), ("poisson 0.1", None, None)])
def test_real_heads_under_other_noise(spec, min_p, min_r):
    """Real video 11 degraded by a known amount (labels stay exact), validation frames 601-734 (not
    trained on), every 4th: the default detector keeps its heads under read noise of 10 gray levels
    (v5: P / R 0.91 / 0.93; clean 0.95 / 0.94), a 1-px blur (0.88 / 0.88) and H.264 at CRF 35
    (0.88 / 0.87); under shot noise it cannot calibrate on (0.1 photons per gray level, SD ~35 gray
    levels) it reports zero heads with the calibration warning, never a flood
    (benchmarks/noise_robustness.py)."""
    rd, frames, truths = _video11_validation_frames()
    from benchmarks.noise_robustness import SEED, degraded
    from spermtrack.detect.blob import BlobDetector

    det = BlobDetector()
    dets = det.detect(degraded(frames, spec, np.random.default_rng(SEED)))
    if min_p is None:
        assert sum(len(d) for d in dets) == 0
        assert any("no calibration possible" in w for w in det.calibration.warnings)
        return
    m = rd.score_frames([rd.det_centres(d) for d in dets], truths)
    assert m.precision >= min_p and m.recall >= min_r, (m.precision, m.recall)
