"""Two-view MNIST of CMMD (Mancisidor et al., Sec. 4; Wang et al. 2016's construction).

x_O ("rotated"): the digit rotated by an angle drawn uniformly in [-pi/4, pi/4];
x_M ("noisy"): ANOTHER digit of the same class with independent U[0, 1] noise added per pixel,
clipped to [0, 1]. Split 50k train / 10k tune (validation) / 10k test, partners drawn within
each split. label: the shared class.

source: "build" (default) derives the views from torchvision MNIST deterministically from `seed`
and caches them next to the MNIST files as mnist_2view/<content hash>.npz (the hash covers the
source files' sha256 and every parameter, so a changed source or parameter rebuilds);
"vcca_mat" reads the MNIST.mat distributed by the VCCA authors (keys X1, X2, XV1, XV2, XTe1, XTe2,
trainLabel, tuneLabel, testLabel; rows are 28x28 images flattened column-major; labels stored
1-based, 10 read as digit 0: UNCERTAIN, the file does not say; see DATASETS.md).
Rotation: bilinear (torch grid_sample), zeros outside the image.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmrepro.data import mnist
from mmrepro.data.cache import cache_file, load_splits, save_splits
from mmrepro.data.matfile import load_mat
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, file_digest
from mmrepro.errors import DataError, check_choice, check_range

MAT_KEYS = {"train": ("X1", "X2", "trainLabel"), "val": ("XV1", "XV2", "tuneLabel"), "test": ("XTe1", "XTe2", "testLabel")}


def rotate(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate each (H, W) image by its angle (radians, counter-clockwise), bilinear, zero fill."""
    x = torch.as_tensor(images, dtype=torch.float32)[:, None]
    a = torch.as_tensor(angles, dtype=torch.float32)
    cos, sin = torch.cos(a), torch.sin(a)
    theta = torch.stack([torch.stack([cos, sin, torch.zeros_like(a)], 1),
                         torch.stack([-sin, cos, torch.zeros_like(a)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0].numpy()


def same_class_partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each example, the index of a different example of the same class."""
    partners = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            raise DataError(f"class {c} has {len(idx)} example(s): two-view pairs need at least two per class")
        shift = rng.integers(1, len(idx), size=len(idx))  # never 0: never paired with itself
        partners[idx] = idx[(np.arange(len(idx)) + shift) % len(idx)]
    return partners


def two_views(images: np.ndarray, labels: np.ndarray, seed: int, max_angle: float) -> dict[str, np.ndarray]:
    """images: (N, 28, 28) grey values in [0, 1]."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-max_angle, max_angle, size=len(images))
    partners = same_class_partners(labels, rng)
    noisy = np.clip(images[partners] + rng.uniform(0, 1, size=images.shape), 0, 1)
    n = len(images)
    return {"rotated": rotate(images, angles).reshape(n, -1).astype(np.float32),
            "noisy": noisy.reshape(n, -1).astype(np.float32),
            "label": labels.astype(np.int64), "angle": angles.astype(np.float32), "partner": partners}


class MNIST2View(TensorDataModule):
    name = "mnist_2view"
    modalities = [Modality("rotated", (28, 28), "bernoulli"), Modality("noisy", (28, 28), "gaussian")]
    label = Modality("label", (10,), "categorical")  # y: the digit, for models that classify

    def __init__(self, root: str = "data", download: bool = True, batch_size: int = 100, source: str = "build",
                 seed: int = 0, max_angle: float = math.pi / 4, val_size: int = 10000, mat_file: str = "MNIST.mat"):
        super().__init__(batch_size)
        self.root = Path(root)
        self.download = bool(download)
        self.source = check_choice("source", source, ("build", "vcca_mat"))
        self.seed = seed
        self.max_angle = check_range("max_angle", max_angle, 0, math.pi)
        self.val_size = check_range("val_size", val_size, 1, integer=True)
        self.mat_file = self.root / mat_file

    def source_files(self) -> list[Path]:
        return [self.mat_file] if self.source == "vcca_mat" else mnist.source_files(self.root)

    def cache_path(self) -> Path:
        key = {"files": {p.name: file_digest(p) for p in mnist.source_files(self.root)}, "seed": self.seed,
               "max_angle": self.max_angle, "val_size": self.val_size, "version": 1}
        return cache_file(self.root / "mnist_2view", "mnist_2view", key)

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        if self.source == "vcca_mat":
            return self.load_mat()
        data = mnist.load_mnist(self.root, self.download)
        cache = self.cache_path()
        if cache.exists():
            return load_splits(cache)
        (x, y), (x_test, y_test) = data["train"], data["test"]
        if self.val_size >= len(x):
            raise DataError(f"{self.root}: {len(x)} training images, fewer than dataset.val_size={self.val_size} + 1")
        n = len(x) - self.val_size
        parts = {"train": (x[:n], y[:n]), "val": (x[n:], y[n:]), "test": (x_test, y_test)}
        out = {s: two_views(im / np.float32(255), lab, self.seed + i, self.max_angle)
               for i, (s, (im, lab)) in enumerate(parts.items())}
        save_splits(cache, out)
        return out

    def load_mat(self) -> dict[str, dict[str, np.ndarray]]:
        if not self.mat_file.exists():
            raise DataError(f"MNIST.mat file {self.mat_file} is missing: it is distributed with the VCCA code of "
                            f"Wang et al. (createMNIST.m); point dataset.root / dataset.mat_file at it, "
                            f"or use dataset.source=build")
        mat = load_mat(self.mat_file, [k for keys in MAT_KEYS.values() for k in keys], "MNIST.mat")
        out = {}
        for split, (k1, k2, kl) in MAT_KEYS.items():
            v1, v2, lab = mat[k1], mat[k2], mat[kl].reshape(-1)
            for k, v in ((k1, v1), (k2, v2)):
                if v.ndim != 2 or v.shape[1] != 784 or v.shape[0] != len(lab):
                    raise DataError(f"MNIST.mat file {self.mat_file}: {k} has shape {v.shape}, expected ({len(lab)}, 784)")
            if lab.min() < 1 or lab.max() > 10:
                raise DataError(f"MNIST.mat file {self.mat_file}: {kl} holds {lab.min()}..{lab.max()}, expected 1..10")
            out[split] = {"rotated": row_major(v1), "noisy": row_major(v2), "label": (lab % 10).astype(np.int64)}
        return out


def row_major(v: np.ndarray) -> np.ndarray:
    """MATLAB column-major flattened 28x28 rows -> our row-major flattening."""
    return np.ascontiguousarray(v.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784), dtype=np.float32)
