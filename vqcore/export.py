"""Fitted or loaded quantizers out: a faiss index holding the same codebooks (and codes).

faiss is an optional extra, imported only inside :func:`to_faiss_index`.
The index is built from the quantizer's own codebooks, never retrained, and
the items are added as *the quantizer's codes* (packed the way faiss packs
them), so faiss's ``search`` ranks exactly the reconstructions that
:func:`adc_search` ranks: asymmetric distance from the raw query to each
item's reconstruction (Jegou, Douze & Schmid, "Product quantization for
nearest neighbor search", TPAMI 2011, sec. V; for additive codes, faiss's
``ST_decompress`` search).

========================== ===============================================
vqcore                     faiss index
========================== ===============================================
KMeansVQ                   ``IndexPQ(d, 1, nbits)``
ProductQuantizer           ``IndexPQ(d, M, nbits)``
OPQ                        ``IndexPreTransform(OPQMatrix, IndexPQ)``
ResidualQuantizer, GRVQ    ``IndexResidualQuantizer(d, M, nbits)``
AdditiveQuantizer          ``IndexLocalSearchQuantizer(d, M, nbits)`` (LSQ)
ProjectedQuantizer         ``IndexResidualQuantizer`` of its data-space codewords
========================== ===============================================

faiss needs K = 2^nbits. Vectors added later with the index's own ``add``
are encoded by faiss's encoder (greedy RQ, LSQ's local search, ...), which
for a loaded model is not the model's encoder (its ``project_in``): add
items through their codes (``codes=`` here) to keep the model's.
"""

from __future__ import annotations

import numpy as np

from ._distances import KNN_CHUNK_BYTES, knn_blocked
from ._validation import check_data, check_dim, check_int
from .aq import AdditiveQuantizer
from .exceptions import VQLensError
from .kmeans import KMeansVQ
from .opq import OPQ
from .pq import ProductQuantizer

FAISS_MISSING = "The faiss index export needs faiss: pip install faiss-cpu"


def faiss_available():
    """Whether faiss can be imported; the message for a button that needs it otherwise.

    Returns
    -------
    (bool, str or None)
    """
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False, FAISS_MISSING
    return True, None


def faiss_export_problem(quantizer):
    """Why :func:`to_faiss_index` cannot export this quantizer, or None when it can.

    Returns
    -------
    str or None
        faiss missing (with ``pip install faiss-cpu``), K not a power of two,
        or a quantizer kind faiss has no index for.
    """
    ok, missing = faiss_available()
    if not ok:
        return missing
    try:
        _nbits(quantizer)
        _index_kind(quantizer)
    except VQLensError as exc:
        return str(exc)
    return None


def _index_kind(quantizer):
    """The faiss index family of a quantizer: "opq", "pq", "lsq" or "rq"; VQLensError for none."""
    if isinstance(quantizer, OPQ):
        return "opq"
    if isinstance(quantizer, (ProductQuantizer, KMeansVQ)):
        return "pq"
    if isinstance(quantizer, AdditiveQuantizer):
        return "lsq"
    books = np.asarray(quantizer.codebooks_)
    if getattr(quantizer, "additive", False) and books.ndim == 3 and books.shape[2] == quantizer.n_features_in_:
        return "rq"
    raise VQLensError(f"{type(quantizer).__name__} has no faiss index counterpart.")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(FAISS_MISSING) from None
    return faiss


def adc_search(quantizer, codes, queries, k=10):
    """The k items nearest to each query by asymmetric distance (query not quantized).

    Parameters
    ----------
    quantizer : fitted quantizer
    codes : ndarray of shape (n, M)
        The items' codes.
    queries : array-like of shape (nq, d)
    k : int

    Returns
    -------
    distances : ndarray of shape (nq, k), float32
        Squared distances from the query to the item's reconstruction.
    indices : ndarray of shape (nq, k), int64
    """
    queries = check_data(queries, name="queries")
    check_dim(queries, quantizer.n_features_in_, name="queries")
    X_hat = quantizer.decode(codes)
    k = check_int("k", k, low=1, high=X_hat.shape[0])
    idx, dist = knn_blocked(queries, X_hat, k, chunk_bytes=KNN_CHUNK_BYTES)
    return dist.astype(np.float32), idx


def _nbits(quantizer):
    K = int(quantizer.codebook_size)
    if K & (K - 1):
        raise VQLensError(
            f"codebook_size={K} is not a power of two; faiss indexes hold 2^nbits codes per codebook. "
            "Use a K of 2^nbits (e.g. 256) to export to faiss."
        )
    return K.bit_length() - 1


def _pq_index(faiss, books, d, nbits):
    M = books.shape[0]
    index = faiss.IndexPQ(d, M, nbits)
    faiss.copy_array_to_vector(np.ascontiguousarray(books, dtype=np.float32).ravel(), index.pq.centroids)
    index.is_trained = True
    return index


def _additive_index(faiss, cls, books, d, nbits):
    M = books.shape[0]
    index = cls(d, M, nbits)
    aq = index.aq
    faiss.copy_array_to_vector(np.ascontiguousarray(books, dtype=np.float32).ravel(), aq.codebooks)
    aq.is_trained = True
    if hasattr(aq, "compute_codebook_tables"):
        aq.compute_codebook_tables()
    index.is_trained = True
    return index


def _data_space_books(quantizer):
    """The codebooks with the quantizer's ``mean_`` folded in (faiss does not centre).

    vqcore's codebooks are centred on ``mean_`` (:mod:`vqcore.base`); a
    reconstruction holds exactly one codeword of codebook 0 (additive) or of
    each subspace (PQ; OPQ in the rotated space, where the mean is
    ``mean_ @ rotation_``), so adding the mean there gives faiss the same
    reconstructions.
    """
    books = np.array(quantizer.codebooks_, dtype=np.float32, copy=True)
    mean = getattr(quantizer, "mean_", None)
    if mean is None or not np.any(mean):
        return books
    mean = np.asarray(mean, dtype=np.float32)
    if isinstance(quantizer, OPQ):
        mean = mean @ quantizer.rotation_
    if books.ndim == 3 and books.shape[2] == mean.shape[0]:  # additive (VQ too): codebook 0
        books[0] += mean
    else:  # product: one slice of the mean per subspace
        books += mean.reshape(books.shape[0], 1, -1)
    return books


def to_faiss_index(quantizer, codes=None, *, X=None):
    """A faiss index with the quantizer's codebooks, holding the given items by their codes.

    Parameters
    ----------
    quantizer : fitted or loaded vqcore quantizer
        VQ, PQ, OPQ, RQ, GRVQ, AQ or a loaded model, with K a power of two.
    codes : ndarray of shape (n, M), optional
        Items to add, as this quantizer's codes (e.g. ``quantizer.encode(X)``).
    X : array-like of shape (n, d), optional
        Items to add by encoding them with the quantizer (not with faiss).

    Returns
    -------
    index : faiss.Index
        ``index.search(queries, k)`` returns what :func:`adc_search` returns.
        :func:`serialize_faiss_index` gives its bytes for a download.

    Raises
    ------
    ImportError
        faiss is not installed (the message says ``pip install faiss-cpu``).
    VQLensError
        K not a power of two, or a quantizer kind faiss has no index for.
    """
    faiss = _faiss()
    quantizer.check_fitted()
    nbits = _nbits(quantizer)
    d, M = quantizer.n_features_in_, quantizer.n_codebooks
    kind = _index_kind(quantizer)
    books = _data_space_books(quantizer)
    if kind == "opq":
        inner = _pq_index(faiss, books, d, nbits)
        opq = faiss.OPQMatrix(d, M)
        # faiss applies y = A x; vqcore rotates rows as X @ R, so A = R^T
        faiss.copy_array_to_vector(np.ascontiguousarray(quantizer.rotation_.T, dtype=np.float32).ravel(), opq.A)
        opq.is_trained = True
        opq.is_orthonormal = True
        index = faiss.IndexPreTransform(opq, inner)
        index.is_trained = True
    elif kind == "pq":
        index = inner = _pq_index(faiss, books, d, nbits)
    elif kind == "lsq":
        index = inner = _additive_index(faiss, faiss.IndexLocalSearchQuantizer, books, d, nbits)
    else:
        index = inner = _additive_index(faiss, faiss.IndexResidualQuantizer, books, d, nbits)
    if X is not None:
        if codes is not None:
            raise VQLensError("pass codes or X, not both.")
        codes = quantizer.encode(X)
    if codes is not None:
        codes = quantizer.validate_codes(codes)
        packed = _pack(faiss, inner, codes, nbits)
        inner.add_sa_codes(packed)
        if index is not inner:
            index.ntotal = inner.ntotal
    return index


def _pack(faiss, inner, codes, nbits):
    """vqcore codes (n, M) in faiss's bit-packed layout for ``inner`` (IndexPQ or an additive index)."""
    c32 = np.ascontiguousarray(codes, dtype=np.int32)
    n = c32.shape[0]
    if isinstance(inner, faiss.IndexPQ):
        return faiss.pack_bitstrings(c32, nbits)
    packed = np.zeros((n, inner.code_size), dtype=np.uint8)
    inner.aq.pack_codes(n, faiss.swig_ptr(c32), faiss.swig_ptr(packed))
    return packed


def serialize_faiss_index(index):
    """The bytes of a faiss index (``faiss.serialize_index``), for a download.

    ``faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))`` reads them back.
    """
    faiss = _faiss()
    return faiss.serialize_index(index).tobytes()
