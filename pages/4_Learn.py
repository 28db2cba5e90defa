"""Learn: each method in a few sentences, and a 2-D toy to watch them partition the plane."""

import math

import streamlit as st

from ui import cache, charts
from ui import widgets as W

state, _ = W.start_page("Learn", load_data=False)

st.title("Learn")
st.markdown(
    "A quantizer replaces a vector $x \\in \\mathbb{R}^d$ by a short code and reconstructs an approximation "
    "$\\hat x$ from it. With $M$ codebooks of $K$ codes, a code costs $M \\log_2 K$ bits. The methods differ "
    "in how the $M$ codewords combine."
)

with st.expander("The methods, with their formulas", expanded=True):
    a, b = st.columns(2)
    with a:
        st.markdown("**k-means VQ.** One codebook $C$ of $K$ centroids, learned by Lloyd's algorithm; each vector "
                    "goes to its nearest centroid, so the cells are the Voronoi cells of the centroids. "
                    "$K$ grows exponentially with the bits, which is why one codebook stops at about 16 bits.")
        st.latex(r"\hat x = \arg\min_{c \in C} \lVert x - c \rVert^2")
        st.markdown("**Product quantization (PQ).** Split $x$ into $M$ sub-vectors and quantize each with its "
                    "own k-means codebook; the reconstruction concatenates the $M$ codewords: $K^M$ points from "
                    "$MK$ codewords, on a grid aligned with the subspaces (Jégou et al. 2011). **OPQ** first "
                    "rotates $x$ by a learned orthogonal $R$ so the grid fits the data (Ge et al. 2013).")
        st.latex(r"\hat x = \big[c^{(1)}_{i_1}, \dots, c^{(M)}_{i_M}\big], \qquad "
                 r"\text{OPQ: } \hat x = R^\top \big[\dots\big]")
    with b:
        st.markdown("**Residual quantization (RQ).** Quantize $x$, then the residual left over, $M$ times; the "
                    "codewords add up. Each stage refines the cells of the previous one (Juang & Gray 1982). A "
                    "beam search keeps several partial codes per stage to find a better sum.")
        st.latex(r"i_m = \arg\min_i \lVert r_{m-1} - c^{(m)}_i \rVert^2,\qquad r_m = r_{m-1} - c^{(m)}_{i_m}")
        st.latex(r"r_0 = x,\qquad \hat x = \sum_{m=1}^{M} c^{(m)}_{i_m}")
        st.markdown("**Additive quantization (AQ).** Also a sum of $M$ full-dimensional codewords, but the "
                    "codebooks are learned jointly (least squares given the codes) and the codes are searched "
                    "jointly (beam search + ICM), not stage by stage (Babenko & Lempitsky 2014).")
        st.latex(r"\min_{C, i} \sum_x \Big\lVert x - \sum_{m=1}^{M} c^{(m)}_{i_m(x)} \Big\rVert^2")

st.subheader("Watch it on a 2-D toy")
st.caption("1,500 Gaussian points in 2-D with correlation rho between the two coordinates. VQ uses one codebook "
           "of K codes; PQ (in 2-D: one subspace per coordinate) uses 2 codebooks of K codes, so K² grid points; "
           "RQ uses M stages of K codes. Coloured regions are the cells, ◆ the reconstruction points.")
c1, c2, c3, c4 = st.columns(4)
K = W.kept(c1.select_slider, "Codes per codebook K", [2, 3, 4, 5, 6, 8, 10, 12, 16], key="learn_K", default=4)
M = W.kept(c2.select_slider, "RQ stages M", [1, 2, 3, 4], key="learn_M", default=3)
rho = W.kept(c3.slider, "Correlation rho", -0.95, 0.95, step=0.05, key="learn_rho", default=0.8)
stage = W.number_in(c4, "RQ: show stage", 1, M, key="learn_stage", default=M, draw="slider") if M > 1 else 1

toy = cache.learn_toy(float(rho), int(K), int(M))
X, xs, ys = toy["X"], toy["xs"], toy["ys"]
var = toy["variance"]
g1, g2, g3 = st.columns(3)
with g1:
    v = toy["vq"]
    W.show(charts.toy_partition("vq_cells", xs, ys, v["cells"], X, v["points"], mse=v["mse"],
                                subtitle=f"{K} cells from {K} codewords ({math.log2(K):.3g} bits)"),
           key="learn_vq")
with g2:
    p = toy["pq"]
    W.show(charts.toy_partition("pq_grid", xs, ys, p["cells"], X, p["points"], mse=p["mse"],
                                subtitle=f"{K}×{K} = {K * K} grid cells from {2 * K} codewords"), key="learn_pq")
with g3:
    s = toy["rq"][stage - 1]
    prev = toy["rq"][stage - 2]["points"] if stage > 1 else None
    pts = s["points"] if s["points"] is not None else X[:0]
    W.show(charts.toy_partition("rq_stages", xs, ys, s["cells"], X, pts, mse=s["mse"], extra_points=prev,
                                subtitle=f"stage {stage} of {M}: {s['n_points']} sums of {stage} codewords"),
           key="learn_rq")

errs = " → ".join(f"{e['mse'] / var:.1%}" for e in toy["rq"])
st.markdown(
    f"Relative error (mse / variance): VQ **{toy['vq']['mse'] / var:.1%}**, PQ **{toy['pq']['mse'] / var:.1%}**, "
    f"RQ by stage **{errs}**. Try rho near ±0.9: PQ's axis-aligned grid wastes cells in the empty corners, "
    "while VQ and RQ put their codewords along the data."
)
