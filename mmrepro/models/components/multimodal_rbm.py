"""The multimodal RBM of Sohn et al. 2014, Sec. 3.1 (Eq. 5-8).

Binary visible units of every modality are concatenated into v = [x; y] with one weight matrix
W = [W^x; W^y] (V x K), visible biases c = [c^x; c^y] and hidden biases b: the MRBM "is equivalent
to an RBM whose visible variables are the concatenation" (Sec. 3.1). Modality m is the row slice
W[slice_m], a contiguous view, so per-modality products cost no copy.

A modality may instead have Gaussian visible units of unit variance (`visible`; the bottom layer of
MDRNN's image pathway, Sec. 4.2, on standardised features, as the authors' code): its energy term
-c.v becomes ||v - c||^2 / 2, so P(v|h) = N(c + W h, I) while P(h|v) keeps the form of Eq. 6. With
one modality the class is a plain RBM (the layers of a deep pathway).

Stacked members (`MultimodalRBM.stacked`, the batched launcher): W (E, V, K), b (E, K), c (E, V),
and every input with the same leading member dimension, (E, B, V); each method then computes
every member's quantity at once (batched matrix products), member e from its own weights.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MEAN_FIELD_INITS = ("zeros", "doubled")
VISIBLE_UNITS = ("bernoulli", "gaussian")


class MultimodalRBM(nn.Module):
    def __init__(self, sizes: list[int], n_hidden: int, init_std: float = 0.01, visible: list[str] | None = None):
        super().__init__()
        self.sizes = list(sizes)
        self.visible = list(visible or ["bernoulli"] * len(self.sizes))
        if len(self.visible) != len(self.sizes) or any(u not in VISIBLE_UNITS for u in self.visible):
            raise ValueError(f"visible: one of {VISIBLE_UNITS} per modality, got {self.visible}")
        starts = list(itertools.accumulate([0] + self.sizes))
        self.slices = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
        n_visible = starts[-1]
        self.W = nn.Parameter(torch.randn(n_visible, n_hidden) * init_std)
        self.b = nn.Parameter(torch.zeros(n_hidden))  # hidden biases
        self.c = nn.Parameter(torch.zeros(n_visible))  # visible biases

    @classmethod
    def stacked(cls, rbms: list[MultimodalRBM]) -> MultimodalRBM:
        """One RBM holding the members' parameters along a leading member dimension."""
        out = copy.deepcopy(rbms[0])
        for name in ("W", "b", "c"):
            setattr(out, name, nn.Parameter(torch.stack([getattr(r, name).detach() for r in rbms])))
        return out

    @property
    def n_visible(self) -> int:
        return self.W.shape[-2]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[-1]

    def pre_activation(self, v: Tensor) -> Tensor:
        """v W + b, the hidden units' input (one fused product per member)."""
        if self.W.dim() == 2:
            return torch.addmm(self.b, v, self.W)
        return torch.baddbmm(self.b.unsqueeze(-2), v, self.W)

    # --- Eq. 5-7 -------------------------------------------------------------------------------
    @property
    def all_bernoulli(self) -> bool:
        return all(u == "bernoulli" for u in self.visible)

    def visible_energy(self, v: Tensor) -> Tensor:
        """The visible-bias part of E: -c.v for binary units, ||v - c||^2 / 2 for Gaussian ones."""
        if self.all_bernoulli:
            return -rowdot(v, self.c)
        terms = [-rowdot(v[..., s], self.c[..., s]) if u == "bernoulli"
                 else 0.5 * (v[..., s] - self.c[..., s].unsqueeze(-2)).pow(2).sum(-1)
                 for s, u in zip(self.slices, self.visible)]
        return torch.stack(terms).sum(0)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """E(v, h) of Eq. 5, per row."""
        return -((v @ self.W) * h).sum(-1) - rowdot(h, self.b) + self.visible_energy(v)

    def free_energy(self, v: Tensor) -> Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) = visible_energy(v) - sum_k softplus(v W_k + b_k)."""
        return self.visible_energy(v) - F.softplus(self.pre_activation(v)).sum(-1)

    def hidden_probs(self, v: Tensor) -> Tensor:
        """P(h_k = 1 | v), Eq. 6."""
        return self.pre_activation(v).sigmoid_()

    def visible_logits(self, h: Tensor, modality: int | None = None) -> Tensor:
        """Logits of P(v_i = 1 | h), Eq. 7, for all visibles or one modality."""
        if modality is None:
            if self.W.dim() == 2:
                return torch.addmm(self.c, h, self.W.T)
            return torch.baddbmm(self.c.unsqueeze(-2), h, self.W.mT)
        s = self.slices[modality]
        return h @ self.W[..., s, :].mT + self.c[..., s].unsqueeze(-2)

    def visible_mean(self, h: Tensor) -> Tensor:
        """E[v | h]: sigmoid of Eq. 7's logits for binary units, c + W h for Gaussian ones."""
        logits = self.visible_logits(h)
        if self.all_bernoulli:
            return logits.sigmoid_()
        return torch.cat([logits[..., s].sigmoid() if u == "bernoulli" else logits[..., s]
                          for s, u in zip(self.slices, self.visible)], -1)

    def sample_visible(self, h: Tensor) -> Tensor:
        """v ~ P(v | h): Bernoulli for binary units, N(c + W h, I) for Gaussian ones."""
        if self.all_bernoulli:
            return sample_bernoulli(self.visible_logits(h).sigmoid_())
        mean = self.visible_mean(h)
        return torch.cat([sample_bernoulli(mean[..., s]) if u == "bernoulli" else mean[..., s] + torch.randn_like(mean[..., s])
                          for s, u in zip(self.slices, self.visible)], -1)

    # --- exact quantities, for tiny models only (tests) -----------------------------------------
    def log_partition_exact(self) -> Tensor:
        """log Z by enumerating all 2^V visible states (V <= 20; binary visible units only)."""
        if not self.all_bernoulli:
            raise ValueError("exact partition function by visible enumeration needs binary visible units")
        if self.n_visible > 20:
            raise ValueError("exact partition function needs n_visible <= 20")
        states = all_binary_states(self.n_visible, self.W.dtype, self.W.device)
        return torch.logsumexp(-self.free_energy(states), 0)

    # --- Eq. 8 / Eq. 9: mean-field inference of a missing (or partly missing) modality ---------
    def mean_field(
        self,
        v: Tensor,
        target: int,
        iters: int,
        init: str = "zeros",
        keep: Tensor | None = None,
        tol: float | None = None,
        bptt_steps: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Infer modality `target` from the other one by the fixed-point updates of Eq. 8.

        keep: optional 0/1 mask over the target's units that stay clamped to v (Eq. 9's y_{\\s});
        the others are predicted. init: "zeros" starts Q(y) at 0 so the first h comes from the
        observed units alone (paper, Sec. 3.1); "doubled" scales the conditioning modality's
        bottom-up input by 1 + (share of target units missing), the authors' code's compensation
        for the missing input. Runs `iters` alternating (y, h) updates, then predicts y from the
        last h. tol: stop early when mean |delta h| < tol (inference only). bptt_steps: backprop
        only through the last k iterations (authors' code); None = all (paper).
        Returns (h, target logits).
        """
        if len(self.slices) != 2:
            raise ValueError("mean_field supports two modalities")
        observed = 1 - target
        so, sm = self.slices[observed], self.slices[target]
        w_m, c_m = self.W[..., sm, :], self.c[..., sm].unsqueeze(-2)
        y = v[..., sm]
        bottom_up = v[..., so] @ self.W[..., so, :]
        a_obs = bottom_up + self.b.unsqueeze(-2)
        start = a_obs if keep is None else a_obs + (y * keep) @ w_m
        if init == "doubled":
            missing = 1.0 if keep is None else 1.0 - keep.mean(-1, keepdim=True)
            start = start + missing * bottom_up
        h = torch.sigmoid(start)
        for t in range(iters):
            if bptt_steps is not None and t == iters - bptt_steps:
                h = h.detach()
            y_hat = torch.sigmoid(h @ w_m.mT + c_m)
            if keep is not None:
                y_hat = torch.where(keep.bool(), y, y_hat)
            h_new = torch.sigmoid(a_obs + y_hat @ w_m)
            if tol is not None and (h_new - h).abs().mean((-2, -1)).max() < tol:   # every member
                h = h_new
                break
            h = h_new
        return h, h @ w_m.mT + c_m


def rowdot(x: Tensor, y: Tensor) -> Tensor:
    """x_i . y per row of x: (B, N) with (N,) -> (B,) (a matrix-vector product, as before stacking);
    stacked (E, B, N) with (E, N) -> (E, B)."""
    if y.dim() == 1:
        return x @ y
    return (x @ y.unsqueeze(-1)).squeeze(-1)


def sample_bernoulli(p: Tensor) -> Tensor:
    """Binary sample with P(1) = p, in p's dtype. (An in-place uniform < p is 2-3x faster than
    torch.bernoulli on CPU.)"""
    return torch.rand_like(p).lt_(p)


def all_binary_states(n: int, dtype=torch.float32, device=None) -> Tensor:
    """All 2^n binary vectors as rows (2^n x n)."""
    idx = torch.arange(2**n, device=device)
    return ((idx[:, None] >> torch.arange(n - 1, -1, -1, device=device)) & 1).to(dtype)
