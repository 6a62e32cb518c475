"""The house rules (issue 13, docs/ARCHITECTURE.md), checked on the source: who may import whom,
no import cycle, the front door."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "spermtrack"
#: stage packages: they never reach up into the chaining or the CLI
STAGES = ("detect", "tracker", "kinematics", "morphology", "evaluate", "report", "synth")


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in PKG.rglob("*.py")}


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules imported by a file (``from spermtrack.x import y`` -> ``spermtrack.x`` and, when
    ``y`` is a module, ``spermtrack.x.y``); ``top_level_only``: statements run at import time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mods = _modules()
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods}
            out |= subs
            if len(subs) < len(node.names):  # names taken from the module itself, not submodules of it
                out.add(node.module)
    return out


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_io_reads_and_writes_files_only():
    for mod, path in _modules().items():
        if _package(mod) == "io":
            bad = {m for m in _imports(path, top_level_only=False)
                   if m.startswith("spermtrack.") and _package(m) not in ("io", "errors", "types")}
            assert not bad, f"{mod} imports {sorted(bad)}"


def test_only_the_cli_imports_click():
    for mod, path in _modules().items():
        if _package(mod) != "cli":
            assert "click" not in _imports(path, top_level_only=False), mod


def test_stages_never_import_the_chaining_or_the_cli():
    for mod, path in _modules().items():
        if _package(mod) in STAGES:
            bad = {m for m in _imports(path, top_level_only=False) if _package(m) in ("pipeline", "cli")}
            assert not bad, f"{mod} imports {sorted(bad)}"


def test_the_tracker_holds_no_detector():
    names = {p.stem for p in (PKG / "tracker").glob("*.py")}
    assert not names & {"detect", "detectors", "blob", "blobcues", "yolo", "enhance", "slicing", "train_detector"}


def test_no_import_cycle():
    """Between modules, on the imports that run at import time (lazy imports inside functions
    are how optional heavy stages are reached and may point anywhere)."""
    mods = _modules()
    graph = {m: {i for i in _imports(p, top_level_only=True) if i in mods and i != m} for m, p in mods.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            if state.get(n) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_front_door_imports_lazily():
    code = ("import sys, spermtrack; heavy = [m for m in ('torch', 'numba', 'pandas', 'cv2', 'av') if m in sys.modules]; "
            "assert not heavy, heavy; from spermtrack import analyze_video, Config, Detections, make_tracks, "
            "read_tracks; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_read_tracks_reads_what_analyze_writes(tmp_path):
    import pandas as pd

    from spermtrack import read_tracks

    p = tmp_path / "tracks.csv"
    pd.DataFrame({"track_id": [1, 1], "frame": [0, 1], "time_s": [0.0, 0.02], "x": [10.0, 11.0], "y": [5.0, 5.5],
                  "w": [8.0, 8.0], "h": [8.0, 8.0], "conf": [0.9, 0.8], "cls": [0, 0]}).to_csv(p, index=False)
    t = read_tracks(p)
    assert list(t.columns[:8]) == ["track_id", "frame", "x", "y", "w", "h", "conf", "cls"] and len(t) == 2
