"""CLI polish: help text shown whole, integer options typed as integers, "did you mean" for a
mistyped command, progress of `synth` on stderr, a result's summary.json as --config."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest

from spermtrack.cli.main import COMMANDS, SHORT_HELP, cli, main


def _commands() -> list[tuple[str, click.Command]]:
    """Every command and sub-command as ``("train detector", cmd)``."""
    ctx = click.Context(cli)
    out = []
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        out.append((name, cmd))
        if isinstance(cmd, click.Group):
            out += [(f"{name} {sub}", cmd.get_command(ctx, sub)) for sub in cmd.list_commands(ctx)]
    return out


def _command_list(text: str) -> dict[str, str]:
    body = text.split("Commands:", 1)[1]
    return {ln.split()[0]: " ".join(ln.split()[1:]) for ln in body.splitlines() if ln.strip()}


def test_command_lists_show_every_summary_whole(capsys):
    assert set(SHORT_HELP) == set(COMMANDS)
    assert main(["--help"]) == 0
    listed = _command_list(capsys.readouterr().out)
    assert set(listed) == set(COMMANDS)
    assert not [n for n, h in listed.items() if h.endswith("...") or not h], listed
    assert main(["train", "--help"]) == 0
    listed = _command_list(capsys.readouterr().out)
    assert set(listed) == {"detector", "reid", "seg", "classifier"}
    assert not [n for n, h in listed.items() if h.endswith("...")], listed


@pytest.mark.parametrize("name", [n for n, _ in _commands()])
def test_every_command_has_help(name, capsys):
    assert main([*name.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: spermtrack {name}") and "Options:" in out
    assert len(out.split("Options:")[0].splitlines()) >= 3  # a description under the usage line


def test_every_option_says_what_it_is_for():
    owned_elsewhere = {("visem", "split")}  # spermtrack/cli/visem_runner_cmd.py
    missing = [f"{name} --{p.name}" for name, cmd in _commands() for p in cmd.params
               if isinstance(p, click.Option) and not p.hidden and not p.help and (name, p.name) not in owned_elsewhere]
    assert missing == []


def test_integer_options_are_integers():
    """An option whose default is a whole number takes whole numbers (``--cells`` is a mean)."""
    means = {"cells"}
    wrong = []
    for name, cmd in _commands():
        for p in cmd.params:
            if (isinstance(p, click.Option) and not p.is_flag and isinstance(p.default, int)
                    and not isinstance(p.default, bool) and p.name not in means
                    and not isinstance(p.type, (click.types.IntParamType, click.Choice))):
                wrong.append(f"{name} --{p.name} ({p.type.name})")
    assert wrong == []


def test_bad_counts_are_usage_errors(tmp_path, capsys):
    assert main(["synth", str(tmp_path), "--videos", "1.5"]) == 2
    assert "not a valid integer" in capsys.readouterr().err
    assert main(["synth", str(tmp_path), "--videos", "0"]) == 2
    assert "1<=x<=1000" in capsys.readouterr().err
    assert main(["train", "classifier", str(tmp_path), "--out", str(tmp_path / "w.pt"), "--tta", "3"]) == 2
    assert "not one of 1, 2, 4, 8" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv,suggestion", [
    (["analyse"], "Did you mean 'analyze'?"),
    (["kinematic", "x.csv"], "Did you mean 'kinematics'?"),
    (["visem-chek"], "'visem-check'"),
    (["train", "detecter"], "Did you mean 'detector'?"),
])
def test_mistyped_command_suggests_the_right_one(argv, suggestion, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"No such command '{argv[-1] if argv[0] == 'train' else argv[0]}'" in err and suggestion in err
    assert "Traceback" not in err


def test_unrelated_command_gets_no_suggestion(capsys):
    assert main(["zzzz"]) == 2
    err = capsys.readouterr().err
    assert "No such command 'zzzz'." in err and "Did you mean" not in err


def test_synth_shows_progress_on_stderr(tmp_path, capsys):
    rc = main(["synth", str(tmp_path), "--videos", "2", "--seconds", "0.1", "--cells", "3", "--width", "96",
               "--height", "64", "--no-images"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "frames/s" in cap.err and "10/10 frames" in cap.err and "frames/s" not in cap.out
    assert "Train/101" in cap.out
    rc = main(["synth", str(tmp_path / "q"), "--seconds", "0.1", "--cells", "3", "--width", "96", "--height", "64",
               "--no-images", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0 and cap.err == ""


def test_a_summary_json_reruns_with_its_config(tmp_path, capsys):
    from spermtrack.io.video import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, 50, 160, 120) as vw:
        for i in range(40):
            f = np.full((120, 160), 110, np.uint8)
            f[50:56, 20 + 3 * i:29 + 3 * i] = 200
            vw.write(f)
    first = tmp_path / "first"
    assert main(["analyze", str(video), "--out", str(first), "--um-per-px", "0.5", "--no-video", "--quiet",
                 "--preset", "casa-gui", "--polarity", "bright"]) == 0, capsys.readouterr().err
    summary = first / "clip" / "summary.json"
    again = tmp_path / "again"
    rc = main(["analyze", str(video), "--out", str(again), "--um-per-px", "0.5", "--quiet", "--config", str(summary)])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((again / "clip" / "summary.json").read_text())["config"]
    assert cfg == json.loads(summary.read_text())["config"]
    assert cfg["kinematics"]["preset"] == "casa-gui" and cfg["report"]["annotated_video"] is False


def test_kinematics_accepts_unit_suffixed_columns_and_a_mot_header(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("track_id,frame,x_px,y_px\n" + "".join(f"1,{i},{10 + i},20\n" for i in range(30)))
    mot = tmp_path / "t.txt"
    mot.write_text("frame,id,left,top,width,height,conf,x,y,z\n"
                   + "".join(f"{i + 1},1,{8 + i},18,4,4,1,-1,-1,-1\n" for i in range(30)))
    for src in (csv, mot):
        out = tmp_path / f"{src.suffix[1:]}_k.csv"
        assert main(["kinematics", str(src), "--fps", "50", "--um-per-px", "0.5", "--out", str(out)]) == 0
        assert Path(out).is_file()
    capsys.readouterr()
