"""Bad input and safety: a corpus of wrong files and parameters. Each must end with one clear line on
stderr naming the problem, a non-zero exit and no traceback; nothing may look like a finished
result. A truncated video is analysed up to its last good frame and says so."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path

import av
import numpy as np
import pytest

from spermtrack.cli.main import main
from spermtrack.io.video import VideoWriter


def _frame(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    f = np.full((h, w), 110, np.uint8)
    x = 20 + (3 * i) % (w - 40)
    f[50:56, x:x + 9] = 200  # a bright moving "head"
    return f


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    p: dict[str, Path] = {}
    good = d / "good.mp4"
    with VideoWriter(good, 50, 160, 120) as vw:
        for i in range(60):
            vw.write(_frame(i))
    p["good"] = good
    p["text"] = d / "notes.mp4"
    p["text"].write_text("frame,id,x,y\n" * 100)
    p["garbage"] = d / "garbage.avi"
    p["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    p["empty"] = d / "empty.mp4"
    p["empty"].write_bytes(b"")
    p["zero_frames"] = d / "zero.avi"
    with av.open(str(p["zero_frames"]), "w") as c:
        s = c.add_stream("mpeg4", rate=50)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        c.start_encoding()
    p["image"] = d / "still.png"
    import cv2

    cv2.imwrite(str(p["image"]), _frame(0))
    full = d / "full.mkv"
    with VideoWriter(full, 50, 160, 120) as vw:
        for i in range(100):
            vw.write(_frame(i))
    p["truncated"] = d / "truncated.mkv"
    p["truncated"].write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    p["a_file"] = d / "plainfile"
    p["a_file"].write_text("x")
    p["config_bad_json"] = d / "bad.json"
    p["config_bad_json"].write_text("{\"kinematics\": {\"preset\": \"who2021\",,}}")
    p["config_unknown_key"] = d / "unknown.json"
    p["config_unknown_key"].write_text(json.dumps({"kinematics": {"presett": "who2021"}}))
    p["config_bad_type"] = d / "badtype.json"
    p["config_bad_type"].write_text(json.dumps({"kinematics": {"window": "five"}}))
    p["config_bad_preset"] = d / "badpreset.json"
    p["config_bad_preset"].write_text(json.dumps({"kinematics": {"preset": "who1999"}}))
    p["weights_garbage"] = d / "w.pt"
    p["weights_garbage"].write_bytes(b"not a checkpoint")
    # a VISEM-like folder whose label file has a malformed line
    v = d / "visem" / "Train" / "31"
    (v / "labels_ftid").mkdir(parents=True)
    with VideoWriter(v / "31.mp4", 50, 160, 120) as vw:
        for i in range(10):
            vw.write(_frame(i))
    for i in range(10):
        (v / "labels_ftid" / f"31_frame_{i}_with_ftid.txt").write_text("abc 0 0.5 0.5 0.05 0.05\n")
    (v / "labels_ftid" / "31_frame_3_with_ftid.txt").write_text("abc 0 0.5 zero 0.05\n")
    p["visem_bad_labels"] = d / "visem"
    p["clinical_bad"] = d / "clinical.csv"
    p["clinical_bad"].write_text("ID,progressive_pct,non_progressive_pct,immotile_pct\n31,40,20,40\n32,4O,20,40\n")
    # videos where the detector cannot calibrate: nothing stands out from the background
    for name, make in (("blank", lambda i, rng: np.full((120, 160), 128, np.uint8)),
                       ("black", lambda i, rng: np.zeros((120, 160), np.uint8)),
                       ("noise_only", lambda i, rng: np.clip(rng.normal(120, 3, (120, 160)), 0, 255).astype(np.uint8))):
        p[name] = d / f"{name}.mp4"
        rng = np.random.default_rng(1)
        with VideoWriter(p[name], 50, 160, 120) as vw:
            for i in range(40):
                vw.write(make(i, rng))
    p["empty_dir"] = d / "nothing_here"
    p["empty_dir"].mkdir()
    # track tables for `kinematics`: text in a number column, a header and no rows
    p["tracks"] = d / "tracks.csv"
    p["tracks"].write_text("track_id,frame,x,y\n" + "".join(f"1,{i},{10 + 2 * i},20\n" for i in range(40)))
    p["tracks_text"] = d / "tracks_text.csv"
    p["tracks_text"].write_text("track_id,frame,x,y\n1,0,10,20\n\n1,1,12,twenty\n1,2,14,20\n")
    p["tracks_header_only"] = d / "tracks_header.csv"
    p["tracks_header_only"].write_text("track_id,frame,x,y,w,h\n")
    p["mot_header_only"] = d / "gt_header.txt"
    p["mot_header_only"].write_text("frame,id,left,top,width,height,conf,x,y,z\n")
    p["mot_comments_only"] = d / "gt_comments.txt"
    p["mot_comments_only"].write_text("# exported by a tracker that found nothing\n")
    p["mot_text"] = d / "gt_text.txt"
    p["mot_text"].write_text("1,1,10,10,5,5,1,-1,-1,-1\n2,1,11,ten,5,5,1,-1,-1,-1\n")
    # a video too small to hold a head and let it swim
    p["tiny"] = d / "tiny.mp4"
    with VideoWriter(p["tiny"], 50, 32, 32) as vw:
        for i in range(30):
            f = np.full((32, 32), 110, np.uint8)
            f[14:18, 4 + i % 20:9 + i % 20] = 200
            vw.write(f)
    p["out"] = d / "out"
    return p


def _kin(p: dict[str, Path], tracks: str) -> list[str]:
    """``spermtrack kinematics`` of one corpus track file into OUT/kin/."""
    return ["kinematics", str(p[tracks]), "--fps", "50", "--um-per-px", "0.5", "--out", str(p["out"] / "kin" / "k.csv")]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# (case id, argv builder, expected fragment of the error line)
CASES = [
    ("missing_video", lambda p: ["analyze", str(p["out"].parent / "nope.mp4"), "--out", str(p["out"])], "not found"),
    ("folder_as_video", lambda p: ["analyze", str(p["empty_dir"]), "--out", str(p["out"])], "folder"),
    ("text_file", lambda p: ["analyze", str(p["text"]), "--out", str(p["out"])], "not a readable video"),
    ("random_bytes", lambda p: ["analyze", str(p["garbage"]), "--out", str(p["out"])], "not a readable video"),
    ("empty_file", lambda p: ["analyze", str(p["empty"]), "--out", str(p["out"])], "empty"),
    ("zero_frames", lambda p: ["analyze", str(p["zero_frames"]), "--out", str(p["out"])], "no frames"),
    ("still_image", lambda p: ["analyze", str(p["image"]), "--out", str(p["out"]), "--um-per-px", "0.5"], "1 frame"),
    ("fps_zero", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--fps", "0"], "--fps"),
    ("fps_negative", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--fps", "-50"], "--fps"),
    ("fps_absurd", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--fps", "1e7"], "--fps"),
    ("fps_nan", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--fps", "nan"], "--fps"),
    ("scale_zero", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--um-per-px", "0"], "--um-per-px"),
    ("scale_absurd", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--um-per-px", "500"], "--um-per-px"),
    ("scale_text", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--um-per-px", "half"], "--um-per-px"),
    ("out_under_a_file", lambda p: ["analyze", str(p["good"]), "--out", str(p["a_file"] / "sub"), "--um-per-px", "0.5"],
     "cannot be written"),
    ("config_missing", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--config", str(p["out"] / "c.json")],
     "config file not found"),
    ("config_bad_json", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--config", str(p["config_bad_json"])],
     "not valid JSON"),
    ("config_unknown_key", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--config",
                                      str(p["config_unknown_key"])], "presett"),
    ("config_bad_type", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--config", str(p["config_bad_type"])],
     "kinematics.window"),
    ("config_bad_preset", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--config",
                                     str(p["config_bad_preset"])], "who1999"),
    ("yolo_without_weights", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--detector", "yolo"],
     "needs --weights"),
    ("yolo_weights_missing", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--detector", "yolo",
                                        "--weights", str(p["out"] / "none.pt"), "--um-per-px", "0.5"], "not found"),
    ("reid_weights_garbage", lambda p: ["analyze", str(p["good"]), "--out", str(p["out"]), "--um-per-px", "0.5",
                                        "--reid-weights", str(p["weights_garbage"])], "checkpoint"),
    ("visem_bad_label_line", lambda p: ["visem", str(p["visem_bad_labels"]), "--out", str(p["out"]), "--um-per-px", "0.5",
                                        "--no-video", "--quiet"], "line 1"),
    ("visem_bad_clinical", lambda p: ["visem", str(p["visem_bad_labels"]), "--out", str(p["out"]), "--clinical",
                                      str(p["clinical_bad"])], "line 3"),
    ("visem_no_videos", lambda p: ["visem", str(p["empty_dir"]), "--out", str(p["out"])], "no VISEM-Tracking video"),
    ("blank_video", lambda p: ["analyze", str(p["blank"]), "--out", str(p["out"]), "--quiet"], "no calibration possible"),
    ("black_video", lambda p: ["analyze", str(p["black"]), "--out", str(p["out"]), "--quiet"], "no calibration possible"),
    ("noise_only_video", lambda p: ["analyze", str(p["noise_only"]), "--out", str(p["out"]), "--quiet"],
     "no calibration possible"),
    ("tracks_non_numeric", lambda p: _kin(p, "tracks_text"), "line 4: column 'y' holds 'twenty', not a number"),
    ("tracks_header_only", lambda p: _kin(p, "tracks_header_only"), "has no rows"),
    ("mot_header_only", lambda p: _kin(p, "mot_header_only"), "has no rows"),
    ("mot_comments_only", lambda p: _kin(p, "mot_comments_only"), "has no rows"),
    ("mot_non_numeric", lambda p: _kin(p, "mot_text"), "line 2: column 4 (top) holds 'ten'"),
    ("evaluate_gt_header_only", lambda p: ["evaluate", "--gt", str(p["mot_header_only"]), "--pred", str(p["mot_text"])],
     "has no rows"),
    ("tracks_all_excluded", lambda p: _kin(p, "tracks") + ["--exclude-tracks", "1"], "leaves no rows"),
    ("tiny_video_analyze", lambda p: ["analyze", str(p["tiny"]), "--out", str(p["out"]), "--um-per-px", "0.5",
                                      "--quiet"], "too small"),
    ("tiny_video_detect", lambda p: ["detect", str(p["tiny"]), "--out", str(p["out"] / "tiny_dets.txt")],
     "32x32 px frames are too small"),
    ("batch_bad_workers", lambda p: ["batch", str(p["good"]), "--out", str(p["out"]), "--workers", "0"], "--workers"),
    ("batch_no_scheduler", lambda p: ["batch", str(p["good"]), "--out", str(p["out"] / "b"), "--scheduler",
                                      "tcp://127.0.0.1:9"], "scheduler"),
]


@pytest.mark.parametrize("case,argv,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line(corpus, capsys, case, argv, fragment):
    rc, out, err = _run(argv(corpus), capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0, f"{case}: exit 0 (stderr: {err})"
    assert "Traceback" not in err and "Traceback" not in out
    errors = [ln for ln in lines if ln.startswith("spermtrack: error:")]
    assert len(errors) >= 1, err
    assert fragment.lower() in errors[-1].lower(), f"{case}: {errors[-1]!r} lacks {fragment!r}"
    assert not list(corpus["out"].glob("*/summary.json")) or case.startswith(("visem", "batch"))
    assert not (corpus["out"] / "kin").exists() or not list((corpus["out"] / "kin").iterdir())
    assert not (corpus["out"] / "tiny_dets.txt").exists()


def test_missing_fps_is_an_error_unless_given(corpus, capsys, monkeypatch):
    import spermtrack.io.video as vmod

    real = vmod.probe_video

    def no_rate(path, **kw):  # a container with no usable rate: what probe_video reports then
        m = real(path, **kw)
        if kw.get("fps") is None:
            m = dataclasses.replace(m, fps=50.0, fps_source="fallback",
                                    warnings=("no usable frame rate in the file; assuming 50 fps",))
        return m

    monkeypatch.setattr(vmod, "probe_video", no_rate)
    rc, _, err = _run(["analyze", str(corpus["good"]), "--out", str(corpus["out"] / "nofps")], capsys)
    assert rc == 2 and "Traceback" not in err and "pass --fps" in err.splitlines()[-1]
    rc, out, err = _run(["analyze", str(corpus["good"]), "--out", str(corpus["out"] / "nofps"), "--fps", "50",
                         "--um-per-px", "0.5", "--no-video", "--quiet"], capsys)
    assert rc == 0, err
    meta = json.loads((corpus["out"] / "nofps" / "good" / "summary.json").read_text())
    assert meta["calibration"]["fps_source"] == "user"


def test_debug_flag_shows_the_traceback(corpus):
    with pytest.raises(Exception, match="not a readable video"):
        main(["--debug", "analyze", str(corpus["text"]), "--out", str(corpus["out"])])


def test_truncated_video_is_analysed_up_to_its_last_good_frame(corpus, capsys):
    out = corpus["out"] / "trunc"
    rc, _, err = _run(["analyze", str(corpus["truncated"]), "--out", str(out), "--um-per-px", "0.5", "--quiet"], capsys)
    assert rc == 0, err
    assert "TRUNCATED" in err and "Traceback" not in err
    meta = json.loads((out / "truncated" / "summary.json").read_text())
    assert meta["status"] == "complete" and meta["truncated"] is True
    assert 10 <= meta["n_frames_analysed"] < 100
    assert any("TRUNCATED" in w for w in meta["warnings"])
    tracks = (out / "truncated" / "tracks.csv").read_text().splitlines()
    frames = [int(ln.split(",")[1]) for ln in tracks[1:]]
    assert max(frames) < meta["n_frames_analysed"]
    assert "Truncated video" in (out / "truncated" / "report.html").read_text()


def test_outputs_are_written_atomically(corpus, capsys):
    out = corpus["out"] / "atomic"
    rc, _, err = _run(["analyze", str(corpus["good"]), "--out", str(out), "--um-per-px", "0.5", "--quiet"], capsys)
    assert rc == 0, err
    leftovers = [p for p in (out / "good").rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []
    # a failed rerun (bad parameter after the folder exists) leaves no 'complete' marker behind
    # only when it got as far as the folder: parameters are checked first, so the old result stays
    rc, _, _ = _run(["analyze", str(corpus["good"]), "--out", str(out), "--um-per-px", "-1"], capsys)
    assert rc == 2 and (out / "good" / "summary.json").is_file()


# ------------------------------------------------------------------ disk full, quota, other OS errors

def _one_error_line(rc: int, out: str, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert "Traceback" not in err + out
    assert len(lines) == 1 and lines[0].startswith("spermtrack: error: "), err
    assert ".tmp" not in lines[0], f"a temporary file named: {lines[0]}"
    return lines[0]


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(corpus, capsys, monkeypatch, tmp_path):
    import pandas as pd

    def full_disk(self, path_or_buf=None, *args, **kwargs):  # some bytes land, then the disk is full
        if isinstance(path_or_buf, (str, Path)):
            Path(path_or_buf).write_text("track_id,vcl_um_s\n1,")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    out = tmp_path / "kin" / "k.csv"
    rc, o, e = _run(["kinematics", str(corpus["tracks"]), "--fps", "50", "--um-per-px", "0.5", "--out", str(out)],
                    capsys)
    line = _one_error_line(rc, o, e)
    assert f"no space left on device while writing {out}" in line
    assert list(out.parent.iterdir()) == []  # no half-written CSV, no temporary file
    with pytest.raises(OSError, match="No space left"):  # --debug shows the traceback
        main(["--debug", "kinematics", str(corpus["tracks"]), "--fps", "50", "--um-per-px", "0.5", "--out", str(out)])


def test_disk_full_during_analyze_is_one_line_and_no_complete_result(corpus, capsys, monkeypatch, tmp_path):
    import pandas as pd

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    rc, o, e = _run(["analyze", str(corpus["good"]), "--out", str(tmp_path), "--um-per-px", "0.5", "--no-video",
                     "--quiet"], capsys)
    errors = [ln for ln in e.splitlines() if ln.startswith("spermtrack: error:")]
    assert rc == 2 and "Traceback" not in e + o and len(errors) == 1, e
    assert "no space left on device while writing" in errors[0] and ".tmp" not in errors[0]
    assert not (tmp_path / "good" / "summary.json").exists()


def test_quota_on_the_last_file_keeps_the_previous_result_whole(corpus, capsys, monkeypatch, tmp_path):
    out = tmp_path / "k.csv"
    argv = ["kinematics", str(corpus["tracks"]), "--fps", "50", "--um-per-px", "0.5", "--out", str(out)]
    rc, _, err = _run(argv, capsys)
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(before) == {"k.csv", "k_summary.csv", "k.json"}
    real = os.replace

    def quota(src, dst, *a, **kw):  # the JSON (moved last) hits the quota: its temporary file is named
        if str(dst).endswith(".json"):
            raise OSError(errno.EDQUOT, "Disk quota exceeded", str(dst))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", quota)
    rc, o, e = _run(argv[:-2] + ["--preset", "casa-gui", "--out", str(out)], capsys)
    line = _one_error_line(rc, o, e)
    assert f"disk quota exceeded while writing {tmp_path / 'k.json'}" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old run whole, no new file


def test_other_os_errors_name_the_file_in_one_line(corpus, capsys, monkeypatch):
    import spermtrack.io.mot as mot

    def io_error(path, **kw):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(mot, "read_tracks_file", io_error)
    rc, o, e = _run(_kin(corpus, "tracks"), capsys)
    assert _one_error_line(rc, o, e) == f"spermtrack: error: {corpus['tracks']}: Input/output error"


def test_os_error_lines_name_the_final_file_not_the_temporary_one():
    from spermtrack.errors import describe_os_error, hide_temp_names, user_message, user_path

    tmp = "/data/out/good/.tracks.csv.k2j_x9aq.tmp.csv"
    assert user_path(tmp) == "/data/out/good/tracks.csv"
    assert user_path("/data/.hidden.csv") == "/data/.hidden.csv"
    assert user_path("/o/..k.json.abcdefgh.tmp.json.12345678.tmp.json") == "/o/k.json"  # a nested one
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", tmp)).startswith(
        "no space left on device while writing /data/out/good/tracks.csv:")
    assert describe_os_error(OSError(errno.EACCES, "Permission denied", tmp)) == \
        "/data/out/good/tracks.csv: Permission denied"
    assert describe_os_error(OSError(errno.EIO, "Input/output error")) is None  # no file: a bug, traceback
    # inside any message (a library's text wrapped in our error, a result's recorded error)
    assert hide_temp_names("out/.v.mkv.a1b2c3d4.tmp.mkv: cannot write (see '/x/.s.json.zzzzzzzz.tmp.json')") == \
        "out/v.mkv: cannot write (see '/x/s.json')"
    assert user_message(OSError(errno.ENOSPC, "No space left on device")).startswith(
        "no space left on device while writing the output")
    assert user_message(ValueError("/a/.t.csv.abcdefgh.tmp.csv is odd")) == "/a/t.csv is odd"
