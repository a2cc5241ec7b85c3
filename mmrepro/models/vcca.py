"""VCCA and VCCA-private (Wang, Yan, Lee & Livescu 2016), baselines of the CMMD paper.

VCCA: the shared latent is inferred from the observed view only, q(z|x_O); every view is decoded
from it, p(x_m|z); loss = -sum_m log p(x_m|z) + beta * KL(q(z|x_O) || N(0, I)), `samples` draws of z
(the reference code: L = 5, each view's decoder with its own draw; here the draws are shared by the
views and averaged).
VCCA-private adds a private latent per view, h_m ~ q(h_m|x_m) (`private_dim`, the reference code 10),
with its own KL to N(0, I); the decoder of view m reads [z, h_m]. At test only x_O is observed: the
missing views' private latents are set to their prior mean 0.
infer(names): the shared q(z|x_O) when `names` holds the observed views (z reads x_O only); for
VCCA-private and one unobserved view m, its private q(h_m|x_m); any other set is an error. Figure 2
(Appendix E): (z|x_O) = the shared posterior, (z|x_M) = the private posterior of x_M (VCCA-private;
plain VCCA defines only the first panel).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmrepro.errors import check_range
from mmrepro.models.latent_baseline import LatentBaseline
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class VCCAModule(LatentBaseline):
    def __init__(self, modalities, samples: int = 1, **common):
        super().__init__(modalities, **common)
        self.samples = check_range("samples", samples, 1, integer=True)
        self.enc = self.encoder(self.observed)

    def infer(self, batch, names):
        if set(self.observed) <= set(names):
            return self.enc(batch)
        raise ValueError(f"{type(self).__name__} infers its shared z from {self.observed} only, not from {list(names)}")

    def collapse_posteriors(self, batch):
        return {"observed": self.enc(batch)}

    def private(self, batch: dict[str, Tensor], z: Tensor) -> dict[str, Tensor]:
        return {}

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        mu, logvar = self.enc(batch)
        z = reparameterize(mu, logvar)
        rec = sum(self.reconstruction(reparameterize(mu, logvar) if s else z, batch)
                  for s in range(self.samples)) / self.samples
        kl = kl_normal(mu, logvar)
        return {"loss": (-rec + beta * kl).mean(), "reconstruction": rec.mean(), "kl": kl.mean(), "z": z}


class VCCAPrivateModule(VCCAModule):
    def __init__(self, modalities, private_dim: int = 10, **common):
        super().__init__(modalities, **common)
        self.private_dim = check_range("private_dim", private_dim, 1, integer=True)
        self.private_encoders = nn.ModuleDict({n: self.encoder([n], self.private_dim) for n in self.names})
        self.decoders = nn.ModuleDict({n: self.decoder(n, extra=self.private_dim) for n in self.names})
        self._h: dict[str, Tensor] = {}

    def infer(self, batch, names):
        if len(names) == 1 and names[0] in self.missing:
            return self.private_encoders[names[0]](batch)
        return super().infer(batch, names)

    def collapse_posteriors(self, batch):
        private = [self.private_encoders[n](batch) for n in self.missing]
        return {"observed": self.enc(batch), "missing": tuple(torch.cat(t, 1) for t in zip(*private))}

    def decode(self, name: str, z: Tensor, batch: dict[str, Tensor]) -> Tensor:
        h = self._h.get(name)
        h = z.new_zeros(len(z), self.private_dim) if h is None or len(h) != len(z) else h
        return self.decoders[name](torch.cat([z, h], 1))

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        kl_private = 0
        self._h = {}
        for n in self.names:
            mu_h, logvar_h = self.private_encoders[n](batch)
            self._h[n] = reparameterize(mu_h, logvar_h)
            kl_private = kl_private + kl_normal(mu_h, logvar_h)
        terms = super().loss_terms(batch, beta)
        self._h = {}   # at test: private latents of unobserved views at their prior mean
        terms["loss"] = terms["loss"] + beta * kl_private.mean()
        terms["kl_private"] = kl_private.mean()
        return terms
