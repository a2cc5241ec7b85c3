"""M-xO (Mancisidor et al., Tables 1-3 baseline): a classifier of y from the observed modalities x_O
alone, the reference every multimodal model must beat. The paper says only "a classifier model M-xO
that only uses the always available modality" (its Table 2 values are quoted from Wang et al.), so
the authors' own code defines it. `variant`:

- `authors` (default): the official code's M-xO (train_cmmd.py "train model M-x0": cls.py's
  CLS(x1, hdim_cls=[70, 70], nlayers=2)): two tanh layers of 70, no dropout, softmax output; every
  weight (output layer included) uniform in +-sqrt(2 / (fan_in + fan_out)) (cls.py's "glorot"
  branch, which is narrower than PyTorch's xavier_uniform_), biases 0; loss = the cross-entropy
  summed over the batch (cls_cost); Adam 1e-4; 200 epochs (the experiment configs).
- `cmmd_path`: CMMD's prior network followed by its classifier (`hidden`: the prior's sizes then the
  classifier's), softplus, dropout after every hidden layer, PyTorch's default initialisation, mean
  cross-entropy: the path CMMD's prediction takes, without the latent. Ours, not a paper's.

Multi-label data (MIR-Flickr): sigmoid outputs and the summed binary cross-entropy (the paper's
Flickr classifier; the official code has softmax only).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mmrepro.errors import ConfigError, check_choice
from mmrepro.models.components.towers import ConcatMLP
from mmrepro.models.roles import label_nll, label_probs, require_label, split_roles
from mmrepro.models.validation import ClassifierValidation
from mmrepro.models.variational import VariationalModule

VARIANTS = {
    # variant: (hidden, activation, dropout, initialisation, batch reduction of the cross-entropy)
    "authors": ((70, 70), "tanh", 0.0, "authors_glorot", "sum"),
    "cmmd_path": (None, "softplus", 0.2, "default", "mean"),
}


def authors_glorot_(net: nn.Module) -> None:
    """cls.py's initialisation: W ~ U(-sqrt(2/(n_in+n_out)), +sqrt(2/(n_in+n_out))), b = 0."""
    for layer in net.modules():
        if isinstance(layer, nn.Linear):
            bound = math.sqrt(2.0 / (layer.in_features + layer.out_features))
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)


class MxOModule(ClassifierValidation, VariationalModule):
    MEMBER_HYPERPARAMETERS = ()
    def __init__(self, modalities, label=None, observed: list[str] | None = None, variant: str = "authors",
                 hidden: list[int] | None = None, lr: float = 1e-4):
        check_choice("variant", variant, tuple(VARIANTS))
        default_hidden, activation, dropout, init, reduction = VARIANTS[variant]
        if variant == "authors" and hidden is not None:
            raise ConfigError("hidden", "is fixed by variant=authors (2 x 70, the official cls.py); "
                              "allowed: hidden=null, or variant=cmmd_path with CMMD's prior + classifier sizes")
        if variant == "cmmd_path" and not hidden:
            raise ConfigError("hidden", "variant=cmmd_path needs CMMD's prior sizes followed by its classifier sizes")
        super().__init__(modalities, tower=list(hidden or default_hidden), activation=activation, warmup_epochs=0,
                         lr=lr, n_modalities=0)
        self.variant = variant
        self.label = require_label(label, "m_xo")
        self.observed, self.missing = split_roles(self.modalities, observed)
        self.dropout, self.reduction = dropout, reduction
        self.net = ConcatMLP({n: self.by_name[n].dim for n in self.observed}, self.tower, self.label.dim,
                             self.activation, self.dropout)
        if init == "authors_glorot":
            authors_glorot_(self.net)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        nll = label_nll(self.label, self.net(batch), batch)
        return {"loss": nll.sum() if self.reduction == "sum" else nll.mean(), "classification": nll.mean()}

    def validation_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Per example, whatever the training loss's batch reduction (the authors' sums)."""
        return label_nll(self.label, self.net(batch), batch).mean()

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        return label_probs(self.label, self.net(batch))

    @torch.no_grad()
    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        """The last hidden layer (what the output layer reads), for the t-SNE figure."""
        return self.net.body(torch.cat([batch[n].flatten(1) for n in self.net.names], 1))
