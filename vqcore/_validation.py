"""Input checks shared by every quantizer, metric and loader.

Errors follow the scikit-learn habit: they name the parameter and repeat the
bad value, e.g. ``n_samples=5 should be >= codebook_size=8.``
"""

import numbers

import numpy as np

from .exceptions import DataError, VQLensError


def check_int(name, value, *, low=None, high=None):
    """Return ``value`` as an int, or raise naming ``name`` and the value."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise VQLensError(f"{name}={value!r} should be an integer.")
    value = int(value)
    if low is not None and value < low:
        raise VQLensError(f"{name}={value} should be >= {low}.")
    if high is not None and value > high:
        raise VQLensError(f"{name}={value} should be <= {high}.")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise VQLensError(f"{name}={value!r} should be one of {sorted(choices)}.")
    return value


def check_data(X, *, name="X", min_rows=1):
    """Return X as a C-contiguous float32 array of shape (n, d).

    Raises :class:`DataError` for anything that is not a finite 2-D numeric
    array with at least ``min_rows`` rows and one column.
    """
    if isinstance(X, np.ndarray) and X.dtype == object:
        raise DataError(f"{name} has dtype object; pass a numeric array.")
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name} has dtype {arr.dtype}; pass a numeric array (float or int).")
    if arr.ndim != 2:
        raise DataError(
            f"{name} should be 2-D of shape (n_samples, n_features), got shape {arr.shape}. "
            "Reshape a single vector with X.reshape(1, -1) or a single feature with X.reshape(-1, 1)."
        )
    n, d = arr.shape
    if d < 1:
        raise DataError(f"{name} has shape {arr.shape}: it needs at least one feature column.")
    if n < min_rows:
        raise DataError(f"{name} has n_samples={n}; at least {min_rows} row(s) are needed.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    # checked in row blocks: a whole-array mask would cost n*d bytes more
    step = max(1, (16 * 2**20) // max(1, d))
    if not all(np.isfinite(arr[a:a + step]).all() for a in range(0, n, step)):
        bad = int(sum((~np.isfinite(arr[a:a + step])).any(axis=1).sum() for a in range(0, n, step)))
        raise DataError(
            f"{name} contains NaN or infinite values in {bad} row(s) "
            "(or values too large for float32); drop or repair those rows first."
        )
    return arr


def check_dim(X, d_expected, *, name="X"):
    if X.shape[1] != d_expected:
        raise DataError(
            f"{name} has n_features={X.shape[1]} but the quantizer was fitted with "
            f"n_features={d_expected}."
        )


def check_random_state(seed):
    """A numpy Generator from None, an int, or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, numbers.Integral):
        return np.random.default_rng(seed)
    if isinstance(seed, np.random.RandomState):
        return np.random.default_rng(seed.randint(0, 2**31 - 1))
    raise VQLensError(f"random_state={seed!r} should be None, an integer or a numpy Generator.")


def code_dtype(codebook_size):
    """The smallest unsigned integer dtype that holds codes 0..codebook_size-1."""
    if codebook_size <= 2**8:
        return np.uint8
    if codebook_size <= 2**16:
        return np.uint16
    return np.uint32


def check_tol(tol, name="tol"):
    """A relative tolerance in [0, 1], as a float; else an error naming it."""
    return check_real(name, tol, low=0.0, high=1.0)


def check_real(name, value, *, low=None, high=None, inclusive=True):
    """Return ``value`` as a float within [low, high] (or (low, high)), else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise VQLensError(f"{name}={value!r} should be a real number.")
    value = float(value)
    if not np.isfinite(value):
        raise VQLensError(f"{name}={value} should be finite.")
    if inclusive:
        too_low = low is not None and value < low
        too_high = high is not None and value > high
        lo_op, hi_op = ">=", "<="
    else:
        too_low = low is not None and value <= low
        too_high = high is not None and value >= high
        lo_op, hi_op = ">", "<"
    if too_low:
        raise VQLensError(f"{name}={value} should be {lo_op} {low}.")
    if too_high:
        raise VQLensError(f"{name}={value} should be {hi_op} {high}.")
    return value


# Counting allocates one bin per code (and K_a * K_b bins per pair for the joint
# histogram, unless that is much larger than n); beyond this a codebook is not a
# codebook but unindexed ids, and a clear error beats a MemoryError.
MAX_COUNTED_CODEBOOK_SIZE = 2**26
# Largest float that still holds every integer exactly.
MAX_EXACT_FLOAT_INT = 2**53


def check_sizes(value, n_codebooks, *, name):
    """Return a list of ``n_codebooks`` ints >= 1 from one int or a sequence."""
    if np.ndim(value) == 0:
        size = check_int(name, value.item() if isinstance(value, np.ndarray) else value, low=1)
        if n_codebooks is None:
            raise VQLensError(
                f"{name}={size} is a single size, so n_codebooks is needed; "
                f"pass n_codebooks or one size per codebook."
            )
        return [size] * n_codebooks
    try:
        values = list(value)
    except TypeError:
        raise VQLensError(
            f"{name}={value!r} should be an integer or a sequence of integers."
        ) from None
    if n_codebooks is not None and len(values) != n_codebooks:
        raise VQLensError(
            f"{name} has {len(values)} entries but there are n_codebooks={n_codebooks} "
            f"positions; pass one size per position or a single integer."
        )
    if not values:
        raise VQLensError(f"{name}={value!r} is empty; pass at least one codebook size.")
    return [check_int(f"{name}[{m}]", v, low=1) for m, v in enumerate(values)]


def _value_error(message, reason, row, column, n_bad):
    """A DataError about the values of a code array, with what is wrong and where the value it names is."""
    error = DataError(message)
    error.reason, error.row, error.column, error.n_bad = reason, int(row), int(column), int(n_bad)
    return error


def check_codes(codes, codebook_size=None, *, counted=False, min_rows=1):
    """Validate codes; return ``(codes, sizes)``.

    The one check of code arrays, used by the metrics, the Semantic IDs engine
    and the quantizers' ``decode``. ``codes`` comes back as a 2-D array of a
    non-negative integer dtype (floats holding whole numbers are converted to
    int64), ``sizes`` as a list of M ints (``codebook_size`` per codebook, or
    the largest code + 1 when it is None). ``counted=True`` also bounds the
    sizes, for functions that allocate one histogram bin per code.
    ``min_rows=0`` accepts an empty (0, M) array.

    A :class:`DataError` about the values also carries ``reason``
    (``"not whole"``, ``"negative"`` or ``"too large"`` for K), ``row`` and
    ``column``, where the value its message names is, and ``n_bad``, how many
    values fail the same way, so that a caller can add its own context
    without a second check (:func:`vqcore.io.load_codes` names the row of the
    file and says what to do).
    """
    if isinstance(codes, np.ndarray) and codes.dtype == object:
        raise DataError("codes has dtype object; pass an integer array of code indices.")
    try:
        arr = np.asarray(codes)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"codes could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "iuf":
        raise DataError(f"codes has dtype {arr.dtype}; pass an integer array of code indices.")
    if arr.ndim != 2:
        hint = " For a single codebook use codes.reshape(-1, 1)." if arr.ndim == 1 else ""
        raise DataError(
            f"codes should be 2-D of shape (n_samples, n_codebooks), got shape {arr.shape}.{hint}"
        )
    n, n_codebooks = arr.shape
    if n < min_rows or n_codebooks < 1:
        raise DataError(f"codes has shape {arr.shape}; it needs at least one row and one column.")
    if n == 0:
        arr = arr.astype(np.int64) if arr.dtype.kind == "f" else arr
        sizes = [0] * n_codebooks if codebook_size is None else check_sizes(codebook_size, n_codebooks,
                                                                            name="codebook_size")
        return arr, sizes
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) >= MAX_EXACT_FLOAT_INT)
        if bad.any():
            i, m = np.argwhere(bad)[0]
            raise _value_error(
                f"codes[{i}, {m}]={arr[i, m].item()!r} is not a whole number below 2**53; "
                f"codes should be integers >= 0.", "not whole", i, m, bad.sum()
            )
        arr = arr.astype(np.int64)
    lows, highs = arr.min(axis=0), arr.max(axis=0)
    negative = np.flatnonzero(lows < 0)
    if negative.size:
        m = int(negative[0])
        raise _value_error(
            f"codes[:, {m}] contains the negative value {int(lows[m])}; codes should be "
            f"integers >= 0.", "negative", np.argmax(arr[:, m] == lows[m]), m, (arr < 0).sum()
        )
    if codebook_size is None:
        sizes = [int(h) + 1 for h in highs]
    else:
        sizes = check_sizes(codebook_size, n_codebooks, name="codebook_size")
        for m, (high, size) in enumerate(zip(highs, sizes, strict=True)):
            if int(high) >= size:
                which = (
                    f"codebook_size={size}"
                    if np.ndim(codebook_size) == 0
                    else (f"codebook_size[{m}]={size}")
                )
                raise _value_error(
                    f"codes[:, {m}] contains the value {int(high)} but {which}; codes of a "
                    f"codebook of size K should be in 0..K-1.", "too large", np.argmax(arr[:, m] == high), m,
                    (arr >= np.asarray(sizes)).sum()
                )
    if counted:
        for m, size in enumerate(sizes):
            if size > MAX_COUNTED_CODEBOOK_SIZE:
                raise DataError(
                    f"codes[:, {m}] needs a codebook of size {size}, more than "
                    f"{MAX_COUNTED_CODEBOOK_SIZE} codes to count; codes should be indices "
                    f"0..K-1 (re-index ids with np.unique(..., return_inverse=True))."
                )
    return arr, sizes
