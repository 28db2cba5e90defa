"""Collapse lab: train codebooks the way neural tokenizers do and watch codes die.

Two configurations, A and B, train on the same rows with the same seed; the
charts overlay them, so the effect of the settings that differ is plain.
"""

import pandas as pd
import streamlit as st

from ui import cache, charts
from ui import state as S
from ui import widgets as W
from vqcore import VQLensError
from vqcore.training import TRAINERS, TrainConfig

state, data = W.start_page("Collapse lab")
n, d = data.shape

RESULT = S.TRAIN_RESULT
NAMES = ("A", "B")
TRAINER_HELP = {
    "ste": "STE: straight-through VQ-VAE codebook loss + commitment, by SGD or Adam",
    "nsvq": "NSVQ: noise substitution (same codebook gradient as STE here)",
    "ema": "EMA: codewords as moving averages of their rows (VQ-VAE-2)",
    "lloyd": "Lloyd: full-batch k-means, one iteration per step (reference)",
    "fsq": "FSQ: fixed scalar grid on principal components (no codebook)",
}
LEVELS = {"8,5,5,5 (1,000 codes)": (8, 5, 5, 5), "8,6,5 (240 codes)": (8, 6, 5), "8,8,8 (512 codes)": (8, 8, 8),
          "7,5,5,5,5 (4,375 codes)": (7, 5, 5, 5, 5), "8,8,8,5,5,5 (64,000 codes)": (8, 8, 8, 5, 5, 5)}
# every widget of a configuration and its default: the first comparison below, configuration A
BASE = {"trainer": "ste", "optimizer": "adam", "lr": None, "init": "normal", "init_scale": 1.0, "reset": False,
        "reset_after": 20, "K": 256, "stages": 1, "batch": 256, "cosine": False, "levels": next(iter(LEVELS))}
PRESETS = {  # name: (A's changes to BASE, B's changes to BASE)
    "Dead-code reset off / on (STE, Adam, normal init)": ({}, {"reset": True}),
    "Dead-code reset off / on (STE, SGD, normal init)": ({"optimizer": "sgd"}, {"optimizer": "sgd", "reset": True}),
    "Normal init / data init (STE, Adam)": ({}, {"init": "data"}),
    "SGD / Adam (STE, data init)": ({"optimizer": "sgd", "init": "data"}, {"init": "data"}),
    "STE / EMA (data init)": ({"init": "data"}, {"trainer": "ema", "init": "data"}),
    "STE / NSVQ (Adam, data init)": ({"init": "data"}, {"trainer": "nsvq", "init": "data"}),
}


def _key(name, field):
    return f"train_{name.lower()}_{field}"


def _preset_values(preset):
    return {name: {**BASE, **changes} for name, changes in zip(NAMES, PRESETS[preset])}


def _apply_preset():
    for name, values in _preset_values(state["train_preset"]).items():
        for field, value in values.items():
            key = _key(name, field)
            state[S.KEEP + key] = value  # what a widget drawn again starts from (ui.state.kept)
            if key in state:  # a widget on the page takes the value now
                state[key] = value


def _widget(field, name, default, draw, *args, **kwargs):
    """Draw one widget of a configuration with its remembered value."""
    return W.kept(draw, *args, key=_key(name, field), default=default, **kwargs)


def config_form(name, defaults, steps, seed):
    """The settings of one configuration; returns its TrainConfig, or None after showing the error."""
    def w(field, draw, *args, **kwargs):
        return _widget(field, name, defaults[field], draw, *args, **kwargs)

    st.markdown(f"**Configuration {name}**")
    c1, c2 = st.columns(2)
    trainer = w("trainer", c1.selectbox, "Trainer", TRAINERS, format_func=lambda t: charts.TRAINER_NAMES[t],
                help="; ".join(TRAINER_HELP.values()) + ".")
    st.caption(TRAINER_HELP[trainer])
    kw = {"trainer": trainer, "steps": steps, "random_state": seed}
    if trainer == "fsq":
        kw["levels"] = LEVELS[w("levels", c2.selectbox, "Levels", list(LEVELS),
                                help="Cells per principal component; the implicit codebook is their product.")]
    else:
        kw["init"] = w("init", c2.selectbox, "Initialisation", ["normal", "data", "kmeans++"],
                       help="normal: N(0, scale²) codewords, torch.nn.Embedding's default (far from unit-norm "
                            "data: the classic collapse); data: K random training rows; kmeans++: greedy seeding.")
    c3, c4 = st.columns(2)
    if trainer in ("ste", "nsvq"):
        kw["optimizer"] = w("optimizer", c3.selectbox, "Optimizer", ["adam", "sgd"],
                            format_func={"adam": "Adam", "sgd": "SGD"}.get)
        kw["lr"] = w("lr", c4.number_input, "Learning rate", min_value=0.0, format="%g", step=0.0001,
                     placeholder="default: Adam 0.001, SGD 0.5",
                     help="Empty: the optimizer's default. The loss is summed over dimensions and averaged over "
                          "the batch, so SGD with lr ≤ 0.5 never steps past a cluster mean.")
    if trainer != "fsq":
        kw["codebook_size"] = w("K", c3.number_input, "Codes per stage K", 2, 65536, step=32)
        kw["n_stages"] = w("stages", c4.number_input, "Stages", 1, 16,
                           help="More than 1: a residual quantizer whose stages train jointly (RQ-VAE).")
    c5, c6 = st.columns(2)
    if trainer != "lloyd":
        kw["batch_size"] = w("batch", c5.number_input, "Batch size", 1, 65536, step=64,
                             help="Rows per step, drawn in shuffled epochs; at most the training rows.")
    if trainer != "fsq" and kw["init"] == "normal":
        kw["init_scale"] = w("init_scale", c6.number_input, "Init scale", min_value=1e-6, format="%g", step=0.1,
                             help="Standard deviation of the normal init.")
    if trainer in ("ste", "ema", "nsvq"):
        c7, c8 = st.columns(2)
        reset = w("reset", c7.toggle, "Dead-code reset",
                  help="Replace a code unused for this many steps by a random row of the current batch "
                       "(Jukebox, SoundStream).")
        after = w("reset_after", c8.number_input, "Reset after (steps)", 1, 100_000, disabled=not reset)
        kw["reset_after"] = int(after) if reset else None
    if trainer != "fsq":
        kw["cosine"] = w("cosine", st.checkbox, "Cosine codebook (unit-norm data and codewords, one stage)")
    try:
        return TrainConfig(**kw)
    except VQLensError as exc:
        st.error(W.md_escape(exc))
        return None


# ---------------------------------------------------------------- settings

st.title("Collapse lab")
W.data_badge(data)
st.markdown(
    "Train a codebook the way neural tokenizers do, in minibatch steps with VQ-VAE style update rules, on the "
    "loaded data, and watch codes die. Configurations **A** and **B** train on the same rows with the same "
    "seed, so the difference between their curves is the effect of the settings that differ."
)
with st.expander("What is trained, and how codes are counted"):
    st.markdown(
        "- **No encoder.** Each data row is the encoder output *z*; only the codebook learns.\n"
        "- **NSVQ without an encoder** adds noise of norm ‖z − e‖ to *z* in place of quantizing it. Its gradient "
        "for the codebook equals STE's codebook-loss gradient here, so NSVQ and STE differ only in the loss they "
        "report and in their random draws; the noise matters for the gradient of an *encoder*, which this lab "
        "does not have.\n"
        "- **Dead codes are counted on the training rows.** During training: codes no training row chose over "
        "the last epoch of batches (each training row once). At the end: codes no training row is nearest to. "
        "A codeword that starts on, or is reset to, a training row stays nearest to at least that row, so data "
        "inits and resets look better there than on new rows; the *other rows* numbers count the rows not "
        "trained on.\n"
        "- Runs are cached per data content and settings. **Stop** (or changing any setting) during a run "
        "ends it and keeps what it has learned so far."
    )

with st.container(border=True):
    t1, t2, t3, t4 = st.columns([4, 2, 2, 2])
    first = next(iter(PRESETS))
    W.kept(t1.selectbox, "Start from a comparison", list(PRESETS), key="train_preset", default=first,
           on_change=_apply_preset, help="Sets both configurations; change any setting afterwards.")
    default_train = min(int(state[S.TRAIN_SIZE]), n)
    train_size = W.number_in(t2, "Training rows", 2, max(2, n), key="train_rows", default=default_train, step=1024,
                             help="Both configurations train on the same random subsample of this many rows.")
    steps = W.number_in(t3, "Steps", 1, 100_000, key="train_steps", default=400, step=100,
                        help="Minibatch steps (Lloyd: full-batch iterations).")
    seed = W.number_in(t4, "Seed", 0, 2**31 - 1, key="train_seed", default=int(state[S.SEED]),
                       help="Draws the training rows, the initial codebooks and the batches of both.")

    defaults = _preset_values(state["train_preset"])
    cols = st.columns(2, gap="large")
    configs = {}
    for name, col in zip(NAMES, cols):
        with col:
            configs[name] = config_form(name, defaults[name], int(steps), int(seed))
    ready = all(c is not None for c in configs.values())
    b1, b2, _ = st.columns([1, 1, 6])
    run_clicked = b1.button("Run both", key="train_run", type="primary", disabled=not ready)
    stop_slot = b2.empty()
    progress_cols = st.columns(2, gap="large")

cache.wait_for_training()  # a run stopped by the click that started this one stores what it learned
args = {"data_key": data.key, "train_size": int(train_size), "configs": configs}
if run_clicked:
    runs = {}
    state[RESULT] = {**args, "runs": runs}
    stop_slot.button("Stop", key="train_stop", help="End the run now and keep what it has learned.")
    with cache.training_session():
        for name, col in zip(NAMES, progress_cols):
            try:
                cache.train_with_progress(data.key, configs[name], int(train_size), data.X, name=name,
                                          slot=col.empty(), store=runs)
            except VQLensError as exc:
                col.error(f"{name}: {exc}")
    stop_slot.empty()

# ---------------------------------------------------------------- results

stored = state.get(RESULT)
if not stored or not stored["runs"]:
    st.info("Press **Run both**. The default compares a codebook of 256 codes trained by STE with Adam from a "
            "normal init, without (A) and with (B) dead-code reset; 400 steps take about a second each.")
    st.stop()
if stored["data_key"] != data.key:
    st.info("The last runs were trained on other data; press **Run both** to train on the data loaded now.")
    st.stop()
if {k: stored[k] for k in args} != args:
    st.caption("Showing the last runs; the settings above have changed since. Press **Run both** to apply them.")

results = stored["runs"]
runs = {name: res["run"] for name, res in results.items()}
missing = [name for name in NAMES if name not in runs]
if missing:
    st.caption(f"Configuration {' and '.join(missing)} did not run (stopped, or an error above).")

st.subheader("How the runs ended")
per = lambda v, f: " / ".join(format(x, f) for x in v)  # noqa: E731 (one value per stage)
table = {}
for name, res in results.items():
    run, fin, other = res["run"], res["run"].final, res["other"]
    table[name] = {
        "settings": charts.training_description(run.config),
        "steps run": f"{run.steps_run:,} of {run.config.steps:,}" + (" (stopped early)" if run.stopped_early else ""),
        "mse": f"{fin['mse']:.4g}",
        "relative error (mse / variance)": f"{fin['relative']:.3f}",
        "perplexity (at most K)": per(fin["perplexity"], ".1f"),
        "dead codes on the training rows": per(fin["dead_codes"], ","),
        "dead codes on the other rows": per(other["dead_codes"], ",") if other else "— (every row trained)",
        "codes reset in all": f"{res['codes_reset']:,}",
        "training time": f"{run.seconds:.2f} s",
    }
st.table(pd.DataFrame(table))
first = next(iter(results.values()))
st.caption(f"Trained on the same {first['n_train']:,} random rows (seed {first['run'].config.random_state}); "
           "measured at the end with the learned codebooks"
           + (f", on those rows and on the other {first['n_other']:,}." if first["n_other"] else ", on every row."))

stage = 0
max_stages = max(run.n_stages for run in runs.values())
if max_stages > 1:
    if state.get("train_stage", 1) > max_stages:
        state["train_stage"] = max_stages
    stage = st.number_input("Stage shown by the code charts", 1, max_stages, key="train_stage",
                            help="Residual runs: the stage whose dead codes and usage the charts below show.") - 1

figs = charts.training_figures(runs, stage=int(stage))
for i in range(0, 4, 2):
    g1, g2 = st.columns(2)
    with g1:
        W.show(figs[i], key=f"train_chart_{i}")
    with g2:
        W.show(figs[i + 1], key=f"train_chart_{i + 1}")
W.show(figs[4], key="train_chart_4")
