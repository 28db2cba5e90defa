"""vqcore.load_quantizer: trained models in, the model's own codes out; hostile files refused.

The fixtures under tests/fixtures/models/ were made once with the real libraries
(torch 2.13.0, vector-quantize-pytorch 1.32.0) by scripts/make_model_fixtures.py:
each model was briefly trained, then run in eval mode on fresh data it never saw,
and its own indices and outputs were saved beside it. Nothing here imports torch.
"""

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vqcore
from tests.malformed import (
    _Op,
    malformed_model_cases,
    npz_bytes,
    torch_state_dict,
    torch_tensor_pickle,
    torch_zip,
)
from vqcore import DataError, ProjectedQuantizer, check_model_data, load_quantizer
from vqcore.report import evaluate

FIX = Path(__file__).parent / "fixtures" / "models"

# fixture -> (class the loader returns, words its layout_ must contain)
MODELS = {
    "rvq": (vqcore.ResidualQuantizer, "ResidualVQ (3 levels)"),
    "vq": (vqcore.KMeansVQ, "VectorQuantize"),
    "vq_proj": (ProjectedQuantizer, "VectorQuantize"),
    "rvq_proj": (ProjectedQuantizer, "ResidualVQ (2 levels)"),
    "grvq": (ProjectedQuantizer, "GroupedResidualVQ (2 groups x 2 levels)"),
    "vq_heads": (vqcore.ProductQuantizer, "2 heads (one codebook per head)"),
    "rvq_cosine": (vqcore.ResidualQuantizer, "ResidualVQ (2 levels)"),
    "rqvae_lcrec": (vqcore.ResidualQuantizer, "RQ-VAE for semantic IDs"),
    "vq_ln": (ProjectedQuantizer, "VectorQuantize"),
    "vq_heads_shared": (ProjectedQuantizer, "2 heads (sharing one codebook)"),
    "vq_affine": (vqcore.KMeansVQ, "VectorQuantize"),
}
CHECKPOINTS = {  # nested training checkpoints and the container the weights sit under
    "rvq": "model.",
    "vq_proj": "state_dict.",
    "rvq_proj": "model_state_dict.",
    "rqvae_lcrec": "state_dict.rq.",
}


def fixture(name):
    return (np.load(FIX / f"{name}_X.npy"), np.load(FIX / f"{name}_codes.npy"), np.load(FIX / f"{name}_Xhat.npy"))


@pytest.mark.parametrize("ext", [".pt", ".safetensors"])
@pytest.mark.parametrize("name", list(MODELS))
def test_loaded_model_gives_the_models_own_codes_row_for_row(name, ext):
    X, codes, X_hat = fixture(name)
    q = load_quantizer(FIX / f"{name}{ext}")
    cls, words = MODELS[name]
    assert type(q) is cls
    assert words in q.layout_
    assert q.n_features_in_ == X.shape[1] and q.n_codebooks == codes.shape[1]
    got = q.encode(X)
    np.testing.assert_array_equal(got.astype(np.int64), codes)
    # and the reconstruction is the model's own output
    np.testing.assert_allclose(q.decode(got), X_hat, atol=1e-5)


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_nested_training_checkpoint_is_found_under_its_container(name):
    X, codes, _ = fixture(name)
    q = load_quantizer((FIX / f"{name}_ckpt.pt").read_bytes(), filename=f"{name}.ckpt")
    np.testing.assert_array_equal(q.encode(X).astype(np.int64), codes)
    assert f"prefix={CHECKPOINTS[name]!r}" in q.layout_
    assert q.source_info_["format"] == "torch.save zip"


def test_projection_is_said_and_decoding_is_additive_in_the_data_space():
    q = load_quantizer(FIX / "rvq_proj.pt")
    assert "project_in (16 -> 8)" in " ".join(q.source_info_["notes"])
    assert q.codebooks_.shape == (2, 16, 16)  # data-space codewords
    assert q.encoder_.groups[0].books.shape == (2, 16, 8)  # where the codes are found
    # decode = sum of data-space codewords, exactly what project_out(sum of code-space codewords) gives
    codes = np.array([[3, 7], [0, 15]])
    inner = q.encoder_.groups[0].books
    out = q.encoder_.stem_out
    expected = (inner[0][codes[:, 0]] + inner[1][codes[:, 1]]) @ out.weight.T + out.bias
    np.testing.assert_allclose(q.decode(codes), expected, atol=1e-5)


def test_rqvae_encoder_is_reported_not_run_and_raw_embeddings_are_refused():
    q = load_quantizer(FIX / "rqvae_lcrec_ckpt.pt")
    notes = " ".join(q.source_info_["notes"])
    assert "encoder was found" in notes and "NOT run" in notes
    raw = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)  # the encoder's input dimension
    with pytest.raises(DataError, match="encoder's outputs"):
        check_model_data(q, raw)


def test_residual_model_is_greedy_by_default_and_a_beam_never_worsens_the_error():
    X, codes, _ = fixture("rvq")
    q = load_quantizer(FIX / "rvq.safetensors")
    assert q.beam_size == 1 and q.spec() == "RQ3x4"
    greedy = ((X - q.decode(q.encode(X))) ** 2).sum(1)
    q.beam_size = 8
    beam = ((X - q.decode(q.encode(X))) ** 2).sum(1)
    assert beam.mean() <= greedy.mean() + 1e-6
    assert q.spec() == "RQ3x4_b8"


def test_every_metric_runs_on_a_loaded_model_and_uses_its_reconstructions():
    X, codes, X_hat = fixture("grvq")
    q = load_quantizer(FIX / "grvq.pt")
    rep = evaluate(q, X, codes=q.encode(X))
    assert rep["reconstruction"]["mse"] == pytest.approx(((X - X_hat) ** 2).sum(1).mean(), rel=1e-4)
    assert rep["n_codebooks"] == 4


@pytest.mark.parametrize("case", malformed_model_cases(), ids=lambda c: c.name)
def test_malformed_or_hostile_model_is_refused_and_runs_nothing(case, tmp_path):
    marker = tmp_path / "ran"
    case = next(c for c in malformed_model_cases(str(marker)) if c.name == case.name)
    with pytest.raises(DataError) as err:
        load_quantizer(case.data, filename=case.filename)
    assert not marker.exists()
    assert len(str(err.value)) > 40  # a sentence that says what was wrong and what to do


@pytest.mark.parametrize("name, refused", [
    ("pt_os_system", "os.system"),
    ("pt_builtins_exec", "builtins.exec"),
    ("pt_custom_callable", "tests.malformed.write_marker"),
    ("pt_trap_beside_weights", "tests.malformed.write_marker"),
])
def test_hostile_pickle_is_live_but_refused_by_name(name, refused, tmp_path):
    marker = tmp_path / "ran"
    case = next(c for c in malformed_model_cases(str(marker)) if c.name == name)
    with pytest.raises(DataError, match=refused.replace(".", r"\.")):
        load_quantizer(case.data, filename=case.filename)
    assert not marker.exists()
    if name.startswith("pt_custom") or name.startswith("pt_trap"):
        # the trap is real: a plain unpickler runs it (with storages stubbed out)
        pkl = zipfile.ZipFile(io.BytesIO(case.data)).read("archive/data.pkl")

        class Plain(pickle.Unpickler):
            def persistent_load(self, pid):
                return None

            def find_class(self, module, attr):
                if module.startswith("torch"):
                    return lambda *a, **k: None
                return super().find_class(module, attr)

        Plain(io.BytesIO(pkl)).load()
        assert marker.exists()


def test_shape_and_stride_views_are_read_as_torch_does():
    # a transposed view (stride (1, 4)) at an offset, in a big-endian archive
    base = np.arange(40, dtype=np.float32)
    view = base[8:].reshape(4, 8).T  # shape (8, 4), strides (1, 8) in elements
    entry = torch_tensor_pickle("0", [8, 4], stride=[1, 8], offset=8, numel=40)
    data = torch_zip([("codebook.weight", entry)], {"0": base.astype(">f4").tobytes()}, byteorder=b"big")
    q = load_quantizer(data, filename="m.pt")
    np.testing.assert_array_equal(q.codebooks_[0], view)


def test_bfloat16_storage_becomes_float32():
    values = np.array([1.0, -2.5, 0.15625, 2.0**18] * 4, dtype=np.float32).reshape(8, 2)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")  # exact in bfloat16
    entry = torch_tensor_pickle("0", [8, 2], storage="BFloat16Storage")
    q = load_quantizer(torch_zip([("codebook.weight", entry)], {"0": bf16.tobytes()}), filename="m.pt")
    np.testing.assert_array_equal(q.codebooks_[0], values)


def test_unknown_layout_lists_the_tensors_and_prefix_picks_one():
    rng = np.random.default_rng(0)
    C = rng.normal(size=(3, 16, 5)).astype(np.float32)
    data = torch_state_dict({"enc.weight": rng.normal(size=(5, 9)).astype(np.float32), "books": C})
    with pytest.raises(DataError) as err:
        load_quantizer(data, filename="m.pt")
    assert "books (3, 16, 5) float32" in str(err.value) and "enc.weight (5, 9) float32" in str(err.value)
    q = load_quantizer(data, filename="m.pt", prefix="books")
    assert isinstance(q, vqcore.ResidualQuantizer) and q.n_codebooks == 3
    np.testing.assert_array_equal(q.codebooks_, C)
    with pytest.raises(DataError, match="prefix='nope'"):
        load_quantizer(data, filename="m.pt", prefix="nope")


@pytest.mark.parametrize("root", ["model", "tokenizer", "state_dict"])
def test_weights_are_taken_before_their_ema_copy_and_the_other_is_named(root):
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(2, 1, 8, 4)).astype(np.float32)
    entries = [("ema", b"}(" + _Op.str("_codebook.embed") + torch_tensor_pickle("1", [1, 8, 4]) + b"u"),
               (root, b"}(" + _Op.str("_codebook.embed") + torch_tensor_pickle("0", [1, 8, 4]) + b"u")]
    data = torch_zip(entries, {"0": A.tobytes(), "1": B.tobytes()})
    q = load_quantizer(data, filename="m.pt")
    np.testing.assert_array_equal(q.codebooks_[0], A[0])
    assert f"prefix='{root}.'" in q.layout_ and "prefix='ema.'" in " ".join(q.source_info_["notes"])
    np.testing.assert_array_equal(load_quantizer(data, filename="m.pt", prefix="ema.").codebooks_[0], B[0])


@pytest.mark.parametrize("shape, cls", [((3, 16, 4), vqcore.ResidualQuantizer), ((16, 4), vqcore.KMeansVQ)])
def test_numpy_codebooks(shape, cls, tmp_path):
    rng = np.random.default_rng(2)
    C = rng.normal(size=shape).astype(np.float32)
    q = load_quantizer(npz_bytes(codebooks=C), filename="c.npz")
    assert type(q) is cls
    books = C if C.ndim == 3 else C[None]
    np.testing.assert_array_equal(q.codebooks_, books)
    # vectors built from codewords encode back to their codes (greedy RQ on well-separated levels)
    codes = rng.integers(0, 16, size=(50, books.shape[0]))
    np.save(tmp_path / "c.npy", C)
    q2 = load_quantizer(tmp_path / "c.npy")
    np.testing.assert_array_equal(q2.decode(codes), q.decode(codes))


def test_check_model_data_says_which_side_is_wrong():
    q = load_quantizer(FIX / "rvq.pt")  # d=8, M=3, K=16
    X = np.zeros((4, 8), np.float32)
    assert check_model_data(q, X).shape == (4, 8)
    with pytest.raises(DataError, match="d=8 but the loaded data has d=5"):
        check_model_data(q, np.zeros((4, 5)))
    with pytest.raises(DataError, match="3 codebooks"):
        check_model_data(q, X, codes=np.zeros((4, 2), int))
    with pytest.raises(DataError, match="K=16"):
        check_model_data(q, X, codes=np.full((4, 3), 16))
    with pytest.raises(DataError, match="3 rows but the data has 4"):
        check_model_data(q, X, codes=np.zeros((3, 3), int))


def test_fixtures_stay_small():
    assert sum(p.stat().st_size for p in FIX.iterdir()) < 2**20
    assert not any(os.fspath(p).endswith(".pyc") for p in FIX.iterdir())


# ------------------------------------------------------------------------ fuzz

FUZZ_EXAMPLES = int(os.environ.get("VQLENS_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                derandomize="VQLENS_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _outcome(data, filename, marker):
    """A damaged model file loads (and then encodes) or is a DataError; nothing else, nothing run."""
    try:
        q = load_quantizer(data, filename=filename, max_bytes=2**20, max_elements=200_000)
    except DataError:
        return
    finally:
        assert not marker.exists()
    X = np.random.default_rng(0).normal(size=(5, q.n_features_in_)).astype(np.float32)
    codes = q.encode(X)
    assert codes.shape == (5, q.n_codebooks) and int(codes.max()) < q.codebook_size


@st.composite
def _damaged(draw, data):
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        op = draw(st.sampled_from(["flip", "truncate", "insert", "int32"]))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
        else:
            data[pos:pos + 4] = draw(st.sampled_from([0, 1, -1, 2**31 - 1, 2**16])).to_bytes(4, "little", signed=True)
    return bytes(data)


@pytest.mark.parametrize("name", ["rvq.pt", "vq_proj_ckpt.pt", "rqvae_lcrec_ckpt.pt", "grvq.safetensors"])
def test_fuzz_damaged_model_files(name, tmp_path):
    seed = (FIX / name).read_bytes()

    @FUZZ
    @given(_damaged(seed))
    def run(data):
        _outcome(data, name, tmp_path / "ran")

    run()


@pytest.mark.parametrize("name", ["rvq_ckpt.pt", "rqvae_lcrec_ckpt.pt"])
def test_fuzz_damaged_pickles_in_a_valid_archive(name, tmp_path):
    """The pickle itself damaged, re-zipped with a correct CRC, so the unpickler sees every mutation."""
    zf = zipfile.ZipFile(FIX / name)
    members = {i.filename: zf.read(i) for i in zf.infolist()}
    pkl_name = next(n for n in members if n.endswith("data.pkl"))

    @FUZZ
    @given(_damaged(members[pkl_name]))
    def run(pkl):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as out:
            for n, content in members.items():
                out.writestr(n, pkl if n == pkl_name else content)
        _outcome(buf.getvalue(), name, tmp_path / "ran")

    run()


def test_safetensors_bfloat16_and_every_kind_of_source(tmp_path):
    import json

    values = np.array([[1.0, -0.5], [2.0**-3, 6.0], [-3.0, 0.25]], dtype=np.float32)
    raw = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    # the safetensors layout written by hand: header length, JSON header, data
    header = json.dumps({"codebook.weight": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, len(raw)]}})
    header += " " * (-len(header) % 8)
    data = len(header).to_bytes(8, "little") + header.encode() + raw
    (tmp_path / "m.safetensors").write_bytes(data)
    for source in (data, io.BytesIO(data), tmp_path / "m.safetensors", str(tmp_path / "m.safetensors")):
        q = load_quantizer(source, filename=None if not isinstance(source, (bytes, io.BytesIO)) else "m.safetensors")
        np.testing.assert_array_equal(q.codebooks_[0], values)
    with pytest.raises(DataError, match="max_bytes"):
        load_quantizer(tmp_path / "m.safetensors", max_bytes=10)


@pytest.mark.parametrize("name, expected", [
    ("rvq", ["RQ3x4", "AQ3x4"]),  # M=3 does not divide d=8: no PQ / OPQ
    ("grvq", ["RQ4x4", "PQ4x4", "OPQ4x4", "AQ4x4"]),
])
def test_baselines_at_the_same_bits(name, expected):
    from vqcore.models import baseline_specs

    q = load_quantizer(FIX / f"{name}.pt")
    specs = baseline_specs(q)
    assert specs == expected
    assert all(vqcore.from_spec(s).bits_per_vector == q.bits_per_vector for s in specs)


def test_vq_lens_own_rq_download_with_its_mean_loads_back_with_the_same_codes():
    """The download holds the mean the codebooks are centred on (vqcore.base); loaded back, the
    quantizer centres with it, so data far from the origin keep their codes."""
    from ui.data import codebooks_npz

    rng = np.random.default_rng(7)
    X = (rng.normal(size=(1500, 8)) + 100.0).astype(np.float32)
    rq = vqcore.ResidualQuantizer(3, 16, random_state=0).fit(X)
    q = load_quantizer(codebooks_npz(rq), filename="r.npz")
    np.testing.assert_allclose(q.mean_, rq.mean_)
    codes = rq.encode(X)
    np.testing.assert_array_equal(q.encode(X), codes)
    np.testing.assert_allclose(q.decode(codes), rq.decode(codes), atol=1e-4)


def test_vq_lens_own_opq_download_loads_back_with_the_same_codes():
    rng = np.random.default_rng(6)
    X = (rng.normal(size=(1500, 8)) @ rng.normal(size=(8, 8))).astype(np.float32)
    opq = vqcore.OPQ(n_codebooks=4, codebook_size=16, n_iter_opq=5, random_state=0).fit(X)
    # plain arrays saved by hand (the older download): codebooks, rotation and the mean they are centred on
    q = load_quantizer(npz_bytes(compressed=True, codebooks=opq.codebooks_, rotation=opq.rotation_, mean=opq.mean_),
                       filename="o.npz")
    assert "OPQ" in q.layout_
    codes = opq.encode(X)
    np.testing.assert_array_equal(q.encode(X), codes)
    np.testing.assert_allclose(q.decode(codes), opq.decode(codes), atol=1e-5)


@pytest.mark.parametrize("name", ["grvq", "vq_ln", "rvq"])
def test_loaded_quantizer_survives_pickling_as_a_cache_would(name):
    X, codes, _ = fixture(name)
    q = pickle.loads(pickle.dumps(load_quantizer(FIX / f"{name}.pt")))
    np.testing.assert_array_equal(q.encode(X).astype(np.int64), codes)
    assert q.layout_ and q.source_info_["format"] == "torch.save zip"


def test_heads_sharing_a_codebook_without_projection_are_named_in_the_mismatch():
    q = load_quantizer(FIX / "vq.pt")  # one VectorQuantize codebook of d=8
    with pytest.raises(DataError, match="2 heads share one codebook"):
        check_model_data(q, np.zeros((3, 16), np.float32))
