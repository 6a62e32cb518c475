"""Atomic writes: a result file is either complete or absent, never half-written; a result
folder is either the previous complete run or the new complete run, never a mix.

Files are created with the user's umask (``0644`` with the usual ``022``), like any other
program's output: ``tempfile.mkstemp`` alone would leave them ``0600``, unreadable to colleagues
or a web server on a shared drive.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pandas as pd


_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a new regular file gets under the process umask (``0o666 & ~umask``)."""
    with _UMASK_LOCK:  # reading the umask means setting it: keep other threads out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, final)
    except OSError as err:
        if err.filename in (None, str(tmp_path)):  # a write error names no file, or the temporary one
            raise OSError(err.errno, err.strerror, str(final)) from err
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def partial_folder(final: str | os.PathLike) -> Path:
    """``<final>.partial``: where a run writes before it is swapped into place."""
    final = Path(final)
    return final.with_name(final.name + ".partial")


def start_run_folder(final: str | os.PathLike) -> Path:
    """Create an empty ``<final>.partial/`` to write a new run into (a leftover one from an
    interrupted run is removed first); ``final`` itself is not touched."""
    work = partial_folder(final)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def commit_run_folder(work: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Swap a finished ``work`` folder into place as ``final``.

    The previous ``final`` (if any) is moved aside, the new one renamed in, then the old one
    removed: at every moment ``final`` is either the previous complete run or the new one (the
    window between the two renames is two metadata operations on one file system).
    """
    work, final = Path(work), Path(final)
    old = final.with_name(f"{final.name}.previous-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    had_old = final.exists()
    if had_old:
        os.rename(final, old)
    try:
        os.rename(work, final)
    except OSError:
        if had_old:
            os.rename(old, final)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as standard JSON: NaN and infinities (no value) become ``null``."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def _finite(o):
    """``o`` with every non-finite float (and numpy scalar / array) replaced by None, recursively."""
    import math

    import numpy as np

    if isinstance(o, float) or isinstance(o, np.floating):
        return float(o) if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if hasattr(o, "to_dict") and not isinstance(o, type):
        return _finite(o.to_dict())
    return o


def write_csv_atomic(path: str | os.PathLike, df: pd.DataFrame, **kwargs) -> Path:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")
