"""MMVAE (Shi, Siddharth, Paige & Torr 2019), a baseline of the CMMD paper: the joint posterior is the
uniform mixture of the unimodal experts, q(z|X) = (1/M) sum_m q(z|x_m), trained by stratified
sampling, K draws from each expert:
  log w_{r,k} = log p(z_rk) + sum_d log p(x_d | z_rk) - log q(z_rk | X),   z_rk ~ q(z | x_r)
  objective `elbo`: mean over r, k of log w (the mixture's ELBO);
  objective `iwae`: mean over r of log-mean-exp over k (the code's "looser" IWAE, its README's choice;
  the CMMD paper's MMVAE-IWAE uses k = 10).
At k = 1 the two coincide. The reference code uses Laplace posteriors and likelihoods and the DReG
gradient; here Gaussians (the tree's likelihoods) and the plain reparameterised gradient.
Likelihood scaling (`likelihood_scaling`): `dims` (default, the reference code's llik_scaling, e.g.
MNIST x 3072/784 beside SVHN) weighs log p(x_m|z) by (largest modality size) / (size of m) in
training; `none` weighs every modality 1.
The posterior of a subset S of two or more modalities (`subset_posterior`, read by the latent
subsets, coherence and Figure 2): `sample` (default, Shi's and MoPoE's code): each example's
posterior is one mixture component q(z|x_m), m drawn uniformly from S; `moment`: the mixture's
moment-matched Gaussian. The representation of x_O (and where x_M is generated) is the mixture's
mean, which both share.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrepro.errors import check_choice, check_range
from mmrepro.models.latent_baseline import SCALINGS, LatentBaseline, rec_weights
from mmrepro.objectives.experts import log_mixture
from mmrepro.objectives.gaussian import log_normal


class MMVAEModule(LatentBaseline):
    def __init__(self, modalities, objective: str = "iwae", k: int = 10, subset_posterior: str = "sample",
                 likelihood_scaling: str = "dims", **common):
        super().__init__(modalities, **common)
        self.objective = check_choice("objective", objective, ("elbo", "iwae"))
        self.k = check_range("k", k, 1, integer=True)
        self.subset_posterior = check_choice("subset_posterior", subset_posterior, ("sample", "moment"))
        self.likelihood_scaling = check_choice("likelihood_scaling", likelihood_scaling, SCALINGS)
        self.rec_weights = rec_weights(self.modalities, likelihood_scaling)
        self.experts = nn.ModuleDict({n: self.encoder([n]) for n in self.names})

    def infer(self, batch, names):
        mus, logvars = (torch.stack(t) for t in zip(*(self.experts[n](batch) for n in names)))
        if len(names) == 1:
            return mus[0], logvars[0]
        if self.subset_posterior == "moment":
            return mus.mean(0), torch.log(logvars.exp().mean(0) + mus.var(0, unbiased=False))
        pick = torch.randint(len(names), (mus.shape[1],), device=mus.device)
        rows = torch.arange(mus.shape[1], device=mus.device)
        return mus[pick, rows], logvars[pick, rows]

    def latent_mean(self, batch):
        return torch.stack([self.experts[n](batch)[0] for n in self.observed]).mean(0)

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
