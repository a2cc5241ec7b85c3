"""make bench's accounting (never its timings): FLOPs per sample as counted by torch must equal
the analytic count of the PCD update, and every objective trains through the timed path."""

import pytest
import torch

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


def test_jmvae_forward_flops_equal_the_sec_4_2_architecture_and_the_bench_paths_run(mnist_root):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mmrepro.data.mnist_label import MNISTLabel

    dm = MNISTLabel(root=str(mnist_root), download=False, split="code", batch_size=20)
    dm.setup()
    module = bench.jmvae_module(dm.modalities)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.loss_terms(dm.rows("train", 0, 20), 1.0)
    h, z, x, w = 512, 64, 784, 10
    macs = (x * h + h * h + w * h + h * h + 2 * h * 2 * z          # joint encoder: two towers, shared Gaussian head
            + x * h + h * h + 2 * h * z + w * h + h * h + 2 * h * z  # unimodal encoders q(z|x), q(z|w)
            + z * h + 2 * h * h + h * x + z * h + 2 * h * h + h * w)  # decoders p(x|z), p(w|z)
    assert counter.get_total_flops() == 2 * macs * 20
    train = bench.bench_jmvae(dm, steps=2, warmup=1, repeats=1)
    assert 2 * 2 * macs < train["flops_per_sample"] <= 3 * 2 * macs and 0 < train["data_share"]
    iw = bench.bench_iw_eval(dm, points=2, repeats=1, k=50, n_w=100)
    assert iw["samples_per_s"] > 0 and iw["flops_per_sample"] > 0


def test_cmmd_bench_times_the_appendix_h_model_and_skips_the_mmd_only_at_omega_one():
    """The timed CMMD is the configured MNIST-SVHN-Text model (Tables H3-H5 networks, 3 x 2500
    encoder), and the two timed settings differ by the MMD term alone."""
    import torch

    from mmrepro.models.components.mopoe_networks import Generator

    with_mmd, without = bench.cmmd_mst_module(0.5), bench.cmmd_mst_module(1.0)
    assert all(isinstance(d, Generator) for d in with_mmd.decoders.values())
    assert sorted(with_mmd.decoders) == ["svhn", "text"] and with_mmd.latent_dim == 20
    assert [m.out_features for m in with_mmd.enc.modules() if isinstance(m, torch.nn.Linear)] == [2500] * 3
    b = {"mnist": torch.rand(6, 28, 28), "svhn": torch.randn(6, 3, 32, 32),
         "text": torch.nn.functional.one_hot(torch.randint(0, 71, (6, 8)), 71).float(), "label": torch.arange(6)}
    assert with_mmd.loss_terms(b, 1.0)["mmd"] > 0 and without.loss_terms(b, 1.0)["mmd"] == 0
    r = bench.bench_cmmd_mmd(steps=1, warmup=0, repeats=1, batch=4)
    assert r["with_ms"] > 0 and r["without_ms"] > 0


def test_a_steps_ceiling_replays_exactly_the_products_torch_counts():
    """step_ceiling records every product of a CMMD step, forward and backward; the FLOPs of the
    recorded shapes, counted by hand (2 n k m per (n, k) x (k, m)), are what FlopCounterMode counts."""
    import torch

    model = bench.experiment_module("cmmd_digits", omega=0.5)
    batch = bench.random_batch(model, 100)
    recorder = bench.MatmulRecorder()
    with recorder:
        model.loss_terms(batch, 1.0)["loss"].backward()
    by_hand = 0
    for _func, args, _ in recorder.calls:
        shapes = [x[1] for x in args if isinstance(x, tuple) and x[0] == "tensor"]
        a, b = shapes[-2:]   # addmm(bias, a, b), mm(a, b)
        by_hand += 2 * a[0] * a[1] * b[1]
    torch.manual_seed(0)
    ceiling = bench.step_ceiling(lambda: model.loss_terms(batch, 1.0)["loss"].backward())
    assert ceiling["flops"] == by_hand and ceiling["ceiling_s"] > 0
    assert {f.overloadpacket.__name__ for f, _, _ in recorder.calls} <= {"mm", "addmm"}


def test_family_rows_count_the_hand_count_of_their_networks():
    """CMMD on the digits (configs/experiment/cmmd_digits.yaml): x_O the left half (32), x_M the right
    (32, Bernoulli), y 10 classes, hidden 256 x 2, z 16, classifier 50 x 2; the MMD's three kernels
    on a batch of 100. Forward MACs per example, by hand, then the timed row's fwd + bwd FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = bench.experiment_module("cmmd_digits", omega=0.5)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.loss_terms(bench.random_batch(model, 100), 1.0)
    h, z, x, y, b = 256, 16, 32, 10, 100
    macs = ((2 * x + y) * h + h * h + 2 * h * z      # q(z | x_O, x_M, y) and its Gaussian head
            + x * h + h * h + 2 * h * z              # p(z | x_O)
            + (z + x) * h + h * h + h * x            # p(x_M | x_O, z)
            + z * 50 + 50 * 50 + 50 * y              # p(y | z)
            + 3 * b * z)                             # MMD: three b x b kernels, per example
    assert counter.get_total_flops() == 2 * macs * b
    row = bench.bench_family("cmmd_digits", b, steps=2, warmup=1, repeats=1)
    assert 2 * 2 * macs < row["flops_per_sample"] <= 3 * 2 * macs and 0 < row["of_ceiling"]
    conv = bench.bench_family("mopoe_mst", 4, steps=1, warmup=0, repeats=1)   # convolutions are products too
    assert conv["flops_per_sample"] > 0 and 0 < conv["of_ceiling"]


def test_bench_report_marks_each_target_met_or_missed_and_names_the_machine():
    from mmrepro.bench import bench_markdown

    report = {"machine": {"cpu": "Test CPU", "cpu_count": 2, "torch_threads": 2, "gpu": None, "torch": "2.x",
                          "matmul_peak_gflops": 100.0},
              "date": "2026-12-01 06:00", "code": {"commit": "abcdef0123456", "dirty": False},
              "rows": [{"row": "jmvae_kl", "samples_per_s": 3341.0, "gflop_per_sample": 0.012, "of_peak": 0.4,
                        "of_ceiling": 0.55, "x_sklearn": None,
                        "checks": [{"target": "of peak >= 60%", "met": False}, {"target": "of ceiling >= 80%", "met": False}]},
                       {"row": "ml_pcd", "samples_per_s": 9000.0, "gflop_per_sample": 0.004, "of_peak": 0.71,
                        "of_ceiling": None, "x_sklearn": 2.76, "checks": [{"target": "x sklearn >= 2.5", "met": True}]}],
              "other": [{"what": "batched", "value": "1.4x", "target": ">= 10x", "met": False}]}
    text = bench_markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| jmvae_kl") or line.startswith("| ml_pcd")]
    assert rows[0].count("**missed**") == 2 and "3,341" in rows[0] and "40.0%" in rows[0] and "55.0%" in rows[0]
    assert "x sklearn >= 2.5: met" in rows[1] and "| 2.76 |" in rows[1]
    assert "Test CPU (2 cores" in text and "abcdef0123" in text and "100.0 GFLOP/s" in text
    assert "| batched | 1.4x | >= 10x: **missed** |" in text


@pytest.mark.parametrize("overrides, vary", [(["experiment=cmmd_digits"], "omega"),
                                             (["experiment=sohn14_t1_mrbm_mp", "dataset=digits_halves"], None)])
def test_batched_rows_time_the_same_members_one_by_one_and_stacked(overrides, vary):
    from mmrepro.bench import bench_batched

    out = bench_batched(overrides, 2, steps=3, warmup=1, repeats=1, modes=("stacked",), vary=vary)
    assert out["members"] == 2 and out["sequential"] > 0 and out["stacked"] > 0
    assert set(out) == {"members", "sequential", "stacked", "per_step"}


def test_the_stacked_floor_counts_each_members_products_once_and_bounds_the_speedup():
    """stacked_floor records the products of one stacked CMMD step: the FLOPs torch counts for the
    members' own steps, summed; floor_note's bound is E x batch / (products + Adam) over the rate
    one after another."""
    from hydra import compose, initialize_config_dir

    from mmrepro import CONFIG_DIR
    from mmrepro.batched import StackedMembers
    from mmrepro.bench import build, floor_note, model_inputs, recorded_products, stacked_floor
    from mmrepro.train import build_datamodule

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", ["experiment=cmmd_digits", "model.encoder=[24]", "model.prior=[24]",
                                 "model.decoder=[24]", "model.classifier=[8]", "model.latent_dim=4"])
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    members = [build("model", cfg.model, modalities=dm.modalities, **model_inputs(cfg.model, dm)) for _ in range(3)]
    one, _ = recorded_products(lambda: members[0].loss_terms(dm.rows("train", 0, dm.batch_size), 1.0)["loss"].backward())
    floor = stacked_floor(StackedMembers(members, [0, 1, 2]), dm)
    assert floor["flops"] == 3 * one > 0 and floor["ceiling_s"] > 0 and floor["adam_s"] > 0
    note = floor_note("toy", {"members": 2, "per_step": 100, "sequential": 1000.0,
                              "floor": {"flops": 2e9, "ceiling_s": 0.01, "adam_s": 0.01}})
    assert note["value"] == "10.0 + 10.0 ms: at most 10.0x" and "(2.00 GFLOP)" in note["what"]


def test_the_adam_note_bounds_the_share_by_products_plus_the_update_and_leaves_the_model_alone():
    """adam_note: the parameter count and ceiling / (ceiling + Adam); adam_seconds times a copy."""
    from mmrepro.bench import adam_note, adam_seconds

    net = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Linear(20, 5))   # 620 + 105 parameters
    before = [p.detach().clone() for p in net.parameters()]
    seconds = adam_seconds(net, seconds=0.01)
    assert seconds > 0 and all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    note = adam_note("toy", net, {"ceiling_s": 0.003, "adam_s": 0.001})
    assert "(0.00M parameters)" in note["what"] and note["value"].endswith("at most 75.0%")
    assert "1.00 ms against 3.00 ms" in note["value"]
