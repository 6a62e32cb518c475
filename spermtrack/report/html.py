"""``report.html``: one self-contained page (inline CSS and JS, plots as base64 PNG) with the
sample summary, the WHO comparison, the plots, a sortable per-track table and the run metadata.
It opens from disk or an e-mail attachment with no server and no network.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from spermtrack.io.atomic import write_text_atomic
from spermtrack.report import GRADE_COLORS, GRADE_LABELS, distribution_decimals, distribution_items, human_column

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;font-size:13px}
.warn{background:#fff4e5;border-left:5px solid #e69f00;padding:8px 12px;margin:8px 0;font-size:14px}
.alert{background:#fdecea;border-left:5px solid #d55e00;padding:8px 12px;margin:8px 0;font-size:14px;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:12px}
.card{background:#fff;border:1px solid #e2e4e8;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:22px;font-weight:600}.card .l{font-size:12px;color:#666}
.above{color:#0a7d32}.below{color:#c0392b}.inconclusive{color:#b26b00}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #e2e4e8;padding:3px 7px;text-align:right}th{background:#eef0f3;position:sticky;top:0}
td.t,th.t{text-align:left}td.g{white-space:nowrap}
.scroll th.c0,.scroll td.c0{position:sticky;left:0;background:#fff;z-index:1}
.scroll th.c1,.scroll td.c1{position:sticky;left:var(--c1,3.2em);background:#fff;z-index:1;box-shadow:1px 0 0 #d0d3d8}
.scroll th{z-index:2}.scroll th.c0,.scroll th.c1{background:#eef0f3;z-index:3}
.ids{font-size:15px;margin:4px 0 2px}.ids b{font-weight:600}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\2195";color:#aaa;font-size:10px}
.scroll{max-height:520px;overflow:auto;border:1px solid #e2e4e8}
.plots img{max-width:100%;background:#fff;border:1px solid #e2e4e8;margin:6px 0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}@media(max-width:900px){.grid2{grid-template-columns:1fr}}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
details{background:#fff;border:1px solid #e2e4e8;border-radius:6px;padding:6px 12px;margin:8px 0}
pre{font-size:12px;overflow:auto;max-height:420px}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),asc=th.dataset.dir!=='asc';
      t.querySelectorAll('th').forEach(function(h){delete h.dataset.dir});th.dataset.dir=asc?'asc':'desc';
      rows.sort(function(r1,r2){
        var a=r1.cells[i].dataset.v!==undefined?r1.cells[i].dataset.v:r1.cells[i].textContent,
            c=r2.cells[i].dataset.v!==undefined?r2.cells[i].dataset.v:r2.cells[i].textContent,
            x=parseFloat(a),y=parseFloat(c);
        if(isNaN(x)&&isNaN(y)){return asc?a.localeCompare(c):c.localeCompare(a)}
        if(isNaN(x))return 1;if(isNaN(y))return -1;return asc?x-y:y-x});
      rows.forEach(function(r){b.appendChild(r)});});});});
document.querySelectorAll('.scroll table').forEach(function(t){
  var c=t.querySelector('th.c0');if(c){t.style.setProperty('--c1',c.offsetWidth+'px')}});
"""

_QUANTITY_LABELS = {
    "rapid_progressive": "a: rapid progressive", "slow_progressive": "b: slow progressive",
    "non_progressive": "c: non-progressive", "immotile": "d: immotile",
    "progressive": "PR (a + b)", "total_motility": "total motility (a + b + c)", "hyperactivated": "hyperactivated",
}


def _e(x) -> str:
    return html.escape(str(x))


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _fmt(v, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "&ndash;"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.{nd}f}"
    return _e(v)


def _summary_table(summary) -> str:
    head = ("<tr><th class=t>quantity</th><th>%</th><th>95 % CI</th><th>cells</th>"
            "<th>WHO 6th LRL</th><th>status</th><th>WHO 5th LRL</th><th>status</th></tr>")
    rows = []
    for r in summary.table:
        q = r["quantity"]
        sw = f'<span class="sw" style="background:{GRADE_COLORS[q]}"></span>' if q in GRADE_COLORS else ""
        st6, st5 = r["who6_status"] or "", r["who5_status"] or ""
        rows.append(
            f"<tr><td class=t>{sw}{_e(_QUANTITY_LABELS.get(q, q))}</td><td><b>{_fmt(r['pct'])}</b></td>"
            f"<td>{_fmt(r['ci95_low_pct'])} &ndash; {_fmt(r['ci95_high_pct'])}</td><td>{_fmt(r['count'], 0)}</td>"
            f"<td>{_fmt(r['who6_lrl_pct'], 0) if r['who6_lrl_pct'] is not None else ''}</td>"
            f"<td class='t {st6.split()[0] if st6 else ''}'>{_e(st6)}</td>"
            f"<td>{_fmt(r['who5_lrl_pct'], 0) if r['who5_lrl_pct'] is not None else ''}</td>"
            f"<td class='t {st5.split()[0] if st5 else ''}'>{_e(st5)}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _track_table(table: pd.DataFrame) -> str:
    """The per-track table with human headers (``VCL (um/s)``; the CSV name in the tooltip) and
    the id and grade first, both kept in view while the wide table scrolls sideways."""
    cols = list(table.columns)
    first = [c for c in ("track_id", "grade") if c in cols]
    cols = first + [c for c in cols if c not in first]
    table = table[cols]

    def cls(c: str) -> str:
        k = ["t"] if c == "grade" else []
        if c in first:
            k.append(f"c{first.index(c)}")
        return f' class="{" ".join(k)}"' if k else ""

    head = "".join(f'<th{cls(c)} title="{_e(c)}">{_e(human_column(c))}</th>' for c in cols)
    body = []
    for row in table.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row):
            if c == "grade":
                g = str(v)
                sticky = f"c{first.index(c)}"
                cells.append(f'<td class="t g {sticky}" data-v="{_e(g)}"><span class="sw" '
                             f'style="background:{GRADE_COLORS.get(g, "#999")}"></span>{_e(g)}</td>')
            else:
                nd = 0 if c.endswith("_pct") or c == "dnc_um2_s" else (3 if c == "duration_s" else 1)
                cells.append(f"<td{cls(c)}>{_fmt(v, nd)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class=scroll><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _distribution_table(dist: dict) -> str:
    """``summary.json``'s ``kinematics_distribution``: mean, SD, median and quartiles of each
    kinematic column for all graded cells and for the motile ones."""
    head = ("<tr><th class=t rowspan=2>measure</th><th colspan=5>all graded cells</th>"
            "<th colspan=5>motile cells (a + b + c)</th></tr><tr>"
            + "<th>n</th><th>mean</th><th>SD</th><th>median</th><th>IQR</th>" * 2 + "</tr>")
    rows = []
    for col, groups in distribution_items(dist):
        nd = distribution_decimals(col, groups)
        cells = [f'<td class=t title="{_e(col)}">{_e(human_column(col))}</td>']
        for g in ("all", "motile"):
            st = groups.get(g) if isinstance(groups.get(g), dict) else {}
            iqr = (f"{_fmt(st.get('q25'), nd)} &ndash; {_fmt(st.get('q75'), nd)}"
                   if st.get("q25") is not None else "&ndash;")
            cells += [f"<td>{_fmt(st.get('n'), 0)}</td>", f"<td>{_fmt(st.get('mean'), nd)}</td>",
                      f"<td>{_fmt(st.get('sd'), nd)}</td>", f"<td>{_fmt(st.get('median'), nd)}</td>", f"<td>{iqr}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _fields_table(fields: list) -> str:
    """The videos (fields) pooled into one sample."""
    rows = []
    for i, f in enumerate(fields, 1):
        if not isinstance(f, dict):
            continue
        v = f.get("video")
        name = v.get("name") if isinstance(v, dict) else (v if v is not None else f.get("name", "?"))
        c = f.get("calibration") if isinstance(f.get("calibration"), dict) else f
        rows.append(f"<tr><td>{i}</td><td class=t>{_e(name)}</td><td>{_fmt(f.get('n_graded'), 0)}</td>"
                    f"<td>{_fmt(c.get('fps'), 1)}</td><td>{_fmt(c.get('um_per_px'), 4)}"
                    f"{' <b class=below>estimated</b>' if c.get('um_per_px_estimated') else ''}</td></tr>")
    return ("<table><tr><th>#</th><th class=t>field (video)</th><th>graded</th><th>fps</th><th>um/px</th></tr>"
            + "".join(rows) + "</table>")


def _concentration_html(meta: dict) -> str:
    info = meta.get("concentration") if isinstance(meta.get("concentration"), dict) else {}
    parts = []
    for k, v in info.items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            parts.append(f"<tr><td class=t>{_e(human_column(k))}</td><td class=t>{_fmt(v, 2)}</td></tr>")
    return (f"<p><b>{_fmt(meta['concentration_million_per_ml'], 2)} million / mL</b></p>"
            + (f"<table>{''.join(parts)}</table>" if parts else ""))


def _technician(row: dict) -> str:
    """The grader's agreement interval (where a technician's count is expected), when it has one."""
    if row.get("agreement95_low_pct") is None:
        return ""
    return (f" (a technician: {_fmt(row['agreement95_low_pct'], 0)}&ndash;{_fmt(row['agreement95_high_pct'], 0)}, "
            "docs/MOTILITY_VALIDATION.md)")


def _card(value: str, label: str, cls: str = "") -> str:
    return f'<div class=card><div class="v {cls}">{value}</div><div class=l>{label}</div></div>'


def write_report(path: str | Path, *, meta: dict, summary, summaries: dict, table: pd.DataFrame,
                 plots: dict[str, Path | None], files: dict[str, str]) -> Path:
    """Write the report page.

    Args:
        path: the HTML file (written atomically).
        meta: the ``summary.json`` dictionary (calibration, video, warnings, config, versions,
            timings).
        summary: the primary :class:`~spermtrack.kinematics.MotilitySummary`.
        summaries: every aggregation mode's summary (shown below the primary one).
        table: per-track kinematics (and morphology) rows, rounded for humans.
        plots: figure name -> PNG path (missing or None figures are left out).
        files: output name -> relative file name (linked at the bottom).
    """
    cal = meta.get("calibration") if isinstance(meta.get("calibration"), dict) else {}
    video = meta.get("video") if isinstance(meta.get("video"), dict) else None
    fields = [f for f in meta.get("fields") or [] if isinstance(f, dict)]
    name = video["name"] if video else f"pooled sample ({len(fields)} fields)"
    kin = meta.get("kinematics") if isinstance(meta.get("kinematics"), dict) else {}
    banners = []
    if cal.get("um_per_px_estimated"):
        banners.append(f'<div class=alert>Scale ESTIMATED: um_per_px = {cal["um_per_px"]:.4f} comes from the '
                       f'median head size (4.5 um heads), not from a stage micrometer. Every velocity and '
                       f'therefore every grade depends on it; rerun with --um-per-px for a calibrated result.</div>')
    if meta.get("truncated"):
        n_tr = meta.get("n_frames_analysed")
        banners.append('<div class=alert>Truncated video: only the first '
                       f'{_e(n_tr) + " " if n_tr is not None else ""}frames could be decoded and were analysed.</div>')
    for w in meta.get("warnings", []):
        banners.append(f"<div class=warn>{_e(w)}</div>")
    pr = next(r for r in summary.table if r["quantity"] == "progressive")
    tm = next(r for r in summary.table if r["quantity"] == "total_motility")
    cards = [
        _card(f"{_fmt(pr['pct'])} %", f"progressive (a+b), 95 % CI {_fmt(pr['ci95_low_pct'])}&ndash;"
              f"{_fmt(pr['ci95_high_pct'])}{_technician(pr)}; WHO6 &ge; 30: <b class='{pr['who6_status'].split()[0] if pr['who6_status'] else ''}'>{_e(pr['who6_status'])}</b>"),
        _card(f"{_fmt(tm['pct'])} %", f"total motility (a+b+c), 95 % CI {_fmt(tm['ci95_low_pct'])}&ndash;"
              f"{_fmt(tm['ci95_high_pct'])}; WHO6 &ge; 42: <b class='{tm['who6_status'].split()[0] if tm['who6_status'] else ''}'>{_e(tm['who6_status'])}</b>"),
        _card(str(summary.n_graded), f"graded tracks ({summary.n_not_graded} too short)"
              + ("" if summary.meets_who_count else "<br><span class=inconclusive>WHO asks for &ge; 200</span>")),
    ]
    if video and cal.get("fps") is not None:
        cards.append(_card(f"{video['n_frames_analysed']}", f"frames, {video['duration_s']:.2f} s at {cal['fps']:g} fps "
                                                            f"({_e(cal.get('fps_source', ''))})"))
    elif fields:
        cards.append(_card(str(len(fields)), "fields (videos) pooled"))
    if cal.get("um_per_px") is not None:
        cards.append(_card(f"{cal['um_per_px']:.4g}", f"um per px ({_e(cal.get('um_per_px_source', ''))})",
                           "below" if cal.get("um_per_px_estimated") else ""))
    if meta.get("concentration_million_per_ml") is not None:
        cards.append(_card(_fmt(meta["concentration_million_per_ml"], 1), "million / mL (concentration)"))
    cards = "".join(cards)
    others = "".join(f"<h3 style='font-size:14px'>aggregate = {_e(k)}</h3>{_summary_table(s)}"
                     for k, s in summaries.items() if s is not summary)
    legend = " ".join(f'<span class="sw" style="background:{GRADE_COLORS[g]}"></span>{_e(GRADE_LABELS[g])}'
                      for g in ("rapid_progressive", "slow_progressive", "non_progressive", "immotile", "not_graded"))
    plot_html = []
    for key, title in (("grades", "Grades against the WHO limits"), ("trajectories", "Trajectories by grade"),
                       ("vcl_vsl", "VCL against VSL"), ("distributions", "Kinematics: all graded vs motile cells"),
                       ("morphometry", "Head morphometry"),
                       ("gallery", "Crop gallery")):
        img = _img(plots.get(key), title)
        if img:
            plot_html.append(f"<div><h3 style='font-size:14px'>{_e(title)}</h3>{img}</div>")
    links = " &middot; ".join(f'<a href="{_e(v)}">{_e(v)}</a>' for v in files.values())
    settings = {k: meta[k] for k in ("calibration", "detector_calibration", "kinematics") if meta.get(k)}
    ids = (f"<div class=ids>Sample ID: <b>{_e(meta.get('sample_id') or 'not given')}</b> &middot; "
           f"Patient ID: <b>{_e(meta.get('patient_id') or 'not given')}</b></div>")
    extra = []
    if fields:
        extra.append(f"<h2>Fields pooled ({len(fields)})</h2>{_fields_table(fields)}")
    if meta.get("concentration_million_per_ml") is not None:
        extra.append(f"<h2>Concentration</h2>{_concentration_html(meta)}")
    dist = meta.get("kinematics_distribution")
    if isinstance(dist, dict) and dist:
        extra.append("<h2>Kinematics: all graded and motile cells</h2>" + _distribution_table(dist)
                     + "<p class=sub>Tracks too short to grade are left out; ALH and BCF are not measured on "
                       "immotile cells.</p>")
    sub = " &middot; ".join(_e(x) for x in (
        video["path"] if video else None, meta.get("created"),
        f"spermtrack {(meta.get('versions') or {}).get('spermtrack', '?')}",
        f"preset {kin['preset']}" if kin.get("preset") else None, f"aggregate {summary.aggregate}") if x)
    min_dur = kin.get("min_duration_s")
    not_graded_note = f" Tracks shorter than {min_dur:g} s are not graded." if min_dur is not None else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>spermtrack report: {_e(name)}</title><style>{_CSS}</style></head><body><main>
<h1>Motility report: {_e(name)}</h1>
{ids}
<div class=sub>{sub}</div>
{''.join(banners)}
<div class=cards>{cards}</div>
<h2>Sample summary</h2>
{_summary_table(summary)}
<p class=sub>Percentages of graded tracks (each cell once) with 95 % Wilson intervals. Status compares the
whole interval with the WHO lower reference limit: <i>above</i> / <i>below</i> when the interval lies on
one side, <i>inconclusive</i> when it straddles the limit.{not_graded_note}</p>
{('<details><summary>Other aggregation modes</summary>' + others + '</details>') if others else ''}
{''.join(extra)}
<h2>Plots</h2><div class=sub>{legend}</div>
<div class="plots grid2">{''.join(plot_html)}</div>
<h2>Per-track results ({len(table)} tracks; click a column to sort)</h2>
{_track_table(table)}
<h2>Run</h2>
<details><summary>Calibration, detector calibration and kinematics settings</summary><pre>{_e(json.dumps(settings, indent=2, default=str))}</pre></details>
<details><summary>Timings (s)</summary><pre>{_e(json.dumps(meta.get('timings_s', {}), indent=2))}</pre></details>
<details><summary>Configuration</summary><pre>{_e(json.dumps(meta.get('config', {}), indent=2, default=str))}</pre></details>
<details><summary>Software versions</summary><pre>{_e(json.dumps(meta.get('versions', {}), indent=2))}</pre></details>
<p class=sub>Files: {links}</p>
</main><script>{_JS}</script></body></html>
"""
    return write_text_atomic(path, page)
