"""Charts of the Compare page: rate-distortion, recall, entropy, stages, fit and encoding time."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import COLORS, IDEAL, TITLES, figure, fmt_bits

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
    fig = figure(TITLES["rd"], "relative error mse / total variance against bits per vector; lower is better",
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
    fig.update_xaxes(tickvals=bits, ticktext=[fmt_bits(b) for b in bits], **kw)


def recall_vs_bits(rows, R="10"):
    R = str(R)
    q = next((r.get("query_set") for r in rows if r.get("query_set")), None)
    sub = f"share of queries whose true nearest neighbour is in the top {R} by asymmetric distance"
    if q:
        sub += f"; {q}"
    fig = figure(TITLES["recall"], sub, xtitle="bits per vector", ytitle=f"recall@{R}", legend_rows=1)
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
                x=np.arange(len(H)), y=H, name=f"{fmt_bits(r['bits'])} bits", legendgroup=str(r["bits"]),
                showlegend=(j == 1), marker_color=colors[r["bits"]], customdata=[r["spec"]] * len(H),
                hovertemplate="%{customdata}<br>position %{x}<br>H = %{y:.2f} bits<extra></extra>"), row=1, col=j)
            ceiling = math.log2(r["codebook_size"])
            ymax = max(ymax, ceiling)
        ks = sorted({r["codebook_size"] for r in groups[method]})
        for K in ks:
            fig.add_hline(y=math.log2(K), line=dict(color=IDEAL, dash="dash", width=1), row=1, col=j)
        fig.update_xaxes(title_text="code position", row=1, col=j, dtick=1)
    figure(TITLES["entropy"], "bits carried by each code position, one panel per method (as in GRVQ's "
            "Figure 1); dashed: log2 K, the most a position can carry", ytitle=None, fig=fig, wrap=160, height=400)
    fig.update_layout(showlegend=True, legend=dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top",
                                                   title=dict(text="budget")))
    fig.update_yaxes(title_text="entropy (bits)", range=[0, ymax * 1.08], row=1, col=1)
    fig.update_layout(barmode="group", bargap=0.2, margin=dict(t=fig.layout.margin.t + 26))
    fig.update_annotations(font=dict(size=13), yshift=4)
    return fig


def fit_time(rows):
    fig = figure(TITLES["fit_time"], "seconds to learn the codebooks (training subsample), per method and budget",
                  xtitle="bits per vector", ytitle="seconds", legend_rows=1)
    for method, rs in _by_method(rows).items():
        fig.add_trace(go.Bar(
            x=[fmt_bits(r["bits"]) for r in rs], y=[r["fit_seconds"] for r in rs], name=method,
            marker_color=method_color(method), customdata=[r["spec"] for r in rs],
            hovertemplate="%{customdata}<br>fit %{y:.2f} s<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", categoryorder="array",
                     categoryarray=[fmt_bits(b) for b in sorted({r["bits"] for r in rows})])
    return fig


def error_vs_stages(rows):
    """Residual variance after each stage for the additive methods (RQ, AQ, GRVQ, VQ): the
    left panel of GRVQ's Figure 2. One line per method, at its largest budget."""
    fig = figure(TITLES["stages"], "residual variance left after the first m codewords (additive methods at "
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
    fig = figure(TITLES["beams"], f"the fitted codebooks re-encoded by beam search with beams 1 to 16 "
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
    fig = figure(TITLES["cost"], "at equal bits (one line per budget), what each method's encoding costs "
                  "per vector and the error it reaches; lower left is better",
                  xtitle="encoding cost (multiply-adds per vector, log scale)",
                  ytitle="relative error (log scale)", legend_rows=1)
    budgets = sorted({r["bits"] for r in rows})
    for i, b in enumerate(budgets):
        rs = sorted((r for r in rows if r["bits"] == b), key=lambda r: r["encode_madds"])
        fig.add_trace(go.Scatter(
            x=[r["encode_madds"] for r in rs], y=[r["relative"] for r in rs], mode="lines+markers+text",
            name=f"{fmt_bits(b)} bits", text=[r["method"] for r in rs], textposition="top center",
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
