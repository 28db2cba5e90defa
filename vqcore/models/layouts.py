"""Recognise a trained quantizer in a model's tensors, by their names and shapes.

Every layout turns named tensors (``{"layers.0._codebook.embed": ref, ...}``)
into an :class:`~vqcore.models.quantizer.Encoder` and a sentence saying what
was found. Names may carry any leading path (``model.``, ``state_dict.``,
``rq.``): a checkpoint's nesting is flattened to dotted names first.

Understood:

- vector-quantize-pytorch (lucidrains) ``ResidualVQ``:
  ``layers.{m}._codebook.embed`` of shape (1, K, c), with ``project_in`` /
  ``project_out`` when ``codebook_dim`` differs from ``dim``;
- its ``VectorQuantize``: ``_codebook.embed`` (1, K, c), or (H, K, c) with
  ``separate_codebook_per_head``; several heads sharing one codebook are
  recognised from ``project_in``; ``project_in`` may end in a LayerNorm
  (``layernorm_after_project_in``); the ``affine_param`` statistics are
  applied to the codebook as the library does;
- its ``GroupedResidualVQ``: ``rvqs.{g}.layers.{m}._codebook.embed``, each
  group with its own projections;
- vqtorch ``VectorQuant``: ``codebook.weight`` (K, c), with the running
  statistics of ``affine_transform`` applied;
- RQ-VAE repositories for semantic IDs: a list of quantizer layers each with an
  ``embedding.weight`` of (K, c) (LC-Rec's ``rq.vq_layers.{m}``, RQ-VAE-Recommender's
  ``layers.{m}``, with its ``out_proj`` when present), usually after an MLP encoder;
- a list of codebook tensors ``codebooks.{m}`` (K, c), or one tensor picked by ``prefix=``:
  (K, c) for one codebook, (M, K, c) for M residual levels.

Cosine-similarity codebooks (vector-quantize-pytorch's ``use_cosine_sim``)
hold unit-norm codewords, and for codewords of equal norm the nearest one
(smallest ``||x - c||^2 = ||x||^2 - 2 x.c + 1``) is the one of largest
``x.c``, which is the library's rule (largest cosine after normalising x):
the codes are the same, and they are recognised and said.
"""

from __future__ import annotations

import re

import numpy as np

from ..exceptions import DataError
from .quantizer import Affine, Encoder, Group

# containers a checkpoint keeps its weights under (for the note on an RQ-VAE's encoder)
PREFERRED_ROOTS = ("state_dict.", "model_state_dict.", "model.", "module.", "net.", "params.", "weights.",
                   "ema.", "ema_model.", "model_ema.", "ema_state_dict.")
# a checkpoint's moving-average copy of the weights: taken only when nothing else is there
_EMA_ROOTS = ("ema", "ema_model", "model_ema", "ema_state_dict", "ema_params", "shadow")

_VQP_GROUPED = re.compile(r"^(?P<p>.*?)rvqs\.(?P<g>\d+)\.layers\.(?P<m>\d+)\._codebook\.embed$")
_VQP_RESIDUAL = re.compile(r"^(?P<p>.*?)layers\.(?P<m>\d+)\._codebook\.embed$")
_VQP_SINGLE = re.compile(r"^(?P<p>.*?)_codebook\.embed$")
_EMBEDDING_LIST = re.compile(r"^(?P<p>.*?)(?P<list>[A-Za-z_]\w*)\.(?P<m>\d+)\.embedding\.weight$")
_VQTORCH = re.compile(r"^(?P<p>.*?)codebook\.weight$")
_CODEBOOK_LIST = re.compile(r"^(?P<p>.*?)codebooks\.(?P<m>\d+)$")


class Found:
    """A recognised layout: its name, where it sits (prefix) and how to build its encoder."""

    def __init__(self, name, prefix, build, rank=0):
        self.name, self.prefix, self.build, self.rank = name, prefix, build, rank

    def key(self):
        """Training weights before their EMA copy, then the more specific layout, then the shorter path."""
        ema = self.prefix.split(".", 1)[0] in _EMA_ROOTS
        return (ema, self.rank, len(self.prefix))


def describe_tensors(refs, limit=40):
    """``name (shape, dtype)`` of the tensors found, one per line, for error messages."""
    lines = [f"  {name} {tuple(ref.shape)} {ref.dtype}" for name, ref in list(refs.items())[:limit]]
    if len(refs) > limit:
        lines.append(f"  ... and {len(refs) - limit} more")
    return "\n".join(lines)


def float_tensor(refs, name, what, *, ndim=None):
    """Tensor ``name`` of ``refs`` as a finite float32 array, with ``ndim`` dimensions when given.

    Raises :class:`~vqcore.exceptions.DataError`, naming the file (``what``)
    and the tensor, for a tensor that is not float, has another number of
    dimensions, or holds NaN or infinite values (a model that diverged).
    """
    ref = refs[name]
    if ref.dtype not in ("float32", "float64", "float16", "bfloat16"):
        raise DataError(f"{what}: tensor {name!r} has dtype {ref.dtype}; a codebook or projection should be float.")
    if ndim is not None and len(ref.shape) != ndim:
        raise DataError(f"{what}: tensor {name!r} has shape {tuple(ref.shape)}; expected {ndim} dimensions.")
    arr = ref.numpy().astype(np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(
            f"{what}: tensor {name!r} holds {bad} NaN or infinite value(s); the model diverged or the file is "
            "damaged. Load a checkpoint saved before training broke down."
        )
    return arr


def _affine(refs, base, what):
    """An nn.Linear at ``base`` (``.weight``, ``.bias``), or a Linear then a LayerNorm (``.0``, ``.1``)."""
    if base + ".weight" in refs:
        W = float_tensor(refs, base + ".weight", what, ndim=2)
        b = float_tensor(refs, base + ".bias", what, ndim=1) if base + ".bias" in refs else None
        return Affine(W, b)
    if base + ".0.weight" in refs:
        aff = _affine(refs, base + ".0", what)
        if base + ".1.weight" in refs:
            aff.ln_weight = float_tensor(refs, base + ".1.weight", what, ndim=1)
            if base + ".1.bias" in refs:
                aff.ln_bias = float_tensor(refs, base + ".1.bias", what, ndim=1)
        return aff
    return None


def _check_initted(refs, base, what):
    name = base + "initted"
    if name in refs and refs[name].size == 1 and not bool(refs[name].numpy().reshape(-1)[0]):
        raise DataError(
            f"{what}: {name} is False: this codebook was never initialised (k-means init runs on the first "
            "training batch). Save the model after training."
        )


def _vqp_codebook(refs, base, what, notes):
    """A vector-quantize-pytorch Codebook at ``base`` (``base._codebook.``): (H, K, c) with affine stats applied."""
    cb = base + "_codebook."
    _check_initted(refs, cb, what)
    E = float_tensor(refs, cb + "embed", what, ndim=3)
    if cb + "codebook_mean" in refs:
        # affine_param=True: embed = (embed - codebook_mean) * batch_std / codebook_std + batch_mean
        mean_c = float_tensor(refs, cb + "codebook_mean", what)
        std_c = np.sqrt(np.maximum(float_tensor(refs, cb + "codebook_variance", what), 1e-5))
        if cb + "batch_mean" not in refs:
            raise DataError(f"{what}: {cb}codebook_mean is present but batch_mean is not; the model was saved "
                            "before its first training step.")
        mean_b = float_tensor(refs, cb + "batch_mean", what)
        std_b = np.sqrt(np.maximum(float_tensor(refs, cb + "batch_variance", what), 1e-5))
        E = ((E - mean_c) * (std_b / std_c) + mean_b).astype(np.float32)
        notes.append("affine_param statistics applied to the codebook, as the library does at inference")
    norms = np.linalg.norm(E, axis=-1)
    if E.size and np.allclose(norms, 1.0, atol=1e-4):
        notes.append("unit-norm codewords (use_cosine_sim): nearest codeword = largest cosine, the same codes")
    return E


def _vqp_groups_split(H, c, E, what):
    """Heads of a VectorQuantize: H slices of width c of the projected input, own or shared codebook."""
    if E.shape[0] not in (1, H):
        raise DataError(f"{what}: the codebook has {E.shape[0]} heads but project_in gives {H}.")
    groups = []
    for h in range(H):
        books = E[h if E.shape[0] == H else 0][None]
        sl = slice(h * c, (h + 1) * c)
        groups.append(Group(books=books, cols=sl, out_cols=sl))
    return groups


def _build_vqp_single(refs, p, what):
    notes = []
    E = _vqp_codebook(refs, p, what, notes)
    c = E.shape[2]
    stem_in, stem_out = _affine(refs, p + "project_in", what), _affine(refs, p + "project_out", what)
    if stem_in is not None:
        if stem_in.n_out % c:
            raise DataError(f"{what}: project_in gives {stem_in.n_out} values, not a multiple of codebook_dim={c}.")
        H = stem_in.n_out // c
        notes.insert(0, f"encodes through project_in ({stem_in.n_in} -> {stem_in.n_out}"
                        + (", then a LayerNorm" if stem_in.ln_weight is not None else "") + ")"
                        + (" and decodes through project_out" if stem_out is not None else ""))
    else:
        H = E.shape[0]
    groups = _vqp_groups_split(H, c, E, what)
    kind = "vector-quantize-pytorch VectorQuantize" + (f" with {H} heads" if H > 1 else "")
    if H > 1:
        kind += " (one codebook per head)" if E.shape[0] == H else " (sharing one codebook)"
    return Encoder(groups, stem_in, stem_out, notes), kind


def _levels(refs, pattern, p, extra=""):
    found = {}
    for name in refs:
        m = pattern.match(name)
        if m and m.group("p") == p and (not extra or m.groupdict().get("g") == extra):
            found[int(m.group("m"))] = name
    return found


def _contiguous(found, what, noun):
    ms = sorted(found)
    if ms != list(range(len(ms))):
        raise DataError(f"{what}: {noun} are numbered {ms}; levels 0..{len(ms) - 1} are needed, without gaps.")
    return [found[m] for m in ms]


def _uniform(books, what):
    Ks = {b.shape[-2] for b in books}
    cs = {b.shape[-1] for b in books}
    if len(Ks) > 1:
        raise DataError(f"{what}: the levels have different codebook sizes {sorted(Ks)}; VQ Lens needs one K for "
                        "all levels.")
    if len(cs) > 1:
        raise DataError(f"{what}: the levels have codewords of different lengths {sorted(cs)}.")


def _residual_group(refs, p, what, notes, pattern=_VQP_RESIDUAL, g=""):
    names = _contiguous(_levels(refs, pattern, p, g), what, "the codebooks")
    books = []
    for name in names:
        base = name[: -len("_codebook.embed")]
        E = _vqp_codebook(refs, base, what, notes)
        if E.shape[0] != 1:
            raise DataError(f"{what}: {name} has {E.shape[0]} heads; a ResidualVQ level has one.")
        books.append(E[0])
    _uniform(books, what)
    return np.stack(books)


def _dedupe(notes):
    out = []
    for n in notes:
        if n not in out:
            out.append(n)
    return out


def _build_vqp_residual(refs, p, what):
    if any(n.startswith(p + "mlps.") for n in refs):
        raise DataError(f"{what}: this ResidualVQ uses an implicit neural codebook (mlps.*, QINCo), whose codewords "
                        "depend on the earlier codes through an MLP; VQ Lens cannot reproduce it.")
    notes = []
    books = _residual_group(refs, p, what, notes)
    c = books.shape[2]
    stem_in, stem_out = _affine(refs, p + "project_in", what), _affine(refs, p + "project_out", what)
    if stem_in is not None:
        if stem_in.n_out != c:
            raise DataError(f"{what}: project_in gives {stem_in.n_out} values but the codebooks have length {c}.")
        notes.insert(0, f"encodes through project_in ({stem_in.n_in} -> {c}) and decodes through project_out")
    group = Group(books=books, cols=slice(0, c), out_cols=slice(0, c))
    kind = f"vector-quantize-pytorch ResidualVQ ({books.shape[0]} levels)"
    return Encoder([group], stem_in, stem_out, _dedupe(notes)), kind


def _build_vqp_grouped(refs, p, what):
    gs = sorted({int(m.group("g")) for n in refs if (m := _VQP_GROUPED.match(n)) and m.group("p") == p})
    if gs != list(range(len(gs))):
        raise DataError(f"{what}: the groups rvqs.* are numbered {gs}, with gaps.")
    notes, groups, start = [], [], 0
    for g in gs:
        base = f"{p}rvqs.{g}."
        books = _residual_group(refs, base, what, notes)
        pin, pout = _affine(refs, base + "project_in", what), _affine(refs, base + "project_out", what)
        width = pin.n_in if pin is not None else books.shape[2]
        out_width = pout.n_out if pout is not None else books.shape[2]
        if pin is not None:
            notes.append(f"each group encodes through its project_in ({pin.n_in} -> {pin.n_out})")
        groups.append(Group(books=books, cols=slice(start, start + width), out_cols=slice(start, start + out_width),
                            proj_in=pin, proj_out=pout))
        start += width
    _uniform([b for grp in groups for b in grp.books], what)
    L = groups[0].books.shape[0]
    kind = f"vector-quantize-pytorch GroupedResidualVQ ({len(groups)} groups x {L} levels)"
    return Encoder(groups, notes=_dedupe(notes)), kind


def _build_embedding_list(refs, p, what, listname):
    pattern = re.compile(rf"^{re.escape(p)}{re.escape(listname)}\.(?P<m>\d+)\.embedding\.weight$")
    found = {int(m.group("m")): n for n in refs if (m := pattern.match(n))}
    names = _contiguous(found, what, f"{listname}.* embeddings")
    notes, books = [], []
    for name in names:
        C = float_tensor(refs, name, what, ndim=2)
        proj = name[: -len("embedding.weight")] + "out_proj.0.weight"
        if proj in refs:  # RQ-VAE-Recommender's sim_vq: codebook = embedding @ W^T
            C = (C @ float_tensor(refs, proj, what, ndim=2).T).astype(np.float32)
            notes.append("each layer's out_proj applied to its embedding (sim_vq)")
        books.append(C)
    _uniform(books, what)
    books = np.stack(books)
    root = next((r for r in PREFERRED_ROOTS if r and p.startswith(r)), "")
    encoder = sorted(n for n in refs if n.startswith(root) and ".encoder." in "." + n[len(root):])
    if encoder:
        notes.append(
            f"an encoder was found ({len(encoder)} tensors, e.g. {encoder[0]}) and is NOT run: the codebooks "
            f"quantize the encoder's output (d={books.shape[2]}), so load those latent vectors as the data")
    group = Group(books=books, cols=slice(0, books.shape[2]), out_cols=slice(0, books.shape[2]))
    kind = f"RQ-VAE for semantic IDs: quantizer layers {p}{listname}.* ({len(books)} levels)"
    return Encoder([group], notes=_dedupe(notes)), kind


def _build_vqtorch(refs, p, what):
    C = float_tensor(refs, p + "codebook.weight", what, ndim=2)
    notes = []
    at = p + "affine_transform."
    if at + "scale" in refs:
        raise DataError(f"{what}: this vqtorch layer has a learned affine transform ({at}scale) whose learning-rate "
                        "scale (affine_lr) is not stored in the file, so its codebook cannot be rebuilt exactly. "
                        "Save vq.get_codebook() as a tensor and load that.")
    if at + "running_c_mean" in refs:
        ze_m, ze_v = float_tensor(refs, at + "running_ze_mean", what), float_tensor(refs, at + "running_ze_var", what)
        c_m, c_v = float_tensor(refs, at + "running_c_mean", what), float_tensor(refs, at + "running_c_var", what)
        if ze_m.shape[0] != 1:
            raise DataError(f"{what}: the affine transform has {ze_m.shape[0]} groups; only one is supported.")
        scale = np.sqrt(ze_v / (c_v + 1e-8))
        C = (scale * C - scale * c_m + ze_m).astype(np.float32)
        notes.append("affine_transform running statistics applied to the codebook")
    notes.append("a ResidualVectorQuant's number of stages and a GroupVectorQuant's groups are not stored in "
                 "the file; it is read as one codebook")
    group = Group(books=C[None], cols=slice(0, C.shape[1]), out_cols=slice(0, C.shape[1]))
    return Encoder([group], notes=notes), "vqtorch VectorQuant (codebook.weight)"


def _build_codebook_list(refs, p, what):
    names = _contiguous(_levels(refs, _CODEBOOK_LIST, p), what, "the codebooks")
    books = [float_tensor(refs, n, what, ndim=2) for n in names]
    _uniform(books, what)
    books = np.stack(books)
    group = Group(books=books, cols=slice(0, books.shape[2]), out_cols=slice(0, books.shape[2]))
    return Encoder([group]), f"a list of {len(books)} codebooks ({p}codebooks.*)"


def build_single_tensor(refs, name, what):
    """One tensor picked by ``prefix=``: (K, c) one codebook, (M, K, c) M residual levels, (1, K, c) one."""
    ref = refs[name]
    if len(ref.shape) not in (2, 3):
        raise DataError(f"{what}: tensor {name!r} has shape {tuple(ref.shape)}; a codebook is (K, d), or "
                        "(M, K, d) for M residual levels.")
    arr = float_tensor(refs, name, what)
    books = arr[None] if arr.ndim == 2 else arr
    group = Group(books=books, cols=slice(0, books.shape[2]), out_cols=slice(0, books.shape[2]))
    kind = "one codebook" if books.shape[0] == 1 else f"{books.shape[0]} residual codebooks"
    return Encoder([group]), f"tensor {name} ({kind})"


def build_rotated_product(refs, what):
    """VQ Lens's own OPQ download: ``codebooks`` (M, K, d/M) and ``rotation`` (d, d).

    Codes are PQ codes of ``x @ rotation``; the reconstruction is rotated back.
    """
    books = float_tensor(refs, "codebooks", what, ndim=3)
    R = float_tensor(refs, "rotation", what, ndim=2)
    M, _, ds = books.shape
    if R.shape != (M * ds, M * ds):
        raise DataError(f"{what}: rotation has shape {R.shape} but {M} codebooks of width {ds} need "
                        f"({M * ds}, {M * ds}).")
    groups = [Group(books=books[m][None], cols=slice(m * ds, (m + 1) * ds), out_cols=slice(m * ds, (m + 1) * ds))
              for m in range(M)]
    notes = ["encodes x @ rotation by PQ and rotates the reconstruction back (OPQ)"]
    return Encoder(groups, Affine(np.ascontiguousarray(R.T)), Affine(np.ascontiguousarray(R)), notes), \
        f"VQ Lens OPQ codebooks ({M} subspaces of {ds} dimensions, with their rotation)"


def candidates(refs):
    """Every layout the tensor names allow, as :class:`Found` (best first)."""
    out = {}
    grouped_prefixes = set()
    for name in refs:
        if m := _VQP_GROUPED.match(name):
            p = m.group("p")
            grouped_prefixes.add(f"{p}rvqs.")
            out.setdefault(("grvq", p), Found("vector-quantize-pytorch GroupedResidualVQ", p,
                                              lambda w, p=p: _build_vqp_grouped(refs, p, w), 0))
    for name in refs:
        if any(name.startswith(gp) for gp in grouped_prefixes):
            continue
        if m := _VQP_RESIDUAL.match(name):
            p = m.group("p")
            out.setdefault(("rvq", p), Found("vector-quantize-pytorch ResidualVQ", p,
                                             lambda w, p=p: _build_vqp_residual(refs, p, w), 1))
        elif m := _VQP_SINGLE.match(name):
            p = m.group("p")
            out.setdefault(("vq", p), Found("vector-quantize-pytorch VectorQuantize", p,
                                            lambda w, p=p: _build_vqp_single(refs, p, w), 2))
        elif m := _EMBEDDING_LIST.match(name):
            p, lst = m.group("p"), m.group("list")
            out.setdefault(("emb", p + lst), Found("RQ-VAE (semantic IDs)", p,
                                                   lambda w, p=p, lst=lst: _build_embedding_list(refs, p, w, lst), 3))
        elif m := _CODEBOOK_LIST.match(name):
            p = m.group("p")
            out.setdefault(("list", p), Found("codebook list", p, lambda w, p=p: _build_codebook_list(refs, p, w), 4))
        elif (m := _VQTORCH.match(name)) and len(refs[name].shape) == 2:
            p = m.group("p")
            out.setdefault(("vqtorch", p), Found("vqtorch", p, lambda w, p=p: _build_vqtorch(refs, p, w), 5))
    return sorted(out.values(), key=Found.key)


def recognise(refs, what, prefix=None):
    """The encoder of the quantizer among ``refs``; ``prefix`` narrows the search or names one tensor.

    Returns
    -------
    encoder : Encoder
    layout : str
        What was found, e.g. ``"vector-quantize-pytorch ResidualVQ (3 levels) at 'model.'"``.
    notes : list of str
    """
    if prefix is not None:
        prefix = str(prefix)
        if prefix in refs:
            enc, kind = build_single_tensor(refs, prefix, what)
            return enc, kind, enc.notes
        scoped = {n: r for n, r in refs.items() if n.startswith(prefix)}
        if not scoped:
            raise DataError(f"{what}: no tensor name starts with prefix={prefix!r}. The tensors found:\n"
                            + describe_tensors(refs))
        refs = scoped
    found = candidates(refs)
    if not found:
        raise DataError(
            f"{what}: no known quantizer layout was recognised (vector-quantize-pytorch ResidualVQ / "
            "VectorQuantize / GroupedResidualVQ, vqtorch, RQ-VAE embedding layers, codebooks.*). Pass prefix= "
            "with the name of the codebook tensor ((K, d), or (M, K, d) for residual levels). The tensors found:\n"
            + describe_tensors(refs)
        )
    best = found[0]
    encoder, kind = best.build(what)
    notes = list(encoder.notes)
    others = found[1:]
    if others:
        notes.append("also found: " + "; ".join(f"{f.name} at prefix={f.prefix!r}" for f in others[:4])
                     + " (pick one with prefix=)")
    where = f" at prefix={best.prefix!r}" if best.prefix else ""
    return encoder, f"{kind}{where}", notes


def flatten(obj, prefix="", out=None, depth=0, is_tensor=None, is_record=None):
    """Dotted names of every tensor in a nested checkpoint (dicts, lists, records such as argparse.Namespace)."""
    out = {} if out is None else out
    if depth > 12:
        return out
    if is_tensor(obj):
        out[prefix[:-1]] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, (str, int)):
                flatten(v, f"{prefix}{k}.", out, depth + 1, is_tensor, is_record)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}{i}.", out, depth + 1, is_tensor, is_record)
    elif is_record is not None and is_record(obj):
        flatten(dict(vars(obj)), prefix, out, depth + 1, is_tensor, is_record)
    return out
