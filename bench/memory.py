"""Peak memory of fit + encode on 1,000,000 x 128 float32, above the data itself.

Each case runs in a fresh child process: it builds the data (512 MB, in float32
chunks so that building it leaves no larger peak), reads its peak resident set
size, then fits and encodes, and reads the peak again. The difference is what
the quantizer needed beyond the data. Target: under 2.5 GB.

Usage::

    python -m bench.memory                 # PQ8x8 and RQ8x8 on 1,000,000 x 128 (from the repository root)
    python -m bench.memory --n 200000 --specs PQ8x8 RQ8x8_b5
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_GB = 2.5


def _peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(spec, n, d):
    import numpy as np

    import vqcore

    rng = np.random.default_rng(0)
    mix = rng.standard_normal((d, d), dtype=np.float32) / np.sqrt(d)
    X = np.empty((n, d), dtype=np.float32)
    step = 50_000
    for a in range(0, n, step):
        b = min(n, a + step)
        # correlated data with a few strong directions, like real descriptors
        X[a:b] = (rng.standard_normal((b - a, d), dtype=np.float32) * np.linspace(3, 0.3, d, dtype=np.float32)) @ mix
    base = _peak_bytes()
    t0 = time.perf_counter()
    q = vqcore.from_spec(spec, random_state=0).fit(X)
    t1 = time.perf_counter()
    codes = q.encode(X)
    t2 = time.perf_counter()
    peak = _peak_bytes()
    print(json.dumps({
        "spec": spec, "n": n, "d": d, "data_gb": X.nbytes / 1e9, "base_gb": base / 1e9,
        "peak_gb": peak / 1e9, "above_gb": (peak - base) / 1e9, "fit_s": t1 - t0, "encode_s": t2 - t1,
        "codes_mb": codes.nbytes / 1e6, "n_train": int(getattr(q, "n_train_", 0)),
    }))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--specs", nargs="+", default=["PQ8x8", "RQ8x8"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.n, args.d)
        return
    print(f"{'spec':>10} {'n':>9} {'d':>4} {'data GB':>8} {'peak GB':>8} {'above data GB':>14} "
          f"{'fit s':>7} {'encode s':>9} {'n_train':>8}  target < {TARGET_GB} GB")
    ok = True
    for spec in args.specs:
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--child", spec, "--n", str(args.n), "--d", str(args.d)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        met = r["above_gb"] < TARGET_GB
        ok &= met
        print(f"{r['spec']:>10} {r['n']:>9} {r['d']:>4} {r['data_gb']:>8.2f} {r['peak_gb']:>8.2f} "
              f"{r['above_gb']:>14.2f} {r['fit_s']:>7.1f} {r['encode_s']:>9.1f} {r['n_train']:>8}  "
              f"{'met' if met else 'NOT met'}")
    print("all within target" if ok else "some case above target")


if __name__ == "__main__":
    main()
