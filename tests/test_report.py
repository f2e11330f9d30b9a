"""results/report.html opens on the claims and the warnings, then shows every figure the figures job drew with
its caption, in the paper's section order; a missing claims or warnings file is said on the page."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pntk.report import figure_table
from pntk.report import html as report

SUMMARY = {"dataset": "digits", "models": [{"arch": "fcn", "widths": [16, 32]}], "seeds": [0], "epochs": [0, 2]}
NUMBERS = ["P4", "09", "03", "01", "P1"]  # deliberately not in section order


def _png(path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1])
    fig.savefig(path, format="png", dpi=20)


@pytest.fixture
def figures_dir(tmp_path) -> Path:
    """A figures.json as the figures job writes it (captions with characters HTML must escape) and its PNGs."""
    out = tmp_path / "figures"
    out.mkdir()
    records = []
    for n in NUMBERS:
        spec = figure_table.FIGURES[n]
        _png(out / f"{spec.name}.png")
        records.append({"label": n, "title": spec.title, "slug": spec.slug, "name": spec.name,
                        "section": spec.section, "caption": f"Caption of figure {n} <read: tables/x{n}.csv & more>",
                        "labels": {"arch": ["fcn"], "width": [16, 32], "epoch": [0, 2]},
                        "warnings": ["resnet50 pntk is not slower than resnet34"] if n == "01" else [],
                        "files": [f"{spec.name}.png", f"{spec.name}.pdf"]})
    (out / figure_table.INDEX).write_text(json.dumps({"figures": records}))
    return out


@pytest.fixture
def claims(tmp_path) -> Path:
    path = tmp_path / "claims.csv"
    pd.DataFrame([
        {"id": "fig3-norm-width:fcn", "origin": "paper", "source": "§4.1, Fig 3 caption",
         "quote": "the relative difference in ‖Θ‖ and ‖Θ̂⊗I‖ decreases", "statement": "Frobenius distance falls with "
         "width", "numbers": "w=16: 0.3, 32: 0.2", "test": "Spearman", "verdict": "holds", "detail": ""},
        {"id": "thm1-rate:fcn", "origin": "thesis", "source": "Theorem 3.3.1", "quote": "∈ Õ(n^-½)",
         "statement": "rate w^-1/2", "numbers": "b=-0.1 [-0.3, 0.1]", "test": "t-interval", "verdict": "does not hold",
         "detail": "falls more slowly than the bound"},
        {"id": "al-matches-entk", "origin": "thesis", "source": "§3.5", "quote": "matches",
         "statement": "MLMOC-pNTK matches MLMOC-eNTK", "numbers": "Δ = +0.003 [−0.04, 0.046]", "test": "TOST",
         "verdict": "inconclusive", "detail": "the interval straddles ±0.02; to decide: about 12 seeds"},
        {"id": "al-block", "origin": "thesis", "source": "Fig 2.1a", "quote": "the same", "statement": "block = solve",
         "numbers": "", "test": "paired", "verdict": "not testable", "detail": "active learning disabled"},
    ]).to_csv(path, index=False)
    return path


@pytest.fixture
def warnings_csv(tmp_path) -> Path:
    path = tmp_path / "warnings.csv"
    pd.DataFrame([{"source": "train", "run": "digits/fcn-w16-s1", "message": "did not learn: test acc 0.11 < 0.145"}]
                 ).to_csv(path, index=False)
    return path


def _page(figures_dir, **kw) -> str:
    kw = {"claims": None, "warnings": None, "summary": SUMMARY, **kw}
    return report.build_report(figures_dir / figure_table.INDEX, **kw)


def test_page_opens_on_warnings_and_claims_then_figures_in_section_order(figures_dir, claims, warnings_csv):
    page = _page(figures_dir, claims=claims, warnings=warnings_csv)
    for statement in ("Frobenius distance falls with width", "rate w^-1/2", "MLMOC-pNTK matches MLMOC-eNTK"):
        assert html.escape(statement) in page
    assert "4 claims: 1 holds, 1 does not hold, 1 inconclusive, 1 not testable." in page
    for cls in ("holds", "fails", "inconclusive", "untestable"):
        assert f'<tr class="{cls}">' in page
    # compact rows: verdict, id, short source; the quote, test and reason on demand
    assert "<td>thesis, §3.5</td>" in page and "<details><summary>source, test, reason</summary>" in page
    assert "<blockquote>“matches”</blockquote>" in page and "to decide: about 12 seeds" in page
    assert "did not learn: test acc 0.11 &lt; 0.145" in page  # warnings.csv
    assert "resnet50 pntk is not slower than resnet34" in page  # the figures' own warnings
    assert "2 warning(s)." in page
    ids = re.findall(r'<figure id="fig(\w+?)-', page)
    assert ids == list(figure_table.in_report_order(NUMBERS)) == ["01", "03", "09", "P1", "P4"]
    assert page.index('id="warnings"') < page.index('id="claims"') < page.index('<figure')
    for n in NUMBERS:
        title = figure_table.FIGURES[n].title
        assert f"<b>{title}.</b> Caption of figure {n} &lt;read: tables/x{n}.csv &amp; more&gt;" in page
    assert page.count('src="data:image/png;base64,') == len(NUMBERS)
    assert "arch: fcn · width: 16, 32 · epoch: 0, 2" in page
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[:2] == ["Warnings", "Claims of the paper and thesis, tested on this run"]
    # each heading names the figures this run drew in it: Fig P1 without Fig P2, Fig 3 alone of Figs 2–8
    assert headings[3:] == [html.escape(h) for h in (
        "Cost of the kernels (Fig 1)", "How close the pNTK is to the eNTK (Fig 3)",
        "Full-data pNTK regression through training (Fig 9)", "pntk's own: rates in the width (Fig P1)",
        "pntk's own: data and kernel (Fig P4)")]


def test_page_is_self_contained(figures_dir, claims):
    page = _page(figures_dir, claims=claims)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no network: images inline, no external CSS/JS
    assert "<script" not in page and "<link" not in page


def test_missing_claims_and_warnings_are_said_on_the_page(figures_dir, tmp_path):
    page = _page(figures_dir)
    assert "claims.csv missing (no rule of this workflow writes it): no verdicts on the paper" in page
    assert "warnings.csv missing (no rule of this workflow writes it)" in page
    page = _page(figures_dir, claims=tmp_path / "nope.csv")
    assert f"claims.csv missing ({tmp_path / 'nope.csv'} does not exist)" in page


def test_malformed_or_empty_claims_are_said(figures_dir, tmp_path):
    bad = tmp_path / "claims.csv"
    bad.write_text("id,verdict\nx,holds\n")
    assert "lacks column(s) [&#x27;origin&#x27;, &#x27;source&#x27;" in _page(figures_dir, claims=bad)
    bad.write_text("")
    assert "claims.csv is empty" in _page(figures_dir, claims=bad)
    bad.write_text(",".join(report.CLAIM_COLUMNS) + "\n")
    assert "claims.csv has no rows" in _page(figures_dir, claims=bad)


def test_no_warnings_is_said(figures_dir, tmp_path):
    empty = tmp_path / "warnings.csv"
    empty.write_text("source,run,message\n")
    index = json.loads((figures_dir / figure_table.INDEX).read_text())
    for rec in index["figures"]:
        rec["warnings"] = []
    (figures_dir / figure_table.INDEX).write_text(json.dumps(index))
    assert "<p>No warnings.</p>" in _page(figures_dir, warnings=empty)


def test_a_missing_png_is_said(figures_dir):
    (figures_dir / f"{figure_table.FIGURES['03'].name}.png").unlink()
    assert f"{figure_table.FIGURES['03'].name}.png missing" in _page(figures_dir)
