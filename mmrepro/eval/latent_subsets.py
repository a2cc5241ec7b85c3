"""Latent-representation accuracy per subset of observed modalities (MoPoE's protocol, Mancisidor et
al. Table 5 on MNIST-SVHN-Text): for each non-empty subset S the representation is the mean of the
model's q(z | S); a scikit-learn LogisticRegression is fitted on `train_points` (500) training
representations drawn with a fixed seed (MoPoE draws with replacement and no seed; here without
replacement, seeded), and its accuracy is measured on the validation and test splits.
Models with `infer(batch, names)` (MVAE, MMVAE, MoPoE, VCCA) give every subset; CMMD gives the one
subset it observes (its prior mean), so a table collects one CMMD run per observed subset.
Metrics: `<split>/latent_acc/<a+b>` per subset and `<split>/latent_acc/mean` over the model's subsets.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from mmrepro.errors import ConfigError, check_range


def modality_subsets(names: list[str], proper: bool = False) -> list[list[str]]:
    """The non-empty subsets of `names` (only the proper ones if `proper`), by size, in name order."""
    top = len(names) - 1 if proper else len(names)
    return [list(s) for r in range(1, top + 1) for s in itertools.combinations(names, r)]


class LatentSubsets:
    def __init__(self, train_points: int = 500, seed: int = 0, chunk_size: int = 2000):
        self.train_points = check_range("train_points", train_points, 2, integer=True)
        self.seed = seed
        self.chunk_size = check_range("chunk_size", chunk_size, 1, integer=True)

    def check(self, model, modality_names: list[str]) -> None:
        if getattr(model, "label", None) is None:
            raise ConfigError("dataset", "the dataset has no class labels; eval=latent_subsets needs them")
        if not hasattr(model, "infer") and not hasattr(model, "observed"):
            raise ConfigError("eval", f"{type(model).__name__} has no posterior of a modality subset")

    def subsets(self, model) -> list[list[str]]:
        if not hasattr(model, "infer"):
            return [list(model.observed)]
        return modality_subsets([m.name for m in model.modalities])

    @torch.no_grad()
    def latents(self, model, datamodule, split: str, subset: list[str], index=None) -> tuple[np.ndarray, np.ndarray]:
        data = datamodule.split(split)
        n = len(data[model.label.name])
        index = torch.arange(n) if index is None else torch.as_tensor(index)
        zs, ys = [], []
        for i in range(0, len(index), self.chunk_size):
            part = index[i:i + self.chunk_size]
            rows = datamodule.resolve({k: t[part.to(t.device)] for k, t in data.items()})
            z = model.infer(rows, subset)[0] if hasattr(model, "infer") else model.representation(rows)
            zs.append(z.float().cpu())
            ys.append(rows[model.label.name].cpu())
        return torch.cat(zs).numpy(), torch.cat(ys).numpy()

    def __call__(self, model, datamodule, run_dir: Path) -> dict:
        from sklearn.linear_model import LogisticRegression

        model.eval()
        n = len(datamodule.split("train")[model.label.name])
        index = np.sort(np.random.default_rng(self.seed).permutation(n)[: self.train_points])
        metrics: dict = {}
        for subset in self.subsets(model):
            z, y = self.latents(model, datamodule, "train", subset, index)
            probe = LogisticRegression(max_iter=1000, random_state=0).fit(z, y)
            for split in ("val", "test"):
                if split not in datamodule.split_names():
                    continue
                z_s, y_s = self.latents(model, datamodule, split, subset)
                metrics[f"{split}/latent_acc/{'+'.join(subset)}"] = 100.0 * float(probe.score(z_s, y_s))
        for split in ("val", "test"):
            values = [v for k, v in metrics.items() if k.startswith(f"{split}/latent_acc/")]
            if values:
                metrics[f"{split}/latent_acc/mean"] = float(np.mean(values))
        return metrics
