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
