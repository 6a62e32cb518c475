"""Bad input and safety: a corpus of wrong files and parameters. Each must end with one clear line on
stderr naming the problem, a non-zero exit and no traceback; nothing may look like a finished
result. A truncated video is analysed up to its last good frame and says so."""

from __future__ import annotations

import dataclasses
import json
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
    p["out"] = d / "out"
    return p


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
