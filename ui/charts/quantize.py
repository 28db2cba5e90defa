"""Charts of the Quantize page: usage, collapse, residual variance, entropy, mutual information, error per dimension."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .theme import COLORS, DEAD, IDEAL, TITLES, figure

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
        fig = figure(TITLES["usage"], sub + "; dead cells in red", xtitle="code rank (most used first)",
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
    fig = figure(TITLES["usage"], sub, xtitle="code rank (most used first)", ytitle="items per code",
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
    fig = figure(TITLES["collapse"], "ideal: no dead codes (0) and every code equally used (utilisation 1)",
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
        fig = figure(TITLES["residual"],
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
        fig = figure(TITLES["residual"],
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
    fig = figure(TITLES["entropy"],
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
    fig = figure(TITLES["mi"], sub, xtitle="code position", ytitle="code position",
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
    fig = figure(TITLES["per_dim"],
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
