"""CMMA, the conditional multimodal autoencoder (Pandey & Dukkipati 2016) as the JMVAE paper
describes it: the latent is generated from the condition, p(z|w), and "the latent representation
from an input" is forced close to "the joint representation from multiple inputs". Encoder
q(z|x,w) (the JMVAE joint encoder), prior network p(z|w), decoder p(x|z) (no w: unlike the CVAE,
z carries the condition's information).

variant=paper (default): loss -E_q[log p(x|z)] + beta_t KL(q(z|x,w) || p(z|w)).
variant=tars (the JMVAE authors' Tars v0.0.2 cmma.py): -E_q[log p(x|z)] + beta_t KL(q || N(0, I))
  + KL(q || p(z|w)), only the N(0, I) term warmed up.
encoder=xw (default, as the JMVAE paper describes CMMA) or x (q(z|x); the Tars script that built
the paper's CMMA is not published; docs/jmvae16.md). IW estimate of log p(x|w): the
multiple bound with proposal q(z|x,w) (or q(z|x)), weight p(x|z) p(z|w) / q.
"""

from __future__ import annotations

from torch import nn

from mmrepro.errors import check_choice
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class CMMAModule(VariationalModule):
    MEMBER_HYPERPARAMETERS = ()
    BOUNDS = {"log_p(x|w)/multiple": ("xw", "x", False)}

    def __init__(self, modalities, variant: str = "paper", encoder: str = "xw", **common):
        super().__init__(modalities, **common)
        self.variant = check_choice("variant", variant, ("paper", "tars"))
        self.encoder_inputs = check_choice("encoder", encoder, ("xw", "x"))
        self.enc = self.encoder([self.x, self.w] if encoder == "xw" else [self.x])
        self.prior_net = self.encoder([self.w])
        self.decoders = nn.ModuleDict({self.x: self.decoder(self.x)})

    def proposal(self, batch, observed):
        return self.enc(batch)

    def prior(self, batch):
        return self.prior_net(batch)

    def loss_terms(self, batch, beta):
        mu, logvar = self.enc(batch)
        z = reparameterize(mu, logvar)
        rec = self.log_lik(self.x, self.decoders[self.x](z), batch[self.x])
        kl_cond = kl_normal(mu, logvar, *self.prior_net(batch))
        terms = {"reconstruction": rec.mean(), "kl_conditional_prior": kl_cond.mean(), "z": z}
        if self.variant == "paper":
            loss = -rec + beta * kl_cond
        else:
            kl_std = kl_normal(mu, logvar)
            loss = -rec + beta * kl_std + kl_cond
            terms["kl_prior"] = kl_std.mean()
        terms["loss"] = loss.mean()
        return terms

    def generate(self, batch):
        return self.mean(self.x, self.decoders[self.x](reparameterize(*self.prior_net(batch))))
