"""Suzuki et al. 2016 Figures 4-5 (mmrepro/eval/face_attributes.py) on the CelebA fixture (real file
layout, synthetic pixels): the attribute vectors, the sampling formula, the edit formula, the
figures drawn from the artifacts, and bad settings."""

import lightning as L
import numpy as np
import pytest
import torch

from mmrepro.data.celeba import ATTRIBUTES, CelebA
from mmrepro.errors import ConfigError
from mmrepro.eval.face_attributes import FaceFigures
from mmrepro.eval.log_likelihood import IWLogLikelihood
from mmrepro.models.jmvae import JMVAEModule
from mmrepro.models.vae import VAEModule
from mmrepro.tables import figures
from tests.test_celeba import write_synthetic_celeba

FACES = {"generate": ["-Male", "Smiling"], "edit": ["Eyeglasses", "-Young"], "n_random": 3, "n_faces": 2, "n_pca": 20}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    write_synthetic_celeba(root)
    L.seed_everything(0, verbose=False)
    dm = CelebA(root=str(root), batch_size=8)
    model = JMVAEModule(dm.modalities, latent_dim=6, tower=[32], decoder=[32], conv_channels=[8, 8, 16, 16],
                        activation="relu", gan_weight=1.0, warmup_epochs=1)
    L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False).fit(model, datamodule=dm)
    return model.eval(), dm


def test_figure_artifacts_follow_the_captions(trained, tmp_path):
    model, dm = trained
    IWLogLikelihood(k=2, n_w=2, n_generated=0, faces=FACES)(model, dm, tmp_path)
    f4, f5 = np.load(tmp_path / "faces_from_attributes.npz"), np.load(tmp_path / "attribute_edits.npz")
    w = f4["attributes"]
    assert set(np.unique(w[0])) <= {-1.0, 1.0}                                   # Base: random +-1
    for col, (name, value) in enumerate([("Male", -2.0), ("Smiling", 2.0)], start=1):
        j = ATTRIBUTES.index(name)
        assert w[col, j] == value and np.array_equal(np.delete(w[col], j), np.delete(w[0], j))
    assert f4["average"].shape == (3, 3, 32, 32) and f4["random"].shape == (3, 3, 3, 32, 32)
    assert f4["z"].shape == (3, 20, 6)
    assert f5["edited"].shape == (2, 2, 3, 32, 32)
    for a in (f4["average"], f4["random"], f5["input"], f5["edited"]):
        assert a.min() >= 0 and a.max() <= 1

    # The input back in pixels is the fixture's image (centre crop, resize, standardise, undo).
    raw = dm.split("test")["image"][:2] * torch.as_tensor(dm.pixel_std) + torch.as_tensor(dm.pixel_mean)
    assert np.allclose(f5["input"], raw.clamp(0, 1).numpy(), atol=1e-5)

    # Figures from the artifacts.
    figures.faces_from_attributes([("JMVAE-GAN", tmp_path / "faces_from_attributes.npz")], tmp_path / "f4.png", "F4")
    figures.attribute_edits([("JMVAE-GAN", tmp_path / "attribute_edits.npz")], tmp_path / "f5.png", "F5")
    assert (tmp_path / "f4.png").stat().st_size > 5000 and (tmp_path / "f5.png").stat().st_size > 5000


def test_random_faces_at_zeta_zero_are_the_average_face(trained, tmp_path):
    model, dm = trained
    FaceFigures(**{**FACES, "zeta": 0.0})(model, dm, "test", tmp_path)
    f4 = np.load(tmp_path / "faces_from_attributes.npz")
    assert np.allclose(f4["random"], f4["average"][None], atol=1e-6)
    FaceFigures(**FACES)(model, dm, "test", tmp_path)
    f4 = np.load(tmp_path / "faces_from_attributes.npz")
    assert not np.allclose(f4["random"][0], f4["average"], atol=1e-3)


def test_edit_adds_the_change_of_the_average_face(trained, tmp_path):
    """x' = x + x'_mean - x_mean (Figure 5 caption), computed here independently in data space."""
    model, dm = trained
    FaceFigures(**FACES)(model, dm, "test", tmp_path)
    f5 = np.load(tmp_path / "attribute_edits.npz")
    with torch.no_grad():
        rows = dm.rows("test", 0, 2)
        z_x = model.unimodal["image"](rows)[0]
        w = model.decoders["attributes"](z_x)                                   # Gaussian: the mean
        avg = model.decoders["image"](model.unimodal["attributes"]({"attributes": w})[0])
        w2 = w.clone()
        w2[:, ATTRIBUTES.index("Eyeglasses")] = 2.0
        avg2 = model.decoders["image"](model.unimodal["attributes"]({"attributes": w2})[0])
        expected = (rows["image"] + avg2 - avg) * torch.as_tensor(dm.pixel_std) + torch.as_tensor(dm.pixel_mean)
    assert np.allclose(f5["generated_attributes"], w.numpy(), atol=1e-5)
    assert np.allclose(f5["edited"][:, 0], expected.clamp(0, 1).numpy(), atol=1e-4)


def test_bad_face_settings_are_one_line_config_errors(trained):
    model, _ = trained
    with pytest.raises(ConfigError, match="eval.faces.*unknown CelebA attribute 'Smiley'.*allowed: 5_o_Clock_Shadow"):
        FaceFigures(generate=["Smiley"])
    with pytest.raises(ConfigError, match="eval.faces.zeta"):
        FaceFigures(zeta=-1)
    vae = VAEModule(model.modalities, latent_dim=4, tower=[8], decoder=[8])
    with pytest.raises(ConfigError, match="eval.faces.*VAEModule.*allowed models: jmvae"):
        IWLogLikelihood(faces=FACES).check(vae, ["image", "attributes"])
