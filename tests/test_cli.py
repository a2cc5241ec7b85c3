"""The real entry point, as a user runs it: training, multiruns, resume, and every bad input."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_config, records_under, run_cli

FAST = ["trainer.enable_progress_bar=false", "model.n_hidden=64"]


def assert_one_line_error(result, *fragments):
    """Exit status 2 and exactly one line on stderr (no traceback, no Lightning chatter)."""
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmrepro: error: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_digits_training_run_single_half_svm_beats_majority_baseline(tmp_path):
    result = run_cli("experiment=sohn14_t1_mrbm_mp", "trainer.max_epochs=30", f"paths.runs_dir={tmp_path}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    (rec,) = records_under(tmp_path)
    from mmrepro.data.digits_halves import DigitsHalves
    dm = DigitsHalves()
    dm.setup()
    labels = dm.split("test")["label"].numpy()
    majority_error = 100 * (1 - np.bincount(labels).max() / len(labels))  # ~90%
    for query in ("left", "right"):
        assert rec["metrics"][f"test_error/{query}"] < majority_error / 2
    assert rec["metrics"]["test_error/left+right"] < 15
    # Provenance in the record.
    assert rec["status"] == "ok" and rec["seed"] == 0
    assert rec["data"]["dataset"] == "digits_halves" and rec["data"]["split_sizes"]["test"] == 360
    assert rec["config"]["model"]["objective"]["mf_iters"] == 10
    assert set(rec) >= {"git", "environment", "wall_time_s", "training", "choices"}
    assert (Path(rec["run_dir"]) / "checkpoints" / "last.ckpt").exists()
    assert (Path(rec["run_dir"]) / "figure_samples.npz").exists()
    # Each query's test predictions (the tables' paired tests) agree with its recorded error.
    predicted = np.load(Path(rec["run_dir"]) / "test_predictions.npz")
    assert np.array_equal(predicted["label"], labels)
    for query in ("left+right", "left", "right"):
        error = 100 * np.mean(predicted[f"predicted/{query}"] != labels)
        assert error == pytest.approx(rec["metrics"][f"test_error/{query}"])


def test_resume_continues_an_interrupted_run_from_its_last_checkpoint(tmp_path):
    first = run_cli("model=mrbm_pcd", "trainer.max_epochs=2", f"paths.runs_dir={tmp_path}", *FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    (rec,) = records_under(tmp_path)
    assert rec["training"]["epochs"] == 2 and rec["training"]["steps"] == 20
    resumed = run_cli(f"resume={rec['run_dir']}", "trainer.max_epochs=3", f"paths.runs_dir={tmp_path}/other")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rec2 = records_under(Path(rec["run_dir"]))[0]
    assert rec2["resumed"] and rec2["training"]["epochs"] == 3 and rec2["training"]["steps"] == 30
    assert rec2["choices"]["model"] == "mrbm_pcd" and rec2["config"]["model"]["n_hidden"] == 64
    assert not (tmp_path / "other").exists()  # the resumed run stays in its own directory
    assert "max_epochs: 2\n" in (Path(rec["run_dir"]) / ".hydra" / "config.yaml").read_text()  # as it was started


def test_two_member_multirun_through_submitit_local(tmp_path):
    result = run_cli("-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                     "model=mrbm_pcd,mrbm_mp", "trainer.max_epochs=2", f"paths.runs_dir={tmp_path}", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    recs = records_under(tmp_path)
    assert sorted(r["choices"]["model"] for r in recs) == ["mrbm_mp", "mrbm_pcd"]
    assert all(r["status"] == "ok" and r["sweep"]["num"] in (0, 1) for r in recs)
    assert "mmrepro: 2 of 2 members finished; sweep directory" in result.stderr  # the jobs' directory, read back


def test_failed_sweep_member_is_recorded_and_the_sweep_goes_on(tmp_path):
    result = run_cli("-m", "model=mrbm_pcd", "model.optim.lr=-1,0.01", "trainer.max_epochs=1",
                     f"paths.runs_dir={tmp_path}", *FAST)
    assert result.returncode == 1, result.stderr[-3000:]
    recs = sorted(records_under(tmp_path), key=lambda r: r["status"])
    assert [r["status"] for r in recs] == ["failed", "ok"]
    assert "model.optim.lr" in recs[0]["error"]


@pytest.mark.parametrize("args,fragments", [
    (["experiment=nope"], ["unknown experiment 'nope'", "sohn14_t1_mrbm_mp"]),
    (["dataset=cifar"], ["unknown dataset 'cifar'", "digits_halves", "mnist_halves"]),
    (["model=mrbm_pcd,dbm"], ["unknown model 'dbm'", "mrbm_cdpl"]),
    (["model.optim.lr=-0.1"], ["model.optim.lr", "0 < lr", "-0.1"]),
    (["model.objective.mf_iters=0"], ["model.objective.mf_iters", "1 <= mf_iters"]),
    (["eval.queries=[left,top]"], ["eval.queries", "unknown query 'top'", "left+right"]),
    (["model=mrbm_pcd", "model.optim.lr=1e38", "trainer.max_epochs=2"], ["training loss became", "at step", "last finite loss"]),
    (["model.optim.lrr=1"], ["model.optim.lrr: unknown key", "did you mean model.optim.lr?"]),
    (["model.lrr=1"], ["model.lrr: unknown key", "model.optim.lr"]),
    (["-m", "model=mrbm_pcd,mrbm_mp", "model.objective.gibbs_steps=2"], ["model.objective.gibbs_steps: unknown key"]),
    (["trainer.max_epochs=abc"], ["trainer.max_epochs: must be a number", "'abc'"]),
    (["seed=abc"], ["seed: must be a number", "'abc'"]),
    (["seed=-1"], ["seed: must be an integer with 0 <= seed <= 4294967295, got -1"]),
    (["trainer.max_epochs=-5"], ["trainer: `max_epochs` must be a non-negative integer or -1"]),
    (["trainer.accelerator=tpuu"], ["trainer:", "tpuu"]),
    (["resume=/nonexistent/run"], ["resume: '/nonexistent/run' is not a run directory"]),
    (["hydra.launcher.timeout_min=10"], ["overrides: Could not override 'hydra.launcher.timeout_min'"]),
])
def test_bad_input_is_one_line_and_nonzero_exit_and_leaves_no_run_directory(tmp_path, args, fragments):
    result = run_cli(*args, f"paths.runs_dir={tmp_path}", *FAST)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_a_key_only_the_swept_experiments_define_is_one_line_naming_the_fix(tmp_path):
    """Hydra composes a multirun's base config (no experiment chosen) before its members."""
    result = run_cli("-m", "sweep=jmvae16_t1_mnist5k", "model.warmup_epochs=1", f"paths.runs_dir={tmp_path}")
    assert_one_line_error(result, "model.warmup_epochs: only the swept experiments define it",
                          "write ++model.warmup_epochs=1")
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_mnist_files_are_one_line_errors(tmp_path, mnist_root):
    missing = run_cli("dataset=mnist_halves", f"dataset.root={tmp_path}/none", "dataset.download=false",
                      f"paths.runs_dir={tmp_path}/runs", *FAST)
    assert_one_line_error(missing, "train-images-idx3-ubyte is missing", "dataset.root", "torchvision.datasets.MNIST")
    labels = mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:20])
    corrupt = run_cli("dataset=mnist_halves", f"dataset.root={mnist_root}", "dataset.download=false",
                      "dataset.val_size=10", f"paths.runs_dir={tmp_path}/runs", *FAST)
    assert_one_line_error(corrupt, "train-labels-idx1-ubyte is truncated")
    assert records_under(tmp_path / "runs") == []


def test_every_eval_config_instantiates_with_its_defaults():
    """Each configs/eval/*.yaml builds its evaluator (a typo in a key or target fails here, not in a sweep)."""
    from mmrepro.train import build, group_options

    for name in group_options("eval"):
        node = compose_config(f"eval={name}").eval
        assert callable(build("eval", node)) and hasattr(build("eval", node), "check"), name
