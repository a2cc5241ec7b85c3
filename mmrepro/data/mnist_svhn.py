"""MNIST-SVHN pairs of the same digit (Shi et al. 2019's construction, used by CMMD Table 3).

Pairing (iffsid/mmvae bin/make-mnist-svhn-idx.py, generalised to k modalities in match_by_class):
for each class, take the first n = min(#each, max_d) examples of each source in label-sorted
order, then append `data_multiplications` independent random permutations of each list, so every
example is paired with that many partners of its class. Seeded; the index lists are cached next to
the MNIST files under a hash of the source files and every parameter. Images are kept once in base
tables (MNIST 28x28 grey / 255, SVHN 3x32x32 / 255) and gathered per batch. Validation: the last
`val_size` MNIST training images and the same share of SVHN's training images, paired among
themselves (disjoint from training). `max_pairs` subsamples pairs per split (CMMD: 80,000 train /
20,000 test, drawn at random; null keeps all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.data import mnist, svhn
from mmrepro.data.cache import cache_file, load_splits, save_splits
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, file_digest
from mmrepro.errors import DataError, check_range


def match_by_class(labels: list[np.ndarray], multiplications: int, max_d: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index lists, one per source, whose i-th entries share a class (mmvae's pairing for k sources)."""
    out = [[] for _ in labels]
    for c in range(10):
        pools = [np.flatnonzero(lab == c) for lab in labels]
        n = min(min(len(p) for p in pools), max_d)
        if n == 0:
            continue
        for _ in range(multiplications):
            for lst, pool in zip(out, pools):
                lst.append(pool[:n][rng.permutation(n)])
    if not out[0]:
        raise DataError("no class has examples in every source: nothing to pair")
    return [np.concatenate(lst) for lst in out]


class MNISTSVHN(TensorDataModule):
    name = "mnist_svhn"
    modalities = [Modality("mnist", (28, 28), "bernoulli"), Modality("svhn", (3, 32, 32), "gaussian")]
    label = Modality("label", (10,), "categorical")  # y: the digit, for models that classify
    lookups = {"mnist": ("mnist", "mnist_index"), "svhn": ("svhn", "svhn_index")}
    sources = ("mnist", "svhn")  # base table of each index list built by match_by_class

    def __init__(self, root: str = "data", svhn_root: str = "data/svhn", download: bool = True, batch_size: int = 128,
                 data_multiplications: int = 20, max_d: int = 10000, seed: int = 0, val_size: int = 10000,
                 max_pairs: dict | None = None):
        super().__init__(batch_size)
        self.root, self.svhn_root = Path(root), Path(svhn_root)
        self.download = bool(download)
        self.multiplications = check_range("data_multiplications", data_multiplications, 1, integer=True)
        self.max_d = check_range("max_d", max_d, 1, integer=True)
        self.seed = seed
        self.val_size = check_range("val_size", val_size, 1, integer=True)
        self.max_pairs = {s: (None if v is None else check_range(f"max_pairs.{s}", v, 1, integer=True))
                          for s, v in (max_pairs or {}).items()}

    def source_files(self) -> list[Path]:
        return mnist.source_files(self.root) + svhn.source_files(self.svhn_root)

    def params(self) -> dict:
        return {"multiplications": self.multiplications, "max_d": self.max_d, "seed": self.seed,
                "val_size": self.val_size, "max_pairs": self.max_pairs}

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        m = mnist.load_mnist(self.root, self.download, "dataset.root")
        s = svhn.load_svhn(self.svhn_root, self.download)
        (mx, my), (mtx, mty) = m["train"], m["test"]
        (sx, sy), (stx, sty) = s["train"], s["test"]
        if self.val_size >= len(mx):
            raise DataError(f"{self.root}: {len(mx)} MNIST training images, fewer than dataset.val_size={self.val_size} + 1")
        self.base = {"mnist": np.concatenate([mx, mtx]).astype(np.float32) / 255,
                     "svhn": np.concatenate([sx, stx]).astype(np.float32) / 255}
        self.base_labels = {"mnist": np.concatenate([my, mty]), "svhn": np.concatenate([sy, sty])}
        n_m, n_s = len(mx) - self.val_size, len(sx) - round(len(sx) * self.val_size / len(mx))
        self.base_rows = {  # rows of each base table that each split may use
            "train": {"mnist": np.arange(n_m), "svhn": np.arange(n_s)},
            "val": {"mnist": np.arange(n_m, len(mx)), "svhn": np.arange(n_s, len(sx))},
            "test": {"mnist": len(mx) + np.arange(len(mtx)), "svhn": len(sx) + np.arange(len(stx))}}
        self.extend_bases()
        cache = self.cache_path()
        if cache.exists():
            return load_splits(cache)
        out = {sp: self.pair_split(sp, np.random.default_rng(self.seed + i)) for i, sp in enumerate(self.base_rows)}
        save_splits(cache, out)
        return out

    def extend_bases(self) -> None:
        """Hook for subclasses that add base tables derived from these (e.g. rotated MNIST)."""

    def pair_split(self, split: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
        rows = [self.base_rows[split][src] for src in self.sources]
        lists = match_by_class([self.base_labels[src][r] for src, r in zip(self.sources, rows)],
                               self.multiplications, self.max_d, rng)
        index = [r[lst] for r, lst in zip(rows, lists)]
        keep = np.arange(len(index[0]))
        limit = self.max_pairs.get(split)
        if limit is not None and limit < len(keep):
            keep = np.sort(rng.choice(len(keep), size=limit, replace=False))
        out = {key: idx[keep] for (_, key), idx in zip(self.lookups.values(), index)}
        out["label"] = self.base_labels[self.sources[0]][index[0][keep]]
        return out

    def load_bases(self) -> dict[str, np.ndarray]:
        return self.base

    def cache_path(self) -> Path:
        key = {"dataset": self.name, "files": {p.name: file_digest(p) for p in self.source_files()}, **self.params(),
               "version": 1}
        return cache_file(self.root / self.name, f"{self.name}-pairs", key)
