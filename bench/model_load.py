"""How long ``vqcore.load_quantizer`` takes on a model of realistic size, beside torch.load when torch is there.

Builds a ResidualVQ-shaped state dict (``layers.{m}._codebook.embed`` of
(1, K, d) plus its EMA buffers, as vector-quantize-pytorch saves them), writes
it as a torch.save zip (by the same writer the tests use, which torch itself
reads) and as .safetensors, and times: load_quantizer on each, then encoding
rows with the loaded quantizer. With torch importable (a throwaway venv, never
a dependency), it also times ``torch.load(weights_only=True)`` of the same
file and prints the ratio.

Usage (from the repository root):
    python -m bench.model_load [--levels 8] [--K 1024] [--dim 768] [--rows 20000] [--repeat 5]
This is a benchmark, not a test: it prints, it does not assert.
"""

import argparse
import io
import time

import numpy as np

import vqcore
from tests.malformed import torch_state_dict


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", type=int, default=8)
    ap.add_argument("--K", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    sd = {}
    for m in range(a.levels):
        sd[f"layers.{m}._codebook.embed"] = rng.normal(size=(1, a.K, a.dim)).astype(np.float32) / (m + 1)
        sd[f"layers.{m}._codebook.embed_avg"] = sd[f"layers.{m}._codebook.embed"].copy()
        sd[f"layers.{m}._codebook.cluster_size"] = np.ones((1, a.K), np.float32)
    pt = torch_state_dict(sd)
    from safetensors.numpy import save

    st = save(sd)
    print(f"model: ResidualVQ {a.levels} x {a.K} x {a.dim}; .pt {len(pt) / 2**20:.1f} MiB, "
          f".safetensors {len(st) / 2**20:.1f} MiB")
    t_pt, q = best_of(lambda: vqcore.load_quantizer(pt, filename="m.pt"), a.repeat)
    t_st, _ = best_of(lambda: vqcore.load_quantizer(st, filename="m.safetensors"), a.repeat)
    print(f"load_quantizer .pt          {t_pt * 1e3:8.1f} ms  ({len(pt) / 2**20 / t_pt:6.0f} MiB/s)")
    print(f"load_quantizer .safetensors {t_st * 1e3:8.1f} ms  ({len(st) / 2**20 / t_st:6.0f} MiB/s)")
    try:
        import torch
    except ImportError:
        print("torch.load                  (torch not importable here: run in a venv with torch for the ratio)")
    else:
        t_torch, _ = best_of(lambda: torch.load(io.BytesIO(pt), weights_only=True), a.repeat)
        print(f"torch.load(weights_only)    {t_torch * 1e3:8.1f} ms  ratio load_quantizer/torch.load "
              f"{t_pt / t_torch:.2f}")
    X = rng.normal(size=(a.rows, a.dim)).astype(np.float32)
    t_enc, _ = best_of(lambda: q.encode(X), 1)
    print(f"encode {a.rows:,} rows (greedy)  {t_enc:8.2f} s")


if __name__ == "__main__":
    main()
