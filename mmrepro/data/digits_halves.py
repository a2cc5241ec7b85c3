"""scikit-learn's bundled 8x8 digits as left/right 8x4 halves: the embedded default dataset.

1,797 real handwritten digits (grey 0..16) ship inside scikit-learn, so this runs anywhere with no
download. No official split exists: a stratified split seeded by `split_seed` (independent of the
run seed), val_fraction and test_fraction of all digits (default 60/20/20: 1077/360/360)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn.datasets
from sklearn.model_selection import train_test_split

from mmrepro.data.halves import ImageHalves
from mmrepro.errors import check_range


class DigitsHalves(ImageHalves):
    name = "digits_halves"
    image_shape = (8, 8)

    def __init__(self, batch_size: int = 100, val_fraction: float = 0.2, test_fraction: float = 0.2,
                 split_seed: int = 0, binarize: str = "none"):
        super().__init__(batch_size, binarize, split_seed)
        self.val_fraction = check_range("val_fraction", val_fraction, 0, 1, lo_inclusive=False, hi_inclusive=False)
        self.test_fraction = check_range("test_fraction", test_fraction, 0, 1, lo_inclusive=False,
                                         hi_inclusive=False)
        check_range("val_fraction + test_fraction", val_fraction + test_fraction, hi=1, hi_inclusive=False)

    def source_files(self) -> list[Path]:
        return digits_source_files()

    def images(self):
        return digits_splits(self.val_fraction, self.test_fraction, self.split_seed)


def digits_source_files() -> list[Path]:
    return [Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"]


def digits_splits(val_fraction: float, test_fraction: float, split_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images / 16 in [0, 1] of shape (N, 8, 8), labels)}: stratified, seeded by split_seed."""
    check_range("val_fraction + test_fraction", val_fraction + test_fraction, hi=1, hi_inclusive=False)
    digits = sklearn.datasets.load_digits()
    x, y = digits.images / 16.0, digits.target
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=split_seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), stratify=y[rest],
                                  random_state=split_seed)
    return {s: (x[i], y[i]) for s, i in (("train", train), ("val", val), ("test", test))}
