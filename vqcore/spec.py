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
from .pq import ProductQuantizer
from .rq import ResidualQuantizer

QUANTIZERS = {
    "VQ": KMeansVQ,
    "PQ": ProductQuantizer,
    "OPQ": OPQ,
    "RQ": ResidualQuantizer,
    "AQ": AdditiveQuantizer,
    "GRVQ": GeneralizedResidualQuantizer,
}

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
