"""What the multimodal-VAE baselines of the CMMD paper share (VCCA, VCCA-private, MVAE, MMVAE,
MoPoE): a unimodal encoder q(z|x_m) and a decoder p(x_m|z) per modality from the variational
building blocks (MLP or conv towers, per-modality likelihoods, KL warm-up), an N(0, I) prior, and
what the CMMD evaluation reads: the representation of the observed modalities x_O (the mean of the
model's q(z|x_O), classified by a probe fitted on training representations; mmrepro/eval/
classification.py) and x_M generated as the decoder mean at that latent. A subclass defines
`infer(batch, names)` (the posterior given a subset of modalities) and `loss_terms`.
The label is read only to name it for evaluation; these models do not see y in training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmrepro.models.roles import split_roles
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import reparameterize


class LatentBaseline(VariationalModule):
    def __init__(self, modalities, label=None, observed: list[str] | None = None, **common):
        super().__init__(modalities, n_modalities=0, **common)
        self.label = label
        self.observed, self.missing = split_roles(self.modalities, observed)
        self.names = [m.name for m in self.modalities]
        self.decoders = nn.ModuleDict({n: self.decoder(n) for n in self.names})

    def infer(self, batch: dict[str, Tensor], names: list[str]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def reconstruction(self, z: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """sum over all modalities of log p(x_m | z), per example."""
        return sum(self.log_lik(n, self.decode(n, z, batch), batch[n]) for n in self.names)

    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        return self.infer(batch, self.observed)[0]

    def generate_missing(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        z = self.representation(batch)
        return {n: self.mean(n, self.decode(n, z, batch)) for n in self.missing}

    def collapse_statistics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Figure 2 for the baselines: KL(q(z | every modality the model encodes) || N(0, I)) per
        latent dimension (B, d) (MMVAE: its mixture's moment-matched Gaussian, from infer()) and,
        for `gaussian_var: learned`, the decoder variance of the missing Gaussian modalities."""
        mu, logvar = self.infer(batch, self.names)
        out = {"kl_per_dim": 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)}
        learned = [n for n in self.missing if self.gaussian_var == "learned" and n in self.log_var]
        if learned:
            var = torch.cat([self.log_var[n].exp().flatten() for n in learned])
            out["decoder_var"] = var.expand(len(mu), -1)
        return out

    def generate_from(self, batch: dict[str, Tensor], given: list[str]) -> dict[str, Tensor]:
        """Coherence (MoPoE's protocol): the decoder mean of every modality not in `given` at one
        sample z ~ q(z | given)."""
        z = reparameterize(*self.infer(batch, given))
        return {n: self.mean(n, self.decode(n, z, batch)) for n in self.names if n not in given}
