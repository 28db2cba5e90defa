"""Data sets to try quantizers on without a file of your own.

Every loader and generator returns a :class:`Dataset`: a float32 array plus
optional per-row labels, a short name and a one-line description. ``SAMPLES``
lists them for the app's picker.

- :func:`load_sample`: 6,000 real sentence embeddings (all-MiniLM-L6-v2, 384-d,
  unit norm) of King James Bible verses and fortune cookies, with their texts.
  Shipped in ``vqcore/data/minilm_sample.npz``; ``vqcore/data/SAMPLE.md`` says
  how it was made (``scripts/make_sample.py``).
- :func:`load_digits_dataset`: scikit-learn's 8x8 handwritten digits.
- :func:`make_gaussian`: uncorrelated or AR(1)-correlated Gaussian data.
- :func:`make_mixture`: a labelled mixture of Gaussian clusters.
- :func:`make_rotated`: very unequal variances mixed by a random rotation, the
  case where OPQ beats PQ.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ._validation import (
    check_choice,
    check_data,
    check_int,
    check_random_state,
    check_real,
)
from .exceptions import DataError, VQLensError

__all__ = [
    "Dataset",
    "SAMPLES",
    "SAMPLE_PATH",
    "load_digits_dataset",
    "load_sample",
    "make_gaussian",
    "make_mixture",
    "make_plane",
    "make_rotated",
]

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "minilm_sample.npz"
_SAMPLE_KEYS = ("embeddings", "texts", "source")


@dataclass(frozen=True)
class Dataset:
    """A data set ready for a quantizer.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), dtype float32
        The vectors.
    labels : list of str of length n_samples, or None
        One label per row (a text, a class name), or None if rows have none.
    name : str
        Short name for a picker or a chart title.
    description : str
        One or two sentences saying what the data is and where it came from.
    """

    X: np.ndarray
    labels: list | None
    name: str
    description: str

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]




# --------------------------------------------------------------------------
# shipped real data


def load_sample():
    """Real sentence embeddings of real text, shipped with VQ Lens.

    6,000 texts (King James Bible verses and Debian fortune cookies, each under
    300 characters) embedded with sentence-transformers all-MiniLM-L6-v2:
    384-d, L2-normalised, stored as float16 and returned as float32 (norms are
    1 within about 1e-4). ``vqcore/data/SAMPLE.md`` gives the package
    versions, seed and licences.

    Returns
    -------
    dataset : Dataset
        ``X`` of shape (6000, 384), float32; ``labels`` the texts, one per row.

    Examples
    --------
    >>> ds = load_sample()
    >>> ds.X.shape, ds.X.dtype.name
    ((6000, 384), 'float32')
    """
    return _read_sample(SAMPLE_PATH)


def _read_sample(path):
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"The shipped sample {path} is missing; reinstall VQ Lens or rebuild it "
            "with `python scripts/make_sample.py`."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _SAMPLE_KEYS if k not in z.files]
            if missing:
                raise DataError(f"{path.name} lacks the array(s) {missing}; rebuild it.")
            X = check_data(z["embeddings"], name="embeddings")
            texts = z["texts"]
            source = z["source"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, VQLensError):
            raise
        raise DataError(f"{path.name} could not be read as an npz file: {exc}") from None
    if texts.shape != (X.shape[0],):
        raise DataError(
            f"{path.name} has {X.shape[0]} embeddings but texts of shape {texts.shape}."
        )
    counts = {s: int(c) for s, c in zip(*np.unique(source, return_counts=True))}
    return Dataset(
        X=X,
        labels=texts.tolist(),
        name="MiniLM sentences",
        description=(
            f"{X.shape[0]:,} real sentence embeddings ({X.shape[1]}-d, unit norm, "
            f"all-MiniLM-L6-v2) of {counts.get('kjv', 0):,} King James Bible verses and "
            f"{counts.get('fortune', 0):,} fortune cookies; labels are the texts."
        ),
    )


def load_digits_dataset():
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels (0..16).

    Returns
    -------
    dataset : Dataset
        ``X`` of shape (1797, 64), float32; ``labels`` like ``"digit 3"``.

    Examples
    --------
    >>> load_digits_dataset().X.shape
    (1797, 64)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = np.ascontiguousarray(digits.data, dtype=np.float32)
    return Dataset(
        X=X,
        labels=[f"digit {t}" for t in digits.target],
        name="Digits",
        description=(
            f"{X.shape[0]:,} handwritten digits as {X.shape[1]} pixel intensities "
            "(8x8, 0..16), from scikit-learn (UCI optical digits)."
        ),
    )


# --------------------------------------------------------------------------
# synthetic data


def make_gaussian(n=5000, d=16, *, correlated=False, rho=0.9, random_state=None):
    """Gaussian data, uncorrelated N(0, I) or correlated with covariance rho^|i-j|.

    Correlated and uncorrelated Gaussian sources are the textbook test cases
    for vector quantizers, and the ones used to evaluate NSVQ (Vali and
    Backstrom, 2022). The correlated case is a unit-variance first-order
    autoregressive (AR(1)) sequence along the dimensions::

        x_1 = z_1,    x_j = rho * x_{j-1} + sqrt(1 - rho^2) * z_j,

    with z ~ N(0, I), so ``Cov(x_i, x_j) = rho^|i-j|`` exactly.

    Parameters
    ----------
    n : int, default=5000
        Number of vectors.
    d : int, default=16
        Dimension.
    correlated : bool, default=False
        False for N(0, I); True for the AR(1) covariance.
    rho : float, default=0.9
        Correlation of neighbouring dimensions, in (-1, 1); used only when
        ``correlated`` is True.
    random_state : None, int or numpy Generator
        Seed for reproducible data.

    Returns
    -------
    dataset : Dataset
        ``X`` of shape (n, d), float32; ``labels`` None.

    References
    ----------
    M. H. Vali and T. Backstrom, "NSVQ: Noise Substitution in Vector
    Quantization for Machine Learning", IEEE Access, vol. 10, pp. 13598-13610,
    2022.

    Examples
    --------
    >>> ds = make_gaussian(1000, 4, correlated=True, rho=0.5, random_state=0)
    >>> ds.X.shape
    (1000, 4)
    """
    n = check_int("n", n, low=1)
    d = check_int("d", d, low=1)
    correlated = check_choice("correlated", correlated, {False, True})
    rho = check_real("rho", rho, low=-1.0, high=1.0, inclusive=False)
    rng = check_random_state(random_state)
    Z = rng.standard_normal((n, d))
    if correlated:
        X = np.empty_like(Z)
        X[:, 0] = Z[:, 0]
        s = np.sqrt(1.0 - rho * rho)
        for j in range(1, d):
            X[:, j] = rho * X[:, j - 1] + s * Z[:, j]
        name = f"Gaussian, correlated (rho={rho:g})"
        what = f"correlated Gaussian vectors, covariance rho^|i-j| with rho={rho:g}"
    else:
        X = Z
        name = "Gaussian, uncorrelated"
        what = "uncorrelated Gaussian vectors, N(0, I)"
    return Dataset(
        X=np.ascontiguousarray(X, dtype=np.float32),
        labels=None,
        name=name,
        description=f"{n:,} {d}-d {what}.",
    )


def make_plane(n=1500, rho=0.8, *, random_state=0):
    """The 2-D toy of the Learn page: n Gaussian points with correlation ``rho`` between the coordinates.

    ``make_gaussian(n, 2, correlated=True, rho=rho)``, and N(0, I) for ``rho=0``.

    Examples
    --------
    >>> make_plane(4, 0.5).X.shape
    (4, 2)
    """
    rho = float(rho)
    return make_gaussian(n, 2, correlated=abs(rho) > 0, rho=rho if abs(rho) > 0 else 0.5,
                         random_state=random_state)


def make_mixture(n=5000, d=16, n_components=10, *, spread=3.0, random_state=None):
    """A mixture of spherical Gaussian clusters, each row labelled with its cluster.

    Centres are drawn from N(0, spread^2 I); each point is its centre plus
    N(0, I) noise. Points are split as evenly as possible between the
    components (every component gets ``n // n_components`` or one more), so
    every component is present.

    Parameters
    ----------
    n : int, default=5000
        Number of vectors; at least ``n_components``.
    d : int, default=16
        Dimension.
    n_components : int, default=10
        Number of clusters.
    spread : float, default=3.0
        Standard deviation of the centres, in units of the clusters' own
        standard deviation (1). Larger values separate the clusters more.
    random_state : None, int or numpy Generator
        Seed for reproducible data.

    Returns
    -------
    dataset : Dataset
        ``X`` of shape (n, d), float32; ``labels`` like ``"component 3"``.

    Examples
    --------
    >>> ds = make_mixture(100, 2, 4, random_state=0)
    >>> sorted(set(ds.labels))
    ['component 0', 'component 1', 'component 2', 'component 3']
    """
    n = check_int("n", n, low=1)
    d = check_int("d", d, low=1)
    n_components = check_int("n_components", n_components, low=1)
    if n < n_components:
        raise VQLensError(f"n={n} should be >= n_components={n_components}.")
    spread = check_real("spread", spread, low=0.0)
    rng = check_random_state(random_state)
    centres = spread * rng.standard_normal((n_components, d))
    comp = rng.permutation(np.arange(n) % n_components)
    X = centres[comp] + rng.standard_normal((n, d))
    return Dataset(
        X=np.ascontiguousarray(X, dtype=np.float32),
        labels=[f"component {k}" for k in comp],
        name="Gaussian mixture",
        description=(
            f"{n:,} {d}-d points from {n_components} Gaussian clusters "
            f"(unit variance, centres spread {spread:g}); labels are the clusters."
        ),
    )


def make_rotated(n=5000, d=32, *, random_state=None):
    """Dimensions of very unequal variance, mixed by a random orthogonal rotation.

    Before the rotation, dimension j has variance ``1000^(-j/(d-1))``: from 1
    down to 0.001, log-spaced. A random rotation Q (Haar-distributed, from the
    QR decomposition of a Gaussian matrix) then spreads every direction over
    all coordinates, so the coordinates have similar variances but are strongly
    correlated *across* PQ's contiguous subspaces. PQ, which quantizes the
    subspaces independently, wastes bits on this; OPQ learns a rotation that
    undoes Q and balances the variance between subspaces (Ge et al., 2013).

    Parameters
    ----------
    n : int, default=5000
        Number of vectors.
    d : int, default=32
        Dimension; at least 2.
    random_state : None, int or numpy Generator
        Seed for reproducible data (the rotation and the points).

    Returns
    -------
    dataset : Dataset
        ``X`` of shape (n, d), float32; ``labels`` None.

    References
    ----------
    T. Ge, K. He, Q. Ke and J. Sun, "Optimized Product Quantization for
    Approximate Nearest Neighbor Search", CVPR 2013.

    Examples
    --------
    >>> make_rotated(200, 8, random_state=0).X.shape
    (200, 8)
    """
    n = check_int("n", n, low=1)
    d = check_int("d", d, low=2)
    rng = check_random_state(random_state)
    std = np.logspace(0.0, -1.5, d)  # variances 1 .. 10^-3
    Z = rng.standard_normal((n, d)) * std
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    Q *= np.sign(np.diag(R))  # Haar measure, not just any orthogonal matrix
    X = Z @ Q.T
    return Dataset(
        X=np.ascontiguousarray(X, dtype=np.float32),
        labels=None,
        name="Rotated anisotropic",
        description=(
            f"{n:,} {d}-d Gaussian vectors whose principal variances fall from 1 to "
            "0.001, mixed by a random rotation: the case where OPQ beats PQ."
        ),
    )


SAMPLES = {
    "MiniLM sentences": (
        load_sample,
        "6,000 real sentence embeddings (all-MiniLM-L6-v2, 384-d) of Bible verses "
        "and fortune cookies, with their texts.",
    ),
    "Digits": (
        load_digits_dataset,
        "1,797 handwritten 8x8 digits (64-d) from scikit-learn, labelled by digit.",
    ),
    "Gaussian, uncorrelated": (
        partial(make_gaussian, correlated=False, random_state=0),
        "5,000 16-d vectors from N(0, I): no structure to exploit.",
    ),
    "Gaussian, correlated": (
        partial(make_gaussian, correlated=True, rho=0.9, random_state=0),
        "5,000 16-d Gaussian vectors with covariance 0.9^|i-j| (AR(1)).",
    ),
    "Gaussian mixture": (
        partial(make_mixture, random_state=0),
        "5,000 16-d points in 10 labelled Gaussian clusters.",
    ),
    "Rotated anisotropic": (
        partial(make_rotated, random_state=0),
        "5,000 32-d vectors, very unequal variances mixed by a random rotation: "
        "OPQ beats PQ here.",
    ),
}
"""Name -> (callable returning a :class:`Dataset`, description), for a picker."""
