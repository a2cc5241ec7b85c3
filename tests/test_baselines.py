"""The CMMD paper's baselines as their papers define them: each objective recomputed term by term from
its paper's equation (peer cross-checks on tiny fixed-weight models, with the sampling noise fixed),
MVAE's sub-sampled ELBOs, the authors' M-xO, CVAE's prior, MMVAE's subset posterior, VCCA's
posteriors, one rmse protocol and Figure 2's panels for every model."""

import math

import numpy as np
import pytest
import torch

from mmrepro.data.modalities import Modality
from mmrepro.models.cmmd import CMMDModule
from mmrepro.models.cvae import CVAEModule
from mmrepro.models.m_xo import MxOModule
from mmrepro.models.mmvae import MMVAEModule
from mmrepro.models.mopoe import MoPoEModule
from mmrepro.models.mvae import MVAEModule
from mmrepro.models.vcca import VCCAModule, VCCAPrivateModule
from tests.conftest import fixture_datamodule, train_one_step

MODS = [Modality("a", (6,), "gaussian"), Modality("b", (5,), "gaussian")]
LABEL = Modality("label", (3,), "categorical")
SMALL = dict(tower=[16], decoder=[16], latent_dim=4)
LOG2PI = math.log(2 * math.pi)


def batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(n, 6, generator=g), "b": torch.randn(n, 5, generator=g),
            "label": torch.randint(0, 3, (n,), generator=g)}


def eps_like(shape, dtype=torch.float32) -> torch.Tensor:
    """The fixed 'standard normal draws' of these checks: a pattern that depends on the shape only."""
    n = math.prod(shape)
    return torch.linspace(-1.6, 1.6, n, dtype=dtype).reshape(shape)


@pytest.fixture
def fixed_noise(monkeypatch):
    """torch.randn / randn_like return eps_like: the module and the test use the same draws."""
    def randn(*size, dtype=None, device=None, generator=None, **_):
        size = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
        return eps_like(size, dtype or torch.float32)
    monkeypatch.setattr(torch, "randn", randn)
    monkeypatch.setattr(torch, "randn_like", lambda x, **_: eps_like(tuple(x.shape), x.dtype))


# --- the paper's terms, written out -------------------------------------------------------------------
def gauss_ll(x, mean, var=1.0):
    """log N(x; mean, var) summed over dimensions (unit-variance decoders unless var is given)."""
    return (-0.5 * (LOG2PI + torch.log(torch.as_tensor(var)) + (x - mean) ** 2 / var)).sum(1)


def kl_std(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 * sum(var + mu^2 - 1 - log var)."""
    return 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(1)


def log_gauss(z, mu, logvar):
    return (-0.5 * (LOG2PI + logvar + (z - mu) ** 2 / logvar.exp())).sum(-1)


def poe(params, prior=True):
    """Product of Gaussian experts: precision-weighted mean, variance 1 / sum of precisions."""
    precisions = [torch.ones_like(params[0][0])] if prior else []
    weighted = [torch.zeros_like(params[0][0])] if prior else []
    for mu, lv in params:
        precisions.append(1 / (lv.exp() + 1e-8))
        weighted.append(mu / (lv.exp() + 1e-8))
    total = sum(precisions)
    return sum(weighted) / total, -torch.log(total)


# --- peer cross-checks ----------------------------------------------------------------------------------
def test_mvae_loss_is_wu_and_goodmans_subsampled_elbo(fixed_noise):
    """ELBO(X) = sum_{m in X} log p(x_m | z_X) - KL(q(z|X) || N(0, I)), X in {ab, a, b} (Wu & Goodman Eq. 4)."""
    torch.manual_seed(0)
    model, b = MVAEModule(MODS, label=LABEL, **SMALL), batch()
    with torch.no_grad():
        loss = model.loss_terms(b, 1.0)["loss"]
        ea, eb = model.experts["a"](b), model.experts["b"](b)
        total = 0
        for subset, params in ((["a", "b"], [ea, eb]), (["a"], [ea]), (["b"], [eb])):
            mu, lv = poe(params)
            z = mu + eps_like(tuple(mu.shape)) * (0.5 * lv).exp()
            elbo = sum(gauss_ll(b[m], model.decoders[m](z)) for m in subset) - kl_std(mu, lv)
            total = total - elbo
    assert torch.allclose(loss, total.mean(), rtol=1e-5)


@pytest.mark.parametrize("objective,k", [("elbo", 1), ("elbo", 3), ("iwae", 3)])
def test_mmvae_loss_is_shis_stratified_bound(fixed_noise, objective, k):
    """log w = log p(z) + sum_d s_d log p(x_d|z) - log (1/M) sum_m q(z|x_m), z_rk ~ q(z|x_r) (Shi et al.
    Eq. 3-4); ELBO: mean over r, k; IWAE ('looser', the code's): mean over r of log-mean-exp over k.
    s_d = the code's llik_scaling: (largest size) / (size of d) = 1 for a (6-d), 6/5 for b."""
    torch.manual_seed(0)
    model, b = MMVAEModule(MODS, label=LABEL, objective=objective, k=k, **SMALL), batch()
    with torch.no_grad():
        loss = model.loss_terms(b, 1.0)["loss"]
        experts = [model.experts["a"](b), model.experts["b"](b)]
        per_r = []
        for mu, lv in experts:
            z = mu + eps_like((k, *mu.shape)) * (0.5 * lv).exp()                        # (k, B, d)
            flat = z.reshape(-1, 4)
            ll = sum(s * gauss_ll(b[m].repeat(k, 1), model.decoders[m](flat)).view(k, -1)
                     for m, s in (("a", 1.0), ("b", 6 / 5)))
            log_q = torch.logsumexp(torch.stack([log_gauss(z, m_, l_) for m_, l_ in experts]), 0) - math.log(2)
            log_w = log_gauss(z, torch.zeros_like(z), torch.zeros_like(z)) + ll - log_q
            per_r.append(log_w.mean(0) if objective == "elbo" else torch.logsumexp(log_w, 0) - math.log(k))
        bound = torch.stack(per_r).mean(0)
    assert torch.allclose(loss, -bound.mean(), rtol=1e-5)


def test_mopoe_loss_is_sutters_mixture_of_products(fixed_noise):
    """Subsets {a}, {b}, {a, b}: PoE without the prior expert; one draw per row from its stratum's subset;
    -sum_m w_m log p(x_m|z) + kl_weight * mean_S KL(q_S || N(0, I)) (Sutter et al. Eq. 9, the code's
    rec_weight w_a = 1, w_b = 6/5)."""
    torch.manual_seed(0)
    model, b = MoPoEModule(MODS, label=LABEL, kl_weight=2.5, **SMALL), batch(9)
    with torch.no_grad():
        loss = model.loss_terms(b, 1.0)["loss"]
        ea, eb = model.experts["a"](b), model.experts["b"](b)
        subsets = [poe([ea], prior=False), poe([eb], prior=False), poe([ea, eb], prior=False)]
        which = [i * 3 // 9 for i in range(9)]                                         # rows 0-2, 3-5, 6-8
        mu = torch.stack([subsets[s][0][i] for i, s in enumerate(which)])
        lv = torch.stack([subsets[s][1][i] for i, s in enumerate(which)])
        z = mu + eps_like(tuple(mu.shape)) * (0.5 * lv).exp()
        rec = gauss_ll(b["a"], model.decoders["a"](z)) + 6 / 5 * gauss_ll(b["b"], model.decoders["b"](z))
        kl = sum(kl_std(m, v) for m, v in subsets) / 3
    assert torch.allclose(loss, (-rec + 2.5 * kl).mean(), rtol=1e-5)


def test_vcca_loss_is_wang_et_als_bound(fixed_noise):
    """VCCA: -log p(x_a|z) - log p(x_b|z) + KL(q(z|x_a) || N(0, I)), z ~ q(z|x_a) (Wang et al. Eq. 6)."""
    torch.manual_seed(0)
    model, b = VCCAModule(MODS, label=LABEL, **SMALL), batch()
    with torch.no_grad():
        loss = model.loss_terms(b, 1.0)["loss"]
        mu, lv = model.enc(b)
        z = mu + eps_like(tuple(mu.shape)) * (0.5 * lv).exp()
        expected = -gauss_ll(b["a"], model.decoders["a"](z)) - gauss_ll(b["b"], model.decoders["b"](z)) + kl_std(mu, lv)
    assert torch.allclose(loss, expected.mean(), rtol=1e-5)


def test_vcca_private_loss_adds_the_private_latents(fixed_noise):
    """VCCA-private: each view decoded from [z, h_m], h_m ~ q(h_m|x_m); + KL of each h_m (Wang et al. Eq. 8)."""
    torch.manual_seed(0)
    model, b = VCCAPrivateModule(MODS, label=LABEL, private_dim=2, **SMALL), batch()
    with torch.no_grad():
        loss = model.loss_terms(b, 1.0)["loss"]
        mu, lv = model.enc(b)
        z = mu + eps_like(tuple(mu.shape)) * (0.5 * lv).exp()
        expected = kl_std(mu, lv)
        for m in ("a", "b"):
            mh, lh = model.private_encoders[m](b)
            h = mh + eps_like(tuple(mh.shape)) * (0.5 * lh).exp()
            expected = expected - gauss_ll(b[m], model.decoders[m](torch.cat([z, h], 1))) + kl_std(mh, lh)
    assert torch.allclose(loss, expected.mean(), rtol=1e-5)


# --- MVAE, M-xO, CVAE, MMVAE, VCCA ------------------------------------------------------------------------
def test_mvae_single_modality_elbo_does_not_read_the_other_modalitys_decoder():
    torch.manual_seed(0)
    model, b = MVAEModule(MODS, label=LABEL, **SMALL), batch()
    with torch.no_grad():
        torch.manual_seed(1)
        before = model.loss_terms(b, 1.0)
        for p in model.decoders["b"].parameters():
            p.add_(1.0)
        torch.manual_seed(1)
        after = model.loss_terms(b, 1.0)
    assert torch.equal(before["elbo/a"], after["elbo/a"])
    assert not torch.equal(before["elbo/b"], after["elbo/b"]) and not torch.equal(before["elbo/a+b"], after["elbo/a+b"])


def test_m_xo_authors_variant_is_cls_py():
    """2 x 70 tanh, softmax output, no dropout; W ~ U(+-sqrt(2 / (fan_in + fan_out))), b = 0; summed CE."""
    torch.manual_seed(0)
    mods = [Modality("a", (300,), "gaussian"), Modality("b", (5,), "gaussian")]
    model = MxOModule(mods, label=LABEL)
    layers = list(model.net.body) + [model.net.out]
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    linears = [m for m in layers if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(300, 70), (70, 70), (70, 3)]
    for m in linears:
        bound = math.sqrt(2 / (m.in_features + m.out_features))
        w = m.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)   # uniform, not normal
        assert torch.count_nonzero(m.bias) == 0
    b = {"a": torch.randn(10, 300), "b": torch.randn(10, 5), "label": torch.randint(0, 3, (10,))}
    ce = torch.nn.functional.cross_entropy(model.net(b), b["label"], reduction="sum")
    assert torch.allclose(model.loss_terms(b, 1.0)["loss"], ce)
    path = MxOModule(mods, label=LABEL, variant="cmmd_path", hidden=[32, 8])
    assert any(isinstance(m, torch.nn.Dropout) for m in path.net.body)
    assert any(isinstance(m, torch.nn.Softplus) for m in path.net.body)


def test_cvae_prior_is_standard_normal_by_default_and_conditional_as_a_variant():
    torch.manual_seed(0)
    mods = [Modality("image", (6,), "bernoulli"), Modality("label", (3,), "categorical")]
    b = {"image": torch.rand(4, 6), "label": torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()}
    standard = CVAEModule(mods, **SMALL)
    mu, lv = standard.prior(b)
    assert not hasattr(standard, "prior_net") and torch.equal(mu, torch.zeros(4, 4)) and torch.equal(lv, mu)
    conditional = CVAEModule(mods, prior="conditional", **SMALL)
    other = {**b, "label": b["label"].roll(1, 0)}
    assert not torch.allclose(conditional.prior(b)[0], conditional.prior(other)[0])


def test_mmvae_subset_posterior_samples_a_component_or_moment_matches():
    torch.manual_seed(0)
    b = batch(200)
    model = MMVAEModule(MODS, label=LABEL, **SMALL)
    with torch.no_grad():
        (ma, la), (mb, lb) = model.experts["a"](b), model.experts["b"](b)
        mu, lv = model.infer(b, ["a", "b"])
        from_a = torch.all(mu == ma, 1) & torch.all(lv == la, 1)
        from_b = torch.all(mu == mb, 1) & torch.all(lv == lb, 1)
        assert torch.all(from_a | from_b) and 60 < int(from_a.sum()) < 140
        assert torch.allclose(model.latent_mean({**b}), ma)                     # x_O = a: its own expert
        model.subset_posterior = "moment"
        mu, lv = model.infer(b, ["a", "b"])
        assert torch.allclose(mu, (ma + mb) / 2)
        assert torch.allclose(lv.exp(), (la.exp() + lb.exp()) / 2 + ((ma - mb) / 2) ** 2, rtol=1e-5)


def test_vcca_infer_reads_its_names():
    torch.manual_seed(0)
    b = batch()
    private = VCCAPrivateModule(MODS, label=LABEL, private_dim=4, **SMALL)
    with torch.no_grad():
        shared, priv = private.infer(b, ["a"]), private.infer(b, ["b"])
        assert torch.equal(shared[0], private.enc(b)[0]) and torch.equal(priv[0], private.private_encoders["b"](b)[0])
        assert not torch.allclose(shared[0], priv[0])
        assert torch.equal(private.infer(b, ["a", "b"])[0], shared[0])          # z reads x_O only
    with pytest.raises(ValueError, match="infers its shared z"):
        VCCAModule(MODS, label=LABEL, **SMALL).infer(b, ["b"])


# --- one rmse protocol, Figure 2 on a fixture -----------------------------------------------------------
def test_every_model_generates_x_m_through_one_protocol(tmp_path, monkeypatch):
    """The evaluator generates x_M for every model with generation.generate_missing: the decoder mean
    at model.latent_mean (CMMD: the mean of p(z|x_O); the baselines: the mean of q(z|x_O))."""
    import mmrepro.eval.classification as classification
    from mmrepro.eval import generation

    calls = []
    monkeypatch.setattr(classification, "generate_missing",
                        lambda model, rows: calls.append(type(model).__name__) or generation.generate_missing(model, rows))
    dm = fixture_datamodule("digits_halves", {})
    torch.manual_seed(0)
    models = [CMMDModule(dm.modalities, label=dm.label, encoder=[16], prior=[16], decoder=[16], classifier=[8],
                         latent_dim=4)] + [cls(dm.modalities, label=dm.label, **SMALL)
                                            for cls in (VCCAModule, MVAEModule, MMVAEModule, MoPoEModule)]
    for model in models:
        assert not hasattr(model, "generate_missing")
        evaluator = classification.Classification(probe_points=100)
        if not hasattr(model, "predict"):
            evaluator.fit_probe(model.eval(), dm)
        out = evaluator.outputs(model.eval(), dm, "test", stop=5)
        rows = dm.rows("test", 0, 5)
        with torch.no_grad():
            z = model.prior(rows)[0] if isinstance(model, CMMDModule) else model.infer(rows, ["left"])[0]
            expected = model.mean("right", model.decode("right", z, rows)).flatten(1).numpy()
        assert np.allclose(out["gen/right"], expected, atol=1e-6)
    assert calls == ["CMMDModule", "VCCAModule", "MVAEModule", "MMVAEModule", "MoPoEModule"]


def test_figure_2_panels_for_every_model_on_the_xrmb_fixture(tmp_path):
    """One training step of each model on XRMB files (learned decoder variances): every model saves the
    three KL panels and the variance panel (plain VCCA: the first and the variance only), VCCA-private's
    second panel is its private posterior's KL, and the figure draws them."""
    from mmrepro.eval.classification import Classification
    from mmrepro.eval.collapse import PANELS
    from mmrepro.objectives.gaussian import kl_normal_per_dim
    from mmrepro.tables.figures import collapse_curves
    from tests.test_xrmb import write_synthetic_xrmb

    write_synthetic_xrmb(tmp_path / "xrmb")
    dm = fixture_datamodule("xrmb", {"root": tmp_path / "xrmb"})
    torch.manual_seed(0)
    common = dict(tower=[16], decoder=[16], latent_dim=4, gaussian_var="learned")
    models = {"CMMD": CMMDModule(dm.modalities, label=dm.label, encoder=[16], prior=[16], decoder=[16],
                                 classifier=[8], latent_dim=4),
              "VCCA-private": VCCAPrivateModule(dm.modalities, label=dm.label, private_dim=4, **common),
              "VCCA": VCCAModule(dm.modalities, label=dm.label, **common),
              "MVAE": MVAEModule(dm.modalities, label=dm.label, **common),
              "MMVAE": MMVAEModule(dm.modalities, label=dm.label, k=2, **common),
              "MoPoE": MoPoEModule(dm.modalities, label=dm.label, **common)}
    panels = []
    for name, model in models.items():
        assert train_one_step(model, dm)
        run = tmp_path / name
        run.mkdir()
        Classification(n_latents=0, collapse_points=30)(model, dm, run)
        saved = np.load(run / "collapse.npz")
        want = {"kl_observed_prior", "decoder_var"} if name == "VCCA" else set(PANELS)
        assert set(saved) == want, name
        assert saved["decoder_var"].shape == (30, 112)
        panels.append((name, run / "collapse.npz"))
        if name == "VCCA-private":
            rows = dm.rows("test", 0, 30)
            with torch.no_grad():
                private = kl_normal_per_dim(*model.eval().private_encoders["articulatory"](rows))
            assert np.allclose(saved["kl_missing_prior"], private.numpy(), atol=1e-6)
    collapse_curves(panels, tmp_path / "f2.png", "Figure 2")
    assert (tmp_path / "f2.png").stat().st_size > 20000


# --- paired tests and learning curves (the tables' statistics) -------------------------------------------
def test_mcnemar_pools_seeds_on_shared_test_points(tmp_path):
    from mmrepro.tables.paired import late_change, mcnemar, settled_epoch

    def rec(name, seed, predicted, label):
        run = tmp_path / f"{name}{seed}"
        run.mkdir()
        np.savez(run / "test_predictions.npz", predicted=np.array(predicted), label=np.array(label))
        return {"status": "ok", "seed": seed, "run_dir": str(run)}

    y = [0, 1, 2, 0, 1, 2, 0, 1]
    a = [rec("a", 0, [0, 1, 2, 0, 1, 2, 1, 2], y), rec("a", 1, [0, 1, 2, 0, 0, 0, 0, 1], y)]
    b = [rec("b", 0, [1, 1, 2, 0, 1, 2, 0, 1], y), rec("b", 1, [0, 1, 2, 0, 1, 2, 0, 1], y), rec("b", 2, y, y)]
    seeds, only_a, only_b, p = mcnemar(a, b)
    assert seeds == [0, 1] and (only_a, only_b) == (4, 1)
    assert p == pytest.approx(2 * (1 + 5) / 32)                                 # two-sided binomial tail
    assert mcnemar(a, []) is None
    epochs = np.arange(200)
    values = np.concatenate([np.linspace(50, 10, 120), np.full(80, 10.0) + np.sin(np.arange(80))])
    best, last = settled_epoch(epochs, values, 20)
    assert last == 200 and 120 <= best <= 200
    start, before, after = late_change(epochs, np.linspace(30, 0, 200), 1)     # unsmoothed: the curve itself
    assert start == 134 and before == pytest.approx(30 - 30 * 133 / 199) and after == pytest.approx(0.0)
