"""Maximum joint likelihood training of the MRBM with persistent contrastive divergence.

Sohn et al. 2014 Eq. 3 (the "ML (PCD)" baseline of Table 1); PCD is Tieleman 2008. The persistent
state is a batch of hidden samples (as in scikit-learn's BernoulliRBM): each update runs
`gibbs_steps` sweeps h -> v -> h from it, so one update with one sweep costs five V x K matrix
products (top-down, bottom-up for data and chains in one product, gradient in one product).
Choices the paper leaves open: number of chains = batch size (chains start from a Bernoulli sample
of the hidden units given the first data batch's mean), `gibbs_steps` (authors' demo: 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmrepro.errors import check_range
from mmrepro.models.components.multimodal_rbm import sample_bernoulli
from mmrepro.objectives.rbm_gradients import set_contrastive_grads

MONITOR_ROWS = 8


class PersistentCD(nn.Module):
    def __init__(self, gibbs_steps: int = 1, resample_inputs: bool = True):
        super().__init__()
        self.gibbs_steps = check_range("objective.gibbs_steps", gibbs_steps, 1, integer=True)
        self.resample_inputs = bool(resample_inputs)
        self.register_buffer("chain_h", torch.empty(0))  # persistent hidden samples (in checkpoints)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Chains of any number (a checkpoint loaded before setup has made them)."""
        saved = state_dict.get(prefix + "chain_h")
        if saved is not None and saved.shape != self.chain_h.shape:
            self.chain_h = torch.empty_like(saved, device=self.chain_h.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def reset(self, rbm, v_init: torch.Tensor) -> None:
        """Start one chain per row of v_init."""
        self.chain_h = sample_bernoulli(rbm.hidden_probs(v_init))

    @torch.no_grad()
    def step(self, rbm, v: torch.Tensor, init: str) -> dict:
        h_chain = self.chain_h
        for sweep in range(self.gibbs_steps):
            v_neg = rbm.sample_visible(h_chain)
            if sweep < self.gibbs_steps - 1:
                h_chain = sample_bernoulli(rbm.hidden_probs(v_neg))
        both = torch.cat([v, v_neg], -2)
        a = rbm.pre_activation(both)  # data and chains in one product
        n = v.shape[-2]
        # Monitored value: mean free energy of the data minus that of the chains (the surrogate
        # whose gradient is written below), on the first MONITOR_ROWS rows of each: a progress
        # and NaN signal at a small fraction of the cost of a softplus over the whole batch.
        m = min(MONITOR_ROWS, n, v_neg.shape[-2])
        free_pos = rbm.visible_energy(v[..., :m, :]) - F.softplus(a[..., :m, :]).sum(-1)
        free_neg = rbm.visible_energy(v_neg[..., :m, :]) - F.softplus(a[..., n:n + m, :]).sum(-1)
        h = a.sigmoid_()
        self.chain_h = sample_bernoulli(h[..., n:, :])
        hidden_mean = h[..., :n, :].mean(-2)
        set_contrastive_grads(rbm, both, h, n)
        return {"loss": free_pos.mean(-1) - free_neg.mean(-1), "hidden_mean": hidden_mean}
