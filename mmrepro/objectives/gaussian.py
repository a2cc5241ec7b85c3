"""Diagonal-Gaussian quantities shared by the variational models (JMVAE, CMMD, ...)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kl_normal_per_dim(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | None = None,
                      logvar_p: Tensor | None = None) -> Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))) per dimension; p defaults to N(0, I).
    Closed form."""
    if mu_p is None:
        mu_p, logvar_p = torch.zeros_like(mu_q), torch.zeros_like(logvar_q)
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


def kl_normal(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor | None = None, logvar_p: Tensor | None = None) -> Tensor:
    """kl_normal_per_dim summed over the last dimension."""
    return kl_normal_per_dim(mu_q, logvar_q, mu_p, logvar_p).sum(-1)


def log_normal(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()
