"""Every plotly figure of the app. Builders take plain data (a vqcore report,
arrays) and return a ``go.Figure`` with the shared ``vqlens`` template, the
title a person (and a test) looks for, axis titles and hover text.

Titles are fixed strings (see ``TITLES``); explanations go in the subtitle.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .text import plotly_text

# ---------------------------------------------------------------- look

COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777",
          "#4b5563", "#65a30d"]
DEAD = "#dc2626"
IDEAL = "#6b7280"
FONT = "Source Sans Pro, Helvetica, Arial, sans-serif"

_axis = dict(
    showgrid=True, gridcolor="#e5e7eb", zeroline=False, showline=True, linecolor="#9ca3af",
    ticks="outside", tickcolor="#9ca3af", automargin=True, title=dict(standoff=6, font=dict(size=13)),
)
pio.templates["vqlens"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family=FONT, size=12, color="#1f2937"),
        title=dict(x=0.012, xanchor="left", xref="container", y=0.985, yanchor="top", yref="container",
                   font=dict(size=16, color="#111827"), subtitle=dict(font=dict(size=12, color="#6b7280"))),
        colorway=COLORS,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=_axis,
        yaxis=_axis,
        margin=dict(l=10, r=10, t=78, b=10),
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.01, yanchor="bottom", font=dict(size=11),
                    bgcolor="rgba(255,255,255,0.7)"),
        hoverlabel=dict(bgcolor="white", font=dict(family=FONT, size=12)),
        hovermode="closest",
        height=380,
    )
)
TEMPLATE = "vqlens"

TITLES = {
    "usage": "Codebook usage",
    "collapse": "Codebook collapse",
    "residual": "Residual variance per stage",
    "entropy": "Entropy per code position",
    "mi": "Mutual information between positions",
    "per_dim": "Reconstruction error per dimension",
    "rd": "Rate-distortion",
    "recall": "Recall@R vs bits",
    "fit_time": "Fit time",
    "stages": "Error against number of stages",
    "beams": "Error against encoding time",
    "cost": "Error against encoding cost",
    "norms": "Norm histogram",
    "pca": "PCA explained variance",
    "map": "Map of the data",
    "vq_cells": "VQ: Voronoi cells",
    "pq_grid": "PQ: product grid",
    "rq_stages": "RQ: stages",
}
QUANTIZE_TITLES = [TITLES[k] for k in ("usage", "collapse", "residual", "entropy", "mi", "per_dim")]
COMPARE_TITLES = [TITLES[k] for k in ("rd", "recall", "entropy", "stages", "fit_time", "cost")]


def _wrap_text(text, width):
    words, lines, cur = str(text).split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return lines


def _figure(title, subtitle=None, *, xtitle=None, ytitle=None, height=None, fig=None, legend_rows=0,
            wrap=72):
    """A figure with the shared template; the subtitle is wrapped and the top margin leaves room
    for the title, the subtitle and ``legend_rows`` rows of legend, so none overlap."""
    fig = go.Figure() if fig is None else fig
    lines = _wrap_text(subtitle, wrap) if subtitle else []
    top = 40 + 17 * len(lines) + 22 * legend_rows
    fig.update_layout(
        template=TEMPLATE,
        title=dict(text=title, subtitle=dict(text="<br>".join(lines))),
        margin=dict(t=top),
        showlegend=legend_rows > 0,
    )
    if height:
        fig.update_layout(height=height)
    if xtitle is not None:
        fig.update_xaxes(title_text=xtitle)
    if ytitle is not None:
        fig.update_yaxes(title_text=ytitle)
    return fig


def title_of(fig):
    return fig.layout.title.text


def _fmt_bits(b):
    return f"{b:g}"


# ---------------------------------------------------------------- home page


def norm_histogram(norms, *, unit_norm=False):
    """Histogram of the rows' L2 norms. When every norm is the same (L2-normalised data, the common
    case) a histogram has no width to draw: one bar holds every row, and the subtitle says the norm."""
    norms = np.asarray(norms, dtype=float)
    c = float(norms.mean()) if norms.size else 0.0
    scale = max(abs(c), 1.0)
    spread = float(np.ptp(norms)) if norms.size else 0.0
    if norms.size and spread <= 1e-3 * scale:  # one value to the 3 decimals shown
        fig = _figure(TITLES["norms"], f"all norms = {c:.3f} ({norms.size:,} rows"
                      + (", L2-normalised" if unit_norm else "")
                      + (f"; they differ by at most {spread:.1g})" if spread else ")"),
                      xtitle="L2 norm of a row", ytitle="rows")
        fig.add_trace(go.Bar(x=[c], y=[norms.size], width=[0.02 * scale], marker_color=COLORS[0], name="rows",
                             hovertemplate="norm %{x:.4f}<br>%{y:,} rows (all)<extra></extra>"))
        fig.update_xaxes(range=[c - 0.1 * scale, c + 0.1 * scale])
        fig.update_layout(showlegend=False)
        return fig
    sub = f"min {norms.min():.3g}, mean {norms.mean():.3g}, max {norms.max():.3g}"
    fig = _figure(TITLES["norms"], sub, xtitle="L2 norm of a row", ytitle="rows")
    fig.add_trace(go.Histogram(x=norms, nbinsx=60, marker_color=COLORS[0], name="rows",
                               hovertemplate="norm %{x}<br>%{y} rows<extra></extra>"))
    fig.update_layout(bargap=0.02, showlegend=False)
    return fig


def pca_spectrum(ratio, *, max_components=512, rows_used=None):
    ratio = np.asarray(ratio)
    k = min(len(ratio), max_components)
    cum = np.cumsum(ratio)
    idx = np.arange(1, k + 1)
    n90 = int(np.searchsorted(cum, 0.9 - 1e-12) + 1) if cum.size and cum[-1] > 0 else 0
    sub = f"{n90} of {len(ratio)} directions hold 90% of the variance"
    if rows_used:
        sub += f" (computed on {rows_used:,} rows)"
    if k < len(ratio):
        sub += f"; first {k} shown"
    fig = _figure(TITLES["pca"], sub, xtitle="principal direction", ytitle="share of variance", legend_rows=1)
    fig.add_trace(go.Bar(x=idx, y=ratio[:k], name="per direction", marker_color=COLORS[0],
                         hovertemplate="direction %{x}<br>%{y:.2%} of the variance<extra></extra>"))
    fig.add_trace(go.Scatter(x=idx, y=cum[:k], name="cumulative", mode="lines", line=dict(color=COLORS[1]),
                             hovertemplate="first %{x} directions<br>%{y:.1%} cumulative<extra></extra>"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig


# ---------------------------------------------------------------- quantize page


def _legend_rows_of(names, width=80):
    """Rows a horizontal legend of these names takes in a half-width chart: about ``width`` characters
    to a row, each entry its name and about 8 characters of symbol and gap."""
    return max(1, math.ceil(sum(len(name) + 8 for name in names) / width))


def codebook_usage(report, *, heatmap_above=8):
    """Codes of each codebook sorted by count; dead codes marked. A heatmap when M is large."""
    counts = [np.asarray(c) for c in report["usage"]["counts"]]
    M, K, n = len(counts), report["codebook_size"], report["n"]
    dead = report["usage"]["dead"]
    sub = (f"{sum(dead)} dead code(s) of {M * K} over {n:,} items; uniform use would be "
           f"{n / K:,.1f} per code")
    if M > heatmap_above:
        z = np.array([np.sort(c)[::-1] for c in counts], dtype=float)
        fig = _figure(TITLES["usage"], sub + "; dead cells in red", xtitle="code rank (most used first)",
                      ytitle="codebook", legend_rows=1 if sum(dead) else 0)
        fig.add_trace(go.Heatmap(
            z=np.log10(z + 1), x=np.arange(1, K + 1), y=np.arange(M), colorscale="Blues",
            customdata=z, colorbar=dict(title=dict(text="log10(1+count)", side="right"), thickness=12),
            hovertemplate="codebook %{y}<br>rank %{x}<br>%{customdata:.0f} items<extra></extra>"))
        dm, dr = np.nonzero(z == 0)
        if dm.size:
            fig.add_trace(go.Scatter(x=dr + 1, y=dm, mode="markers", name="dead code",
                                     marker=dict(symbol="x-thin", size=6, line=dict(color=DEAD, width=1.5)),
                                     hovertemplate="codebook %{y}: dead code<extra></extra>"))
        fig.update_yaxes(autorange="reversed", dtick=1 if M <= 32 else None)
        return fig
    names = [f"codebook {m}" for m in range(M)] + (["dead code"] if sum(dead) else [])
    fig = _figure(TITLES["usage"], sub, xtitle="code rank (most used first)", ytitle="items per code",
                  legend_rows=_legend_rows_of(names))
    for m, c in enumerate(counts):
        order = np.argsort(c)[::-1]
        s = c[order]
        ranks = np.arange(1, K + 1)
        fig.add_trace(go.Scatter(
            x=ranks, y=s, mode="lines", name=f"codebook {m}", line=dict(color=COLORS[m % len(COLORS)], width=1.6),
            customdata=order,
            hovertemplate=f"codebook {m}<br>rank %{{x}}: code %{{customdata}}<br>%{{y}} items<extra></extra>"))
        d = np.flatnonzero(s == 0)
        if d.size:
            fig.add_trace(go.Scatter(
                x=ranks[d], y=np.zeros(d.size), mode="markers", name="dead code" if m == 0 else f"dead ({m})",
                legendgroup="dead", showlegend=False,
                marker=dict(symbol="x-thin", size=8, line=dict(color=DEAD, width=2)),
                customdata=order[d], hovertemplate=f"codebook {m}: code %{{customdata}} is dead<extra></extra>"))
    if sum(dead):  # one legend entry for all the dead markers
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="dead code", legendgroup="dead",
                                 marker=dict(symbol="x-thin", size=8, line=dict(color=DEAD, width=2))))
    fig.add_hline(y=n / K, line=dict(color=IDEAL, dash="dash", width=1),
                  annotation_text="uniform", annotation_position="top right",
                  annotation_font=dict(size=11, color=IDEAL))
    if M > 5:
        fig.update_layout(legend=dict(font=dict(size=10)))
    return fig


def codebook_collapse(report):
    u = report["usage"]
    M = len(u["dead_fraction"])
    pos = np.arange(M)
    fig = _figure(TITLES["collapse"], "ideal: no dead codes (0) and every code equally used (utilisation 1)",
                  xtitle="codebook (code position)", ytitle="fraction of K", legend_rows=1)
    fig.add_trace(go.Bar(x=pos, y=u["dead_fraction"], name="dead fraction", marker_color=DEAD,
                         customdata=np.array(u["dead"]),
                         hovertemplate="codebook %{x}<br>dead: %{customdata} codes (%{y:.1%})<extra></extra>"))
    fig.add_trace(go.Bar(x=pos, y=u["utilisation"], name="utilisation 2^H/K", marker_color=COLORS[0],
                         customdata=np.array(u["perplexity"]),
                         hovertemplate="codebook %{x}<br>utilisation %{y:.1%}<br>"
                                       "perplexity %{customdata:.1f}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color=IDEAL, dash="dash", width=1), annotation_text="ideal utilisation",
                  annotation_position="top left", annotation_font=dict(size=11, color=IDEAL))
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    fig.update_xaxes(dtick=1 if M <= 32 else None)
    return fig


def residual_variance(report):
    rv = report["residual_variance"]
    vals = np.asarray(rv["values"], dtype=float)
    if rv["kind"] == "cumulative":
        stages = np.arange(len(vals))
        fig = _figure(TITLES["residual"],
                      f"share of the total variance left after each stage; "
                      f"{vals[-1]:.1%} left after all {len(vals) - 1}",
                      xtitle="stage (0 = before any codeword)", ytitle="residual variance / total variance",
                      legend_rows=1)
        fig.add_trace(go.Scatter(x=stages, y=vals, mode="lines+markers", name="residual variance",
                                 line=dict(color=COLORS[0], width=2),
                                 hovertemplate="after stage %{x}<br>%{y:.2%} of the variance left<extra></extra>"))
        removed = -np.diff(vals)
        fig.add_trace(go.Bar(x=stages[1:], y=removed, name="removed by this stage", marker_color=COLORS[2],
                             opacity=0.55, hovertemplate="stage %{x} removed %{y:.2%}<extra></extra>"))
        fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    else:
        pos = np.arange(len(vals))
        fig = _figure(TITLES["residual"],
                      f"product quantizer: error per subspace, as a share of the total variance (sum {vals.sum():.1%})",
                      xtitle="subspace", ytitle="error / total variance")
        fig.add_trace(go.Bar(x=pos, y=vals, name="error per subspace", marker_color=COLORS[0],
                             hovertemplate="subspace %{x}<br>%{y:.2%} of the total variance<extra></extra>"))
        fig.update_yaxes(tickformat=".1%", rangemode="tozero")
    fig.update_xaxes(dtick=1 if len(vals) <= 33 else None)
    return fig


def entropy_per_position(report):
    u = report["usage"]
    H = np.asarray(u["entropy_bits"])
    ceiling = np.asarray(u["max_entropy_bits"])
    pos = np.arange(len(H))
    fig = _figure(TITLES["entropy"],
                  f"bits each position carries; effective {report['effective_bits']:.1f} of "
                  f"{report['allocated_bits']:g} allocated bits "
                  f"(bounded by log2 n = {math.log2(max(report['n'], 1)):.1f})",
                  xtitle="code position", ytitle="entropy (bits)", legend_rows=1)
    fig.add_trace(go.Bar(x=pos, y=H, name="entropy H", marker_color=COLORS[0],
                         customdata=np.asarray(u["perplexity"]),
                         hovertemplate="position %{x}<br>H = %{y:.2f} bits<br>"
                                       "perplexity %{customdata:.1f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=pos, y=ceiling, mode="lines+markers", name="log2 K (ceiling)",
                             line=dict(color=IDEAL, dash="dash", shape="hvh"), marker=dict(size=4),
                             hovertemplate="log2 K = %{y:.2f} bits<extra></extra>"))
    fig.update_yaxes(range=[0, float(ceiling.max()) * 1.1 + 1e-9])
    fig.update_xaxes(dtick=1 if len(H) <= 32 else None)
    return fig


def mutual_information(report):
    """Mutual information between code positions, coloured by what stands above the estimator's bias:
    MI minus the shuffled baseline (what independent positions with the same code frequencies show
    at this n), clipped at 0. Raw MI, the baseline and the excess are in the hover."""
    mi = np.asarray(report["mutual_information"], dtype=float)
    M = mi.shape[0]
    n, K = report["n"], report["codebook_size"]
    base = report.get("mutual_information_baseline")
    base = np.asarray(base, dtype=float) if base is not None else np.full_like(mi, np.nan)
    have_base = bool(np.isfinite(base[~np.eye(M, dtype=bool)]).all()) if M > 1 else False
    excess = mi - base if have_base else mi.copy()
    z = np.clip(excess, 0.0, None)
    np.fill_diagonal(z, np.nan)
    if have_base:
        b_off = base[~np.eye(M, dtype=bool)]
        above = int(np.sum(excess[np.triu_indices(M, 1)] > 0.05))
        sub = (f"colour: bits shared by two positions beyond what independent positions with the same code "
               f"frequencies show at n = {n:,} (the shuffled baseline, about {np.median(b_off):.2g} bits, "
               f"is subtracted; raw MI in the hover); {above} of {M * (M - 1) // 2} pairs are more than "
               f"0.05 bits above it")
        if K * K > n:
            sub += f". n is below K² = {K * K:,}: the joint histogram is sparse and the baseline is high"
        ctitle = "bits above<br>baseline"
    else:
        sub = "bits shared by two positions (diagonal, the entropy, left blank)"
        ctitle = "bits"
    fig = _figure(TITLES["mi"], sub, xtitle="code position", ytitle="code position",
                  height=max(380, min(560, 120 + 28 * M)))
    top = float(np.nanmax(z)) if M > 1 else 0.0
    fig.add_trace(go.Heatmap(
        z=z, x=np.arange(M), y=np.arange(M), colorscale="Viridis", zmin=0, zmax=max(top, 0.1),
        colorbar=dict(title=dict(text=ctitle, side="right"), thickness=12),
        customdata=np.stack([mi, base, excess], axis=-1),
        hovertemplate="positions %{y} and %{x}<br>I = %{customdata[0]:.3f} bits<br>"
                      "independent (shuffled): %{customdata[1]:.3f} bits<br>"
                      "above it: %{customdata[2]:.3f} bits<extra></extra>",
        hoverongaps=False))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", dtick=1 if M <= 24 else None,
                     showgrid=False)
    fig.update_xaxes(constrain="domain", dtick=1 if M <= 24 else None, showgrid=False)
    return fig


def error_per_dimension(report):
    e = np.asarray(report["reconstruction"]["per_dim"], dtype=float)
    d = len(e)
    fig = _figure(TITLES["per_dim"],
                  f"mean squared error of each of the {d} dimensions; they sum to the mse {e.sum():.4g}",
                  xtitle="dimension", ytitle="mean squared error")
    fig.add_trace(go.Bar(x=np.arange(d), y=e, marker_color=COLORS[0], name="error",
                         hovertemplate="dimension %{x}<br>mse %{y:.4g}<extra></extra>"))
    fig.add_hline(y=e.mean(), line=dict(color=IDEAL, dash="dash", width=1), annotation_text="mean",
                  annotation_position="top right", annotation_font=dict(size=11, color=IDEAL))
    fig.update_layout(bargap=0.0 if d > 64 else 0.15, showlegend=False)
    return fig


def quantize_figures(report):
    """The six charts of the Quantize page, in reading order."""
    return [codebook_usage(report), codebook_collapse(report), residual_variance(report),
            entropy_per_position(report), mutual_information(report), error_per_dimension(report)]


# ---------------------------------------------------------------- compare page


# one colour per method on every Compare chart, whatever else is selected (issue 15: selecting
# another method recoloured the others); the order of widgets.METHODS
METHOD_ORDER = ("RQ", "PQ", "OPQ", "AQ", "GRVQ", "VQ")


def method_color(method):
    """The colour of a method on the Compare charts; the same for any selection."""
    i = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return COLORS[i % len(COLORS)]


def _by_method(rows):
    out = {}
    for r in sorted(rows, key=lambda r: (r["method"], r["bits"])):
        out.setdefault(r["method"], []).append(r)
    return out


def rate_distortion(rows):
    """rows: dicts with method, bits, relative, spec, fit_seconds, recall (dict R -> value), entropy..."""
    fig = _figure(TITLES["rd"], "relative error mse / total variance against bits per vector; lower is better",
                  xtitle="bits per vector", ytitle="relative error (log scale)", legend_rows=1)
    for method, rs in _by_method(rows).items():
        fig.add_trace(go.Scatter(
            x=[r["bits"] for r in rs], y=[r["relative"] for r in rs], mode="lines+markers", name=method,
            line=dict(color=method_color(method)), customdata=[r["spec"] for r in rs],
            hovertemplate="%{customdata}<br>%{x:g} bits<br>relative error %{y:.4f}<extra></extra>"))
    fig.update_yaxes(type="log")
    _bits_axis(fig, rows)
    return fig


def _bits_axis(fig, rows, **kw):
    bits = sorted({r["bits"] for r in rows})
    fig.update_xaxes(tickvals=bits, ticktext=[_fmt_bits(b) for b in bits], **kw)


def recall_vs_bits(rows, R="10"):
    R = str(R)
    q = next((r.get("query_set") for r in rows if r.get("query_set")), None)
    sub = f"share of queries whose true nearest neighbour is in the top {R} by asymmetric distance"
    if q:
        sub += f"; {q}"
    fig = _figure(TITLES["recall"], sub, xtitle="bits per vector", ytitle=f"recall@{R}", legend_rows=1)
    for method, rs in _by_method(rows).items():
        fig.add_trace(go.Scatter(
            x=[r["bits"] for r in rs], y=[(r["recall"] or {}).get(R) for r in rs], mode="lines+markers", name=method,
            line=dict(color=method_color(method)), customdata=[r["spec"] for r in rs],
            hovertemplate="%{customdata}<br>%{x:g} bits<br>recall@" + R + " %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.03], tickformat=".0%")
    _bits_axis(fig, rows)
    return fig


def entropy_side_by_side(rows):
    """One panel per method: entropy of each code position, one bar group per bit budget (GRVQ's Figure 1)."""
    groups = _by_method(rows)
    methods = list(groups)
    n = max(1, len(methods))
    fig = make_subplots(rows=1, cols=n, shared_yaxes=True, subplot_titles=methods, horizontal_spacing=0.04)
    budgets = sorted({r["bits"] for r in rows})
    colors = {b: COLORS[i % len(COLORS)] for i, b in enumerate(budgets)}
    ymax = 1.0
    for j, method in enumerate(methods, start=1):
        for r in groups[method]:
            H = np.asarray(r["entropy_bits"])
            fig.add_trace(go.Bar(
                x=np.arange(len(H)), y=H, name=f"{_fmt_bits(r['bits'])} bits", legendgroup=str(r["bits"]),
                showlegend=(j == 1), marker_color=colors[r["bits"]], customdata=[r["spec"]] * len(H),
                hovertemplate="%{customdata}<br>position %{x}<br>H = %{y:.2f} bits<extra></extra>"), row=1, col=j)
            ceiling = math.log2(r["codebook_size"])
            ymax = max(ymax, ceiling)
        ks = sorted({r["codebook_size"] for r in groups[method]})
        for K in ks:
            fig.add_hline(y=math.log2(K), line=dict(color=IDEAL, dash="dash", width=1), row=1, col=j)
        fig.update_xaxes(title_text="code position", row=1, col=j, dtick=1)
    _figure(TITLES["entropy"], "bits carried by each code position, one panel per method (as in GRVQ's "
            "Figure 1); dashed: log2 K, the most a position can carry", ytitle=None, fig=fig, wrap=160, height=400)
    fig.update_layout(showlegend=True, legend=dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top",
                                                   title=dict(text="budget")))
    fig.update_yaxes(title_text="entropy (bits)", range=[0, ymax * 1.08], row=1, col=1)
    fig.update_layout(barmode="group", bargap=0.2, margin=dict(t=fig.layout.margin.t + 26))
    fig.update_annotations(font=dict(size=13), yshift=4)
    return fig


def fit_time(rows):
    fig = _figure(TITLES["fit_time"], "seconds to learn the codebooks (training subsample), per method and budget",
                  xtitle="bits per vector", ytitle="seconds", legend_rows=1)
    for method, rs in _by_method(rows).items():
        fig.add_trace(go.Bar(
            x=[_fmt_bits(r["bits"]) for r in rs], y=[r["fit_seconds"] for r in rs], name=method,
            marker_color=method_color(method), customdata=[r["spec"] for r in rs],
            hovertemplate="%{customdata}<br>fit %{y:.2f} s<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", categoryorder="array",
                     categoryarray=[_fmt_bits(b) for b in sorted({r["bits"] for r in rows})])
    return fig


def error_vs_stages(rows):
    """Residual variance after each stage for the additive methods (RQ, AQ, GRVQ, VQ): the
    left panel of GRVQ's Figure 2. One line per method, at its largest budget."""
    fig = _figure(TITLES["stages"], "residual variance left after the first m codewords (additive methods at "
                  "their largest budget); PQ/OPQ have no stages and are not drawn",
                  xtitle="stages used (m)", ytitle="residual variance / total variance", legend_rows=1)
    for method, rs in _by_method(rows).items():
        rs = [r for r in rs if (r.get("residual_variance") or {}).get("kind") == "cumulative"]
        if not rs:
            continue
        r = rs[-1]
        vals = r["residual_variance"]["values"]
        fig.add_trace(go.Scatter(
            x=list(range(len(vals))), y=vals, mode="lines+markers", name=r["spec"],
            line=dict(color=method_color(method)),
            hovertemplate=f"{r['spec']}" + "<br>%{x} stage(s)<br>%{y:.4f} of the variance left<extra></extra>"))
    return fig


def error_vs_encode_time(sweeps):
    """Relative error against encoding seconds, one line per quantizer through its beam widths:
    the right panel of GRVQ's Figure 2. ``sweeps`` maps a spec to (method, :func:`vqcore.report.beam_sweep`'s
    list); each method has its colour of the other charts (:func:`method_color`)."""
    n_rows = next((pts[0]["rows"] for _, pts in sweeps.values() if pts), 0)
    fig = _figure(TITLES["beams"], f"the fitted codebooks re-encoded by beam search with beams 1 to 16 "
                  f"({n_rows:,} rows); each marker is one beam width, labelled with it",
                  xtitle="encoding time (s)", ytitle="relative error (mse / total variance)", legend_rows=1)
    for spec, (method, pts) in sweeps.items():
        fig.add_trace(go.Scatter(
            x=[p["seconds"] for p in pts], y=[p["relative"] for p in pts], mode="lines+markers+text",
            name=spec, text=[str(p["beam"]) for p in pts], textposition="top center",
            line=dict(color=method_color(method)),
            customdata=[[p["beam"], p["mse"]] for p in pts],
            hovertemplate=f"{spec}" + "<br>beam %{customdata[0]}<br>%{x:.2f} s<br>relative error %{y:.4f}"
                          "<br>mse %{customdata[1]:.4g}<extra></extra>"))
    return fig


def error_vs_encode_cost(rows):
    """Relative error against encoding cost (multiply-adds per vector, worked out from each
    method's structure), one line per bit budget through the methods fitted at it: the third
    axis, complexity, beside bits and error. ``rows`` are the Compare results with
    ``encode_madds`` (and optionally the measured ``encode_us``)."""
    rows = [r for r in rows if r.get("encode_madds")]
    fig = _figure(TITLES["cost"], "at equal bits (one line per budget), what each method's encoding costs "
                  "per vector and the error it reaches; lower left is better",
                  xtitle="encoding cost (multiply-adds per vector, log scale)",
                  ytitle="relative error (log scale)", legend_rows=1)
    budgets = sorted({r["bits"] for r in rows})
    for i, b in enumerate(budgets):
        rs = sorted((r for r in rows if r["bits"] == b), key=lambda r: r["encode_madds"])
        fig.add_trace(go.Scatter(
            x=[r["encode_madds"] for r in rs], y=[r["relative"] for r in rs], mode="lines+markers+text",
            name=f"{_fmt_bits(b)} bits", text=[r["method"] for r in rs], textposition="top center",
            line=dict(color=COLORS[i % len(COLORS)], dash="dot"),
            customdata=[[r["spec"], "n/a" if r.get("encode_us") is None else f"{r['encode_us']:.3g}"]
                        for r in rs],
            hovertemplate="%{customdata[0]}<br>%{x:,.0f} multiply-adds / vector<br>measured "
                          "%{customdata[1]} µs / vector<br>relative error %{y:.4f}<extra></extra>"))
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def compare_figures(rows, R="10"):
    return [rate_distortion(rows), recall_vs_bits(rows, R), entropy_side_by_side(rows), fit_time(rows),
            error_vs_stages(rows)]


# ---------------------------------------------------------------- map page


def _wrap(text, width=60, limit=240):
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    text = plotly_text(text)  # untrusted labels: shown as their characters, never as plotly's HTML
    words, lines, cur = text.split(), [], ""
    for w in words:
        if len(cur) + len(w) + 1 > width and cur:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return "<br>".join(lines)


HIGHLIGHT = "#111827"


def code_map(P, codes_m, labels, cw, cw_counts, *, position, method_spec, projection="PCA", n_total=None,
             rows=None, highlight=None, highlight_label=None):
    """Points coloured by their code at one position; codewords on top; dead codes as red crosses.

    ``rows``: each point's row number in the data, for the hover. ``highlight``: a boolean mask of the
    points to pick out (one code, or one prefix, ``highlight_label`` says which): they are drawn on
    top in a dark colour, the others in light grey, so one code stands out of K sharing 20 colours.
    """
    P = np.asarray(P)
    codes_m = np.asarray(codes_m).astype(int)
    K = len(cw_counts)
    shown = len(P)
    sub = f"{method_spec}, code position {position}; {projection} of {shown:,}"
    sub += f" of {n_total:,} items" if n_total and n_total > shown else " items"
    ndead = int(np.sum(np.asarray(cw_counts) == 0))
    sub += f"; ◆ codewords, ✕ dead codes ({ndead})"
    if highlight is not None:
        highlight = np.asarray(highlight, dtype=bool)
        sub += f"; highlighted: {highlight_label}, {int(highlight.sum()):,} of the {shown:,} items shown"
    else:
        sub += "; colours repeat every 20 codes" if K > 20 else ""
    fig = _figure(TITLES["map"], sub, xtitle=f"{projection} 1", ytitle=f"{projection} 2", height=640,
                  legend_rows=1, wrap=160)
    hover_lab = [_wrap(lab) for lab in labels] if labels is not None else [""] * shown
    rows = np.arange(shown) if rows is None else np.asarray(rows)
    custom = np.column_stack([codes_m, np.asarray(hover_lab, dtype=object), rows])
    hover = "row %{customdata[2]}: code %{customdata[0]}<br>%{customdata[1]}<extra></extra>"
    size = 4 if shown > 3000 else 6
    if highlight is None:
        fig.add_trace(go.Scattergl(
            x=P[:, 0], y=P[:, 1], mode="markers", name="items",
            marker=dict(size=size, color=codes_m % 20 if K > 20 else codes_m,
                        colorscale=_cyclic_scale(min(K, 20)), cmin=0, cmax=min(K, 20) - 1, opacity=0.75,
                        line=dict(width=0)),
            customdata=custom, hovertemplate=hover))
    else:
        for mask, name, color, opacity, s in ((~highlight, "other items", OTHER, 0.5, size),
                                              (highlight, highlight_label, HIGHLIGHT, 0.9, size + 3)):
            fig.add_trace(go.Scattergl(
                x=P[mask, 0], y=P[mask, 1], mode="markers", name=name,
                marker=dict(size=s, color=color, opacity=opacity, line=dict(width=0)),
                customdata=custom[mask], hovertemplate=hover))
    cw = np.asarray(cw)
    counts = np.asarray(cw_counts)
    live = counts > 0
    idx = np.arange(K)
    fig.add_trace(go.Scatter(
        x=cw[live, 0], y=cw[live, 1], mode="markers", name="codeword",
        marker=dict(symbol="diamond", size=9, color="white", line=dict(color="#111827", width=1.5)),
        customdata=np.column_stack([idx[live], counts[live]]),
        hovertemplate="codeword %{customdata[0]}<br>%{customdata[1]} items<extra></extra>"))
    if (~live).any():
        fig.add_trace(go.Scatter(
            x=cw[~live, 0], y=cw[~live, 1], mode="markers", name="dead code",
            marker=dict(symbol="x", size=10, color=DEAD, line=dict(color="white", width=1)),
            customdata=idx[~live], hovertemplate="codeword %{customdata}: dead (no items)<extra></extra>"))
    return fig


def _cyclic_scale(k):
    k = max(k, 2)
    pal = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173",
           "#3182bd", "#e6550d", "#31a354", "#756bb1"]
    scale = []
    for i in range(k):
        scale.append([i / k, pal[i % len(pal)]])
        scale.append([(i + 1) / k, pal[i % len(pal)]])
    return scale


# ---------------------------------------------------------------- learn page


def toy_partition(kind, xs, ys, cells, data, points, *, mse, subtitle, extra_points=None):
    """A 2-D toy: coloured cells of the partition, the data, and the reconstruction points."""
    title = TITLES[kind]
    n_cells = int(cells.max()) + 1
    # shuffle colours so that neighbouring cells differ
    perm = np.random.default_rng(0).permutation(n_cells)
    z = perm[cells].reshape(len(ys), len(xs)) % 20
    fig = _figure(title, f"{subtitle}; mse {mse:.3f}", xtitle="x1", ytitle="x2", height=430)
    fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, colorscale=_cyclic_scale(20), zmin=0, zmax=19, opacity=0.35,
                             showscale=False, hoverinfo="skip"))
    fig.add_trace(go.Scattergl(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                               marker=dict(size=3, color="#374151", opacity=0.45),
                               hovertemplate="(%{x:.2f}, %{y:.2f})<extra>data</extra>"))
    if extra_points is not None:
        fig.add_trace(go.Scatter(x=extra_points[:, 0], y=extra_points[:, 1], mode="markers",
                                 name="previous stage", marker=dict(size=6, color="#9ca3af", symbol="circle-open"),
                                 hovertemplate="(%{x:.2f}, %{y:.2f})<extra>previous stage</extra>"))
    fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name="reconstruction points",
                             marker=dict(size=8, color="white", symbol="diamond",
                                         line=dict(color="#111827", width=1.5)),
                             hovertemplate="(%{x:.2f}, %{y:.2f})<extra>codeword</extra>"))
    fig.update_xaxes(range=[xs[0], xs[-1]], showgrid=False, constrain="domain")
    fig.update_yaxes(range=[ys[0], ys[-1]], showgrid=False, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(showlegend=False)
    return fig


# === section: collapse lab (pages/5_Training.py) ===

TITLES.update({
    "train_loss": "Training loss",
    "train_perplexity": "Perplexity over steps",
    "train_codes": "Active and dead codes",
    "train_usage_at": "Usage histogram at one step",
    "train_usage": "Usage over training",
})
TRAINING_TITLES = [TITLES[k] for k in ("train_loss", "train_perplexity", "train_codes", "train_usage_at",
                                       "train_usage")]
TRAINER_NAMES = {"ste": "STE", "nsvq": "NSVQ", "ema": "EMA", "lloyd": "Lloyd", "fsq": "FSQ"}
_DEAD_BG = "#fee2e2"  # what a dead (count 0) cell of the usage heatmap shows
_USAGE_SCALE = [[0.0, "#dbeafe"], [0.5, "#3b82f6"], [1.0, "#1e3a8a"]]


def _config_parts(c):
    """The settings a TrainConfig's trainer uses, as short readable strings keyed by setting."""
    parts = {"trainer": TRAINER_NAMES.get(c.trainer, c.trainer)}
    if c.trainer in ("ste", "nsvq"):
        parts["optimizer"] = {"sgd": "SGD", "adam": "Adam"}.get(c.optimizer, c.optimizer)
        parts["lr"] = f"lr {c.learning_rate:g}"
    if c.trainer == "fsq":
        parts["levels"] = f"levels {'×'.join(map(str, c.levels))} ({c.n_codes:,} codes)"
    else:
        parts["init"] = f"{c.init} init"
        if c.init == "normal":
            parts["init_scale"] = f"init scale {c.init_scale:g}"
        parts["codebook_size"] = f"K={c.codebook_size:,}"
        parts["n_stages"] = f"{c.n_stages} stage{'s' if c.n_stages > 1 else ''}"
        parts["cosine"] = "cosine" if c.cosine else "euclidean"
    if c.trainer in ("ste", "ema", "nsvq"):
        parts["reset_after"] = "no reset" if c.reset_after is None else f"reset after {c.reset_after}"
    parts["batch_size"] = "full batch" if c.trainer == "lloyd" else f"batch {c.batch_size:,}"
    parts["steps"] = f"{c.steps:,} steps"
    parts["seed"] = f"seed {c.random_state}"
    return parts


_QUIET = {"init scale 1", "1 stage", "euclidean"}  # defaults left out of a description


def training_description(config):
    """One line naming what a TrainConfig trains and how (steps and seed left out)."""
    parts = _config_parts(config)
    return " · ".join(v for k, v in parts.items() if k not in ("steps", "seed") and v not in _QUIET)


def training_labels(configs, *, limit=3):
    """Legend names {name: label}: each run's name and the settings in which the runs differ.

    >>> from vqcore.training import TrainConfig
    >>> training_labels({"A": TrainConfig(), "B": TrainConfig(reset_after=20)})
    {'A': 'A: no reset', 'B': 'B: reset after 20'}
    """
    parts = {name: _config_parts(c) for name, c in configs.items()}
    keys = list(dict.fromkeys(k for p in parts.values() for k in p))
    differ = [k for k in keys if len({p.get(k) for p in parts.values()}) > 1]
    out = {}
    for name, p in parts.items():
        shown = [p[k] for k in differ if k in p]
        text = ", ".join(shown[:limit]) + (", …" if len(shown) > limit else "")
        out[name] = f"{name}: {text}" if shown else name
    return out


def _run_style(runs):
    """(name, run, label, colour) of every run, in order."""
    labels = training_labels({name: run.config for name, run in runs.items()})
    return [(name, run, labels[name], COLORS[i % len(COLORS)]) for i, (name, run) in enumerate(runs.items())]


def _stage_name(s, n_stages):
    return f" stage {s + 1}" if n_stages > 1 else ""


def _level(fig, y, text, *, log=False, position="left"):
    """A dashed horizontal line at y with a label; on a log axis the label is placed at log10(y)."""
    fig.add_hline(y=y, line=dict(color=IDEAL, dash="dash", width=1))
    fig.add_annotation(x=0.0 if position == "left" else 1.0, xref="x domain", y=math.log10(y) if log else y,
                       yref="y", text=text, showarrow=False, xanchor=position, yanchor="bottom",
                       font=dict(size=11, color=IDEAL))


def _codes_lines(fig, runs, *, log=False):
    """A dashed line at K for each distinct K of the runs."""
    for K in sorted({run.codebook_size for run in runs.values()}):
        _level(fig, K, f"K = {K:,}", log=log)


def _legend_rows(names, width=48):
    """Rows a horizontal legend of these names takes in a half-width chart (about ``width`` characters)."""
    return 1 if sum(len(n) + 6 for n in names) <= width else 2


def training_loss(runs):
    """The trainer's loss on each batch, one line per run (the batch mse dotted when the trainers differ)."""
    styled = _run_style(runs)
    sub = ("the trainer's objective on each batch: STE (1+β)·mse (codebook + commitment), EMA β·mse (the "
           "commitment alone), NSVQ ||z − ẑ||² and Lloyd and FSQ the mse, where mse = ||z − ẑ||² summed "
           "over dimensions")
    trainers = {run.config.trainer for run in runs.values()}
    if len(trainers) > 1:
        sub += "; dotted: the batch mse, comparable across trainers"
    fig = _figure(TITLES["train_loss"], sub, xtitle="step", ytitle="loss per row (log scale)",
                  legend_rows=_legend_rows([label for *_, label, _ in styled]))
    for name, run, label, color in styled:
        h = run.history
        fig.add_trace(go.Scatter(
            x=h["step"], y=h["loss"], mode="lines", name=label, legendgroup=name, line=dict(color=color, width=1.8),
            customdata=h["mse"],
            hovertemplate=f"{label}<br>step %{{x}}<br>loss %{{y:.4g}}<br>mse %{{customdata:.4g}}<extra></extra>"))
        if len(trainers) > 1:
            fig.add_trace(go.Scatter(
                x=h["step"], y=h["mse"], mode="lines", name=f"{name}: mse", legendgroup=name, showlegend=False,
                line=dict(color=color, width=1, dash="dot"),
                hovertemplate=f"{label}<br>step %{{x}}<br>mse %{{y:.4g}}<extra></extra>"))
    fig.update_yaxes(type="log")
    return fig


def training_perplexity(runs):
    """Perplexity of each stage's codes over the last epoch, per step; K dashed."""
    styled = _run_style(runs)
    names = [label + _stage_name(s, run.n_stages) for _, run, label, _ in styled for s in range(run.n_stages)]
    fig = _figure(TITLES["train_perplexity"],
                  "2^H of the codes chosen over the last epoch of batches (each training row once); "
                  "K if every code is used equally, 1 if one code takes everything",
                  xtitle="step", ytitle="perplexity (log scale)", legend_rows=_legend_rows(names))
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    for name, run, label, color in styled:
        P = run.stage_history("epoch_perplexity")
        B = run.stage_history("batch_perplexity")
        S = run.n_stages
        for s in range(S):
            fig.add_trace(go.Scatter(
                x=run.history["step"], y=P[:, s], mode="lines", name=label + _stage_name(s, S), legendgroup=name,
                line=dict(color=color, width=1.8, dash=dashes[s % len(dashes)]), customdata=B[:, s],
                hovertemplate=f"{label}{_stage_name(s, S)}<br>step %{{x}}<br>perplexity %{{y:.1f}} (last epoch)"
                              f"<br>%{{customdata:.1f}} in this batch<extra></extra>"))
    _codes_lines(fig, runs, log=True)
    top = max(run.codebook_size for run in runs.values())
    fig.update_yaxes(type="log", dtick=1 if top >= 64 else None, range=[-0.05, math.log10(top) + 0.2])
    return fig


def training_codes(runs, *, stage=0):
    """Dead codes (last epoch) and active codes (in the batch) per step, with the reset events marked."""
    styled = _run_style(runs)
    S = max(run.n_stages for run in runs.values())
    sub = ("solid: dead codes, unused by the training rows over the last epoch of batches; dotted: codes active "
           "in the step's batch; ▼ codes reset after that step (Lloyd: empty clusters repaired)")
    if S > 1:
        sub += f"; stage {stage + 1}"
    fig = _figure(TITLES["train_codes"], sub, xtitle="step", ytitle="codes",
                  legend_rows=_legend_rows([label for *_, label, _ in styled]))
    for name, run, label, color in styled:
        s = min(stage, run.n_stages - 1)
        steps = np.asarray(run.history["step"])
        dead = run.stage_history("dead_codes")[:, s]
        active = run.stage_history("active_codes")[:, s]
        fig.add_trace(go.Scatter(
            x=steps, y=dead, mode="lines", name=label, legendgroup=name, line=dict(color=color, width=2),
            hovertemplate=f"{label}<br>step %{{x}}<br>%{{y}} dead codes (last epoch)<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=steps, y=active, mode="lines", name=f"{label}: active", legendgroup=name, showlegend=False,
            line=dict(color=color, width=1.2, dash="dot"),
            hovertemplate=f"{label}<br>step %{{x}}<br>%{{y}} codes active in the batch<extra></extra>"))
        events = [e for e in run.resets if e.stage == s]
        if events:
            at = np.searchsorted(steps, [e.step for e in events])
            fig.add_trace(go.Scatter(
                x=steps[at], y=dead[at], mode="markers", name=f"{name}: resets", legendgroup=name, showlegend=False,
                marker=dict(symbol="triangle-down", size=8, color=color, line=dict(color="white", width=0.8)),
                customdata=[e.n_codes for e in events],
                hovertemplate=f"{label}<br>after step %{{x}}: %{{customdata}} code(s) reset<extra></extra>"))
    _codes_lines(fig, runs)
    top = max(run.codebook_size for run in runs.values())
    fig.update_yaxes(range=[0, top * 1.1])
    return fig


def training_snapshot_steps(runs):
    """The steps at which any of the runs kept a usage snapshot, sorted."""
    return sorted({int(t) for run in runs.values() for t in run.usage_snapshots["step"]})


def _snapshot_at(run, step, stage):
    """(step, counts) of the run's last usage snapshot at or before ``step`` (the first one if none)."""
    steps = np.asarray(run.usage_snapshots["step"])
    i = max(int(np.searchsorted(steps, step, side="right")) - 1, 0)
    return int(steps[i]), np.asarray(run.usage_snapshots["counts"][i, min(stage, run.n_stages - 1)])


def _usage_traces(styled, step, stage):
    """The usage-histogram traces at one step: per run, its sorted counts and its uniform level."""
    lines, levels = [], []
    for name, run, label, color in styled:
        at, counts = _snapshot_at(run, step, stage)
        order = np.argsort(counts)[::-1]
        ranked = counts[order]
        live = ranked > 0
        K = len(counts)
        dead = K - int(live.sum())
        lines.append(go.Scatter(
            x=np.arange(1, K + 1)[live], y=ranked[live], mode="lines+markers" if live.sum() <= 32 else "lines",
            name=label, legendgroup=name, line=dict(color=color, width=1.8, shape="hv"),
            marker=dict(size=7, color=color), customdata=order[live],
            hovertemplate=f"{label}, step {at:,}: {dead:,} of {K:,} codes dead<br>rank %{{x}}: code "
                          f"%{{customdata}}, %{{y}} rows<extra></extra>"))
        u = float(counts.sum()) / K
        levels.append(go.Scatter(
            x=[0.5, K + 0.5], y=[u, u], mode="lines", name=f"{name}: uniform", legendgroup=name, showlegend=False,
            line=dict(color=color, width=1, dash="dash"),
            hovertemplate=f"{label}: uniform use, {u:.1f} rows per code<extra></extra>"))
    return lines + levels


def training_usage_at(runs, *, stage=0):
    """Codes sorted by use over the last epoch (a usage histogram), one line per run; a slider and a
    play button step through the kept snapshots (plotly frames), starting at the last one."""
    styled = _run_style(runs)
    S = max(run.n_stages for run in runs.values())
    steps = training_snapshot_steps(runs)
    sub = ("codes sorted by how many training rows chose them over the last epoch, at the step set below"
           + (f", stage {stage + 1}" if S > 1 else "")
           + "; where a line ends, the dead codes begin; dashed: uniform use")
    fig = _figure(TITLES["train_usage_at"], sub, xtitle="code rank (most used first)",
                  ytitle="rows per code (log scale)", legend_rows=_legend_rows([label for *_, label, _ in styled]),
                  height=470)
    fig.add_traces(_usage_traces(styled, steps[-1], stage))
    fig.frames = [go.Frame(name=str(t), data=_usage_traces(styled, t, stage)) for t in steps]
    peak = max(int(np.max(run.usage_snapshots["counts"])) for run in runs.values())
    top = max(run.codebook_size for run in runs.values())
    fig.update_xaxes(range=[0, top + 1])
    fig.update_yaxes(type="log", range=[-0.1, math.log10(max(peak, 2)) + 0.15])

    def go_to(frames, duration):
        return [frames, dict(mode="immediate", frame=dict(duration=duration, redraw=True),
                             transition=dict(duration=0))]

    fig.update_layout(
        margin=dict(b=10),
        sliders=[dict(
            active=len(steps) - 1, x=0.26, len=0.74, y=0, yanchor="top", pad=dict(t=52, b=0),
            currentvalue=dict(prefix="step ", xanchor="right", font=dict(size=12, color="#1f2937")),
            font=dict(size=10, color="rgba(0,0,0,0)"), ticklen=0, tickcolor="rgba(0,0,0,0)",
            steps=[dict(label=str(t), method="animate", args=go_to([str(t)], 0)) for t in steps])],
        updatemenus=[dict(
            type="buttons", direction="left", x=0, xanchor="left", y=0, yanchor="top", pad=dict(t=62, r=8),
            showactive=False, font=dict(size=11),
            buttons=[dict(label="▶ play", method="animate", args=go_to(None, 120)),
                     dict(label="❚❚", method="animate", args=go_to([None], 0))])])
    return fig


def training_usage(runs, *, stage=0):
    """Heatmaps, one per run: step across, code rank down, colour the rows per code; dead codes pale red."""
    styled = _run_style(runs)
    S = max(run.n_stages for run in runs.values())
    fig = make_subplots(rows=1, cols=len(styled), subplot_titles=[label for *_, label, _ in styled],
                        horizontal_spacing=0.06)
    top = 1.0
    for j, (_name, run, label, _color) in enumerate(styled, start=1):
        snaps = run.usage_snapshots
        counts = np.asarray(snaps["counts"][:, min(stage, run.n_stages - 1)])  # (snapshots, K)
        ranked = -np.sort(-counts, axis=1).T  # (K, snapshots): rank down, step across
        z = np.log10(np.where(ranked > 0, ranked, np.nan))
        top = max(top, float(np.nanmax(z)) if np.isfinite(z).any() else 0.0)
        fig.add_trace(go.Heatmap(
            x=snaps["step"], y=np.arange(1, ranked.shape[0] + 1), z=z, coloraxis="coloraxis", customdata=ranked,
            name=label, hoverongaps=True,
            hovertemplate=f"{label}<br>step %{{x}}<br>code rank %{{y}}: %{{customdata}} rows<extra></extra>"),
            row=1, col=j)
        fig.update_yaxes(autorange="reversed", showgrid=False, row=1, col=j)
        fig.update_xaxes(title_text="step", showgrid=False, row=1, col=j)
    ticks = list(range(int(math.floor(top)) + 1))
    _figure(TITLES["train_usage"],
            "every code's use over the last epoch of batches, at each kept step: codes sorted by use at that step "
            "(rank 1 = most used); pale red: dead codes"
            + (f"; stage {stage + 1}" if S > 1 else ""),
            fig=fig, wrap=160, height=430)
    fig.update_layout(
        plot_bgcolor=_DEAD_BG,
        coloraxis=dict(colorscale=_USAGE_SCALE, cmin=0, cmax=max(top, 1.0),
                       colorbar=dict(title=dict(text="rows per code", side="right"), thickness=12,
                                     tickvals=ticks, ticktext=[f"{10 ** t:,}" for t in ticks])),
        margin=dict(t=fig.layout.margin.t + 24))
    fig.update_yaxes(title_text="code rank", row=1, col=1)
    fig.update_annotations(font=dict(size=13), yshift=4)
    return fig


def training_figures(runs, *, stage=0):
    """The five charts of the collapse lab, in reading order (titles: TRAINING_TITLES)."""
    return [training_loss(runs), training_perplexity(runs), training_codes(runs, stage=stage),
            training_usage_at(runs, stage=stage), training_usage(runs, stage=stage)]


# === section: semantic IDs (pages/6_Semantic_IDs.py) ===

TITLES.update({
    "sid_tree": "Code tree",
    "sid_prefix": "Prefix collisions vs uniform codes",
    "sid_coverage": "Coverage per depth",
    "sid_groups": "Largest collision groups",
})
SEMANTIC_TITLES = [TITLES[k] for k in ("usage", "collapse", "entropy", "sid_tree", "sid_prefix", "sid_coverage",
                                       "sid_groups")]
OTHER = "#d1d5db"


def _code_str(codes):
    return "/".join(str(int(c)) for c in codes)


def _pct(v):
    """A share for a hover or a label, with enough digits for small values."""
    if v == 0:
        return "0%"
    if v >= 0.01:
        return f"{v:.1%}"
    return f"{v * 100:.2g}%"


def _tint(color, amount):
    """``color`` (#rrggbb) mixed with white: 0 keeps it, 1 is white."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def _examples_html(labels, *, width=60, limit=110):
    return "<br>".join("• " + _wrap(lab, width, limit) for lab in labels)


def semantic_usage_figures(report):
    """The Quantize page's usage, collapse and entropy charts, for any codes (a report-shaped dict)."""
    return [codebook_usage(report), codebook_collapse(report), entropy_per_position(report)]


def code_tree(tree, *, n, kind="treemap", max_children=None):
    """The code prefixes as a sunburst (level 0 at the centre) or a treemap; hover: count, share, examples.

    ``tree`` is vqcore.semantic_ids.prefix_tree's output. Colours follow the level-0 branch; folded
    "other" nodes are grey. One root node, "all items", holds the level-0 prefixes (without it
    plotly draws a root of its own whose hover has no numbers).
    """
    root = "all items"
    ids = [root] + list(tree["ids"])
    parents = [""] + [p or root for p in tree["parents"]]
    depth = max(tree["depth"]) if tree["depth"] else 1
    branch, siblings, colors, custom = {}, {}, [OTHER], [[f"all {n:,} items", _pct(1.0), ""]]
    for nid, parent, prefix, count, folded, ex in zip(tree["ids"], tree["parents"], tree["prefix"], tree["counts"],
                                                      tree["n_folded"], tree["example_labels"]):
        rank = siblings[parent] = siblings.get(parent, -1) + 1
        if prefix is None:
            colors.append(OTHER)
            where = f"under {parent}" if parent else "at level 0"
            head = f"other: {folded} smaller prefix(es) {where}"
        else:
            if not parent:
                branch[nid] = COLORS[len(branch) % len(COLORS)]
                colors.append(branch[nid])
            else:  # lighter than the level-0 branch, alternating so that siblings stay apart
                colors.append(_tint(branch.get(nid.split("/")[0], OTHER), 0.35 if rank % 2 else 0.6))
            head = f"prefix {nid}"
        custom.append([head, _pct(count / n), _examples_html(ex)])
    widths = [0.0] + [(1.0 if kind == "treemap" else 0.5) if d == 1 else 0.0 for d in tree["depth"]]
    sub = (f"items under each prefix of the first {depth} level(s), level 0 "
           + ("at the centre" if kind == "sunburst" else "outermost")
           + (f"; the {max_children} largest branches under each node, largest first, the rest folded into "
              "grey 'other'"
              if max_children else "")
           + ("; one level at a time, click a box to open it" if kind == "treemap" else "; click to drill down")
           + ", hover for example items")
    fig = _figure(TITLES["sid_tree"], sub, height=640, wrap=130)
    common = dict(ids=ids, parents=parents, labels=[root] + list(tree["labels"]), values=[n] + list(tree["counts"]),
                  branchvalues="total",
                  customdata=custom, marker=dict(colors=colors, line=dict(color="white", width=widths)),
                  hovertemplate="<b>%{customdata[0]}</b><br>%{value:,} item(s), %{customdata[1]} of all"
                                "<br>%{customdata[2]}<extra></extra>")
    if kind == "treemap":
        # one level at a time under the node clicked (a box holding 256 specks is unreadable)
        fig.add_trace(go.Treemap(**common, maxdepth=2, textinfo="label+value", sort=True,
                                 pathbar=dict(visible=True), tiling=dict(pad=2)))
    else:
        fig.add_trace(go.Sunburst(**common, maxdepth=3 if max_children and max_children <= 16 else 2,
                                  insidetextorientation="radial", textinfo="label", sort=True))
    fig.update_layout(margin=dict(l=10, r=10, b=10))
    return fig


def _log_percent_axis(fig, lo):
    """A log y axis from ``lo`` to 100% with ticks at powers of ten, labelled in percent."""
    ticks = [10.0 ** e for e in range(int(math.floor(math.log10(lo))), 1)]
    fig.update_yaxes(type="log", range=[math.log10(lo), 0.08], tickvals=ticks,
                     ticktext=[f"{t * 100:.10g}%" for t in ticks])


def prefix_collisions(table, *, n):
    """Collision rate of the first d levels, for each depth d, next to uniform independent codes."""
    depth = np.asarray(table["depth"])
    obs = np.asarray(table["collision_rate"], dtype=float)
    uni = np.asarray(table["uniform_collision_rate"], dtype=float)
    floor = 0.3 / n  # below the smallest non-zero rate, one item in n
    possible = [f"2^{b:.4g}" if p > 10**12 else f"{p:,}" for p, b in zip(table["possible"], table["log2_possible"])]
    sub = (f"share of the {n:,} items whose first d codes repeat an earlier item's; dashed: uniform, "
           f"independent codes over the same tuples (birthday bound). All {len(obs)} levels: {_pct(obs[-1])} "
           f"collide, uniform codes would give {_pct(uni[-1])}. Log scale; values below one item in n sit on "
           "the floor")
    fig = _figure(TITLES["sid_prefix"], sub, xtitle="depth d (first d levels)",
                  ytitle="collision rate (log scale)", legend_rows=1)
    fig.add_trace(go.Scatter(
        x=depth, y=np.maximum(obs, floor), mode="lines+markers", name="these codes",
        line=dict(color=COLORS[0], width=2.2), marker=dict(size=9),
        customdata=np.column_stack([[_pct(v) for v in obs], [f"{v:,}" for v in table["distinct_prefixes"]],
                                    possible]),
        hovertemplate="first %{x} level(s)<br>%{customdata[0]} of the items collide<br>%{customdata[1]} distinct "
                      "prefixes of %{customdata[2]} possible<extra>these codes</extra>"))
    fig.add_trace(go.Scatter(
        x=depth, y=np.maximum(uni, floor), mode="lines+markers", name="uniform independent codes",
        line=dict(color=IDEAL, dash="dash", width=1.6), marker=dict(size=7, symbol="diamond"),
        customdata=np.column_stack([[_pct(v) for v in uni], possible]),
        hovertemplate="first %{x} level(s)<br>uniform codes over %{customdata[1]} tuples: "
                      "%{customdata[0]} collide<extra>birthday bound</extra>"))
    fig.add_hline(y=1.0 / n, line=dict(color="#9ca3af", dash="dot", width=1))
    # an annotation on a log axis is placed by log10 of the value (add_hline's own would not be)
    fig.add_annotation(x=0, xref="paper", xanchor="left", y=math.log10(1.0 / n), yref="y", yanchor="bottom",
                       text="one item in n", showarrow=False, font=dict(size=10, color=IDEAL))
    _log_percent_axis(fig, floor * 0.7)
    fig.update_xaxes(tickvals=depth, ticktext=[str(d) for d in depth])
    return fig


def coverage_per_depth(table, *, n):
    """Used combinations of the first d codes over the most n items could use, against uniform codes."""
    depth = np.asarray(table["depth"])
    cap = [min(int(p), n) for p in table["possible"]]
    cov = np.asarray(table["coverage"], dtype=float)
    possible = [f"2^{b:.4g}" if p > 10**12 else f"{p:,}" for p, b in zip(table["possible"], table["log2_possible"])]
    fig = _figure(TITLES["sid_coverage"],
                  "used code combinations of the first d levels over the most the items could use, "
                  "min(possible, n); ◆ what uniform, independent codes would use",
                  xtitle="depth d (first d levels)", ytitle="coverage", legend_rows=1)
    fig.add_trace(go.Bar(
        x=depth, y=cov, name="these codes", marker_color=COLORS[2],
        text=[f"{u:,} / {c:,}" for u, c in zip(table["distinct_prefixes"], cap)], textposition="inside",
        insidetextanchor="middle",
        customdata=np.column_stack([[f"{u:,}" for u in table["distinct_prefixes"]], possible,
                                    [f"{c:,}" for c in cap]]),
        hovertemplate="first %{x} level(s): %{y:.1%}<br>%{customdata[0]} combinations used of %{customdata[1]} "
                      "possible<br>at most %{customdata[2]} usable by the items<extra></extra>"))
    if "uniform_coverage" in table:
        fig.add_trace(go.Scatter(
            x=depth, y=table["uniform_coverage"], mode="markers", name="uniform codes (expected)",
            marker=dict(symbol="diamond", size=10, color="white", line=dict(color="#111827", width=1.5)),
            hovertemplate="first %{x} level(s): uniform codes would cover %{y:.1%}<extra></extra>"))
    fig.update_yaxes(range=[0, 1.08], tickformat=".0%")
    fig.update_xaxes(tickvals=depth, ticktext=[str(d) for d in depth])
    fig.update_layout(bargap=0.35)
    return fig


def collision_groups_chart(groups, *, n):
    """Size of the largest groups of items sharing a whole code tuple, coloured by how spread they are."""
    if not groups:
        fig = _figure(TITLES["sid_groups"], "no two items share a whole code tuple",
                      xtitle="code tuple", ytitle="items sharing it")
        fig.add_annotation(text="every item has an ID of its own", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font=dict(size=14, color=IDEAL))
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
        return fig
    x = [_code_str(g["codes"]) for g in groups]
    sizes = [g["size"] for g in groups]
    tight = [g.get("tightness") for g in groups]
    has_tight = all(t is not None for t in tight)
    dist = [("n/a" if g["mean_pairwise"] is None else f"{g['mean_pairwise']:.3g}") for g in groups]
    ex = [_examples_html(g["labels"][:3] if g["labels"] is not None else [f"item {i}" for i in g["items"][:3]])
          for g in groups]
    sub = f"the {len(groups)} largest groups of items with the same full ID (of {n:,} items)"
    sub += ("; colour: mean distance to the group's centre / the data's (0 = duplicates, 1 = as spread as "
            "random items)" if has_tight else "; load embeddings to see distances")
    fig = _figure(TITLES["sid_groups"], sub, xtitle="code tuple (largest groups first)", ytitle="items sharing it")
    marker = dict(color=COLORS[0])
    if has_tight:
        marker = dict(color=tight, colorscale="Viridis", cmin=0, cmax=max(1.0, max(tight)),
                      colorbar=dict(title=dict(text="spread", side="right"), thickness=12))
    fig.add_trace(go.Bar(
        x=x, y=sizes, marker=marker, name="group",
        customdata=np.column_stack([dist, [("n/a" if t is None else f"{t:.2f}") for t in tight], ex]),
        hovertemplate="<b>%{x}</b>: %{y} items<br>mean pairwise distance %{customdata[0]}<br>"
                      "spread %{customdata[1]}<br>%{customdata[2]}<extra></extra>"))
    fig.update_xaxes(type="category", tickangle=-45 if len(x) > 8 else 0)
    fig.update_yaxes(rangemode="tozero", dtick=1 if max(sizes) <= 8 else None)
    return fig


# ---------------------------------------------------------------- two code sets of the same items (issue 18)

TITLES["id_agreement"] = "Agreement between two code sets"


def code_set_agreement(result, name_a="A", name_b="B"):
    """Per level of vqcore.semantic_ids.compare_code_sets: the share of items with the same code, with the
    same first d codes (prefix), and with the same code after the best renaming of B's codes. The names
    (e.g. file names) are shown as text: plotly's own tags in them are escaped."""
    name_a, name_b = plotly_text(name_a), plotly_text(name_b)
    levels = [f"level {m}" for m in range(len(result["level_agreement"]))]
    fig = _figure(TITLES["id_agreement"],
                  f"{name_b} against {name_a} on the same {result['n_items']:,} items: "
                  f"{result['share_changed']:.1%} changed their whole ID", xtitle="level",
                  ytitle="share of items", legend_rows=1)
    series = [("same code at this level", result["level_agreement"], COLORS[0]),
              ("same prefix up to this level", result["prefix_agreement"], COLORS[1]),
              ("same code after renaming B's codes", result["relabelled_level_agreement"], COLORS[2])]
    for name, values, color in series:
        if all(v is None for v in values):
            continue
        fig.add_trace(go.Bar(x=levels, y=values, name=name, marker_color=color,
                             hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    return fig
