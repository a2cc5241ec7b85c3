"""SVHN in torchvision's layout: <root>/train_32x32.mat and test_32x32.mat, variables X (uint8,
32 x 32 x 3 x N) and y (N x 1, 1..10 with 10 meaning digit 0), fetched by
torchvision.datasets.SVHN(download=True) when missing and the network allows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.data.matfile import load_mat
from mmrepro.errors import DataError

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def source_files(root: str | Path) -> list[Path]:
    return [Path(root) / f for f in FILES.values()]


def load_svhn(root: str | Path, download: bool, root_key: str = "dataset.svhn_root") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train"|"test": (uint8 images (N, 3, 32, 32), labels 0..9)}."""
    out = {}
    for split, name in FILES.items():
        path = Path(root) / name
        reason = ""
        if not path.exists() and download:
            try:
                import torchvision

                torchvision.datasets.SVHN(str(root), split=split, download=True)
            except Exception as e:
                reason = f" (download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        if not path.exists():
            raise DataError(f"SVHN file {path} is missing{reason}: torchvision.datasets.SVHN(root, split='{split}', "
                            f"download=True) fetches it; point {root_key} at the folder that holds it")
        mat = load_mat(path, ["X", "y"], "SVHN")
        x, y = mat["X"], mat["y"].reshape(-1)
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.dtype != np.uint8 or x.shape[3] != len(y):
            raise DataError(f"SVHN file {path}: X is {x.dtype} of shape {x.shape}, expected uint8 (32, 32, 3, {len(y)})")
        if y.size and (y.min() < 1 or y.max() > 10 or not np.all(y == np.round(y))):
            raise DataError(f"SVHN file {path}: y holds {y.min():g}..{y.max():g}, expected integers 1..10")
        out[split] = (np.ascontiguousarray(x.transpose(3, 2, 0, 1)), (y % 10).astype(np.int64))
    return out
