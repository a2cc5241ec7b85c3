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
from mmrepro.models.components.multimodal_rbm import rowdot, sample_bernoulli
from mmrepro.objectives.rbm_gradients import set_contrastive_grads


def select_lowest_free_energy(particles: Tensor, free_energy: Tensor) -> tuple[Tensor, Tensor]:
    """Per example, the particle of lowest free energy.

    particles: (..., P, B, N) candidates; free_energy: (..., P, B). Returns (chosen (..., B, N),
    index (..., B)); the leading dimensions are stacked members.
    """
    index = free_energy.argmin(-2)
    return take_particle(particles, index), index


def take_particle(particles: Tensor, index: Tensor) -> Tensor:
    """particles[..., index[..., b], b, :] for every example b."""
    expanded = index.unsqueeze(-2).unsqueeze(-1).expand(*index.shape[:-1], 1, index.shape[-1], particles.shape[-1])
    return particles.gather(-3, expanded).squeeze(-3)


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
        clamped modality's constant, the chosen target states (B, N_t), their P(h | v) (B, K)),
        each with stacked members' leading dimension where v has it.
        """
        so, st = rbm.slices[1 - target], rbm.slices[target]
        w_t, c_t = rbm.W[..., st, :], rbm.c[..., st]
        lead, n = v.shape[:-2], v.shape[-2]
        bottom_up = (v[..., so] @ rbm.W[..., so, :]).repeat(*[1] * len(lead), self.n_chains, 1)  # (R*B, K)
        a_obs = bottom_up + rbm.b.unsqueeze(-2)
        h = sample_bernoulli(torch.sigmoid(a_obs + bottom_up))
        states, energies, pre_acts = [], [], []
        for sweep in range(self.gibbs_steps + 1):
            y = sample_bernoulli(torch.sigmoid(h @ w_t.mT + c_t.unsqueeze(-2)))
            a = a_obs + y @ w_t
            states.append(y)
            pre_acts.append(a)
            energies.append(-rowdot(y, c_t) - F.softplus(a).sum(-1))
            if sweep < self.gibbs_steps:
                h = sample_bernoulli(torch.sigmoid(a))
        particles = torch.stack(states, -3).reshape(*lead, -1, n, w_t.shape[-2])
        free = torch.stack(energies, -2).reshape(*lead, -1, n)
        chosen, index = select_lowest_free_energy(particles, free)
        a_chosen = take_particle(torch.stack(pre_acts, -3).reshape(*lead, -1, n, a_obs.shape[-1]), index)
        return particles, free, chosen, torch.sigmoid(a_chosen)

    @torch.no_grad()
    def step(self, rbm, v: Tensor, init: str) -> dict:
        a_pos = v @ rbm.W + rbm.b.unsqueeze(-2)
        h_pos = torch.sigmoid(a_pos)
        v_negs, h_negs, gaps = [], [], []
        for target in (0, 1):
            st = rbm.slices[target]
            _, free, chosen, h_neg = self.negative_particles(rbm, v, target)
            v_neg = v.clone()
            v_neg[..., st] = chosen
            v_negs.append(v_neg)
            h_negs.append(h_neg)
            free_data = -rowdot(v[..., st], rbm.c[..., st]) - F.softplus(a_pos).sum(-1)
            gaps.append(free_data.mean(-1) - free.min(-2).values.mean(-1))
        hidden_mean = h_pos.mean(-2)
        set_contrastive_grads(rbm, torch.cat([v] + v_negs, -2), torch.cat([h_pos] + h_negs, -2), v.shape[-2])
        return {"loss": torch.stack(gaps).mean(0), "hidden_mean": hidden_mean}
