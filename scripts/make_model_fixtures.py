"""Build the trained-model fixtures that ``tests/test_models.py`` loads without torch.

Writes ``tests/fixtures/models/``: small models of vector-quantize-pytorch
(``ResidualVQ``, ``VectorQuantize`` with and without ``project_in`` /
``project_out``, with a LayerNorm after ``project_in``, with ``affine_param``,
multi-head with separate or shared codebooks, cosine-similarity codebooks,
``GroupedResidualVQ``) and one module laid out as the RQ-VAE of the semantic-ID
repositories (LC-Rec's ``encoder.mlp_layers`` and ``rq.vq_layers.{m}.embedding``),
each briefly trained (k-means init, a few EMA / Adam steps), then run in eval
mode on fresh data the model never saw. For each model ``<name>``:

- ``<name>.pt``: ``torch.save(model.state_dict())`` (the zip format);
- ``<name>.safetensors``: the same tensors, ``safetensors.torch.save_file``;
- ``<name>_ckpt.pt`` (some models): a training checkpoint nesting the state dict
  (``{"model": ..., "optimizer": ..., "epoch": ...}`` and the like);
- ``<name>_X.npy``: the fresh input vectors, float32 (n, dim);
- ``<name>_codes.npy``: the model's own indices for them, one column per level
  (groups first, then levels, for ``GroupedResidualVQ``; heads for multi-head);
- ``<name>_Xhat.npy``: the model's own output (its reconstruction).

Needs torch, which VQ Lens never depends on: run it once, in a throwaway venv::

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 vector-quantize-pytorch safetensors numpy
    /tmp/torchenv/bin/python scripts/make_model_fixtures.py

Made with torch 2.13.0+cpu and vector-quantize-pytorch 1.32.0 (recorded in
``tests/fixtures/models/VERSIONS.txt``). Tests never run this script.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from vector_quantize_pytorch import GroupedResidualVQ, ResidualVQ, VectorQuantize

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models"
N_TRAIN, N_TEST = 512, 200


def blobs(n, dim, seed):
    """A Gaussian mixture of 12 blobs with a common seed for the centres."""
    centres = np.random.default_rng(1234 + dim).normal(size=(12, dim)) * 2.0
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, 12, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def train(model, dim, steps=8, lr=1e-2, adam=True):
    """k-means init on the first batch, then a few steps of EMA and (optionally) Adam."""
    X = torch.from_numpy(blobs(N_TRAIN, dim, seed=1))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if adam and params else None
    model.train()
    for _ in range(steps):
        out = model(X[None])
        quantized, loss = out[0], out[2]
        total = loss.sum() + torch.nn.functional.mse_loss(quantized, X[None])
        if opt is not None:
            opt.zero_grad()
            total.backward()
            opt.step()
    model.eval()
    return opt


def run(model, dim):
    """Eval-mode output on fresh data: (X, codes (n, levels), X_hat)."""
    X = blobs(N_TEST, dim, seed=2)
    with torch.no_grad():
        out = model(torch.from_numpy(X)[None])
    quantized, indices = out[0][0].numpy(), out[1]
    if indices.ndim == 4:  # GroupedResidualVQ: (groups, batch, n, levels) -> groups first, then levels
        indices = indices[:, 0].permute(1, 0, 2).reshape(N_TEST, -1)
    else:
        indices = indices[0]
        if indices.ndim == 1:
            indices = indices[:, None]
    return X, indices.numpy().astype(np.int64), quantized.astype(np.float32)


def save(name, model, X, codes, X_hat, ckpt=None):
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(sd, OUT / f"{name}.pt")
    save_file(sd, OUT / f"{name}.safetensors")
    if ckpt is not None:
        torch.save(ckpt, OUT / f"{name}_ckpt.pt")
    np.save(OUT / f"{name}_X.npy", X)
    np.save(OUT / f"{name}_codes.npy", codes)
    np.save(OUT / f"{name}_Xhat.npy", X_hat)
    print(f"{name}: codes {codes.shape}, {len(sd)} tensors")


class LCRecLikeVQ(nn.Module):
    """One level of LC-Rec's VectorQuantizer: an nn.Embedding codebook, argmin of squared distance."""

    def __init__(self, K, d):
        super().__init__()
        self.embedding = nn.Embedding(K, d)

    def forward(self, x):
        w = self.embedding.weight
        dist = (x ** 2).sum(1, keepdim=True) + (w ** 2).sum(1, keepdim=True).t() - 2 * x @ w.t()
        idx = dist.argmin(-1)
        return self.embedding(idx), idx


class LCRecLikeRQVAE(nn.Module):
    """The module names of LC-Rec's RQVAE (encoder.mlp_layers, rq.vq_layers, decoder.mlp_layers)."""

    def __init__(self, in_dim, e_dim, K, levels):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.mlp_layers = nn.Sequential(nn.Dropout(0.0), nn.Linear(in_dim, 12), nn.ReLU(),
                                                nn.Dropout(0.0), nn.Linear(12, e_dim))
        self.rq = nn.Module()
        self.rq.vq_layers = nn.ModuleList(LCRecLikeVQ(K, e_dim) for _ in range(levels))
        self.decoder = nn.Module()
        self.decoder.mlp_layers = nn.Sequential(nn.Dropout(0.0), nn.Linear(e_dim, 12), nn.ReLU(),
                                                nn.Dropout(0.0), nn.Linear(12, in_dim))

    def latent(self, x):
        return self.encoder.mlp_layers(x)

    def codes(self, z):
        res, out, idx = z, torch.zeros_like(z), []
        for layer in self.rq.vq_layers:
            q, i = layer(res)
            res, out = res - q, out + q
            idx.append(i)
        return out, torch.stack(idx, -1)


def rqvae_fixture():
    """Train the codebooks by residual k-means on the encoder's outputs; codes on fresh latents."""
    torch.manual_seed(0)
    model = LCRecLikeRQVAE(in_dim=16, e_dim=6, K=16, levels=3).eval()
    with torch.no_grad():
        Z = model.latent(torch.from_numpy(blobs(N_TRAIN, 16, seed=1)))
        res = Z.clone()
        for layer in model.rq.vq_layers:  # a few Lloyd steps per level, as kmeans_init does
            C = res[torch.randperm(len(res))[:16]].clone()
            for _ in range(10):
                a = torch.cdist(res, C).argmin(1)
                for k in range(16):
                    if (a == k).any():
                        C[k] = res[a == k].mean(0)
            layer.embedding.weight.copy_(C)
            res = res - C[torch.cdist(res, C).argmin(1)]
        Zt = model.latent(torch.from_numpy(blobs(N_TEST, 16, seed=2)))
        Z_hat, codes = model.codes(Zt)
    args = argparse.Namespace(lr=1e-3, e_dim=6, num_emb_list=[16, 16, 16], layers=[12])
    ckpt = {"args": args, "epoch": 3, "best_loss": 0.5, "best_collision_rate": 0.1,
            "state_dict": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}}
    # codes are computed on the encoder's latent vectors: that is what the loader quantizes
    save("rqvae_lcrec", model, Zt.numpy(), codes.numpy().astype(np.int64), Z_hat.numpy(), ckpt=ckpt)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    rvq = ResidualVQ(dim=8, num_quantizers=3, codebook_size=16, kmeans_init=True, kmeans_iters=10)
    opt = train(rvq, 8)
    save("rvq", rvq, *run(rvq, 8),
         ckpt={"model": rvq.state_dict(), "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": []}]},
               "epoch": 8, "step": 8})

    torch.manual_seed(1)
    vq = VectorQuantize(dim=8, codebook_size=32, kmeans_init=True, kmeans_iters=10)
    train(vq, 8)
    save("vq", vq, *run(vq, 8))

    torch.manual_seed(2)
    vqp = VectorQuantize(dim=16, codebook_dim=8, codebook_size=32, kmeans_init=True, kmeans_iters=10)
    opt = train(vqp, 16)
    save("vq_proj", vqp, *run(vqp, 16),
         ckpt={"state_dict": vqp.state_dict(), "optimizer": opt.state_dict(), "epoch": 8})

    torch.manual_seed(3)
    rvqp = ResidualVQ(dim=16, codebook_dim=8, num_quantizers=2, codebook_size=16, kmeans_init=True)
    opt = train(rvqp, 16)
    save("rvq_proj", rvqp, *run(rvqp, 16),
         ckpt={"model_state_dict": rvqp.state_dict(), "optimizer_state_dict": opt.state_dict(), "epoch": 8})

    torch.manual_seed(4)
    grvq = GroupedResidualVQ(dim=16, groups=2, num_quantizers=2, codebook_size=16, kmeans_init=True)
    train(grvq, 16)
    save("grvq", grvq, *run(grvq, 16))

    torch.manual_seed(5)
    heads = VectorQuantize(dim=16, codebook_dim=8, heads=2, separate_codebook_per_head=True,
                           codebook_size=16, kmeans_init=True)
    train(heads, 16)
    save("vq_heads", heads, *run(heads, 16))

    torch.manual_seed(6)
    cos = ResidualVQ(dim=8, num_quantizers=2, codebook_size=16, use_cosine_sim=True, kmeans_init=True)
    train(cos, 8)
    save("rvq_cosine", cos, *run(cos, 8))

    torch.manual_seed(7)
    ln = VectorQuantize(dim=16, codebook_dim=8, codebook_size=16, layernorm_after_project_in=True, kmeans_init=True)
    train(ln, 16)
    save("vq_ln", ln, *run(ln, 16))

    torch.manual_seed(8)
    shared = VectorQuantize(dim=16, codebook_dim=4, heads=2, separate_codebook_per_head=False, codebook_size=16,
                            kmeans_init=True)
    train(shared, 16)
    save("vq_heads_shared", shared, *run(shared, 16))

    torch.manual_seed(9)
    affine = VectorQuantize(dim=8, codebook_size=16, affine_param=True, kmeans_init=True)
    train(affine, 8)
    save("vq_affine", affine, *run(affine, 8))

    rqvae_fixture()

    (OUT / "VERSIONS.txt").write_text(
        f"torch {torch.__version__}\nvector-quantize-pytorch {_dist_version()}\n"
        f"python {sys.version.split()[0]}\nnumpy {np.__version__}\n"
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"total {total / 1024:.0f} KiB in {OUT}")


def _dist_version():
    from importlib.metadata import version

    return version("vector-quantize-pytorch")


if __name__ == "__main__":
    main()
