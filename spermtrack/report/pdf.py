"""``report.pdf``: a printable one-to-two-page A4 report of one sample, drawn with matplotlib's
PDF backend (no display, no LaTeX) and written atomically.

It reads the ``summary.json`` dictionary of one video (``video`` block) or of a pooled sample
(``fields`` list instead), and reads the optional keys only when they are there: ``sample_id``,
``patient_id``, ``concentration_million_per_ml`` and its ``concentration`` block,
``kinematics_distribution``, ``truncated``. What is printed is decided by :func:`report_blocks`
(plain strings, testable without reading a PDF); :func:`write_report_pdf` only lays the blocks
out on the pages and draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spermtrack.io.atomic import atomic_path
from spermtrack.report import distribution_decimals, distribution_items, human_column, kinematic_columns

#: A4 portrait, inches.
PAGE_IN = (8.27, 11.69)
_MARGIN_IN = (0.6, 0.55, 0.6, 0.7)  # left, top, right, bottom (the footer sits in the bottom one)
MAX_PAGES = 2

_QUANTITY_LABELS = {
    "rapid_progressive": "a: rapid progressive", "slow_progressive": "b: slow progressive",
    "non_progressive": "c: non-progressive", "immotile": "d: immotile",
    "progressive": "PR (a + b)", "total_motility": "total motility (a + b + c)", "hyperactivated": "hyperactivated",
}
_STATUS_COLORS = {"above": "#0a7d32", "below": "#c0392b", "inconclusive": "#b26b00"}
_ALERT = "#c0392b"


@dataclass(frozen=True)
class Block:
    """One thing to print.

    Attributes:
        kind: ``"title"``, ``"subtitle"``, ``"heading"``, ``"text"``, ``"alert"`` (red, bold),
            ``"warning"`` (a bulleted item), ``"table"`` or ``"figure"`` (the distributions).
        text: the text (wrapped to the page width when drawn).
        header: a table's column names.
        rows: a table's cells, as strings.
        align: one ``"l"`` / ``"r"`` per table column.
    """

    kind: str
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    align: str = ""


# ---------------------------------------------------------------------------------------------
# what to print


def _num(v, nd: int = 1, none: str = "–") -> str:
    if v is None or isinstance(v, bool):
        return none if v is None else ("yes" if v else "no")
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return none
    return f"{f:.{nd}f}"


def _count(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(f):
        return "–"
    return str(int(round(f))) if abs(f - round(f)) < 1e-6 else f"{f:.1f}"


def _g(v) -> str:
    """A number in 4 significant digits (thousands grouped), anything else as text."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return "–" if v is None else str(v)


def _str(v, none: str = "not given") -> str:
    return none if v is None or (isinstance(v, str) and not v.strip()) else str(v)


def _summary_dict(meta: dict) -> dict | None:
    """The primary aggregate's summary (``{"table": [...], "n_graded": ...}``), wherever it is."""
    s = meta.get("summary")
    if isinstance(s, dict):
        if isinstance(s.get("table"), list):
            return s
        for key in (meta.get("primary_aggregate"), "track", "pooled"):
            if isinstance(s.get(key), dict) and isinstance(s[key].get("table"), list):
                return s[key]
        for v in s.values():
            if isinstance(v, dict) and isinstance(v.get("table"), list):
                return v
    if isinstance(meta.get("table"), list):
        return {"table": meta["table"]}
    return None


def _fields(meta: dict) -> list[dict]:
    f = meta.get("fields")
    return [x for x in f if isinstance(x, dict)] if isinstance(f, list) else []


def _field_video(field: dict) -> str:
    v = field.get("video")
    if isinstance(v, dict):
        v = v.get("name") or v.get("path")
    return _str(v if v is not None else field.get("name"), "?")


def _n_graded(meta: dict, summ: dict | None) -> int | None:
    for v in ((summ or {}).get("n_graded"), meta.get("n_graded"), (meta.get("counts") or {}).get("n_graded")):
        if v is not None:
            return int(v)
    fields = _fields(meta)
    if fields and all(f.get("n_graded") is not None for f in fields):
        return int(sum(int(f["n_graded"]) for f in fields))
    return None


def _who6(row: dict) -> tuple[float | None, str]:
    """The WHO 6th-edition limit and status of a row; PR and total motility get the manual's
    limits (30 %, 42 %) when an older summary lacks them."""
    from spermtrack.kinematics.summary import WHO_LRL

    lrl = row.get("who6_lrl_pct")
    status = row.get("who6_status") or ""
    if lrl is None and row.get("quantity") in WHO_LRL["who6"]:
        lrl = WHO_LRL["who6"][row["quantity"]]
        lo, hi = row.get("ci95_low_pct"), row.get("ci95_high_pct")
        if lo is not None and hi is not None and lo == lo:
            status = "above" if lo >= lrl else ("below" if hi < lrl else "inconclusive")
    return lrl, status


def _fields_blocks(fields: list[dict]) -> list[Block]:
    """The pooled fields: video, cells graded, PR and total motility, calibration (columns only
    when some field has them)."""
    def cal(f: dict) -> dict:
        return f["calibration"] if isinstance(f.get("calibration"), dict) else f

    optional = [("PR %", lambda f: _num(f.get("progressive_pct"))),
                ("total %", lambda f: _num(f.get("total_motility_pct"))),
                ("fps", lambda f: _num(cal(f).get("fps"))),
                ("um/px", lambda f: (_g(cal(f).get("um_per_px")) if cal(f).get("um_per_px") is not None else "–")
                 + (" EST." if cal(f).get("um_per_px_estimated") else ""))]
    keys = {"PR %": "progressive_pct", "total %": "total_motility_pct", "fps": "fps", "um/px": "um_per_px"}
    used = [(h, fn) for h, fn in optional if any(cal(f).get(keys[h]) is not None or f.get(keys[h]) is not None
                                               for f in fields)]
    rows = []
    for i, f in enumerate(fields, 1):
        name = _field_video(f) + (" (truncated)" if f.get("truncated") else "")
        rows.append((str(i), name, _count(f.get("n_graded")) if f.get("n_graded") is not None else "–",
                     *(fn(f) for _, fn in used)))
    header = ("#", "field (video)", "graded", *(h for h, _ in used))
    return [Block("heading", f"Fields ({len(fields)})"),
            Block("table", header=header, rows=tuple(rows), align="llr" + "r" * len(used))]


def _morphology_blocks(meta: dict) -> list[Block]:
    """Indicative sample-level morphology, when the result has it."""
    ms = meta.get("morphology_summary")
    if not isinstance(ms, dict):
        return []
    out = [Block("heading", "Morphology (indicative)")]
    parts = []
    for key, label in (("normal_forms_pct", "normal forms"), ("head_defect_pct", "head findings"),
                       ("neck_midpiece_defect_pct", "neck / midpiece findings"), ("tail_defect_pct", "tail findings")):
        d = ms.get(key)
        if isinstance(d, dict) and d.get("pct") is not None:
            parts.append(f"{label} {_num(d['pct'])} % (95 % CI {_num(d.get('ci95_low_pct'))} – "
                         f"{_num(d.get('ci95_high_pct'))}; {_count(d.get('k'))} of {_count(d.get('n'))} cells)")
    out.append(Block("text", "; ".join(parts) + "." if parts else "No cell measured."))
    if ms.get("note"):
        out.append(Block("text", str(ms["note"])))
    return out


def _calibration_blocks(meta: dict) -> list[Block]:
    cal = meta.get("calibration") if isinstance(meta.get("calibration"), dict) else {}
    fields = _fields(meta)
    out = [Block("heading", "Calibration")]
    estimated = bool(cal.get("um_per_px_estimated")) or any(
        bool((f.get("calibration") or {}).get("um_per_px_estimated") or f.get("um_per_px_estimated")) for f in fields)
    if cal.get("fps") is not None or cal.get("um_per_px") is not None or (cal and fields):
        differ = "differs between fields (see the fields table)"
        fps = cal.get("fps")
        fps_s = f"{float(fps):g} fps" if fps is not None else (differ if fields else "not recorded")
        upp = cal.get("um_per_px")
        upp_s = f"{float(upp):.4g} um/px" if upp is not None else (differ if fields else "not recorded")
        flag = "  ESTIMATED" if cal.get("um_per_px_estimated") else ""
        src = (lambda k: f" (source: {_str(cal.get(k), 'differs' if fields else 'unknown')})")
        out.append(Block("text", f"Frame rate: {fps_s}{src('fps_source') if fps is not None else ''}   "
                                 f"Scale: {upp_s}{src('um_per_px_source') if upp is not None else ''}{flag}"))
    elif fields:
        out.append(Block("text", "Calibration per field: see the fields table above."))
    else:
        out.append(Block("text", "Calibration: not recorded."))
    if estimated:
        out.append(Block("alert", "SCALE ESTIMATED: um per px comes from the median head size (4.5 um heads), not "
                                  "from a stage micrometer. Every velocity, and therefore every grade, depends on "
                                  "it; rerun with --um-per-px for a calibrated result."))
    return out


def _grade_blocks(meta: dict, summ: dict | None) -> list[Block]:
    k = meta.get("kinematics") if isinstance(meta.get("kinematics"), dict) else {}
    agg = (summ or {}).get("aggregate") or meta.get("primary_aggregate")
    bits = [f"aggregate: {agg}" if agg else "", f"preset: {k['preset']}" if k.get("preset") else ""]
    extra = ", ".join(b for b in bits if b)
    out = [Block("heading", "Motility grades" + (f" ({extra})" if extra else ""))]
    rows = []
    for r in (summ or {}).get("table") or []:
        if not isinstance(r, dict) or "quantity" not in r:
            continue
        lrl, status = _who6(r)
        lo, hi = r.get("ci95_low_pct"), r.get("ci95_high_pct")
        rows.append((_QUANTITY_LABELS.get(r["quantity"], str(r["quantity"])), _num(r.get("pct")),
                     f"{_num(lo)} – {_num(hi)}", _count(r.get("count")),
                     f"{lrl:g}" if lrl is not None else "", status))
    if rows:
        out.append(Block("table", header=("quantity", "%", "95 % CI (Wilson)", "cells", "WHO 6th LRL (%)", "status"),
                         rows=tuple(rows), align="lrrrrl"))
        out.append(Block("text", "Status compares the whole 95 % interval with the WHO 2021 (6th edition) lower "
                                 "reference limit: progressive 30\u00a0%, total motility 42\u00a0%; inconclusive "
                                 "when the interval straddles it."))
    else:
        out.append(Block("text", "No grade table in this result."))
    from spermtrack.kinematics.summary import WHO_MIN_CELLS

    n = _n_graded(meta, summ)
    not_graded = (summ or {}).get("n_not_graded")
    if n is None:
        out.append(Block("text", "Cells graded: not recorded."))
    else:
        nots = f" ({int(not_graded)} tracks too short to grade)" if not_graded is not None else ""
        if n >= WHO_MIN_CELLS:
            out.append(Block("text", f"Cells graded: n = {n}{nots}. WHO 200-cell check: met (n >= {WHO_MIN_CELLS})."))
        else:
            out.append(Block("alert", f"Cells graded: n = {n}{nots}. WHO 200-cell check: NOT MET (WHO asks for at "
                                      f"least {WHO_MIN_CELLS} cells; analyse more fields or a longer recording)."))
    return out


def _concentration_blocks(meta: dict) -> list[Block]:
    conc = meta.get("concentration_million_per_ml")
    out = [Block("heading", "Concentration")]
    if conc is None:
        out.append(Block("text", "Not measured (no chamber depth given; it is never guessed)."))
        return out
    out.append(Block("text", f"Concentration: {_num(conc, 2)} million / mL"))
    info = meta.get("concentration") if isinstance(meta.get("concentration"), dict) else {}
    rule = None
    parts = []
    for key, v in info.items():
        if key in ("counting_rule", "rule"):
            rule = v
        elif key == "concentration_million_per_ml":
            continue  # printed above
        elif isinstance(v, (int, float, list, str)) and not isinstance(v, bool):
            vals = v if isinstance(v, list) else [v]
            parts.append(f"{human_column(key)}: " + ", ".join(_g(x) for x in vals))
    if parts:
        out.append(Block("text", "; ".join(parts)))
    if rule:
        out.append(Block("text", f"Counting rule: {rule}"))
    return out


def _distribution_rows(dist: dict) -> tuple[tuple[str, ...], ...]:
    rows = []
    for col, groups in distribution_items(dist):
        cells = [human_column(col)]
        nd = distribution_decimals(col, groups)
        for g in ("all", "motile"):
            s = groups.get(g) if isinstance(groups.get(g), dict) else {}
            cells += [_count(s.get("n")) if s.get("n") is not None else "0", _num(s.get("mean"), nd),
                      _num(s.get("sd"), nd), _num(s.get("median"), nd)]
        rows.append(tuple(cells))
    return tuple(rows)


def _kinematics_blocks(meta: dict, metrics: pd.DataFrame | None, plots: dict | None) -> list[Block]:
    dist = meta.get("kinematics_distribution")
    source = ""
    if not isinstance(dist, dict) or not dist:
        from spermtrack.kinematics.summary import kinematics_distribution

        dist = kinematics_distribution(metrics, aliases=False) if metrics is not None and len(metrics) else None
        source = " (computed from the per-track table)" if dist else ""
    out = [Block("heading", "Kinematics: all graded cells and motile cells (a + b + c)" + source)]
    rows = _distribution_rows(dist) if dist else ()
    if rows:
        out.append(Block("table", header=("measure", "all: n", "mean", "SD", "median",
                                          "motile: n", "mean", "SD", "median"),
                         rows=rows, align="lrrrrrrrr"))
    else:
        out.append(Block("text", "No kinematic distribution in this result."))
    has_metrics = metrics is not None and len(metrics) and kinematic_columns(metrics.columns)
    png = (plots or {}).get("distributions")
    if has_metrics or (png is not None and Path(png).is_file()):
        out.append(Block("figure", "Box plots: box = quartiles, line = median, diamond = mean, whiskers = 1.5 IQR"))
    return out


def report_blocks(meta: dict, metrics: pd.DataFrame | None = None,
                  plots: dict[str, Path] | None = None) -> list[Block]:
    """Everything the PDF prints, in order, as :class:`Block` s of plain strings.

    Args:
        meta: a ``summary.json`` dictionary (one video, or a pooled sample with ``fields``);
            missing keys are treated as absent.
        metrics: per-track kinematics (box plots, and the distribution table when ``meta`` has none).
        plots: figure name -> PNG; ``"distributions"`` is embedded when ``metrics`` is not given.
    """
    meta = meta or {}
    summ = _summary_dict(meta)
    fields = _fields(meta)
    video = meta.get("video") if isinstance(meta.get("video"), dict) else None
    blocks = [Block("title", "Sperm motility report" + (" (pooled sample)" if fields and video is None else ""))]
    ids = f"Sample ID: {_str(meta.get('sample_id'))}     Patient ID: {_str(meta.get('patient_id'))}"
    blocks.append(Block("subtitle", ids))
    if video is not None:
        vid = f"Video: {_str(video.get('name'), '?')}"
        if video.get("n_frames_analysed") is not None and video.get("duration_s") is not None:
            vid += f" ({int(video['n_frames_analysed'])} frames, {float(video['duration_s']):.2f} s)"
    elif fields:
        vid = f"Fields: {len(fields)} videos pooled (listed below)"
    elif isinstance(meta.get("video"), str):
        vid = f"Video: {meta['video']}"
    else:
        vid = "Video: not recorded"
    blocks.append(Block("subtitle", f"{vid}     Date: {_str(meta.get('created'), 'not recorded')}"))
    if meta.get("truncated"):
        n = meta.get("n_frames_analysed") or (video or {}).get("n_frames_analysed")
        blocks.append(Block("alert", "TRUNCATED VIDEO: the recording is damaged or cut off; "
                                     + (f"only the first {int(n)} frames" if n else "only the frames before the damage")
                                     + " could be decoded and were analysed."))
    if fields:
        blocks += _fields_blocks(fields)
    blocks += _calibration_blocks(meta)
    blocks += _grade_blocks(meta, summ)
    blocks += _concentration_blocks(meta)
    blocks += _kinematics_blocks(meta, metrics, plots)
    blocks += _morphology_blocks(meta)
    warnings = [str(w) for w in (meta.get("warnings") or []) if w is not None and str(w).strip()]
    blocks.append(Block("heading", f"Warnings ({len(warnings)})"))
    blocks += [Block("warning", w) for w in warnings] or [Block("text", "None.")]
    return blocks


def _software(meta: dict) -> str:
    v = meta.get("versions") if isinstance(meta.get("versions"), dict) else {}
    return f"spermtrack {v.get('spermtrack', '?')}"


def report_text(meta: dict, metrics: pd.DataFrame | None = None, plots: dict[str, Path] | None = None) -> str:
    """The report's text, one line per block or table row (cells separated by `` | ``), plus the
    footer: what a reader of the PDF sees, for tests and for a plain-text copy."""
    lines = []
    for b in report_blocks(meta, metrics, plots):
        if b.kind == "table":
            lines += [" | ".join(b.header)] + [" | ".join(r) for r in b.rows]
        else:
            lines.append(("- " if b.kind == "warning" else "") + b.text)
    lines.append(_software(meta))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# layout and drawing

_STYLE = {  # kind -> (size relative to the body, bold, colour, space before in body lines)
    "title": (1.9, True, "#111111", 0.0), "subtitle": (1.1, False, "#333333", 0.1),
    "heading": (1.25, True, "#111111", 0.9), "text": (1.0, False, "#222222", 0.15),
    "alert": (1.0, True, _ALERT, 0.3), "warning": (1.0, False, "#7a4a00", 0.1),
}


class _Measure:
    """Text widths in points: each character's advance measured once with matplotlib's own font
    metrics (at 10 pt, scaled linearly), summed per string; kerning is ignored (a fraction of a
    percent, covered by the margins). Measuring whole strings with the font engine costs
    milliseconds each, far too slow for wrapping hundreds of warnings several times over."""

    _REF = 10.0

    def __init__(self):
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextToPath

        self._t2p = TextToPath()
        self._props = {b: FontProperties(family="DejaVu Sans", size=self._REF, weight="bold" if b else "normal")
                       for b in (False, True)}
        self._adv: dict[bool, dict[str, float]] = {False: {}, True: {}}
        self._wrapped: dict[tuple, list[str]] = {}

    def _char(self, ch: str, bold: bool) -> float:
        adv = self._adv[bold]
        w = adv.get(ch)
        if w is None:
            if ch == " ":  # a lone space measures 0: take it from the difference of two strings
                w = (self._t2p.get_text_width_height_descent("a a", self._props[bold], ismath=False)[0]
                     - self._t2p.get_text_width_height_descent("aa", self._props[bold], ismath=False)[0])
            else:
                w = self._t2p.get_text_width_height_descent(ch, self._props[bold], ismath=False)[0]
            adv[ch] = w
        return w

    def width(self, s: str, size: float, bold: bool = False) -> float:
        return sum(self._char(ch, bold) for ch in s) * size / self._REF

    def wrap(self, text: str, width_pt: float, size: float, bold: bool = False) -> list[str]:
        """Greedy word wrap; a word longer than the line (a path) is cut by characters. Cached: the
        layout wraps the same text at a few sizes while it looks for the size that fits."""
        key = (text, width_pt, size, bold)
        if key not in self._wrapped:
            self._wrapped[key] = self._wrap(text, width_pt, size, bold)
        return self._wrapped[key]

    def _wrap(self, text: str, width_pt: float, size: float, bold: bool) -> list[str]:
        lines: list[str] = []
        for para in str(text).splitlines() or [""]:
            cur = ""
            for word in para.split(" "):
                cand = f"{cur} {word}" if cur else word
                if self.width(cand, size, bold) <= width_pt:
                    cur = cand
                    continue
                if cur:
                    lines.append(cur)
                cur = ""
                while len(word) > 1 and self.width(word, size, bold) > width_pt:
                    lo, hi = 1, len(word) - 1  # the longest head that fits (at least one character)
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if self.width(word[:mid], size, bold) <= width_pt:
                            lo = mid
                        else:
                            hi = mid - 1
                    lines.append(word[:lo])
                    word = word[lo:]
                cur = word
            lines.append(cur)
        return lines


@dataclass
class _Item:
    kind: str       # "line", "row", "figure"
    height: float   # inches
    payload: tuple
    keep_next: bool = False
    space: float = 0.0


def _items(blocks: list[Block], fs: float, fig_h: float, m: _Measure) -> list[_Item]:
    """Blocks cut into unbreakable items (a wrapped line, a table row, the figure)."""
    usable_pt = (PAGE_IN[0] - _MARGIN_IN[0] - _MARGIN_IN[2]) * 72
    lh = fs * 1.32 / 72
    items: list[_Item] = []
    for b in blocks:
        if b.kind == "figure":
            items.append(_Item("figure", fig_h, (b.text,), space=0.1))
            continue
        if b.kind == "table":
            size = fs * 0.95
            cols = len(b.header)
            widths = [max([m.width(b.header[c], size, True)] + [m.width(r[c], size) for r in b.rows if c < len(r)])
                      for c in range(cols)]
            gap = 12.0
            total = sum(widths) + gap * (cols - 1)
            shrink = min(1.0, usable_pt / total) if total else 1.0
            size *= shrink
            widths = [w * shrink for w in widths]
            gap *= shrink
            xs, x = [], 0.0
            for w in widths:
                xs.append((x, x + w))
                x += w + gap
            rh = size * 1.45 / 72
            items.append(_Item("row", rh, (b.header, xs, b.align, size, True), keep_next=True, space=0.1 * lh))
            for r in b.rows:
                items.append(_Item("row", rh, (r, xs, b.align, size, False)))
            continue
        rel, bold, color, space = _STYLE.get(b.kind, _STYLE["text"])
        size = fs * rel
        indent = 10.0 if b.kind == "warning" else 0.0
        text = b.text
        lines = m.wrap(text, usable_pt - indent, size, bold)
        for i, line in enumerate(lines):
            bullet = "•" if b.kind == "warning" and i == 0 else ""
            items.append(_Item("line", size * 1.32 / 72, (line, size, bold, color, indent, bullet),
                               keep_next=b.kind == "heading", space=(space * lh) if i == 0 else 0.0))
    return items


def _paginate(items: list[_Item]) -> list[list[tuple[float, _Item]]]:
    """Items placed top-down (y of each item's top, inches from the page top); a heading or a
    table header never ends a page."""
    top, bottom = _MARGIN_IN[1], PAGE_IN[1] - _MARGIN_IN[3]
    pages: list[list[tuple[float, _Item]]] = [[]]
    y = top
    i = 0
    while i < len(items):
        it = items[i]
        need = it.space + it.height
        j = i
        while items[j].keep_next and j + 1 < len(items):  # keep headings with what follows
            j += 1
            need += items[j].space + items[j].height
        if y + need > bottom and pages[-1]:
            pages.append([])
            y = top
        y += it.space if pages[-1] else 0.0
        pages[-1].append((y, it))
        y += it.height
        i += 1
    return pages


def _layout(blocks: list[Block], m: _Measure) -> tuple[list[list[tuple[float, _Item]]], float]:
    """The largest body font (and figure) with which everything fits on :data:`MAX_PAGES`; when
    even the smallest does not, the warnings are cut and the last line says how many more there
    are (all of them are in ``summary.json``)."""
    for fs in (9.0, 8.5):  # one page when that costs little in size
        for fig_h in (4.4, 3.6, 3.0):
            pages = _paginate(_items(blocks, fs, fig_h, m))
            if len(pages) == 1:
                return pages, fs
    for fs in (9.0, 8.5, 8.0, 7.5, 7.0, 6.5, 6.0):
        for fig_h in (4.4, 3.6, 3.0):
            pages = _paginate(_items(blocks, fs, fig_h, m))
            if len(pages) <= MAX_PAGES:
                return pages, fs
    fs, fig_h = 6.0, 3.0
    warn = [i for i, b in enumerate(blocks) if b.kind == "warning"]
    lo, hi = 0, len(warn)
    while lo < hi:  # the most warnings that still fit
        mid = (lo + hi + 1) // 2
        cut = _cut_warnings(blocks, warn, mid)
        if len(_paginate(_items(cut, fs, fig_h, m))) <= MAX_PAGES:
            lo = mid
        else:
            hi = mid - 1
    return _paginate(_items(_cut_warnings(blocks, warn, lo), fs, fig_h, m)), fs


def _cut_warnings(blocks: list[Block], warn: list[int], keep: int) -> list[Block]:
    if keep >= len(warn):
        return blocks
    drop = set(warn[keep:])
    out = [b for i, b in enumerate(blocks) if i not in drop]
    out.append(Block("alert", f"... and {len(warn) - keep} more warnings: see summary.json."))
    return out


def _draw_page(fig, placed: list[tuple[float, _Item]], metrics: pd.DataFrame | None, plots: dict | None) -> None:
    W, H = PAGE_IN
    left = _MARGIN_IN[0]
    for y, it in placed:
        if it.kind == "line":
            line, size, bold, color, indent, bullet = it.payload
            if bullet:
                fig.text(left / W, 1 - y / H, bullet, fontsize=size, color=color, va="top", parse_math=False)
            fig.text((left + indent / 72) / W, 1 - y / H, line, fontsize=size, color=color, va="top",
                     weight="bold" if bold else "normal", parse_math=False)
        elif it.kind == "row":
            cells, xs, align, size, header = it.payload
            for c, (x0, x1) in enumerate(xs):
                s = cells[c] if c < len(cells) else ""
                right = (align[c] if c < len(align) else "l") == "r"
                color = "#111111" if header else _STATUS_COLORS.get(s.split(" ")[0] if s else "", "#222222")
                fig.text((left + (x1 if right else x0) / 72) / W, 1 - y / H, s, fontsize=size,
                         ha="right" if right else "left", va="top", color=color,
                         weight="bold" if header else "normal", parse_math=False)
            if header:
                yl = 1 - (y + it.height * 0.92) / H
                fig.add_artist(_hline(left / W, (left + xs[-1][1] / 72) / W, yl))
        elif it.kind == "figure":
            _draw_figure(fig, y, it, metrics, plots)


def _hline(x0: float, x1: float, y: float):
    from matplotlib.lines import Line2D

    return Line2D([x0, x1], [y, y], lw=0.6, color="#888888")


def _draw_figure(fig, y: float, it: _Item, metrics: pd.DataFrame | None, plots: dict | None) -> None:
    W, H = PAGE_IN
    left, right = _MARGIN_IN[0], W - _MARGIN_IN[2]
    caption = it.payload[0]
    top_in, bot_in = y + 0.05, y + it.height
    if metrics is not None and len(metrics) and kinematic_columns(metrics.columns):
        from spermtrack.report.plots import draw_distributions

        n = len(kinematic_columns(metrics.columns))
        ncols = 5 if n > 8 else 4 if n > 3 else n
        nrows = int(math.ceil(n / ncols))
        gs = fig.add_gridspec(nrows, ncols, left=(left + 0.45) / W, right=right / W,
                              top=1 - (top_in + 0.05) / H, bottom=1 - (bot_in - 0.45) / H, wspace=0.75, hspace=0.55)
        axes = [fig.add_subplot(gs[r, c]) for r in range(nrows) for c in range(ncols)]
        draw_distributions(axes, metrics, fontsize=6.5)
    else:
        import matplotlib.image as mpimg

        img = mpimg.imread(str((plots or {})["distributions"]))
        box_w, box_h = right - left, it.height - 0.35
        aspect = img.shape[0] / max(img.shape[1], 1)
        w = min(box_w, box_h / aspect)
        h = w * aspect
        ax = fig.add_axes(((left + (box_w - w) / 2) / W, 1 - (top_in + h) / H, w / W, h / H))
        ax.imshow(img, interpolation="antialiased")
        ax.axis("off")
    fig.text(left / W, 1 - (bot_in - 0.05) / H, caption, fontsize=7, color="#555555", va="bottom", parse_math=False)


def write_report_pdf(path: str | Path, meta: dict, metrics: pd.DataFrame | None = None,
                     plots: dict[str, Path] | None = None) -> Path:
    """Write the printable report (A4, one or two pages) of one analysed video or pooled sample.

    Args:
        path: the PDF to write (atomically: a temporary file beside it is renamed onto it, so a
            crash leaves the previous file or none, never half a PDF).
        meta: the ``summary.json`` dictionary; optional keys that are missing are shown as absent.
        metrics: per-track kinematics with ``grade``: box plots of the kinematics (all graded vs
            motile cells) and, when ``meta`` has no ``kinematics_distribution``, the table.
        plots: figure name -> PNG path; ``plots["distributions"]`` is embedded when no ``metrics``.

    Returns:
        ``path``.
    """
    # Figure objects, not pyplot: no display, no global figure state; the PDF backend draws them
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    meta = meta or {}
    m = _Measure()
    blocks = report_blocks(meta, metrics, plots)
    pages, _ = _layout(blocks, m)
    video = meta.get("video") if isinstance(meta.get("video"), dict) else {}
    title = " ".join(x for x in ("spermtrack report", _str(meta.get("sample_id"), ""),
                                 _str(video.get("name"), "")) if x)
    foot = f"{_software(meta)}  ·  created {_str(meta.get('created'), '?')}"
    info = {"Title": title, "Creator": _software(meta), "Subject": "sperm motility (CASA) report"}
    import matplotlib

    # TrueType fonts (not Type 3) so that a reader can search and copy the text
    with matplotlib.rc_context({"pdf.fonttype": 42}), atomic_path(path) as tmp, PdfPages(tmp, metadata=info) as pdf:
        for k, placed in enumerate(pages, 1):
            fig = Figure(figsize=PAGE_IN)
            _draw_page(fig, placed, metrics, plots)
            fig.text(_MARGIN_IN[0] / PAGE_IN[0], 0.35 / PAGE_IN[1], foot, fontsize=7, color="#666666",
                     parse_math=False)
            fig.text(1 - _MARGIN_IN[2] / PAGE_IN[0], 0.35 / PAGE_IN[1], f"page {k} of {len(pages)}", fontsize=7,
                     color="#666666", ha="right", parse_math=False)
            pdf.savefig(fig)
    return Path(path)
