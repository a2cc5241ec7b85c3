"""The towers' dropout (mmrepro/models/components/dropout.py): nn.Dropout's semantics with a mask
drawn from one uniform per unit."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmrepro.bench import experiment_module
from mmrepro.models.components.dropout import Dropout


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_the_mask_zeroes_units_with_probability_p_and_scales_the_kept_ones_by_one_over_keep(p):
    torch.manual_seed(0)
    n = 400_000
    x = torch.rand(n) + 0.5          # no zero in the input: a zero in the output is a dropped unit
    y = Dropout(p).train()(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n), (dropped, p)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=2e-7, atol=0)


def test_the_gradient_is_the_mask_and_evaluation_is_the_identity():
    torch.manual_seed(1)
    drop = Dropout(0.3).train()
    x = (torch.rand(64, 32) + 0.5).requires_grad_()
    g = torch.randn(64, 32)
    y = drop(x)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(y != 0, g / 0.7, 0.0))
    assert drop.eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))


def test_the_mask_is_the_seeded_generators_and_does_not_depend_on_the_input():
    drop = Dropout(0.5).train()
    torch.manual_seed(2)
    a = drop(torch.ones(1000)) == 0
    torch.manual_seed(2)
    b = drop(torch.full((1000,), 3.0)) == 0
    torch.manual_seed(3)
    c = drop(torch.ones(1000)) == 0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_every_tower_drops_out_with_it():
    """One dropout in the project: CMMD's MLP towers (Appendix C) and the MNIST-SVHN-Text networks."""
    for experiment in ("cmmd_digits", "cmmd_mnist3_x1"):
        module = experiment_module(experiment)
        kinds = {type(m) for m in module.modules() if isinstance(m, nn.Dropout)}
        assert kinds == {Dropout}, (experiment, kinds)
