"""GRVQ against RQ, AQ and faiss (RQ, LSQ) on real data, and the paper's Figure 2 views.

Liu, Shao & Lu, "Generalized residual vector quantization for large scale
data" (ICME 2015) claim that GRVQ quantizes with less error than RQ at the same
bits. This script checks it on the data of ``bench/compare_faiss.py`` (same
loader, same scoring: mse on the base set, recall@10 of the query's exact
nearest neighbour among the base reconstructions by asymmetric distance), at
32 and 64 bits (4x8, 8x8):

1. one table: vqcore RQ beam 1, RQ beam 5, GRVQ (beam 5), AQ; faiss RQ beam
   1 and 5 and LSQ; mse, its ratio to vqcore RQ beam 1, recall@10, times;
2. Figure 2, left: error against number of stages -- RQ (a prefix of an
   8-stage RQ is the RQ with fewer stages), the prefixes of the 8-codebook
   GRVQ, and GRVQ trained with M = 1, 2, 4, 8 codebooks;
3. Figure 2, right: error against encoding time, beams 1, 2, 4, 8, 16, with
   the 64-bit RQ (beam 1) and GRVQ codebooks;
4. the norm term of fast Euclidean search (64-bit GRVQ): bits and error of
   each of the paper's options, and recall@10 when the search uses it.

The machine may be shared: times are noisy. Usage::

    python -m bench.grvq                       # both data sets, 32 and 64 bits (from the repository root)
    python -m bench.grvq --data sift --bits 32
"""

import argparse
import copy
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

import vqcore  # noqa: E402
from bench.compare_faiss import FaissRunner, VqcoreRunner, fmt_row, load, run_seed  # noqa: E402
from vqcore import beam_search_encode, metrics  # noqa: E402

BEAMS = (1, 2, 4, 8, 16)
GRVQ_BEAM = 5


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def configs(M):
    """(label, runner factory) for one size, in table order."""
    return [
        ("vqcore RQ b1", f"RQ{M}x8", lambda d: VqcoreRunner(f"RQ{M}x8", d)),
        ("vqcore RQ b5", f"RQ{M}x8_b5", lambda d: VqcoreRunner(f"RQ{M}x8_b5", d)),
        (f"vqcore GRVQ b{GRVQ_BEAM}", f"GRVQ{M}x8_b{GRVQ_BEAM}",
         lambda d: VqcoreRunner(f"GRVQ{M}x8_b{GRVQ_BEAM}", d)),
        ("vqcore AQ", f"AQ{M}x8_b4", lambda d: VqcoreRunner(f"AQ{M}x8", d)),
        ("faiss RQ b1", f"RQ{M}x8 beam=1", lambda d: FaissRunner(f"RQ{M}x8", d)),
        ("faiss RQ b5", f"RQ{M}x8 beam=5", lambda d: FaissRunner(f"RQ{M}x8_b5", d)),
        ("faiss LSQ", f"LSQ{M}x8", lambda d: FaissRunner(f"AQ{M}x8", d)),
    ]


def table(title, header, rows, widths=None):
    widths = widths or [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"\n{title}")
    print(fmt_row(header, widths))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt_row(r, widths))
    sys.stdout.flush()


def mse_of(X, X_hat):
    return metrics.reconstruction_error(X, X_hat)["mse"]


def adc_recall10(base_hat, norms, queries, gt):
    """recall@10 when the search ranks by ``norms - 2 <q, x_hat>`` (||q||^2 is constant per query)."""
    scores = norms[None, :] - 2.0 * (queries.astype(np.float64) @ base_hat.astype(np.float64).T)
    top = np.argpartition(scores, 10, axis=1)[:, :10]
    return float(np.mean((top == gt[:, :1]).any(axis=1)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["sift", "minilm"])
    ap.add_argument("--bits", nargs="+", type=int, default=[32, 64], choices=[32, 64])
    args = ap.parse_args(argv)

    import faiss

    faiss.omp_set_num_threads(2)
    main_rows, stage_rows, beam_rows, norm_rows = [], [], [], []
    for name in args.data:
        data = load(name)
        base, d = data["base"], data["train"].shape[1]
        log(f"{name}: train {data['train'].shape}, base {base.shape}, {data['queries'].shape[0]} queries")
        models = {}
        for bits in args.bits:
            M = bits // 8
            ref = None
            for label, spec, make in configs(M):
                log(f"{name} {bits} bits: {label} ...")
                runner = make(d)
                r = run_seed(runner, data)
                ref = ref or r["mse"]
                models[(M, label)] = runner
                main_rows.append([name, bits, label, spec, f"{r['mse']:.4g}", f"{r['mse'] / ref:.3f}",
                                  f"{r['R10']:.3f}", f"{r['fit']:.1f}", f"{r['encode']:.2f}"])
                log(f"   mse {r['mse']:.4g}  R@10 {r['R10']:.3f}  fit {r['fit']:.1f}s  encode {r['encode']:.2f}s")

        # ---- Figure 2, left: error against number of stages (base set)
        if 64 in args.bits:
            rq8 = models[(8, "vqcore RQ b1")].q
            g8 = models[(8, f"vqcore GRVQ b{GRVQ_BEAM}")].q
            log(f"{name}: stage errors, and GRVQ with M = 1, 2 codebooks ...")
            rq_prefix = rq8.stage_errors(base)
            g_prefix = g8.stage_errors(base)
            trained = {}
            for M in (1, 2, 4, 8):
                key = (M, f"vqcore GRVQ b{GRVQ_BEAM}")
                if key in models:
                    q = models[key].q
                else:
                    q = vqcore.from_spec(f"GRVQ{M}x8_b{GRVQ_BEAM}", random_state=0).fit(data["train"])
                trained[M] = mse_of(base, q.decode(q.encode(base)))
            for m in range(8):
                stage_rows.append([name, m + 1, f"{rq_prefix[m]:.4g}", f"{g_prefix[m]:.4g}",
                                   f"{trained[m + 1]:.4g}" if m + 1 in trained else "",
                                   f"{g_prefix[m] / rq_prefix[m]:.3f}"])

            # ---- Figure 2, right: error against encoding time
            for label, q in (("RQ b1 codebooks", rq8), ("GRVQ codebooks", g8)):
                for beam in BEAMS:
                    log(f"{name}: encode with {label}, beam {beam} ...")
                    t0 = time.perf_counter()
                    codes = beam_search_encode(base, q.codebooks_, beam)
                    dt = time.perf_counter() - t0
                    beam_rows.append([name, label, beam, f"{dt:.2f}", f"{mse_of(base, q.decode(codes)):.4g}"])

            # ---- the norm term (64-bit GRVQ, same codebooks; "regularized" refits them)
            gn = copy.deepcopy(g8)
            for norm in ("none", "float", "quantized", "regularized"):
                log(f"{name}: norm={norm} ...")
                gn.set_params(norm=norm, norm_bits=8).fit_norm(data["train"])
                c = gn.encode(base)
                bh = gn.decode(c)
                ex = np.einsum("ij,ij->i", bh.astype(np.float64), bh.astype(np.float64))
                approx = gn.adc_norms(c)
                err = float(np.mean(np.abs(approx - ex)))
                norm_rows.append([
                    name, norm, gn.norm_bits_, f"{err:.4g}", f"{err / ex.mean():.2e}",
                    f"{mse_of(base, bh):.4g}",
                    f"{adc_recall10(bh, approx, data['queries'], data['gt']):.3f}",
                    f"{adc_recall10(bh, ex, data['queries'], data['gt']):.3f}",
                ])

    table("1. mse on the base set and recall@10 (ratio = mse / vqcore RQ b1 at the same bits)",
          ["data", "bits", "quantizer", "spec", "mse", "ratio", "R@10", "fit s", "encode s"], main_rows)
    if stage_rows:
        table("2. Figure 2 (left): base mse against number of stages, 8x8 models "
              "(GRVQ prefix = first m codebooks of the 8-codebook GRVQ; GRVQ trained = a GRVQ with m codebooks)",
              ["data", "stages", "RQ b1", "GRVQ prefix", "GRVQ trained", "prefix / RQ"], stage_rows)
        table("3. Figure 2 (right): base mse against encoding time (10,000 base vectors, 8x8 codebooks)",
              ["data", "codebooks", "beam", "encode s", "mse"], beam_rows)
        table("4. the norm term of fast Euclidean search, 64-bit GRVQ (norm error = mean |adc norm - ||x_hat||^2| "
              "on the base set; it is the error of every ADC distance)",
              ["data", "norm", "extra bits", "norm error", "relative", "mse", "R@10 adc", "R@10 exact norm"],
              norm_rows)
    nq = {n: load(n)["queries"].shape[0] for n in args.data}
    print(f"\nqueries: {', '.join(f'{k} {v}' for k, v in nq.items())}; sift is trained in-sample on its base "
          "set, minilm on its learn set (20,000). faiss LSQ is faiss's additive quantizer; vqcore AQ is "
          "LSQ-style (ICM local search). 2 threads each; times on a shared machine.")


if __name__ == "__main__":
    main()
