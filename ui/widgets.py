"""Widgets shared by pages: the quantizer settings form, headline metrics,
chart display and the data badge. Widget keys carry their page's prefix.
"""

from __future__ import annotations

import math

import streamlit as st

import vqcore
from vqcore.report import comparison_row, headline
from vqcore.spec import fit_problem, format_spec

from . import cache, catalogue, charts, sessions
from . import data as D
from . import state as S
from .text import md

METHODS = {
    "RQ": "Residual (RQ)",
    "PQ": "Product (PQ)",
    "OPQ": "Optimized product (OPQ)",
    "AQ": "Additive (AQ)",
    "GRVQ": "Generalized residual (GRVQ)",
    "VQ": "k-means (VQ)",
}
INITS = {
    "VQ": ["k-means++", "random"],
    "PQ": ["k-means++", "random"],
    "OPQ": ["auto", "eigenvalue allocation", "identity", "random rotation"],
    "RQ": ["progressive", "k-means++", "random"],
    "AQ": ["progressive", "k-means++", "random"],
    "GRVQ": ["from RQ", "from zeros"],
}
DEFAULT_ITERS = {"VQ": 25, "PQ": 25, "OPQ": 25, "RQ": 10, "AQ": 10, "GRVQ": 10}
DEFAULT_BEAM = {"RQ": 1, "AQ": 4, "GRVQ": 4}
TRAIN_ON = {"beam": "every path in the beam", "best": "the best path"}


def method_params(method, *, n_iter=None, init=None, beam=None, train_on="beam"):
    """The from_spec keyword arguments for one method's settings, as a sorted tuple (a cache key).

    The defaults here are the app's defaults everywhere (Quantize and Compare),
    so a result computed on one page is reused by the other. With beam 1 RQ has
    one path, so both ``train_on`` choices are the same fit and the same key.
    """
    n_iter = DEFAULT_ITERS[method] if n_iter is None else int(n_iter)
    init = INITS[method][0] if init is None else init
    p = {"n_iter": n_iter}
    if method == "RQ":
        p["train_on"] = train_on if beam is not None and beam > 1 else "beam"
    if method in ("RQ", "AQ"):
        if init == "progressive":
            p["clustering"] = "progressive"
        else:
            p["clustering"], p["init"] = "plain", init
    elif method == "OPQ":
        p["init_rotation"] = {"auto": "auto", "eigenvalue allocation": "eigenvalue_allocation",
                              "identity": "identity", "random rotation": "random"}[init]
    elif method == "GRVQ":
        p["init"] = {"from RQ": "rq", "from zeros": "zeros"}[init]
    else:
        p["init"] = init
    return tuple(sorted(p.items()))


def make_spec(method, M, K, beam=1):
    """The spec of the form's settings (vqcore.spec.format_spec; the beam only for methods that have one)."""
    return format_spec(method, M, K, beam if method in DEFAULT_BEAM else 1)


PAGES = [("app.py", "Home: data", ":material/home:"), ("pages/1_Quantize.py", "Quantize", ":material/tune:"),
         ("pages/2_Compare.py", "Compare", ":material/bar_chart:"),
         ("pages/3_Map.py", "Map", ":material/scatter_plot:"),
         ("pages/4_Learn.py", "Learn", ":material/school:"),
         ("pages/5_Training.py", "Collapse lab", ":material/monitoring:"),
         ("pages/6_Semantic_IDs.py", "Semantic IDs", ":material/account_tree:")]


PAGE_BLURBS = {  # what each page is for, as the home page lists them
    "Quantize": "fit one quantizer (k-means VQ, PQ, OPQ, RQ, AQ, GRVQ) and look inside it: usage, collapse, "
                "residual variance, entropy, mutual information, error per dimension; download the codes",
    "Compare": "several methods at equal bit budgets: rate-distortion, recall, entropy per position, "
               "error against stages and encoding time",
    "Map": "the data in 2-D coloured by its codes, with the codewords on top",
    "Learn": "how VQ, PQ and RQ partition the plane, on a 2-D toy",
    "Collapse lab": "train a codebook as neural tokenizers do (STE, EMA, NSVQ, FSQ) and watch codes die",
    "Semantic IDs": "the code tuples of a generative recommender as a tree of prefixes, with their collisions, "
                    "coverage and TIGER's de-duplication",
}

DEFAULT_SAMPLE = "MiniLM sentences"


def start_page(title=None, *, load_data=True):
    """Begin a page: its config, the sidebar, and the session (the shipped sample
    is loaded on the first visit). Returns (session state, active data or None)."""
    st.set_page_config(page_title=f"{title} · VQ Lens" if title else "VQ Lens",
                       page_icon=":material/search:", layout="wide")
    nav()
    cache.warm_up_vqcore()
    sessions.watch_this_session()
    state = st.session_state
    if not load_data:
        return state, None
    S.init(state, load_default=lambda: D.load_sample_into({}, cache.sample(DEFAULT_SAMPLE)))
    return state, state[S.DATA]


def release_upload(up):
    """Drop an uploaded file from Streamlit's store of uploads once it has been read.

    Streamlit keeps every uploaded file in memory until its session ends (which, for a closed
    tab, is ``server.disconnectedSessionTTL`` later). A file whose content is now held as an
    array is removed at once, as Streamlit's own chat input removes its files; the uploader
    still shows its name. Returns whether it was removed.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    store = getattr(ctx, "uploaded_file_mgr", None)
    if store is None or not hasattr(store, "remove_file"):
        return False
    store.remove_file(ctx.session_id, up.file_id)
    return True


def nav():
    """The sidebar's page list (Streamlit's own would call the home page "app")."""
    with st.sidebar:
        st.markdown("### VQ Lens")
        for path, label, icon in PAGES:
            try:
                st.page_link(path, label=label, icon=icon)
            except Exception:  # a page run on its own (AppTest) has no multipage context
                return


def show(fig, key=None):
    """Draw a figure with the app's own template (not Streamlit's theme)."""
    st.plotly_chart(fig, theme=None, key=key, config={"displaylogo": False})


def show_grid(figs, key_prefix, per_row=2):
    """Draw figures side by side, ``per_row`` to a row; each keyed by its title."""
    for i in range(0, len(figs), per_row):
        for col, fig in zip(st.columns(per_row), figs[i:i + per_row]):
            with col:
                show(fig, key=f"{key_prefix}_{charts.title_of(fig)}")


def data_badge(data):
    """One line saying which data the page works on."""
    n, d = data.shape
    opts = [o for o, on in (("centred", data.center), ("L2-normalised", data.normalize)) if on]
    extra = f" ({', '.join(opts)})" if opts else ""
    cat = catalogue.active(st.session_state)
    if cat is not None and cat.sample_rows < cat.n:
        extra += f": a random sample (seed {cat.seed}) of the catalogue's {cat.n:,} rows"
    st.caption(f"Data: **{md(data.name)}**, {n:,} × {d}{extra}. Change it on the home page.")


def _fmt(v, kind):
    if v is None:
        return "—"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "x":
        return f"{v:,.1f}×"
    if kind == "s":
        return f"{v:.2f} s"
    if kind == "db":
        return f"{v:.2f} dB"
    return f"{v:.4g}"


HEADLINE = [
    ("bits / vector", "bits / vector", "g", "Bits per encoded vector: M × log2 K."),
    ("compression", "compression", "x", "32-bit floats × d / bits per vector."),
    ("mse", "mse", "g", "mean_i ||x_i − x̂_i||², summed over dimensions."),
    ("relative error", "relative error", "g", "mse / mean_i ||x_i − mean||²: 1 means no better than the mean."),
    ("SNR (dB)", "SNR", "db", "−10 log10(relative error)."),
    ("recall@10", "recall@10", "pct", None),
    ("mean perplexity", "perplexity", "g", "2^H per position, averaged over positions: codes effectively used."),
    ("dead codes", "dead codes", "int", "Codes no item uses, summed over codebooks."),
    ("collision rate", "collision rate", "pct", "1 − distinct code tuples / n: items sharing their whole code."),
    ("fit seconds", "fit time", "s", None),
    ("codebook bytes", "codebook memory", "int", "Bytes the decoder holds: codebooks, mean (and rotation), float32."),
    ("encode madds / vector", "encode cost", "int",
     "Multiply-adds to encode one vector, worked out from the method's structure (beam, local search)."),
    ("encode µs / vector", "encode µs / vector", "g", "Measured encoding time of the base rows, per vector."),
]


def headline_metrics(report, *, per_row=5):
    h = headline(report)
    rec = report.get("recall")
    rows = [HEADLINE[i:i + per_row] for i in range(0, len(HEADLINE), per_row)]
    for row in rows:
        cols = st.columns(per_row)
        for col, (k, label, kind, help_) in zip(cols, row):
            if k == "recall@10" and rec:
                help_ = f"Share of {rec['n_queries']:,} queries whose exact nearest neighbour is among the 10 " \
                        f"nearest reconstructions (asymmetric distance). Queries: {rec['query_set']}."
            if k == "fit seconds":
                help_ = f"Time to learn the codebooks on {report.get('n_train', report['n']):,} training rows."
            col.metric(label, _fmt(h.get(k), kind), help=help_, border=True)


def setting_key(prefix, method, name):
    """The widget key of one method's setting: every method keeps its own values (issue 15)."""
    return f"{prefix}_{method}_{name}"


def kept(draw, *args, key, default, **kwargs):
    """Draw a widget (``st.selectbox``, ``c1.number_input``, ...) starting at its remembered value
    (ui.state.kept: passed as its own ``value`` / ``index`` / ``default``), and remember it after."""
    state = st.session_state
    start = S.kept(state, key, default)
    kind = getattr(draw, "__name__", "")
    if kind in ("selectbox", "radio"):
        options = list(args[1] if len(args) > 1 else kwargs["options"])
        kwargs["index"] = options.index(start) if start in options else 0
    elif kind in ("multiselect", "segmented_control", "pills"):
        kwargs["default"] = start
    else:
        kwargs["value"] = start
    value = draw(*args, key=key, **kwargs)
    S.remember(state, key)
    return value


def number_in(where, label, low, high, *, key, default, draw="number_input", **kw):
    """A number input (or ``draw="slider"``) within [low, high] starting at its remembered value,
    clamped to the bounds, which may move with the data or another setting."""
    state = st.session_state
    S.clamp(state, key, low, high)
    start = min(max(S.kept(state, key, default), low), high)
    value = getattr(where, draw)(label, low, high, value=start, key=key, **kw)
    S.remember(state, key)
    return value


def quantizer_form(prefix, data, *, default_method="RQ", default_M=8, default_nbits=8):
    """Method and settings widgets; returns (spec, params, train_size, seed) or raises VQLensError.

    Each method keeps its own settings (keys ``<prefix>_<method>_<name>``), and every
    value survives page switches (see ui.state.kept / remember). The training
    subsample and the seed are shared by the methods.
    """
    state = st.session_state
    n, d = data.shape
    method = kept(st.selectbox, "Method", list(METHODS), key=f"{prefix}_method", default=default_method,
                  format_func=METHODS.get)
    k = lambda name: setting_key(prefix, method, name)  # noqa: E731
    c1, c2, c3 = st.columns(3)
    if method == "VQ":
        M = 1
        c1.number_input("Codebooks M", 1, 1, 1, disabled=True, key=k("M"), help="k-means VQ has one codebook.")
    else:
        M = number_in(c1, "Codebooks M", 1, 64, key=k("M"), default=default_M,
                      help="Number of codebooks (stages for RQ/AQ, subspaces for PQ/OPQ; PQ/OPQ need M to divide d).")
    any_k = kept(c3.toggle, "Any K", key=k("anyK"), default=False,
                 help="Give K directly instead of bits (K need not be a power of two).")
    if any_k:
        K = number_in(c2, "Codes per codebook K", 2, 65536, key=k("K"), default=2 ** default_nbits)
    else:
        nbits = number_in(c2, "Bits per code", 1, 16, key=k("nbits"), default=default_nbits,
                          help="K = 2^bits codes per codebook.")
        K = 2 ** int(nbits)
    c4, c5, c6 = st.columns(3)
    beam = 1
    if method in DEFAULT_BEAM:
        beam = number_in(c4, "Beam", 1, 64, key=k("beam"), default=DEFAULT_BEAM[method],
                         help="Partial code tuples kept per stage while encoding (1 = greedy).")
    n_iter = number_in(c5, "Iterations", 1, 200, key=k("iters"), default=DEFAULT_ITERS[method],
                       help="Lloyd iterations of k-means (per stage for RQ/AQ).")
    init = kept(c6.selectbox, "Initialisation", INITS[method], key=k("init"), default=INITS[method][0],
                help="progressive: k-means on a growing number of principal dimensions (as faiss "
                     "does for RQ); OPQ: the starting rotation (auto tries the identity and the "
                     "eigenvalue allocation); GRVQ: start from a fitted RQ or from zero codebooks.")
    c7, c8, c9 = st.columns(3)
    default_train = min(int(state.get(S.TRAIN_SIZE, S.DEFAULT_TRAIN_SIZE)), n)
    train_size = number_in(c7, "Training subsample (rows)", 2, max(2, n), key=f"{prefix}_train",
                           default=default_train, step=1024,
                           help="Codebooks are learned on this many random rows; every row is then "
                                "encoded and measured. Smaller is faster.")
    seed = number_in(c8, "Seed", 0, 2**31 - 1, key=f"{prefix}_seed", default=int(state.get(S.SEED, 0)))
    train_on = "beam"
    if method == "RQ":
        train_on = kept(
            c9.selectbox, "Train stages on", list(TRAIN_ON), key=k("train_on"), default="beam",
            format_func=TRAIN_ON.get, disabled=beam == 1,
            help="With a beam wider than 1: the residuals each stage's k-means learns from. Every path "
                 "of the beam is what faiss does; the best path alone is faster and better on some data "
                 "(SIFT), worse on other (MiniLM sentence embeddings).")

    spec = make_spec(method, int(M), int(K), int(beam))
    params = method_params(method, n_iter=n_iter, init=init, beam=int(beam), train_on=train_on)
    return spec, params, int(train_size), int(seed)


def _init_label(params):
    """The Initialisation choice a from_spec params dict was made from (method_params' inverse)."""
    p = dict(params)
    if "init_rotation" in p:
        return {"eigenvalue_allocation": "eigenvalue allocation", "random": "random rotation"}.get(
            p["init_rotation"], p["init_rotation"])
    if p.get("clustering") == "progressive":
        return "progressive"
    return {"rq": "from RQ", "zeros": "from zeros"}.get(p.get("init"), p.get("init"))


def settings_text(q, params, *, train_size=None, seed=None):
    """Every setting that changes the fit besides the spec, in words: iterations, initialisation,
    beam, what RQ's stages train on, the training rows and the seed (read from the quantizer itself)."""
    p = q.get_params()
    parts = [f"{p['n_iter']} iteration{'s' if p['n_iter'] != 1 else ''}"
             + (" per stage" if q.additive and q.n_codebooks > 1 else ""),
             f"initialisation {_init_label(params)}"]
    if "beam_size" in p:
        parts.append(f"beam {p['beam_size']}")
    if p.get("train_on") and p.get("beam_size", 1) > 1:
        parts.append(f"stages trained on {TRAIN_ON[p['train_on']]}")
    if train_size is not None:
        parts.append(f"trained on {int(train_size):,} rows")
    if seed is not None:
        parts.append(f"seed {int(seed)}")
    return " · ".join(parts)


def faiss_text(q):
    """The nearest faiss index_factory string, or why there is none."""
    s = q.faiss_string()
    if s is not None:
        return f"`{s}`"
    K = q.codebook_size
    if K & (K - 1):
        return "none (K is not a power of two)"
    return f"none (faiss has no {q.method})"


def spec_caption(spec, params, *, d=None, train_size=None, seed=None):
    """Show the spec, the faiss string and every other setting; raise VQLensError for settings
    the fit would refuse."""
    q = vqcore.from_spec(spec, **dict(params))
    problem = fit_problem(q.method, q.n_codebooks, q.codebook_size, n_samples=train_size, n_features=d,
                          rows="training subsample")
    if problem:
        raise vqcore.VQLensError(problem)
    st.markdown(f"Spec `{q.spec()}` · faiss {faiss_text(q)} · {q.bits_per_vector:g} bits per vector  \n"
                + settings_text(q, params, train_size=train_size, seed=seed))
    return q


# ---------------------------------------------------------------- trained models (issue 18)

def faiss_export_problem(q):
    """Why the faiss download cannot be offered (faiss missing: ``pip install faiss-cpu``), or None."""
    from vqcore.export import faiss_export_problem as problem

    return problem(q)


def md_escape(text):
    """Untrusted text (a file name, a tensor name) safe to show inside markdown: :func:`ui.text.md`,
    the one escape every page uses."""
    return md(text)


MODEL_HELP = (f"Up to {D.MAX_UPLOAD_MB} MB. A trained tokenizer's codebooks: vector-quantize-pytorch ResidualVQ / "
              "VectorQuantize / GroupedResidualVQ, RQ-VAE (semantic IDs) quantizer layers, vqtorch, a state dict "
              "or a training checkpoint nesting one (.pt / .pth / .ckpt), .safetensors, or codebooks saved with "
              "numpy (.npz / .npy, (M, K, d) residual or (K, d)). Read without torch and without unpickling: "
              "nothing in the file runs.")


def model_form(prefix, data):
    """The Quantize page's "Trained model" source: the upload, what was found in the file, whether it
    fits the loaded data, a beam for residual models, and the seed of the held-out queries.

    Returns (model or None, beam, seed, ok): ``model`` is ``state[Q_MODEL]``; ``ok`` says it can run on
    the data loaded now. A bad file keeps the model loaded before; a mismatch keeps the last result.
    """
    state = st.session_state
    up = st.file_uploader("Trained model file", key=f"{prefix}_model_upload", help=MODEL_HELP)
    if up is not None:
        if state.get(S.Q_MODEL_SIG) != up.file_id:
            state[S.Q_MODEL_SIG] = up.file_id
            state[S.Q_MODEL_ERROR] = D.accept_model_upload(state, up.getvalue(), up.name)
        if state.get(S.Q_MODEL_ERROR):
            st.error(md_escape(state[S.Q_MODEL_ERROR]))  # it may list the file's tensor names
            old = state.get(S.Q_MODEL)
            st.caption(f"Still using the model loaded before: {md_escape(old['name'])}." if old
                       else "No model is loaded.")
    model = state.get(S.Q_MODEL)
    seed = int(state.get(S.SEED, 0))
    if model is None:
        st.info("Upload the file of a trained tokenizer (its codebooks): every view of this page, the Map, the "
                "Semantic IDs and the Compare pages then work on it.")
        return None, 1, seed, False
    q = model["quantizer"]
    info = getattr(q, "source_info_", {}) or {}
    st.markdown(f"**{md_escape(model['name'])}** ({md_escape(info.get('format', 'file'))}): found "
                f"{md_escape(getattr(q, 'layout_', type(q).__name__))}. As `{q.spec()}`: {q.n_codebooks} "
                f"codebook(s) of {q.codebook_size:,} codes, input d = {q.n_features_in_}, "
                f"{q.bits_per_vector:g} bits per vector; faiss {faiss_text(q)}.")
    notes = list(info.get("notes") or [])
    if notes:
        st.markdown("\n".join(f"- {md_escape(n)}" for n in notes))
    try:
        from vqcore.models import check_model_data

        check_model_data(q, data.X)
        ok = True
    except vqcore.VQLensError as exc:
        st.error(md_escape(f"{exc} The model stays loaded; load other data on the home page, or another model."))
        ok = False
    c1, c2, _ = st.columns(3)
    beam = model_beam_in(c1, prefix, q)
    seed = number_in(c2, "Seed", 0, 2**31 - 1, key=f"{prefix}_seed", default=seed,
                     help="Draws the held-out recall queries (the same as a fit with this seed, so results "
                          "compare on the Compare page). Nothing is trained.")
    return model, int(beam), int(seed), ok


def model_beam_in(where, prefix, q):
    """The beam a loaded residual model encodes with: a number input in ``where`` (key
    ``<prefix>_model_beam``) starting at the beam chosen on the Quantize page, else the model's own
    (``beam_size`` as loaded: 1, greedy, for the libraries' models); 1 for a model without a beam."""
    if "beam_size" not in q.get_params():
        return 1
    state = st.session_state
    own = int(getattr(q, "beam_size", 1) or 1)
    default = own if prefix == "q" else int(state.get("q_model_beam", S.kept(state, "q_model_beam", own)))
    return int(number_in(where, "Beam" if prefix == "q" else "Beam of your model", 1, 64,
                         key=f"{prefix}_model_beam", default=default,
                         help=f"The model's own setting is beam {own}" + (" (greedy, what the libraries do at "
                              "inference: the model's own codes)" if own == 1 else "") + ". A wider beam shows "
                              "what beam search would buy with the same codebooks."))


def beam_text(beam):
    """How a loaded model encodes, for a label or a table cell."""
    return "greedy (beam 1)" if int(beam) == 1 else f"beam {int(beam)}"


def pipeline_agreement(prefix, model, data, result):
    """Upload the codes the user's own pipeline produced for these rows, and say how many agree with the
    codes the loaded codebooks give (``result``, the model's run on the data loaded now)."""
    state = st.session_state
    with st.expander("Check against the codes your pipeline produced"):
        up = st.file_uploader(
            "Codes file (.npy, .csv, .tsv, .parquet)", key=f"{prefix}_pipeline_upload",
            help="One row per row of the loaded data, one column per level, level 0 first. Nothing is unpickled.")
        if up is not None:
            sig = (up.file_id, model["key"], data.key)
            if state.get(S.Q_PIPELINE_SIG) != sig:
                state[S.Q_PIPELINE_SIG] = sig
                state.pop(S.Q_PIPELINE, None)
                state[S.Q_PIPELINE_ERROR] = D.accept_pipeline_codes(state, up.getvalue(), up.name,
                                                                    model["quantizer"], data)
            if state.get(S.Q_PIPELINE_ERROR):
                st.error(md_escape(state[S.Q_PIPELINE_ERROR]))
        user = state.get(S.Q_PIPELINE)
        if user is None:
            st.caption("The loaded codebooks should give, row for row, the codes your pipeline gave: a mismatch "
                       "means other embeddings than the model's inputs, or a different encoder (a beam, a "
                       "projection, a normalisation) than the one read from the file.")
            return None
        q = result["quantizer"]
        beam = q.get_params().get("beam_size", 1)
        agree = cache.model_agreement(data.key, model["key"], beam, user["key"], result["codes"], user["codes"])
        n, same = agree["n_items"], agree["n_items"] - agree["n_changed"]
        text = (f"**{same:,} of {n:,} rows ({same / n:.1%})** of {md_escape(user['name'])} have the codes the "
                f"loaded codebooks give" + (f" (encoded with a beam of {beam})" if beam > 1 else "") + ".")
        (st.success if same == n else st.warning)(text)
        if same < n:
            st.caption("A mismatch means the wrong embeddings (not the ones the model encoded, or in another "
                       "order) or a different encoder than the one read from the file; set the beam to 1 to "
                       "encode as the libraries do.")
        levels = ", ".join(f"level {m}: {v:.1%}" for m, v in enumerate(agree["level_agreement"]))
        st.caption(f"Agreement per level: {levels}.")
        return agree


MODEL_METHOD = "Your model"  # the loaded model's name on the Compare charts


compare_row = comparison_row  # the row now lives in vqcore.report


def fit_notes(q):
    """What a fit did otherwise than its settings say, in the quantizer's own words (``fit_notes_``:
    e.g. GRVQ's refinement passes left out on too few training rows); empty for most fits."""
    return list(getattr(q, "fit_notes_", ()) or ())


def model_baselines(model):
    """The RQ and PQ specs at the loaded model's bits (same M and K; PQ only when M divides d)."""
    from vqcore.models import baseline_specs

    return [(vqcore.from_spec(spec).method, spec) for spec in baseline_specs(model, methods=("RQ", "PQ"))]


def model_fits(model, data):
    """None when the loaded model can encode the data loaded now, else why not (vqcore.check_model_data)."""
    from vqcore.models import check_model_data

    try:
        check_model_data(model, data.X)
    except vqcore.VQLensError as exc:
        return str(exc)
    return None
