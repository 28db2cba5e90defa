"""Semantic IDs: the code tuples of a generative recommender (TIGER style), as a tree of prefixes,
with their collisions, coverage and TIGER's de-duplication."""

from functools import partial

import pandas as pd
import streamlit as st

from ui import cache, charts
from ui import catalogue as C
from ui import data as D
from ui import state as S
from ui import widgets as W
from ui.text import md
from vqcore import VQLensError

state, data = W.start_page("Semantic IDs")

# session keys of this page
CODES, DEDUP = S.SID_CODES, S.SID_DEDUP
UPLOAD_SIG, UPLOAD_ERROR = S.SID_UPLOAD_SIG, S.SID_UPLOAD_ERROR
ITEM_HELP = "The item's row in the data, counting from 0 (for uploaded codes: its row in the codes file)."
ID_HELP = "The item's id: the id column of the data file (a column such as id or item_id, an npz array ids)."

SOURCES = {
    "quantize": "Codes of the Quantize page",
    "upload": "Upload a codes file",
    "demo": "Demo: RQ 3×8 on the sample",
}

st.title("Semantic IDs")
st.markdown(
    "Generative recommenders (TIGER and its successors) give every item a short tuple of codes, level 0 "
    "first, usually from residual quantization. Look at the tuples of **your** tokenizer: how the levels "
    "are used, the tree the prefixes make, which items collide and how far that is from uniform codes, "
    "and the extra token TIGER appends to make every ID unique."
)

stored = state.get(S.Q_RESULT)
quantize_ok = stored is not None and stored["args"]["key"] == data.key

# ---------------------------------------------------------------- codes
with st.container(border=True):
    source = W.kept(st.radio, "Codes", list(SOURCES), format_func=SOURCES.get, horizontal=True,
                    key="sid_source", default="quantize" if quantize_ok else "demo")
    if source == "quantize":
        if stored is None:
            st.info("No quantizer has run on the **Quantize** page yet: run one there, or use the demo.")
        elif not quantize_ok:
            st.info("The last Quantize result was computed on other data than the data loaded now; run the "
                    "Quantize page again.")
        else:
            sig = ("quantize", data.key, repr(sorted(stored["args"].items())))
            if (state.get(CODES) or {}).get("sig") != sig:
                try:
                    state[CODES] = D.quantize_code_set(stored, data, C.code_set_note(state))
                except VQLensError as exc:
                    st.error(md(exc))
            st.caption(f"The codes of **{stored['result']['report']['spec']}**, last run on the Quantize page, "
                       f"with the embeddings and texts of the same rows of **{md(data.name)}**.")
    elif source == "upload":
        up = st.file_uploader(
            "Codes file", type=["npy", "csv", "tsv", "parquet"], key="sid_upload",
            help="An (n, M) array of integer codes, row i = item i, level 0 first: .npy, .csv/.tsv (one "
                 "column per level; one text column becomes the item labels), .parquet (one column per "
                 "level, or a list column). Nothing is unpickled.")
        c1, c2, c3 = st.columns(3)
        K_in = W.number_in(c1, "Codebook size K (0 = infer)", 0, D.SID_MAX_K, key="sid_K", default=0,
                           help="Codes per level. Inferred as the largest code + 1, which misses unused "
                                "top codes (and so hides dead codes); enter the real K when known.")
        n_data = data.shape[0]
        use_items = W.kept(c2.checkbox, f"Embeddings and texts from the home page ({n_data:,} rows)",
                           key="sid_use_data", default=False,
                           help=f"Use the data loaded on the home page ({md(data.name)}) as the items' "
                                "embeddings (for distances) and texts: row i of the codes must be row i "
                                "of the data, so the codes need the same number of rows.")
        label_col = c3.text_input("Label column (CSV / parquet, optional)", key="sid_label_col",
                                  help="Column of item texts or titles; a single text column is used "
                                       "automatically.").strip()
        if up is not None:
            sig = (up.file_id, int(K_in), bool(use_items), data.key if use_items else None, label_col)
            if state.get(UPLOAD_SIG) != sig:
                state[UPLOAD_SIG] = sig
                state[UPLOAD_ERROR] = D.accept_codes_upload(
                    state, up.getvalue(), up.name, items=data if use_items else None, codebook_size=int(K_in),
                    text_column=label_col, slot=CODES)
            if state.get(UPLOAD_ERROR):
                st.error(md(state[UPLOAD_ERROR]))
                if state.get(CODES):
                    st.caption(f"Still showing the codes loaded before: {md(state[CODES]['name'])}.")
            else:
                st.success(f"Loaded {md(up.name)}.")
    else:
        st.caption("Fits RQ with 3 levels of 256 codes (TIGER's semantic IDs) on the 6,000 shipped sentence "
                   "embeddings, with the texts as item labels; a few seconds the first time.")
        if st.button("Fit RQ 3×8 on the sample", key="sid_demo", type="primary"):
            with st.spinner("Fitting RQ 3×8 on 6,000 sentence embeddings…"):
                state[CODES] = D.demo_code_set(cache.sid_demo())

cs, ov, problem = cache.sid_checked(state, CODES)  # a code set that fails gives way to the last good one
if problem:
    st.error(md(problem))
if cs is None:
    st.info("No codes yet: fit the demo, upload a codes file, or run a quantizer on the Quantize page.")
    st.stop()

codes, K, X, labels, key = cs["codes"], cs["codebook_size"], cs["X"], cs["labels"], cs["key"]
n, M = codes.shape

# ---------------------------------------------------------------- the whole catalogue (data folder)
cat = C.active(state)
whole = C.whole_for(state, stored) if cat is not None and source == "quantize" and quantize_ok else None
if cat is not None and whole is None and source == "quantize" and quantize_ok:
    st.info(f"Catalogue {md(cat.name)}: these are the IDs of its sample of {cat.sample_rows:,} rows. Run the "
            f"Quantize page to measure the IDs of all {cat.n:,} items, then pick its codes here.")
if whole is not None:
    wov = C.whole_overview(whole["report"])
    wr = wov["report"]
    st.subheader(f"The whole catalogue: {wr['n']:,} items")
    st.caption(f"Every row of {md(cat.name)} encoded with {wr['spec']} and measured streamed, chunk by chunk.")
    w = st.columns(6)
    w[0].metric("items", f"{wr['n']:,}", border=True)
    w[1].metric("distinct IDs", f"{wov['distinct']:,}", border=True)
    w[2].metric("collision rate", f"{wov['collision_rate']:.2%}", border=True,
                help=f"{wov['colliding']:,} items repeat an earlier item's whole ID (1 − distinct IDs / items).")
    w[3].metric("largest group", f"{wov['largest_group']:,}", border=True)
    w[4].metric("effective bits", f"{wr['effective_bits']:.1f}", border=True,
                help=f"Entropy of the whole tuple over the items, against {wr['allocated_bits']:g} allocated bits.")
    w[5].metric("dead codes", f"{sum(wr['usage']['dead']):,}", border=True,
                help="Per level: " + ", ".join(f"level {m}: {d:,}" for m, d in enumerate(wr["usage"]["dead"])) + ".")
    W.show_grid(charts.semantic_usage_figures(wr) + [charts.prefix_collisions(wov["table"], n=wr["n"])],
                "sid_whole_chart")
    if wov["groups"]:
        st.markdown(f"**The {len(wov['groups'])} largest collision groups of the catalogue** (items by catalogue "
                    "row):")
        st.dataframe(C.group_rows(wov["groups"]), hide_index=True, width="stretch")
    st.caption(C.sample_caption(cat, n, what="Every view below is") + " Distances and texts need the "
               "embeddings, which only the sample holds in memory.")

st.subheader(f"{md(cs['name'])}: {n:,} items × {M} level(s) of K = {K:,}")
notes = [md(t) for t in [f"From {cs['source']}."] + list(cs["notes"])]
if X is None:
    notes.append("No embeddings: distances inside collision groups and prefixes are not shown "
                 "(tick *Embeddings and texts from the home page* to add them).")
st.markdown("\n".join(f"- {t}" for t in notes))

m = st.columns(6)
m[0].metric("items", f"{n:,}", border=True)
m[1].metric("distinct IDs", f"{ov['distinct']:,}", border=True, help="Distinct full code tuples.")
m[2].metric("collision rate", f"{ov['collision_rate']:.2%}", border=True,
            help="1 − distinct IDs / items: the share of items whose whole ID repeats an earlier item's.")
m[3].metric("largest group", f"{ov['largest_group']:,}", border=True,
            help="Items sharing the most common ID: the size of the extra level TIGER's de-duplication needs.")
m[4].metric("effective bits", f"{ov['report']['effective_bits']:.1f}", border=True,
            help=f"Entropy of the whole tuple over the items (at most log2 n) against "
                 f"{ov['report']['allocated_bits']:g} allocated bits, M × log2 K.")
m[5].metric("dead codes", f"{sum(ov['report']['usage']['dead']):,}", border=True,
            help=f"Codes of any level that no item uses, of the {M * K:,} codes of the {M} level(s).")

# ---------------------------------------------------------------- per-level usage and coverage
st.subheader("Usage per level, coverage per depth")
W.show_grid(charts.semantic_usage_figures(ov["report"]) + [charts.coverage_per_depth(ov["table"], n=n)],
            "sid_chart")

# ---------------------------------------------------------------- code tree
st.subheader("The code tree")
c1, c2, c3 = st.columns(3)
kind = W.kept(c1.segmented_control, "Chart", ["treemap", "sunburst"], key="sid_tree_kind", default="treemap",
              help="Treemap: nested boxes, the largest top left. Sunburst: level 0 at the centre "
                   "(clearer with fewer branches). Click a box or a sector to drill down.")
tree_depth = W.number_in(c2, "Levels shown", 1, M, key="sid_tree_depth", default=min(2, M),
                         help="How many code levels the tree shows.")
branches = W.kept(
    c3.select_slider, "Branches per node", cache.SID_TREE_BRANCHES, key="sid_tree_branches",
    default=next(b for b in cache.SID_TREE_BRANCHES if b >= min(K, cache.SID_TREE_DEFAULT_BRANCHES)),
    help="Largest children shown under each node; the others are folded into one grey 'other' node. "
         f"Up to {cache.SID_TREE_MAX_NODES:,} sectors are drawn.")
shown_depth, _, wanted = cache.sid_tree_depth(ov["table"], int(tree_depth), int(branches))
if shown_depth < tree_depth:
    st.caption(f"{int(tree_depth)} levels with {branches} branches per node could need about {wanted:,} sectors; "
               f"showing {shown_depth}. Fewer branches per node let more levels fit.")
tree = cache.sid_tree(key, shown_depth, int(branches), codes, labels)
W.show(charts.code_tree(tree, n=n, kind=kind or "treemap", max_children=int(branches)), key="sid_tree_chart")

# ---------------------------------------------------------------- collisions
st.subheader("Collisions")
groups = cache.sid_groups(key, 20, ov["data_spread"], codes, X, labels)
g1, g2 = st.columns(2)
with g1:
    W.show(charts.prefix_collisions(ov["table"], n=n), key="sid_prefix_chart")
with g2:
    W.show(charts.collision_groups_chart(groups, n=n), key="sid_groups_chart")
t = ov["table"]
st.dataframe(pd.DataFrame({
    "depth": t["depth"],
    "distinct prefixes": t["distinct_prefixes"],
    "possible (log2)": t["log2_possible"],
    "collision rate": t["collision_rate"],
    "uniform codes": t["uniform_collision_rate"],
    "coverage": t["coverage"],
    "uniform coverage": t["uniform_coverage"],
}), hide_index=True, width="stretch", column_config={
    "possible (log2)": st.column_config.NumberColumn(format="2^%.4g", help="prod K of the first d levels"),
    "collision rate": st.column_config.NumberColumn(format="percent", help="1 − distinct prefixes / items"),
    "uniform codes": st.column_config.NumberColumn(
        format="%.3g", help="Collision rate of uniform, independent codes (birthday bound)."),
    "coverage": st.column_config.NumberColumn(format="percent", help="distinct / min(possible, n)"),
    "uniform coverage": st.column_config.NumberColumn(format="percent"),
})
if groups:
    st.markdown(f"**The {len(groups)} largest collision groups**, their items and how far apart they are "
                "(the first items of each group):")
    rows = [{"group": r + 1, "ID": "/".join(map(str, g["codes"])), "size": g["size"],
             "pair distance": g["mean_pairwise"], "spread": g["tightness"], "item": int(item),
             **({"id": str(D.item_ids(cs, g["items"])[j])} if cs.get("ids") is not None else {}),
             "text": g["labels"][j] if g["labels"] is not None else ""}
            for r, g in enumerate(groups) for j, item in enumerate(D.item_numbers(cs, g["items"]))]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)),
                 column_config={
                     "group": st.column_config.NumberColumn(width="small"),
                     "ID": st.column_config.TextColumn(width="small"),
                     "size": st.column_config.NumberColumn(width="small"),
                     "pair distance": st.column_config.NumberColumn(
                         format="%.3f", width="small",
                         help="Mean Euclidean distance between two items of the group (embeddings)."),
                     "spread": st.column_config.NumberColumn(
                         format="%.2f", width="small",
                         help="Mean distance to the group's centre / the data's: 0 for duplicates, about 1 "
                              "for unrelated items."),
                     "item": st.column_config.NumberColumn(width="small", help=ITEM_HELP),
                     "id": st.column_config.TextColumn(width="small", help=ID_HELP),
                     "text": st.column_config.TextColumn(width="large"),
                 })
else:
    st.success("No two items share a whole ID.")

# ---------------------------------------------------------------- under a prefix
st.subheader("What lives under this prefix")
c1, c2, c3 = st.columns([1.2, 1, 2.5])
how = c1.radio("Pick a prefix", ["largest", "type"], key="sid_pick_how", horizontal=True,
               format_func={"largest": "from the largest", "type": "type it"}.get)
prefix = None
if how == "largest":
    pick_depth = W.number_in(c2, "Depth", 1, M, key="sid_pick_depth", default=1,
                             help="Number of leading codes of the prefix.")
    tops = cache.sid_largest_prefixes(key, int(pick_depth), codes)
    if tops:
        chosen = c3.selectbox("Prefix (items)", tops, key="sid_prefix_pick",
                              format_func=lambda p: f"{'/'.join(map(str, p[0]))}   ({p[1]:,} items)")
        prefix = chosen[0]
    else:
        c3.info(f"No prefix of {int(pick_depth)} level(s) holds two or more items; type one instead.")
else:
    typed = c2.text_input("Prefix", key="sid_prefix_text", placeholder="e.g. 12/3",
                          help="Codes joined by '/', level 0 first.").strip()
    prefix = typed or None
if prefix is not None:
    try:
        under = cache.sid_under_prefix(key, prefix, K, codes, X, labels)
    except VQLensError as exc:
        st.error(md(exc))
        under = None
    if under is not None and under["count"] == 0:
        st.warning(f"No item has an ID starting with {'/'.join(map(str, under['prefix']))}.")
    elif under is not None:
        p = st.columns(4)
        p[0].metric("items under it", f"{under['count']:,}", border=True)
        p[1].metric("share of all items", f"{under['fraction']:.2%}", border=True)
        tight = under["tightness"]
        p[2].metric("mean distance to their centre",
                    "—" if under["mean_distance_to_centroid"] is None else f"{under['mean_distance_to_centroid']:.3f}",
                    border=True, help="Mean Euclidean distance of these items' embeddings to their centroid.")
        p[3].metric("tightness", "—" if tight is None else f"{tight:.2f}", border=True,
                    help="Their mean distance to their centre / all items' mean distance to the data's centre: "
                         "well below 1 = the prefix gathers similar items; near 1 = no better than random.")
        shown = len(under["indices"])
        if shown < under["count"]:
            st.caption(f"The first {shown:,} of {under['count']:,} items, in item order.")
        st.dataframe(pd.DataFrame({
            "item": D.item_numbers(cs, under["indices"]),
            **({"id": [str(v) for v in D.item_ids(cs, under["indices"])]} if cs.get("ids") is not None else {}),
            "ID": ["/".join(map(str, c)) for c in under["codes"]],
            "text": under["labels"] if under["labels"] is not None else [""] * shown,
        }), hide_index=True, width="stretch",
            column_config={"item": st.column_config.NumberColumn(help=ITEM_HELP),
                           "id": st.column_config.TextColumn(help=ID_HELP),
                           "text": st.column_config.TextColumn(width="large")})

# ---------------------------------------------------------------- de-duplication
st.subheader("De-duplicate as TIGER does")
st.markdown("TIGER appends one more token to every ID: 0, 1, 2, … among the items sharing a whole tuple (in "
            "item order), 0 for items with an ID of their own. The new level needs as many codes as the largest "
            "collision group, the fewest any extra level can do.")
if st.button("De-duplicate", key="sid_dedup_btn", type="primary"):
    state[DEDUP] = {"key": key, **cache.sid_dedup(key, codes, labels, D.item_numbers(cs, range(n)),
                                                  cs.get("ids"))}
dd = state.get(DEDUP)
if dd is not None and dd["key"] == key:
    d = st.columns(3)
    d[0].metric("size of the new level", f"{dd['extra_size']:,}", border=True,
                help="Codes the appended level needs: the size of the largest collision group.")
    d[1].metric("levels", f"{M} → {M + 1}", border=True)
    d[2].metric("collision rate after", f"{dd['collision_rate']:.2%}", border=True)
    b1, b2, _ = st.columns([1, 1, 3])
    base = "semantic_ids_dedup"
    b1.download_button("New codes (.csv)", dd["csv"], f"{base}.csv", "text/csv", key="sid_dl_csv", on_click="ignore",
                       help="The item's row number" + (", its id" if cs.get("ids") is not None else "")
                            + ", one column per level, the new one last"
                            + (", then the labels." if labels else "."))
    b2.download_button("New codes (.npy)", dd["npy"], f"{base}.npy", "application/octet-stream", key="sid_dl_npy",
                       on_click="ignore", help="(n, M + 1) unsigned integers, row i = item i.")

# ---------------------------------------------------------------- the IDs out (issue 18)
st.subheader("Download the IDs")
i1, i2, i3, _ = st.columns([1, 1, 1, 2])
item_rows = D.item_numbers(cs, range(n)) if cs.get("rows") is not None else None
i1.download_button("ID table (.parquet)", partial(D.id_table, codes, "parquet", item_rows, labels, cs.get("ids")),
                   "semantic_ids.parquet", "application/octet-stream", key="sid_ids_parquet", on_click="ignore",
                   help="Item -> semantic ID: row" + (", id" if cs.get("ids") is not None else "")
                        + ", one column per level (level_0, …; unpacked), semantic_id" + (", text." if labels else "."))
i2.download_button("ID table (.csv)", partial(D.id_table, codes, "csv", item_rows, labels, cs.get("ids")),
                   "semantic_ids.csv",
                   "text/csv", key="sid_ids_csv", on_click="ignore",
                   help="As the parquet file; texts a spreadsheet would run as a formula start with '.")
i3.download_button("Prefix trie (JSON)", partial(D.trie_json, codes), "semantic_ids_trie.json", "application/json",
                   key="sid_trie", on_click="ignore",
                   help="Each prefix: its children and the count of items under it (for constrained decoding).")

# ---------------------------------------------------------------- against another code set (issue 18)
st.subheader("Against another code set of the same items")
st.markdown("A retrain that changes most IDs breaks a deployed recommender (its model emits the old IDs). Load a "
            "second code set of the same items, row i = item i (a retrain, another seed, your pipeline's codes): "
            "how many IDs changed, how far down the levels they still agree, and whether the items that "
            "collided together still do.")
OTHER_SOURCES = {"upload": "Upload a codes file", "quantize": "Codes of the Quantize page"}
other_source = W.kept(st.radio, "Second code set", list(OTHER_SOURCES), format_func=OTHER_SOURCES.get,
                      horizontal=True, key="sid_other_source", default="upload")
if other_source == "upload":
    up2 = st.file_uploader("Second codes file", type=["npy", "csv", "tsv", "parquet"], key="sid_other_upload",
                           help="The same items as the codes above, in the same order, with as many levels.")
    if up2 is not None:
        sig = (up2.file_id, key)
        if state.get(S.SID_OTHER_SIG) != sig:
            state[S.SID_OTHER_SIG] = sig
            state[S.SID_OTHER_ERROR] = D.accept_codes_upload(state, up2.getvalue(), up2.name, slot=S.SID_OTHER)
        if state.get(S.SID_OTHER_ERROR):
            st.error(W.md_escape(state[S.SID_OTHER_ERROR]))
elif quantize_ok:
    if (state.get(S.SID_OTHER) or {}).get("sig") != ("quantize", data.key, repr(sorted(stored["args"].items()))):
        state[S.SID_OTHER] = D.quantize_code_set(stored, data, C.code_set_note(state))
else:
    st.info("No Quantize result on the data loaded now: run one on the Quantize page, or upload a codes file.")
other = state.get(S.SID_OTHER)
if other is not None and not (other_source == "quantize" and not quantize_ok):
    try:
        cmp_result = cache.sid_compare(key, other["key"], codes, other["codes"])
    except VQLensError as exc:
        st.error(W.md_escape(f"{exc} (the shown set: {n:,} × {M}; {other['name']}: "
                             f"{other['codes'].shape[0]:,} × {other['codes'].shape[1]})."))
        cmp_result = None
    if cmp_result is not None:
        c = st.columns(4)
        c[0].metric("IDs changed", f"{cmp_result['share_changed']:.1%}", border=True,
                    help=f"{cmp_result['n_changed']:,} of {cmp_result['n_items']:,} items have another whole ID.")
        c[1].metric("same level 0", f"{cmp_result['level_agreement'][0]:.1%}", border=True)
        c[2].metric("moved between collision groups", f"{cmp_result['n_moved']:,}", border=True,
                    help="Items of a collision group (2 or more items with one ID) in either set whose group-"
                         "mates are not the same in both.")
        c[3].metric("collision groups", f"{cmp_result['large_groups_a']:,} → {cmp_result['large_groups_b']:,}",
                    border=True)
        W.show(charts.code_set_agreement(cmp_result, "the codes above", other["name"]),
               key="sid_other_chart")
        if cmp_result["groups"]:
            st.dataframe(pd.DataFrame([{
                "ID above": "/".join(map(str, g["codes_a"])), "items": g["size"],
                "split into": g["n_parts"], "kept together": g["kept_together"],
                "their ID in the second set": "/".join(map(str, g["codes_b"])),
            } for g in cmp_result["groups"]]), hide_index=True, width="stretch")
