"""VAE (Kingma & Welling 2013) on x alone: the JMVAE paper's marginal baseline (Table 1, left).
Encoder q(z|x) and decoder p(x|z) are the JMVAE's x tower and x decoder (Sec. 4.3.1: "as close as
possible"); prior N(0, I); loss -E_q[log p(x|z)] + beta_t KL(q(z|x) || N(0, I)) (Eq. 1)."""

from __future__ import annotations

from torch import nn

from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class VAEModule(VariationalModule):
    MEMBER_HYPERPARAMETERS = ()   # batched sweeps (mmrepro/batched.py): nothing but seed and lr per member
    BOUNDS = {"log_p(x)/single": ("x", "x", False)}

    def __init__(self, modalities, **common):
        super().__init__(modalities, n_modalities=1, **common)
        self.enc = self.encoder([self.x])
        self.decoders = nn.ModuleDict({self.x: self.decoder(self.x)})

    def proposal(self, batch, observed):
        return self.enc(batch)

    def representation(self, batch):
        return reparameterize(*self.enc(batch))

    def loss_terms(self, batch, beta):
        mu, logvar = self.enc(batch)
        z = reparameterize(mu, logvar)
        rec = self.log_lik(self.x, self.decoders[self.x](z), batch[self.x])
        kl = kl_normal(mu, logvar)
        return {"loss": (-rec + beta * kl).mean(), "reconstruction": rec.mean(), "kl_prior": kl.mean(), "z": z}
