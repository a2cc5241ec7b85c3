"""MNIST image + one-hot label (Suzuki et al. 2016, JMVAE, Sec. 4.1): x = 784 binary pixels
(Bernoulli), w = the digit's one-hot label (categorical).

Binarisation as the JMVAE paper and code: training images are re-binarised at random every epoch
(here: a fresh Bernoulli draw of the grey values in every training batch, on device), validation
and test images are binarised once with `binarize_seed`. Split: `split: paper` = 50k train / 10k
validation (the last `val_size` = 10k training images) / 10k test, as the paper says; `split: code` =
the official JMVAE code's 60k train (train+valid concatenated) / 10k test, with no validation split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.data import mnist
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, binarize
from mmrepro.errors import ConfigError, check_choice, check_range


class MNISTLabel(TensorDataModule):
    name = "mnist_label"
    modalities = [Modality("image", (28, 28), "bernoulli"), Modality("digit", (10,), "categorical")]
    label = Modality("label", (10,), "categorical")  # y: the digit, for models that classify
    resample_train = ("image",)

    def __init__(self, root: str = "data", download: bool = True, batch_size: int = 100, split: str = "paper",
                 binarize_seed: int = 0, val_size: int = 10000):
        super().__init__(batch_size)
        self.root = Path(root)
        self.download = bool(download)
        self.split_kind = check_choice("split", split, ("paper", "code"))
        self.binarize_seed = binarize_seed
        self.val_size = check_range("val_size", val_size, 1, integer=True)

    def source_files(self) -> list[Path]:
        return mnist.source_files(self.root)

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        data = mnist.load_mnist(self.root, self.download)
        (x, y), (x_test, y_test) = data["train"], data["test"]
        x, x_test = x.reshape(len(x), -1) / np.float32(255), x_test.reshape(len(x_test), -1) / np.float32(255)
        parts = {"train": (x, y), "test": (x_test, y_test)}
        if self.split_kind == "paper":
            if len(x) <= self.val_size:
                raise ConfigError("dataset.split", f"'paper' holds out the last {self.val_size} training images for "
                                  f"validation but {self.root} has only {len(x)}; set dataset.val_size or use "
                                  "dataset.split=code")
            n = len(x) - self.val_size
            parts = {"train": (x[:n], y[:n]), "val": (x[n:], y[n:]), "test": (x_test, y_test)}
        out = {}
        for i, (split, (images, labels)) in enumerate(parts.items()):
            if split != "train":  # fixed binarisation; training images are resampled per batch
                images = binarize(images, "bernoulli_fixed", self.binarize_seed + i)
            out[split] = {"image": images.astype(np.float32),
                          "digit": np.eye(10, dtype=np.float32)[labels],
                          "label": labels.astype(np.int64)}
        return out
