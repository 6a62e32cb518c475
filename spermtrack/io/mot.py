"""MOTChallenge text files: tracks and detections.

One object per line, comma- (or whitespace-) separated::

    frame, id, left, top, width, height, conf, x, y, z

- ``frame`` is **1-based** in the file; spermtrack's Tracks table is 0-based, and this module
  is the only place that converts (``frame_table = frame_file - 1``).
- ``id`` is the track id; detection files use ``-1``.
- ``left, top, width, height`` is the box in px, in edge coordinates (pixel column ``c`` spans
  ``c .. c + 1``, as in VISEM's MOT ground truth); the Tracks table stores its centre in
  spermtrack's pixel-centre coordinates (``x = left + width / 2 - 0.5``, ``y = top + height / 2
  - 0.5``; :data:`spermtrack.types.EDGE_OFFSET_PX`) and size (``w, h``). Writers add the 0.5.
- ``conf`` defaults to 1 when a line has only the first six columns.
- Columns after ``conf`` (world ``x, y, z`` in MOT15, ``class, visibility`` in MOT16/17 ground
  truth, ``1,1,1`` in VISEM-Tracking's files) are not read: they mean different things in
  different datasets, so ``cls`` is always 0 on reading. Writers put ``-1,-1,-1`` there.
- A first line naming the columns (``frame,id,left,...``), which some tools write, is skipped.

:func:`read_tracks_file` is what commands that take tracks use: a Tracks CSV (``track_id``
header) or a MOT file, every number column checked (file, column, value and line named) and a
file without rows refused.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from spermtrack.errors import InputFileError, ParameterError
from spermtrack.io.atomic import atomic_path, write_text_atomic
from spermtrack.types import EDGE_OFFSET_PX, Detections, make_tracks

#: The columns of a MOTChallenge 2D line, in order.
MOT_COLUMNS: tuple[str, ...] = ("frame", "id", "left", "top", "width", "height", "conf", "x", "y", "z")

_SPLIT = re.compile(r"[,\s]+")


def mot_columns() -> tuple[str, ...]:
    """Return :data:`MOT_COLUMNS` (``frame`` 1-based, box in px, ``conf``, then unused x y z)."""
    return MOT_COLUMNS


def _parse(path: Path) -> np.ndarray:
    """Return an ``(n, 7)`` float array ``frame, id, left, top, w, h, conf`` of a MOT file.

    Raises:
        InputFileError: missing file, or a line that is not 6+ numbers with an integer
            ``frame >= 1`` and an integer ``id`` (names the 1-based line).
    """
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a MOTChallenge text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, "not a text file (MOTChallenge files are comma-separated text)") from None
    text = _comment_out_header(text)
    fast = _parse_fast(text)
    if fast is not None:
        return fast
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = _SPLIT.split(line.strip(", "))
        if len(parts) < 6:
            raise InputFileError(path, f"{len(parts)} values, a MOTChallenge line needs at least 6 "
                                       f"(frame,id,left,top,width,height): {raw!r}", line=lineno)
        try:
            vals = [float(p) for p in parts[:7]]
        except ValueError:
            k, bad = next((k, p) for k, p in enumerate(parts[:7]) if not _is_float(p))
            raise InputFileError(path, f"column {k + 1} ({MOT_COLUMNS[k]}) holds {bad[:40]!r}, not a number: "
                                       f"{raw[:80]!r}", line=lineno) from None
        if not all(np.isfinite(vals)):
            raise InputFileError(path, f"NaN or infinite value in {raw!r}", line=lineno)
        if vals[0] != int(vals[0]) or vals[1] != int(vals[1]):
            raise InputFileError(path, f"frame and id must be whole numbers: {raw!r}", line=lineno)
        if vals[0] < 1:
            raise InputFileError(path, f"frame {vals[0]:g} < 1 (MOTChallenge frames are 1-based)",
                                 line=lineno)
        if vals[4] < 0 or vals[5] < 0:
            raise InputFileError(path, f"negative box width or height: {raw!r}", line=lineno)
        if len(vals) == 6:
            vals.append(1.0)
        rows.append(vals)
    return np.asarray(rows, np.float64).reshape(-1, 7)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _comment_out_header(text: str) -> str:
    """A first line naming the columns (``frame,id,left,...``) becomes a comment: some tools
    write one although MOTChallenge files have none."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _is_mot_header(line):
            return text.replace(raw, "#" + raw, 1)
        break
    return text


def _parse_fast(text: str) -> np.ndarray | None:
    """Vectorised parse of a well-formed file; ``None`` sends it to the line-by-line parser,
    which finds and names the bad line."""
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), None)
    if first is None:
        return np.zeros((0, 7))
    sep = "," if "," in first else r"\s+"
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, header=None, comment="#",
                         skip_blank_lines=True, dtype=np.float64, engine="c")
    except (ValueError, pd.errors.ParserError):
        return None
    if df.shape[1] < 6:
        return None
    a = df.to_numpy(np.float64)[:, :7]
    if a.shape[1] == 6:
        a = np.column_stack([a, np.ones(len(a))])
    ok = (np.isfinite(a).all() and (a[:, 0] >= 1).all() and (a[:, 4:6] >= 0).all()
          and (a[:, :2] == np.round(a[:, :2])).all())
    return a if ok else None


def read_mot(path: str | os.PathLike, *, min_conf: float | None = None) -> pd.DataFrame:
    """Read a MOTChallenge track file into a Tracks table (0-based frames, box centres).

    Args:
        path: the ``.txt`` file.
        min_conf: drop rows whose ``conf`` is below this; ``None`` keeps all (MOT tracker
            outputs often write ``conf = -1``).

    Returns:
        A Tracks table (:func:`spermtrack.types.make_tracks`): ``track_id, frame, x, y, w, h,
        conf, cls`` with ``cls = 0``, sorted by track and frame.

    Raises:
        InputFileError: missing or malformed file (file and line named), a detection file
            (every id is -1: use :func:`read_mot_detections`), or a track with a frame twice.
    """
    path = Path(path)
    a = _parse(path)
    if len(a) and (a[:, 1] == -1).all():
        raise InputFileError(path, "every id is -1: this is a detection file; read it with "
                                   "read_mot_detections")
    if min_conf is not None:
        a = a[a[:, 6] >= float(min_conf)]
    df = pd.DataFrame({
        "track_id": a[:, 1].astype(np.int64),
        "frame": a[:, 0].astype(np.int64) - 1,
        "x": a[:, 2] + a[:, 4] / 2.0 - EDGE_OFFSET_PX,
        "y": a[:, 3] + a[:, 5] / 2.0 - EDGE_OFFSET_PX,
        "w": a[:, 4],
        "h": a[:, 5],
        "conf": a[:, 6],
        "cls": np.zeros(len(a), np.int64),
    })
    return make_tracks(df, source=str(path))


def read_mot_detections(path: str | os.PathLike, *, min_conf: float | None = None) -> dict[int, Detections]:
    """Read a MOTChallenge detection file (ids ignored, usually -1).

    Returns:
        ``{frame (0-based): Detections}``, frames in increasing order; a frame with no line in
        the file has no key (the format cannot tell "no objects" from "not annotated").

    Raises:
        InputFileError: missing or malformed file (file and line named).
    """
    a = _parse(Path(path))
    if min_conf is not None:
        a = a[a[:, 6] >= float(min_conf)]
    out: dict[int, Detections] = {}
    if not len(a):
        return out
    a = a[np.argsort(a[:, 0], kind="stable")]
    frames, starts = np.unique(a[:, 0].astype(np.int64), return_index=True)
    for f, rows in zip(frames, np.split(a, starts[1:])):
        xyxy = np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]]) - EDGE_OFFSET_PX
        out[int(f) - 1] = Detections(xyxy, rows[:, 6], 0)
    return out


def _num(v: float) -> str:
    # 4 decimals: sub-1e-4 px is below any detector's precision, and ints stay ints
    s = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


#: rows formatted per block when writing a MOT file
_BLOCK_ROWS = 20000


def write_mot(path: str | os.PathLike, tracks: pd.DataFrame, *,
              default_size_px: float | None = None) -> Path:
    """Write a Tracks table as a MOTChallenge file, atomically.

    Lines are ``frame (1-based), id, left, top, width, height, conf, -1, -1, -1`` with
    ``left = x - w / 2 + 0.5``, ``top = y - h / 2 + 0.5`` (edge coordinates, as VISEM's MOT
    ground truth: :data:`spermtrack.types.EDGE_OFFSET_PX`), sorted by frame then id.

    Args:
        path: output ``.txt`` file.
        tracks: a Tracks table (0-based frames).
        default_size_px: box side used where ``w`` or ``h`` is NaN (tracks that carry only
            positions). ``None`` (default) refuses such rows, because a made-up box size
            changes IoU-based metrics computed from the file.

    Raises:
        ParameterError: ``w``/``h`` is NaN and no ``default_size_px`` was given.
        InputFileError: ``tracks`` is not a valid Tracks table.
    """
    t = make_tracks(tracks, source="tracks to write")
    w, h = t["w"].to_numpy(float), t["h"].to_numpy(float)
    missing = ~(np.isfinite(w) & np.isfinite(h))
    if missing.any():
        if default_size_px is None:
            row = t[missing].iloc[0]
            raise ParameterError(
                f"{int(missing.sum())} rows have no box size (w/h NaN), e.g. track "
                f"{int(row.track_id)} frame {int(row.frame)}; pass default_size_px= to write "
                f"a fixed box for them")
        w = np.where(np.isfinite(w), w, float(default_size_px))
        h = np.where(np.isfinite(h), h, float(default_size_px))
    order = np.lexsort((t["track_id"].to_numpy(), t["frame"].to_numpy()))
    left = t["x"].to_numpy(float) - w / 2.0 + EDGE_OFFSET_PX
    top = t["y"].to_numpy(float) - h / 2.0 + EDGE_OFFSET_PX
    frame, tid, conf = t["frame"].to_numpy(), t["track_id"].to_numpy(), t["conf"].to_numpy(float)
    del t
    # written in blocks: a million-row table must not become a million strings at once
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for start in range(0, len(order), _BLOCK_ROWS):
            fh.write("".join(f"{frame[i] + 1},{tid[i]},{_num(left[i])},{_num(top[i])},{_num(w[i])},{_num(h[i])},"
                             f"{_num(conf[i])},-1,-1,-1\n" for i in order[start:start + _BLOCK_ROWS]))
    return Path(path)


def write_mot_detections(path: str | os.PathLike, dets_by_frame: dict[int, Detections]) -> Path:
    """Write ``{frame (0-based): Detections}`` as ``frame,-1,left,top,w,h,conf,-1,-1,-1`` lines.

    Raises:
        ParameterError: a negative frame key.
    """
    lines: list[str] = []
    for f in sorted(dets_by_frame):
        if int(f) < 0:
            raise ParameterError(f"frame {f} < 0 (frames are 0-based)")
        d = dets_by_frame[f]
        ltwh = d.ltwh.astype(np.float64)
        ltwh[:, :2] += EDGE_OFFSET_PX
        for (left, top, wd, ht), c in zip(ltwh, d.conf.astype(np.float64)):
            lines.append(f"{int(f) + 1},-1,{_num(left)},{_num(top)},{_num(wd)},{_num(ht)},{_num(c)},-1,-1,-1")
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


# ------------------------------------------------------------------ Tracks CSV or MOT, for commands

#: Tracks CSV columns that must hold numbers when present.
_NUMERIC_COLUMNS: tuple[str, ...] = ("track_id", "frame", "x", "y", "w", "h", "conf", "cls",
                                     "x_smooth", "y_smooth")
#: Columns that must have a value on every row (a row without them belongs to no track / time).
_REQUIRED_VALUES: tuple[str, ...] = ("track_id", "frame")
#: Unit-suffixed names accepted for the core columns (``x_px`` for ``x``, ...).
_ALIASES: dict[str, str] = {"x_px": "x", "y_px": "y", "w_px": "w", "h_px": "h"}
_BOOL_TEXT: dict[str, bool] = {"true": True, "false": False, "1": True, "0": False,
                               "1.0": True, "0.0": False, "yes": True, "no": False}


def read_tracks_file(path: str | os.PathLike, *, allow_empty: bool = False) -> tuple[pd.DataFrame, str]:
    """Read a Tracks CSV or a MOTChallenge track file, as the commands that take tracks do.

    A CSV is recognised by a header naming ``track_id`` (and ``frame, x, y``; frames 0-based,
    positions in px; ``x_px, y_px, w_px, h_px`` are accepted for ``x, y, w, h``). Any other
    text whose first line starts with a number is read as a MOT file (:func:`read_mot`).

    Args:
        path: the file.
        allow_empty: accept a file with no data rows (header or comments only).

    Returns:
        ``(table, "csv" | "mot")``. The CSV's columns keep their order (names stripped, aliases
        renamed) with every number column as numbers; the MOT file is a Tracks table.

    Raises:
        InputFileError: missing, unreadable or empty file; neither format; a missing column; a
            value that is not a number (names the column, the value and the 1-based line); an
            empty ``track_id`` or ``frame``; no rows (unless ``allow_empty``).
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a track file (a Tracks CSV or a MOT file)")
    header_line, first, any_text = _first_line(path)
    if not any_text:
        raise InputFileError(path, "empty file (expected a track_id,frame,x,y CSV or a MOT file)")
    if "track_id" in [c.strip().lower() for c in first.split(",")]:
        table, fmt = _read_tracks_csv(path, header_line), "csv"
    elif not first or _starts_with_number(first) or _is_mot_header(first):
        table, fmt = read_mot(path), "mot"
    else:
        raise InputFileError(path, "neither a CSV with a track_id,frame,x,y header nor a MOT file "
                                   f"(first line {first[:60]!r})", line=header_line)
    if not len(table) and not allow_empty:
        what = "only a header" if fmt == "csv" or _is_mot_header(first) else "only comments"
        raise InputFileError(path, f"has no rows ({what}): it holds no tracks")
    return table, fmt


def _first_line(path: Path) -> tuple[int, str, bool]:
    """``(1-based line, text)`` of the first line that is neither blank nor a ``#`` comment
    (``(0, "")`` when there is none), and whether the file has any non-blank line."""
    any_text = False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.strip()
                if line:
                    any_text = True
                    if not line.startswith("#"):
                        return lineno, line, True
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except OSError as err:
        raise InputFileError(path, f"cannot read ({err.strerror})") from None
    return 0, "", any_text


def _is_mot_header(line: str) -> bool:
    return [c.lower() for c in _SPLIT.split(line.strip(", "))[:2]] == ["frame", "id"]


def _starts_with_number(line: str) -> bool:
    return _is_float(_SPLIT.split(line.strip(", "))[0])


def _read_tracks_csv(path: Path, header_line: int) -> pd.DataFrame:
    """The CSV under its header (line ``header_line``, 1-based), number columns checked."""
    try:
        df = pd.read_csv(path, skiprows=header_line - 1, engine="c")
    except (ValueError, pd.errors.ParserError) as err:
        raise InputFileError(path, f"not a readable CSV ({str(err).strip()})") from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.rename(columns={a: c for a, c in _ALIASES.items() if a in df.columns and c not in df.columns})
    missing = [c for c in ("track_id", "frame", "x", "y") if c not in df.columns]
    if missing:
        raise InputFileError(path, f"CSV header lacks {', '.join(missing)} (need track_id,frame,x,y in px)",
                             line=header_line)
    for col in df.columns:
        if col in _NUMERIC_COLUMNS and not pd.api.types.is_numeric_dtype(df[col]):
            values = pd.to_numeric(df[col], errors="coerce")
            bad = (values.isna() & df[col].notna()).to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise InputFileError(path, f"column {col!r} holds {str(df[col].iloc[i])[:40]!r}, not a number",
                                     line=_data_line(path, header_line, i))
            df[col] = values
        elif col == "interpolated" and not pd.api.types.is_bool_dtype(df[col]):
            df[col] = _as_bool(df[col], path, header_line)
    for col in _REQUIRED_VALUES:
        empty = df[col].isna().to_numpy()
        if empty.any():
            raise InputFileError(path, f"column {col!r} is empty", line=_data_line(path, header_line,
                                                                                  int(np.argmax(empty))))
    return df


def _as_bool(col: pd.Series, path: Path, header_line: int) -> pd.Series:
    """``interpolated`` as booleans (True / False / 1 / 0 / yes / no, any case)."""
    text = col.astype(str).str.strip().str.lower()
    bad = (~text.isin(list(_BOOL_TEXT))).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise InputFileError(path, f"column 'interpolated' holds {str(col.iloc[i])[:40]!r}, not True or False",
                             line=_data_line(path, header_line, i))
    return text.map(_BOOL_TEXT).astype(bool)


def _data_line(path: Path, header_line: int, row: int) -> int:
    """1-based line of data row ``row`` (0-based) below the header (blank lines skipped)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        n = -1
        for lineno, line in enumerate(fh, start=1):
            if lineno > header_line and line.strip():
                n += 1
                if n == row:
                    return lineno
    return header_line + 1 + row


def read_tracks(path: str | os.PathLike) -> pd.DataFrame:
    """A Tracks table (``track_id, frame`` 0-based, ``x, y, w, h`` px, ``conf, cls``, extra
    columns kept) from a Tracks CSV (e.g. an analysis' ``tracks.csv``) or a MOTChallenge file:
    :func:`read_tracks_file` without the format tag."""
    from spermtrack.types import make_tracks

    table, kind = read_tracks_file(path)
    return table if kind == "mot" else make_tracks(table, source=str(path))
