"""MLP building blocks sized from a datamodule's modalities."""

from __future__ import annotations

import math

from torch import Tensor, nn

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh}


def mlp(sizes: list[int], activation: str = "leaky_relu", last_activation: bool = True) -> nn.Sequential:
    """Linear layers between consecutive sizes, the activation after each (and after the last
    one if last_activation)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """(mu, logvar) of a diagonal Gaussian from features."""

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)
        self.logvar = nn.Linear(in_features, latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z -> hidden layers -> the modality's shape (logits or mean, per its likelihood)."""

    def __init__(self, latent_dim: int, hidden: list[int], shape: tuple[int, ...], activation: str):
        super().__init__()
        self.shape = tuple(shape)
        self.net = nn.Sequential(mlp([latent_dim, *hidden], activation), nn.Linear(hidden[-1] if hidden else latent_dim,
                                                                                    math.prod(shape)))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.shape)
