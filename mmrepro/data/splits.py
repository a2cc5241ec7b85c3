"""Validation splits that cannot mislead.

holdout: validation rows carved from the training rows, either by a seeded stratified draw (where
the paper does not fix the rows) or as the last `size` rows (where it does, e.g. JMVAE's MNIST).
coverage_warnings: a split missing classes that another split has (a class-sorted training file cut
at its tail gives a validation split of 8s and 9s and a training split without them). Every
datamodule with a categorical label runs it; its warnings go to the run's output, its record and
the tables built from it.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from mmrepro.errors import ConfigError, check_choice

VAL_ROWS = ("stratified", "last")


def holdout(labels: np.ndarray, size: int, rows: str, seed: int, key: str = "dataset.val_size"):
    """(train indices, validation indices) of len(labels) training rows."""
    check_choice("val_rows", rows, VAL_ROWS)
    n = len(labels)
    if size >= n:
        raise ConfigError(key, f"must be smaller than the {n} training rows, got {size}")
    if rows == "last":
        return np.arange(n - size), np.arange(n - size, n)
    train, val = train_test_split(np.arange(n), test_size=size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(val)


def coverage_warnings(labels: dict[str, np.ndarray]) -> list[str]:
    """One warning per split that lacks classes some other split has."""
    present = {split: set(np.unique(np.asarray(y)).tolist()) for split, y in labels.items() if len(y)}
    every = set().union(*present.values()) if present else set()
    out = []
    for split, classes in present.items():
        missing = sorted(every - classes)
        if missing:
            out.append(f"the {split} split has no example of class(es) {', '.join(map(str, missing))}, which "
                       f"other splits have: is the source file sorted by class? (dataset.val_rows=stratified "
                       f"draws validation rows per class)")
    return out
