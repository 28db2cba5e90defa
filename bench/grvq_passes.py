"""GRVQ's refinement passes on held-out rows, by training rows per codeword (issue 20 item 4).

GRVQ (Liu, Shao & Lu, ICME 2015) refits each codebook on the best path's
intermediate set, n rows for K codewords; on too few rows per codeword the
passes over-fit, and :class:`vqcore.GeneralizedResidualQuantizer` runs them
only from ``min_points_per_centroid`` rows per codeword (default 39). For
GRVQ4x8 beam 5 and each learn size and seed this prints the held-out mse of
the RQ start (:class:`vqcore.ResidualQuantizer`, same beam and seed: GRVQ's
start), of 1 and 3 passes run anyway (``min_points_per_centroid=None``) and
of the default fit, each relative to the start, the training mse after 3
passes relative to the start's, and the CPU seconds of the default fit and of
3 passes (one BLAS thread). MiniLM trains on its first learn rows and holds
out its base set; SIFT trains on the first rows of siftsmall's base and holds
out BIGANN's first 10,000 base vectors. Usage::

    python -m bench.grvq_passes                          # MiniLM 5k 10k 20k, SIFT 5k 10k, seeds 0-2
    python -m bench.grvq_passes --data sift --learn 5000 --seeds 1
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from bench.compare_faiss import DATA  # noqa: E402
from vqcore import GeneralizedResidualQuantizer, ResidualQuantizer  # noqa: E402
from vqcore.io import read_bvecs, read_fvecs  # noqa: E402

LEARN = {"minilm": (5000, 10000, 20000), "sift": (5000, 10000)}


def load(name):
    """(training rows, held-out rows) of a data set."""
    if name == "minilm":
        return np.load(DATA / "minilm_learn.npy"), np.load(DATA / "minilm_base.npy")
    return read_fvecs(DATA / "siftsmall_base.fvecs"), read_bvecs(DATA / "bigann10k_base.bvecs").astype(np.float32)


def mse(q, X):
    R = X.astype(np.float64) - q.decode(q.encode(X))
    return float(np.einsum("ij,ij->", R, R) / X.shape[0])


def fit(make, X):
    t = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = make().fit(X)
    return q, time.process_time() - t


def run(name, n, seed):
    train, held = load(name)
    X = np.ascontiguousarray(train[:n], dtype=np.float32)
    H = np.ascontiguousarray(held, dtype=np.float32)
    def grvq(**kw):
        return lambda: GeneralizedResidualQuantizer(4, 256, beam_size=5, random_state=seed, **kw)
    start, _ = fit(lambda: ResidualQuantizer(4, 256, beam_size=5, random_state=seed), X)
    one, _ = fit(grvq(n_passes=1, min_points_per_centroid=None), X)
    three, cpu3 = fit(grvq(n_passes=3, min_points_per_centroid=None), X)
    default, cpu = fit(grvq(n_passes=3), X)
    h0 = mse(start, H)
    return {"held_start": h0, "pass1": mse(one, H) / h0, "pass3": mse(three, H) / h0,
            "default": mse(default, H) / h0, "passes_run": default.n_passes_run_,
            "train3": mse(three, X) / mse(start, X), "cpu": cpu, "cpu3": cpu3}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=sorted(LEARN), nargs="+", default=["minilm", "sift"])
    ap.add_argument("--learn", type=int, nargs="+", help="learn sizes (default: MiniLM 5k 10k 20k, SIFT 5k 10k)")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    print("| data | learn | rows/codeword | seed | held-out mse, RQ start | 1 pass | 3 passes | default "
          "(passes run) | training mse, 3 passes | CPU s default / 3 passes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with threadpool_limits(1):
        for name in args.data:
            for n in args.learn or LEARN[name]:
                for seed in range(args.seeds):
                    r = run(name, n, seed)
                    print(f"| {name} | {n} | {n / 256:.1f} | {seed} | {r['held_start']:.5g} | {r['pass1']:.4f} | "
                          f"{r['pass3']:.4f} | {r['default']:.4f} ({r['passes_run']}) | {r['train3']:.3f} | "
                          f"{r['cpu']:.1f} / {r['cpu3']:.1f} |", flush=True)
    print("(1 pass, 3 passes, default, training mse: relative to the RQ start; load average "
          f"{os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
