"""MVAE (Wu & Goodman 2018), a baseline of the CMMD paper: the posterior of any subset X of the
modalities is the product of their unimodal Gaussian experts and an N(0, I) prior expert
(mmrepro/objectives/experts.py). Loss = the sum of the negative ELBOs of the joint subset and of
each single modality (the reference code's "sub-sampled" objective, multimodal-vae-public
mnist/train.py; with more than two modalities the code adds random subsets, not reproduced):

  ELBO(X) = sum_{m in X} log p(x_m | z_X) - beta * KL(q(z|X) || N(0, I)),   z_X ~ q(z|X)

Each ELBO reconstructs only the modalities in X (the code's image-only term passes no label), so a
single-modality ELBO trains no cross-generation.
"""

from __future__ import annotations

from torch import Tensor, nn

from mmrepro.models.latent_baseline import LatentBaseline
from mmrepro.objectives.experts import product_of_experts
from mmrepro.objectives.gaussian import kl_normal, reparameterize


class MVAEModule(LatentBaseline):
    def __init__(self, modalities, **common):
        super().__init__(modalities, **common)
        self.experts = nn.ModuleDict({n: self.encoder([n]) for n in self.names})

    def infer(self, batch, names):
        mus, logvars = zip(*(self.experts[n](batch) for n in names))
        return product_of_experts(list(mus), list(logvars))

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        total, terms = 0, {}
        for subset in [self.names] + [[n] for n in self.names]:
            mu, logvar = self.infer(batch, subset)
            z = reparameterize(mu, logvar)
            elbo = self.reconstruction(z, batch, subset) - beta * kl_normal(mu, logvar)
            total = total - elbo
            terms[f"elbo/{'+'.join(subset)}"] = elbo.mean()
            terms.setdefault("z", z)
        return {"loss": total.mean(), **terms}
