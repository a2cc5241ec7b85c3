"""MMVAE (Shi, Siddharth, Paige & Torr 2019), a baseline of the CMMD paper: the joint posterior is the
uniform mixture of the unimodal experts, q(z|X) = (1/M) sum_m q(z|x_m), trained by stratified
sampling, K draws from each expert:
  log w_{r,k} = log p(z_rk) + sum_d log p(x_d | z_rk) - log q(z_rk | X),   z_rk ~ q(z | x_r)
  objective `elbo`: mean over r, k of log w (the mixture's ELBO);
  objective `iwae`: mean over r of log-mean-exp over k (the code's "looser" IWAE, its README's choice;
  the CMMD paper's MMVAE-IWAE uses k = 10).
At k = 1 the two coincide. The reference code uses Laplace posteriors and likelihoods and the DReG
gradient; here Gaussians (the tree's likelihoods) and the plain reparameterised gradient.
The representation of x_O is the mean of its own expert (one observed modality) or of the mixture.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrepro.errors import check_choice, check_range
from mmrepro.models.latent_baseline import LatentBaseline
from mmrepro.objectives.experts import log_mixture
from mmrepro.objectives.gaussian import log_normal


class MMVAEModule(LatentBaseline):
    def __init__(self, modalities, objective: str = "iwae", k: int = 10, **common):
        super().__init__(modalities, **common)
        self.objective = check_choice("objective", objective, ("elbo", "iwae"))
        self.k = check_range("k", k, 1, integer=True)
        self.experts = nn.ModuleDict({n: self.encoder([n]) for n in self.names})

    def infer(self, batch, names):
        mus, logvars = zip(*(self.experts[n](batch) for n in names))
        return torch.stack(mus).mean(0), torch.log(torch.stack([lv.exp() for lv in logvars]).mean(0)
                                                    + torch.stack(mus).var(0, unbiased=False))

    def log_weights(self, batch: dict[str, Tensor], k: int) -> Tensor:
        """(M, k, B) importance log-weights for k draws from each expert."""
        params = [self.experts[n](batch) for n in self.names]
        mus, logvars = [p[0] for p in params], [p[1] for p in params]
        rep = {n: t.unsqueeze(0).expand(k, *t.shape).reshape(-1, *t.shape[1:]) for n, t in batch.items()
               if n in self.by_name}
        out = []
        for mu, logvar in params:
            z = mu + torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype) * (0.5 * logvar).exp()
            log_px = self.reconstruction(z.reshape(-1, z.shape[-1]), rep).view(k, -1)
            log_pz = log_normal(z, torch.zeros_like(mu), torch.zeros_like(logvar))
            out.append(log_pz + log_px - log_mixture(z, mus, logvars))
        return torch.stack(out)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        log_w = self.log_weights(batch, self.k)
        if self.objective == "elbo":
            bound = log_w.mean((0, 1))
        else:
            bound = (torch.logsumexp(log_w, 1) - math.log(self.k)).mean(0)
        return {"loss": -bound.mean(), "bound": bound.mean()}
