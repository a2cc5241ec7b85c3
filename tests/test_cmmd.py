"""CMMD (Mancisidor et al.) and its baselines: the MMD estimator against the closed form, the
objective against the conditional ELBO, the collapse metric on a hand-made latent, one step of
each model on the dataset fixtures, bad input through the CLI, and the embedded comparison."""

import math

import numpy as np
import pytest
import torch

from mmrepro.data.modalities import Modality
from mmrepro.errors import ConfigError
from mmrepro.eval.collapse import collapse_curve
from mmrepro.models.cmmd import CMMDModule
from mmrepro.models.m_xo import MxOModule
from mmrepro.objectives.gaussian import kl_normal
from mmrepro.objectives.mmd import expected_kernel, mmd, mmd_gaussians
from tests.conftest import records_under, run_cli
from tests.test_cli import assert_one_line_error

MODS = [Modality("a", (6,), "gaussian"), Modality("b", (5,), "gaussian")]
LABEL = Modality("label", (3,), "categorical")
TINY = dict(encoder=[16], prior=[16], decoder=[16], classifier=[8], latent_dim=4)


def batch(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(n, 6, generator=g), "b": torch.randn(n, 5, generator=g),
            "label": torch.randint(0, 3, (n,), generator=g)}


# --- MMD (Eq. 4) ---------------------------------------------------------------------------------------
def test_mmd_estimates_match_the_closed_form_between_two_gaussians():
    torch.manual_seed(0)
    mu_p, var_p = torch.tensor([0.0, 0.5, -0.3]), torch.tensor([1.0, 0.5, 2.0])
    mu_q, var_q = torch.tensor([0.8, 0.0, 0.2]), torch.tensor([0.3, 1.5, 1.0])
    scale, n = 4.0, 1500
    exact = float(mmd_gaussians(mu_p, var_p, mu_q, var_q, scale))
    assert exact > 0.05
    unbiased, biased = [], []
    for _ in range(20):
        p = mu_p + var_p.sqrt() * torch.randn(n, 3)
        q = mu_q + var_q.sqrt() * torch.randn(n, 3)
        unbiased.append(float(mmd(p, q, scale, "unbiased")))
        biased.append(float(mmd(p, q, scale, "biased")))
    se = np.std(unbiased) / math.sqrt(len(unbiased))
    assert abs(np.mean(unbiased) - exact) < 4 * se + 1e-4
    # The V-statistic's expectation: diagonal terms k = 1 weigh 1/n in each within-sample mean.
    e_pp = float(expected_kernel(torch.zeros(3), 2 * var_p, scale))
    e_qq = float(expected_kernel(torch.zeros(3), 2 * var_q, scale))
    expected_biased = exact + (1 - e_pp) / n + (1 - e_qq) / n
    assert abs(np.mean(biased) - expected_biased) < 4 * np.std(biased) / math.sqrt(len(biased)) + 1e-4
    assert np.mean(biased) > np.mean(unbiased)


def test_mmd_of_two_samples_of_one_distribution_is_near_zero_and_the_default_scale_is_d_squared():
    torch.manual_seed(1)
    p, q = torch.randn(2000, 5), torch.randn(2000, 5)
    assert abs(float(mmd(p, q, 2.0, "unbiased"))) < 2e-3
    far = float(mmd_gaussians(torch.zeros(5), torch.ones(5), torch.full((5,), 3.0), torch.ones(5), 2.0))
    assert abs(float(mmd(p, q + 3.0, 2.0, "unbiased")) - far) < 5e-3 and far > 0.1
    assert torch.allclose(mmd(p[:50], q[:50]), mmd(p[:50], q[:50], 25.0))


def test_mmd_gradient_is_finite_for_identical_points():
    p = torch.zeros(4, 3, requires_grad=True)
    mmd(p, p.detach() + 0.1).backward()
    assert torch.isfinite(p.grad).all()


# --- the objective (Eq. 5) ----------------------------------------------------------------------------
def test_cmmd_loss_at_omega_one_is_the_conditional_elbo_and_ignores_lambda():
    b = batch()
    losses = []
    for lam in (0.0, 1e6):
        torch.manual_seed(0)
        model = CMMDModule(MODS, label=LABEL, omega=1.0, lam=lam, dropout=0.0, **TINY)
        torch.manual_seed(1)
        losses.append(model.loss_terms(b, 1.0)["loss"])
    assert torch.allclose(losses[0], losses[1])
    # Recompute the negative conditional ELBO (+ alpha x summed CE) from the networks, same noise.
    torch.manual_seed(1)
    eps = torch.randn(len(b["a"]), 4)
    mu_q, logvar_q = model.posterior(b)
    mu_p, logvar_p = model.prior(b)
    z_q, z_p = mu_q + eps * (0.5 * logvar_q).exp(), mu_p + eps * (0.5 * logvar_p).exp()
    out = model.decode("b", z_q, b)
    rec = torch.distributions.Normal(out[:, 0], (0.5 * out[:, 1]).exp()).log_prob(b["b"]).sum(1)
    ce = torch.nn.functional.cross_entropy(model.classifier({"z": z_p}), b["label"], reduction="sum")
    elbo = (rec - kl_normal(mu_q, logvar_q, mu_p, logvar_p)).mean()
    assert torch.allclose(losses[1], -elbo + 10.0 * ce, rtol=1e-5)


def test_mmd_term_enters_below_omega_one_and_code_variants_differ_as_documented():
    b = batch()
    torch.manual_seed(0)
    model = CMMDModule(MODS, label=LABEL, omega=0.5, lam=1000.0, dropout=0.0, **TINY)
    torch.manual_seed(1)
    t = model.loss_terms(b, 1.0)
    assert float(t["mmd"]) > 0
    mu_q, lv_q, mu_p, lv_p = torch.randn(4, 5, 3).unbind(0)
    model.kl = "code"
    assert torch.allclose(model.kl_terms(mu_q, lv_q, mu_p, lv_p),
                          kl_normal(mu_q, lv_q, mu_p, lv_p) + 0.5 * (lv_q - lv_p).exp().sum(-1))
    # cls_reduction: sum = batch size x mean
    model.kl, model.omega = "exact", 1.0
    torch.manual_seed(1)
    summed = model.loss_terms(b, 1.0)
    model.cls_reduction = "mean"
    torch.manual_seed(1)
    meaned = model.loss_terms(b, 1.0)
    n = len(b["a"])
    assert torch.allclose(summed["loss"] - meaned["loss"], 10.0 * (n - 1) * meaned["classification"], rtol=1e-4)


def test_network_variance_gaussian_log_likelihood():
    model = CMMDModule(MODS, label=LABEL, **TINY)
    out = torch.randn(7, 2, 5)
    x = torch.randn(7, 5)
    expected = torch.distributions.Normal(out[:, 0], (0.5 * out[:, 1]).exp()).log_prob(x).sum(1)
    assert torch.allclose(model.log_lik("b", out, x), expected, atol=1e-5)
    assert torch.equal(model.mean("b", out), out[:, 0])


def test_prior_z_mean_predicts_deterministically_and_sample_does_not():
    b = batch()
    for prior_z, same in (("mean", True), ("sample", False)):
        model = CMMDModule(MODS, label=LABEL, prior_z=prior_z, **TINY).eval()
        assert torch.equal(model.predict(b), model.predict(b)) == same
        assert model.predict(b).shape == (32, 3) and torch.allclose(model.predict(b).sum(1), torch.ones(32))


# --- posterior collapse (Figure 2) ---------------------------------------------------------------------
def test_collapse_curve_on_a_hand_made_latent():
    points = 200
    kl = np.zeros((points, 4))
    kl[:, 2] = 1.0                  # never collapsed below 1
    kl[:4, 3] = 5.0                 # 98% of points at 0: not collapsed until eps >= 5
    grid = np.array([0.0, 0.5, 1.0, 4.9, 5.0, 6.0])
    assert collapse_curve(kl, grid).tolist() == [0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
    kl[:1, 3] = 5.0
    kl[1:4, 3] = 0.0                # 99.5% at 0: collapsed at eps = 0 already
    assert collapse_curve(kl, grid)[0] == 0.75


# --- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,key", [("model.omega=1.5", "model.omega"), ("model.lam=-1", "model.lam"),
                                          ("model.alpha=-1", "model.alpha"),
                                          ("model.observed=[middle]", "model.observed"),
                                          ("dataset=celeba", "dataset")])
def test_bad_cmmd_settings_are_one_line_errors(tmp_path, override, key):
    result = run_cli("experiment=cmmd_digits", override, f"runs_dir={tmp_path}", "trainer.max_epochs=1")
    assert_one_line_error(result, key)
    assert not records_under(tmp_path)


def test_unlabelled_dataset_is_refused_by_the_models_that_need_y():
    for cls in (CMMDModule, MxOModule):
        with pytest.raises(ConfigError, match="no class labels"):
            cls(MODS, label=None)
