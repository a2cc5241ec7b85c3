"""Contrastive gradient of an RBM log-likelihood, shared by PCD and CD-PercLoss.

For a (conditional) RBM, d(-log p)/d(theta) = E_data[dE/dtheta] - E_model[dE/dtheta]. With the
hidden units summed out, both expectations reduce to visible vectors and hidden probabilities
(Sohn et al. 2014, Eq. 6), so the estimator needs one product v^T h per phase. Both phases are
stacked into one matrix product ([v+; v-]^T [-h+/n+; h-/n-]), the way a BLAS likes it. The
visible-bias gradient is mean(v-) - mean(v+) for binary and unit-variance Gaussian units alike
(dE/dc is -v and c - v), so one estimator serves both.
"""

from __future__ import annotations

from torch import Tensor


def set_contrastive_grads(rbm, v: Tensor, h: Tensor, n_pos: int) -> None:
    """Write d(-log-likelihood)/d(W, b, c) into rbm.W.grad, rbm.b.grad, rbm.c.grad.

    v: the data rows [:n_pos] stacked on the negative particles [n_pos:]; h: their P(h|v), same
    layout (rows along dim -2: stacked members' (E, rows, N) too). h is scaled IN PLACE (by
    -1/n_pos and 1/n_neg), so callers read it before this call.
    """
    n_neg = v.shape[-2] - n_pos
    h[..., :n_pos, :].div_(-n_pos)
    h[..., n_pos:, :].div_(n_neg)
    rbm.W.grad = v.mT @ h
    rbm.b.grad = h.sum(-2)
    rbm.c.grad = v[..., n_pos:, :].mean(-2) - v[..., :n_pos, :].mean(-2)
