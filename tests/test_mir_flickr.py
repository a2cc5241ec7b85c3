"""MIR-Flickr read from the multimodal DBM layout (.npy image shards, CSR .npz tags, labels,
split indices). Values are synthetic (the real files cannot be fetched here); file names, array
names, shapes and dtypes are the distributed ones."""

import numpy as np
import pytest
import scipy.sparse

from mmrepro.data.mir_flickr import LABELLED_IMAGES, UNLABELLED_IMAGES, MIRFlickr
from mmrepro.errors import DataError

N = 60  # labelled examples in the synthetic fixture (the distribution has 25,000)


def save_csr(path, dense):
    m = scipy.sparse.csr_matrix(dense)
    np.savez(path, data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape))


def write_synthetic_flickr(root, n_unlabelled_files=2):
    rng = np.random.default_rng(0)
    (root / "image" / "labelled").mkdir(parents=True)
    (root / "image" / "unlabelled").mkdir(parents=True)
    (root / "text").mkdir()
    (root / "splits").mkdir()
    image = rng.normal(3.0, 2.0, (N, 3857)).astype(np.float32)
    for name, part in zip(LABELLED_IMAGES, np.split(image, 3)):
        np.save(root / "image" / "labelled" / name, part)
    counts = rng.poisson(0.003, (N, 2000)) * 2
    counts[0] = 0  # an example without tags, as in the real data
    save_csr(root / "text" / "text_all_2000_labelled.npz", counts)
    (root / "text" / "vocab.txt").write_text("\n".join(f"tag{j}" for j in range(2000)) + "\n")
    labels = (rng.random((N, 38)) < 0.2).astype(np.float64)
    np.save(root / "labels.npy", labels)
    order = rng.permutation(N)
    for k in range(1, 6):
        for name, part in zip(("train", "valid", "test"), np.split(np.roll(order, k), [24, 36])):
            np.save(root / "splits" / f"{name}_indices_{k}.npy", part.astype(np.int64))
    u_images = [rng.normal(3.0, 2.0, (10, 3857)).astype(np.float32) for _ in range(n_unlabelled_files)]
    for name, part in zip(UNLABELLED_IMAGES, u_images):
        np.save(root / "image" / "unlabelled" / name, part)
    u_counts = np.zeros((10 * n_unlabelled_files, 2000), dtype=np.int64)
    u_counts[::2, :3] = 1  # every other unlabelled pair has 3 tags, the rest none
    save_csr(root / "text" / "text_all_2000_unlabelled.npz", u_counts)
    return image, counts, labels


def test_labelled_splits_standardised_with_training_statistics_and_binary_tags(tmp_path):
    image, counts, labels = write_synthetic_flickr(tmp_path)
    dm = MIRFlickr(root=str(tmp_path), split=2)
    dm.setup()
    train, val, test = (dm.split(s) for s in ("train", "val", "test"))
    assert (len(train["image"]), len(val["image"]), len(test["image"])) == (24, 12, 24)
    assert abs(float(train["image"].mean())) < 1e-4 and abs(float(train["image"].std(0).mean()) - 1) < 0.05
    idx = np.load(tmp_path / "splits" / "test_indices_2.npy")
    assert np.array_equal(test["text"].numpy(), (counts[idx] > 0).astype(np.float32))
    assert np.array_equal(test["labels"].numpy(), labels[idx])
    assert test["image"].shape[1] == 3857 and test["text"].shape[1] == 2000 and test["labels"].shape[1] == 38


def test_unlabelled_pairs_need_at_least_min_tags(tmp_path):
    write_synthetic_flickr(tmp_path)
    dm = MIRFlickr(root=str(tmp_path), unlabelled=True, max_unlabelled_files=2)
    dm.setup()
    u = dm.split("unlabelled")
    assert len(u["image"]) == 10 and bool((u["text"].sum(1) >= 2).all())


def test_missing_and_corrupt_files_are_reported(tmp_path):
    with pytest.raises(DataError, match="combined-00001-of-00100.npy is missing.*multimodal DBM.*dataset.root"):
        MIRFlickr(root=str(tmp_path)).setup()
    write_synthetic_flickr(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros((N, 37)))
    with pytest.raises(DataError, match=r"labels.npy has shape \(60, 37\), expected \(N, 38\)"):
        MIRFlickr(root=str(tmp_path)).setup()
    np.savez(tmp_path / "text" / "text_all_2000_labelled.npz", data=np.ones(1))
    with pytest.raises(DataError, match=r"lacks the array\(s\) indices, indptr, shape"):
        MIRFlickr(root=str(tmp_path)).setup()
