"""Encoder and decoder building blocks sized from a datamodule's modalities.

`networks: mlp` (default): a modality of shape (C, H, W) gets a conv tower when `conv_channels` is
given (JMVAE Sec. 4.2, CelebA: four 4x4 stride-2 convolutions, batch norm after all but the first,
as the official code); every other modality is flattened into an MLP tower. `networks: mopoe`: the
per-modality MNIST-SVHN-Text networks of CMMD's Tables H3-H5 (mopoe_networks.py)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrepro.models.components import mopoe_networks
from mmrepro.models.components.activations import ACTIVATIONS
from mmrepro.models.components.dropout import Dropout


def mlp(sizes: list[int], activation: str = "leaky_relu", last_activation: bool = True,
        dropout: float = 0.0) -> nn.Sequential:
    """Linear layers between consecutive sizes, the activation after each (and after the last
    one if last_activation), dropout after each activation when dropout > 0 (CMMD's placement)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class ConcatMLP(nn.Module):
    """An MLP on the flattened inputs concatenated in a fixed order (CMMD and its baselines: each
    network reads [x_M, x_O, y] or [z, x_O] as one vector), with `out` output units (none: the last
    hidden layer is the output)."""

    def __init__(self, in_dims: dict[str, int], hidden: list[int], out: int | None, activation: str,
                 dropout: float = 0.0):
        super().__init__()
        self.names = list(in_dims)
        sizes = [sum(in_dims.values()), *hidden]
        self.body = mlp(sizes, activation, dropout=dropout)
        self.out = nn.Linear(sizes[-1], out) if out else nn.Identity()
        self.width = out or sizes[-1]

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.out(self.body(torch.cat([inputs[n].flatten(1) for n in self.names], 1)))


def is_image(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3


def conv_stack(in_channels: int, channels: list[int], activation: str, batch_norm: bool = True) -> nn.Sequential:
    """4x4 stride-2 convolutions (each halves H and W), batch norm after all but the first."""
    layers: list[nn.Module] = []
    for i, c in enumerate(channels):
        layers.append(nn.Conv2d(in_channels if i == 0 else channels[i - 1], c, 4, 2, 1))
        if i > 0 and batch_norm:
            layers.append(nn.BatchNorm2d(c))
        layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers, nn.Flatten())


NETWORKS = ("mlp", "mopoe")


def tower(modality, hidden: list[int], conv_channels: list[int], activation: str,
          networks: str = "mlp", dropout: float = 0.0) -> tuple[nn.Module, int]:
    """Input tower for one modality and its output width: with networks = mopoe its Table H3-H5
    feature network; otherwise conv + flatten for (C, H, W) images when conv_channels is set, else
    an MLP on the flattened modality."""
    if networks == "mopoe":
        return mopoe_networks.features(modality, activation, dropout)
    shape = tuple(modality.shape)
    if conv_channels and is_image(shape):
        c, h, w = shape
        scale = 2 ** len(conv_channels)
        return conv_stack(c, conv_channels, activation), conv_channels[-1] * (h // scale) * (w // scale)
    return nn.Sequential(nn.Flatten(), mlp([math.prod(shape), *hidden], activation, dropout=dropout)), hidden[-1]


class GaussianHead(nn.Module):
    """(mu, logvar) of a diagonal Gaussian from features."""

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h)


class Encoder(nn.Module):
    """q(z | the given modalities): one tower per modality, tops concatenated, a Gaussian head
    (JMVAE Sec. 4.2: "shared the top of each layers and mapped them into 64 hidden units")."""

    def __init__(self, modalities, latent_dim: int, hidden: list[int], conv_channels: list[int], activation: str,
                 networks: str = "mlp", dropout: float = 0.0):
        super().__init__()
        self.names = [m.name for m in modalities]
        self.shapes = {m.name: tuple(m.shape) for m in modalities}
        towers, width = {}, 0
        for m in modalities:
            towers[m.name], out = tower(m, hidden, conv_channels, activation, networks, dropout)
            width += out
        self.towers = nn.ModuleDict(towers)
        self.head = GaussianHead(width, latent_dim)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.head(torch.cat([self.towers[n](batch[n].reshape(-1, *self.shapes[n])) for n in self.names], 1))


class Decoder(nn.Module):
    """Input (z, optionally concatenated with a condition) -> the modality's shape (logits or
    mean, per its likelihood). networks = mopoe: its Table H3-H5 generator. Images with
    conv_channels: a dense layer to (C_last, H/2^n, W/2^n) and n 4x4 stride-2 transposed
    convolutions (JMVAE CelebA); otherwise an MLP."""

    def __init__(self, in_features: int, hidden: list[int], modality, activation: str,
                 conv_channels: list[int] = (), networks: str = "mlp"):
        super().__init__()
        self.shape = shape = tuple(modality.shape)
        if networks == "mopoe":
            self.net = mopoe_networks.Generator(modality, in_features, activation)
        elif conv_channels and is_image(shape):
            c, h, w = shape
            chans = list(reversed(conv_channels))
            scale = 2 ** len(chans)
            layers: list[nn.Module] = [nn.Linear(in_features, chans[0] * (h // scale) * (w // scale)),
                                       ACTIVATIONS[activation](), nn.Unflatten(1, (chans[0], h // scale, w // scale))]
            outs = chans[1:] + [c]
            for i, (a, b) in enumerate(zip(chans, outs)):
                layers.append(nn.ConvTranspose2d(a, b, 4, 2, 1))
                if i < len(outs) - 1:
                    layers += [nn.BatchNorm2d(b), ACTIVATIONS[activation]()]
            self.net = nn.Sequential(*layers)
        else:
            self.net = nn.Sequential(mlp([in_features, *hidden], activation),
                                     nn.Linear(hidden[-1] if hidden else in_features, math.prod(shape)))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.shape)
