"""Charts of the Semantic IDs page: the code tree, prefix collisions, coverage, groups, agreement of two code sets."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ..text import plotly_text
from .quantize import codebook_collapse, codebook_usage, entropy_per_position
from .theme import COLORS, IDEAL, OTHER, TITLES, figure, wrap

# === section: semantic IDs (pages/6_Semantic_IDs.py) ===

TITLES.update({
    "sid_tree": "Code tree",
    "sid_prefix": "Prefix collisions vs uniform codes",
    "sid_coverage": "Coverage per depth",
    "sid_groups": "Largest collision groups",
})
SEMANTIC_TITLES = [TITLES[k] for k in ("usage", "collapse", "entropy", "sid_tree", "sid_prefix", "sid_coverage",
                                       "sid_groups")]


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
    return "<br>".join("• " + wrap(lab, width, limit) for lab in labels)


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
    fig = figure(TITLES["sid_tree"], sub, height=640, wrap=130)
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
    fig = figure(TITLES["sid_prefix"], sub, xtitle="depth d (first d levels)",
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
    fig = figure(TITLES["sid_coverage"],
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
        fig = figure(TITLES["sid_groups"], "no two items share a whole code tuple",
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
    fig = figure(TITLES["sid_groups"], sub, xtitle="code tuple (largest groups first)", ytitle="items sharing it")
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
    fig = figure(TITLES["id_agreement"],
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
