"""One generation protocol for the rmse of every model (Mancisidor et al. Tables 1-2, 6): each
missing modality x_m is generated as the decoder mean at the mean of the model's distribution of z
given x_O (model.latent_mean: CMMD the mean of p(z|x_O), as the official draw_x2; VCCA, MVAE, MoPoE
the mean of q(z|x_O); MMVAE the mean of its mixture over x_O's experts). No model generates x_M its
own way, so every row of a table is measured the same way. CMMD's sampled-z generation
(model.generate_sampled, z ~ p(z|x_O)) is an extra column, not this protocol."""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def generate_missing(model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """{missing modality: decoder mean at z = model.latent_mean(batch)}, each (B, *shape)."""
    z = model.latent_mean(batch)
    return {n: model.mean(n, model.decode(n, z, batch)) for n in model.missing}


def can_generate(model) -> bool:
    return hasattr(model, "latent_mean") and hasattr(model, "decode") and bool(getattr(model, "missing", None))
