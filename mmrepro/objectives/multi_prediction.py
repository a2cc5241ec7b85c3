"""MinVI training of the MRBM by multi-prediction (Sohn et al. 2014, Sec. 3.2, Eq. 9).

For each direction (predict y from x, and x from y) a subset s of the target modality's units is
drawn, each unit independently with probability `predict_ratio` (paper: 1, i.e. all of them); the
rest of the target stays clamped to the data. The mean-field recurrent network of Eq. 9
(MultimodalRBM.mean_field) is unrolled for T = `mf_iters` iterations and the cross-entropy of its
prediction of y_s is backpropagated through it (all iterations: paper; the last `bptt_steps`
only: authors' code). The two directions' losses are averaged (the code's weighting; Eq. 2 sums
them, i.e. the same with the learning rate doubled). Loss per direction: summed over predicted
units, averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrepro.errors import check_range


class MultiPrediction(nn.Module):
    def __init__(self, mf_iters: int = 10, predict_ratio: float = 1.0, bptt_steps: int | None = None,
                 resample_inputs: bool = False):
        super().__init__()
        self.mf_iters = check_range("objective.mf_iters", mf_iters, 1, integer=True)
        self.predict_ratio = check_range("objective.predict_ratio", predict_ratio, 0, 1, lo_inclusive=False)
        if bptt_steps is not None:
            check_range("objective.bptt_steps", bptt_steps, 1, mf_iters, integer=True)
        self.bptt_steps = bptt_steps
        self.resample_inputs = bool(resample_inputs)

    def sample_keep_masks(self, rbm, v: Tensor) -> list[Tensor | None]:
        """Per direction, the 0/1 mask of target units kept clamped (None: all are predicted)."""
        if self.predict_ratio == 1.0:
            return [None, None]
        return [(torch.rand(*v.shape[:-1], size, device=v.device) >= self.predict_ratio).to(v.dtype)
                for size in rbm.sizes]

    def loss(self, rbm, v: Tensor, init: str, keeps: list[Tensor | None]) -> tuple[Tensor, Tensor]:
        """Mean over directions of the cross-entropy of the predicted units; also mean hidden h
        (per member, for stacked members)."""
        losses, hidden = [], []
        for target in (0, 1):
            keep = keeps[target]
            h, logits = rbm.mean_field(v, target, self.mf_iters, init, keep=keep, bptt_steps=self.bptt_steps)
            bce = F.binary_cross_entropy_with_logits(logits, v[..., rbm.slices[target]], reduction="none")
            if keep is not None:
                bce = bce * (1 - keep)
            losses.append(bce.sum(-1).mean(-1))
            hidden.append(h.mean(-2))
        return torch.stack(losses).mean(0), torch.stack(hidden).mean(0)

    def step(self, rbm, v: Tensor, init: str) -> dict:
        loss, hidden_mean = self.loss(rbm, v, init, self.sample_keep_masks(rbm, v))
        params = [rbm.W, rbm.b, rbm.c]
        # Stacked members (loss per member): the sum gives each member its own gradient.
        for p, g in zip(params, torch.autograd.grad(loss.sum(), params)):
            p.grad = g
        return {"loss": loss.detach(), "hidden_mean": hidden_mean.detach()}
