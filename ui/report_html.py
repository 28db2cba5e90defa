"""A report as one self-contained HTML page: the app's charts, plotly.js inlined, no server.

Written by ``python -m vqcore report`` (:mod:`vqcore.cli` imports this lazily,
since vqcore itself never imports plotly). Every chart comes from
:mod:`ui.charts`, so the page shows what the Quantize and Semantic IDs pages
show; every text taken from the report is escaped.
"""

from __future__ import annotations

import html
import math

import plotly.io as pio
from plotly.offline import get_plotlyjs

from vqcore.report import headline
from vqcore.semantic_ids import prefix_table

from . import charts

_STYLE = """
body { font-family: FONT; color: #1f2937; margin: 24px auto; max-width: 1200px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } p.sub { color: #6b7280; margin-top: 0; }
table.head { border-collapse: collapse; margin: 12px 0 20px; }
table.head td { padding: 4px 14px 4px 0; border-bottom: 1px solid #e5e7eb; }
table.head td.v { font-variant-numeric: tabular-nums; font-weight: 600; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
.chart { border: 1px solid #e5e7eb; border-radius: 6px; padding: 4px; }
""".replace("FONT", charts.FONT)


def figures(report):
    """The charts of the page, in reading order: the Quantize page's six, then prefix
    collisions and the largest collision groups (the Semantic IDs page's)."""
    n = report["n"]
    figs = list(charts.quantize_figures(report))
    sizes = [report["codebook_size"]] * report["n_codebooks"]
    figs.append(charts.prefix_collisions(prefix_table(n, sizes, report["collisions"]["prefix_rates"]), n=n))
    groups = [{"codes": tuple(g["codes"]), "size": g["size"], "items": g["items"], "labels": None,
               "mean_pairwise": None, "tightness": None}
              for g in report["collisions"].get("groups", [])]
    figs.append(charts.collision_groups_chart(groups, n=n))
    return figs


def _fmt(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(report):
    """The page as a string."""
    e = html.escape
    rows = "".join(f"<tr><td>{e(k)}</td><td class='v'>{e(_fmt(v))}</td></tr>" for k, v in headline(report).items())
    data = report.get("data") or {}
    run = report.get("run") or {}
    facts = [f"{report['n']:,} items of dimension {report['d']}"]
    if data.get("source"):
        facts.append(f"data {data['source']}")
    if report.get("n_train"):
        facts.append(f"fitted on {report['n_train']:,} random rows")
    if run.get("engine"):
        facts.append(f"encoded {run['engine']}")
    if report.get("recall"):
        facts.append(f"recall: {report['recall']['query_set']}")
    divs = []
    for i, fig in enumerate(figures(report)):
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{i}",
                          config={"displaylogo": False, "responsive": True})
        divs.append(f"<div class='chart'>{div}</div>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>VQ Lens report: {e(report['spec'])}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{e(report['spec'])} <small style='color:#6b7280'>({e(str(report.get('faiss') or ''))})</small></h1>"
        f"<p class='sub'>{e('; '.join(facts))}</p>"
        f"<table class='head'>{rows}</table>"
        f"<div class='grid'>{''.join(divs)}</div>"
        "<p class='sub'>Made by VQ Lens (python -m vqcore report). The numbers are in report.json.</p>"
        "</body></html>"
    )


def write(report, path):
    """Write :func:`render` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render(report))
