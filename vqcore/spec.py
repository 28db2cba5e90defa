"""Build a quantizer from a short spec in the faiss style.

``<METHOD><M>x<nbits>[_b<beam>]``: ``PQ8x8`` is 8 codebooks of 2^8 = 256 codes
(64 bits per vector); ``RQ8x8_b5`` is an 8-stage RQ encoded with a beam of 5;
``VQ1xK300`` is one codebook of 300 codes (K need not be a power of two).
"""

import re

from .aq import AdditiveQuantizer
from .exceptions import VQLensError
from .grvq import GeneralizedResidualQuantizer
from .kmeans import KMeansVQ
from .opq import OPQ
from .pq import ProductQuantizer, subspace_problem
from .rq import ResidualQuantizer

QUANTIZERS = {
    "VQ": KMeansVQ,
    "PQ": ProductQuantizer,
    "OPQ": OPQ,
    "RQ": ResidualQuantizer,
    "AQ": AdditiveQuantizer,
    "GRVQ": GeneralizedResidualQuantizer,
}

# methods that split the vector into M equal subspaces (M must divide d)
PRODUCT_METHODS = ("PQ", "OPQ")

_SPEC = re.compile(r"^(?P<method>[A-Z]+?)(?P<M>\d+)x(?:(?P<nbits>\d+)|K(?P<K>\d+))(?:_b(?P<beam>\d+))?$")


def parse_spec(spec):
    """Split a spec into (method, n_codebooks, codebook_size, beam_size or None)."""
    if not isinstance(spec, str):
        raise VQLensError(f"spec={spec!r} should be a string such as 'PQ8x8'.")
    m = _SPEC.match(spec.strip().upper().replace("XK", "xK").replace("X", "x").replace("_B", "_b"))
    if m is None or m.group("method") not in QUANTIZERS:
        raise VQLensError(
            f"spec={spec!r} is not understood. Write <METHOD><M>x<nbits>, e.g. 'PQ8x8', "
            f"'RQ4x8_b5' or 'VQ1xK300', with METHOD one of {', '.join(QUANTIZERS)}."
        )
    M = int(m.group("M"))
    if m.group("nbits") is not None:
        nbits = int(m.group("nbits"))
        if not 1 <= nbits <= 16:
            raise VQLensError(f"nbits={nbits} in spec={spec!r} should be between 1 and 16.")
        K = 2 ** nbits
    else:
        K = int(m.group("K"))
    beam = int(m.group("beam")) if m.group("beam") else None
    return m.group("method"), M, K, beam


def from_spec(spec, **params):
    """Make an unfitted quantizer from a spec; keyword arguments set other parameters.

    Examples
    --------
    >>> from vqcore import from_spec
    >>> q = from_spec("RQ8x8_b5", random_state=0)
    >>> type(q).__name__, q.n_codebooks, q.codebook_size, q.beam_size
    ('ResidualQuantizer', 8, 256, 5)
    >>> from_spec("OPQ4x8").faiss_string()
    'OPQ4,PQ4x8'
    """
    method, M, K, beam = parse_spec(spec)
    cls = QUANTIZERS[method]
    kwargs = {"codebook_size": K}
    if method == "VQ":
        if M != 1:
            raise VQLensError(f"spec={spec!r}: VQ has exactly one codebook; write 'VQ1x{K.bit_length() - 1}'.")
    else:
        kwargs["n_codebooks"] = M
    if beam is not None:
        if "beam_size" not in cls().get_params():
            raise VQLensError(f"spec={spec!r}: {method} has no beam search; drop '_b{beam}'.")
        kwargs["beam_size"] = beam
    kwargs.update(params)
    return cls(**kwargs)


def format_spec(method, n_codebooks, codebook_size, beam_size=1):
    """The spec of ``method`` with M codebooks of K codes (``parse_spec``'s inverse).

    K that is not a power of two is written ``K<size>`` (``VQ1xK300``); a beam
    wider than 1 is appended as ``_b<beam>`` (``RQ8x8_b5``). VQ always has one
    codebook.

    Examples
    --------
    >>> format_spec("RQ", 8, 256, 5), format_spec("VQ", 1, 300), format_spec("PQ", 4, 16)
    ('RQ8x8_b5', 'VQ1xK300', 'PQ4x4')
    """
    K = int(codebook_size)
    size = str(K.bit_length() - 1) if K > 0 and K & (K - 1) == 0 else f"K{K}"
    s = f"{method}{1 if method == 'VQ' else int(n_codebooks)}x{size}"
    if beam_size and beam_size > 1:
        s += f"_b{int(beam_size)}"
    return s


def fit_problem(method, n_codebooks, codebook_size, *, n_samples=None, n_features=None, rows="n_samples"):
    """Why ``method`` with M codebooks of K codes cannot be fitted on ``n_samples`` rows of
    ``n_features`` columns, or None when it can.

    The one feasibility rule of a fit, used by the quantizers' ``fit``, the app's settings form and
    the Compare page's plan: VQ has one codebook; PQ and OPQ need M to divide d; k-means cannot place
    more centroids than there are training rows (``rows`` names them in the message).
    ``n_samples`` or ``n_features`` None skips the rules that need them.
    """
    M, K = int(n_codebooks), int(codebook_size)
    if method == "VQ" and M != 1:
        return f"VQ has exactly one codebook, not n_codebooks={M}."
    if method in PRODUCT_METHODS and n_features is not None:
        problem = subspace_problem(M, int(n_features))
        if problem:
            return problem
    if n_samples is not None and int(n_samples) < K:
        return (f"{rows}={int(n_samples)} should be >= codebook_size={K}: k-means cannot "
                "place more centroids than there are points. Use a smaller codebook_size "
                "(fewer bits) or more data.")
    return None


def budget_specs(methods, budgets, nbits, *, n_samples, n_features, beam_sizes=None):
    """The specs that spend each bit budget with codes of ``nbits`` bits, and why the others are skipped.

    Each method gets M = bits / nbits codebooks of K = 2^nbits codes (``beam_sizes[method]``, if
    given, as its beam); a pair that ``fit_problem`` refuses on ``n_samples`` training rows of
    ``n_features`` columns is skipped.

    Returns
    -------
    plan : list of (method, bits, spec)
    skipped : list of str, one sentence per skipped pair
    """
    plan, skipped = [], []
    K = 2 ** int(nbits)
    for method in methods:
        for bits in sorted(budgets):
            if bits % nbits:
                skipped.append(f"{method} at {bits} bits: not a multiple of {nbits} bits per code")
                continue
            M = bits // nbits
            if method == "VQ" and M != 1:
                skipped.append(f"VQ at {bits} bits: one codebook of 2^{bits} codes is too many for k-means")
                continue
            if method in PRODUCT_METHODS and n_features % M:
                skipped.append(f"{method} at {bits} bits: M={M} does not divide d={n_features}")
                continue
            if fit_problem(method, M, K, n_samples=n_samples):
                skipped.append(f"{method} at {bits} bits: K={K} codes need at least that many training rows")
                continue
            plan.append((method, bits, format_spec(method, M, K, (beam_sizes or {}).get(method, 1))))
    return plan, skipped
