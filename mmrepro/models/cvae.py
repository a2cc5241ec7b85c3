"""CVAE (Kingma et al. 2014; Sohn et al. 2015): p(x|w) = int p(x|z,w) p(z) dz, the JMVAE paper's
conditional baseline (Table 1, right). Encoder q(z|x,w) = the JMVAE joint encoder; decoder p(x|z,w) =
the x decoder fed [z, w]. Loss: -E_q[log p(x|z,w)] + beta_t KL(q(z|x,w) || prior).

`prior`: `standard` (default) = N(0, I), Kingma et al.'s M2 and the CVAE Suzuki et al. describe, whose
"latent variable does not contain the information of a conditioned modality" (Figure 3's argument);
`conditional` = a learned p(z|w) (a w tower + Gaussian head; Sohn et al. 2015's conditional prior).
Its IW estimate of log p(x|w) uses q(z|x,w) (the paper: "CVAEs and CMMAs use a multiple lower bound")
and the prior above."""

from __future__ import annotations

import torch
from torch import nn

from mmrepro.errors import check_choice
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class CVAEModule(VariationalModule):
    MEMBER_HYPERPARAMETERS = ()
    BOUNDS = {"log_p(x|w)/multiple": ("xw", "x", False)}

    def __init__(self, modalities, prior: str = "standard", **common):
        super().__init__(modalities, **common)
        self.prior_kind = check_choice("prior", prior, ("standard", "conditional"))
        self.enc = self.encoder([self.x, self.w])
        if self.prior_kind == "conditional":
            self.prior_net = self.encoder([self.w])
        self.decoders = nn.ModuleDict({self.x: self.decoder(self.x, condition=self.w)})

    def proposal(self, batch, observed):
        return self.enc(batch)

    def prior(self, batch):
        return self.prior_net(batch) if self.prior_kind == "conditional" else super().prior(batch)

    def decode(self, name, z, batch):
        return self.decoders[name](torch.cat([z, batch[self.w].flatten(1).to(z.dtype)], 1))

    def loss_terms(self, batch, beta):
        mu, logvar = self.enc(batch)
        z = reparameterize(mu, logvar)
        rec = self.log_lik(self.x, self.decode(self.x, z, batch), batch[self.x])
        kl = kl_normal(mu, logvar, *self.prior(batch))
        return {"loss": (-rec + beta * kl).mean(), "reconstruction": rec.mean(), "kl_prior": kl.mean(), "z": z}

    def generate(self, batch):
        z = reparameterize(*self.prior(batch))
        return self.mean(self.x, self.decode(self.x, z, batch))
