"""The MNIST-SVHN-Text networks of CMMD's Tables H3-H5 (`networks: mopoe`): the sizes each layer
produces, the text layout, CMMD's prior and decoders built from them, and every model that uses
them trained one step on the MNIST-SVHN(-Text) fixtures."""

import pytest
import torch
from torch import nn

from mmrepro.data.modalities import Modality
from mmrepro.errors import ConfigError
from mmrepro.eval.generation import generate_missing
from mmrepro.models.cmmd import CMMDModule
from mmrepro.models.components.mopoe_networks import Generator, features
from mmrepro.models.mmvae import MMVAEModule
from mmrepro.models.mopoe import MoPoEModule
from mmrepro.models.mvae import MVAEModule
from mmrepro.models.vcca import VCCAModule, VCCAPrivateModule
from tests.conftest import fixture_datamodule, train_one_step

MNIST, SVHN = Modality("mnist", (28, 28), "bernoulli"), Modality("svhn", (3, 32, 32), "gaussian")
TEXT = Modality("text", (8, 71), "categorical")
LABEL = Modality("label", (10,), "categorical")


def sizes_after_each(net: nn.Module, x: torch.Tensor, kinds) -> list[tuple[int, ...]]:
    """Output shape (without the batch) of every layer of the given kinds, in order."""
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in net.modules() if isinstance(m, kinds)]
    net(x)
    for h in hooks:
        h.remove()
    return shapes


def test_table_h3_and_h5_layers_produce_the_sizes_the_tables_imply():
    conv2d, conv1d = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear), (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)
    net, width = features(SVHN, "relu")
    assert width == 128
    assert sizes_after_each(net, torch.zeros(2, 3, 32, 32), conv2d) == [(32, 16, 16), (64, 8, 8), (64, 4, 4),
                                                                         (128, 1, 1)]
    gen = Generator(SVHN, 20, "relu")
    assert sizes_after_each(gen, torch.zeros(2, 20), conv2d) == [(128,), (64, 4, 4), (64, 8, 8), (32, 16, 16),
                                                                  (3, 32, 32)]
    net, width = features(TEXT, "relu")
    assert width == 128
    assert sizes_after_each(net, torch.zeros(2, 8, 71), conv1d) == [(128, 8), (128, 4), (128, 1)]
    gen = Generator(TEXT, 20, "relu")
    assert sizes_after_each(gen, torch.zeros(2, 20), conv1d) == [(128,), (128, 4), (128, 8), (71, 8)]
    net, width = features(MNIST, "relu")
    assert width == 400 and net(torch.zeros(2, 28, 28)).shape == (2, 400)
    assert Generator(MNIST, 20, "relu", out_mult=2)(torch.zeros(2, 20)).shape == (2, 2 * 784)


def test_text_generator_puts_symbol_channels_last_and_the_variance_block_second():
    """Output channel c of the last 1-d convolution is symbol c % A of block c // A, at every position."""
    gen = Generator(TEXT, 20, "relu", out_mult=2)
    last = gen.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.arange(2 * 71, dtype=torch.float))
    out = gen(torch.randn(3, 20)).view(3, 2, 8, 71)
    assert torch.equal(out[:, 0], torch.arange(71.).expand(3, 8, 71))
    assert torch.equal(out[:, 1], (71 + torch.arange(71.)).expand(3, 8, 71))


def test_features_read_one_hot_text_position_by_position():
    """Moving the word changes the features; the same word at the same place gives the same ones."""
    net, _ = features(TEXT, "relu")
    net.eval()
    word = torch.nn.functional.one_hot(torch.tensor([[3, 5, 7, 70, 70, 70, 70, 70]]), 71).float()
    moved = word.roll(2, 1)
    assert torch.equal(net(word), net(word.clone())) and not torch.allclose(net(word), net(moved))


def test_cmmd_mopoe_prior_reads_every_observed_modality_and_decoders_read_z_alone():
    torch.manual_seed(0)
    model = CMMDModule([MNIST, SVHN, TEXT], label=LABEL, observed=["mnist", "svhn"], networks="mopoe",
                       encoder=[32], latent_dim=20, dropout=0.0).eval()
    b = {"mnist": torch.rand(4, 28, 28), "svhn": torch.randn(4, 3, 32, 32),
         "text": torch.nn.functional.one_hot(torch.randint(0, 71, (4, 8)), 71).float(), "label": torch.arange(4)}
    other = {**b, "mnist": torch.rand(4, 28, 28)}
    assert not torch.allclose(model.prior(b)[0], model.prior(other)[0])
    other_svhn = {**b, "svhn": torch.randn(4, 3, 32, 32)}
    assert not torch.allclose(model.prior(b)[0], model.prior(other_svhn)[0])
    z = torch.randn(4, 20)
    assert torch.equal(model.decode("text", z, b), model.decode("text", z, other))   # Table H5: input z only
    assert model.decode("text", z, b).shape == (4, 8, 71)                           # categorical: logits only
    assert sorted(model.decoders) == ["text"] and isinstance(model.decoders["text"], Generator)
    loss = model.loss_terms(b, 1.0)["loss"]
    loss.backward()
    assert all(p.grad is not None for p in model.prior_net.parameters())


def test_shapes_the_tables_do_not_cover_are_one_line_config_errors():
    with pytest.raises(ConfigError, match=r"^networks: .*\(C, 32, 32\)"):
        MoPoEModule([SVHN, Modality("face", (3, 64, 64), "gaussian")], label=LABEL, networks="mopoe")
    with pytest.raises(ConfigError, match="len_sequence"):
        CMMDModule([MNIST, Modality("text", (10, 71), "categorical")], label=LABEL, networks="mopoe")
    with pytest.raises(ConfigError, match="networks"):
        MVAEModule([MNIST, SVHN], label=LABEL, networks="resnet")


def test_every_model_with_mopoe_networks_trains_one_step_on_the_mnist_svhn_fixtures(tmp_path):
    from tests.test_jmvae import dataset_fixtures

    fixtures = dataset_fixtures(tmp_path)
    small = dict(latent_dim=8, networks="mopoe")
    models = [(CMMDModule, dict(encoder=[32], classifier=[8], **small)), (VCCAModule, small),
              (VCCAPrivateModule, {**small, "private_dim": 2}), (MVAEModule, small), (MMVAEModule, {**small, "k": 2}),
              (MoPoEModule, small)]
    for name in ("mnist_svhn", "mnist_svhn_text", "mnist3"):
        dm = fixture_datamodule(name, fixtures[name])
        for cls, kw in models:
            model = cls(dm.modalities, label=dm.label, **kw)
            changed = {k.split(".")[0] for k in train_one_step(model, dm)}
            assert changed >= ({"enc", "prior_net", "decoders", "classifier"} if cls is CMMDModule
                               else {"decoders"}), (name, cls, changed)
            generated = generate_missing(model, dm.rows("test", 0, 3))
            assert all(g.shape == (3, *model.by_name[n].shape) for n, g in generated.items()), (name, cls)
