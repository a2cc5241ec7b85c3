"""JMVAE (Suzuki, Nakayama & Matsuo 2016): a joint multimodal VAE over every modality of the
datamodule, sized from its Modality list (MLP towers; images are flattened).

Joint encoder q(z | all modalities): one tower per modality, tops concatenated, a diagonal
Gaussian head (Sec. 4.2: towers of two 512-unit leaky-ReLU layers, 64-d latent). Decoders
p(x_m | z): three 512-unit layers each, likelihood per Modality (bernoulli / gaussian with variance
`gaussian_var` / categorical). Prior N(0, I).

Loss minimised per batch (mean over examples):
  -E_q[sum_m log p(x_m | z)] + beta_t * KL(q(z|all) || N(0, I))                (negative ELBO, Eq. 2)
  + alpha * sum_m KL(q(z|all) || q(z|x_m))          only with missing=kl       (JMVAE-kl, Eq. 4)
missing=kl trains unimodal encoders q(z|x_m) (same towers + head), used when a modality is missing;
missing=zero (JMVAE-zero) has none: a missing modality is fed to the joint encoder as zeros.
One reparameterised sample per example. Warm-up: beta_t = min(1, epoch / warmup_epochs) multiplies
the prior KL only (the official code; the paper's Nt). Adam, lr from config. Choices left open by
the paper are config values (model/jmvae.yaml); IMPLEMENTATION_NOTES.md section 2 lists where the
official code differs.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn

from mmrepro.errors import ConfigError, check_choice, check_range
from mmrepro.models.components.towers import ACTIVATIONS, Decoder, GaussianHead, mlp
from mmrepro.models.guards import check_finite_loss
from mmrepro.objectives.gaussian import kl_normal, reparameterize
from mmrepro.objectives.likelihoods import log_likelihood


class JMVAEModule(L.LightningModule):
    def __init__(self, modalities, latent_dim: int = 64, tower: tuple = (512, 512), decoder: tuple = (512, 512, 512),
                 activation: str = "leaky_relu", missing: str = "kl", alpha: float = 0.1, warmup_epochs: int = 200,
                 lr: float = 1e-3, gaussian_var: float = 1.0):
        super().__init__()
        if len(modalities) < 2:
            raise ConfigError("dataset", f"JMVAE needs at least two modalities, got {len(modalities)}")
        self.modalities = list(modalities)
        check_range("latent_dim", latent_dim, 1, integer=True)
        tower, decoder = [check_range("tower[]", t, 1, integer=True) for t in tower], list(decoder)
        if not tower:
            raise ConfigError("tower", "needs at least one layer")
        check_choice("activation", activation, ACTIVATIONS)
        self.missing = check_choice("missing", missing, ("kl", "zero"))
        self.alpha = check_range("alpha", alpha, 0)
        self.warmup_epochs = check_range("warmup_epochs", warmup_epochs, 0, integer=True)
        self.lr = check_range("lr", lr, 0, lo_inclusive=False)
        self.gaussian_var = check_range("gaussian_var", gaussian_var, 0, lo_inclusive=False)
        self.names = [m.name for m in modalities]
        self.towers = nn.ModuleDict({m.name: mlp([m.dim, *tower], activation) for m in modalities})
        self.joint_head = GaussianHead(len(modalities) * tower[-1], latent_dim)
        if self.missing == "kl":
            self.unimodal = nn.ModuleDict({m.name: nn.Sequential(mlp([m.dim, *tower], activation),
                                                                 GaussianHead(tower[-1], latent_dim)) for m in modalities})
        self.decoders = nn.ModuleDict({m.name: Decoder(latent_dim, decoder, m.shape, activation) for m in modalities})
        self.last_finite_loss = float("nan")

    # --- encoders -------------------------------------------------------------------------------
    def encode_joint(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return self.joint_head(torch.cat([self.towers[n](batch[n].flatten(1)) for n in self.names], 1))

    def encode(self, batch: dict[str, Tensor], observed: list[str]) -> tuple[Tensor, Tensor]:
        """q(z | observed modalities): the joint encoder when all are observed; otherwise the
        unimodal encoder (missing=kl, one observed modality) or the joint encoder with the missing
        ones zero-filled (missing=zero)."""
        if set(observed) == set(self.names):
            return self.encode_joint(batch)
        if self.missing == "zero":
            return self.encode_joint({n: (batch[n] if n in observed else torch.zeros_like(batch[n])) for n in self.names})
        if len(observed) != 1:
            raise ConfigError("eval", f"JMVAE-kl infers from one modality or all of them, not {observed}")
        return self.unimodal[observed[0]](batch[observed[0]].flatten(1))

    # --- objective (Eq. 4) ----------------------------------------------------------------------
    def warmup_beta(self, epoch: int) -> float:
        return 1.0 if self.warmup_epochs == 0 else min(1.0, epoch / self.warmup_epochs)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        mu, logvar = self.encode_joint(batch)
        z = reparameterize(mu, logvar)
        rec = sum(log_likelihood(m.likelihood, self.decoders[m.name](z), batch[m.name].reshape(-1, *m.shape),
                                 self.gaussian_var) for m in self.modalities)
        kl_prior = kl_normal(mu, logvar)
        loss = -rec + beta * kl_prior
        terms = {"reconstruction": rec.mean(), "kl_prior": kl_prior.mean()}
        if self.missing == "kl":
            kl_uni = sum(kl_normal(mu, logvar, *self.unimodal[n](batch[n].flatten(1))) for n in self.names)
            loss = loss + self.alpha * kl_uni
            terms["kl_unimodal"] = kl_uni.mean()
        terms["loss"] = loss.mean()
        return terms

    # --- Lightning ------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        dm = self.trainer.datamodule
        sample = dm.rows("train", 0, 1000)
        for m in self.modalities:
            x = sample[m.name]
            if m.likelihood == "bernoulli" and (x.min() < 0 or x.max() > 1):
                raise ConfigError("dataset", f"modality {m.name!r} is bernoulli but its data span "
                                  f"{float(x.min()):.3g}..{float(x.max()):.3g}, outside [0, 1]")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        terms = self.loss_terms(batch, self.warmup_beta(self.current_epoch))
        check_finite_loss(self, terms["loss"], "model.lr")
        if self.global_step % self.trainer.log_every_n_steps == 0:
            size = len(next(iter(batch.values())))
            self.log_dict({f"train/{k}": v for k, v in terms.items() if k != "loss"}, batch_size=size)
            self.log("train/loss", terms["loss"], prog_bar=True, batch_size=size)
        return terms["loss"]
