"""What a datamodule tells models about each of its modalities."""

from __future__ import annotations

import math
from dataclasses import dataclass

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")


@dataclass(frozen=True)
class Modality:
    name: str
    shape: tuple[int, ...]  # per-example shape (e.g. (28, 14) for an MNIST half)
    likelihood: str  # bernoulli | gaussian | categorical

    @property
    def dim(self) -> int:
        return math.prod(self.shape)


def as_modality(m: Modality | dict | None) -> Modality | None:
    """A Modality from itself or from its fields as a dict (a checkpoint's hyperparameters)."""
    if m is None or isinstance(m, Modality):
        return m
    return Modality(m["name"], tuple(m["shape"]), m["likelihood"])


def as_modalities(ms) -> list[Modality]:
    return [as_modality(m) for m in ms]
