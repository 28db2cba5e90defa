"""Quantize: fit one quantizer on the loaded data and look inside it."""

from functools import partial

import streamlit as st

from ui import cache, charts
from ui import catalogue as C
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore import VQLensError

state, data = W.start_page("Quantize")

st.title("Quantize")
W.data_badge(data)
cat = C.active(state)  # a catalogue of the server's data folder: the data is its sample
if cat is not None:
    st.caption(f"Catalogue **{W.md_escape(cat.name)}**: the fit uses its sample; **Run** then encodes and measures "
               f"every one of its {cat.n:,} rows, streamed in chunks.")

SOURCES = {"fit": "Fit a quantizer", "model": "Trained model (upload its file)"}
source = W.kept(st.radio, "Source", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="q_source",
                default="fit", help="Fit one of VQ Lens's quantizers on the data, or load the codebooks of a "
                                    "tokenizer trained elsewhere and look inside it.")
model = None
with st.container(border=True):
    if source == "fit":
        spec, params, train_size, seed = W.quantizer_form("q", data)
        try:
            W.spec_caption(spec, params, d=data.shape[1], train_size=train_size, seed=seed)
            spec_ok = True
        except VQLensError as exc:
            st.error(W.md_escape(exc))
            spec_ok = False
        args = S.RunArgs(key=data.key, spec=spec, params=params, train_size=train_size, seed=seed)
    else:
        model, beam, seed, spec_ok = W.model_form("q", data)
        args = D.model_args(data.key, model, beam, seed) if model is not None else None
    run_clicked = st.button("Run", key="q_run", type="primary", disabled=not spec_ok)

if run_clicked:
    try:
        if model is not None:
            with st.spinner(f"Encoding every row with {model['quantizer'].spec()}…"):
                res = cache.run_model(data.key, model["key"], beam, seed, model["quantizer"], data.X)
            state[S.Q_RESULT] = S.QuantizeResult(args=args, result=res, data_name=data.name,
                                                 model=S.ModelRef(key=model["key"], name=model["name"]))
        elif cat is None:
            res = cache.run_with_progress(data.key, spec, params, train_size, seed, data.X)
            state[S.Q_RESULT] = S.QuantizeResult(args=args, result=res, data_name=data.name)
        else:  # the sample's fit is kept before the pass over every row, which the person may stop
            def every_row(res):
                state[S.Q_RESULT] = S.QuantizeResult(args=args, result=res, data_name=data.name)
                state[S.Q_WHOLE] = C.whole_with_progress(state, cat, state[S.Q_RESULT])
                return C.whole_status(state[S.Q_WHOLE])

            cache.run_with_progress(data.key, spec, params, train_size, seed, data.X, then=every_row)
        if cat is not None and model is not None:
            state[S.Q_WHOLE] = C.whole_with_progress(state, cat, state[S.Q_RESULT])
    except VQLensError as exc:
        st.error(W.md_escape(exc))

stored = state.get(S.Q_RESULT)
if stored is None:
    st.info("Choose a method and its settings, then press **Run** to fit the quantizer the line above the "
            "button describes (the default, RQ8x8, takes a few seconds on the sample).")
    st.stop()
if stored["args"]["key"] != data.key:
    st.info("The last result was computed on other data; press **Run** to quantize the data loaded now.")
    st.stop()

res = stored["result"]
report, q = res["report"], res["quantizer"]
whole = C.whole_for(state, stored) if cat is not None else None
if cat is not None and whole is None:
    stopped, said = C.stopped_for(state, stored), st.empty()
    if stopped:
        said.warning(f"The pass over every row was stopped at {stopped['fraction']:.0%} "
                     f"({W.md_escape(stopped['message'])}); nothing of it was kept.")
    st.info(f"The numbers below are of the sample of {cat.sample_rows:,} rows: measure every row of the catalogue.")
    if st.button(f"Encode and measure all {cat.n:,} rows", key="q_whole_run", type="primary"):
        said.empty()  # (a new pass)
        try:
            whole = state[S.Q_WHOLE] = C.whole_with_progress(state, cat, stored)
        except VQLensError as exc:
            st.error(W.md_escape(exc))
if whole is not None:
    report = whole["report"]  # every number, chart and report download below is of the whole catalogue
    ov = C.whole_overview(report)
if args is not None and stored["args"] != args:
    st.caption(f"Showing the last run, **{report['spec']}**; the settings above have changed since. "
               "Press Run to apply them.")

loaded = stored.get("model")
rec = report.get("recall")
recall_text = f"Recall: {rec['query_set']}." if rec else "No recall: too few rows to hold queries out."
if loaded:
    st.subheader(f"Your model {report['spec']} on {report['n']:,} items")
    st.caption(f"{W.md_escape(loaded['name'])}: {W.md_escape(q.layout_)}. Nothing was trained: every one of the "
               f"{report['n']:,} rows is encoded with the model's codebooks"
               + (f" (beam {q.beam_size})" if getattr(q, "beam_size", 1) > 1 else " (greedy, as at inference)")
               + f" and measured. {recall_text}")
    if model is not None and model["key"] == loaded["key"]:
        W.pipeline_agreement("q", model, data, res)
elif whole is not None:
    st.subheader(f"{report['spec']} on the whole catalogue: {report['n']:,} items")
    st.caption(
        f"{W.settings_text(q, stored['args']['params'], seed=stored['args']['seed'])}. Trained on "
        f"{report['n_train']:,} random rows of the sample of {cat.sample_rows:,}; every one of the {report['n']:,} "
        f"rows of {W.md_escape(cat.name)} is encoded and measured, streamed in chunks of {whole['chunk_rows']:,} "
        f"rows ({whole['seconds']:.1f} s). {recall_text}")
    st.markdown(f"Collision rate over all {report['n']:,} items: **{ov['collision_rate']:.4%}** "
                f"({ov['colliding']:,} items repeat an earlier item's whole code; {ov['distinct']:,} distinct "
                f"codes; the largest group holds {ov['largest_group']:,}).")
else:
    st.subheader(f"{report['spec']} on {report['n']:,} items")
    st.caption(
        f"{W.settings_text(q, stored['args']['params'], seed=stored['args']['seed'])}. "
        f"Trained on {report.get('n_train', report['n']):,} random rows; every one of the {report['n']:,} rows "
        f"is encoded and measured. {recall_text}"
    )
for note in W.fit_notes(q):  # the fit did otherwise than its settings say
    st.info(W.md_escape(note))
W.headline_metrics(report)

W.show_grid(charts.quantize_figures(report), "q_chart")
if whole is not None and ov["groups"]:
    with st.expander(f"The {len(ov['groups'])} largest collision groups of the catalogue"):
        st.dataframe(C.group_rows(ov["groups"]), hide_index=True, width="stretch")

if report["method"] == "GRVQ":  # what each way of storing the norm term of fast search costs and buys
    with st.expander("GRVQ's norm options: bits against error"):
        st.caption("Fast Euclidean search needs ||x̂||² per item. none: computed from the codes (0 bits); "
                   "float: stored (32 bits); quantized: stored in norm_bits bits; regularized: codebooks refitted "
                   "so a constant stands for the cross terms (0 bits, some reconstruction error). Measured on up "
                   "to 5,000 base rows with this fit's codebooks.")
        if st.button("Measure the options", key="q_grvq_norms"):
            try:
                opts = cache.grvq_norm_options(**args, _X=data.X)
                st.dataframe([{"norm": o["norm"], "bits / vector": o["bits_per_vector"],
                               "relative error": o["relative"], "norm error (relative)": o["relative_norm_error"]}
                              for o in opts], hide_index=True)
            except VQLensError as exc:
                st.error(W.md_escape(exc))

st.subheader("Downloads")
sample_only = ""
if cat is not None:
    sample_only = " (sample)"
    w0, w1 = st.columns([1, 2])
    problem = C.codes_download_problem(whole) if whole is not None else "run it on every row first."
    if problem:
        w0.caption(f"Codes of every row: {problem}")
    else:
        w0.download_button(f"Codes of all {whole['codes_rows']:,} rows (.parquet)",
                           partial(C.read_codes_file, whole["codes_path"]), f"{report['spec']}_codes_all.parquet",
                           "application/octet-stream", key="q_dl_codes_all", on_click="ignore",
                           help="Every row of the catalogue: row (its number, from 0), the id column when the "
                                "data has one, one column per level (level_0, …).")
    w1.caption(f"Buttons marked *(sample)* hold the {cat.sample_rows:,} rows of the sample only (numbered by their "
               f"catalogue rows), not the catalogue's {cat.n:,}. On the server, the codes and report of every row: "
               "download the codebooks and run")
    w1.code(C.command_line(cat, f"{report['spec']}_codebooks.npz"), language="bash")
# the files are made when a button is clicked (callables), not on every rerun: the
# compressed codebooks alone take a tenth of a second and megabytes sent to the browser;
# a click does not rerun the page (on_click="ignore"), so one download never cuts off the next
d0, d1, d2, d3, d4, d5 = st.columns(6)
base = report["spec"]
codes = res["codes"]
spec_args = {"train_size": stored["args"]["train_size"], "seed": stored["args"]["seed"],
             "data_name": stored["data_name"], "data_key": stored["args"]["key"]}
with_id = ", its id" if data.ids is not None else ""
d0.download_button(f"Codes{sample_only} (.csv)", partial(D.codes_csv, codes, data.row_numbers(), data.labels, data.ids),
                   f"{base}_codes.csv", "text/csv", key="q_dl_codes_csv", on_click="ignore",
                   help=f"One line per row of the data: its row number (from 0){with_id}, its codes, one column per "
                        "level (code_0, code_1, …; unpacked, unlike a faiss index, which packs RQ codes into bits)"
                        + (" and its label." if data.labels is not None else "."))
d1.download_button(f"Codes{sample_only} (.npz)", partial(D.codes_npz, codes, data.row_numbers(), data.ids),
                   f"{base}_codes.npz",
                   "application/octet-stream", key="q_dl_codes", on_click="ignore",
                   help="codes: (n, M), one row per row of the data; row: each one's row number (from 0)"
                        + ("; id: each one's id." if data.ids is not None else "."))
d2.download_button("Codebooks (.npz)", partial(D.codebooks_npz, q), f"{base}_codebooks.npz",
                   "application/octet-stream", key="q_dl_books", on_click="ignore",
                   help="The codewords in data space: a model with projections or groups needs its own file "
                        "to encode as it does." if hasattr(q, "encoder_") else
                        "codebooks (centred on the data mean, which it holds too; and the rotation for OPQ), with the "
                        "spec and settings: vqcore.load_quantizer (or "
                        "the Trained model source above) reads it back as the same quantizer.")
d3.download_button("Report (JSON)", partial(D.report_json, report), f"{base}_report.json", "application/json",
                   key="q_dl_json", on_click="ignore")
d4.download_button("Report (CSV)", partial(D.report_csv, report), f"{base}_report.csv", "text/csv",
                   key="q_dl_csv", on_click="ignore")
d5.download_button("Spec (JSON)", partial(D.spec_json, q, report, **spec_args),
                   f"{base}_spec.json", "application/json", key="q_dl_spec", on_click="ignore")

e0, e1, e2, e3, _ = st.columns(5)
faiss_problem = W.faiss_export_problem(q)
if faiss_problem:
    e0.caption(f"faiss index: {faiss_problem}")
else:
    e0.download_button(f"faiss index{sample_only}", partial(D.faiss_index, q, codes), f"{base}.faissindex",
                       "application/octet-stream", key="q_dl_faiss", on_click="ignore",
                       help=f"faiss {q.faiss_string() or 'index'} with these codebooks, holding every row by its "
                            "codes (bit-packed by faiss). faiss.read_index(path) loads it; its search ranks the "
                            "reconstructions as VQ Lens's recall does.")
rows = data.row_numbers() if data.rows is not None else None
e1.download_button(f"ID table{sample_only} (.parquet)",
                   partial(D.id_table, codes, "parquet", rows, data.labels, data.ids),
                   f"{base}_ids.parquet", "application/octet-stream", key="q_dl_ids_parquet", on_click="ignore",
                   help="Item -> semantic ID: row" + (", id" if data.ids is not None else "")
                        + ", one column per level (level_0, …), semantic_id (joined by _)"
                        + (", text." if data.labels is not None else "."))
e2.download_button(f"ID table{sample_only} (.csv)", partial(D.id_table, codes, "csv", rows, data.labels, data.ids),
                   f"{base}_ids.csv", "text/csv", key="q_dl_ids_csv", on_click="ignore",
                   help="As the parquet file; texts a spreadsheet would run as a formula start with '.")
e3.download_button(f"Prefix trie{sample_only} (JSON)", partial(D.trie_json, codes), f"{base}_trie.json",
                   "application/json", key="q_dl_trie", on_click="ignore",
                   help="Each prefix of the IDs: its children and the count of items under it (the structure "
                        "constrained decoding walks).")
