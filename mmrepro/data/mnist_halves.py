"""MNIST left/right 28x14 halves (Sohn et al. 2014, Table 1).

Validation: val_size (default 10,000: 50k/10k/10k) of the 60,000 training images, which the paper
does not fix: `val_rows: stratified` (default) draws them per class, seeded by split_seed;
`last` takes the last val_size rows (torchvision's order; a class-sorted file would then hold out only
its last classes, which the split check warns about). Test: the official 10,000."""

from __future__ import annotations

from pathlib import Path

from mmrepro.data import mnist
from mmrepro.data.halves import ImageHalves
from mmrepro.data.splits import VAL_ROWS, holdout
from mmrepro.errors import check_choice, check_range


class MNISTHalves(ImageHalves):
    name = "mnist_halves"
    image_shape = (28, 28)

    def __init__(self, root: str = "data", download: bool = True, batch_size: int = 200, val_size: int = 10000,
                 binarize: str = "none", split_seed: int = 0, val_rows: str = "stratified"):
        super().__init__(batch_size, binarize, split_seed)
        self.root = Path(root)
        self.download = bool(download)
        self.val_size = check_range("val_size", val_size, 1, integer=True)
        self.val_rows = check_choice("val_rows", val_rows, VAL_ROWS)

    def source_files(self) -> list[Path]:
        return mnist.source_files(self.root)

    def images(self):
        data = mnist.load_mnist(self.root, self.download)
        (x, y), (x_test, y_test) = data["train"], data["test"]
        train, val = holdout(y, self.val_size, self.val_rows, self.split_seed)
        return {"train": (x[train] / 255.0, y[train]), "val": (x[val] / 255.0, y[val]), "test": (x_test / 255.0, y_test)}
