"""Left and right halves of grey-level digit images as two modalities (Sohn et al. 2014, Sec. 4.1).

Left = the first W/2 columns, right = the rest (MNIST: columns 0-13 and 14-27, as the authors'
demo_mnist.m); each half is flattened row-major. Grey values are scaled to [0, 1] and binarised
as `binarize` says (dataset config)."""

from __future__ import annotations

import numpy as np

from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, binarize


class ImageHalves(TensorDataModule):
    image_shape: tuple[int, int] = (0, 0)
    label = Modality("label", (10,), "categorical")  # y: the digit, for models that classify

    def __init__(self, batch_size: int, binarize: str = "none", split_seed: int = 0):
        super().__init__(batch_size)
        self.binarize = self.check_binarize(binarize)
        self.split_seed = split_seed

    @property
    def modalities(self) -> list[Modality]:
        h, w = self.image_shape
        return [Modality("left", (h, w // 2), "bernoulli"), Modality("right", (h, w - w // 2), "bernoulli")]

    def images(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{split: (images in [0, 1], shape (N, H, W); integer labels (N,))}."""
        raise NotImplementedError

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        out = {}
        w = self.image_shape[1] // 2
        for i, (split, (x, y)) in enumerate(self.images().items()):
            x = binarize(x.astype(np.float32), self.binarize, self.split_seed + i)
            out[split] = {
                "left": np.ascontiguousarray(x[:, :, :w].reshape(len(x), -1)),
                "right": np.ascontiguousarray(x[:, :, w:].reshape(len(x), -1)),
                "label": y.astype(np.int64),
            }
        return out
