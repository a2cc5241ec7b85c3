"""Posterior collapse as Mancisidor et al. measure it (Figure 2; the official posterior_collapse.py):
a latent dimension is collapsed at eps when its KL(q || p(z|x_O)) is <= eps for at least
1 - delta = 99% of the test points; the curve is the share of collapsed dimensions over an eps grid
(linspace(0, 6, 40) for the KL). The same statistic of the decoder's variance per output
dimension (grid linspace(0, 0.13, 40)) measures how many generated dimensions are (near-)deterministic.
"""

from __future__ import annotations

import numpy as np

KL_GRID = np.linspace(0, 6, 40)
VARIANCE_GRID = np.linspace(0, 0.13, 40)


def collapse_curve(values: np.ndarray, grid: np.ndarray, delta: float = 0.01) -> np.ndarray:
    """values (points, dims) -> for each eps in grid, the share of dims with values <= eps for at
    least (1 - delta) of the points."""
    below = values[None, :, :] <= grid[:, None, None]              # (eps, points, dims)
    return (below.mean(1) >= 1 - delta).mean(1)
