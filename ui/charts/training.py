"""Charts of the Collapse lab: loss, perplexity, active codes and usage over training."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import COLORS, IDEAL, TITLES, figure

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
    fig = figure(TITLES["train_loss"], sub, xtitle="step", ytitle="loss per row (log scale)",
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
    fig = figure(TITLES["train_perplexity"],
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
    fig = figure(TITLES["train_codes"], sub, xtitle="step", ytitle="codes",
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
    fig = figure(TITLES["train_usage_at"], sub, xtitle="code rank (most used first)",
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
    figure(TITLES["train_usage"],
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
