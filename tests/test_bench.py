"""make bench's accounting (never its timings): FLOPs per sample as counted by torch must equal
the analytic count of the PCD update, and every objective trains through the timed path."""

import pytest

from mmrepro import bench
from mmrepro.data.mnist_halves import MNISTHalves


@pytest.fixture
def datamodule(mnist_root):
    dm = MNISTHalves(root=str(mnist_root), download=False, val_size=10, batch_size=25)
    dm.setup()
    return dm


def test_pcd_flops_per_sample_equal_five_visible_by_hidden_products(datamodule):
    r = bench.bench_objective("mrbm_pcd", datamodule, steps=2, warmup=1, repeats=1)
    assert r["flops_per_sample"] == 5 * 2 * 784 * 1024
    assert r["samples_per_s"] > 0


@pytest.mark.parametrize("name", ["mrbm_cdpl", "mrbm_mp"])
def test_other_objectives_run_through_the_timed_training_path(datamodule, name):
    r = bench.bench_objective(name, datamodule, steps=1, warmup=1, repeats=1)
    assert r["flops_per_sample"] > 5 * 2 * 784 * 1024 and r["samples_per_s"] > 0
