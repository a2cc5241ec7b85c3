"""Checks shared by every LightningModule's training step."""

from __future__ import annotations

import math

from torch import Tensor

from mmrepro.errors import TrainingDiverged


def check_finite_loss(module, loss: Tensor, lr_key: str) -> float:
    """Stop the run with the step and the last finite loss when the loss becomes NaN or infinite.
    Keeps the last finite value on module.last_finite_loss."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"training loss became {value} at step {module.global_step} (epoch {module.current_epoch}); "
            f"last finite loss {module.last_finite_loss:.6g}; lower {lr_key}")
    module.last_finite_loss = value
    return value
