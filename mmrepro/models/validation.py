"""Lightning's validation loop: a cheap per-epoch metric on the validation split for every model,
logged as `val/*` (the MetricHistory callback, train.py, keeps each run's learning curves; loggers,
EarlyStopping and `ModelCheckpoint(monitor=...)` read the same names). Every validation draw uses a
forked RNG, so validating leaves the training stream, and therefore the trained weights, unchanged.

- every variational model: `val/loss`, its training objective (the negative bound) with the
  warm-up finished (beta = 1), per example (VariationalModule.validation_loss);
- classifiers of y (CMMD, M-xO) also: `val/error`, the error (%) of model.predict (multi-label
  data: `val/nll`, the mean summed binary cross-entropy);
- the multimodal RBM: `val/loss`, the mean-field cross-entropy of each modality given the other
  (MRBMModule.validation_step)."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from mmrepro.models.roles import label_nll


def forked_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """torch's RNG state (CPU, and the module's CUDA device) restored on exit."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def log_val(module, name: str, value: Tensor, batch_size: int) -> None:
    module.log(name, value, on_epoch=True, on_step=False, batch_size=batch_size)


class ClassifierValidation:
    """Mixed in before VariationalModule: its val/loss, then the classification error."""

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        with forked_rng(self.device):
            probs = self.predict(batch)
        y = batch[self.label.name]
        if self.label.likelihood == "categorical":
            value, name = 100.0 * (probs.argmax(1) != y).float().mean(), "val/error"
        else:
            logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6))
            value, name = label_nll(self.label, logits, batch).mean(), "val/nll"
        log_val(self, name, value, len(y))
