"""Posterior collapse as Mancisidor et al. measure it (Figure 2, Appendix E; the official
posterior_collapse.py): a latent dimension is collapsed at eps when its KL is <= eps for at least
1 - delta = 99% of the test points; the curve is the share of collapsed dimensions over an eps grid
(linspace(0, 6, 40)). Three KL panels, per model from model.collapse_posteriors(batch):

  1. KL[(z|x_O) || N(0, 1)]      2. KL[(z|x_M) || N(0, 1)]      3. KL[(z|x_O) || (z|x_M)]

with (z|x_O) / (z|x_M): CMMD the prior p(z|x_O) / the inference posterior q(z|x_O,x_M,y); MVAE its
PoE posterior given x_O / given every modality; MMVAE its MoE posterior given x_O / given every
modality; VCCA-private the shared q(z|x_O) / the private q(h_M|x_M) (Appendix E). Panel 3 needs both
latents of one size (VCCA-private: private_dim = latent_dim); plain VCCA has no (z|x_M). A fourth
panel: the same statistic of the decoder's variance per generated dimension (grid linspace(0, 0.13,
40)), for models whose Gaussian decoder variance is learned (model.decoder_variance)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mmrepro.objectives.gaussian import kl_normal_per_dim

KL_GRID = np.linspace(0, 6, 40)
VARIANCE_GRID = np.linspace(0, 0.13, 40)
PANELS = {"kl_observed_prior": "KL[(z|x_O) ‖ N(0, 1)]", "kl_missing_prior": "KL[(z|x_M) ‖ N(0, 1)]",
          "kl_observed_missing": "KL[(z|x_O) ‖ (z|x_M)]", "decoder_var": "decoder variance of x_M"}


def collapse_curve(values: np.ndarray, grid: np.ndarray, delta: float = 0.01) -> np.ndarray:
    """values (points, dims) -> for each eps in grid, the share of dims with values <= eps for at
    least (1 - delta) of the points."""
    below = values[None, :, :] <= grid[:, None, None]              # (eps, points, dims)
    return (below.mean(1) >= 1 - delta).mean(1)


@torch.no_grad()
def collapse_statistics(model, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The per-point, per-dimension values behind each panel the model defines."""
    post = model.collapse_posteriors(batch)
    out = {"kl_observed_prior": kl_normal_per_dim(*post["observed"])}
    if post.get("missing") is not None:
        out["kl_missing_prior"] = kl_normal_per_dim(*post["missing"])
        if post["missing"][0].shape == post["observed"][0].shape:
            out["kl_observed_missing"] = kl_normal_per_dim(*post["observed"], *post["missing"])
    var = model.decoder_variance(batch) if hasattr(model, "decoder_variance") else None
    if var is not None:
        out["decoder_var"] = var
    return out
