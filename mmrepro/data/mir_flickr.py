"""MIR-Flickr 25k as preprocessed for Srivastava & Salakhutdinov's multimodal DBM (flickr_data.tar.gz),
used by Sohn et al. 2014 (Tables 2, 3, retrieval) and CMMD (Table 2, Flickr column).

Layout under `root` (the unpacked `flickr/` folder):
- image/labelled/combined-00001-of-00100.npy, combined-00002-of-00100.npy, combined-00003_0-of-00100.npy:
  concatenated in this order, 25,000 x 3,857 image features (PHOW + GIST + MPEG-7);
- image/unlabelled/combined-00003_1-of-00100.npy, combined-00004-of-00100.npy ... -00100: the unlabelled images;
- text/text_all_2000_labelled.npz, text_all_2000_unlabelled.npz: sparse CSR word counts (keys data,
  indices, indptr, shape) over a 2,000-tag vocabulary, binarised (count > 0) as Sohn et al. do;
- labels.npy: 25,000 x 38 binary; splits/{train,valid,test}_indices_<k>.npy, k = 1..5: 0-based
  indices, 10,000 / 5,000 / 10,000.
Image features are standardised with the mean and std of the training split (std floored at
`std_floor`; paper: zero mean, unit variance). `unlabelled: true` adds an "unlabelled" split of the
pairs with at least `min_tags` tags (Sohn: 2), from the first `max_unlabelled_files` unlabelled image
files (all 98 hold ~975k x 3,857 float32, ~15 GB); it is standardised with the same statistics.
`train_on: unlabelled` serves training batches from those pairs (Sohn's MDRNN learns every stage
from them; the labelled splits train only the classifiers). text/vocab.txt, where present, names the
tags in figures. Labels: "labels" (N x 38 float, multi-label). Labelled examples without tags are kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.data.modalities import Modality
from mmrepro.data.tensor_datamodule import TensorDataModule
from mmrepro.errors import ConfigError, DataError, check_choice, check_range

SOURCE = "flickr_data.tar.gz of the multimodal DBM project (Srivastava & Salakhutdinov)"
LABELLED_IMAGES = ["combined-00001-of-00100.npy", "combined-00002-of-00100.npy", "combined-00003_0-of-00100.npy"]
UNLABELLED_IMAGES = ["combined-00003_1-of-00100.npy"] + [f"combined-{i:05d}-of-00100.npy" for i in range(4, 101)]
CSR_KEYS = ("data", "indices", "indptr", "shape")
N_LABELLED, IMAGE_DIM, TEXT_DIM, N_CLASSES = 25000, 3857, 2000, 38


class MIRFlickr(TensorDataModule):
    name = "mir_flickr"
    modalities = [Modality("image", (IMAGE_DIM,), "gaussian"), Modality("text", (TEXT_DIM,), "bernoulli")]
    label = Modality("labels", (N_CLASSES,), "bernoulli")  # y: 38 classes, multi-label (sigmoid per class)

    def __init__(self, root: str = "data/flickr", batch_size: int = 100, split: int = 1, unlabelled: bool = False,
                 min_tags: int = 2, max_unlabelled_files: int = 98, std_floor: float = 1e-3, train_on: str = "train"):
        super().__init__(batch_size)
        check_choice("train_on", train_on, ("train", "unlabelled"))
        if train_on == "unlabelled" and not unlabelled:
            raise ConfigError("train_on", "unlabelled needs the unlabelled pairs loaded: set dataset.unlabelled=true")
        self.train_split = train_on
        self.root = Path(root)
        self.split_id = check_range("split", split, 1, 5, integer=True)
        self.unlabelled = bool(unlabelled)
        self.min_tags = check_range("min_tags", min_tags, 0, integer=True)
        self.max_unlabelled_files = check_range("max_unlabelled_files", max_unlabelled_files, 1, len(UNLABELLED_IMAGES),
                                                integer=True)
        self.std_floor = check_range("std_floor", std_floor, 0)

    def vocabulary(self) -> list[str] | None:
        """The 2,000 tags' words (text/vocab.txt, one per line), or None where the file is absent."""
        path = self.root / "text" / "vocab.txt"
        if not path.exists():
            return None
        words = path.read_text(encoding="utf-8", errors="replace").split("\n")
        return [w.strip() for w in words[:TEXT_DIM]] if len(words) >= TEXT_DIM else None

    def labelled_files(self) -> list[Path]:
        k = self.split_id
        return ([self.root / "image" / "labelled" / f for f in LABELLED_IMAGES]
                + [self.root / "text" / "text_all_2000_labelled.npz", self.root / "labels.npy"]
                + [self.root / "splits" / f"{s}_indices_{k}.npy" for s in ("train", "valid", "test")])

    def unlabelled_files(self) -> list[Path]:
        return ([self.root / "image" / "unlabelled" / f for f in UNLABELLED_IMAGES[: self.max_unlabelled_files]]
                + [self.root / "text" / "text_all_2000_unlabelled.npz"])

    def source_files(self) -> list[Path]:
        return self.labelled_files() + (self.unlabelled_files() if self.unlabelled else [])

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        for path in self.source_files():
            if not path.exists():
                raise DataError(f"MIR-Flickr file {path} is missing: it comes with {SOURCE}; point dataset.root at "
                                f"the unpacked flickr/ folder")
        image = np.concatenate([read_npy(p, IMAGE_DIM) for p in self.labelled_files()[:3]])
        text = read_csr(self.root / "text" / "text_all_2000_labelled.npz")
        labels = read_npy(self.root / "labels.npy", N_CLASSES)
        if not len(image) == len(text) == len(labels):
            raise DataError(f"MIR-Flickr under {self.root}: {len(image)} labelled image rows, {len(text)} text rows and "
                            f"{len(labels)} label rows disagree (the distribution has {N_LABELLED} of each)")
        if not np.isin(labels, (0, 1)).all():
            raise DataError(f"MIR-Flickr file {self.root / 'labels.npy'} holds values other than 0 and 1")
        index = {s: read_indices(p, len(labels)) for s, p in zip(("train", "val", "test"), self.labelled_files()[-3:])}
        mean, std = image[index["train"]].mean(0), np.maximum(image[index["train"]].std(0), self.std_floor)
        out = {s: {"image": ((image[i] - mean) / std).astype(np.float32), "text": text[i],
                   "labels": labels[i].astype(np.float32)} for s, i in index.items()}
        if self.unlabelled:
            files = self.unlabelled_files()
            u_image = np.concatenate([read_npy(p, IMAGE_DIM) for p in files[:-1]])
            u_text = read_csr(files[-1])[: len(u_image)]
            keep = u_text.sum(1) >= self.min_tags
            out["unlabelled"] = {"image": ((u_image[keep] - mean) / std).astype(np.float32), "text": u_text[keep]}
        return out


def read_npy(path: Path, width: int) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:
        raise DataError(f"MIR-Flickr file {path} is corrupt: numpy.load failed ({type(e).__name__}: {e})") from None
    if x.ndim != 2 or x.shape[1] != width:
        raise DataError(f"MIR-Flickr file {path} has shape {x.shape}, expected (N, {width})")
    return x


def read_csr(path: Path) -> np.ndarray:
    """A scipy-style CSR matrix saved as npz (data, indices, indptr, shape), binarised, dense float32."""
    import scipy.sparse

    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in CSR_KEYS if k not in f.files]
            if missing:
                raise DataError(f"MIR-Flickr file {path} lacks the array(s) {', '.join(missing)} (a CSR matrix saved "
                                f"as npz has {', '.join(CSR_KEYS)})")
            m = scipy.sparse.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"MIR-Flickr file {path} is corrupt: {type(e).__name__}: {e}") from None
    if m.shape[1] != TEXT_DIM:
        raise DataError(f"MIR-Flickr file {path} has {m.shape[1]} columns, expected {TEXT_DIM} tags")
    return (m.toarray() > 0).astype(np.float32)


def read_indices(path: Path, n: int) -> np.ndarray:
    idx = np.load(path, allow_pickle=False).reshape(-1)
    if not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n:
        raise DataError(f"MIR-Flickr file {path} holds indices outside 0..{n - 1}")
    return idx
