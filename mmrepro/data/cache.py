"""Derived datasets (pairings, rotations, decoded images) are built once and cached next to their
source under a hash of everything they depend on, so a changed source or parameter rebuilds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def cache_file(folder: Path, prefix: str, key: dict) -> Path:
    """folder/<prefix>-<16 hex digits of sha256(key)>.npz"""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(folder) / f"{prefix}-{digest}.npz"


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temporary file, then rename: a reader never sees half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def save_splits(path: Path, splits: dict[str, dict[str, np.ndarray]]) -> None:
    save_npz(path, {f"{s}/{k}": v for s, d in splits.items() for k, v in d.items()})


def load_splits(path: Path) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as f:
        for name in f.files:
            split, key = name.split("/", 1)
            out.setdefault(split, {})[key] = f[name]
    return out
