"""MinVI training of the MRBM with CD-PercLoss (Sohn et al. 2014, Sec. 3.2 and footnote 3).

The MinVI objective (Eq. 2) is the sum of two conditional log-likelihoods, log P(y|x) and
log P(x|y), each that of a conditional RBM sharing the MRBM's weights. For each direction,
CD-PercLoss (Mnih et al. 2011) runs `n_chains` Gibbs chains of the conditional RBM per conditioning
input (the conditioning modality stays clamped), and the negative particle is the lowest-free-
energy state visited by any chain, the starting state included. The conditioning modality's
visible-bias term -c_o.x is the same for every particle and cancels in the comparison.

Choices the paper leaves open (authors' code; docs/sohn14.md): chains start from h
sampled with the observed modality's bottom-up input doubled, then the target sampled from h;
the two directions' gradients are averaged (weight 1/2 each, as the code), which is Eq. 2 with
the learning rate halved. n_chains (paper: "several"; code: 1) and gibbs_steps (code: 1) are config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrepro.errors import check_range
from mmrepro.models.components.multimodal_rbm import sample_bernoulli
from mmrepro.objectives.rbm_gradients import set_contrastive_grads


def select_lowest_free_energy(particles: Tensor, free_energy: Tensor) -> tuple[Tensor, Tensor]:
    """Per example, the particle of lowest free energy.

    particles: (P, B, N) candidates; free_energy: (P, B). Returns (chosen (B, N), index (B,)).
    """
    index = free_energy.argmin(0)
    return particles[index, torch.arange(particles.shape[1], device=particles.device)], index


class CDPercLoss(nn.Module):
    def __init__(self, n_chains: int = 4, gibbs_steps: int = 1, resample_inputs: bool = True):
        super().__init__()
        self.n_chains = check_range("objective.n_chains", n_chains, 1, integer=True)
        self.gibbs_steps = check_range("objective.gibbs_steps", gibbs_steps, 1, integer=True)
        self.resample_inputs = bool(resample_inputs)

    @torch.no_grad()
    def negative_particles(self, rbm, v: Tensor, target: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Run the conditional chains for P(target | other).

        Returns (all visited target states (P, B, N_t), their free energies (P, B) up to the
        clamped modality's constant, the chosen target states (B, N_t), their P(h | v) (B, K)).
        """
        so, st = rbm.slices[1 - target], rbm.slices[target]
        w_t, c_t = rbm.W[st], rbm.c[st]
        n = v.shape[0]
        bottom_up = (v[:, so] @ rbm.W[so]).repeat(self.n_chains, 1)  # (R*B, K)
        a_obs = bottom_up + rbm.b
        h = sample_bernoulli(torch.sigmoid(a_obs + bottom_up))
        states, energies, pre_acts = [], [], []
        for sweep in range(self.gibbs_steps + 1):
            y = sample_bernoulli(torch.sigmoid(h @ w_t.T + c_t))
            a = a_obs + y @ w_t
            states.append(y)
            pre_acts.append(a)
            energies.append(-(y @ c_t) - F.softplus(a).sum(-1))
            if sweep < self.gibbs_steps:
                h = sample_bernoulli(torch.sigmoid(a))
        particles = torch.stack(states).view(-1, n, w_t.shape[0])
        free = torch.stack(energies).view(-1, n)
        chosen, index = select_lowest_free_energy(particles, free)
        a_chosen = torch.stack(pre_acts).view(-1, n, a_obs.shape[1])[index, torch.arange(n, device=v.device)]
        return particles, free, chosen, torch.sigmoid(a_chosen)

    @torch.no_grad()
    def step(self, rbm, v: Tensor, init: str) -> dict:
        a_pos = v @ rbm.W + rbm.b
        h_pos = torch.sigmoid(a_pos)
        v_negs, h_negs, gaps = [], [], []
        for target in (0, 1):
            st = rbm.slices[target]
            _, free, chosen, h_neg = self.negative_particles(rbm, v, target)
            v_neg = v.clone()
            v_neg[:, st] = chosen
            v_negs.append(v_neg)
            h_negs.append(h_neg)
            free_data = -(v[:, st] @ rbm.c[st]) - F.softplus(a_pos).sum(-1)
            gaps.append(free_data.mean() - free.min(0).values.mean())
        hidden_mean = h_pos.mean(0)
        set_contrastive_grads(rbm, torch.cat([v] + v_negs), torch.cat([h_pos] + h_negs), v.shape[0])
        return {"loss": torch.stack(gaps).mean(), "hidden_mean": hidden_mean}
