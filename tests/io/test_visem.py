"""VISEM-Tracking reader: hand-made folders with known content, and the real video-24 tracks."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_file
from spermtrack.errors import InputFileError
from spermtrack.io.visem import list_video_folders, read_counts_csv, read_visem, read_visem_video, validate


def _write_frame(folder: Path, vid: str, n: int, rows: list[tuple[str, int, float, float, float, float]]):
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    (folder / "labels_ftid").mkdir(parents=True, exist_ok=True)
    (folder / "labels" / f"{vid}_frame_{n}.txt").write_text(
        "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for _, c, x, y, w, h in rows))
    (folder / "labels_ftid" / f"{vid}_frame_{n}_with_ftid.txt").write_text(
        "".join(f"{t} {c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for t, c, x, y, w, h in rows))


@pytest.fixture
def tiny(tmp_path):
    """5 frames: 0-1 two objects, 2 empty file, 3 missing (not annotated), 4 one object."""
    folder = tmp_path / "Train" / "7"
    a = ("ckz3v9nzv00033867jsekqdcl", 0, 0.5, 0.5, 0.025, 0.0375)
    b = ("ckz3zzzzz00033867jsekqdxx", 1, 0.25, 0.125, 0.05, 0.05)
    _write_frame(folder, "7", 0, [a, b])
    _write_frame(folder, "7", 1, [b, a])
    _write_frame(folder, "7", 2, [])
    _write_frame(folder, "7", 4, [a])
    return folder


def test_tiny_folder_reads_exactly(tiny):
    v = read_visem_video(tiny, fps=50)
    assert v.video_id == "7" and v.meta.n_frames == 5
    assert v.meta.width == 640 and any("assumed 640x480" in w for w in v.warnings)
    assert v.annotated.tolist() == [True, True, True, False, True]
    # ids are dense, in order of first appearance, mapping kept
    assert v.id_map == {"ckz3v9nzv00033867jsekqdcl": 0, "ckz3zzzzz00033867jsekqdxx": 1}
    t0 = v.tracks[v.tracks.track_id == 0]
    assert t0.frame.tolist() == [0, 1, 4]
    # label centre 0.5 0.5 is 320, 240 in edge coordinates: 319.5, 239.5 in pixel-centre ones
    np.testing.assert_allclose(t0[["x", "y", "w", "h"]].iloc[0], [319.5, 239.5, 16, 18], atol=1e-3)
    assert v.tracks[v.tracks.track_id == 1].cls.unique().tolist() == [1]
    counts = v.class_counts()
    assert counts.index.tolist() == [0, 1, 2, 4]
    assert counts.loc[2].tolist() == [0, 0, 0] and counts.loc[0].tolist() == [1, 1, 0]
    assert validate(v).ok


def test_root_split_and_folder_all_resolve(tiny):
    root = tiny.parent.parent
    assert list_video_folders(root) == [tiny]
    assert list_video_folders(tiny.parent) == [tiny]
    assert list_video_folders(tiny) == [tiny]
    assert list_video_folders(root, "train") == [tiny]
    with pytest.raises(InputFileError, match="split 'val'"):
        list_video_folders(root, "val")
    assert len(read_visem(root, fps=45)) == 1


@pytest.mark.parametrize(
    "content, problem",
    [
        ("0 0.5 0.5 0.1\n", "expected 5 fields"),
        ("0 0.5 0.5 0.1 abc\n", "non-numeric"),
        ("7 0.5 0.5 0.1 0.1\n", "unknown class 7"),
        ("0 0.5 1.5 0.1 0.1\n", r"normalised to \[0, 1\]"),
    ],
)
def test_malformed_line_names_file_and_line(tiny, content, problem):
    bad = tiny / "labels" / "7_frame_1.txt"
    bad.write_text("0 0.5 0.5 0.1 0.1\n" + content)
    with pytest.raises(InputFileError, match=problem) as err:
        read_visem_video(tiny, fps=50)
    assert str(bad) in str(err.value) and "line 2" in str(err.value)


def test_validate_against_counts_csv(tiny, tmp_path):
    csv = tmp_path / "counts.csv"
    csv.write_text("frame_name, sperm_count, cluster_count, small_or_pinhead_count\n"
                   "7_frame_0,1,1,0\n7_frame_1,1,1,0\n7_frame_2,0,0,0\n7_frame_4,1,0,0\n")
    v = read_visem_video(tiny, fps=50)
    assert validate(v, csv).ok
    csv.write_text(csv.read_text().replace("7_frame_4,1,0,0", "7_frame_4,2,0,0") + "7_frame_3,0,0,0\n")
    rep = validate(v, csv)
    assert not rep.ok
    assert any("frame 4" in p for p in rep.problems) and any("no label file" in p for p in rep.problems)


def test_labels_and_ftid_disagreement_is_reported(tiny):
    (tiny / "labels" / "7_frame_4.txt").write_text("")
    assert any("disagree" in p for p in validate(read_visem_video(tiny, fps=50)).problems)


def _video24_as_visem(root: Path) -> Path:
    """Rebuild video 24's label folders from the shared MOT file (ids 63-66 are its 4 clusters)."""
    mot = pd.read_csv(shared_file("data", "visem", "video24_gt_mot.txt"), header=None)
    folder = root / "Train" / "24"
    (folder / "labels").mkdir(parents=True)
    (folder / "labels_ftid").mkdir(parents=True)
    mot["cls"] = np.where(mot[1].isin([63, 64, 65, 66]), 1, 0)
    cx, cy = (mot[2] + mot[4] / 2) / 640, (mot[3] + mot[5] / 2) / 480
    mot["line"] = [f"{c} {x:.6f} {y:.6f} {w / 640:.6f} {h / 480:.6f}" for c, x, y, w, h in
                   zip(mot.cls, cx, cy, mot[4], mot[5])]
    for f, g in mot.groupby(0):
        (folder / "labels" / f"24_frame_{f - 1}.txt").write_text("\n".join(g.line) + "\n")
        (folder / "labels_ftid" / f"24_frame_{f - 1}_with_ftid.txt").write_text(
            "\n".join(f"uid{i:03d} {ln}" for i, ln in zip(g[1], g.line)) + "\n")
    return folder


@pytest.mark.slow
def test_real_video24_matches_official_counts(tmp_path):
    counts = shared_file("data", "visem", "sperm_counts_per_frame.csv")
    v = read_visem_video(_video24_as_visem(tmp_path), fps=50)
    assert v.meta.n_frames == 1470 and v.annotated.all()
    assert v.tracks.track_id.nunique() == 111 and len(v.tracks) == 97476
    rep = validate(v, counts)
    assert rep.ok, rep.problems
    assert rep.frames_checked == 1470
    ref = read_counts_csv(counts)
    assert ref[ref.video_id == "24"].sperm_count.sum() == (v.boxes.cls == 0).sum()


def test_real_labels_and_detections_share_one_pixel_convention():
    """VISEM's YOLO labels use edge coordinates; read through read_visem_video they must land
    on the detector's pixel-centre coordinates: on real video 11 the mean label - detection
    offset stays under 0.8 px (read without the conversion it is 1.35 px, right and down)."""
    folder = shared_file("data", "visem", "Train", "11")
    from spermtrack.detect.blob import BlobDetector
    from spermtrack.evaluate.detmetrics import match_centres
    from spermtrack.io.visem import iter_video_frames

    v = read_visem_video(folder)
    det = BlobDetector(classifier=None, polarity="bright")
    frames = list(range(0, 200, 20))
    offsets = []
    for f, img in iter_video_frames(v, frames):
        d = det.detect(img[None])[0]
        lab = v.boxes[(v.boxes.frame == f) & (v.boxes.cls == 0)][["x", "y"]].to_numpy()
        pi, ti = match_centres(d.centers, lab, 8.0)
        offsets.append(lab[ti] - d.centers[pi])
    off = np.concatenate(offsets)
    assert len(off) > 300
    assert np.hypot(*off.mean(axis=0)) < 0.8
