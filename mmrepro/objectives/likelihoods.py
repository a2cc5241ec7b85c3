"""log p(x | decoder output) per example, for the likelihoods a Modality can declare.

bernoulli: decoder outputs logits, summed binary cross-entropy (targets in [0, 1]).
gaussian: decoder outputs the mean; variance `gaussian_var` (fixed; JMVAE: 1 for attributes).
categorical: decoder outputs logits over the LAST axis of the modality's shape (one-hot targets,
e.g. (10,) for a label, (8, 71) for a text string); all-zero target rows contribute nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mmrepro.data.modalities import LIKELIHOODS


def log_likelihood(kind: str, output: Tensor, target: Tensor, gaussian_var: float = 1.0) -> Tensor:
    """output, target: (B, *shape). Returns (B,)."""
    if kind == "bernoulli":
        ll = -F.binary_cross_entropy_with_logits(output, target, reduction="none")
    elif kind == "gaussian":
        ll = -0.5 * (math.log(2 * math.pi * gaussian_var) + (target - output) ** 2 / gaussian_var)
    elif kind == "categorical":
        ll = (torch.log_softmax(output, -1) * target).sum(-1)
    else:
        raise ValueError(f"unknown likelihood {kind!r}; known: {', '.join(LIKELIHOODS)}")
    return ll.reshape(ll.shape[0], -1).sum(1)
