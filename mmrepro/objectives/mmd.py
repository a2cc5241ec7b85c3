"""Maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2007; CMMD Eq. 4), estimated from
two samples, and its closed form between two diagonal Gaussians (for tests).

Kernel k(a, b) = exp(-||a - b||^2 / scale). The CMMD paper says "a Gaussian kernel" and follows Zhao
et al. (2017); the official code (utils.compute_kernel, the InfoVAE tutorial's) uses
scale = d^2 for d-dimensional samples, our default (`scale=None`).
Estimators of MMD^2 = E k(p, p') - 2 E k(p, q) + E k(q, q'):
  biased   (the code's V-statistic): means over all n^2 pairs, diagonals included;
  unbiased (Gretton et al.'s U-statistic): within-sample means leave out the diagonal.
"""

from __future__ import annotations

import torch
from torch import Tensor

ESTIMATORS = ("biased", "unbiased")


def gaussian_kernel(a: Tensor, b: Tensor, scale: float) -> Tensor:
    """(n, d), (m, d) -> (n, m) matrix of exp(-||a_i - b_j||^2 / scale); squared distances as
    |a|^2 + |b|^2 - 2 a.b (one matmul, no square root whose gradient is undefined at distance 0)."""
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * a @ b.T
    return torch.exp(-sq.clamp_min(0) / scale)


def mmd(p: Tensor, q: Tensor, scale: float | None = None, estimator: str = "biased") -> Tensor:
    """MMD^2 estimate between samples p (n, d) and q (m, d)."""
    scale = float(p.shape[-1] ** 2) if scale is None else scale
    k_pp, k_qq, k_pq = gaussian_kernel(p, p, scale), gaussian_kernel(q, q, scale), gaussian_kernel(p, q, scale)
    if estimator == "biased":
        return k_pp.mean() + k_qq.mean() - 2 * k_pq.mean()
    n, m = len(p), len(q)
    return ((k_pp.sum() - k_pp.diagonal().sum()) / (n * (n - 1)) + (k_qq.sum() - k_qq.diagonal().sum()) / (m * (m - 1))
            - 2 * k_pq.mean())


def expected_kernel(mu: Tensor, var: Tensor, scale: float) -> Tensor:
    """E exp(-||u||^2 / scale) for u ~ N(mu, diag(var)): prod_j (1 + 2 var_j / scale)^(-1/2)
    exp(-mu_j^2 / (scale + 2 var_j))."""
    return ((1 + 2 * var / scale).rsqrt() * torch.exp(-mu ** 2 / (scale + 2 * var))).prod(-1)


def mmd_gaussians(mu_p: Tensor, var_p: Tensor, mu_q: Tensor, var_q: Tensor, scale: float) -> Tensor:
    """Population MMD^2 between N(mu_p, diag(var_p)) and N(mu_q, diag(var_q)) under gaussian_kernel:
    differences of independent draws are Gaussian, so each expectation is expected_kernel."""
    zero = torch.zeros_like(mu_p)
    return (expected_kernel(zero, 2 * var_p, scale) + expected_kernel(zero, 2 * var_q, scale)
            - 2 * expected_kernel(mu_p - mu_q, var_p + var_q, scale))
