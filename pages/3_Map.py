"""Map: the data in 2-D, coloured by its code at one position, with the codewords on top."""

from functools import partial

import numpy as np
import streamlit as st

from ui import cache, charts
from ui import catalogue as C
from ui import data as D
from ui import state as S
from ui import widgets as W
from vqcore import VQLensError
from vqcore.inspect import project

state, data = W.start_page("Map")

st.title("Map")
W.data_badge(data)

stored = state.get(S.Q_RESULT)
if stored is None or stored["args"]["key"] != data.key:
    st.info("The map shows the codes of the last quantizer run on the **Quantize** page for this data. "
            "None yet: run one there, or run the default here.")
    if st.button("Run RQ 8×8 (64 bits)", key="map_run_default", type="primary"):
        K = 256 if data.shape[0] >= 512 else 16
        spec = W.make_spec("RQ", 8, K)
        params = W.method_params("RQ")
        train = min(int(state[S.TRAIN_SIZE]), data.shape[0])
        seed = int(state[S.SEED])
        try:
            res = cache.run_with_progress(data.key, spec, params, train, seed, data.X)
        except VQLensError as exc:
            st.error(W.md_escape(exc))
            st.stop()
        state[S.Q_RESULT] = S.QuantizeResult(
            args=S.RunArgs(key=data.key, spec=spec, params=params, train_size=train, seed=seed),
            result=res, data_name=data.name)
        st.rerun()  # draw the map without the "None yet" box and the button above it
    st.stop()

res = stored["result"]
args = stored["args"]
q = res["quantizer"]
M = q.n_codebooks
n = res["codes"].shape[0]
shown_idx = cache.map_rows(data.key, n, args["seed"])
codes = res["codes"][shown_idx]
labels = None if data.labels is None else [data.labels[i] for i in shown_idx]
cat = C.active(state)  # a catalogue of the server's data folder: the data is its sample
if cat is not None:
    st.caption(C.sample_caption(cat, len(shown_idx), what="Map", seed=args["seed"]))

c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
position = W.number_in(c1, "Code position", 0, M - 1, key="map_pos", default=0,
                       help="Colour the items by their code at this position (codebook / stage).")
projection = W.kept(c2.radio, "Projection", ["PCA", "UMAP"], horizontal=True, key="map_proj", default="PCA",
                    help="PCA is instant. UMAP runs on at most "
                         f"{cache.MAP_MAX_POINTS:,} items with a short schedule, once per result.")

pts_all, counts = cache.codeword_layer(res, int(position))
run_id = f"{args['spec']}|{args['params']}|{args['train_size']}|{args['seed']}"
if projection == "PCA":
    mean, comps, P_all = cache.pca_map(data.key, data.X)
    P = P_all[shown_idx]
    cw = project(pts_all, mean, comps)
else:
    umap_state = state.get(S.MAP_UMAP)
    have = umap_state is not None and umap_state["args"] == (data.key, run_id)
    if not have:
        c3.write("")
        if c3.button("Compute UMAP", key="map_umap_btn", type="primary"):
            with st.status("Computing UMAP…", expanded=False) as status:
                status.write("The first UMAP in a session also compiles numba code (up to a minute).")
                extra = np.vstack([cache.codeword_layer(res, m)[0] for m in range(M)]).astype(np.float32)
                emb, emb_extra = cache.umap_map(data.key, run_id, args["seed"], data.X[shown_idx], extra)
                state[S.MAP_UMAP] = {"args": (data.key, run_id), "emb": emb, "extra": emb_extra}
                status.update(label="UMAP ready", state="complete")
            have = True
        else:
            st.info("UMAP is computed on request: press **Compute UMAP**.")
            st.stop()
    u = state[S.MAP_UMAP]
    K = q.codebook_size
    P = u["emb"]
    cw = u["extra"][int(position) * K:(int(position) + 1) * K]

highlight = label = None
typed = c4.text_input("Highlight a code or a prefix", key="map_highlight", placeholder="e.g. 12, or 12/3",
                      help="A code at this position (12), or a prefix of the whole code from position 0 (12/3): "
                           "those items are drawn dark, the others grey. Empty: every code in its colour.").strip()
if typed:
    try:
        highlight, label = cache.map_highlight(codes, int(position), q.codebook_size, typed)
    except VQLensError as exc:
        st.error(W.md_escape(exc))
fig = charts.code_map(P, codes[:, int(position)], labels, cw, counts, position=int(position),
                      method_spec=args["spec"], projection=projection, n_total=cat.n if cat else n,
                      rows=data.row_numbers(shown_idx), highlight=highlight, highlight_label=label,
                      ids=None if data.ids is None else data.ids[shown_idx])
W.show(fig, key="map_chart")
st.download_button("Points (.csv)", partial(D.map_points_csv, P, codes[:, int(position)], data.row_numbers(shown_idx),
                                            position=int(position), ids=None if data.ids is None else
                                            data.ids[shown_idx], labels=labels),
                   f"{args['spec']}_map_points.csv", "text/csv", key="map_dl_points", on_click="ignore",
                   help="The items drawn: row number" + (", id" if data.ids is not None else "")
                        + f", {projection} coordinates x and y, code at this position"
                        + (", label." if labels is not None else "."))
st.caption("Items are the rows of the data (at most "
           f"{cache.MAP_MAX_POINTS:,}, drawn at random). A codeword is placed at the average "
           "reconstruction when every item takes that code at this position: for VQ and RQ's first stage "
           "that is the codeword itself; for later RQ/AQ stages the codeword plus the average of the other "
           "stages; for PQ/OPQ the codeword in its subspace with the other subspaces at their average. "
           "Colours repeat every 20 codes: highlight one code or prefix to pick its items out.")
