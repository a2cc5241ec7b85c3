"""Reading MATLAB .mat files: scipy for v5 (how the distributed XRMB / MNIST.mat files are saved),
h5py for v7.3 (HDF5; what MATLAB writes with -v7.3), with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrepro.errors import DataError


def load_mat(path: Path, keys: list[str], what: str) -> dict[str, np.ndarray]:
    """The variables `keys` of a .mat file as numpy arrays in MATLAB's (row, column) orientation."""
    import scipy.io

    if not path.exists():
        raise FileNotFoundError(path)
    try:
        mat = scipy.io.loadmat(path, variable_names=keys)
    except NotImplementedError:  # MATLAB v7.3: HDF5, stored column-major (dimensions reversed)
        import h5py

        try:
            with h5py.File(path, "r") as f:
                mat = {k: np.asarray(f[k]).T for k in keys if k in f}
        except OSError as e:
            raise DataError(f"{what} file {path} is corrupt: not a readable MATLAB v7.3 (HDF5) file ({e})") from None
    except Exception as e:  # truncated, not a .mat at all, ...
        raise DataError(f"{what} file {path} is corrupt: scipy.io.loadmat failed ({type(e).__name__}: {e})") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        raise DataError(f"{what} file {path} lacks the variable(s) {', '.join(missing)}")
    return {k: np.asarray(mat[k]) for k in keys}
