"""Compare: several quantizers on the same data at the same bit budgets."""

from functools import partial

import pandas as pd
import streamlit as st

from ui import cache, charts
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore import VQLensError
from vqcore.report import entropy_profile
from vqcore.spec import budget_specs

state, data = W.start_page("Compare")
n, d = data.shape

st.title("Compare")
W.data_badge(data)
st.caption("Each method gets the same bits per vector (M codebooks × bits per code) and its default settings; "
           "all are trained on the same training subsample and measured on the same rows and held-out queries.")

with st.container(border=True):
    c1, c2, c3 = st.columns([3, 3, 2])
    methods = W.kept(c1.multiselect, "Methods", list(W.METHODS), format_func=W.METHODS.get,
                     key="cmp_methods", default=["PQ", "RQ"],
                     help="OPQ and AQ learn more (a rotation; joint codebooks) and take tens of seconds "
                                  "per fit on a few thousand rows; PQ and RQ take a few seconds.")
    budgets = W.kept(c2.multiselect, "Bit budgets (bits per vector)", [8, 16, 24, 32, 48, 64, 96, 128],
                     key="cmp_bits", default=[16, 32, 64])
    nbits = W.kept(c3.selectbox, "Bits per code (K = 2^bits)", [4, 5, 6, 7, 8, 10, 12], key="cmp_nbits", default=8)
    c4, c5, c6 = st.columns([3, 3, 2])
    default_train = min(int(state[S.TRAIN_SIZE]), n)
    train_size = W.number_in(c4, "Training subsample (rows)", 2, max(2, n), key="cmp_train", default=default_train,
                             step=1024)
    seed = W.number_in(c5, "Seed", 0, 2**31 - 1, key="cmp_seed", default=int(state[S.SEED]))

    specs, skipped = budget_specs(methods, budgets, nbits, n_samples=int(train_size), n_features=d,
                                  beam_sizes=W.DEFAULT_BEAM)
    plan = [(method, bits, spec, W.method_params(method)) for method, bits, spec in specs]
    st.caption(f"{len(plan)} run(s): " + ", ".join(p[2] for p in plan) if plan else "Nothing to run.")
    run_clicked = c6.button("Run", key="cmp_run", type="primary", disabled=not plan)
    if skipped:
        st.caption("Skipped: " + "; ".join(skipped) + ".")

store = state[S.CMP_RESULTS]


def _key(spec, params):
    return (data.key, spec, params, int(train_size), int(seed))


if run_clicked:
    todo = [p for p in plan if _key(p[2], p[3]) not in store]
    bar = st.progress(0.0, text="Starting…")
    for i, (method, _bits, spec, params) in enumerate(todo):
        step = f"Fitting {spec} ({i + 1} of {len(todo)})"
        bar.progress(i / len(todo), text=f"{step}…")

        def draw(fraction, message, i=i, step=step, start=0.0, share=0.8):
            # within this method's slot of the bar: the fit, then encoding every row
            bar.progress((i + start + share * fraction) / len(todo), text=f"{step}: {message}…")

        try:
            with cache.drawing_progress(draw) as on_progress:
                cache.fit(data.key, spec, params, int(train_size), int(seed), data.X, on_progress=on_progress)
            with cache.drawing_progress(partial(draw, start=0.8, share=0.2)) as on_progress:
                res = cache.run(data.key, spec, params, int(train_size), int(seed), data.X, on_progress=on_progress)
        except VQLensError as exc:
            st.error(W.md_escape(f"{spec}: {exc}"))
            continue
        store[_key(spec, params)] = {**W.compare_row(res["report"], method), "notes": W.fit_notes(res["quantizer"])}
    bar.progress(1.0, text=f"Done: {len(todo)} fitted, {len(plan) - len(todo)} reused.")

rows = [store[_key(p[2], p[3])] for p in plan if _key(p[2], p[3]) in store]

# ---------------------------------------------------------------- the trained model of the Quantize page
model = state.get(S.Q_MODEL)
if model is not None:
    mq = model["quantizer"]
    with st.container(border=True):
        problem = W.model_fits(mq, data)
        if problem:
            st.caption(f"Your model ({W.md_escape(model['name'])}) is not compared: {W.md_escape(problem)}")
        else:
            baselines = W.model_baselines(mq)
            b1, b2 = st.columns([3, 2])
            beam = W.model_beam_in(b2, "cmp", mq)
            encoding = W.beam_text(beam)
            include = W.kept(b1.toggle, f"Include your model: {W.md_escape(model['name'])} ({mq.spec()}, "
                             f"{mq.bits_per_vector:g} bits per vector, {encoding})", key="cmp_model", default=True,
                             help="The trained model loaded on the Quantize page, as one method among the fitted "
                                  "ones, measured on the same rows and held-out queries (same seed), encoding "
                                  "with the beam beside.")
            fit_baselines = b2.button(f"Fit {' and '.join(s for _, s in baselines)} at the same bits as my model",
                                      key="cmp_fit_baselines", disabled=not baselines,
                                      help="Plain RQ (k-means per stage) and PQ with the model's M and K, "
                                           "trained on the same training subsample, with default settings.")
            if fit_baselines:
                with st.spinner("Fitting " + ", ".join(s for _, s in baselines) + "…"):
                    for method, spec in baselines:
                        params = W.method_params(method)
                        try:
                            res = cache.run(data.key, spec, params, int(train_size), int(seed), data.X)
                        except VQLensError as exc:
                            st.error(W.md_escape(f"{spec}: {exc}"))
                            continue
                        store[_key(spec, params)] = W.compare_row(res["report"], method)
                state[S.CMP_BASELINES][model["key"]] = [s for _, s in baselines]
            if include:
                res = cache.run_model(data.key, model["key"], beam, int(seed), mq, data.X)
                rows.append({**W.compare_row(res["report"], W.MODEL_METHOD), "encoding": encoding})
                for method, spec in baselines:
                    k = _key(spec, W.method_params(method))
                    if spec in state[S.CMP_BASELINES].get(model["key"], ()) and k in store \
                            and store[k] not in rows:
                        rows.append(store[k])
if not rows:
    st.info("Pick methods and budgets, then press **Run**. Results are kept: changing the selection later only "
            "fits what has not been fitted yet.")
    st.stop()
missing = sum(_key(p[2], p[3]) not in store for p in plan)
if missing:
    st.caption(f"{missing} selected run(s) not computed yet; press Run to add them.")

R = W.kept(st.segmented_control, "Recall at R", ["1", "10", "100"], key="cmp_R", default="10", required=True)
figs = charts.compare_figures(rows, R or "10")
g1, g2 = st.columns(2)
with g1:
    W.show(figs[0], key="cmp_rd")
with g2:
    W.show(figs[1], key="cmp_recall")
W.show(figs[2], key="cmp_entropy")
entropy_note = entropy_profile(rows)["sentence"]
if entropy_note:
    st.caption(entropy_note)
g3, g4 = st.columns(2)
with g3:
    W.show(figs[4], key="cmp_stages")
with g4:
    W.show(figs[3], key="cmp_fit")
W.show(charts.error_vs_encode_cost(rows), key="cmp_cost")

# GRVQ's Figure 2, right: the additive methods' codebooks re-encoded with wider and wider beams
beam_plan = {}
for method, bits, spec, params in plan:
    if method in ("RQ", "GRVQ", "AQ") and bits // nbits >= 2 and _key(spec, params) in store:
        beam_plan[method] = (spec, params)  # the plan is sorted by budget: the largest stays
beams = state[S.CMP_BEAMS]
with st.container(border=True):
    b1, b2 = st.columns([5, 1])
    b1.markdown("**Error against encoding time** (GRVQ's Figure 2, right)")
    b1.caption("Re-encodes up to 5,000 rows with the fitted codebooks of each additive method (its largest "
               "budget) by beam search with beams 1, 2, 4, 8 and 16, timing each. A wider beam costs more "
               "time and usually lowers the error, not always: RQ's later codebooks were trained on the "
               "residuals of its own beam, so a path a wider beam prefers early can end worse. AQ is "
               "measured without its local search, so all methods run the same search.")
    todo = [(spec, params) for spec, params in beam_plan.values() if _key(spec, params) not in beams]
    measure = b2.button("Measure", key="cmp_beams_run", disabled=not todo,
                        help="Takes a few seconds per method." if beam_plan else
                             "Run RQ, GRVQ or AQ with at least 2 codebooks first.")
    if measure:
        bar = st.progress(0.0, text="Starting…")
        for i, (spec, params) in enumerate(todo):
            bar.progress(i / len(todo), text=f"Encoding with {spec}'s codebooks, beams 1 to 16 ({i + 1} of "
                                             f"{len(todo)})…")
            try:
                beams[_key(spec, params)] = cache.beam_sweep(data.key, spec, params, int(train_size), int(seed),
                                                              data.X)
            except VQLensError as exc:
                st.error(W.md_escape(f"{spec}: {exc}"))
        bar.progress(1.0, text="Done.")
    sweeps = {spec: (method, beams[_key(spec, params)]) for method, (spec, params) in beam_plan.items()
              if _key(spec, params) in beams}
    if sweeps:
        W.show(charts.error_vs_encode_time(sweeps), key="cmp_beams")
    elif not beam_plan:
        st.caption("No additive method with at least 2 codebooks among the results: add RQ, GRVQ or AQ.")

table = pd.DataFrame([{
    "method": r["method"], "spec": r["spec"], **({"encoding": r["encoding"]} if "encoding" in r else {}),
    "bits": r["bits"], "relative error": r["relative"], "mse": r["mse"],
    **{f"recall@{k}": v for k, v in (r["recall"] or {}).items()},
    "effective bits": r["effective_bits"], "dead codes": r["dead"], "collision rate": r["collision_rate"],
    "fit s": r["fit_seconds"], "codebook bytes": r.get("codebook_bytes"),
    "encode madds / vector": r.get("encode_madds"), "encode µs / vector": r.get("encode_us"),
} for r in rows])
st.dataframe(table, hide_index=True, width="stretch")
for r in rows:  # a fit that did otherwise than its settings say
    for note in r.get("notes") or ():
        st.caption(W.md_escape(f"{r['spec']}: {note}"))
st.download_button("Table (CSV)", D.table_csv(table), "compare.csv", "text/csv", key="cmp_dl", on_click="ignore")
