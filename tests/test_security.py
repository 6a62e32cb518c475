"""Nobody gets in through a file: crafted checkpoints are refused without running their code, and
the HTML report escapes a hostile video file name."""

from __future__ import annotations

import html
import os
import pickle
import shutil

import pytest
import torch

from spermtrack.cli.main import main
from spermtrack.errors import InputFileError


class _Payload:
    """Unpickling this calls ``os.system`` / ``open``: it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(tmp_path, how: str):
    """A ``.pt`` whose unpickling would create ``marker`` (returns ``(pt, marker)``)."""
    marker = tmp_path / f"PWNED_{how}"
    pt = tmp_path / f"evil_{how}.pt"
    payload = _Payload(marker)
    if how == "torch-reid":  # looks like a ReID checkpoint, old or new keys
        torch.save({"header": payload, "meta": payload, "state_dict": {}}, pt)
    elif how == "torch-classifier":
        torch.save({"header": payload, "state_dict": {"w": torch.zeros(2)}}, pt)
    else:  # a bare pickle in a .pt (torch's legacy, non-zip format)
        with open(pt, "wb") as f:
            pickle.dump({"state_dict": payload}, f, protocol=2)
    assert not marker.exists()
    # the file really is hostile: a plain pickle load would run the payload
    if how == "pickle":
        with open(pt, "rb") as f:
            pickle.load(f)
        assert marker.exists()
        marker.unlink()
    return pt, marker


def _one_line_refusal(msg: str, pt) -> None:
    assert "\n" not in msg
    assert str(pt) in msg
    assert "refused: not a plain-tensor checkpoint (it may hold code)" in msg


@pytest.mark.parametrize("how", ["torch-reid", "pickle"])
def test_crafted_reid_weights_are_refused_without_running_code(tmp_path, how):
    from spermtrack.tracker.reid import load_embedder

    pt, marker = _crafted(tmp_path, how)
    with pytest.raises(InputFileError) as err:
        load_embedder(pt)
    _one_line_refusal(str(err.value), pt)
    assert "spermtrack train reid" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("how", ["torch-classifier", "pickle"])
def test_crafted_classifier_weights_are_refused_without_running_code(tmp_path, how):
    from spermtrack.detect.classifier import CandidateClassifier

    pt, marker = _crafted(tmp_path, how)
    with pytest.raises(InputFileError) as err:
        CandidateClassifier.load(pt)
    _one_line_refusal(str(err.value), pt)
    assert "spermtrack train classifier" in str(err.value)
    assert not marker.exists()


def test_crafted_reid_weights_on_the_cli_are_one_line_exit_2(tmp_path, capsys):
    pt, marker = _crafted(tmp_path, "torch-reid")
    dets = tmp_path / "dets.txt"
    dets.write_text("1,-1,10,10,6,6,0.9\n2,-1,11,10,6,6,0.9\n")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")  # never reached: the weights are refused first
    code = main(["track", "--detections", str(dets), "--out", str(tmp_path / "t.txt"), "--fps", "50",
                 "--video", str(video), "--reid-weights", str(pt)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "Traceback" not in err and len(err.splitlines()) == 1
    _one_line_refusal(err, pt)
    assert not marker.exists()


def test_our_checkpoints_load_with_weights_only(tmp_path):
    """The shipped classifier and a freshly written ReID checkpoint are plain tensors + plain values."""
    import json

    from spermtrack.detect.classifier import DEFAULT_WEIGHTS, CandidateClassifier
    from spermtrack.tracker.reid import FORMAT_VERSION, build_model, load_checkpoint

    if DEFAULT_WEIGHTS.is_file():
        blob = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
        assert isinstance(blob["header"], str) and json.loads(blob["header"])
        clf = CandidateClassifier.load()
        clf.save(tmp_path / "clf.pt")
        torch.load(tmp_path / "clf.pt", map_location="cpu", weights_only=True)

    # the ReID format written by train_reid (the tiny real training is in test_reid.py)
    model = build_model(8, 0)
    pt = tmp_path / "reid.pt"
    torch.save({"header": json.dumps({"format": FORMAT_VERSION, "embedding_dim": 8, "crop_px": 40}),
                "state_dict": model.state_dict()}, pt)
    head, state = load_checkpoint(pt)
    assert head["embedding_dim"] == 8 and all(isinstance(v, torch.Tensor) for v in state.values())
    # the first format ({"state_dict", "meta": plain dict}) still loads
    old = tmp_path / "reid_v1.pt"
    torch.save({"state_dict": model.state_dict(), "meta": {"embedding_dim": 8, "crop_px": 40}}, old)
    assert load_checkpoint(old)[0]["embedding_dim"] == 8


HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.skipif(os.sep == "\\", reason="'<' and '>' are not allowed in Windows file names")
def test_report_escapes_a_hostile_video_name(tmp_path):
    from spermtrack.synth import generate

    folder = generate(tmp_path / "data", videos=1, seconds=0.6, cells=6, seed=5, width=240, height=180,
                      write_images=False, difficulty="easy")[0]
    video = tmp_path / f"{HOSTILE}.mp4"
    shutil.copy(folder / f"{folder.name}.mp4", video)
    out = tmp_path / "out"
    assert main(["analyze", str(video), "--out", str(out), "--um-per-px", "0.5", "--no-video", "--quiet"]) == 0
    reports = list(out.rglob("report.html"))
    assert len(reports) == 1
    page = reports[0].read_text()
    assert "<img src=x" not in page  # never raw markup
    assert "&lt;img src=x onerror=alert(1)&gt;.mp4" in page  # the name is shown, escaped
    assert page.count(html.escape(HOSTILE)) >= 2  # title and heading at least
