"""JMVAE's objective (Suzuki et al. 2016, Eq. 4) and its estimators, and one training step of it on
every dataset's fixture (each dataset feeds the training loop)."""

import math

import pytest
import torch

from mmrepro.data.modalities import Modality
from mmrepro.errors import ConfigError
from mmrepro.models.jmvae import JMVAEModule
from mmrepro.objectives.gaussian import kl_normal, log_normal
from mmrepro.objectives.likelihoods import log_likelihood
from tests.conftest import dataset_overrides, fixture_datamodule, train_one_step

TINY = {"latent_dim": 4, "tower": [16], "decoder": [16]}


def test_gaussian_kl_matches_monte_carlo_and_vanishes_for_identical_distributions():
    torch.manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = torch.randn(3), torch.randn(3) * 0.3, torch.randn(3), torch.randn(3) * 0.3
    z = mu_q + torch.randn(400000, 3) * (0.5 * lv_q).exp()
    mc = (log_normal(z, mu_q, lv_q) - log_normal(z, mu_p, lv_p)).mean()
    assert torch.allclose(kl_normal(mu_q, lv_q, mu_p, lv_p), mc, atol=0.02)
    assert kl_normal(mu_q, lv_q, mu_q, lv_q).abs() < 1e-6
    assert torch.allclose(kl_normal(mu_q, lv_q), kl_normal(mu_q, lv_q, torch.zeros(3), torch.zeros(3)))


def test_likelihoods_match_torch_distributions():
    torch.manual_seed(1)
    out, x = torch.randn(5, 6), torch.rand(5, 6)
    assert torch.allclose(log_likelihood("bernoulli", out, (x > 0.5).float()),
                          torch.distributions.Bernoulli(logits=out).log_prob((x > 0.5).float()).sum(1))
    assert torch.allclose(log_likelihood("gaussian", out, x, 2.0), torch.distributions.Normal(out, 2.0 ** 0.5).log_prob(x).sum(1))
    onehot = torch.nn.functional.one_hot(torch.tensor([1, 4, 0, 2, 5]), 6).float()
    assert torch.allclose(log_likelihood("categorical", out, onehot),
                          torch.distributions.Categorical(logits=out).log_prob(onehot.argmax(1)))


MODS = [Modality("image", (2, 3), "bernoulli"), Modality("label", (4,), "categorical")]


def batch(n=8):
    torch.manual_seed(2)
    return {"image": (torch.rand(n, 2, 3) > 0.5).float(), "label": torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()}


def test_jmvae_kl_at_alpha_zero_is_the_jmvae_zero_loss():
    kl = JMVAEModule(MODS, missing="kl", alpha=0.0, **TINY)
    zero = JMVAEModule(MODS, missing="zero", **TINY)
    zero.load_state_dict({k: v for k, v in kl.state_dict().items() if not k.startswith("unimodal.")})
    b = batch()
    torch.manual_seed(3)
    a = kl.loss_terms(b, beta=0.7)["loss"]
    torch.manual_seed(3)
    c = zero.loss_terms(b, beta=0.7)["loss"]
    assert torch.allclose(a, c)
    kl.alpha = 0.5
    torch.manual_seed(3)
    terms = kl.loss_terms(b, beta=0.7)
    assert torch.allclose(terms["loss"], a + 0.5 * terms["kl_unimodal"]) and terms["kl_unimodal"] > 0


def test_warmup_is_linear_over_the_first_nt_epochs_then_one():
    m = JMVAEModule(MODS, warmup_epochs=200, **TINY)
    assert [m.warmup_beta(e) for e in (0, 50, 100, 199, 200, 400)] == [0.0, 0.25, 0.5, 0.995, 1.0, 1.0]
    assert JMVAEModule(MODS, warmup_epochs=0, **TINY).warmup_beta(0) == 1.0


def test_missing_modality_inference_uses_unimodal_or_zero_filled_encoders():
    b = batch()
    kl = JMVAEModule(MODS, missing="kl", **TINY)
    assert torch.equal(kl.encode(b, ["image"])[0], kl.unimodal["image"](b)[0])
    zero = JMVAEModule(MODS, missing="zero", **TINY)
    blank = {"image": b["image"], "label": torch.zeros_like(b["label"])}
    assert torch.equal(zero.encode(b, ["image"])[0], zero.joint(blank)[0])


def test_out_of_range_values_name_their_key():
    with pytest.raises(ConfigError, match="alpha"):
        JMVAEModule(MODS, alpha=-0.1, **TINY)
    with pytest.raises(ConfigError, match="missing: unknown value 'mean'"):
        JMVAEModule(MODS, missing="mean", **TINY)


def one_step(dm):
    model = JMVAEModule(dm.modalities, warmup_epochs=1, **TINY)
    changed = train_one_step(model, dm)
    assert model.trainer.global_step == 1 and math.isfinite(model.last_finite_loss)
    assert changed


def test_bernoulli_modality_on_data_outside_unit_interval_is_refused(tmp_path):
    from mmrepro.data.xrmb import XRMB
    from tests.test_xrmb import write_synthetic_xrmb

    write_synthetic_xrmb(tmp_path)
    dm = XRMB(root=str(tmp_path))
    dm.modalities = [Modality("acoustic", (273,), "bernoulli"), Modality("articulatory", (112,), "gaussian")]
    with pytest.raises(ConfigError, match="modality 'acoustic' is bernoulli but its data span"):
        one_step(dm)


def dataset_fixtures(tmp_path) -> dict[str, dict]:
    """Per dataset config, the overrides that point it at files written here in its source format."""
    from tests.conftest import write_mnist_raw
    from tests.test_celeba import write_synthetic_celeba
    from tests.test_mir_flickr import write_synthetic_flickr
    from tests.test_mnist_svhn import write_synthetic_svhn
    from tests.test_xrmb import write_synthetic_xrmb

    mnist = write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    write_synthetic_svhn(tmp_path / "svhn")
    write_synthetic_xrmb(tmp_path / "xrmb")
    write_synthetic_flickr(tmp_path / "flickr")
    write_synthetic_celeba(tmp_path / "celeba")
    mnist_files = {"root": mnist, "download": "false", "batch_size": 16}
    pairs = {**mnist_files, "svhn_root": tmp_path / "svhn", "val_size": 100, "data_multiplications": 2}
    return {
        "digits_halves": {"batch_size": 16},
        "digits_label": {"batch_size": 16},
        "mnist_halves": {**mnist_files, "val_size": 100},
        "mnist_label": {**mnist_files, "split": "code"},
        "mnist_2view": {**mnist_files, "val_size": 100},
        "mnist_svhn": pairs,
        "mnist3": pairs,
        "mnist_svhn_text": pairs,
        "xrmb": {"root": tmp_path / "xrmb", "batch_size": 16},
        "mir_flickr": {"root": tmp_path / "flickr", "batch_size": 8},
        "celeba": {"root": tmp_path / "celeba", "batch_size": 8},
    }


def test_every_dataset_is_summarised_by_the_data_cli_and_feeds_one_training_step(tmp_path, capsys):
    from mmrepro.data.__main__ import main as data_cli
    from mmrepro.train import group_options

    fixtures = dataset_fixtures(tmp_path)
    assert sorted(fixtures) == group_options("dataset")  # every dataset config is covered
    for name, values in fixtures.items():
        assert data_cli(dataset_overrides(name, values)) == 0, name
        out = capsys.readouterr().out
        assert f"dataset {name}" in out and "split train:" in out and "modality" in out
        dm = fixture_datamodule(name, values)
        assert dm.name == name
        one_step(dm)
