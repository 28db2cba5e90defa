"""VQ Lens's own codebooks file: a fitted quantizer saved to ``.npz`` and read back with its codes.

:func:`save_codebooks` writes ``codebooks`` (and ``rotation`` for OPQ), what
:func:`vqcore.load_quantizer` reads from any ``.npz``, plus what makes the
file *this* quantizer again rather than a residual one of the same shape: its
spec and parameters (``vqlens_spec``, ``vqlens_params``, as UTF-8 bytes, no
pickle) and every other fitted array or number (``vqlens_attr.<name>``: an
AQ's encoding seed, a GRVQ's norm quantizer, ...). A PQ's (M, K, d/M)
codebooks would otherwise read back as RQ of width d/M.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np

from ..exceptions import DataError

SPEC_KEY = "vqlens_spec"
PARAMS_KEY = "vqlens_params"
ATTR_PREFIX = "vqlens_attr."
_ATTR = re.compile(r"^_?[a-z][a-z0-9_]*_$")  # fitted attributes only (``n_repairs_``, ``_encode_seed_``)
_KEPT = ("codebooks_", "rotation_", "n_features_in_", "layout_", "source_info_")


def _text(s):
    return np.frombuffer(str(s).encode("utf-8"), dtype=np.uint8)


def save_codebooks(quantizer):
    """The bytes of an ``.npz`` that :func:`vqcore.load_quantizer` reads back as the same quantizer.

    Parameters
    ----------
    quantizer : fitted vqcore quantizer

    Returns
    -------
    data : bytes
        ``codebooks``, ``rotation`` (OPQ), and, for quantizers made by
        :func:`vqcore.from_spec` or read from such a file, ``vqlens_spec``,
        ``vqlens_params`` and ``vqlens_attr.*``. A model loaded from another
        library's file (with projections or groups) keeps only the data-space
        codebooks: keep its own file to encode with it.

    Examples
    --------
    >>> import numpy as np, vqcore
    >>> X = np.random.default_rng(0).normal(size=(300, 8)).astype("float32")
    >>> pq = vqcore.from_spec("PQ2x4", random_state=0).fit(X)
    >>> back = vqcore.load_quantizer(save_codebooks(pq), filename="pq.npz")
    >>> type(back).__name__, bool((back.encode(X) == pq.encode(X)).all())
    ('ProductQuantizer', True)
    """
    quantizer.check_fitted()
    arrays = {"codebooks": np.asarray(quantizer.codebooks_)}
    if hasattr(quantizer, "rotation_"):
        arrays["rotation"] = np.asarray(quantizer.rotation_)
    if not hasattr(quantizer, "encoder_"):  # a projected model is not rebuilt from a spec
        params = {k: v for k, v in quantizer.get_params().items()
                  if v is None or isinstance(v, (bool, int, float, str))}
        arrays[SPEC_KEY] = _text(quantizer.spec())
        arrays[PARAMS_KEY] = _text(json.dumps(params, sort_keys=True))
        for name, value in vars(quantizer).items():
            if not name.endswith("_") or name in ("codebooks_", "rotation_", "layout_", "source_info_"):
                continue
            if isinstance(value, (bool, int, float, np.integer, np.floating)) and not isinstance(value, np.bool_):
                value = np.asarray(value)
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                arrays[ATTR_PREFIX + name] = value
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def load_native(refs, what):
    """The quantizer of a :func:`save_codebooks` file (``refs``: its arrays by name), fitted; or raise DataError."""
    from ..spec import from_spec

    try:
        spec = bytes(refs[SPEC_KEY].numpy().astype(np.uint8)).decode("utf-8")
        params = json.loads(bytes(refs[PARAMS_KEY].numpy().astype(np.uint8)).decode("utf-8")) \
            if PARAMS_KEY in refs else {}
        q = from_spec(spec)
        q.set_params(**{k: v for k, v in params.items() if k in q.get_params()})
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what}: its VQ Lens spec could not be read ({str(exc)[:160]}); the file is damaged. "
                        "Download the codebooks again.") from None
    books = np.ascontiguousarray(refs["codebooks"].numpy(), dtype=np.float32)
    if books.ndim != 3 or books.shape[0] != q.n_codebooks or books.shape[1] != q.codebook_size:
        raise DataError(f"{what}: codebooks of shape {books.shape} do not fit its spec {spec} "
                        f"({q.n_codebooks} codebooks of {q.codebook_size} codes).")
    if not np.isfinite(books).all():
        raise DataError(f"{what}: the codebooks hold NaN or infinite values; the file is damaged. Download the "
                        "codebooks again.")
    q.codebooks_ = books
    d = books.shape[1 + 1] * (books.shape[0] if q.method in ("PQ", "OPQ") else 1)
    if "rotation" in refs:
        R = np.ascontiguousarray(refs["rotation"].numpy(), dtype=np.float32)
        if R.shape != (d, d):
            raise DataError(f"{what}: rotation has shape {R.shape} but the codebooks need ({d}, {d}).")
        q.rotation_ = R
    elif q.method == "OPQ":
        raise DataError(f"{what}: an OPQ file without its rotation; download the codebooks again.")
    for name, ref in refs.items():
        attr = name[len(ATTR_PREFIX):]
        if name.startswith(ATTR_PREFIX) and _ATTR.match(attr) and attr not in _KEPT:
            value = ref.numpy()
            setattr(q, attr, value.item() if value.ndim == 0 else value)
    q.n_features_in_ = d
    return q, f"VQ Lens codebooks ({q.spec()}, {type(q).__name__})"
