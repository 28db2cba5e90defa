"""``load_quantizer``: a trained model's file in, a fitted vqcore quantizer out."""

from __future__ import annotations

import io
import os

import numpy as np

from .._validation import check_data, check_int
from ..exceptions import DataError, VQLensError
from ..io import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS, list_npz_arrays
from . import layouts, native
from ._torchzip import ITEMSIZE, Record, TensorRef, bfloat16_to_float32, read_torch_zip
from .quantizer import fitted

MODEL_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".npz", ".npy")

_SAFETENSORS_DTYPES = {"F64": "f8", "F32": "f4", "F16": "f2", "BF16": "bf16", "I64": "i8", "I32": "i4",
                       "I16": "i2", "I8": "i1", "U8": "u1", "BOOL": "b1"}


class ArrayRef:
    """A tensor already in memory (from .safetensors, .npz or .npy), with the TensorRef interface."""

    def __init__(self, array):
        self.array = array

    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def dtype(self):
        return str(self.array.dtype) if self.array.dtype != np.dtype("V2") else "bfloat16"

    @property
    def size(self):
        return int(self.array.size)

    def numpy(self):
        return self.array


class _BF16Ref(ArrayRef):
    dtype = "bfloat16"

    def numpy(self):
        return bfloat16_to_float32(self.array)


def _is_ref(obj):
    return type(obj) in (TensorRef, ArrayRef, _BF16Ref)


def _read_source(source, filename, max_bytes):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        size = os.path.getsize(path)
        filename = filename or os.path.basename(path)
        if size > max_bytes:  # refused before reading it
            raise DataError(f"{filename!r} is {size / 2**20:.1f} MiB, above the limit of "
                            f"{max_bytes / 2**20:.1f} MiB (max_bytes). Save only the quantizer's weights.")
        with open(path, "rb") as f:
            return f.read(), filename
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), filename
    if hasattr(source, "getvalue"):  # BytesIO, Streamlit's UploadedFile
        return bytes(source.getvalue()), filename or getattr(source, "name", None)
    raise VQLensError(f"source should be a path or the file's bytes, got {type(source).__name__}.")


def _safetensors_refs(data, what):
    try:
        import safetensors
    except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
        raise DataError(f"{what}: reading .safetensors needs the safetensors package "
                        "(pip install safetensors).") from exc
    if len(data) < 8:
        raise DataError(f"{what}: the file is too short to be a .safetensors file (truncated?).")
    header = int.from_bytes(data[:8], "little")
    if header > min(len(data) - 8, 100 * 2**20):
        raise DataError(f"{what}: its header claims {header:,} bytes but the file has {len(data) - 8:,}; it is "
                        "truncated or not a .safetensors file.")
    try:
        tensors = safetensors.deserialize(data)  # the Rust reader checks offsets against the buffer
    except Exception as exc:
        raise DataError(f"{what}: not a valid .safetensors file ({str(exc)[:200]}); it may be truncated.") from None
    refs = {}
    for name, t in tensors:
        code = _SAFETENSORS_DTYPES.get(t["dtype"])
        if code is None:
            raise DataError(f"{what}: tensor {name!r} has dtype {t['dtype']}, which VQ Lens does not read.")
        shape = tuple(int(s) for s in t["shape"])
        raw = np.frombuffer(bytes(t["data"]), dtype="<u2" if code == "bf16" else "<" + code.replace("b1", "u1"))
        if code == "b1":
            raw = raw.astype(bool)
        raw = raw.reshape(shape)
        refs[name] = _BF16Ref(raw) if code == "bf16" else ArrayRef(raw.astype(raw.dtype.newbyteorder("=")))
    return refs


def _npy_header(stream, what, max_elements):
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(stream)
    except Exception as exc:
        raise DataError(f"{what}: not a valid .npy array ({str(exc)[:160]}).") from None
    if dtype.hasobject:
        raise DataError(f"{what}: it holds Python objects (pickled), which VQ Lens never loads. Save a float array.")
    n = 1
    for s in shape:
        n *= int(s)
    if n > max_elements:
        raise DataError(f"{what}: shape {shape} = {n:,} values is above the limit of {max_elements:,}; nothing "
                        "was allocated.")
    return shape, dtype


def _npy_refs(data, what, max_elements):
    _npy_header(io.BytesIO(data), what, max_elements)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{what}: the .npy file could not be read ({str(exc)[:160]}); it may be truncated.") from None
    return {"codebooks": ArrayRef(arr)}


def _npz_refs(data, what, max_elements):
    try:
        listed = list_npz_arrays(data, max_bytes=len(data) + 1)
    except DataError as exc:
        raise DataError(f"{what}: {exc}") from None
    refs = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name, shape, dtype in listed:
                if dtype.hasobject or dtype.kind not in "biuf":
                    continue
                n = int(np.prod(shape, dtype=object))
                if n > max_elements:
                    raise DataError(f"{what}: array {name!r} of shape {shape} is above the limit of "
                                    f"{max_elements:,} values; nothing was allocated.")
                refs[name] = ArrayRef(npz[name])
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{what}: the .npz archive could not be read ({str(exc)[:160]}); it may be "
                        "truncated.") from None
    if not refs:
        raise DataError(f"{what}: the .npz holds no numeric arrays. Save the codebooks with "
                        "numpy.savez(path, codebooks=C) with C of shape (M, K, d) or (K, d).")
    return refs


def _npz_layout(refs, what, prefix):
    """Codebooks saved with numpy: our own export ('codebooks' [+ 'rotation']), or one array."""
    if prefix is None and "codebooks" in refs and "rotation" in refs:
        encoder, kind = layouts.build_rotated_product(refs, what)
        return encoder, kind, encoder.notes
    if prefix is None and "codebooks" not in refs:
        arrays = {n: r for n, r in refs.items() if len(r.shape) in (2, 3)}
        if len(arrays) != 1:
            try:
                return layouts.recognise(refs, what)
            except DataError:
                raise DataError(f"{what}: the .npz holds several arrays and none is named 'codebooks'; pass "
                                "prefix= with the one to use. The arrays:\n" + layouts.describe_tensors(refs)) from None
        prefix = next(iter(arrays))
    return layouts.recognise(refs, what, prefix=prefix or "codebooks")


def load_quantizer(source, *, filename=None, prefix=None, max_bytes=DEFAULT_MAX_BYTES,
                   max_elements=DEFAULT_MAX_ELEMENTS):
    """A fitted vqcore quantizer from a trained model's file; nothing in the file is executed.

    Parameters
    ----------
    source : str, path-like, bytes or file-like with ``getvalue()``
    filename : str, optional
        Names the format by its extension when ``source`` is bytes:
        ``.safetensors``; ``.pt`` / ``.pth`` / ``.ckpt`` / ``.bin`` (a
        ``torch.save`` zip archive: a state dict, or a checkpoint nesting one
        under ``model``, ``state_dict``, ``model_state_dict``, ``ema``, ...);
        ``.npz`` / ``.npy`` codebooks of shape (M, K, d) (M residual levels) or
        (K, d) (one codebook).
    prefix : str, optional
        Where the quantizer sits among the tensors (``"model.rq."``), or the
        full name of one codebook tensor when no layout is recognised.
    max_bytes, max_elements : int
        Caps on the file and on any one tensor, checked from headers before
        anything is allocated.

    Returns
    -------
    quantizer : fitted vqcore quantizer
        A :class:`~vqcore.KMeansVQ`, :class:`~vqcore.ResidualQuantizer`
        (greedy: ``beam_size=1``, what these libraries do at inference; set
        ``beam_size`` afterwards to see what a beam buys),
        :class:`~vqcore.ProductQuantizer`, or
        :class:`~vqcore.models.ProjectedQuantizer` (a ResidualQuantizer) for
        models with projections or groups. ``layout_`` says what was found;
        ``source_info_`` (dict) adds the file's format, the tensors used and notes.

    Raises
    ------
    DataError
        A format not understood, a truncated or hostile file (a pickle that
        names anything but tensors, storages and plain containers), a tensor
        that does not fit its storage or is above the caps, NaN codebooks, or
        no recognised layout (the message lists the tensors found).

    Examples
    --------
    >>> import io, numpy as np
    >>> from vqcore import load_quantizer
    >>> C = np.random.default_rng(0).normal(size=(3, 16, 4)).astype("float32")
    >>> buf = io.BytesIO(); np.savez(buf, codebooks=C)
    >>> q = load_quantizer(buf.getvalue(), filename="rq.npz")
    >>> type(q).__name__, q.spec(), q.layout_
    ('ResidualQuantizer', 'RQ3x4', 'tensor codebooks (3 residual codebooks)')
    """
    max_bytes = check_int("max_bytes", max_bytes, low=1)
    max_elements = check_int("max_elements", max_elements, low=1)
    data, filename = _read_source(source, filename, max_bytes)
    filename = str(filename or "model")
    what = repr(filename)
    ext = os.path.splitext(filename)[1].lower()
    if ext not in MODEL_EXTENSIONS:
        raise DataError(f"{what} has extension {ext or '(none)'}; VQ Lens reads trained models as "
                        f"{', '.join(MODEL_EXTENSIONS)}. Export the codebooks to .safetensors or .npz.")
    if not data:
        raise DataError(f"{what} is empty (0 bytes). Upload it again.")
    if len(data) > max_bytes:
        raise DataError(f"{what} is {len(data) / 2**20:.1f} MiB, above the limit of {max_bytes / 2**20:.1f} MiB "
                        "(max_bytes). Save only the quantizer's weights (its state dict).")
    try:
        with np.errstate(all="ignore"):
            return _load(data, filename, ext, what, prefix, max_bytes, max_elements)
    except VQLensError:
        raise
    except MemoryError:
        raise DataError(f"{what}: not enough memory to read it. Save only the quantizer's weights.") from None
    except Exception as exc:  # damaged archives and arrays: zipfile, zlib, numpy errors
        raise DataError(f"{what} could not be read ({type(exc).__name__}: {str(exc)[:200]}); the file is truncated "
                        "or damaged. Save or upload it again.") from exc


def _load(data, filename, ext, what, prefix, max_bytes, max_elements):
    if ext == ".safetensors":
        fmt, refs = "safetensors", _safetensors_refs(data, what)
    elif ext == ".npz":
        fmt, refs = "npz", _npz_refs(data, what, max_elements)
    elif ext == ".npy":
        fmt, refs = "npy", _npy_refs(data, what, max_elements)
    else:
        fmt = "torch.save zip"
        obj = read_torch_zip(data, max_bytes=max_bytes, max_elements=max_elements, what=what)
        refs = layouts.flatten(obj, is_tensor=_is_ref, is_record=lambda o: type(o) is Record)
        if not refs:
            raise DataError(f"{what}: the checkpoint holds no tensors (only numbers or text). Save the model's "
                            "weights: torch.save(model.state_dict(), path).")
    for name, ref in refs.items():
        n = 1
        for s in ref.shape:
            n *= int(s)
        if n * ITEMSIZE.get(getattr(ref, "code", "f4"), 4) > max_bytes or n > max_elements:
            raise DataError(f"{what}: tensor {name!r} of shape {tuple(ref.shape)} is above the caps.")
    if fmt == "npz" and prefix is None and native.SPEC_KEY in refs:  # VQ Lens's own download
        q, layout = native.load_native(refs, what)
        q.layout_ = layout
        q.source_info_ = {"format": fmt, "filename": filename, "layout": layout, "notes": [],
                          "n_tensors": len(refs), "prefix": None}
        return q
    if fmt in ("npz", "npy"):
        encoder, layout, notes = _npz_layout(refs, what, prefix)
    else:
        encoder, layout, notes = layouts.recognise(refs, what, prefix)
    _check_codebooks(encoder, what)
    info = {"format": fmt, "filename": filename, "layout": layout, "notes": notes,
            "n_tensors": len(refs), "prefix": prefix}
    q = fitted(encoder, layout=layout, source_info=info)
    if fmt == "npz" and prefix is None and "codebooks" in refs and "mean" in refs:
        # VQ Lens's own download: codebooks centred on the training data's mean (vqcore.base)
        mean = layouts.float_tensor(refs, "mean", what, ndim=1)
        if mean.shape[0] != q.n_features_in_:
            raise DataError(f"{what}: mean has {mean.shape[0]} values but the codebooks have "
                            f"d={q.n_features_in_} dimensions.")
        q.mean_ = mean
        info["notes"] = list(notes) + ["codebooks centred on the stored mean (VQ Lens's own download)"]
    return q


def _check_codebooks(encoder, what):
    K = encoder.codebook_size
    if K < 2 or K > 65536:
        raise DataError(f"{what}: the codebooks have K={K} codewords; VQ Lens handles 2 to 65,536.")
    if encoder.n_codebooks > 256:
        raise DataError(f"{what}: {encoder.n_codebooks} codebooks; VQ Lens handles at most 256.")
    for g in encoder.groups:
        if not np.isfinite(g.books).all():
            raise DataError(f"{what}: the codebooks hold NaN or infinite values; the model diverged or the file "
                            "is damaged. Load a checkpoint saved before training broke down.")
        if not np.any(g.books):
            raise DataError(f"{what}: a codebook is all zeros: it was never trained (k-means init runs on the "
                            "first training batch). Save the model after training.")


def check_model_data(quantizer, X=None, codes=None):
    """Check that loaded data (and codes) fit a loaded model; return X as float32.

    Parameters
    ----------
    quantizer : fitted quantizer (e.g. from :func:`load_quantizer`)
    X : array-like of shape (n, d), optional
        The embeddings the model will encode.
    codes : array-like of shape (n, M), optional
        Codes the user's own pipeline produced, to compare with the model's.

    Raises
    ------
    DataError
        d of X is not the model's input dimension; codes with another number of
        levels, codes ``>= K``, or a number of rows other than X's. Each message
        says which side to change.
    """
    d, M, K = quantizer.n_features_in_, quantizer.n_codebooks, quantizer.codebook_size
    layout = getattr(quantizer, "layout_", type(quantizer).__name__)
    if X is not None:
        X = check_data(X)
        if X.shape[1] != d:
            latent = ""
            if "RQ-VAE" in layout:
                latent = " (for an RQ-VAE, the encoder's outputs, not the raw item embeddings)"
            elif "VectorQuantize" in layout and X.shape[1] % d == 0 and X.shape[1] > d:
                latent = (f" (a VectorQuantize whose {X.shape[1] // d} heads share one codebook without "
                          "project_in does not record its heads in the file; VQ Lens cannot split it)")
            raise DataError(
                f"The model ({layout}) encodes vectors of d={d} but the loaded data has d={X.shape[1]}. Load the "
                f"embeddings the model was trained on{latent}, or the model that goes with this data."
            )
    if codes is not None:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != M:
            raise DataError(f"The codes have shape {codes.shape} but the model has {M} codebooks; load the codes "
                            f"this model produced (one column per level, {M} columns).")
        if codes.size and (codes.min() < 0 or codes.max() >= K):
            raise DataError(f"The codes hold values up to {int(codes.max())} but the model's codebooks have "
                            f"K={K} codewords (codes 0..{K - 1}); these codes come from another model.")
        if X is not None and codes.shape[0] != X.shape[0]:
            raise DataError(f"The codes have {codes.shape[0]} rows but the data has {X.shape[0]}; row i of the "
                            "codes must be item i of the data.")
    return X


def baseline_specs(quantizer, methods=("RQ", "PQ", "OPQ", "AQ")):
    """Specs of vqcore quantizers with the same bits per vector as ``quantizer``, to fit beside it.

    Each has the same number of codebooks M and codebook size K (so the same
    ``M log2 K`` bits); PQ and OPQ only when M divides the dimension.

    Examples
    --------
    >>> import numpy as np
    >>> q = load_quantizer(_example_npz(), filename="rq.npz")  # 3 levels of 16 codes, d=6
    >>> baseline_specs(q)
    ['RQ3x4', 'PQ3x4', 'OPQ3x4', 'AQ3x4']
    """
    from ..spec import QUANTIZERS, from_spec

    M, K, d = quantizer.n_codebooks, quantizer.codebook_size, quantizer.n_features_in_
    size = str(K.bit_length() - 1) if K & (K - 1) == 0 else f"K{K}"
    out = []
    for method in methods:
        if method not in QUANTIZERS or (method in ("PQ", "OPQ") and d % M) or (method == "VQ" and M != 1):
            continue
        spec = f"{method}{M}x{size}"
        from_spec(spec)  # valid
        out.append(spec)
    return out


def _example_npz():
    buf = io.BytesIO()
    np.savez(buf, codebooks=np.random.default_rng(0).normal(size=(3, 16, 6)).astype(np.float32))
    return buf.getvalue()
