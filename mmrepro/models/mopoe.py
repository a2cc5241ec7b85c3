"""MoPoE (Sutter, Daunhawer & Vogt 2021), a baseline of the CMMD paper: every non-empty subset S of
the modalities has the product-of-experts posterior q_S (no prior expert: the paper; the reference
code adds N(0, I) to the full subset only), and the joint posterior is their uniform mixture. One
sample per example, stratified over the batch as the code does (consecutive rows share a subset);
every modality is reconstructed from it. Loss = -sum_m w_m log p(x_m|z) + beta * mean_S KL(q_S || N(0, I))
(the code's upper bound on the mixture's KL); beta = `kl_weight` (2.5 in the MNIST-SVHN-Text script)
times the warm-up factor; w_m = the code's rec_weight, (largest modality size) / (size of m)
(`likelihood_scaling: dims`, default; `none`: 1).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from mmrepro.errors import check_choice, check_range
from mmrepro.models.latent_baseline import SCALINGS, LatentBaseline, rec_weights
from mmrepro.objectives.experts import product_of_experts
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class MoPoEModule(LatentBaseline):
    def __init__(self, modalities, kl_weight: float = 1.0, likelihood_scaling: str = "dims", **common):
        super().__init__(modalities, **common)
        self.kl_weight = check_range("kl_weight", kl_weight, 0)
        self.likelihood_scaling = check_choice("likelihood_scaling", likelihood_scaling, SCALINGS)
        self.rec_weights = rec_weights(self.modalities, likelihood_scaling)
        self.experts = nn.ModuleDict({n: self.encoder([n]) for n in self.names})
        self.subsets = [list(s) for r in range(1, len(self.names) + 1) for s in itertools.combinations(self.names, r)]

    def infer(self, batch, names):
        mus, logvars = zip(*(self.experts[n](batch) for n in names))
        return product_of_experts(list(mus), list(logvars), prior_expert=False)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        unimodal = {n: self.experts[n](batch) for n in self.names}
        posteriors = [product_of_experts([unimodal[n][0] for n in s], [unimodal[n][1] for n in s], prior_expert=False)
                      for s in self.subsets]
        b = len(posteriors[0][0])
        which = torch.arange(b, device=posteriors[0][0].device) * len(self.subsets) // b   # stratified
        mu = torch.stack([p[0] for p in posteriors])[which, torch.arange(b)]
        logvar = torch.stack([p[1] for p in posteriors])[which, torch.arange(b)]
        z = reparameterize(mu, logvar)
        rec = self.reconstruction(z, batch)
        kl = torch.stack([kl_normal(m, lv) for m, lv in posteriors]).mean(0)
        return {"loss": (-rec + self.kl_weight * beta * kl).mean(), "reconstruction": rec.mean(), "kl": kl.mean(), "z": z}
