"""Lightning's validation loop for the models that classify y (CMMD, M-xO): each epoch, the error (%)
of model.predict on the validation split (multi-label data: the mean summed binary cross-entropy),
logged as `val/error` (`val/nll`) per epoch, which the MetricHistory callback (train.py) keeps as the
run's learning curve. The validation draws (CMMD's z ~ p(z|x_O)) use a forked RNG, so validating
leaves the training stream, and therefore the trained weights, unchanged."""

from __future__ import annotations

import torch
from torch import Tensor

from mmrepro.models.roles import label_nll


class ClassifierValidation:
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            probs = self.predict(batch)
        y = batch[self.label.name]
        if self.label.likelihood == "categorical":
            value, name = 100.0 * (probs.argmax(1) != y).float().mean(), "val/error"
        else:
            logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6))
            value, name = label_nll(self.label, logits, batch).mean(), "val/nll"
        self.log(name, value, on_epoch=True, on_step=False, batch_size=len(y))
