"""Combining unimodal Gaussian posteriors: the product of experts (MVAE, Wu & Goodman 2018; MoPoE's
subsets) and the mixture of experts' log density (MMVAE, Shi et al. 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmrepro.objectives.gaussian import log_normal


def product_of_experts(mus: list[Tensor], logvars: list[Tensor], prior_expert: bool = True,
                       eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Product of diagonal Gaussians N(mu_i, var_i) (and N(0, I) when prior_expert): precision
    T = sum 1/var_i, mean = sum(mu_i / var_i) / T, variance 1/T (the MVAE code adds eps to variances)."""
    if prior_expert:
        mus, logvars = [torch.zeros_like(mus[0]), *mus], [torch.zeros_like(logvars[0]), *logvars]
    precision = torch.stack([1 / (lv.exp() + eps) for lv in logvars])
    mu = (torch.stack(mus) * precision).sum(0) / precision.sum(0)
    return mu, -torch.log(precision.sum(0))


def log_mixture(z: Tensor, mus: list[Tensor], logvars: list[Tensor]) -> Tensor:
    """log (1/M) sum_m N(z; mu_m, var_m) for z of shape (..., B, d) and M experts of shape (B, d)."""
    parts = torch.stack([log_normal(z, mu, lv) for mu, lv in zip(mus, logvars)])
    return torch.logsumexp(parts, 0) - math.log(len(mus))
