"""Gaussian-visible RBM units (MDRNN's image pathway, Sohn et al. 2014 Sec. 4.2): energy, free
energy, both conditionals and the PCD gradient, against enumeration over the hidden states and the
closed-form Gaussian integral of the partition function, on tiny models."""

import math

import pytest
import torch

from mmrepro.models.components.multimodal_rbm import MultimodalRBM, all_binary_states
from mmrepro.objectives.pcd import PersistentCD
from mmrepro.objectives.rbm_gradients import set_contrastive_grads

pytestmark = pytest.mark.usefixtures("float64")   # exact comparisons (tests/conftest.py)


def rbm(sizes=(3,), visible=("gaussian",), hidden=3, std=0.5, seed=0):
    torch.manual_seed(seed)
    model = MultimodalRBM(list(sizes), hidden, init_std=std, visible=list(visible))
    with torch.no_grad():
        model.b.normal_(0, 0.5)
        model.c.normal_(0, 0.5)
    return model


def neg_energies(model, v):
    """-E(v, h) for every hidden state h (columns)."""
    h = all_binary_states(model.n_hidden, torch.float64)
    return -torch.stack([model.energy(v, hh.expand(len(v), -1)) for hh in h], 1), h


def exact_log_partition(model):
    """log Z = log sum_h int exp(-E(v, h)) dv, the Gaussian integral done in closed form:
    int exp(-|v - c|^2/2 + v.Wh) dv = (2 pi)^(V/2) exp(|c + Wh|^2/2 - |c|^2/2)."""
    h = all_binary_states(model.n_hidden, torch.float64)
    mean = model.c + h @ model.W.T
    per_h = h @ model.b + 0.5 * mean.pow(2).sum(1) - 0.5 * model.c.pow(2).sum()
    return torch.logsumexp(per_h, 0) + 0.5 * model.n_visible * math.log(2 * math.pi)


@pytest.mark.parametrize("sizes,visible", [((3,), ("gaussian",)), ((2, 2), ("gaussian", "bernoulli"))])
def test_free_energy_and_hidden_conditional_match_enumeration(sizes, visible):
    model = rbm(sizes, visible)
    torch.manual_seed(1)
    v = torch.cat([torch.randn(6, n) if unit == "gaussian" else torch.bernoulli(torch.full((6, n), 0.5))
                   for n, unit in zip(sizes, visible)], 1)
    neg_e, h = neg_energies(model, v)
    assert torch.allclose(model.free_energy(v), -torch.logsumexp(neg_e, 1), atol=1e-10)
    posterior = torch.softmax(neg_e, 1)                       # P(h | v) by enumeration
    assert torch.allclose(posterior @ h, model.hidden_probs(v), atol=1e-10)


def test_visible_conditional_is_a_unit_variance_gaussian_at_c_plus_w_h():
    model = rbm()
    h = all_binary_states(model.n_hidden, torch.float64)
    mean = model.visible_mean(h)
    assert torch.allclose(mean, model.c + h @ model.W.T)
    # -E(v, h) + |v - mean|^2 / 2 does not depend on v: the conditional is N(mean, I).
    rest = [-model.energy(v, h) + 0.5 * (v - mean).pow(2).sum(1) for v in torch.randn(3, len(h), model.n_visible)]
    assert torch.allclose(rest[0], rest[1], atol=1e-10) and torch.allclose(rest[0], rest[2], atol=1e-10)
    torch.manual_seed(2)
    draws = model.sample_visible(h[3:4].expand(200000, -1))
    assert torch.allclose(draws.mean(0), mean[3], atol=0.01) and torch.allclose(draws.var(0), torch.ones(3), atol=0.02)


def test_the_exact_partition_function_normalises_the_density():
    """A numerical check of the closed form on one visible unit: sum over a fine grid."""
    model = rbm(sizes=(1,), hidden=2)
    grid = torch.linspace(-12, 12, 24001)[:, None]
    density = torch.exp(-model.free_energy(grid) - exact_log_partition(model))
    assert float(density.sum() * (grid[1] - grid[0])) == pytest.approx(1.0, abs=1e-6)


def test_contrastive_gradient_is_the_gradient_of_the_free_energy_difference():
    """The PCD surrogate: d/dtheta [mean F(data) - mean F(negatives)], Gaussian visible bias included."""
    model = rbm(sizes=(2, 2), visible=("gaussian", "bernoulli"))
    torch.manual_seed(3)
    pos, neg = torch.randn(5, 4), torch.randn(7, 4)
    pos[:, 2:], neg[:, 2:] = pos[:, 2:].gt(0).double(), neg[:, 2:].gt(0).double()
    surrogate = model.free_energy(pos).mean() - model.free_energy(neg).mean()
    expected = torch.autograd.grad(surrogate, [model.W, model.b, model.c])
    both = torch.cat([pos, neg])
    with torch.no_grad():
        set_contrastive_grads(model, both, model.hidden_probs(both), len(pos))
    for p, g in zip([model.W, model.b, model.c], expected):
        assert torch.allclose(p.grad, g, atol=1e-10)


def test_pcd_gradient_approaches_the_exact_gaussian_rbm_gradient_with_many_chains():
    model = rbm(std=0.4)
    torch.manual_seed(4)
    data = torch.randn(20, 3) * 0.8 + 0.3
    nll = model.free_energy(data).mean() + exact_log_partition(model)
    exact = torch.autograd.grad(nll, [model.W, model.b, model.c])
    pcd = PersistentCD(gibbs_steps=50)
    chains = 40000
    pcd.reset(model, torch.randn(chains, 3))
    pcd.step(model, data.repeat(chains // 20, 1), "zeros")
    for p, g in zip([model.W, model.b, model.c], exact):
        assert torch.allclose(p.grad, g, atol=0.03), (p.grad, g)


def test_visible_units_are_checked():
    with pytest.raises(ValueError, match="one of"):
        MultimodalRBM([3], 2, visible=["poisson"])
    with pytest.raises(ValueError, match="binary visible units"):
        rbm().log_partition_exact()
