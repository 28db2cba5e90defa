"""Metrics against values worked out by hand, slow references and simulation.

Every expected number below is derived in a comment or computed by a plain,
obviously correct reference (Python loops, fractions, brute force); shapes
alone are never the check.
"""

import itertools
import math
import re
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vqcore import metrics
from vqcore.exceptions import VQLensError, VQLensWarning
from vqcore.metrics import (
    allocated_bits,
    birthday_collision_rate,
    code_counts,
    collision_groups,
    collision_rate,
    effective_bits,
    exact_neighbors,
    mutual_information,
    prefix_collision_rates,
    recall_at,
    reconstruction_error,
    usage_stats,
)

# --------------------------------------------------------------------------
# slow references


def ref_entropy(values):
    """Entropy in bits of the empirical distribution of hashable values."""
    counts = Counter(values)
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def ref_mutual_information(a, b):
    """I(a; b) = sum p_ab log2(p_ab / (p_a p_b)), by the definition."""
    n = len(a)
    pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b, strict=True))
    return sum(c / n * math.log2((c / n) / (pa[x] / n * pb[y] / n)) for (x, y), c in pab.items())


def rows(codes):
    return [tuple(int(v) for v in row) for row in np.asarray(codes)]


# --------------------------------------------------------------------------
# usage: counts, dead codes, entropy


@pytest.mark.parametrize("n_codebooks", [1, 3], ids=lambda m: f"M={m}")
@pytest.mark.parametrize("K", [1, 2, 3, 7, 256], ids=lambda k: f"K={k}")
def test_uniform_codes_use_the_whole_codebook(K, n_codebooks):
    # Each of the K codes appears exactly 4 times in each column (shuffled
    # differently per column): p = 1/K, so H = log2 K, 2^H = K, utilisation 1.
    rng = np.random.default_rng(0)
    codes = np.stack([rng.permutation(np.repeat(np.arange(K), 4)) for _ in range(n_codebooks)], 1)

    counts = code_counts(codes, codebook_size=K)
    stats = usage_stats(codes, codebook_size=K)

    assert [c.tolist() for c in counts] == [[4] * K] * n_codebooks
    np.testing.assert_array_equal(stats["dead"], 0)
    np.testing.assert_array_equal(stats["dead_fraction"], 0.0)
    np.testing.assert_allclose(stats["entropy_bits"], math.log2(K), atol=1e-12)
    np.testing.assert_allclose(stats["max_entropy_bits"], math.log2(K), atol=1e-12)
    np.testing.assert_allclose(stats["perplexity"], K, rtol=1e-12)
    np.testing.assert_allclose(stats["utilisation"], 1.0, rtol=1e-12)


@pytest.mark.parametrize("used", ["first", "last"])
@pytest.mark.parametrize("K", [2, 5, 256], ids=lambda k: f"K={k}")
def test_a_single_used_code_leaves_the_rest_dead(K, used):
    # All 10 items on one code: K-1 dead codes, p = (1), H = 0, perplexity 1.
    code = 0 if used == "first" else K - 1
    codes = np.full((10, 1), code)

    stats = usage_stats(codes, codebook_size=K)

    assert code_counts(codes, codebook_size=K)[0][code] == 10
    assert stats["dead"].tolist() == [K - 1]
    assert stats["dead_fraction"][0] == pytest.approx((K - 1) / K)
    assert stats["entropy_bits"][0] == 0.0
    assert stats["perplexity"][0] == 1.0
    assert stats["utilisation"][0] == pytest.approx(1 / K)


@pytest.mark.parametrize(
    "counts, K, entropy, dead",
    [
        # p = 1/2, 1/4, 1/4: H = 1/2*1 + 2 * 1/4*2 = 1.5 bits
        ([2, 1, 1, 0], 4, 1.5, 1),
        # p = 1/2, 1/4, 1/8, 1/8: H = 0.5 + 0.5 + 2 * 3/8 = 1.75 bits
        ([4, 2, 1, 1], 4, 1.75, 0),
        # p = 1/2, 1/2 in a codebook of 8: H = 1 bit, 6 dead codes
        ([0, 3, 0, 0, 3, 0, 0, 0], 8, 1.0, 6),
        # p = 3/4, 1/4: H = 2 - (3/4) log2 3
        ([3, 1], 2, 2 - 0.75 * math.log2(3), 0),
    ],
    ids=["halves-quarters", "dyadic-1.75", "two-of-eight", "three-quarters"],
)
def test_entropy_of_known_distributions(counts, K, entropy, dead):
    codes = np.repeat(np.arange(len(counts)), counts)[:, None]

    stats = usage_stats(codes, codebook_size=K)

    assert code_counts(codes, codebook_size=K)[0].tolist() == counts
    assert stats["entropy_bits"][0] == pytest.approx(entropy, abs=1e-12)
    assert stats["max_entropy_bits"][0] == pytest.approx(math.log2(K))
    assert stats["perplexity"][0] == pytest.approx(2**entropy)
    assert stats["utilisation"][0] == pytest.approx(2**entropy / K)
    assert stats["dead"].tolist() == [dead]
    assert stats["dead_fraction"][0] == pytest.approx(dead / K)


def test_codebook_size_per_position_and_inferred():
    codes = np.array([[0, 0], [1, 2], [1, 2], [0, 2]])
    # column 0 uses {0, 1}; column 1 uses {0, 2}

    per_position = usage_stats(codes, codebook_size=[2, 4])
    inferred = usage_stats(codes)  # K = max + 1 = [2, 3]

    assert [c.tolist() for c in code_counts(codes, [2, 4])] == [[2, 2], [1, 0, 3, 0]]
    assert per_position["dead"].tolist() == [0, 2]
    assert per_position["dead_fraction"].tolist() == [0.0, 0.5]
    assert per_position["max_entropy_bits"].tolist() == [1.0, 2.0]
    assert inferred["dead"].tolist() == [0, 1]
    assert inferred["max_entropy_bits"][1] == pytest.approx(math.log2(3))
    # entropy does not depend on how many unused codes the codebook has
    np.testing.assert_allclose(per_position["entropy_bits"], inferred["entropy_bits"])
    assert per_position["entropy_bits"][1] == pytest.approx(2 - 0.75 * math.log2(3))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.float64])
def test_same_result_for_every_code_dtype(dtype):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, size=(200, 3))
    expected = usage_stats(codes, 5)

    got = usage_stats(codes.astype(dtype), 5)

    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
    np.testing.assert_array_equal(
        mutual_information(codes.astype(dtype)), mutual_information(codes)
    )
    assert collision_rate(codes.astype(dtype)) == collision_rate(codes)


# --------------------------------------------------------------------------
# mutual information and bits


@pytest.mark.parametrize("K", [2, 3, 16], ids=lambda k: f"K={k}")
def test_independent_positions_have_zero_mutual_information(K):
    # every (a, b) combination exactly once: p_ab = p_a p_b, so I = 0
    codes = np.array(list(itertools.product(range(K), repeat=2)))

    mi = mutual_information(codes)

    assert mi[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert mi[1, 0] == mi[0, 1]
    np.testing.assert_allclose(np.diag(mi), math.log2(K))
    assert effective_bits(codes) == pytest.approx(2 * math.log2(K))


@pytest.mark.parametrize("counts", [[1, 1, 1, 1], [5, 2, 1]], ids=["uniform", "skewed"])
def test_identical_positions_share_all_their_information(counts):
    col = np.repeat(np.arange(len(counts)), counts)
    codes = np.stack([col, col, col], axis=1)
    entropy = ref_entropy(col.tolist())

    mi = mutual_information(codes)

    np.testing.assert_allclose(mi, np.full((3, 3), entropy), atol=1e-12)
    assert effective_bits(codes) == pytest.approx(entropy)


def test_mutual_information_of_a_hand_example():
    # pairs (0,0) x2, (1,1), (1,0): p_a = (1/2, 1/2), p_b = (3/4, 1/4)
    # I = 1/2 log2((1/2)/(1/2*3/4)) + 1/4 log2((1/4)/(1/2*1/4)) + 1/4 log2((1/4)/(1/2*3/4))
    #   = 1/2 (2 - log2 3) + 1/4 + 1/4 (1 - log2 3) = 3/2 - (3/4) log2 3
    codes = np.array([[0, 0], [0, 0], [1, 1], [1, 0]])

    mi = mutual_information(codes)

    assert mi[0, 1] == pytest.approx(1.5 - 0.75 * math.log2(3), abs=1e-12)
    assert mi[0, 0] == pytest.approx(1.0)
    assert mi[1, 1] == pytest.approx(2 - 0.75 * math.log2(3))


def test_xor_positions_are_pairwise_independent_but_redundant():
    # c = a xor b over the four (a, b): each pair of positions is independent
    # (I = 0), yet the tuple carries 2 bits, not the 3 allocated.
    codes = np.array([[a, b, a ^ b] for a in (0, 1) for b in (0, 1)])

    mi = mutual_information(codes)

    np.testing.assert_allclose(mi, np.eye(3), atol=1e-12)
    assert effective_bits(codes) == pytest.approx(2.0)
    assert allocated_bits(2, 3) == 3.0


def test_shuffled_baseline_is_the_bias_of_independent_positions():
    """Independent uniform positions: the plug-in MI is pure bias, and the shuffled baseline
    measures that bias: close to the Miller-Madow term when n >> K^2, and far above it
    (near the MI itself) when n < K^2."""
    from vqcore.metrics import mutual_information_baseline

    rng = np.random.default_rng(0)
    for n, K in [(50_000, 8), (2_000, 64)]:
        codes = rng.integers(K, size=(n, 3))
        mi = mutual_information(codes, K)
        base = mutual_information_baseline(codes, K, random_state=1)
        np.testing.assert_allclose(np.diag(base), np.diag(mi))
        off = ~np.eye(3, dtype=bool)
        assert np.allclose(base, base.T)
        miller_madow = (K - 1) ** 2 / (2 * n * math.log(2))
        if n > 100 * K * K:  # the bias is tiny and so is each estimate's spread around it
            np.testing.assert_allclose(base[off], mi[off], rtol=0.4)
            np.testing.assert_allclose(base[off], miller_madow, rtol=0.3)
        else:
            np.testing.assert_allclose(base[off], mi[off], rtol=0.1)
            assert base[off].min() > 3 * miller_madow / 4 and base[off].min() > 0.5
    # dependent positions stand far above their baseline; the baseline keeps their frequencies
    a = rng.integers(8, size=5000)
    codes = np.stack([a, (a + (rng.random(5000) < 0.1)) % 8], axis=1)
    mi = mutual_information(codes, 8)
    base = mutual_information_baseline(codes, 8)
    assert mi[0, 1] > 2.0 and base[0, 1] < 0.02


@pytest.mark.parametrize(
    "K",
    [4, 5000],
    ids=["dense-histogram", "sparse-pairs"],  # K*K > 2**20 takes np.unique
)
def test_mutual_information_matches_the_definition(K):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, 300)
    b = (a + rng.integers(0, 2, 300)) % 4  # dependent on a
    c = rng.integers(0, 4, 300)
    codes = np.stack([a, b, c], axis=1)

    mi = mutual_information(codes, codebook_size=K)

    for i, j in itertools.combinations(range(3), 2):
        ref = ref_mutual_information(codes[:, i].tolist(), codes[:, j].tolist())
        assert mi[i, j] == pytest.approx(ref, abs=1e-10)
        assert mi[j, i] == mi[i, j]
    assert mi[0, 1] > 0.5  # b = a or a+1: a good part of a's 2 bits


@pytest.mark.parametrize(
    "codes, bits",
    [
        ([[0, 0], [0, 0], [0, 1], [1, 1]], 1.5),  # tuple counts 2, 1, 1
        ([[3, 1], [3, 1], [3, 1]], 0.0),  # one tuple
        ([[0], [1], [2], [3], [4], [5], [6], [7]], 3.0),  # all distinct: log2 n
    ],
    ids=["counts-2-1-1", "one-tuple", "all-distinct"],
)
def test_effective_bits_by_hand(codes, bits):
    assert effective_bits(codes) == pytest.approx(bits)
    assert effective_bits(codes) <= math.log2(len(codes)) + 1e-12


@pytest.mark.parametrize(
    "codebook_size, n_codebooks, bits",
    [
        (256, 8, 64.0),
        ([256, 1024, 2], None, 19.0),
        ([256, 1024, 2], 3, 19.0),
        ([3], None, math.log2(3)),
        (1, 4, 0.0),
    ],
    ids=["PQ8x8", "mixed", "mixed-with-M", "K=3", "K=1"],
)
def test_allocated_bits(codebook_size, n_codebooks, bits):
    assert allocated_bits(codebook_size, n_codebooks) == pytest.approx(bits)


# --------------------------------------------------------------------------
# collisions


def test_collisions_of_a_known_set():
    # tuples (0,0) x2, (0,1), (1,1): 3 distinct of 4 -> 1 - 3/4;
    # first position alone: {0, 1} -> 2 distinct -> 1 - 2/4
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 1]])

    assert collision_rate(codes) == pytest.approx(1 - 3 / 4)
    np.testing.assert_allclose(prefix_collision_rates(codes), [1 - 2 / 4, 1 - 3 / 4])
    groups = collision_groups(codes)
    assert [(c, i.tolist()) for c, i in groups] == [((0, 0), [0, 1])]


def test_collision_groups_largest_first_then_by_code():
    codes = np.array([[2, 2], [0, 1], [5, 5], [0, 1], [2, 2], [0, 1], [9, 9], [1, 0], [1, 0]])
    # (0,1) x3; (1,0) x2 and (2,2) x2 (tie: lexicographic); (5,5), (9,9) alone

    groups = collision_groups(codes)

    assert [(c, i.tolist()) for c, i in groups] == [
        ((0, 1), [1, 3, 5]),
        ((1, 0), [7, 8]),
        ((2, 2), [0, 4]),
    ]
    assert [c for c, _ in collision_groups(codes, top=1)] == [(0, 1)]
    assert len(collision_groups(codes, top=None)) == 3
    assert collision_groups([[0], [1], [2]]) == []


@pytest.mark.parametrize(
    "codes",
    [
        # 40 + 1 + 3 + 40 + 2 bits: packed into two 64-bit words
        np.array([[2**40 - 1, 0, 7, 2**39, 1]] * 3 + [[2**40 - 1, 0, 7, 2**39, 2]]),
        # uint64 codes above 2**63 fill a whole word
        np.array([[2**64 - 1, 1], [2**64 - 1, 1], [2**63, 1], [2**64 - 1, 0]], dtype=np.uint64),
    ],
    ids=["multi-word", "uint64-top-bit"],
)
def test_collisions_of_wide_codes_are_exact(codes):
    tuples = rows(codes)

    assert collision_rate(codes) == pytest.approx(1 - len(set(tuples)) / len(tuples))
    n, m_total = codes.shape
    expected_prefix = [1 - len({t[: m + 1] for t in tuples}) / n for m in range(m_total)]
    np.testing.assert_allclose(prefix_collision_rates(codes), expected_prefix)
    assert effective_bits(codes) == pytest.approx(ref_entropy(tuples))
    biggest = Counter(tuples).most_common(1)[0]
    code, members = collision_groups(codes)[0]
    assert code == biggest[0] and len(members) == biggest[1]


codes_strategy = st.one_of(
    hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 40), st.integers(1, 5)),
        elements=st.integers(0, 3),
    ),
    hnp.arrays(  # wide values: several 64-bit words per row
        np.int64,
        st.tuples(st.integers(1, 30), st.integers(1, 5)),
        elements=st.sampled_from([0, 1, 2**40 - 1, 2**62, 2**63 - 1]),
    ),
)


@settings(max_examples=60, deadline=None)
@given(codes=codes_strategy)
def test_collision_metrics_match_a_python_reference(codes):
    tuples = rows(codes)
    n, m_total = codes.shape
    counts = Counter(tuples)

    assert collision_rate(codes) == pytest.approx(1 - len(counts) / n)
    np.testing.assert_allclose(
        prefix_collision_rates(codes),
        [1 - len({t[: m + 1] for t in tuples}) / n for m in range(m_total)],
    )
    assert effective_bits(codes) == pytest.approx(ref_entropy(tuples), abs=1e-9)
    expected_groups = {
        code: [i for i, t in enumerate(tuples) if t == code] for code, c in counts.items() if c > 1
    }
    got = collision_groups(codes, top=None)
    assert {c: i.tolist() for c, i in got} == expected_groups
    sizes = [len(i) for _, i in got]
    assert sizes == sorted(sizes, reverse=True)


@settings(max_examples=40, deadline=None)
@given(
    codes=hnp.arrays(
        np.int64, st.tuples(st.integers(1, 60), st.integers(1, 4)), elements=st.integers(0, 5)
    )
)
def test_information_inequalities(codes):
    mi = mutual_information(codes)
    h = np.diag(mi)
    eff = effective_bits(codes)

    np.testing.assert_allclose(mi, mi.T)
    assert (mi >= 0).all()
    assert (mi <= np.minimum.outer(h, h) + 1e-12).all()
    # max_m H_m <= H(tuple) <= min(sum_m H_m, log2 n)
    assert h.max() - 1e-9 <= eff <= min(h.sum(), math.log2(len(codes))) + 1e-9
    rates = prefix_collision_rates(codes)
    assert (np.diff(rates) <= 1e-12).all()  # more positions never add collisions
    assert rates[-1] == pytest.approx(collision_rate(codes))


# --------------------------------------------------------------------------
# birthday baseline


def exact_birthday_rate(n, sizes):
    N = math.prod(sizes)
    expected_distinct = N * (1 - (1 - Fraction(1, N)) ** n)
    return float(1 - expected_distinct / n)


def test_birthday_rate_of_a_tiny_case_by_hand():
    # n=3 items, 2 possible codes: all same with prob 2/8 (1 distinct), else 2
    # distinct: E = (2*1 + 6*2)/8 = 1.75 = 2 (1 - (1/2)^3); rate = 1 - 1.75/3
    assert birthday_collision_rate(3, [2]) == pytest.approx(5 / 12, rel=1e-14)
    assert birthday_collision_rate(3, 2) == pytest.approx(5 / 12, rel=1e-14)


def test_birthday_rate_matches_enumeration():
    # n=4 items over K=(2, 3): all 6**4 outcomes equally likely
    outcomes = list(itertools.product(range(6), repeat=4))
    mean_distinct = sum(len(set(o)) for o in outcomes) / len(outcomes)

    assert birthday_collision_rate(4, [2, 3]) == pytest.approx(1 - mean_distinct / 4, rel=1e-12)


@pytest.mark.parametrize(
    "n, sizes",
    [
        (1, [7]),
        (5, [1]),
        (10, [1000, 1000]),
        (50, [100, 100]),
        (99, [10**4]),
        (101, [10**4]),
        (150, [1000]),
        (200, [10, 10]),
        (1000, [3]),
    ],
    ids=lambda v: str(v),
)
def test_birthday_rate_matches_exact_fractions(n, sizes):
    # covers both the series (n/N < 1e-2) and the closed-form branch
    expected = exact_birthday_rate(n, sizes)
    assert birthday_collision_rate(n, sizes) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_birthday_rate_matches_simulation():
    n, sizes, trials = 1000, (64, 64), 400
    rng = np.random.default_rng(3)
    draws = np.sort(rng.integers(0, 64 * 64, size=(trials, n)), axis=1)
    rates = 1 - (1 + (draws[:, 1:] != draws[:, :-1]).sum(axis=1)) / n
    std_error = rates.std(ddof=1) / math.sqrt(trials)

    assert abs(birthday_collision_rate(n, sizes) - rates.mean()) < 4 * std_error


def test_birthday_rate_for_huge_code_spaces():
    # n << N: rate ~ (n - 1) / (2N), far below where 1 - E/n would cancel to 0
    N = 2**128
    n = 10**6
    assert birthday_collision_rate(n, [256] * 16) == pytest.approx((n - 1) / (2 * N), rel=1e-9)
    assert birthday_collision_rate(n, [256] * 8) == pytest.approx((n - 1) / 2**65, rel=1e-6)
    assert birthday_collision_rate(10**6, [65536] * 100) == 0.0
    rates = [birthday_collision_rate(n, [256, 256]) for n in (10, 100, 1000, 10**4, 10**5)]
    assert rates == sorted(rates) and 0 < rates[0] and rates[-1] < 1


# --------------------------------------------------------------------------
# reconstruction error


def test_reconstruction_error_by_hand():
    # errors (0, 1) and (1, 0): mse = (1 + 1)/2 = 1, per_dim = (1/2, 1/2)
    # mean(X) = (2, 1), deviations (-1, -1), (1, 1): total variance 2
    # relative = 1/2, SNR = 10 log10 2 = 3.0103 dB
    X = [[1.0, 0.0], [3.0, 2.0]]
    X_hat = [[1.0, 1.0], [2.0, 2.0]]

    err = reconstruction_error(X, X_hat)

    assert err["mse"] == pytest.approx(1.0)
    np.testing.assert_allclose(err["per_dim"], [0.5, 0.5])
    assert err["relative"] == pytest.approx(0.5)
    assert err["snr_db"] == pytest.approx(10 * math.log10(2))


def test_reconstructing_by_the_mean_has_relative_error_one():
    rng = np.random.default_rng(4)
    X = rng.integers(-50, 50, size=(64, 5)).astype(np.float32)  # mean exact in float32
    X_hat = np.broadcast_to(X.mean(axis=0, dtype=np.float64), X.shape)

    err = reconstruction_error(X, X_hat)

    assert err["relative"] == pytest.approx(1.0, rel=1e-12)
    assert err["snr_db"] == pytest.approx(0.0, abs=1e-10)
    assert err["per_dim"].sum() == pytest.approx(err["mse"])
    np.testing.assert_allclose(err["per_dim"], X.astype(np.float64).var(axis=0))


def test_perfect_reconstruction_and_scaling():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 8)).astype(np.float32)
    noise = rng.normal(scale=0.1, size=X.shape).astype(np.float32)

    exact = reconstruction_error(X, X)
    noisy = reconstruction_error(X, X + noise)
    scaled = reconstruction_error(2 * X, 2 * (X + noise))

    assert exact["mse"] == 0.0 and exact["relative"] == 0.0 and exact["snr_db"] == math.inf
    # relative error and SNR do not depend on the scale of the data; mse does (x4)
    assert scaled["mse"] == pytest.approx(4 * noisy["mse"], rel=1e-6)
    assert scaled["relative"] == pytest.approx(noisy["relative"], rel=1e-6)
    assert noisy["per_dim"].sum() == pytest.approx(noisy["mse"])


def test_reconstruction_error_is_chunked_without_changing_the_result(monkeypatch):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1000, 4)).astype(np.float32)
    X_hat = X + rng.normal(scale=0.3, size=X.shape).astype(np.float32)
    whole = reconstruction_error(X, X_hat)

    monkeypatch.setattr(metrics.reconstruction, "DEFAULT_CHUNK_BYTES", 8 * 4 * 7)  # 7 rows a chunk
    chunked = reconstruction_error(X, X_hat)

    for key in ("mse", "relative", "snr_db"):
        assert chunked[key] == pytest.approx(whole[key], rel=1e-12)
    diff = X.astype(np.float64) - X_hat
    assert whole["mse"] == pytest.approx((diff**2).sum(axis=1).mean(), rel=1e-12)


def test_constant_data_warns_that_relative_error_is_undefined():
    X = np.ones((5, 3))
    with pytest.warns(VQLensWarning, match="zero variance"):
        err = reconstruction_error(X, X * 2)
    assert err["mse"] == pytest.approx(3.0)
    assert math.isnan(err["relative"]) and math.isnan(err["snr_db"])


# --------------------------------------------------------------------------
# exact neighbours and recall


def brute_force_neighbors(base, queries, k):
    base = np.asarray(base, dtype=np.float32).astype(np.float64)
    queries = np.asarray(queries, dtype=np.float32).astype(np.float64)
    d2 = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


def gaussian(rng, n, d):
    return rng.normal(size=(n, d)).astype(np.float32)


def offset_near_ties(rng, n, d):
    # far from the origin and close together: float32 |q|^2 - 2 q.x + |x|^2
    # loses the differences; float64 keeps them
    return (1000 + rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("chunk_bytes", [None, 8 * 16 * 5], ids=["one-chunk", "5-row-chunks"])
@pytest.mark.parametrize("k", [1, 10, 300], ids=lambda k: f"k={k}")
@pytest.mark.parametrize("make", [gaussian, offset_near_ties], ids=["gaussian", "offset-near-ties"])
def test_exact_neighbors_match_brute_force(make, k, chunk_bytes, monkeypatch):
    rng = np.random.default_rng(7)
    base, queries = make(rng, 300, 16), make(rng, 40, 16)
    if chunk_bytes is not None:
        monkeypatch.setattr(metrics.recall, "KNN_CHUNK_BYTES", chunk_bytes)

    got = exact_neighbors(base, queries, k)

    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, brute_force_neighbors(base, queries, k))


def test_recall_is_one_for_perfect_reconstructions():
    rng = np.random.default_rng(8)
    base, queries = gaussian(rng, 500, 8), gaussian(rng, 50, 8)
    truth = exact_neighbors(base, queries, 10)

    assert recall_at(base, queries, truth) == {1: 1.0, 10: 1.0, 100: 1.0}
    assert recall_at(base, queries, truth[:, 0], R=1) == {1: 1.0}


def test_recall_after_swapping_neighbouring_reconstructions_by_hand():
    # items on a line at 0, 10, 20, ..., 990; query i sits at 10 i + 1, so item
    # i is its exact nearest neighbour. Swap the reconstructions of items 2j
    # and 2j+1 for the first 50 items. For a swapped even i its reconstruction
    # sits at 10(i+1): rank 2 (after the one at 10 i, distance 1 < 9); for a
    # swapped odd i at 10(i-1): rank 3 (distances 1, 9, then 11). Unswapped
    # items are rank 1. recall@1 = 50/100, @2 = 75/100, @3 = 1.
    n = 100
    base = np.stack([10.0 * np.arange(n), np.zeros(n)], axis=1)
    queries = base + [1.0, 0.0]
    perm = np.arange(n)
    perm[:50] = np.arange(50) ^ 1  # 0<->1, 2<->3, ...
    base_hat = base[perm]
    truth = exact_neighbors(base, queries, 1)

    assert truth[:, 0].tolist() == list(range(n))
    recall = recall_at(base_hat, queries, truth, R=(1, 2, 3, 1000))
    assert recall == {1: 0.5, 2: 0.75, 3: 1.0, 1000: 1.0}


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0], ids=lambda f: f"shuffled={f}")
def test_recall_drops_with_the_fraction_of_permuted_reconstructions(fraction):
    # Rotate the reconstructions of a subset S among themselves (no item keeps
    # its own). A query whose nearest neighbour g is outside S still finds
    # base[g] first, now labelled g; if g is in S the point there belongs to
    # another item, so g is not first: recall@1 = share of queries with g not in S.
    rng = np.random.default_rng(9)
    n = 400
    base, queries = gaussian(rng, n, 6), gaussian(rng, 200, 6)
    truth = exact_neighbors(base, queries, 1)[:, 0]
    moved = rng.permutation(n)[: int(fraction * n)]
    base_hat = base.copy()
    base_hat[moved] = base[np.roll(moved, 1)]

    recall = recall_at(base_hat, queries, truth, R=(1, 10, n))

    assert recall[1] == pytest.approx(np.mean(~np.isin(truth, moved)))
    assert recall[1] <= recall[10] <= recall[n] == 1.0
    if fraction == 1.0:
        assert recall[1] == 0.0


# --------------------------------------------------------------------------
# bad input: one table


GOOD = np.array([[0, 1], [1, 0], [1, 1]])
FLOATS = np.arange(12, dtype=np.float32).reshape(6, 2)


@pytest.mark.parametrize(
    "call, parameter",
    [
        (lambda: code_counts(np.array([0, 1, 2])), "codes"),
        (lambda: usage_stats(np.zeros((2, 2, 2), dtype=int)), "codes"),
        (lambda: usage_stats(np.zeros((0, 2), dtype=int)), "codes"),
        (lambda: usage_stats(np.array([["a", "b"]])), "codes"),
        (lambda: usage_stats([[0, 1], [2]]), "codes"),
        (lambda: usage_stats(np.array([[0, -1], [1, 0]])), "codes"),
        (lambda: usage_stats(np.array([[0.5, 1.0]])), "codes"),
        (lambda: usage_stats(np.array([[np.nan, 1.0]])), "codes"),
        (lambda: usage_stats(GOOD, codebook_size=1), "codebook_size"),
        (lambda: code_counts(GOOD, codebook_size=[2, 1]), "codebook_size"),
        (lambda: usage_stats(GOOD, codebook_size=[2, 2, 2]), "codebook_size"),
        (lambda: usage_stats(GOOD, codebook_size=0), "codebook_size"),
        (lambda: usage_stats(GOOD, codebook_size=2.5), "codebook_size"),
        (lambda: mutual_information(GOOD, codebook_size=[2, -3]), "codebook_size"),
        (lambda: mutual_information(np.array([[2**40, 0]])), "codes"),
        (lambda: effective_bits(np.array([1, 2])), "codes"),
        (lambda: collision_rate(np.array([[-3]])), "codes"),
        (lambda: prefix_collision_rates([]), "codes"),
        (lambda: collision_groups(GOOD, top=0), "top"),
        (lambda: allocated_bits(256), "n_codebooks"),
        (lambda: allocated_bits([256, 256], 3), "codebook_size"),
        (lambda: allocated_bits(256, 0), "n_codebooks"),
        (lambda: reconstruction_error(FLOATS, FLOATS[:5]), "X_hat"),
        (lambda: reconstruction_error(FLOATS, FLOATS[:, :1]), "X_hat"),
        (lambda: reconstruction_error(FLOATS.ravel(), FLOATS.ravel()), "X"),
        (lambda: reconstruction_error(FLOATS, FLOATS + np.inf), "X_hat"),
        (lambda: exact_neighbors(FLOATS, FLOATS[:, :1], 1), "queries"),
        (lambda: exact_neighbors(FLOATS, FLOATS, 0), "k"),
        (lambda: exact_neighbors(FLOATS, FLOATS, 7), "k"),
        (lambda: exact_neighbors(FLOATS, FLOATS, 2.0), "k"),
        (lambda: recall_at(FLOATS, FLOATS[:, :1], np.zeros((6, 1), int)), "queries"),
        (lambda: recall_at(FLOATS, FLOATS, np.zeros((5, 1), int)), "ground_truth"),
        (lambda: recall_at(FLOATS, FLOATS, np.full((6, 1), 6)), "ground_truth"),
        (lambda: recall_at(FLOATS, FLOATS, np.zeros((6, 1))), "ground_truth"),
        (lambda: recall_at(FLOATS, FLOATS, np.zeros((6, 1), int), R=0), "R"),
        (lambda: recall_at(FLOATS, FLOATS, np.zeros((6, 1), int), R=(1, -10)), "R"),
        (lambda: birthday_collision_rate(0, [256]), "n"),
        (lambda: birthday_collision_rate(10, [256, 0]), "codebook_sizes"),
        (lambda: birthday_collision_rate(10, []), "codebook_sizes"),
    ],
    ids=[
        "codes-1d",
        "codes-3d",
        "codes-no-rows",
        "codes-strings",
        "codes-ragged",
        "codes-negative",
        "codes-fractional",
        "codes-nan",
        "codes-ge-K",
        "codes-ge-K-per-position",
        "codebook_size-wrong-length",
        "codebook_size-zero",
        "codebook_size-float",
        "codebook_size-negative",
        "codes-unindexed-ids",
        "effective_bits-codes-1d",
        "collision-codes-negative",
        "prefix-codes-empty",
        "top-zero",
        "allocated-needs-M",
        "allocated-length-mismatch",
        "allocated-M-zero",
        "X_hat-fewer-rows",
        "X_hat-fewer-dims",
        "X-1d",
        "X_hat-inf",
        "queries-dims",
        "k-zero",
        "k-above-n",
        "k-float",
        "recall-queries-dims",
        "ground_truth-rows",
        "ground_truth-out-of-range",
        "ground_truth-float",
        "R-zero",
        "R-negative",
        "n-zero",
        "codebook_sizes-zero",
        "codebook_sizes-empty",
    ],
)
def test_bad_input_raises_naming_the_parameter(call, parameter):
    with pytest.raises(VQLensError, match=rf"(?<![\w.]){re.escape(parameter)}(?!\w)"):
        call()
