"""The training set-up shared by the RBM models (components/rbm_training.py)."""

import pytest
import torch

from mmrepro.errors import ConfigError
from mmrepro.models.components.multimodal_rbm import MultimodalRBM
from mmrepro.models.components.rbm_training import checked_optim, set_momentum, sgd, sparsity_update

OPTIM = {"lr": 0.1, "lr_decay": 0.5, "momentum": 0.9, "initial_momentum": 0.5, "momentum_warmup_epochs": 2,
         "weight_decay": 0.01}


def test_sparsity_update_moves_the_average_and_the_bias_gradient_by_the_closed_form():
    rbm = MultimodalRBM([3], 4, 0.01)
    rbm.b.grad = torch.zeros(4)
    average = torch.full((4,), 0.2)
    batch_mean = torch.tensor([0.0, 0.2, 0.6, 1.0])
    s = {"cost": 2.0, "target": 0.2, "damping": 0.9}
    sparsity_update(rbm, average, batch_mean, s)
    expected_average = 0.9 * 0.2 + 0.1 * batch_mean
    assert torch.allclose(average, expected_average)
    assert torch.allclose(rbm.b.grad, 2.0 * (expected_average - 0.2), atol=1e-6)
    # cost 0: nothing moves
    sparsity_update(rbm, average, batch_mean, {**s, "cost": 0.0})
    assert torch.allclose(average, expected_average)


def test_sgd_decays_the_lr_per_epoch_puts_l2_on_weights_only_and_warms_up_momentum():
    rbm = MultimodalRBM([3], 4, 0.01)
    other = MultimodalRBM([3], 4, 0.01)
    opt, sched = sgd([([rbm.W], [rbm.b, rbm.c], None), ([other.W], [other.b, other.c], 0.3)], OPTIM)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0, 0.01, 0.0]
    assert opt.param_groups[3]["lr"] == pytest.approx(0.3)
    for _ in range(2):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / (1 + 0.5 * 2))
    set_momentum(opt, OPTIM, 1)
    assert opt.param_groups[0]["momentum"] == 0.5
    set_momentum(opt, OPTIM, 2)
    assert opt.param_groups[1]["momentum"] == 0.9


def test_a_momentum_of_one_names_its_key():
    with pytest.raises(ConfigError, match=r"finetune\.optim\.momentum"):
        checked_optim({**OPTIM, "momentum": 1.0}, "finetune.optim")
