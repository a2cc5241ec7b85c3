"""The JMVAE family (Suzuki et al. 2016): importance-weighted estimators against closed forms, the
models' objectives, CelebA conv + GAN variants on fixtures, the paper's central claim on real
digits, and bad input through the CLI."""

import math

import lightning as L
import pytest
import torch

from mmrepro.data.modalities import Modality
from mmrepro.eval.log_likelihood import IWLogLikelihood, log_mean_exp
from mmrepro.models.cmma import CMMAModule
from mmrepro.models.cvae import CVAEModule
from mmrepro.models.jmvae import JMVAEModule
from mmrepro.models.vae import VAEModule
from mmrepro.objectives.gaussian import kl_normal
from tests.conftest import records_under, run_cli
from tests.test_cli import assert_one_line_error

TINY = {"latent_dim": 3, "tower": [16], "decoder": [16]}


# --- importance weighting on a linear-Gaussian model (log p(x) in closed form) -----------------------
class LinearGaussian(VAEModule):
    """p(z) = N(0, I), p(x|z) = N(Az + b, s2 I) with orthogonal columns of A, so the exact posterior
    is diagonal: q* = N(S A^T (x - b) / s2, S), S = diag(1 / (1 + |a_j|^2 / s2)). The proposal is q*
    with its mean shifted by `shift` and its variance scaled by `scale`."""

    def __init__(self, A, b, s2, shift=0.0, scale=1.0):
        super().__init__([Modality("x", (A.shape[0],), "gaussian")], latent_dim=A.shape[1], tower=[4], decoder=[],
                         gaussian_var=s2)
        dec = self.decoders["x"].net[-1]
        with torch.no_grad():
            dec.weight.copy_(A)
            dec.bias.copy_(b)
        self.A, self.b, self.s2, self.shift, self.scale = A, b, s2, shift, scale

    def proposal(self, batch, observed):
        post_var = 1 / (1 + (self.A ** 2).sum(0) / self.s2)
        mu = (batch["x"] - self.b) @ self.A * post_var / self.s2
        return mu + self.shift, (post_var * self.scale).log().expand_as(mu)

    def exact_log_px(self, x):
        cov = self.A @ self.A.T + self.s2 * torch.eye(len(self.b))
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)


def linear_gaussian(**kw):
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(5, 2, dtype=torch.float64))
    A = (q * torch.tensor([2.0, 0.7], dtype=torch.float64)).float()
    return LinearGaussian(A, torch.randn(5), 0.3, **kw).eval()


def test_iw_estimate_is_exact_with_the_true_posterior():
    model = linear_gaussian()
    batch = {"x": torch.randn(6, 5) * 2}
    est = IWLogLikelihood(k=3, n_w=1).estimate(model, batch)["log_p(x)/single"]
    assert torch.allclose(est, model.exact_log_px(batch["x"]), atol=1e-4)


def test_iw_estimate_approaches_log_px_as_k_grows_and_stays_below_it_in_expectation():
    model = linear_gaussian(shift=0.8, scale=3.0)
    x = torch.randn(1, 5) * 2
    truth = float(model.exact_log_px(x))
    torch.manual_seed(1)
    gaps = {}
    for k in (1, 10, 100, 10000):
        repeats = 20000 if k == 1 else 50  # each row of the batch is an independent k-sample estimate
        est = IWLogLikelihood(k=k, n_w=1).estimate(model, {"x": x.expand(repeats, 5)})["log_p(x)/single"]
        gaps[k] = truth - float(est.double().mean())
        assert gaps[k] > -0.01, (k, gaps[k])   # a lower bound in expectation
    # k = 1 is the ELBO: its gap is KL(q || exact posterior), known in closed form.
    post_var = 1 / (1 + (model.A ** 2).sum(0) / model.s2)
    kl = float(kl_normal(torch.full((2,), 0.8), (post_var * 3).log(), torch.zeros(2), post_var.log()))
    assert gaps[1] == pytest.approx(kl, abs=0.15)
    assert gaps[1] > gaps[10] > gaps[100] > gaps[10000] and gaps[10000] < 0.02


def test_log_mean_exp_is_stable():
    assert float(log_mean_exp(torch.tensor([-1000.0, -1000.0]))) == pytest.approx(-1000.0)


def test_log_p_w_is_exact_when_p_w_given_z_does_not_depend_on_z():
    mods = [Modality("image", (2, 3), "bernoulli"), Modality("digit", (4,), "categorical")]
    model = JMVAEModule(mods, missing="zero", **TINY)
    last = model.decoders["digit"].net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    w = torch.eye(4)[[2, 0, 3]]
    expected = torch.log_softmax(last.bias, 0)[[2, 0, 3]]
    assert torch.allclose(model.log_p_w({"image": torch.zeros(3, 2, 3), "digit": w}, n_w=7), expected, atol=1e-6)


def test_conditional_bounds_are_joint_bounds_minus_log_p_w():
    mods = [Modality("image", (2, 3), "bernoulli"), Modality("digit", (4,), "categorical")]
    model = JMVAEModule(mods, **TINY).eval()
    batch = {"image": (torch.rand(5, 2, 3) > 0.5).float(), "digit": torch.eye(4)[[0, 1, 2, 3, 0]]}
    torch.manual_seed(4)
    out = IWLogLikelihood(k=4, n_w=50).estimate(model, batch)
    assert set(out) == set(JMVAEModule.BOUNDS)
    torch.manual_seed(4)  # the evaluator's random stream: the q(z|x,w) samples, then log p(w)'s prior samples
    terms = model.iw_terms(batch, "xw", 4)
    log_pw = model.log_p_w(batch, 50)
    joint = log_mean_exp(terms["log_prior"] - terms["log_q"] + terms["image"] + terms["digit"])
    assert torch.allclose(out["log_p(x,w)"], joint)
    assert torch.allclose(out["log_p(x|w)/multiple"], joint - log_pw)


# --- objectives ----------------------------------------------------------------------------------------
MODS = [Modality("image", (2, 3), "bernoulli"), Modality("label", (4,), "categorical")]


def batch(n=8):
    torch.manual_seed(2)
    return {"image": (torch.rand(n, 2, 3) > 0.5).float(), "label": torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()}


def test_cvae_decoder_sees_w_and_cmma_decoder_does_not():
    b = batch()
    other = {**b, "label": b["label"].roll(1, 1)}
    z = torch.randn(8, 3)
    cvae, cmma = CVAEModule(MODS, **TINY), CMMAModule(MODS, **TINY)
    assert not torch.allclose(cvae.decode("image", z, b), cvae.decode("image", z, other))
    assert torch.allclose(cmma.decode("image", z, b), cmma.decode("image", z, other))
    # CMMA's prior and the conditional CVAE's depend on w; the default CVAE's and the VAE's are N(0, I)
    assert not torch.allclose(cmma.prior(b)[0], cmma.prior(other)[0])
    conditional = CVAEModule(MODS, prior="conditional", **TINY)
    assert not torch.allclose(conditional.prior(b)[0], conditional.prior(other)[0])
    assert torch.count_nonzero(cvae.prior(b)[0]) == 0 and torch.count_nonzero(VAEModule(MODS, **TINY).prior(b)[0]) == 0


def test_cmma_tars_variant_adds_the_standard_prior_kl():
    paper, tars = CMMAModule(MODS, **TINY), CMMAModule(MODS, variant="tars", **TINY)
    tars.load_state_dict(paper.state_dict())
    b = batch()
    torch.manual_seed(5)
    p = paper.loss_terms(b, beta=1.0)
    torch.manual_seed(5)
    t = tars.loss_terms(b, beta=0.5)
    assert torch.allclose(t["loss"], p["loss"] + 0.5 * t["kl_prior"])


def test_jmvae_zero_fills_missing_modalities_and_kl_uses_unimodal_encoders():
    b = batch()
    kl, zero = JMVAEModule(MODS, missing="kl", **TINY), JMVAEModule(MODS, missing="zero", **TINY)
    assert torch.equal(kl.proposal(b, "w")[0], kl.unimodal["label"](b)[0])
    blank = {"image": torch.zeros_like(b["image"]), "label": b["label"]}
    assert torch.equal(zero.proposal(b, "w")[0], zero.joint(blank)[0])


def test_learned_gaussian_variance_is_a_parameter_and_enters_the_likelihood():
    mods = [Modality("a", (3,), "gaussian"), Modality("b", (2,), "gaussian")]
    model = JMVAEModule(mods, gaussian_var="learned", **TINY)
    with torch.no_grad():
        model.log_var["a"].fill_(math.log(2.0))
    out, x = torch.zeros(4, 3), torch.ones(4, 3)
    assert torch.allclose(model.log_lik("a", out, x), torch.distributions.Normal(0.0, 2.0 ** 0.5).log_prob(x).sum(1))
    assert any(n.startswith("log_var.") for n, _ in model.named_parameters())


# --- CelebA: conv towers and the GAN variants on the fixture -----------------------------------------------
@pytest.mark.parametrize("cls,kw", [(VAEModule, {}), (CVAEModule, {}), (CMMAModule, {}), (JMVAEModule, {"alpha": 0.1})])
def test_gan_variant_trains_and_evaluates_on_the_celeba_fixture(tmp_path, cls, kw):
    from mmrepro.data.celeba import CelebA
    from tests.test_celeba import write_synthetic_celeba

    write_synthetic_celeba(tmp_path)
    dm = CelebA(root=str(tmp_path), batch_size=8)
    model = cls(dm.modalities, latent_dim=8, tower=[32, 32], decoder=[32, 32, 32], conv_channels=[8, 8, 16, 16],
                activation="relu", gan_weight=1.0, warmup_epochs=1, **kw)
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in model.decoders.modules())
    disc_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    dec_before = {k: v.clone() for k, v in model.decoders.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=dm)
    assert math.isfinite(model.last_finite_loss)
    assert any(not torch.equal(disc_before[k], v) for k, v in model.discriminator.state_dict().items())
    assert any(not torch.equal(dec_before[k], v) for k, v in model.decoders.state_dict().items())
    metrics = IWLogLikelihood(k=3, n_w=4, n_generated=0)(model, dm, tmp_path)
    bounds = {f"test/{b}" for b in cls.BOUNDS}
    assert bounds <= set(metrics) and all(math.isfinite(metrics[b]) for b in bounds)


def test_gan_discriminator_gets_no_gradient_from_the_bound_and_the_encoder_none_from_the_gan():
    mods = [Modality("image", (3, 16, 16), "gaussian"), Modality("attributes", (5,), "gaussian")]
    model = JMVAEModule(mods, conv_channels=[4, 8], gan_weight=1.0, **TINY)
    b = {"image": torch.randn(4, 3, 16, 16), "attributes": torch.randn(4, 5)}
    terms = model.loss_terms(b, 1.0)
    terms["loss"].backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    model.zero_grad(set_to_none=True)
    gen = sum(torch.nn.functional.softplus(-model.discriminator(f)).mean() for f in model.fakes(b, terms["z"].detach()))
    gen.backward()
    assert all(p.grad is None for p in model.joint.parameters())
    assert any(p.grad is not None for p in model.decoders["image"].parameters())


# --- the paper's central claim, on real digits ------------------------------------------------------------
def test_jmvae_kl_models_q_z_given_w_and_jmvae_zero_does_not(tmp_path):
    """Sec. 4.3.2: with a single encoder q(z|w), JMVAE-kl's log p(x|w) is far better than JMVAE-zero's
    (whose q(z|w) is the joint encoder with the image zeroed). Real 8x8 digits, 60 epochs, and the
    single bound at k = 1 (the ELBO with q(z|w)), where the proposal's quality shows fully."""
    from mmrepro.data.digits_label import DigitsLabel

    results = {}
    for missing in ("kl", "zero"):
        L.seed_everything(0, verbose=False)
        dm = DigitsLabel(batch_size=100)
        model = JMVAEModule(dm.modalities, missing=missing, alpha=0.1, latent_dim=16, tower=[128, 128],
                            decoder=[128, 128], warmup_epochs=10)
        trainer = L.Trainer(accelerator="cpu", max_epochs=60, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(model, datamodule=dm)
        torch.manual_seed(0)
        results[missing] = IWLogLikelihood(k=1, n_w=2000, n_generated=0)(model, dm, tmp_path)
    single = {m: r["test/log_p(x|w)/single"] for m, r in results.items()}
    multiple = {m: r["test/log_p(x|w)/multiple"] for m, r in results.items()}
    assert single["kl"] > single["zero"] + 2.0, single
    # JMVAE-zero's single bound is the outlier: its multiple bound is as good as JMVAE-kl's.
    assert multiple["zero"] > single["zero"] + 2.0 and abs(multiple["zero"] - multiple["kl"]) < 2.0, (single, multiple)


# --- bad input through the CLI -------------------------------------------------------------------------------
FAST = ["dataset=digits_label", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "eval.k=2", "eval.n_w=2"]


@pytest.mark.parametrize("args,fragments", [
    (["experiment=jmvae16_jmvae_kl", "model.alpha=-0.5"], ["model.alpha", "0 <= alpha", "-0.5"]),
    (["experiment=jmvae16_jmvae_kl", "eval.k=0"], ["eval.k", "1 <= k"]),
    (["experiment=jmvae16_jmvae_kl", "eval.n_w=0"], ["eval.n_w", "1 <= n_w"]),
    (["experiment=jmvae16_cmma", "model.variant=pandey"], ["model.variant", "unknown value 'pandey'", "paper, tars"]),
    (["experiment=jmvae16_vae", "model.lr=1e30"], ["training loss became", "at step", "last finite loss"]),
])
def test_jmvae_bad_input_is_one_line_and_nonzero_exit_and_writes_no_record(tmp_path, args, fragments):
    result = run_cli(*FAST, *args, f"paths.runs_dir={tmp_path}")
    assert_one_line_error(result, *fragments)
    assert records_under(tmp_path) == []


def test_checkpoint_of_another_model_is_refused_and_the_same_model_is_evaluated(tmp_path):
    first = run_cli("experiment=jmvae16_vae", *FAST, f"paths.runs_dir={tmp_path}/a")
    assert first.returncode == 0, first.stderr[-2000:]
    ckpt = next((tmp_path / "a").rglob("last.ckpt"))
    wrong = run_cli("experiment=jmvae16_cvae", *FAST, f"init_from={ckpt}", f"paths.runs_dir={tmp_path}/b")
    assert_one_line_error(wrong, "init_from", "mmrepro.models.vae.VAEModule", "allowed: a checkpoint of "
                          "mmrepro.models.cvae.CVAEModule")
    assert records_under(tmp_path / "b") == []
    again = run_cli("experiment=jmvae16_vae", *FAST, "trainer.max_epochs=0", f"init_from={ckpt}", f"paths.runs_dir={tmp_path}/c")
    assert again.returncode == 0, again.stderr[-2000:]
    (rec,) = records_under(tmp_path / "c")
    assert rec["training"]["epochs"] == 0 and math.isfinite(rec["metrics"]["test/log_p(x)/single"])
    (trained,) = records_under(tmp_path / "a")
    assert rec["metrics"] == trained["metrics"]   # evaluation is seeded by the run's seed alone
