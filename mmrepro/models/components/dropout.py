"""Dropout whose mask is one uniform draw per unit (the dropout of every MLP tower, CMMD's Appendix C
included).

nn.Dropout's semantics: in training each unit is zeroed with probability p and the kept ones are
scaled by 1 / (1 - p); in evaluation it is the identity. Only the draw differs: the mask is
floor(u + 1 - p) / (1 - p) with u ~ U[0, 1) (torch's uniform_, float32's 2^-24 grid), which is
Bernoulli(1 - p) to within 2^-24. On CPU nn.Dropout draws its mask with bernoulli_, 2.4x slower
than uniform_ plus three in-place passes (measured on (18, 100, 256): 4.8 ms against 2.0 ms on 2
cores), and dropout was the largest cost of the stacked CMMD digits step after its products
(docs/measurements.md). Runs made before this module drew other masks from the same distribution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Dropout(nn.Dropout):
    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        if keep == 0:
            return x * 0.0
        with torch.no_grad():   # the mask is a constant: the gradient is grad * mask
            mask = torch.empty_like(x).uniform_().add_(keep).floor_().mul_(1.0 / keep)
        return x * mask
