"""The MNIST-SVHN-Text networks of Shi et al. 2019 / Sutter et al. 2020, 2021 (MMVAE, MoPoE), as the
CMMD journal's Appendix H lists them, one pair per kind of modality (`networks: mopoe`):

- Table H3, (C, 32, 32) images (SVHN). Features: conv C->32, 32->64, 64->64 (4,2,1), 64->128
  (4,2,0): 32 -> 16 -> 8 -> 4 -> 1, so 128 features. Generator: linear z->128, upconv 128->64
  (4,2,0), 64->64, 64->32, 32->C (4,2,1): 1 -> 4 -> 8 -> 16 -> 32.
- Table H5, categorical (8, A) sequences (the 8-character text, A = 71 one-hot symbols), read as A
  channels of length 8. Features: conv1d A->128 (1,1,0), 128->128 (4,2,1), 128->128 (4,2,0):
  8 -> 8 -> 4 -> 1, so 128 features. Generator: linear z->128, upconv1d 128->128 (4,1,0),
  128->128 (4,2,1), conv1d 128->A (1,1,0): 1 -> 4 -> 8 -> 8.
- Table H4, any other modality (MNIST): one linear layer of 400 on the flattened modality;
  generator z->400->dim.
Spec (k, s, p, d) = kernel, stride, padding, dilation. The 128- or 400-wide features feed the
Gaussian heads 5a/5b (GaussianHead). The activation follows each hidden layer (MoPoE: ReLU; CMMD
Appendix C: softplus in every hidden layer), dropout after it when > 0 (CMMD: 0.2). A generator
returns (B, out_mult * dim) flattened as (out_mult, *shape): out_mult = 2 for decoders that output
a mean and a log-variance per dimension (CMMD Eq. 6), the second block the log-variance.
"""

from __future__ import annotations

import math
from functools import partial

from torch import Tensor, nn

from mmrepro.errors import ConfigError
from mmrepro.models.components.activations import ACTIVATIONS
from mmrepro.models.components.dropout import Dropout

SEQUENCE_LENGTH = 8   # Table H5's strides fit 8 characters exactly


def kind(modality) -> str:
    """'image' (Table H3), 'text' (H5) or 'flat' (H4)."""
    shape = tuple(modality.shape)
    if len(shape) == 3 and shape[1:] == (32, 32):
        return "image"
    if len(shape) == 2 and modality.likelihood == "categorical":
        if shape[0] != SEQUENCE_LENGTH:
            raise ConfigError("networks", f"mopoe text networks (Table H5) read {SEQUENCE_LENGTH} characters; "
                              f"modality {modality.name!r} has {shape[0]} (dataset.len_sequence)")
        return "text"
    if len(shape) == 3:
        raise ConfigError("networks", f"mopoe image networks (Table H3) read (C, 32, 32); modality "
                          f"{modality.name!r} is {shape}; use networks: mlp")
    return "flat"


def _act(activation: str, dropout: float) -> list[nn.Module]:
    return [ACTIVATIONS[activation]()] + ([Dropout(dropout)] if dropout else [])


class ToChannels(nn.Module):
    """(B, L, A) one-hot sequence <-> (B, A, L) channels for 1-d convolutions."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-1, -2)


def features(modality, activation: str, dropout: float = 0.0) -> tuple[nn.Module, int]:
    """The 'conditional prior' column of Tables H3-H5 without its heads: (network, output width)."""
    a = partial(_act, activation, dropout)   # a fresh activation (and dropout) per layer
    k = kind(modality)
    if k == "image":
        c = modality.shape[0]
        return nn.Sequential(nn.Conv2d(c, 32, 4, 2, 1), *a(), nn.Conv2d(32, 64, 4, 2, 1), *a(),
                             nn.Conv2d(64, 64, 4, 2, 1), *a(), nn.Conv2d(64, 128, 4, 2, 0), *a(), nn.Flatten()), 128
    if k == "text":
        n_symbols = modality.shape[1]
        return nn.Sequential(ToChannels(), nn.Conv1d(n_symbols, 128, 1, 1, 0), *a(), nn.Conv1d(128, 128, 4, 2, 1),
                             *a(), nn.Conv1d(128, 128, 4, 2, 0), *a(), nn.Flatten()), 128
    return nn.Sequential(nn.Flatten(), nn.Linear(modality.dim, 400), *a()), 400


class Generator(nn.Module):
    """The 'decoder' column of Tables H3-H5: z (or any input vector) -> (B, out_mult * dim)."""

    def __init__(self, modality, in_features: int, activation: str, dropout: float = 0.0, out_mult: int = 1):
        super().__init__()
        a = partial(_act, activation, dropout)
        self.shape, self.out_mult, self.kind = tuple(modality.shape), out_mult, kind(modality)
        if self.kind == "image":
            c = modality.shape[0]
            self.net = nn.Sequential(nn.Linear(in_features, 128), *a(), nn.Unflatten(1, (128, 1, 1)),
                                     nn.ConvTranspose2d(128, 64, 4, 2, 0), *a(), nn.ConvTranspose2d(64, 64, 4, 2, 1),
                                     *a(), nn.ConvTranspose2d(64, 32, 4, 2, 1), *a(),
                                     nn.ConvTranspose2d(32, out_mult * c, 4, 2, 1))
        elif self.kind == "text":
            n_symbols = modality.shape[1]
            self.net = nn.Sequential(nn.Linear(in_features, 128), *a(), nn.Unflatten(1, (128, 1)),
                                     nn.ConvTranspose1d(128, 128, 4, 1, 0), *a(), nn.ConvTranspose1d(128, 128, 4, 2, 1),
                                     *a(), nn.Conv1d(128, out_mult * n_symbols, 1, 1, 0))
        else:
            self.net = nn.Sequential(nn.Linear(in_features, 400), *a(), nn.Linear(400, out_mult * modality.dim))

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z)
        if self.kind == "text":   # (B, m*A, L) -> (B, m, L, A)
            out = out.view(len(z), self.out_mult, self.shape[1], self.shape[0]).transpose(-1, -2)
        return out.reshape(len(z), self.out_mult * math.prod(self.shape))
