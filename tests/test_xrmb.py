"""XRMB read from .mat files in the distributed layout (scipy v5) and in MATLAB v7.3 (HDF5), with
the three speaker protocols. The frame values are synthetic (the real files cannot be fetched
here); names, variables, shapes and dtypes are the distributed ones."""

import numpy as np
import pytest
import scipy.io

from mmrepro.data.xrmb import XRMB
from mmrepro.errors import ConfigError, DataError
from tests.conftest import run_cli

SPEAKERS = {"train": [1, 3, 10, 13, 27, 29, 43, 45, 50], "tune": [60, 61], "test": [7, 16, 20, 21, 23, 28, 31, 35]}
FILES = ("XRMBf2KALDI_window7_single1.mat", "XRMBf2KALDI_window7_single2.mat")


def synthetic_xrmb_arrays(frames_per_speaker=40, seed=0):
    rng = np.random.default_rng(seed)
    v1, v2 = {}, {}
    for split, (k1, k2, kl, kid) in {"train": ("X1", "X2", "trainLabel", "trainID"),
                                     "tune": ("XV1", "XV2", "tuneLabel", "tuneID"),
                                     "test": ("XTe1", "XTe2", "testLabel", "testID")}.items():
        n = frames_per_speaker * len(SPEAKERS[split])
        v1[k1] = rng.standard_normal((n, 273)).astype(np.float32)
        v2[k2] = rng.standard_normal((n, 112)).astype(np.float32)
        v2[kl] = (np.arange(n) % 40).astype(np.uint8).reshape(-1, 1)
        v2[kid] = np.repeat(SPEAKERS[split], frames_per_speaker).astype(np.float64).reshape(-1, 1)
    return v1, v2


def write_synthetic_xrmb(root, v73=False):
    root.mkdir(parents=True, exist_ok=True)
    v1, v2 = synthetic_xrmb_arrays()
    for name, arrays in zip(FILES, (v1, v2)):
        (write_mat_v73 if v73 else scipy.io.savemat)(root / name, arrays)
    return v1, v2


def write_mat_v73(path, arrays):
    """What MATLAB's save -v7.3 writes: HDF5 behind a 512-byte MAT header, arrays column-major."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v.T)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Nov 24 00:00:00 2026 HDF5 schema 1.00 ."
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def speakers(split):
    return set(np.unique(split["speaker"].numpy()).tolist())


def test_speaker_independent_protocol_trains_on_train_speakers_and_tests_on_the_eight(tmp_path):
    v1, v2 = write_synthetic_xrmb(tmp_path)
    dm = XRMB(root=str(tmp_path))
    dm.setup()
    train, val, test = (dm.split(s) for s in ("train", "val", "test"))
    assert speakers(train) == set(SPEAKERS["train"]) and speakers(test) == set(SPEAKERS["test"])
    assert speakers(val) == set(SPEAKERS["tune"])
    assert train["acoustic"].shape == (360, 273) and train["articulatory"].shape == (360, 112)
    assert np.allclose(train["acoustic"].numpy(), v1["X1"]) and np.array_equal(train["label"].numpy(), v2["trainLabel"][:, 0])


def test_folds_protocol_tests_on_one_pair_validates_on_the_next_and_trains_on_the_rest(tmp_path):
    write_synthetic_xrmb(tmp_path)
    pairs = [(1, 3), (43, 45), (10, 13), (27, 29)]
    for fold, pair in enumerate(pairs):
        dm = XRMB(root=str(tmp_path), protocol="folds", fold=fold)
        dm.setup()
        train, val = speakers(dm.split("train")), speakers(dm.split("val"))
        assert speakers(dm.split("test")) == set(pair)
        assert val == set(pairs[(fold + 1) % 4])
        assert not (val & train) and not (train & set(pair))      # validation speakers never train
        assert train | val == {1, 3, 10, 13, 27, 29, 43, 45} - set(pair)


def test_speaker_dependent_protocol_uses_one_speaker_split_70_30(tmp_path):
    write_synthetic_xrmb(tmp_path)
    dm = XRMB(root=str(tmp_path), protocol="speaker_dependent", speaker=16)
    dm.setup()
    sizes = [len(dm.split(s)["label"]) for s in ("train", "val", "test")]
    assert all(speakers(dm.split(s)) == {16} for s in ("train", "val", "test"))
    assert sum(sizes) == 40 and sizes[2] == 12


def test_matlab_v73_files_read_like_v5(tmp_path):
    write_synthetic_xrmb(tmp_path / "v5")
    write_synthetic_xrmb(tmp_path / "v73", v73=True)
    a, b = XRMB(root=str(tmp_path / "v5")), XRMB(root=str(tmp_path / "v73"))
    a.setup()
    b.setup()
    for s in ("train", "val", "test"):
        for k in ("acoustic", "articulatory", "label", "speaker"):
            assert np.array_equal(a.split(s)[k].numpy(), b.split(s)[k].numpy())


def test_unknown_speaker_names_the_key_and_lists_the_speakers(tmp_path):
    write_synthetic_xrmb(tmp_path)
    with pytest.raises(ConfigError, match=r"dataset.speaker: speaker\(s\) \[99\] do not exist.*speakers there"):
        XRMB(root=str(tmp_path), protocol="speaker_dependent", speaker=99).setup()
    with pytest.raises(ConfigError, match="dataset.fold_pairs"):
        XRMB(root=str(tmp_path), protocol="folds", fold_pairs=[[1, 3], [2, 4]]).setup()
    with pytest.raises(ConfigError, match="fold"):
        XRMB(root=str(tmp_path), protocol="folds", fold=7)


def test_missing_truncated_and_misshapen_files_are_reported(tmp_path):
    with pytest.raises(DataError, match="single1.mat is missing.*VCCA.*dataset.root"):
        XRMB(root=str(tmp_path)).setup()
    v1, v2 = write_synthetic_xrmb(tmp_path)
    path = tmp_path / FILES[1]
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="single2.mat is corrupt"):
        XRMB(root=str(tmp_path)).setup()
    v1["X1"] = v1["X1"][:, :200]
    scipy.io.savemat(tmp_path / FILES[0], v1)
    scipy.io.savemat(tmp_path / FILES[1], v2)
    with pytest.raises(DataError, match=r"X1 is float32 of shape \(360, 200\), expected float \(N, 273\)"):
        XRMB(root=str(tmp_path)).setup()
    v1["X1"] = np.zeros((360, 273), np.float32)
    v2["trainLabel"][0] = 41
    scipy.io.savemat(tmp_path / FILES[0], v1)
    scipy.io.savemat(tmp_path / FILES[1], v2)
    with pytest.raises(DataError, match="trainLabel holds 0..41, expected 0..39"):
        XRMB(root=str(tmp_path)).setup()


def test_data_cli_prints_speaker_counts(tmp_path):
    write_synthetic_xrmb(tmp_path)
    result = run_cli("dataset=xrmb", f"dataset.root={tmp_path}", module="mmrepro.data")
    assert result.returncode == 0, result.stderr
    assert "speakers in test: 7 (40), 16 (40)" in result.stdout
