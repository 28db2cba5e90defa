"""Gradient-trained codebooks on the shipped sample: every trainer, init and reset.

For each combination (vqcore.training.TrainConfig) a codebook of K codes is
trained on 4,000 rows of the shipped MiniLM sample (6,000 x 384, unit norm)
and scored on those rows and on the 2,000 held-out ones: mse, perplexity
(2^entropy of the code counts) and dead codes (count 0), as vqcore.metrics
defines them, and the wall time. KMeansVQ (k-means++ and 25 Lloyd
iterations) is the reference row.

Dead codes on the training rows flatter data-based inits (a codeword that
starts on a training vector is nearest at least to it); the held-out columns
show the codewords that serve nothing else.

BLAS runs on one thread (threadpoolctl): the per-step products are small
(256 x 385 x 256) and extra BLAS threads only cost synchronisation.

Usage::

    python -m bench.training                       # everything, 500 steps (from the repository root)
    python -m bench.training --steps 200 --trainers ste ema
    python -m bench.training --codebook-size 64 --markdown /tmp/training.md
"""

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from vqcore import KMeansVQ  # noqa: E402
from vqcore.datasets import load_sample  # noqa: E402
from vqcore.metrics import reconstruction_error, usage_stats  # noqa: E402
from vqcore.training import TRAINERS, TrainConfig, train_codebook  # noqa: E402


def configs(steps, K, trainers):
    """(label, TrainConfig) for every combination worth comparing."""
    out = []
    base = TrainConfig(codebook_size=K, steps=steps, random_state=0)
    for trainer in ("ste", "nsvq"):
        for optimizer in ("sgd", "adam"):
            for init in ("normal", "data", "kmeans++"):
                for reset in (None, 20):
                    out.append(dataclasses.replace(base, trainer=trainer, optimizer=optimizer,
                                                   init=init, reset_after=reset))
    for init in ("normal", "data", "kmeans++"):
        for reset in (None, 20):
            out.append(dataclasses.replace(base, trainer="ema", init=init, reset_after=reset))
    for init in ("normal", "data", "kmeans++"):
        out.append(dataclasses.replace(base, trainer="lloyd", init=init, steps=min(steps, 25)))
    out.append(dataclasses.replace(base, trainer="ste", init="data", cosine=True))
    out.append(dataclasses.replace(base, trainer="ema", init="data", cosine=True))
    for levels in ((8, 5, 5, 5), (8, 8, 8, 5, 5, 5)):
        out.append(dataclasses.replace(base, trainer="fsq", levels=levels))
    return [(label(c), c) for c in out if c.trainer in trainers]


def label(c):
    if c.trainer == "fsq":
        return f"fsq levels={','.join(map(str, c.levels))}"
    parts = [c.trainer]
    if c.trainer in ("ste", "nsvq"):
        parts.append(c.optimizer)
    parts.append(f"init={c.init}")
    if c.reset_after is not None:
        parts.append(f"reset={c.reset_after}")
    if c.cosine:
        parts.append("cosine")
    return " ".join(parts)


def score(codes, K, X, X_hat):
    usage = usage_stats(codes, K)
    return (reconstruction_error(X, X_hat)["mse"], float(usage["perplexity"][0]),
            int(usage["dead"][0]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--codebook-size", type=int, default=256)
    ap.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=TRAINERS)
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)

    X_all = load_sample().X
    perm = np.random.default_rng(0).permutation(X_all.shape[0])
    X, H = X_all[perm[:4000]], X_all[perm[4000:]]
    K = args.codebook_size
    header = ["configuration", "steps", "codes", "train mse", "train ppl", "train dead",
              "held mse", "held ppl", "held dead", "seconds"]
    rows = []

    def add(name, steps, n_codes, train, held, seconds):
        rows.append([name, str(steps), str(n_codes),
                     f"{train[0]:.4f}", f"{train[1]:.1f}", str(train[2]),
                     f"{held[0]:.4f}", f"{held[1]:.1f}", str(held[2]), f"{seconds:.2f}"])
        print(" | ".join(rows[-1]), flush=True)

    print(f"vqcore.training on the shipped sample: train 4,000 x 384, held out 2,000; "
          f"K={K}; python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, BLAS on 1 thread")
    print(" | ".join(header))
    with threadpool_limits(limits=1, user_api="blas"):
        t = time.perf_counter()
        vq = KMeansVQ(codebook_size=K, random_state=0).fit(X)
        seconds = time.perf_counter() - t
        train = score(vq.encode(X), K, X, vq.decode(vq.encode(X)))
        held = score(vq.encode(H), K, H, vq.decode(vq.encode(H)))
        add("KMeansVQ (reference)", len(vq.inertia_), K, train, held, seconds)
        for name, config in configs(args.steps, K, set(args.trainers)):
            run = train_codebook(X, config)
            codes_h = run.encode(H)
            Hp = H / np.linalg.norm(H, axis=1, keepdims=True) if config.cosine else H
            f = run.final
            train = (f["mse"], f["perplexity"][0], f["dead_codes"][0])
            held = score(codes_h, run.codebook_size, Hp, run.decode(codes_h))
            add(name, run.steps_run, run.codebook_size, train, held, run.seconds)
    if args.markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        args.markdown.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
