"""Charts of the home page: the data's norms and PCA spectrum."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .theme import COLORS, TITLES, figure

# ---------------------------------------------------------------- home page


def norm_histogram(norms, *, unit_norm=False):
    """Histogram of the rows' L2 norms. When every norm is the same (L2-normalised data, the common
    case) a histogram has no width to draw: one bar holds every row, and the subtitle says the norm."""
    norms = np.asarray(norms, dtype=float)
    c = float(norms.mean()) if norms.size else 0.0
    scale = max(abs(c), 1.0)
    spread = float(np.ptp(norms)) if norms.size else 0.0
    if norms.size and spread <= 1e-3 * scale:  # one value to the 3 decimals shown
        fig = figure(TITLES["norms"], f"all norms = {c:.3f} ({norms.size:,} rows"
                      + (", L2-normalised" if unit_norm else "")
                      + (f"; they differ by at most {spread:.1g})" if spread else ")"),
                      xtitle="L2 norm of a row", ytitle="rows")
        fig.add_trace(go.Bar(x=[c], y=[norms.size], width=[0.02 * scale], marker_color=COLORS[0], name="rows",
                             hovertemplate="norm %{x:.4f}<br>%{y:,} rows (all)<extra></extra>"))
        fig.update_xaxes(range=[c - 0.1 * scale, c + 0.1 * scale])
        fig.update_layout(showlegend=False)
        return fig
    sub = f"min {norms.min():.3g}, mean {norms.mean():.3g}, max {norms.max():.3g}"
    fig = figure(TITLES["norms"], sub, xtitle="L2 norm of a row", ytitle="rows")
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
    fig = figure(TITLES["pca"], sub, xtitle="principal direction", ytitle="share of variance", legend_rows=1)
    fig.add_trace(go.Bar(x=idx, y=ratio[:k], name="per direction", marker_color=COLORS[0],
                         hovertemplate="direction %{x}<br>%{y:.2%} of the variance<extra></extra>"))
    fig.add_trace(go.Scatter(x=idx, y=cum[:k], name="cumulative", mode="lines", line=dict(color=COLORS[1]),
                             hovertemplate="first %{x} directions<br>%{y:.1%} cumulative<extra></extra>"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02])
    return fig
