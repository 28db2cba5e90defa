"""Fitted vqcore quantizers made from a trained model's tensors.

:func:`fitted` is the one constructor every loader goes through: it sets the
fitted attributes of an existing quantizer class (``codebooks_``,
``n_features_in_``, ...) and says where they came from (``layout_``,
``source_info_``). Models whose codes are found in another space than the
data's (a ``project_in`` layer, a split into groups, a shared input
projection before several heads) become a :class:`ProjectedQuantizer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kmeans import KMeansVQ
from ..pq import ProductQuantizer
from ..rq import ResidualQuantizer, beam_search_encode


@dataclass
class Affine:
    """``y = x @ weight.T + bias`` (a torch ``nn.Linear``), then optionally a LayerNorm."""

    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None = None  # (out,)
    ln_weight: np.ndarray | None = None
    ln_bias: np.ndarray | None = None
    ln_eps: float = 1e-5

    def __call__(self, X):
        Y = X @ self.weight.T
        if self.bias is not None:
            Y += self.bias
        if self.ln_weight is not None:
            mu = Y.mean(axis=1, keepdims=True)
            var = ((Y - mu) ** 2).mean(axis=1, keepdims=True)
            Y = (Y - mu) / np.sqrt(var + self.ln_eps) * self.ln_weight
            if self.ln_bias is not None:
                Y += self.ln_bias
        return np.ascontiguousarray(Y, dtype=np.float32)

    @property
    def n_in(self):
        return self.weight.shape[1]

    @property
    def n_out(self):
        return self.weight.shape[0]


@dataclass
class Group:
    """One group of codebooks: reads columns ``cols`` of the (projected) input, codes by residual steps.

    books : (L, K, c) codebooks in the group's code space, level 0 first.
    cols : columns of the stem's output the group reads.
    proj_in / proj_out : the group's own projections (GroupedResidualVQ with
    codebook_dim < dim / groups), or None.
    out_cols : columns of the stem's output space its reconstruction fills.
    """

    books: np.ndarray
    cols: slice
    out_cols: slice
    proj_in: Affine | None = None
    proj_out: Affine | None = None


@dataclass
class Encoder:
    """How a model turns a data vector into codes and codes back into a vector.

    stem_in / stem_out : a projection shared by every group (``project_in`` /
    ``project_out`` of a VectorQuantize or ResidualVQ), or None.
    """

    groups: list
    stem_in: Affine | None = None
    stem_out: Affine | None = None
    notes: list = field(default_factory=list)

    @property
    def n_codebooks(self):
        return sum(g.books.shape[0] for g in self.groups)

    @property
    def codebook_size(self):
        return self.groups[0].books.shape[1]

    @property
    def n_features(self):
        if self.stem_in is not None:
            return self.stem_in.n_in
        return sum(g.proj_in.n_in if g.proj_in is not None else g.books.shape[2] for g in self.groups)

    @property
    def plain(self):
        """No projection anywhere: the codebooks live in the data space."""
        return self.stem_in is None and self.stem_out is None and all(
            g.proj_in is None and g.proj_out is None for g in self.groups)

    def data_space_codebooks(self):
        """(M, K, d) codewords in the data space, whose sums are the model's reconstructions.

        Every map from the code space to the output is affine, so the output
        ``W_s (place_g(W_g sum_l c_gl + b_g)) + b_s`` is a sum of one vector
        per code: codeword l of group g mapped through the group's and the
        shared ``project_out`` with zeros outside the group's columns; the
        biases are added to the first codebook of their group (``b_g``) and
        to the very first codebook (``b_s``).
        """
        width = self.stem_out.n_in if self.stem_out is not None else sum(
            g.out_cols.stop - g.out_cols.start for g in self.groups)
        books = []
        for g in self.groups:
            for level, C in enumerate(g.books):
                Y = C.astype(np.float64)
                if g.proj_out is not None:
                    Y = Y @ g.proj_out.weight.T.astype(np.float64)
                    if level == 0 and g.proj_out.bias is not None:
                        Y = Y + g.proj_out.bias
                full = np.zeros((C.shape[0], width))
                full[:, g.out_cols] = Y
                books.append(full)
        books = np.stack(books)
        if self.stem_out is not None:
            books = books @ self.stem_out.weight.T.astype(np.float64)
            if self.stem_out.bias is not None:
                books[0] += self.stem_out.bias
        return books.astype(np.float32)

    def encode(self, X, beam_size=1):
        Z = self.stem_in(X) if self.stem_in is not None else X
        out = []
        for g in self.groups:
            Zg = np.ascontiguousarray(Z[:, g.cols])
            if g.proj_in is not None:
                Zg = g.proj_in(Zg)
            out.append(beam_search_encode(Zg, g.books, beam_size))
        return np.concatenate(out, axis=1)


class ProjectedQuantizer(ResidualQuantizer):
    """A trained model whose codes are found in its own code space, decoded additively in the data space.

    Encoding follows the model: the vector goes through ``project_in`` (a
    linear map, optionally followed by a LayerNorm), is split into groups or
    heads, each group through its own ``project_in``, and each is coded by
    greedy residual steps in its code space (level 0 first, nearest codeword
    of the residual; a beam when ``beam_size > 1``), as vector-quantize-pytorch
    does at inference. Decoding is exact and additive in the data space:
    ``codebooks_`` holds each codeword mapped through ``project_out`` (see
    :meth:`Encoder.data_space_codebooks`), so ``decode``, stage errors,
    recall and the faiss export use the model's own reconstructions.

    Residual stages: B.-H. Juang and A. H. Gray, ICASSP 1982; in this form
    N. Zeghidour et al., "SoundStream: an end-to-end neural audio codec",
    IEEE/ACM TASLP 2021 (Algorithm 1, as vector-quantize-pytorch's ResidualVQ).

    Attributes
    ----------
    codebooks_ : ndarray of shape (M, K, d), float32
        Data-space codewords (M = groups x levels).
    encoder_ : Encoder
        Projections and the code-space codebooks (``encoder_.groups[g].books``).
    layout_ : str
    source_info_ : dict
    """

    def _encode(self, X):
        return self.encoder_.encode(X, self.beam_size)

    def spec(self):
        s = f"{self.method}{self.n_codebooks}x"
        nbits = self._nbits()
        s += str(nbits) if nbits is not None else f"K{self.codebook_size}"
        return s + (f"_b{self.beam_size}" if self.beam_size > 1 else "")


def _structure_method(encoder):
    G = len(encoder.groups)
    L = {g.books.shape[0] for g in encoder.groups}
    if G == 1:
        return "RQ" if max(L) > 1 else "VQ"
    return "PQ" if L == {1} else "PRQ"


def fitted(encoder, *, layout, source_info):
    """The fitted vqcore quantizer of a model's encoder: the one place loaded quantizers are made.

    Plain models become the existing classes with their codebooks:
    one group of one level is a :class:`~vqcore.KMeansVQ`, one group of
    several levels a :class:`~vqcore.ResidualQuantizer` (greedy, ``beam_size=1``),
    several single-level groups side by side a :class:`~vqcore.ProductQuantizer`;
    anything with a projection, or groups of several levels, a
    :class:`ProjectedQuantizer`.
    """
    M, K, d = encoder.n_codebooks, encoder.codebook_size, encoder.n_features
    G = len(encoder.groups)
    levels = {g.books.shape[0] for g in encoder.groups}
    if encoder.plain and G == 1 and levels == {1}:
        q = KMeansVQ(codebook_size=K)
        q.codebooks_ = np.ascontiguousarray(encoder.groups[0].books, dtype=np.float32)
    elif encoder.plain and G == 1:
        q = ResidualQuantizer(n_codebooks=M, codebook_size=K, beam_size=1)
        q.codebooks_ = np.ascontiguousarray(encoder.groups[0].books, dtype=np.float32)
    elif encoder.plain and levels == {1} and len({g.books.shape[2] for g in encoder.groups}) == 1:
        q = ProductQuantizer(n_codebooks=M, codebook_size=K)
        q.codebooks_ = np.ascontiguousarray(np.concatenate([g.books for g in encoder.groups]), dtype=np.float32)
    else:
        q = ProjectedQuantizer(n_codebooks=M, codebook_size=K, beam_size=1)
        q.method = _structure_method(encoder)
        q.encoder_ = encoder
        q.codebooks_ = encoder.data_space_codebooks()
    q.n_features_in_ = d
    q.mean_ = np.zeros(d, dtype=np.float32)  # no learned centring: the model's codes are of x itself
    q.layout_ = layout
    q.source_info_ = source_info
    return q
