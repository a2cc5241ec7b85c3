"""M-xO (Mancisidor et al., Table 1-2 baseline): a classifier of y from the observed modalities x_O
alone, the reference every multimodal model must beat. An MLP on the concatenated x_O (softplus,
dropout after every hidden layer, as CMMD's networks), softmax or multi-label sigmoid output;
loss = the mean cross-entropy. The official code's cls.py uses tanh and Glorot initialisation and
trains 200 epochs; here the activation is a config value and the epochs are the trainer's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmrepro.errors import check_range
from mmrepro.models.components.towers import ConcatMLP
from mmrepro.models.roles import label_nll, label_probs, require_label, split_roles
from mmrepro.models.variational import VariationalModule


class MxOModule(VariationalModule):
    def __init__(self, modalities, label=None, observed: list[str] | None = None, hidden=(1024, 1024, 1024, 50, 50),
                 dropout: float = 0.2, activation: str = "softplus", lr: float = 1e-4):
        super().__init__(modalities, tower=hidden, activation=activation, warmup_epochs=0, lr=lr, n_modalities=0)
        self.label = require_label(label, "m_xo")
        self.observed, self.missing = split_roles(self.modalities, observed)
        self.dropout = check_range("dropout", dropout, 0, 1, hi_inclusive=False)
        self.net = ConcatMLP({n: self.by_name[n].dim for n in self.observed}, self.tower, self.label.dim,
                             self.activation, self.dropout)

    def loss_terms(self, batch: dict[str, Tensor], beta: float) -> dict[str, Tensor]:
        nll = label_nll(self.label, self.net(batch), batch)
        return {"loss": nll.mean()}

    @torch.no_grad()
    def predict(self, batch: dict[str, Tensor]) -> Tensor:
        return label_probs(self.label, self.net(batch))

    @torch.no_grad()
    def representation(self, batch: dict[str, Tensor]) -> Tensor:
        """The last hidden layer (what the output layer reads), for the t-SNE figure."""
        return self.net.body(torch.cat([batch[n].flatten(1) for n in self.net.names], 1))
