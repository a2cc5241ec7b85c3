"""Observed / missing modalities and the class label y, for the models that reason about a missing
modality (CMMD and its baselines): x_O = the `observed` modalities (default: the dataset's first),
x_M = the others; y = the datamodule's `label` (categorical: one int64 class per example; bernoulli:
multi-label 0/1 floats, e.g. MIR-Flickr's 38 classes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmrepro.data.modalities import Modality, as_modality
from mmrepro.errors import ConfigError


def split_roles(modalities: list[Modality], observed: list[str] | None) -> tuple[list[str], list[str]]:
    names = [m.name for m in modalities]
    observed = list(observed) if observed else names[:1]
    unknown = [o for o in observed if o not in names]
    if unknown or len(set(observed)) != len(observed):
        raise ConfigError("observed", f"unknown or repeated modality {unknown or observed}; allowed: {', '.join(names)}")
    missing = [n for n in names if n not in observed]
    if not missing:
        raise ConfigError("observed", f"leaves no modality missing; allowed: a proper subset of {', '.join(names)}")
    return observed, missing


def require_label(label: Modality | None, model: str) -> Modality:
    label = as_modality(label)
    if label is None:
        raise ConfigError("dataset", f"the dataset has no class labels, and {model} needs y; datasets with labels: "
                          "digits_halves, digits_label, mnist_halves, mnist_label, mnist_2view, mnist_svhn, mnist3, "
                          "mnist_svhn_text, xrmb, mir_flickr")
    return label


def label_input(label: Modality, batch: dict[str, Tensor]) -> Tensor:
    """y as the encoder reads it: one-hot (categorical) or the 0/1 vector (multi-label)."""
    y = batch[label.name]
    return F.one_hot(y, label.dim).float() if label.likelihood == "categorical" else y.float()


def label_nll(label: Modality, logits: Tensor, batch: dict[str, Tensor]) -> Tensor:
    """-log p(y | .) per example: softmax cross-entropy, or a sigmoid per class summed (multi-label)."""
    y = batch[label.name]
    if label.likelihood == "categorical":
        return F.cross_entropy(logits, y, reduction="none")
    return F.binary_cross_entropy_with_logits(logits, y.float(), reduction="none").sum(1)


def label_probs(label: Modality, logits: Tensor) -> Tensor:
    return torch.softmax(logits, -1) if label.likelihood == "categorical" else torch.sigmoid(logits)
