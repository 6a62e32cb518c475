"""The synthetic phantom: exact, reproducible truth that really is in the pixels."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spermtrack.errors import ParameterError
from spermtrack.synth import (generate, iter_frames, load_masks, rasterize, render_frame,
                              render_noise_free, simulate_cells, vcl_closed_form)
from spermtrack.synth import morph
from spermtrack.synth.motion import CellParams, head_at, simulate_paths
from spermtrack.synth.render import background
from spermtrack.synth.truth import grade_of, kinematics_window

SMALL = dict(videos=1, seconds=0.6, fps=50.0, cells=10, width=320, height=240, seed=11)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, **SMALL, difficulty="medium", mask_every=3)
    return root / "Train" / "101"


# ------------------------------------------------------------------------- closed forms / motion

def test_vcl_closed_form_matches_the_documented_value_and_limits():
    # KINEMATICS.md: v=60 um/s, A=2 um, f=12 Hz gives 117.1 um/s
    assert vcl_closed_form(60.0, 2.0, 12.0) == pytest.approx(117.1, abs=0.05)
    assert vcl_closed_form(50.0, 0.0, 10.0) == pytest.approx(50.0)
    assert vcl_closed_form(0.0, 1.5, 8.0) == pytest.approx(4 * 8.0 * 1.5)  # wobbling in place
    assert vcl_closed_form(0.0, 0.0, 0.0) == 0.0


def _straight_cell(v=60.0, amp=2.0, f=12.0, phi=0.3):
    c = CellParams(cls=0, population="rapid_progressive", motion="swim", v_ap_um_s=v, amp_um=amp,
                   beat_hz=f, phase_rad=phi)
    paths = simulate_paths([c], np.array([[10.0, 20.0]]), np.array([0.7]), 51, 50.0, np.random.default_rng(0))
    return c, paths


def test_straight_sinusoid_dense_path_gives_closed_form_vcl_alh_and_bcf():
    c, paths = _straight_cell()
    t = np.linspace(0.0, 1.0, 200_001)
    p = head_at(c, paths, 0, t)
    vcl = np.linalg.norm(np.diff(p, axis=0), axis=1).sum() / 1.0
    assert vcl == pytest.approx(vcl_closed_form(60.0, 2.0, 12.0), rel=1e-5)
    # lateral offset from the straight average path: ALH = 2A, crossings per second = 2f
    start, u = np.array([10.0, 20.0]), np.array([np.cos(0.7), np.sin(0.7)])
    lateral = (p - start) @ np.array([-u[1], u[0]])
    assert 2 * np.abs(lateral).max() == pytest.approx(4.0, rel=1e-6)
    crossings = np.count_nonzero(np.diff(np.sign(lateral)) != 0)
    assert crossings / 1.0 == pytest.approx(24.0, abs=1.0)
    # the average path moves at exactly v_ap, and frame samples are points of the dense path
    assert np.linalg.norm(paths.centre_um[0, -1] - paths.centre_um[0, 0]) == pytest.approx(60.0, rel=1e-9)
    np.testing.assert_allclose(head_at(c, paths, 0, np.arange(51) / 50.0), paths.head_um[0], atol=1e-9)


def test_kinematics_window_is_odd_nearest_fps_over_12():
    assert kinematics_window(50.0) == 5
    assert kinematics_window(45.0) == 5
    assert kinematics_window(25.0) == 3
    assert kinematics_window(120.0) == 11


def test_head_outline_truth_sizes():
    rng = np.random.default_rng(1)
    poly = morph.head_polygon_um("normal", 5.0, 3.0, rng)
    length, width = morph.feret_diameters(poly)
    assert length == pytest.approx(5.0, rel=1e-9)
    assert width == pytest.approx(3.0, rel=2e-3)
    assert morph.polygon_area(poly) == pytest.approx(np.pi * 2.5 * 1.5, rel=2e-3)
    np.testing.assert_allclose(morph.polygon_centroid(morph.head_polygon_um("tapered", 5.5, 2.5, rng)), 0, atol=1e-12)
    tail = morph.tail_wave_um(np.array([45.0]), np.array([30.0]), np.array([0.4]), np.array([4.0]),
                              np.array([10.0]), np.array([0.0]), 0.013)
    assert morph.polyline_length(tail[0]) == pytest.approx(45.0, rel=5e-3)
    assert morph.polyline_length(morph.coiled_tail_um(40.0, 1.5, 0.0)) == pytest.approx(40.0, rel=1e-9)


# ---------------------------------------------------------------------------------- scene truth

@pytest.fixture(scope="module")
def scene():
    return simulate_cells(seconds=3.0, fps=50.0, cells=40, seed=5, difficulty="medium", hyperactivated=0.1)


def test_grades_follow_progression_and_populations(scene):
    tr = scene.truth
    sperm = tr[tr.cls != 1]
    for row in sperm.itertuples():
        assert row.grade == grade_of(row.progression_um_s, row.population)
    assert (sperm[sperm.population.isin(["immotile", "pinhead"])].grade == "immotile").all()
    long = sperm[(sperm.duration_s >= 1.0) & sperm.population.isin(
        ["rapid_progressive", "slow_progressive", "non_progressive"])]
    assert len(long) >= 15
    assert (long.grade == long.population).mean() >= 0.9
    rapid = sperm[sperm.population == "rapid_progressive"]
    assert (rapid.vap_um_s.between(30, 80)).all() and (rapid.alh_um.between(2, 6)).all()
    assert rapid.str_pct.median() > 80.0
    hyper = sperm[(sperm.population == "hyperactivated") & (sperm.duration_s > 0.2)]
    assert len(hyper) and hyper.hyperactivated.all()


def test_truth_vcl_sources_agree_where_the_path_is_straight(scene):
    tr = scene.truth
    cf = tr[tr.vcl_source == "closed_form"]
    assert len(cf) >= 10
    np.testing.assert_allclose(cf.vcl_um_s, cf.vcl_dense_um_s, rtol=0.011)
    np.testing.assert_allclose(cf.alh_um, 2 * cf.amp_um)
    np.testing.assert_allclose(cf.bcf_hz, 2 * cf.beat_hz)
    # sampling at 50 fps cuts the corners of the beat: frame VCL is below the continuous truth
    assert (cf.vcl_frames_um_s <= cf.vcl_um_s * 1.001).all()
    ok = tr[tr.cls != 1].dropna(subset=["lin_pct"])
    np.testing.assert_allclose(ok.lin_pct, 100 * ok.vsl_um_s / ok.vcl_um_s)


def test_vsl_and_in_view_frames_match_the_noise_free_path(scene):
    s = scene.um_per_px
    for row in scene.truth[scene.truth.duration_s > 0].head(20).itertuples():
        r = int(np.flatnonzero(scene.track_of == row.track_id)[0])
        frames = np.flatnonzero(scene.in_view[r])
        assert (row.first_frame, row.last_frame, row.n_frames_in_view) == (frames[0], frames[-1], len(frames))
        p = scene.paths.head_um[r]
        if row.cls != 1:
            assert row.vsl_um_s == pytest.approx(np.linalg.norm(p[frames[-1]] - p[frames[0]]) / row.duration_s)
        xy = scene.head_px[r, frames]
        assert ((xy >= 0) & (xy <= [scene.width - 1, scene.height - 1])).all()
        assert np.abs(xy - p[frames] / s).max() < 1e-9  # medium: no jitter, labels at the true centre


def test_mean_heads_in_view_matches_cells():
    sc = simulate_cells(seconds=2.0, fps=25.0, cells=30, seed=2, difficulty="easy")
    sperm = np.array([c.cls == 0 for c in sc.cells])
    mean_in_view = sc.in_view[sperm].sum(axis=0).mean()
    assert 20 <= mean_in_view <= 40
    # cells enter and leave: some tracks start after frame 0 or end before the last frame
    tr = sc.truth
    assert ((tr.first_frame > 0) | (tr.last_frame < sc.n_frames - 1)).sum() >= 3


# ------------------------------------------------------------------------------------ rendering

def test_heads_are_bright_with_a_dark_halo_in_the_rendered_image():
    # the classic look's difference-of-Gaussians head (the visem look's heads glow: see
    # tests/synth/test_synth_look.py, matched to real VISEM frames)
    sc = simulate_cells(seconds=0.2, fps=50.0, cells=20, seed=3, difficulty="easy", width=320, height=240,
                        look="classic")
    i = 4
    img = render_frame(sc, i).astype(np.float64)
    clean = render_noise_free(sc, i) - background(sc)
    bg = background(sc)
    boxes = sc.boxes[(sc.boxes.frame == i) & (sc.boxes.cls == 0)]
    assert len(boxes) >= 8
    rows = {int(t): int(np.flatnonzero(sc.track_of == t)[0]) for t in boxes.track_id}
    bright, halo = [], []
    for b in boxes.itertuples():
        r = rows[b.track_id]
        x, y = sc.head_px[r, i]
        xi, yi = int(round(x)), int(round(y))
        if not (8 <= xi < sc.width - 8 and 8 <= yi < sc.height - 8):
            continue
        bright.append(img[yi - 1:yi + 2, xi - 1:xi + 2].mean() - bg[yi, xi])
        # just outside the head, across its long axis
        a = sc.paths.angle[r, i]
        d = sc.cells[r].head_width_um / 2 / sc.um_per_px + 2.0
        hx, hy = int(round(x - np.sin(a) * d)), int(round(y + np.cos(a) * d))
        halo.append(clean[hy, hx])
    assert len(bright) >= 5
    assert np.median(bright) > 30 and min(bright) > 10
    assert np.median(halo) < -3


def test_frames_are_random_access_and_reproducible():
    kw = dict(seconds=0.2, fps=50.0, cells=6, seed=9, width=160, height=120)
    a, b = simulate_cells(**kw), simulate_cells(**kw)
    frames = [f for _, f, _ in iter_frames(a)]
    assert np.array_equal(render_frame(b, 7), frames[7])
    assert not np.array_equal(frames[6], frames[7])
    c = simulate_cells(**{**kw, "seed": 10})
    assert not np.array_equal(render_frame(c, 7), frames[7])


# ----------------------------------------------------------------------------------- the folder

def _labels(folder: Path, sub: str) -> list[Path]:
    """Label files of a folder in frame order."""
    return sorted((folder / sub).iterdir(), key=lambda p: int(p.stem.split("_frame_")[1].split("_")[0]))


def test_folder_layout_and_labels(dataset):
    vid = dataset.name
    meta = json.loads((dataset / "gt" / "meta.json").read_text())
    n = meta["n_frames"]
    assert n == 30 and meta["width"] == 320 and meta["um_per_px"] == 0.5 and meta["fps"] == 50.0
    for sub, pat in (("labels", "{v}_frame_{i}.txt"), ("labels_ftid", "{v}_frame_{i}_with_ftid.txt"),
                     ("images", "{v}_frame_{i}.jpg")):
        names = {p.name for p in (dataset / sub).iterdir()}
        assert names == {pat.format(v=vid, i=i) for i in range(n)}
    vals = []
    for p in _labels(dataset, "labels_ftid"):
        for line in p.read_text().splitlines():
            uid, cls, *box = line.split()
            assert uid.startswith(f"syn{vid}t") and cls in ("0", "1", "2")
            assert all(len(v.split(".")[1]) == 6 for v in box)
            vals.append([float(v) for v in box])
    vals = np.array(vals)
    assert len(vals) > 100 and ((vals >= 0) & (vals <= 1)).all()
    plain = [line.split()[1:] for p in _labels(dataset, "labels") for line in p.read_text().splitlines()]
    np.testing.assert_array_equal(np.array(plain, float), vals)
    assert not list(dataset.parent.glob(".*"))  # no temporary folder left behind


def test_gt_mot_equals_labels_and_reader_validates(dataset):
    from spermtrack.io.mot import read_mot
    from spermtrack.io.visem import read_visem_video, validate

    v = read_visem_video(dataset)
    assert validate(v).ok, validate(v).problems
    assert v.meta.n_frames == 30 and v.meta.fps == pytest.approx(50.0)
    mot = read_mot(dataset / "gt" / "gt.txt")
    mapped = v.tracks.assign(track_id=[int(u.split("t")[-1]) for u in v.tracks.track_uid])
    a = mapped.sort_values(["track_id", "frame"]).reset_index(drop=True)
    b = mot.sort_values(["track_id", "frame"]).reset_index(drop=True)
    np.testing.assert_array_equal(a[["track_id", "frame"]].to_numpy(), b[["track_id", "frame"]].to_numpy())
    np.testing.assert_allclose(a[["x", "y", "w", "h"]].to_numpy(), b[["x", "y", "w", "h"]].to_numpy(), atol=2e-3)
    truth = pd.read_csv(dataset / "gt" / "tracks_truth.csv")
    assert sorted(truth.track_id) == sorted(mot.track_id.unique())
    assert (truth.track_uid == [f"syn{dataset.name}t{k:04d}" for k in truth.track_id]).all()
    counts = pd.read_csv(dataset.parent.parent / "sperm_counts_per_frame.csv", skipinitialspace=True)
    assert len(counts) == 30


def test_mp4_has_every_frame(dataset):
    from spermtrack.io.video import VideoReader

    with VideoReader(dataset / f"{dataset.name}.mp4") as r:
        frames = [f for _, _, f in r]
    assert len(frames) == 30 and frames[0].shape == (240, 320)


def test_masks_are_the_drawn_shapes(dataset):
    m = load_masks(dataset)
    assert int(m["mask_every"]) == 3 and set(np.unique(m["frame"])) <= set(range(0, 30, 3))
    truth = pd.read_csv(dataset / "gt" / "tracks_truth.csv").set_index("track_id")
    s = float(m["um_per_px"])
    sperm = np.flatnonzero(m["member"] == -1)
    assert len(sperm) > 20
    rel_err = []
    for k in sperm[:40]:
        row = truth.loc[int(m["track_id"][k])]
        length, width = morph.feret_diameters(m["head_xy"][k].astype(np.float64))
        assert length * s == pytest.approx(row.head_length_um, rel=1e-4)
        assert width * s == pytest.approx(row.head_width_um, rel=1e-4)
        c = m["head_xy"][k].mean(axis=0)
        crop = rasterize(m, k, (64, 64), origin=(c[0] - 32, c[1] - 32))
        area = crop["head"].sum() * s * s
        rel_err.append(area / row.head_area_um2 - 1)
        assert crop["tail"].sum() > 0 and not (crop["tail"] & crop["head"]).any()
    # binary masks of 15-90 px heads: unbiased on average, pixel-quantised one by one
    assert abs(np.mean(rel_err)) < 0.04 and np.max(np.abs(rel_err)) < 0.3


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    generate(tmp_path / "a", **SMALL, difficulty="medium", mask_every=3)
    twin = tmp_path / "a" / "Train" / "101"
    for sub in ("labels", "labels_ftid", "images"):
        names = [p.name for p in _labels(dataset, sub)]
        match, mismatch, errors = filecmp.cmpfiles(dataset / sub, twin / sub, names, shallow=False)
        assert not mismatch and not errors
    assert filecmp.cmp(dataset / "gt" / "tracks_truth.csv", twin / "gt" / "tracks_truth.csv", shallow=False)
    assert filecmp.cmp(dataset / "gt" / "gt.txt", twin / "gt" / "gt.txt", shallow=False)
    generate(tmp_path / "b", **{**SMALL, "seed": 12}, write_images=False)
    other = tmp_path / "b" / "Train" / "101"
    assert not (other / "images").exists()
    assert not filecmp.cmp(dataset / "gt" / "gt.txt", other / "gt" / "gt.txt", shallow=False)


def test_parameter_errors_and_refusing_foreign_folders(tmp_path):
    with pytest.raises(ParameterError, match="fps"):
        generate(tmp_path, fps=1.0)
    with pytest.raises(ParameterError, match="width"):
        generate(tmp_path, width=321)
    with pytest.raises(ParameterError, match="difficulty"):
        generate(tmp_path, difficulty="extreme")
    foreign = tmp_path / "Train" / "101"
    foreign.mkdir(parents=True)
    (foreign / "mine.txt").write_text("keep me")
    with pytest.raises(ParameterError, match="not a spermtrack synth folder"):
        generate(tmp_path, seconds=0.1, cells=2, width=64, height=64)
    assert (foreign / "mine.txt").read_text() == "keep me"


def test_a_crash_leaves_no_video_folder(tmp_path, monkeypatch):
    import spermtrack.synth.writer as writer

    calls = {"n": 0}
    real = writer.render_frame

    def flaky(scene, i, geometry=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("simulated crash")
        return real(scene, i, geometry)

    monkeypatch.setattr(writer, "render_frame", flaky)
    with pytest.raises(RuntimeError):
        generate(tmp_path, seconds=0.2, cells=3, width=64, height=64)
    assert not (tmp_path / "Train" / "101").exists()
    assert not list((tmp_path / "Train").glob(".*"))


def test_cli_writes_a_video(tmp_path, capsys):
    from spermtrack.cli.main import main

    rc = main(["synth", str(tmp_path), "--videos", "2", "--seconds", "0.1", "--cells", "3", "--width", "96",
               "--height", "64", "--no-images", "--difficulty", "hard", "--seed", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Train/101" in out and "Train/102" in out and "hard" in out
    assert (tmp_path / "Train" / "102" / "102.mp4").is_file()
    assert main(["synth", str(tmp_path), "--um-per-px", "9"]) == 2
