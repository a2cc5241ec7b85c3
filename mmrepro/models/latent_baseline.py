"""What the multimodal-VAE baselines of the CMMD paper share (VCCA, VCCA-private, MVAE, MMVAE,
MoPoE): a unimodal encoder q(z|x_m) and a decoder p(x_m|z) per modality from the variational
building blocks (MLP or conv towers, per-modality likelihoods, KL warm-up), an N(0, I) prior, and
what the CMMD evaluation reads: the representation of the observed modalities x_O (the mean of the
model's q(z|x_O), classified by a probe fitted on training representations; mmrepro/eval/
classification.py), x_M generated as the decoder mean at that latent (mmrepro/eval/generation.py),
and the two posteriors of Figure 2 (mmrepro/eval/collapse.py). A subclass defines
`infer(batch, names)` (the posterior given a subset of modalities) and `loss_terms`.
The label is read only to name it for evaluation; these models do not see y in training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmrepro.data.modalities import as_modality
from mmrepro.models.roles import split_roles
from mmrepro.models.variational import VariationalModule
from mmrepro.objectives.gaussian import reparameterize

SCALINGS = ("dims", "none")


def rec_weights(modalities, scaling: str) -> dict[str, float]:
    """Per-modality likelihood weights: `dims` = (largest modality size) / (size of m), the MMVAE
    code's llik_scaling and MoPoE's rec_weight (e.g. MNIST 3072/784 beside SVHN); `none` = 1."""
    if scaling == "none":
        return {}
    largest = max(m.dim for m in modalities)
    return {m.name: largest / m.dim for m in modalities}


class LatentBaseline(VariationalModule):
    def __init__(self, modalities, label=None, observed: list[str] | None = None, **common):
        super().__init__(modalities, n_modalities=0, **common)
        self.label = as_modality(label)
        self.observed, self.missing = split_roles(self.modalities, observed)
        self.names = [m.name for m in self.modalities]
        self.decoders = nn.ModuleDict({n: self.decoder(n) for n in self.names})
        self.rec_weights: dict[str, float] = {}

    def infer(self, batch: dict[str, Tensor], names: list[str]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def reconstruction(self, z: Tensor, batch: dict[str, Tensor], names: list[str] | None = None) -> Tensor:
        """sum over `names` (default: every modality) of weight_m * log p(x_m | z), per example;
        weight_m = self.rec_weights[m] (1 unless a subclass scales its likelihoods)."""
        names = self.names if names is None else names
        return sum(self.rec_weights.get(n, 1.0) * self.log_lik(n, self.decode(n, z, batch), batch[n]) for n in names)

    def latent_mean(self, batch: dict[str, Tensor]) -> Tensor:
        """The mean of the model's distribution of z given x_O (the rmse protocol,
        mmrepro/eval/generation.py, and the probe's representation)."""
        return self.infer(batch, self.observed)[0]

    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        return self.latent_mean(batch)

    def collapse_posteriors(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """Figure 2 (Appendix E): (z|x_O) = the model's posterior given x_O, (z|x_M) = its joint
        posterior given every modality (MVAE: the PoE; MMVAE: the MoE; MoPoE: the mixture's
        full-set product)."""
        return {"observed": self.infer(batch, self.observed), "missing": self.infer(batch, self.names)}

    def decoder_variance(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Figure 2's fourth panel: the learned variance (`gaussian_var: learned`) of each dimension
        of the missing Gaussian modalities, (B, D); None when the variance is fixed."""
        learned = [n for n in self.missing if self.gaussian_var == "learned" and n in self.log_var]
        if not learned:
            return None
        var = torch.cat([self.log_var[n].exp().flatten() for n in learned])
        return var.expand(len(next(iter(batch.values()))), -1)

    def generate_from(self, batch: dict[str, Tensor], given: list[str]) -> dict[str, Tensor]:
        """Coherence (MoPoE's protocol): the decoder mean of every modality not in `given` at one
        sample z ~ q(z | given)."""
        z = reparameterize(*self.infer(batch, given))
        return {n: self.mean(n, self.decode(n, z, batch)) for n in self.names if n not in given}
