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
    "norms": "Norm histogram",
    "pca": "PCA explained variance",
    "map": "Map of the data",
    "vq_cells": "VQ: Voronoi cells",
    "pq_grid": "PQ: product grid",
    "rq_stages": "RQ: stages",
}
QUANTIZE_TITLES = [TITLES[k] for k in ("usage", "collapse", "residual", "entropy", "mi", "per_dim")]
COMPARE_TITLES = [TITLES[k] for k in ("rd", "recall", "entropy", "fit_time")]


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
    norms = np.asarray(norms)
    sub = "all rows have norm 1 (L2-normalised)" if unit_norm else (
        f"min {norms.min():.3g}, mean {norms.mean():.3g}, max {norms.max():.3g}")
    fig = _figure(TITLES["norms"], sub, xtitle="L2 norm of a row", ytitle="rows")
    fig.add_trace(go.Histogram(x=norms, nbinsx=60, marker_color=COLORS[0], name="rows",
                               hovertemplate="norm %{x}<br>%{y} rows<extra></extra>"))
    fig.update_layout(bargap=0.02, showlegend=False)
    if np.ptp(norms) < 1e-6:
        c = float(norms.mean())
        fig.update_xaxes(range=[c - 0.05 * max(abs(c), 1), c + 0.05 * max(abs(c), 1)])
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
    fig = _figure(TITLES["usage"], sub, xtitle="code rank (most used first)", ytitle="items per code",
                  legend_rows=1 if M <= 4 else 2)
    for m, c in enumerate(counts):
        order = np.argsort(c)[::-1]
        s = c[order]
        ranks = np.arange(1, K + 1)
        fig.add_trace(go.Scatter(
            x=ranks, y=s, mode="lines", name=f"codebook {m}", line=dict(color=COLORS[m % len(COLORS)], width=1.6),
            customdata=order, hovertemplate=f"codebook {m}<br>rank %{{x}}: code %{{customdata}}<br>%{{y}} items<extra></extra>"))
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
                         hovertemplate="codebook %{x}<br>utilisation %{y:.1%}<br>perplexity %{customdata:.1f}<extra></extra>"))
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
                      f"share of the total variance left after each stage; {vals[-1]:.1%} left after all {len(vals) - 1}",
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
                  f"{report['allocated_bits']:g} allocated bits (bounded by log2 n = {math.log2(max(report['n'], 1)):.1f})",
                  xtitle="code position", ytitle="entropy (bits)", legend_rows=1)
    fig.add_trace(go.Bar(x=pos, y=H, name="entropy H", marker_color=COLORS[0],
                         customdata=np.asarray(u["perplexity"]),
                         hovertemplate="position %{x}<br>H = %{y:.2f} bits<br>perplexity %{customdata:.1f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=pos, y=ceiling, mode="lines+markers", name="log2 K (ceiling)",
                             line=dict(color=IDEAL, dash="dash", shape="hvh"), marker=dict(size=4),
                             hovertemplate="log2 K = %{y:.2f} bits<extra></extra>"))
    fig.update_yaxes(range=[0, float(ceiling.max()) * 1.1 + 1e-9])
    fig.update_xaxes(dtick=1 if len(H) <= 32 else None)
    return fig


def mutual_information(report):
    mi = np.asarray(report["mutual_information"], dtype=float)
    M = mi.shape[0]
    off = mi.copy()
    np.fill_diagonal(off, np.nan)
    n, K = report["n"], report["codebook_size"]
    floor = (K - 1) ** 2 / (2 * n * math.log(2))
    sub = "bits shared by two positions (diagonal, the entropy, left blank)"
    if K * K > n:
        sub += (f". Caution: n = {n:,} is below K² = {K * K:,}, so the joint histogram is sparse and every pair "
                f"looks dependent (joint entropy ≤ log2 n = {math.log2(n):.1f} bits); compare pairs, not values")
    else:
        sub += f"; independent positions would still show about {floor:.2g} bits at this n (estimation bias)"
    fig = _figure(TITLES["mi"], sub, xtitle="code position", ytitle="code position",
                  height=max(380, min(560, 120 + 28 * M)))
    fig.add_trace(go.Heatmap(
        z=off, x=np.arange(M), y=np.arange(M), colorscale="Viridis", zmin=0,
        colorbar=dict(title=dict(text="bits", side="right"), thickness=12),
        customdata=mi, hovertemplate="positions %{y} and %{x}<br>I = %{customdata:.3f} bits<extra></extra>",
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


def _by_method(rows):
    out = {}
    for r in sorted(rows, key=lambda r: (r["method"], r["bits"])):
        out.setdefault(r["method"], []).append(r)
    return out


def rate_distortion(rows):
    """rows: dicts with method, bits, relative, spec, fit_seconds, recall (dict R -> value), entropy..."""
    fig = _figure(TITLES["rd"], "relative error mse / total variance against bits per vector; lower is better",
                  xtitle="bits per vector", ytitle="relative error (log scale)", legend_rows=1)
    for i, (method, rs) in enumerate(_by_method(rows).items()):
        fig.add_trace(go.Scatter(
            x=[r["bits"] for r in rs], y=[r["relative"] for r in rs], mode="lines+markers", name=method,
            line=dict(color=COLORS[i % len(COLORS)]), customdata=[r["spec"] for r in rs],
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
    for i, (method, rs) in enumerate(_by_method(rows).items()):
        fig.add_trace(go.Scatter(
            x=[r["bits"] for r in rs], y=[(r["recall"] or {}).get(R) for r in rs], mode="lines+markers", name=method,
            line=dict(color=COLORS[i % len(COLORS)]), customdata=[r["spec"] for r in rs],
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
    for i, (method, rs) in enumerate(_by_method(rows).items()):
        fig.add_trace(go.Bar(
            x=[_fmt_bits(r["bits"]) for r in rs], y=[r["fit_seconds"] for r in rs], name=method,
            marker_color=COLORS[i % len(COLORS)], customdata=[r["spec"] for r in rs],
            hovertemplate="%{customdata}<br>fit %{y:.2f} s<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", categoryorder="array",
                     categoryarray=[_fmt_bits(b) for b in sorted({r["bits"] for r in rows})])
    return fig


def compare_figures(rows, R="10"):
    return [rate_distortion(rows), recall_vs_bits(rows, R), entropy_side_by_side(rows), fit_time(rows)]


# ---------------------------------------------------------------- map page


def _wrap(text, width=60, limit=240):
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
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


def code_map(P, codes_m, labels, cw, cw_counts, *, position, method_spec, projection="PCA", n_total=None):
    """Points coloured by their code at one position; codewords on top; dead codes as red crosses."""
    P = np.asarray(P)
    codes_m = np.asarray(codes_m).astype(int)
    K = len(cw_counts)
    shown = len(P)
    sub = f"{method_spec}, code position {position}; {projection} of {shown:,}"
    sub += f" of {n_total:,} items" if n_total and n_total > shown else " items"
    ndead = int(np.sum(np.asarray(cw_counts) == 0))
    sub += f"; ◆ codewords, ✕ dead codes ({ndead})"
    fig = _figure(TITLES["map"], sub, xtitle=f"{projection} 1", ytitle=f"{projection} 2", height=640,
                  legend_rows=1, wrap=160)
    hover_lab = [_wrap(l) for l in labels] if labels is not None else [""] * shown
    custom = np.column_stack([codes_m, np.asarray(hover_lab, dtype=object)])
    fig.add_trace(go.Scattergl(
        x=P[:, 0], y=P[:, 1], mode="markers", name="items",
        marker=dict(size=4 if shown > 3000 else 6, color=codes_m % 20 if K > 20 else codes_m,
                    colorscale=_cyclic_scale(min(K, 20)), cmin=0, cmax=min(K, 20) - 1, opacity=0.75,
                    line=dict(width=0)),
        customdata=custom,
        hovertemplate="code %{customdata[0]}<br>%{customdata[1]}<extra></extra>"))
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
                             marker=dict(size=8, color="white", symbol="diamond", line=dict(color="#111827", width=1.5)),
                             hovertemplate="(%{x:.2f}, %{y:.2f})<extra>codeword</extra>"))
    fig.update_xaxes(range=[xs[0], xs[-1]], showgrid=False, constrain="domain")
    fig.update_yaxes(range=[ys[0], ys[-1]], showgrid=False, scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(showlegend=False)
    return fig


# === section: collapse lab (pages/5_Training.py) ===


# === section: semantic IDs (pages/6_Semantic_IDs.py) ===
