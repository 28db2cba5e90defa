"""Quantize: fit one quantizer on the loaded data and look inside it."""

from functools import partial

import streamlit as st

from ui import cache, charts
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore import VQLensError

state, data = W.start_page("Quantize")

st.title("Quantize")
W.data_badge(data)

with st.container(border=True):
    spec, params, train_size, seed = W.quantizer_form("q", data)
    try:
        W.spec_caption(spec, params, d=data.shape[1], train_size=train_size, seed=seed)
        spec_ok = True
    except VQLensError as exc:
        st.error(str(exc))
        spec_ok = False
    run_clicked = st.button("Run", key="q_run", type="primary", disabled=not spec_ok)

args = {"key": data.key, "spec": spec, "params": params, "train_size": train_size, "seed": seed}
if run_clicked:
    try:
        res = cache.run_with_progress(data.key, spec, params, train_size, seed, data.X)
        state[S.Q_RESULT] = {"args": args, "result": res, "data_name": data.name}
    except VQLensError as exc:
        st.error(str(exc))

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
if stored["args"] != args:
    st.caption(f"Showing the last run, **{report['spec']}**; the settings above have changed since. "
               "Press Run to apply them.")

st.subheader(f"{report['spec']} on {report['n']:,} items")
rec = report.get("recall")
st.caption(
    f"{W.settings_text(q, stored['args']['params'], seed=stored['args']['seed'])}. "
    f"Trained on {report.get('n_train', report['n']):,} random rows; every one of the {report['n']:,} rows is "
    "encoded and measured. " + (f"Recall: {rec['query_set']}." if rec else "No recall: too few rows to hold "
                                                                             "queries out.")
)
W.headline_metrics(report)

W.show_grid(charts.quantize_figures(report), "q_chart")

st.subheader("Downloads")
# the files are made when a button is clicked (callables), not on every rerun: the
# compressed codebooks alone take a tenth of a second and megabytes sent to the browser;
# a click does not rerun the page (on_click="ignore"), so one download never cuts off the next
d0, d1, d2, d3, d4, d5 = st.columns(6)
base = report["spec"]
codes = res["codes"]
spec_args = {"train_size": stored["args"]["train_size"], "seed": stored["args"]["seed"],
             "data_name": stored["data_name"], "data_key": stored["args"]["key"]}
d0.download_button("Codes (.csv)", partial(D.codes_csv, codes, data.row_numbers(), data.labels), f"{base}_codes.csv",
                   "text/csv", key="q_dl_codes_csv", on_click="ignore",
                   help="One line per row of the data: its row number (from 0), its codes (code_0, code_1, …)"
                        + (" and its label." if data.labels is not None else "."))
d1.download_button("Codes (.npz)", partial(D.codes_npz, codes, data.row_numbers()), f"{base}_codes.npz",
                   "application/octet-stream", key="q_dl_codes", on_click="ignore",
                   help="codes: (n, M), one row per row of the data; row: each one's row number (from 0).")
d2.download_button("Codebooks (.npz)", partial(D.codebooks_npz, q), f"{base}_codebooks.npz",
                   "application/octet-stream", key="q_dl_books", on_click="ignore",
                   help="codebooks (and rotation for OPQ).")
d3.download_button("Report (JSON)", partial(D.report_json, report), f"{base}_report.json", "application/json",
                   key="q_dl_json", on_click="ignore")
d4.download_button("Report (CSV)", partial(D.report_csv, report), f"{base}_report.csv", "text/csv",
                   key="q_dl_csv", on_click="ignore")
d5.download_button("Spec (JSON)", partial(D.spec_json, q, report, **spec_args),
                   f"{base}_spec.json", "application/json", key="q_dl_spec", on_click="ignore")
