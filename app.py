"""VQ Lens home page: load data and see what is loaded.

Run with ``streamlit run app.py``. The pages in ``pages/`` quantize, compare,
map and teach on whatever is loaded here.
"""

import pandas as pd
import streamlit as st

from ui import cache, charts
from ui import catalogue as C
from ui import data as D
from ui import state as S
from ui import widgets as W
from ui.text import md
from vqcore.datasets import SAMPLES

TOYS = ("Gaussian, uncorrelated", "Gaussian, correlated", "Gaussian mixture", "Rotated anisotropic")

state, _ = W.start_page()

st.title("VQ Lens")
st.markdown(
    "Look inside vector quantizers: load embeddings here (a sample of real sentence embeddings is loaded to "
    "start with), then open a page in the sidebar:\n"
    + "\n".join(f"- **{label}**: {W.PAGE_BLURBS[label]}" for _, label, _ in W.PAGES[1:])
)

root, folder_problem = C.data_dir()  # --data-dir: the server's data folder, off unless asked for
if folder_problem:
    st.error(f"The data folder given with {C.FLAG} cannot be used: {md(folder_problem)}")

left, right = st.columns([3, 2], gap="large")

# ---------------------------------------------------------------- load
with left:
    st.subheader("Load data")
    tabs = st.tabs(["Shipped sample", "Upload a file"] + (["Data folder"] if root else []))
    tab_sample, tab_upload = tabs[:2]
    with tab_sample:
        name = W.kept(st.selectbox, "Sample", list(SAMPLES), key=S.HOME_SAMPLE, default=W.DEFAULT_SAMPLE,
                      help="Real data (sentence embeddings with their texts, handwritten digits) or toy "
                           "Gaussian sets whose size you choose.")
        st.caption(SAMPLES[name][1])
        kw = {}
        if name in TOYS:
            c1, c2, c3 = st.columns(3)
            kw["n"] = W.kept(c1.number_input, "Rows n", 100, 200_000, key="home_toy_n", default=5000, step=1000)
            kw["d"] = W.kept(c2.number_input, "Dimension d", 2, 1024, key="home_toy_d",
                             default=32 if name == "Rotated anisotropic" else 16)
            if name == "Gaussian, correlated":
                kw["rho"] = W.kept(c3.slider, "Correlation rho", -0.99, 0.99, key="home_toy_rho", default=0.9,
                                   help="Covariance rho^|i-j| between dimensions (AR(1)).")
            if name == "Gaussian mixture":
                kw["n_components"] = W.kept(c3.number_input, "Clusters", 1, 100, key="home_toy_k", default=10)
        if st.button("Load sample", key="home_load_sample", type="primary"):
            try:
                ds = cache.sample(name, **{k: (float(v) if k == "rho" else int(v)) for k, v in kw.items()})
                D.load_sample_into(state, ds)
                state.pop(S.HOME_UPLOADED, None)
            except ValueError as exc:
                st.error(md(exc))
    with tab_upload:
        up = st.file_uploader(
            # no type= filter: every file reaches vqcore.io, whose refusal says what was wrong and
            # what to do, where Streamlit's own would be an exception on the page
            "Embeddings file", key=S.HOME_UPLOAD,
            help=f"Up to {D.MAX_UPLOAD_MB} MB. .npy (one 2-D array), .npz (pick the array), .csv/.tsv "
                 "(numeric columns; one text column becomes item labels), .parquet (numeric columns or one "
                 ".list column), .fvecs/.bvecs. Files are parsed safely: nothing is unpickled.",
        )
        # the choices apply when a file is read; a file read successfully is then released
        drop = W.kept(st.checkbox, "Drop rows with NaN or infinity (otherwise refuse the file)",
                      key=S.HOME_DROP_NONFINITE, default=True)
        c1, c2 = st.columns(2)
        array_key = c1.text_input("Array of an .npz (optional)", key="home_npz_key",
                                  help="Name of the array to load; by default the largest 2-D array (the "
                                       "message after loading names the others).").strip() or None
        text_col = c2.text_input("Label column (optional)", key="home_text_col",
                                 help="CSV / parquet column (or .npz array of one text per row) to keep as item "
                                      "labels; a single text column is used automatically.").strip() or None
        if up is not None:
            sig = (up.file_id, up.name, array_key, text_col, drop)
            if state.get(S.HOME_UPLOAD_SIG) != sig:
                state[S.HOME_UPLOAD_SIG] = sig
                state[S.HOME_UPLOAD_ERROR] = D.accept_upload(state, up.getvalue(), up.name, array_key=array_key,
                                                             text_column=text_col, drop_nonfinite=drop)
                if not state[S.HOME_UPLOAD_ERROR]:
                    state[S.HOME_UPLOADED] = (up.name, sig[2:])
                    W.release_upload(up)  # the server keeps the data read from it, not the file
        elif state.get(S.HOME_UPLOADED) and state[S.DATA].upload is not None:
            # the uploader released its copy: an .npz of several arrays is read again from the one kept
            sig = ("kept", state[S.HOME_UPLOADED][0], array_key, text_col, drop)
            if state[S.HOME_UPLOADED][1] != sig[2:] and state.get(S.HOME_UPLOAD_SIG) != sig:
                state[S.HOME_UPLOAD_SIG] = sig
                state[S.HOME_UPLOAD_ERROR] = D.reread_upload(state, array_key=array_key, text_column=text_col,
                                                             drop_nonfinite=drop)
                if not state[S.HOME_UPLOAD_ERROR]:
                    state[S.HOME_UPLOADED] = (state[S.HOME_UPLOADED][0], sig[2:])
        kept = state[S.DATA].upload
        rechosen = (state.get(S.HOME_UPLOAD_SIG) or ("",))[0] == "kept"
        if state.get(S.HOME_UPLOAD_ERROR) and (up is not None or rechosen):
            st.error(md(state[S.HOME_UPLOAD_ERROR]))
            st.caption(f"Still using the data loaded before: {md(state[S.DATA].name)}.")
        elif state.get(S.HOME_UPLOADED):
            name, choices = state[S.HOME_UPLOADED]
            st.success(f"Loaded {md(name)}.")
            if kept is not None:
                st.caption(f"Arrays of {md(kept[0])}: {md(', '.join(D.npz_arrays(kept[1])))}. Type another name "
                           "above to load it (array, or label array of one text per row); no upload needed.")
            elif choices != (array_key, text_col, drop):
                st.caption("Upload the file again to read it with the choices above (a file is released from the "
                           "server once it is read).")

    if root:
        with tabs[2]:
            folder = C.listing(root)
            st.caption(f"Datasets in the server's data folder `{md(root)}` (only that folder, read lazily: n, d "
                       "and dtype come from the files' headers). Opening one draws a random sample of its rows "
                       "for the per-point views; the Quantize and Semantic IDs pages measure every row.")
            if folder.entries:
                st.dataframe(C.listing_rows(folder), hide_index=True, width="stretch")
            openable = {e.name: e for e in folder.entries if e.error is None}
            for e in folder.entries:
                if e.error is not None:
                    st.warning(f"{md(e.name)} cannot be opened: {md(e.error)}")
            for name, why in folder.refused:
                st.caption(f"{md(name)}: {md(why)}.")
            if folder.truncated:
                st.caption("The folder holds more entries than are listed; move the datasets into a smaller folder.")
            if not openable:
                st.info("No dataset here: put .npy, .fvecs, .bvecs or .parquet files (or folders of .parquet "
                        "shards) in the folder.")
            else:
                pick = W.kept(st.selectbox, "Dataset", list(openable), key=S.HOME_FOLDER_PICK, default=None,
                              format_func=lambda name: C.entry_label(openable[name]))
                rows = W.number_in(st, "Sample for the per-point views (rows)", C.MIN_SAMPLE_ROWS,
                                   C.MAX_SAMPLE_ROWS, key=S.HOME_FOLDER_SAMPLE, default=C.DEFAULT_SAMPLE_ROWS,
                                   step=5000, help="Rows drawn at random (seed 0) that the map, the item tables "
                                                   "and the fit use; whole-catalogue numbers cover every row.")
                if st.button("Open the dataset", key="home_folder_open", type="primary"):
                    with st.spinner(f"Opening {md(pick)} and drawing {int(rows):,} rows…"):
                        state[S.HOME_FOLDER_ERROR] = C.open_into(state, root, pick, int(rows))
                    if not state[S.HOME_FOLDER_ERROR]:
                        state.pop(S.HOME_UPLOADED, None)
                if state.get(S.HOME_FOLDER_ERROR):
                    st.error(md(state[S.HOME_FOLDER_ERROR]))

# ---------------------------------------------------------------- options
data = state[S.DATA]
cat = C.active(state)
with right:
    st.subheader("Options")
    if cat is None:
        center = W.kept(st.checkbox, "Centre (subtract the mean vector)", key=S.HOME_CENTER, default=data.center)
        normalize = W.kept(st.checkbox, "L2-normalise every row", key=S.HOME_NORMALIZE, default=data.normalize)
        data.apply(center, normalize)
    else:  # every row of the catalogue is measured as stored, so its sample is too
        st.checkbox("Centre (subtract the mean vector)", False, disabled=True, key="home_center_catalogue",
                    help="A catalogue from the data folder is used as stored.")
        st.checkbox("L2-normalise every row", False, disabled=True, key="home_normalize_catalogue",
                    help="A catalogue from the data folder is used as stored.")

    def _train_changed():
        state[S.TRAIN_SIZE] = int(state["home_train"])
        for page in ("q", "cmp"):  # the pages start from the new default
            state.pop(f"{page}_train", None)
            state.pop(f"{S.KEEP}{page}_train", None)

    W.kept(st.number_input, "Training subsample (rows)", 256, 1_000_000, key="home_train",
           default=state[S.TRAIN_SIZE], step=1024, on_change=_train_changed,
           help="Default number of random rows the quantizers learn their codebooks on (faiss "
                "trains on a few hundred points per centroid). Every row is still encoded and "
                "measured. Smaller is faster.")
    st.caption(f"Results are cached per data content and settings; a row subsample of at most "
               f"{state[S.TRAIN_SIZE]:,} rows trains each quantizer.")

# ---------------------------------------------------------------- summary
st.divider()
st.subheader(f"Loaded: {md(data.name)}")
if data.description:
    st.caption(md(data.description))
if cat is not None:
    ds = cat.dataset
    st.markdown(f"**Catalogue {md(cat.name)}**: {cat.n:,} rows × d = {cat.d} ({md(ds.dtype)}) in the server's "
                f"data folder. The numbers and charts below are of its sample of {cat.sample_rows:,} rows "
                f"(seed {cat.seed}); Quantize and Semantic IDs measure every row.")
summ = cache.summary(data.key, data.X)
c = st.columns(6)
c[0].metric("rows n", f"{summ['n']:,}", border=True)
c[1].metric("dimension d", f"{summ['d']:,}", border=True)
c[2].metric("dtype (as used)", summ["dtype"], border=True)
c[3].metric("duplicate rows", f"{summ['duplicates']:,}", border=True,
            help="Rows that exactly repeat an earlier row: they get the same codes and count as collisions.")
c[4].metric("non-finite rows", f"{data.nonfinite_found:,}", border=True,
            help="Rows holding NaN or infinity in the file; they were dropped (the data above has none).")
c[5].metric("dims for 90%", f"{summ['dims_for_90']}", border=True,
            help="Principal directions needed to hold 90% of the variance.")
notes = list(data.notes) + list(data.prep_notes)
if data.nonfinite_found:
    notes.append(f"Found {data.nonfinite_found} row(s) with NaN or infinity; they were dropped.")
else:
    notes.append("No NaN or infinite values found.")
st.markdown("\n".join(f"- {md(n)}" for n in notes))

g1, g2 = st.columns(2)
with g1:
    W.show(charts.norm_histogram(summ["norms"], unit_norm=summ["unit_norm"]), key="home_norms")
with g2:
    W.show(charts.pca_spectrum(summ["pca_ratio"], rows_used=summ["pca_rows"]), key="home_pca")

if data.labels is not None or data.ids is not None:
    with st.expander("First items and their " + ("labels" if data.ids is None else "ids")):
        first = {"row": data.row_numbers()[:20]}
        first.update({} if data.ids is None else {"id": [str(v) for v in data.ids[:20]]})
        first.update({} if data.labels is None else {"label": data.labels[:20]})
        st.dataframe(pd.DataFrame(first), hide_index=True, width="stretch")
