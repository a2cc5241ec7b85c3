"""Unimodal classifiers for cross-modal coherence (Shi et al. 2019; MoPoE; CMMD journal Table 6/H2):
one classifier of y per modality, trained once on the training split of the real data and cached.

The CMMD paper's classifiers have "the architecture of the conditional prior column" of Tables
H3-H5 (MoPoE's encoders, ReLU): `networks: mopoe`, a linear layer of 10 on their features (the
MNIST-SVHN-Text configs). `networks: mlp` (default) is an MLP of `hidden` on every flattened
modality, for any dataset. The table shows each classifier's accuracy on real test data, which
bounds the coherence it can measure. Training: Adam (`lr`), `steps` minibatches of
`batch_size` rows drawn by index from the training split (each row's modality column and its
label; paired datasets repeat an image once per pairing, so this is the modality's training data
weighted as the pairs weight it), seeded.

Cache: <cache_dir>/classifier-<dataset>-<modality>-<hash>.pt, the hash over the classifier
settings and the sha256 of every tensor of the training split (a changed split or setting
retrains); the file holds the weights and the classifier's test accuracy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from mmrepro.data.cache import cache_file
from mmrepro.errors import DataError, check_choice, check_range
from mmrepro.models.components.towers import NETWORKS, tower


class UnimodalClassifiers:
    def __init__(self, cache_dir: str = "data/cache/classifiers", hidden=(512, 512), networks: str = "mlp",
                 steps: int = 3000, batch_size: int = 256, lr: float = 1e-3, seed: int = 0, chunk_size: int = 2000):
        self.cache_dir = Path(cache_dir)
        self.hidden = [check_range("hidden[]", h, 1, integer=True) for h in hidden]
        self.networks = check_choice("networks", networks, NETWORKS)
        self.steps = check_range("steps", steps, 1, integer=True)
        self.batch_size = check_range("batch_size", batch_size, 1, integer=True)
        self.lr = check_range("lr", lr, 0, lo_inclusive=False)
        self.seed = seed
        self.chunk_size = check_range("chunk_size", chunk_size, 1, integer=True)

    def settings(self) -> dict:
        return {"hidden": self.hidden, "networks": self.networks, "steps": self.steps,
                "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed}

    def network(self, modality, n_classes: int) -> nn.Module:
        body, width = tower(modality, self.hidden, [], "relu", self.networks)
        return nn.Sequential(body, nn.Linear(width, n_classes))

    @staticmethod
    def split_digest(split: dict[str, Tensor]) -> str:
        h = hashlib.sha256()
        for key in sorted(split):
            h.update(key.encode())
            h.update(split[key].detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    def load(self, datamodule) -> dict[str, tuple[nn.Module, float]]:
        """{modality: (classifier in eval mode on the data's device, its test accuracy %)}."""
        digest = self.split_digest(datamodule.split("train"))
        return {m.name: self.one(datamodule, m, digest) for m in datamodule.modalities}

    def one(self, datamodule, modality, digest: str) -> tuple[nn.Module, float]:
        label = datamodule.label
        key = {"dataset": datamodule.name, "modality": modality.name, "train_split": digest, **self.settings()}
        path = cache_file(self.cache_dir, f"classifier-{datamodule.name}-{modality.name}", key).with_suffix(".pt")
        device = next(iter(datamodule.split("train").values())).device
        with torch.random.fork_rng(devices=[]):   # seeded weights and batches; the caller's RNG untouched
            torch.manual_seed(self.seed)
            net = self.network(modality, label.dim).to(device)
        if path.is_file():
            try:
                saved = torch.load(path, map_location=device, weights_only=True)
                net.load_state_dict(saved["state_dict"])
                return net.eval(), float(saved["test_accuracy"])
            except Exception as e:  # noqa: BLE001 - any unreadable cache is the same error
                raise DataError(f"cached classifier {path} is unreadable ({type(e).__name__}); delete it to retrain "
                                "(eval.coherence.classifiers.cache_dir)") from None
        self.train(net, datamodule, modality.name)
        accuracy = self.accuracy(net.eval(), datamodule, modality.name, "test")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"state_dict": net.state_dict(), "test_accuracy": accuracy, "key": key}, tmp)
        tmp.replace(path)
        print(f"mmrepro: trained the {modality.name} classifier for coherence ({accuracy:.2f}% on real test data), "
              f"cached in {path}")
        return net, accuracy

    def train(self, net: nn.Module, datamodule, name: str) -> None:
        train = datamodule.split("train")
        n = len(train[datamodule.label.name])
        device = next(iter(train.values())).device
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        loss_fn = nn.CrossEntropyLoss()  # categorical labels only (Coherence.check)
        net.train()
        with torch.enable_grad():
            for _ in range(self.steps):
                idx = torch.randint(n, (self.batch_size,), generator=gen).to(device)
                rows = datamodule.resolve({k: t[idx] for k, t in train.items()})
                loss = loss_fn(net(rows[name].float()), rows[datamodule.label.name])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    @torch.no_grad()
    def accuracy(self, net: nn.Module, datamodule, name: str, split: str) -> float:
        n = len(datamodule.split(split)[datamodule.label.name])
        right = 0
        for i in range(0, n, self.chunk_size):
            rows = datamodule.rows(split, i, min(i + self.chunk_size, n))
            right += int((net(rows[name].float()).argmax(1) == rows[datamodule.label.name]).sum())
        return 100.0 * right / n
