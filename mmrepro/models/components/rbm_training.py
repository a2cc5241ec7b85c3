"""The training set-up every RBM model shares (MRBMModule, MDRNNModule's pretraining and
finetuning), as the authors' code does it: SGD with momentum (a lower initial momentum for the
first epochs), lr / (1 + decay * epoch), L2 on the weights only, and the bias-only hidden-sparsity
update of Lee et al. (2008): b += lr * cost * (target - q), q a running average (damping) of the
hidden means on the data."""

from __future__ import annotations

import torch
from torch import Tensor

from mmrepro.errors import check_range
from mmrepro.models.components.multimodal_rbm import MultimodalRBM

DEFAULT_SPARSITY = {"cost": 0.0, "target": 0.2, "damping": 0.9}


def checked_optim(optim: dict, prefix: str = "optim") -> dict:
    """The optimiser config (lr, lr_decay, momentum, initial_momentum, momentum_warmup_epochs,
    weight_decay), each value checked; `prefix` names its config key in errors."""
    o = dict(optim)
    check_range(f"{prefix}.lr", o["lr"], 0, lo_inclusive=False)
    check_range(f"{prefix}.lr_decay", o["lr_decay"], 0)
    check_range(f"{prefix}.momentum", o["momentum"], 0, 1, hi_inclusive=False)
    check_range(f"{prefix}.initial_momentum", o["initial_momentum"], 0, 1, hi_inclusive=False)
    check_range(f"{prefix}.momentum_warmup_epochs", o["momentum_warmup_epochs"], 0, integer=True)
    check_range(f"{prefix}.weight_decay", o["weight_decay"], 0)
    return o


def checked_sparsity(sparsity: dict | None) -> dict:
    s = dict(sparsity or DEFAULT_SPARSITY)
    check_range("sparsity.target", s["target"], 0, 1, lo_inclusive=False, hi_inclusive=False)
    check_range("sparsity.cost", s["cost"], 0)
    check_range("sparsity.damping", s["damping"], 0, 1, hi_inclusive=False)
    return s


def sgd(blocks: list[tuple[list[Tensor], list[Tensor], float | None]], o: dict):
    """SGD with momentum over blocks of (weights, biases, lr: None for o["lr"]), L2 on the weights
    only, and its per-epoch lr / (1 + lr_decay * epoch)."""
    groups = []
    for weights, biases, lr in blocks:
        lr = o["lr"] if lr is None else lr
        groups += [{"params": weights, "weight_decay": o["weight_decay"], "lr": lr},
                   {"params": biases, "weight_decay": 0.0, "lr": lr}]
    opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["initial_momentum"])
    decay = o["lr_decay"]
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1.0 + decay * epoch))


def set_momentum(opt: torch.optim.Optimizer, o: dict, epoch: int) -> None:
    """initial_momentum for the first momentum_warmup_epochs epochs, momentum after."""
    momentum = o["initial_momentum"] if epoch < o["momentum_warmup_epochs"] else o["momentum"]
    for group in opt.param_groups:
        group["momentum"] = momentum


def sparsity_update(rbm: MultimodalRBM, average: Tensor, hidden_mean: Tensor, s: dict) -> None:
    """Fold this batch's hidden means into the running `average` (in place) and add the sparsity
    gradient cost * (q - target) to the hidden biases' gradient (SGD then adds lr * cost * (target - q))."""
    if s["cost"] == 0:
        return
    average.mul_(s["damping"]).add_(hidden_mean, alpha=1 - s["damping"])
    rbm.b.grad += s["cost"] * (average - s["target"])
