"""MNIST-SVHN pairs, three-modality MNIST and MNIST-SVHN-Text, from torchvision-layout files:
MNIST raw IDX (real digits) and SVHN train_32x32.mat / test_32x32.mat (variables X uint8
32x32x3xN, y Nx1 with 10 for digit 0; the pixels are synthetic, the real files cannot be fetched)."""

import numpy as np
import pytest
import scipy.io
import torch

from mmrepro.data.mnist3 import MNIST3
from mmrepro.data.mnist_svhn import MNISTSVHN
from mmrepro.data.mnist_svhn_text import WORDS, MNISTSVHNText
from mmrepro.errors import DataError
from tests.conftest import write_mnist_raw


def write_synthetic_svhn(root, n_train=200, n_test=80, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in (("train_32x32.mat", n_train), ("test_32x32.mat", n_test)):
        digits = np.arange(n) % 10
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(root / name, {"X": x, "y": np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)})
        out[name] = (x, digits)
    return out


@pytest.fixture
def roots(tmp_path):
    write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    svhn = write_synthetic_svhn(tmp_path / "svhn")
    return tmp_path / "mnist", tmp_path / "svhn", svhn


def make(cls, roots, **kw):
    mnist_root, svhn_root, _ = roots
    dm = cls(root=str(mnist_root), svhn_root=str(svhn_root), download=False, data_multiplications=3, val_size=100, **kw)
    dm.setup()
    return dm


def test_pairs_share_the_class_and_each_example_gets_data_multiplications_partners(roots):
    dm = make(MNISTSVHN, roots)
    for split in ("train", "val", "test"):
        rows = dm.split(split)
        m_lab = dm.base_labels["mnist"][rows["mnist_index"].numpy()]
        s_lab = dm.base_labels["svhn"][rows["svhn_index"].numpy()]
        assert np.array_equal(m_lab, s_lab) and np.array_equal(m_lab, rows["label"].numpy())
        _, counts = np.unique(rows["mnist_index"].numpy(), return_counts=True)
        assert set(counts.tolist()) == {3}
    for modality in ("mnist", "svhn"):
        used = {s: set(dm.split(s)[f"{modality}_index"].tolist()) for s in ("train", "val", "test")}
        assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]


def test_resolved_batches_hold_the_source_images(roots):
    dm = make(MNISTSVHN, roots)
    batch = dm.rows("test", 0, 5)
    assert batch["mnist"].shape == (5, 28, 28) and batch["svhn"].shape == (5, 3, 32, 32)
    x_svhn, _ = roots[2]["test_32x32.mat"]
    row = int(batch["svhn_index"][0]) - 200  # test rows follow the 200 SVHN training images
    assert np.allclose(batch["svhn"][0].numpy(), x_svhn[..., row].transpose(2, 0, 1) / 255)
    loader = dm.train_dataloader()
    first = next(iter(loader))
    assert first["svhn"].shape == (dm.batch_size, 3, 32, 32) and first["mnist"].shape == (dm.batch_size, 28, 28)


def test_pairs_are_cached_and_subsampled(roots, monkeypatch):
    dm = make(MNISTSVHN, roots, max_pairs={"train": 50})
    assert len(dm.split("train")["label"]) == 50 and dm.cache_path().exists()
    import mmrepro.data.mnist_svhn as module
    monkeypatch.setattr(module, "match_by_class", lambda *a, **k: pytest.fail("cache not used"))
    again = make(MNISTSVHN, roots, max_pairs={"train": 50})
    assert torch.equal(again.split("train")["svhn_index"], dm.split("train")["svhn_index"])


def test_three_modality_triples_share_the_class_and_the_rotated_view_is_rotated(roots):
    dm = make(MNIST3, roots)
    rows = dm.split("train")
    labels = dm.base_labels["mnist"]
    assert np.array_equal(labels[rows["rotated_index"].numpy()], rows["label"].numpy())
    assert np.array_equal(dm.base_labels["svhn"][rows["svhn_index"].numpy()], rows["label"].numpy())
    batch = dm.rows("train", 0, 20)
    plain = dm._bases["mnist"][batch["rotated_index"]]
    assert not torch.allclose(batch["rotated"], plain)  # rotated, not a copy
    assert torch.allclose(batch["rotated"].sum((1, 2)), plain.sum((1, 2)), rtol=0.15)  # same ink, moved
    # journal Appendix C: cross-entropy for every missing modality, SVHN / 255 in [0, 1]
    assert [m.likelihood for m in dm.modalities] == ["bernoulli"] * 3
    assert 0 <= batch["svhn"].min() and batch["svhn"].max() <= 1
    assert make(MNIST3, roots, svhn_likelihood="gaussian").modalities[2].likelihood == "gaussian"


def test_text_spells_the_label_word_at_an_allowed_start(roots):
    dm = make(MNISTSVHNText, roots)
    rows = dm.rows("test", 0, 60)
    assert rows["text"].shape == (60, 8, 71)
    for string, label, start in zip(dm.decode(rows["text"]), rows["label"].tolist(), rows["text_start"].tolist()):
        word = WORDS[label]
        assert string == " " * start + word + " " * (8 - start - len(word))
        assert string[-1] == " " and 0 <= start <= 7 - len(word)
    again = dm.rows("test", 0, 60)["text"]
    assert torch.equal(again, rows["text"])  # fixed per pair


def test_fresh_text_moves_the_word_between_reads(roots):
    dm = make(MNISTSVHNText, roots, text="fresh")
    torch.manual_seed(0)
    reads = [dm.decode(dm.rows("train", 0, 100)["text"]) for _ in range(2)]
    assert reads[0] != reads[1]
    assert all(s.strip() == WORDS[lab] for s, lab in zip(reads[0], dm.split("train")["label"][:100].tolist()))


def test_missing_svhn_file_names_the_file_the_source_and_the_key(tmp_path):
    write_mnist_raw(tmp_path / "mnist", n_train=300, n_test=100)
    with pytest.raises(DataError, match=r"train_32x32.mat is missing.*torchvision.datasets.SVHN.*dataset.svhn_root"):
        MNISTSVHN(root=str(tmp_path / "mnist"), svhn_root=str(tmp_path / "none"), download=False, val_size=100).setup()
    write_synthetic_svhn(tmp_path / "bad")
    scipy.io.savemat(tmp_path / "bad" / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.zeros((4, 1))})
    with pytest.raises(DataError, match="y holds 0..0, expected integers 1..10"):
        MNISTSVHN(root=str(tmp_path / "mnist"), svhn_root=str(tmp_path / "bad"), download=False, val_size=100).setup()
    scipy.io.savemat(tmp_path / "bad" / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 4), np.float64), "y": np.ones((4, 1))})
    with pytest.raises(DataError, match=r"X is float64 of shape \(32, 32, 3, 4\), expected uint8"):
        MNISTSVHN(root=str(tmp_path / "mnist"), svhn_root=str(tmp_path / "bad"), download=False, val_size=100).setup()
