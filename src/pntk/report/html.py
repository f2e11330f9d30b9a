"""results/report.html: one self-contained page that opens on the results.

Order: what was run; the run's warnings (warnings.csv and the figures' own, e.g. noisy timings); the claims of
the paper, the thesis and pntk's own checks with this run's verdicts (claims.csv): one compact row per claim
(verdict, short source, statement, numbers), the quoted sentence, the test and the reason behind the verdict on
demand (a <details> element); then every figure the figures job drew, grouped by section, with its labels (arch,
width, epoch) and the caption it wrote from what it drew (figures.json). PNGs are embedded as data URIs and the
style is inline: the file works offline, mailed or archived. A missing or malformed claims or warnings table is
said on the page, never skipped.
"""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import pandas as pd

from ..models.spec import entry_label
from ..provenance import atomic_write_text
from .figure_table import ACTIVE_CAPTIONS, in_report_order, section_title

CLAIM_COLUMNS = ["id", "origin", "source", "quote", "statement", "test", "verdict", "numbers", "detail"]
WARNING_COLUMNS = ["source", "run", "message"]
VERDICT_CLASS = {"holds": "holds", "does not hold": "fails", "inconclusive": "inconclusive",
                 "not testable": "untestable"}
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;width:100%;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f3f3f3}.holds{background:#e4f4e4}.fails{background:#fbe3e3}
.untestable{background:#f1f1f1}.inconclusive{background:#fdf6dc}.missing,.warn{color:#a00000;font-weight:600}
details summary{cursor:pointer;color:#555}blockquote{margin:0.3em 0 0.3em 1em;font-style:italic}figure{margin:1.5em 0;
border-top:1px solid #ddd;padding-top:0.8em}figure img{max-width:100%}figcaption{font-size:0.9em}
.labels{color:#555;font-size:0.85em}nav li{margin:0.1em 0}
"""


def _e(text) -> str:
    return html.escape("" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text))


def read_table(path: str | Path | None, columns: list[str], what: str) -> tuple[pd.DataFrame | None, str]:
    """(table, '') or (None, why it cannot be shown)."""
    if not path:
        return None, f"{what} missing (no rule of this workflow writes it)"
    if not Path(path).is_file():
        return None, f"{what} missing ({path} does not exist)"
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        return None, f"{what} unreadable ({path}: {err})"
    except pd.errors.EmptyDataError:
        return None, f"{what} is empty ({path}: not even a header)"
    absent = [c for c in columns if c not in df.columns]
    if absent:
        return None, f"{what} lacks column(s) {absent} ({path} has {list(df.columns)})"
    return df, ""


def _rows(df: pd.DataFrame, columns: list[str], row_class=None) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for _, r in df.iterrows():
        cls = f' class="{row_class(r)}"' if row_class else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_e(r[c])}</td>" for c in columns) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def claims_html(path: str | Path | None) -> str:
    df, why = read_table(path, CLAIM_COLUMNS, "claims.csv")
    if df is None:
        return f'<p class="missing">{_e(why)}: no verdicts on the paper\'s claims for this run.</p>'
    if df.empty:
        return '<p class="missing">claims.csv has no rows: no claim was tested.</p>'
    counts = df["verdict"].value_counts()
    tally = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICT_CLASS)
    other = sorted(set(df["verdict"]) - set(VERDICT_CLASS))
    note = f' <span class="warn">unknown verdicts: {_e(other)}</span>' if other else ""
    head = "<tr><th>verdict</th><th>claim</th><th>source</th><th>what this run checks, and its numbers</th></tr>"
    rows = []
    for _, r in df.iterrows():
        cls = VERDICT_CLASS.get(r["verdict"], "fails")
        quote = f"<blockquote>“{_e(r['quote'])}”</blockquote>" if r["quote"] else ""
        more = (f"<details><summary>source, test, reason</summary>{quote}<p><b>Test:</b> {_e(r['test'])}</p>"
                + (f"<p><b>Why:</b> {_e(r['detail'])}</p>" if r["detail"] else "") + "</details>")
        rows.append(f'<tr class="{cls}"><td>{_e(r["verdict"])}</td><td><code>{_e(r["id"])}</code></td>'
                    f'<td>{_e(r["origin"])}, {_e(r["source"])}</td><td>{_e(r["statement"])}<br>'
                    f'<small>{_e(r["numbers"])}</small>{more}</td></tr>')
    return (f"<p>{len(df)} claims: {_e(tally)}.{note} What each verdict means: README, “Claims and verdicts”.</p>"
            f"<table>{head}{''.join(rows)}</table>")


def warnings_html(path: str | Path | None, figures: list[dict]) -> str:
    df, why = read_table(path, WARNING_COLUMNS, "warnings.csv")
    own = [{"source": f["title"], "run": "", "message": w} for f in figures for w in f["warnings"]]
    parts = [] if df is None else [df[WARNING_COLUMNS]]
    rows = pd.concat(parts + [pd.DataFrame(own, columns=WARNING_COLUMNS)], ignore_index=True)
    out = f'<p class="missing">{_e(why)}: the run\'s own checks are not shown.</p>' if df is None else ""
    if rows.empty:
        return out + "<p>No warnings.</p>"
    return out + f'<p class="warn">{len(rows)} warning(s).</p>' + _rows(rows, WARNING_COLUMNS)


def _png(path: Path) -> str:
    if not path.is_file():
        return f'<p class="missing">{_e(path.name)} missing (figures.formats without png?)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_e(path.name)}" src="data:image/png;base64,{data}">'


def _labels(labels: dict) -> str:
    return " · ".join(f"{_e(k)}: {_e(', '.join(map(str, v)))}" for k, v in labels.items() if v)


def figure_html(rec: dict, folder: Path) -> str:
    png = next((f for f in rec["files"] if f.endswith(".png")), f"{rec['name']}.png")
    return (f'<figure id="{_e(rec["name"])}"><h3>{_e(rec["title"])}: {_e(rec["slug"])}</h3>'
            f'<p class="labels">{_labels(rec["labels"])}</p>{_png(folder / png)}'
            f'<figcaption><b>{_e(rec["title"])}.</b> {_e(rec["caption"])}</figcaption></figure>')


def active_html(pngs: list[Path]) -> str:
    out = []
    for p in pngs:
        name = p.stem.removeprefix("active-")
        caption = ACTIVE_CAPTIONS.get(name, "")
        out.append(f'<figure id="{_e(p.stem)}"><h3>{_e(p.stem)}</h3>{_png(p)}<figcaption>{_e(caption)}'
                   "</figcaption></figure>")
    return "".join(out)


def build_report(index: str | Path, *, claims: str | Path | None, warnings: str | Path | None,
                 summary: dict, active_pngs: list[str | Path] = ()) -> str:
    """The page as one HTML string; `summary` = {dataset, models, seeds, epochs} of the config."""
    index = Path(index)
    records = {r["label"]: r for r in json.loads(index.read_text())["figures"]}
    order = in_report_order(records)
    sections: dict[str, list[str]] = {}
    labels: dict[str, list[str]] = {}
    for n in order:
        sections.setdefault(records[n]["section"], []).append(figure_html(records[n], index.parent))
        labels.setdefault(records[n]["section"], []).append(n)
    if active_pngs:
        sections["active"] = [active_html([Path(p) for p in active_pngs])]
    titles = {k: section_title(k, labels.get(k, ())) for k in sections}  # the figures this run drew
    nav = "".join(f'<li><a href="#sec-{k}">{_e(titles[k])}</a></li>' for k in sections)
    body = "".join(f'<section id="sec-{k}"><h2>{_e(titles[k])}</h2>{"".join(v)}</section>'
                   for k, v in sections.items())
    models = "; ".join(f"{entry_label(m)} widths {', '.join(map(str, m['widths']))}" for m in summary["models"])
    run = (f"{_e(summary['dataset'])} · {_e(models)} · seeds {_e(', '.join(map(str, summary['seeds'])))} · "
           f"checkpoints {_e(', '.join(map(str, summary['epochs'])))}"
           + (f" · networks of Figs 2–8 trained on D, checkpoints {_e(', '.join(map(str, summary['epochs_on_D'])))}"
              if summary.get("epochs_on_D") else "")
           + f" · written {time.strftime('%Y-%m-%d %H:%M')}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>pntk report: '
            f'{_e(summary["dataset"])}</title><style>{STYLE}</style></head><body>'
            f"<h1>pntk: eNTK vs pNTK on {_e(summary['dataset'])}</h1><p>{run}</p>"
            f'<section id="warnings"><h2>Warnings</h2>{warnings_html(warnings, list(records.values()))}</section>'
            f'<section id="claims"><h2>Claims of the paper and thesis, tested on this run</h2>{claims_html(claims)}'
            "</section>"
            f"<nav><h2>Figures</h2><ul>{nav}</ul></nav>{body}</body></html>")


def write_report(out: str | Path, index: str | Path, **kw) -> Path:
    atomic_write_text(out, build_report(index, **kw))
    return Path(out)
