"""scikit-learn's bundled 8x8 digits as image + label, the embedded stand-in for `mnist_label`
(JMVAE, Suzuki et al. 2016): x = 64 pixels (grey / 16, Bernoulli), w = the one-hot digit.

Binarised as mnist_label: training images redrawn from their grey values in every batch (once per
epoch per example), validation and test images binarised once with `binarize_seed`. Split as
digits_halves (stratified 60/20/20, seeded by split_seed: 1077/360/360)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.data.digits_halves import digits_source_files, digits_splits
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, binarize
from mmrepro.errors import check_range


class DigitsLabel(TensorDataModule):
    name = "digits_label"
    modalities = [Modality("image", (8, 8), "bernoulli"), Modality("digit", (10,), "categorical")]
    label = Modality("label", (10,), "categorical")  # y: the digit, for models that classify
    resample_train = ("image",)

    def __init__(self, batch_size: int = 100, val_fraction: float = 0.2, test_fraction: float = 0.2,
                 split_seed: int = 0, binarize_seed: int = 0):
        super().__init__(batch_size)
        self.val_fraction = check_range("val_fraction", val_fraction, 0, 1, lo_inclusive=False, hi_inclusive=False)
        self.test_fraction = check_range("test_fraction", test_fraction, 0, 1, lo_inclusive=False, hi_inclusive=False)
        self.split_seed = split_seed
        self.binarize_seed = binarize_seed

    def source_files(self) -> list[Path]:
        return digits_source_files()

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        for i, (split, (x, y)) in enumerate(digits_splits(self.val_fraction, self.test_fraction, self.split_seed).items()):
            x = x.astype(np.float32)
            if split != "train":  # fixed binarisation; training images are resampled per batch
                x = binarize(x, "bernoulli_fixed", self.binarize_seed + i)
            out[split] = {"image": x, "digit": np.eye(10, dtype=np.float32)[y], "label": y.astype(np.int64)}
        return out
