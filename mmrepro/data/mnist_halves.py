"""MNIST left/right 28x14 halves (Sohn et al. 2014, Table 1).

Training images: the first 60,000 - val_size; validation: the last val_size (default 10,000:
50k/10k/10k as the authors' code likely uses; the paper does not say). Test: the official 10,000."""

from __future__ import annotations

from pathlib import Path

from mmrepro.data import mnist
from mmrepro.data.halves import ImageHalves
from mmrepro.errors import ConfigError, check_range


class MNISTHalves(ImageHalves):
    name = "mnist_halves"
    image_shape = (28, 28)

    def __init__(self, root: str = "data", download: bool = True, batch_size: int = 200, val_size: int = 10000,
                 binarize: str = "none", split_seed: int = 0):
        super().__init__(batch_size, binarize, split_seed)
        self.root = Path(root)
        self.download = bool(download)
        self.val_size = check_range("val_size", val_size, 1, integer=True)

    def source_files(self) -> list[Path]:
        return mnist.source_files(self.root)

    def images(self):
        data = mnist.load_mnist(self.root, self.download)
        (x, y), (x_test, y_test) = data["train"], data["test"]
        if self.val_size >= len(x):
            raise ConfigError("dataset.val_size", f"must be smaller than the {len(x)} training images, got {self.val_size}")
        n = len(x) - self.val_size
        return {"train": (x[:n] / 255.0, y[:n]), "val": (x[n:] / 255.0, y[n:]), "test": (x_test / 255.0, y_test)}
