"""The data interface every dataset implements: splits held as tensors on the training device,
minibatches taken by index (one randperm per epoch, one gather per batch; no per-sample Python,
no DataLoader workers on the hot path)."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor

from mmrepro.data.modalities import Modality
from mmrepro.errors import ConfigError, check_choice, check_range

BINARIZE = ("none", "threshold", "bernoulli_fixed")
SPLITS = ("train", "val", "test")


def binarize(x: np.ndarray, mode: str, seed: int) -> np.ndarray:
    """Grey values in [0, 1] -> as-is ("none"), x >= 0.5 ("threshold"), or one seeded Bernoulli
    draw ("bernoulli_fixed"). Per-minibatch resampling is a training choice of the model."""
    if mode == "none":
        return x
    if mode == "threshold":
        return (x >= 0.5).astype(x.dtype)
    return (np.random.default_rng(seed).random(x.shape) < x).astype(x.dtype)


class IndexBatches:
    """Iterates minibatches of a dict of equally long tensors by index. With world_size > 1, each
    rank takes every world_size-th index of the same permutation (ranks share the seed).
    resample: keys whose grey values are replaced by a fresh Bernoulli draw in every batch (each
    example is visited once per epoch, so this is a re-binarisation per epoch, done on device).
    Stateful (Lightning saves it in every checkpoint): mid-epoch, the state is this epoch's
    permutation and the number of batches handed out, and a resumed run continues the same epoch
    from the next batch; at an epoch end it is empty, and the next epoch draws a new permutation
    from the global torch RNG, which the checkpoint restores."""

    def __init__(self, tensors: dict[str, Tensor], batch_size: int, shuffle: bool, drop_last: bool,
                 rank: int = 0, world_size: int = 1, resample: tuple[str, ...] = (), resolve=None):
        self.tensors = tensors
        self.resample = tuple(resample)
        self.resolve = resolve or (lambda batch: batch)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        n = next(iter(tensors.values())).shape[0] // world_size
        self.n = n
        self.device = next(iter(tensors.values())).device
        self.order: Tensor | None = None  # this epoch's permutation (all ranks)
        self.position = 0  # batches of this epoch handed out
        self.resume_from: tuple[Tensor, int] | None = None

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def draw_order(self) -> Tensor:
        """This epoch's permutation (all ranks)."""
        total = self.n * self.world_size
        return torch.randperm(total, device=self.device) if self.shuffle else torch.arange(total, device=self.device)

    def take(self, order: Tensor, i: int) -> dict[str, Tensor]:
        """Batch i of this rank's share of `order`."""
        mine = order[self.rank::self.world_size]
        idx = mine[i * self.batch_size:(i + 1) * self.batch_size]
        return self.resolve({k: t[idx] for k, t in self.tensors.items()})

    def __iter__(self):
        if self.resume_from is not None:
            order, start = self.resume_from
            self.resume_from = None
        else:
            order, start = self.draw_order(), 0
        self.order = order
        order = order.to(self.device)
        for i in range(start, len(self)):
            batch = self.take(order, i)
            for k in self.resample:
                batch[k] = torch.rand_like(batch[k]).lt_(batch[k])
            self.position = i + 1
            yield batch

    def state_dict(self) -> dict:
        if self.order is None or self.position >= len(self):
            return {"order": None, "position": 0}
        return {"order": self.order.cpu(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        if state.get("order") is not None:
            self.resume_from = (state["order"], int(state["position"]))


class TensorDataModule(L.LightningDataModule):
    """Base of every dataset. Subclasses define `name`, `modalities`, `load()` (returning
    {split: {modality or "label": numpy array}}) and `source_files()`."""

    name: str = "?"
    modalities: list[Modality] = []
    # The class label y, for models that classify (CMMD, M-xO): its key in each split, its number
    # of classes, categorical (one int64 class per example) or bernoulli (multi-label, float 0/1).
    label: Modality | None = None
    resample_train: tuple[str, ...] = ()  # modalities re-binarised in every training batch
    # Paired datasets keep each image once in a base table and hold, per example, its row in that
    # table: lookups = {modality: (base table, index key)}; resolve() gathers them per batch.
    lookups: dict[str, tuple[str, str]] = {}

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = check_range("batch_size", batch_size, 1, integer=True)
        self._splits: dict[str, dict[str, Tensor]] | None = None
        self._bases: dict[str, Tensor] = {}
        self.train_split = "train"   # the split training batches come from (see training_on)

    # --- to implement -------------------------------------------------------------------------
    def load(self) -> dict[str, dict[str, np.ndarray]]:
        raise NotImplementedError

    def load_bases(self) -> dict[str, np.ndarray]:
        """Base tables for `lookups` (paired datasets only), called after load()."""
        return {}

    def source_files(self) -> list[Path]:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------
    @staticmethod
    def check_binarize(mode: str) -> str:
        return check_choice("binarize", mode, BINARIZE)

    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if self._splits is None:
            self._splits = {s: {k: torch.as_tensor(a) for k, a in arrays.items()} for s, arrays in self.load().items()}
            self._bases = {k: torch.as_tensor(a) for k, a in self.load_bases().items()}
            self.split_warnings = self.check_splits()
            for warning in self.split_warnings:
                print(f"mmrepro: warning: {self.name}: {warning}", file=sys.stderr)
        self._splits = {s: {k: t.to(device) for k, t in d.items()} for s, d in self._splits.items()}
        self._bases = {k: t.to(device) for k, t in self._bases.items()}

    def check_splits(self) -> list[str]:
        """Warnings about the splits (mmrepro/data/splits.py), for datasets with a categorical label."""
        from mmrepro.data.splits import coverage_warnings

        if self.label is None or self.label.likelihood != "categorical":
            return []
        key = self.label.name
        return coverage_warnings({s: d[key].numpy() for s, d in self._splits.items() if key in d})

    def resolve(self, rows: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rows of a split with every looked-up modality gathered from its base table."""
        if not self.lookups:
            return rows
        out = dict(rows)
        for name, (base, key) in self.lookups.items():
            out[name] = self._bases[base][rows[key]]
        return out

    def split(self, name: str) -> dict[str, Tensor]:
        """The rows of a split (for paired datasets: indices into the base tables; see resolve)."""
        if self._splits is None:
            self.setup()
        return self._splits[name]

    def split_names(self) -> list[str]:
        if self._splits is None:
            self.setup()
        return list(self._splits)

    def rows(self, name: str, start: int, stop: int) -> dict[str, Tensor]:
        """Examples start..stop of a split with every modality present (resolved)."""
        return self.resolve({k: t[start:stop] for k, t in self.split(name).items()})

    @contextlib.contextmanager
    def training_on(self, split: str):
        """Serve minibatches of another split while the block runs (a pretraining stage on the
        unlabelled pairs, train.py `pretrain`)."""
        if split not in self.split_names():
            raise ConfigError("pretrain.split", f"the dataset {self.name} has no split {split!r}; it has "
                              f"{', '.join(self.split_names())} (MIR-Flickr: dataset.unlabelled=true)")
        before, self.train_split = self.train_split, split
        try:
            yield
        finally:
            self.train_split = before

    def train_dataloader(self) -> IndexBatches:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        world = self.trainer.world_size if self.trainer is not None else 1
        return IndexBatches(self.split(self.train_split), self.batch_size, shuffle=True, drop_last=True,
                            rank=rank, world_size=world, resample=self.resample_train, resolve=self.resolve)

    def val_dataloader(self):
        """The validation split in order (Lightning's validation loop; models with a
        validation_step, e.g. CMMD and M-xO, log a per-epoch learning curve), or none."""
        if "val" not in self.split_names():
            return []
        return IndexBatches(self.split("val"), max(self.batch_size, 1000), shuffle=False, drop_last=False,
                            resolve=self.resolve)

    def summary(self) -> str:
        """Human-readable description: files, splits, modalities, label counts."""
        lines = [f"dataset {self.name}"]
        for p in self.source_files():
            lines.append(f"  file {p} ({p.stat().st_size:,} bytes)")
        for m in self.modalities:
            lines.append(f"  modality {m.name}: shape {m.shape}, {m.likelihood}")
        for s in SPLITS:
            if s in self._splits:
                d = self._splits[s]
                counts = f"; label counts {torch.bincount(d['label'].cpu()).tolist()}" if "label" in d else ""
                lines.append(f"  split {s}: {len(next(iter(d.values()))):,} examples{counts}")
        return "\n".join(lines)

    def identity(self) -> dict:
        """Which data a run used: name, split sizes, sha256 of every source file, and whether the
        files are the paper's (mmrepro/data/official.py)."""
        from mmrepro.data.official import verify

        return {
            "dataset": self.name,
            "split_sizes": {s: int(next(iter(self.split(s).values())).shape[0]) for s in SPLITS if s in self._splits},
            "source_files": {str(p): file_digest(p) for p in self.source_files()},
            "paper_files": verify(self.name, self.source_files()),
            "warnings": list(getattr(self, "split_warnings", [])),
        }


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (sha256 unless another hashlib algorithm is named)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
