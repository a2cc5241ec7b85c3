"""CelebA as JMVAE uses it (Suzuki et al. 2016, Sec. 4.1, Table 2, Figures 4-5): x = a face image,
square-cropped and resized to 32x32x3; w = its 40 attributes in {-1, 1} (Gaussian likelihood).

Files in torchvision's layout under <root>/celeba/: img_align_celeba/*.jpg (178x218),
list_attr_celeba.txt (line 1: count; line 2: the 40 attribute names; then one line per image:
file name and 40 values in {-1, 1}, separated by one or more spaces), list_eval_partition.txt
(file name and 0/1/2). Parsed here (torchvision's CelebA checks MD5 sums of these files).

Choices (config values): the paper keeps the 191,899 images OpenCV's face detector accepts and
crops around the detection; without that detector we take the centred `crop` x `crop` square of
the aligned image (faces are centred by the alignment), then resize to `size` (bilinear, PIL).
`split: paper` = a seeded 90/10 train/test split (paper), with `val_fraction` of the training part
held out for validation; `official` = list_eval_partition's 0/1/2. Pixels: `normalize:
standardize` = per-pixel mean/std of the training split (the official code), `unit` = [0, 1].
The processed arrays are cached as <root>/celeba/mmrepro/celeba-<hash>.npz (hash of the text
files, the image count and every parameter).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmrepro.data.cache import cache_file, save_npz
from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule, file_digest
from mmrepro.errors import DataError, check_choice, check_range

# line 2 of list_attr_celeba.txt, in file order
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks "
    "Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young").split()
N_ATTRIBUTES = len(ATTRIBUTES)
SOURCE = "torchvision.datasets.CelebA(root, download=True) (or the CelebA site's Align&Cropped images and annotation files)"


def parse_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, int8 values (N, 40) in {-1, 1}) from list_attr_celeba.txt."""
    lines = path.read_text().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"CelebA file {path} is corrupt: line 1 must be the image count")
    names = lines[1].split()
    if len(names) != N_ATTRIBUTES:
        raise DataError(f"CelebA file {path} names {len(names)} attributes on line 2, expected {N_ATTRIBUTES}")
    files, values = [], []
    for i, line in enumerate(lines[2:], start=3):
        parts = re.split(r"\s+", line.strip())
        if len(parts) != N_ATTRIBUTES + 1 or any(v not in ("-1", "1") for v in parts[1:]):
            raise DataError(f"CelebA file {path} line {i} is corrupt: expected a file name and {N_ATTRIBUTES} values "
                            f"in {{-1, 1}}")
        files.append(parts[0])
        values.append([int(v) for v in parts[1:]])
    if int(lines[0]) != len(files):
        raise DataError(f"CelebA file {path} announces {int(lines[0])} images on line 1 but lists {len(files)} (truncated?)")
    return names, files, np.array(values, dtype=np.int8).reshape(-1, N_ATTRIBUTES)


def parse_partition(path: Path, files: list[str]) -> np.ndarray:
    table = {}
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"CelebA file {path} line {i} is corrupt: expected a file name and 0, 1 or 2")
        table[parts[0]] = int(parts[1])
    missing = [f for f in files if f not in table]
    if missing:
        raise DataError(f"CelebA file {path} has no partition for {missing[0]} (and {len(missing) - 1} more)")
    return np.array([table[f] for f in files], dtype=np.int64)


class CelebA(TensorDataModule):
    name = "celeba"

    def __init__(self, root: str = "data", batch_size: int = 100, size: int = 32, crop: int = 140, split: str = "paper",
                 test_fraction: float = 0.1, val_fraction: float = 0.05, split_seed: int = 0, normalize: str = "standardize"):
        super().__init__(batch_size)
        self.folder = Path(root) / "celeba"
        self.size = check_range("size", size, 1, integer=True)
        self.crop = check_range("crop", crop, 1, 178, integer=True)
        self.split_kind = check_choice("split", split, ("paper", "official"))
        self.test_fraction = check_range("test_fraction", test_fraction, 0, 1, lo_inclusive=False, hi_inclusive=False)
        self.val_fraction = check_range("val_fraction", val_fraction, 0, 1, hi_inclusive=False)
        self.split_seed = split_seed
        self.normalize = check_choice("normalize", normalize, ("standardize", "unit"))

    @property
    def modalities(self) -> list[Modality]:
        return [Modality("image", (3, self.size, self.size), "gaussian"), Modality("attributes", (N_ATTRIBUTES,), "gaussian")]

    def source_files(self) -> list[Path]:
        return [self.folder / "list_attr_celeba.txt", self.folder / "list_eval_partition.txt"]

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        for path in self.source_files() + [self.folder / "img_align_celeba"]:
            if not path.exists():
                raise DataError(f"CelebA file {path} is missing: {SOURCE} puts it there; point dataset.root at the "
                                f"folder that holds celeba/")
        names, files, attributes = parse_attributes(self.source_files()[0])
        partition = parse_partition(self.source_files()[1], files)
        images = self.images(files)
        if self.split_kind == "official":
            index = {s: np.flatnonzero(partition == k) for k, s in enumerate(("train", "val", "test"))}
        else:
            order = np.random.default_rng(self.split_seed).permutation(len(files))
            n_test = round(len(files) * self.test_fraction)
            n_val = round((len(files) - n_test) * self.val_fraction)
            index = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
        self.attribute_names = names
        x = images.astype(np.float32) / 255
        self.pixel_mean, self.pixel_std = np.zeros(x.shape[1:], np.float32), np.ones(x.shape[1:], np.float32)
        if self.normalize == "standardize":
            self.pixel_mean = x[index["train"]].mean(0)
            self.pixel_std = np.maximum(x[index["train"]].std(0), 1e-3)
            x = (x - self.pixel_mean) / self.pixel_std
        return {s: {"image": x[i], "attributes": attributes[i].astype(np.float32)} for s, i in index.items() if len(i)}

    def images(self, files: list[str]) -> np.ndarray:
        """uint8 (N, 3, size, size), decoded once and cached."""
        key = {"files": {p.name: file_digest(p) for p in self.source_files()}, "n": len(files), "size": self.size,
               "crop": self.crop}
        cache = cache_file(self.folder / "mmrepro", "celeba", key)
        if cache.exists():
            with np.load(cache) as f:
                return f["images"]
        from PIL import Image

        out = np.empty((len(files), 3, self.size, self.size), dtype=np.uint8)
        for i, name in enumerate(files):
            path = self.folder / "img_align_celeba" / name
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    left, top = (w - self.crop) // 2, (h - self.crop) // 2
                    im = im.convert("RGB").crop((left, top, left + self.crop, top + self.crop))
                    out[i] = np.asarray(im.resize((self.size, self.size), Image.BILINEAR)).transpose(2, 0, 1)
            except FileNotFoundError:
                raise DataError(f"CelebA image {path} is missing ({len(files)} are listed in list_attr_celeba.txt): "
                                f"{SOURCE}") from None
            except OSError as e:
                raise DataError(f"CelebA image {path} is corrupt: {e}") from None
        save_npz(cache, {"images": out})
        return out
