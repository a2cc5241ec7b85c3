"""Contrastive gradient of an RBM log-likelihood, shared by PCD and CD-PercLoss.

For a (conditional) RBM, d(-log p)/d(theta) = E_data[dE/dtheta] - E_model[dE/dtheta]. With the
hidden units summed out, both expectations reduce to visible vectors and hidden probabilities
(Sohn et al. 2014, Eq. 6), so the estimator needs one product v^T h per phase. Both phases are
stacked into one matrix product ([v+; v-]^T [h+/n+; -h-/n-]), the way a BLAS likes it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def set_contrastive_grads(rbm, v_pos: Tensor, h_pos: Tensor, v_neg: Tensor, h_neg: Tensor) -> None:
    """Write d(-log-likelihood)/d(W, b, c) into rbm.W.grad, rbm.b.grad, rbm.c.grad.

    v_pos, h_pos: data visibles and P(h|v) (n+ rows); v_neg, h_neg: negative particles and their
    hidden probabilities (n- rows, may differ from n+).
    """
    n_pos, n_neg = v_pos.shape[0], v_neg.shape[0]
    v = torch.cat([v_pos, v_neg])
    h = torch.cat([h_pos / n_pos, h_neg / -n_neg])
    rbm.W.grad = -(v.T @ h)
    rbm.b.grad = -h.sum(0)
    rbm.c.grad = v_neg.mean(0) - v_pos.mean(0)
