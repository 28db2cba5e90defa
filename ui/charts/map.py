"""Chart of the Map page: the data in 2-D coloured by its codes, with the codewords."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .theme import DEAD, OTHER, TITLES, cyclic_scale, figure, wrap

# ---------------------------------------------------------------- map page


HIGHLIGHT = "#111827"


def code_map(P, codes_m, labels, cw, cw_counts, *, position, method_spec, projection="PCA", n_total=None,
             rows=None, highlight=None, highlight_label=None, ids=None):
    """Points coloured by their code at one position; codewords on top; dead codes as red crosses.

    ``rows``: each point's row number in the data, for the hover, with its id (``ids``, the data's id
    column, when it has one). ``highlight``: a boolean mask of the
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
    fig = figure(TITLES["map"], sub, xtitle=f"{projection} 1", ytitle=f"{projection} 2", height=640,
                  legend_rows=1, wrap=160)
    hover_lab = [wrap(lab) for lab in labels] if labels is not None else [""] * shown
    rows = np.arange(shown) if rows is None else np.asarray(rows)
    id_col = [] if ids is None else [np.asarray([wrap(v, limit=80) for v in ids], dtype=object)]
    custom = np.column_stack([codes_m, np.asarray(hover_lab, dtype=object), rows] + id_col)
    hover = ("row %{customdata[2]}" + (" (id %{customdata[3]})" if ids is not None else "")
             + ": code %{customdata[0]}<br>%{customdata[1]}<extra></extra>")
    size = 4 if shown > 3000 else 6
    if highlight is None:
        fig.add_trace(go.Scattergl(
            x=P[:, 0], y=P[:, 1], mode="markers", name="items",
            marker=dict(size=size, color=codes_m % 20 if K > 20 else codes_m,
                        colorscale=cyclic_scale(min(K, 20)), cmin=0, cmax=min(K, 20) - 1, opacity=0.75,
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
