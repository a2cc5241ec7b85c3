"""JMVAE (Suzuki, Nakayama & Matsuo 2016): a joint multimodal VAE over the datamodule's modalities.

Joint encoder q(z | x, w) (Sec. 4.2: a tower per modality, two 512-unit leaky-ReLU layers on MNIST,
tops concatenated into a 64-d Gaussian), decoders p(x | z), p(w | z) (three 512-unit layers;
likelihood per Modality), prior N(0, I). Loss minimised per batch (mean over examples):
  -E_q[sum_m log p(m | z)] + beta_t * KL(q(z|x,w) || N(0, I))                   (negative ELBO, Eq. 2)
  + alpha * sum_m KL(q(z|x,w) || q(z|m))                 missing=kl only       (JMVAE-kl, Eq. 4)
missing=kl trains unimodal encoders q(z|m) (same towers + head) used when a modality is missing;
missing=zero (JMVAE-zero, Sec. 3.3) has none: a missing modality enters the joint encoder as zeros
(the official code's inference; no zero-filled examples are seen in training). One reparameterised
sample per example. The warm-up beta_t multiplies the prior KL only (official code); the paper's
Nt. docs/jmvae16.md lists where the official code differs from the paper.
"""

from __future__ import annotations

from torch import Tensor, nn

from mmrepro.errors import ConfigError, check_choice, check_range
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class JMVAEModule(VariationalModule):
    MEMBER_HYPERPARAMETERS = ("alpha",)   # per member in a batched sweep (mmrepro/batched.py)
    BOUNDS = {
        "log_p(x)/multiple": ("xw", "x", False),     # Eq. 5 with q(z|x,w), IW (Eq. 10)
        "log_p(x)/single": ("x", "x", False),        # Eq. 6: q(z|x)
        "log_p(x,w)": ("xw", "xw", False),           # Table 3
        "log_p(x|w)/multiple": ("xw", "xw", True),   # Eq. 9
        "log_p(x|w)/single": ("w", "xw", True),      # Eq. 8: q(z|w)
    }

    def __init__(self, modalities, missing: str = "kl", alpha: float = 0.1, **common):
        super().__init__(modalities, n_modalities=0, **common)
        if len(self.modalities) < 2:
            raise ConfigError("dataset", f"JMVAE needs at least two modalities, got {len(self.modalities)}")
        self.missing = check_choice("missing", missing, ("kl", "zero"))
        self.alpha = check_range("alpha", alpha, 0)
        self.names = [m.name for m in self.modalities]
        self.joint = self.encoder(self.names)
        if self.missing == "kl":
            self.unimodal = nn.ModuleDict({n: self.encoder([n]) for n in self.names})
        self.decoders = nn.ModuleDict({n: self.decoder(n) for n in self.names})

    def encode(self, batch: dict[str, Tensor], observed: list[str]) -> tuple[Tensor, Tensor]:
        """q(z | observed): the joint encoder when all are observed; otherwise the unimodal encoder
        (missing=kl, one observed modality) or the joint encoder with the rest zero-filled."""
        if set(observed) == set(self.names):
            return self.joint(batch)
        if self.missing == "zero":
            return self.joint({n: batch[n] if n in observed else batch[n].new_zeros(batch[n].shape) for n in self.names})
        if len(observed) != 1:
            raise ConfigError("eval", f"JMVAE-kl infers from one modality or all of them, not {observed}")
        return self.unimodal[observed[0]](batch)

    def proposal(self, batch, observed):
        return self.encode(batch, {"x": [self.x], "w": [self.w], "xw": self.names}[observed])

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        mu, logvar = self.joint(batch)
        z = reparameterize(mu, logvar)
        rec = sum(self.log_lik(n, self.decoders[n](z), batch[n]) for n in self.names)
        kl_prior = kl_normal(mu, logvar)
        loss = -rec + beta * kl_prior
        terms = {"reconstruction": rec.mean(), "kl_prior": kl_prior.mean()}
        if self.missing == "kl":
            kl_uni = sum(kl_normal(mu, logvar, *self.unimodal[n](batch)) for n in self.names)
            loss = loss + self.alpha * kl_uni
            terms["kl_unimodal"] = kl_uni.mean()
        terms["loss"] = loss.mean()
        terms["z"] = z
        return terms

    def generate(self, batch):
        mu, logvar = self.encode(batch, [self.w])
        return self.mean(self.x, self.decoders[self.x](reparameterize(mu, logvar)))
