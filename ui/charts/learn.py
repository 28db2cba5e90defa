"""Charts of the Learn page: how VQ, PQ and RQ partition the plane."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .theme import TITLES, cyclic_scale, figure

# ---------------------------------------------------------------- learn page


def toy_partition(kind, xs, ys, cells, data, points, *, mse, subtitle, extra_points=None):
    """A 2-D toy: coloured cells of the partition, the data, and the reconstruction points."""
    title = TITLES[kind]
    n_cells = int(cells.max()) + 1
    # shuffle colours so that neighbouring cells differ
    perm = np.random.default_rng(0).permutation(n_cells)
    z = perm[cells].reshape(len(ys), len(xs)) % 20
    fig = figure(title, f"{subtitle}; mse {mse:.3f}", xtitle="x1", ytitle="x2", height=430)
    fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, colorscale=cyclic_scale(20), zmin=0, zmax=19, opacity=0.35,
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
