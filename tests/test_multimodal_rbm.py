"""The MRBM's energy model, its gradient estimators and its mean-field inference, checked against
enumeration, closed forms and finite differences on tiny models."""

import itertools

import pytest
import torch

from mmrepro.models.components.multimodal_rbm import MultimodalRBM, all_binary_states
from mmrepro.objectives.cd_percloss import CDPercLoss, select_lowest_free_energy
from mmrepro.objectives.multi_prediction import MultiPrediction
from mmrepro.objectives.pcd import PersistentCD

pytestmark = pytest.mark.usefixtures("float64")   # exact comparisons (tests/conftest.py)


def tiny_rbm(sizes=(3, 2), hidden=3, std=0.8, seed=0):
    torch.manual_seed(seed)
    rbm = MultimodalRBM(list(sizes), hidden, init_std=std)
    with torch.no_grad():
        rbm.b.normal_(0, 0.5)
        rbm.c.normal_(0, 0.5)
    return rbm


def exact_log_joint(rbm):
    """log P(v) for every visible state, by enumerating hidden AND visible states (Eq. 5)."""
    v = all_binary_states(rbm.n_visible, torch.float64)
    h = all_binary_states(rbm.n_hidden, torch.float64)
    neg_e = -torch.stack([rbm.energy(v, hh.expand(len(v), -1)) for hh in h], 1)  # (2^V, 2^K)
    log_unnorm = torch.logsumexp(neg_e, 1)
    return v, log_unnorm - torch.logsumexp(log_unnorm, 0)


def test_free_energy_matches_enumeration_over_hidden_states():
    rbm = tiny_rbm()
    v = all_binary_states(rbm.n_visible, torch.float64)
    h = all_binary_states(rbm.n_hidden, torch.float64)
    neg_e = -torch.stack([rbm.energy(v, hh.expand(len(v), -1)) for hh in h], 1)
    assert torch.allclose(rbm.free_energy(v), -torch.logsumexp(neg_e, 1), atol=1e-10)


def test_exact_log_likelihood_normalises_and_matches_partition_function():
    rbm = tiny_rbm()
    v, log_p = exact_log_joint(rbm)
    assert torch.logsumexp(log_p, 0).abs() < 1e-10
    assert torch.allclose(-rbm.free_energy(v) - rbm.log_partition_exact(), log_p, atol=1e-10)


def test_pcd_data_term_equals_exact_expectation_over_hidden_states():
    rbm = tiny_rbm()
    torch.manual_seed(1)
    v = torch.bernoulli(torch.full((7, rbm.n_visible), 0.5))
    pcd = PersistentCD()
    pcd.reset(rbm, v)
    pcd.step(rbm, v, "zeros")
    # E_data E_{P(h|v)}[v h^T] by enumerating h with its exact posterior weight.
    h = all_binary_states(rbm.n_hidden, torch.float64)
    neg_e = -torch.stack([rbm.energy(v, hh.expand(len(v), -1)) for hh in h], 1)
    post = torch.softmax(neg_e, 1)  # P(h | v)
    data_term = torch.einsum("bi,bh,hk->ik", v, post, h) / len(v)
    # The data term is what remains of the gradient when the negative particles equal the data.
    from mmrepro.objectives.rbm_gradients import set_contrastive_grads
    zero_v, zero_h = torch.zeros(1, rbm.n_visible), torch.zeros(1, rbm.n_hidden)
    set_contrastive_grads(rbm, torch.cat([v, zero_v]), torch.cat([rbm.hidden_probs(v), zero_h]), len(v))
    assert torch.allclose(-rbm.W.grad, data_term, atol=1e-10)


def test_pcd_gradient_approaches_exact_log_likelihood_gradient_with_many_chains():
    rbm = tiny_rbm(std=0.5)
    torch.manual_seed(2)
    v_data = torch.bernoulli(torch.full((20, rbm.n_visible), 0.3))
    # Exact gradient of the mean negative log-likelihood, by autograd through enumeration.
    nll = (rbm.free_energy(v_data).mean() + rbm.log_partition_exact())
    exact = torch.autograd.grad(nll, [rbm.W, rbm.b, rbm.c])
    pcd = PersistentCD(gibbs_steps=50)
    chains = 40000
    pcd.reset(rbm, torch.bernoulli(torch.full((chains, rbm.n_visible), 0.5)))
    # Data term uses v_data; the negative term uses the (burnt-in) chains: repeat v_data to match.
    pcd.step(rbm, v_data.repeat(chains // 20, 1), "zeros")
    for g_exact, p in zip(exact, [rbm.W, rbm.b, rbm.c]):
        assert torch.allclose(p.grad, g_exact, atol=0.02), (p.grad, g_exact)


def test_mean_field_result_is_a_fixed_point_of_eq8():
    rbm = tiny_rbm(sizes=(6, 5), hidden=4, std=0.3)
    v = torch.bernoulli(torch.full((8, 11), 0.5))
    for target in (0, 1):
        for init in ("zeros", "doubled"):
            h, logits = rbm.mean_field(v, target, iters=500, init=init, tol=1e-14)
            y = torch.sigmoid(logits)
            so, st = rbm.slices[1 - target], rbm.slices[target]
            assert torch.allclose(h, torch.sigmoid(v[:, so] @ rbm.W[so] + y @ rbm.W[st] + rbm.b), atol=1e-8)
            assert torch.allclose(y, torch.sigmoid(h @ rbm.W[st].T + rbm.c[st]), atol=1e-8)


def test_mean_field_ignores_the_missing_modality_values():
    rbm = tiny_rbm(sizes=(4, 4), hidden=5)
    v = torch.bernoulli(torch.full((3, 8), 0.5))
    other = v.clone()
    other[:, 4:] = 1 - other[:, 4:]
    assert torch.equal(rbm.mean_field(v, 1, 5)[0], rbm.mean_field(other, 1, 5)[0])


@pytest.mark.parametrize("ratio,bptt", [(1.0, None), (0.5, None), (1.0, 2)])
def test_multi_prediction_gradient_matches_finite_differences(ratio, bptt):
    rbm = tiny_rbm(sizes=(4, 3), hidden=5, std=0.5)
    mp = MultiPrediction(mf_iters=4, predict_ratio=ratio, bptt_steps=bptt)
    torch.manual_seed(3)
    v = torch.rand(6, 7)
    keeps = mp.sample_keep_masks(rbm, v)

    if bptt is None:
        params = [rbm.W, rbm.b, rbm.c]
        grads = torch.autograd.grad(mp.loss(rbm, v, "zeros", keeps)[0], params)
        eps = 1e-6
        with torch.no_grad():
            for p, g in zip(params, grads):
                flat, gflat = p.view(-1), g.reshape(-1)
                for i in range(flat.numel()):
                    old = flat[i].item()
                    flat[i] = old + eps
                    up = mp.loss(rbm, v, "zeros", keeps)[0]
                    flat[i] = old - eps
                    down = mp.loss(rbm, v, "zeros", keeps)[0]
                    flat[i] = old
                    assert abs((up - down) / (2 * eps) - gflat[i]) < 1e-6
    else:  # truncated BPTT is deliberately not the full gradient: it must differ from it
        full = MultiPrediction(mf_iters=4, predict_ratio=ratio)
        rbm2 = tiny_rbm(sizes=(4, 3), hidden=5, std=0.5)
        g_trunc = torch.autograd.grad(mp.loss(rbm2, v, "zeros", keeps)[0], rbm2.W)[0]
        g_full = torch.autograd.grad(full.loss(rbm2, v, "zeros", keeps)[0], rbm2.W)[0]
        assert not torch.allclose(g_trunc, g_full)


def test_multi_prediction_step_writes_the_autograd_gradient():
    rbm = tiny_rbm(sizes=(4, 3), hidden=5)
    mp = MultiPrediction(mf_iters=3)
    v = torch.rand(5, 7)
    out = mp.step(rbm, v, "zeros")
    expected = torch.autograd.grad(mp.loss(rbm, v, "zeros", [None, None])[0], rbm.W)[0]
    assert torch.allclose(rbm.W.grad, expected)
    assert out["loss"] > 0


def test_select_lowest_free_energy_picks_the_argmin_particle():
    particles = torch.arange(3 * 4 * 2, dtype=torch.float64).view(3, 4, 2)
    free = torch.tensor([[3.0, 0.0, 5.0, 1.0], [2.0, 1.0, 4.0, 0.5], [1.0, 2.0, 6.0, 2.0]])
    chosen, index = select_lowest_free_energy(particles, free)
    assert index.tolist() == [2, 0, 1, 1]
    for b, p in enumerate(index.tolist()):
        assert torch.equal(chosen[b], particles[p, b])


def test_cd_percloss_negative_has_the_lowest_free_energy_among_visited_particles():
    rbm = tiny_rbm(sizes=(5, 4), hidden=6)
    torch.manual_seed(4)
    v = torch.bernoulli(torch.full((10, 9), 0.5))
    cdpl = CDPercLoss(n_chains=5, gibbs_steps=3)
    for target in (0, 1):
        particles, free, chosen, h_neg = cdpl.negative_particles(rbm, v, target)
        assert particles.shape == (5 * 4, 10, rbm.sizes[target])
        st = rbm.slices[target]
        for b in range(10):
            # Recompute each particle's full free energy with the conditioning modality clamped.
            full = []
            for p in range(particles.shape[0]):
                vv = v[b].clone()
                vv[st] = particles[p, b]
                full.append(rbm.free_energy(vv[None])[0])
            vv = v[b].clone()
            vv[st] = chosen[b]
            assert rbm.free_energy(vv[None])[0] <= min(full) + 1e-10
            assert torch.allclose(h_neg[b], rbm.hidden_probs(vv[None])[0])


def test_cd_percloss_gradient_is_contrastive_between_data_and_negatives():
    rbm = tiny_rbm(sizes=(3, 3), hidden=4)
    v = torch.bernoulli(torch.full((6, 6), 0.5))
    CDPercLoss(n_chains=2).step(rbm, v, "zeros")
    # Conditional likelihoods cannot move the visible bias of a modality through its own
    # direction only; the summed grad over both directions is finite and not all zero.
    assert torch.isfinite(rbm.W.grad).all() and rbm.W.grad.abs().sum() > 0


def test_all_binary_states_enumerates_each_state_once():
    states = all_binary_states(4)
    assert len({tuple(s.tolist()) for s in states}) == 16
    assert set(map(tuple, states.tolist())) == set(itertools.product([0.0, 1.0], repeat=4))
