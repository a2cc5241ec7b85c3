"""Lightning's validation loop, the callbacks group, the loggers and the console progress."""

from __future__ import annotations

import csv
import importlib
import inspect
import pkgutil
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.nn import functional as F

import mmrepro.models
from mmrepro.data.modalities import Modality
from mmrepro.models.cmmd import CMMDModule
from mmrepro.train import MetricHistory, build, build_datamodule, model_inputs
from tests.conftest import compose_config, records_under, run_cli

DIGITS = {  # experiment -> overrides that put it on the embedded digits at a small size
    "sohn14_t1_mrbm_mp": ["dataset=digits_halves", "model.n_hidden=32"],
    "sohn14_t1_mrbm_pcd": ["dataset=digits_halves", "model.n_hidden=32"],
    "jmvae16_vae": ["dataset=digits_label"],
    "jmvae16_cvae": ["dataset=digits_label"],
    "jmvae16_cmma": ["dataset=digits_label"],
    "jmvae16_jmvae_kl": ["dataset=digits_label"],
    "cmmd_digits": [],
    "m_xo_digits": [],
}


def built(experiment: str, *extra: str):
    cfg = compose_config(f"experiment={experiment}", *DIGITS[experiment], *extra)
    L.seed_everything(0, verbose=False)
    dm = build_datamodule(cfg.dataset)
    model = build("model", cfg.model, modalities=dm.modalities, **model_inputs(cfg.model, dm))
    return model, dm


def fit_briefly(experiment: str, validate: bool):
    model, dm = built(experiment)
    history = MetricHistory()
    L.Trainer(accelerator="cpu", max_epochs=2, limit_train_batches=3, limit_val_batches=1.0 if validate else 0,
              logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
              deterministic=True, num_sanity_val_steps=0, callbacks=[history]).fit(model, datamodule=dm)
    return model, dm, history.curves


def test_every_model_class_has_its_own_validation_step():
    for info in pkgutil.iter_modules(mmrepro.models.__path__):
        module = importlib.import_module(f"mmrepro.models.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, L.LightningModule) and cls.__module__ == module.__name__:
                assert cls.validation_step is not L.LightningModule.validation_step, cls


@pytest.mark.parametrize("experiment", sorted(DIGITS))
def test_validation_logs_a_finite_val_loss_each_epoch_and_leaves_training_unchanged(experiment):
    model, _, curves = fit_briefly(experiment, validate=True)
    assert curves["epoch"] == [0, 1]
    assert len(curves["val/loss"]) == 2 and all(torch.isfinite(torch.tensor(curves["val/loss"])))
    if experiment in ("cmmd_digits", "m_xo_digits"):
        assert len(curves["val/error"]) == 2 and all(0 <= e <= 100 for e in curves["val/error"])
    unvalidated, _, none = fit_briefly(experiment, validate=False)
    assert none == {}
    for (name, a), b in zip(model.state_dict().items(), unvalidated.state_dict().values()):
        assert torch.equal(a, b), f"validating changed {name}"


@pytest.mark.parametrize("experiment", sorted(DIGITS))
def test_load_from_checkpoint_rebuilds_the_trained_model(experiment, tmp_path):
    from mmrepro.train import model_hyperparameters

    cfg = compose_config(f"experiment={experiment}", *DIGITS[experiment])
    model, dm = built(experiment)
    model.save_hyperparameters(model_hyperparameters(cfg.model, dm), logger=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = type(model).load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    batch = dm.rows("test", 0, 20)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        if hasattr(model, "infer"):
            assert torch.equal(model.infer(batch, ["left"])[0], loaded.infer(batch, ["left"])[0])
        else:
            torch.manual_seed(0)
            expected = model.loss_terms(batch, 1.0)["loss"]
            torch.manual_seed(0)
            assert torch.equal(expected, loaded.loss_terms(batch, 1.0)["loss"])


def test_single_optimiser_models_take_lightnings_clipping_and_accumulation():
    def steps(**trainer_args):
        model, dm = built("jmvae16_vae")
        trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            deterministic=True, **trainer_args)
        trainer.fit(model, datamodule=dm)
        return trainer.global_step, model.state_dict()

    plain_steps, plain = steps()
    clipped_steps, clipped = steps(gradient_clip_val=1e-3)
    accumulated_steps, _ = steps(accumulate_grad_batches=2)
    assert (plain_steps, clipped_steps, accumulated_steps) == (4, 4, 2)
    assert not all(torch.equal(plain[k], clipped[k]) for k in plain)


def test_mrbm_val_loss_is_the_mean_field_cross_entropy_of_each_half_given_the_other():
    model, dm, curves = fit_briefly("sohn14_t1_mrbm_mp", validate=True)
    val = dm.split("val")
    xents = []
    for missing, observed in (("left", "right"), ("right", "left")):
        _, probs = model.infer(val, [observed])
        xent = F.binary_cross_entropy(probs[missing].clamp(1e-7, 1 - 1e-7), val[missing], reduction="none").sum(1).mean()
        assert curves[f"val/xent_{missing}"][-1] == pytest.approx(float(xent), rel=1e-5)
        xents.append(float(xent))
    assert curves["val/loss"][-1] == pytest.approx(sum(xents) / 2, rel=1e-5)


def test_m_xo_val_loss_is_the_mean_cross_entropy_and_val_error_the_error_on_the_validation_split():
    model, dm, curves = fit_briefly("m_xo_digits", validate=True)
    val = dm.split("val")
    model.eval()
    with torch.no_grad():
        logits = model.net(val)
    assert curves["val/loss"][-1] == pytest.approx(float(F.cross_entropy(logits, val["label"])), rel=1e-5)
    assert curves["val/error"][-1] == pytest.approx(100.0 * float((logits.argmax(1) != val["label"]).float().mean()),
                                                    abs=1e-4)


def test_cmmd_val_loss_on_a_training_size_batch_is_its_training_loss():
    mods = [Modality("a", (6,), "gaussian"), Modality("b", (5,), "gaussian")]
    g = torch.Generator().manual_seed(0)
    batch = {"a": torch.randn(20, 6, generator=g), "b": torch.randn(20, 5, generator=g),
             "label": torch.randint(0, 3, (20,), generator=g)}
    for omega, reduction in ((0.5, "sum"), (1.0, "mean"), (0.0, "sum")):
        model = CMMDModule(mods, label=Modality("label", (3,), "categorical"), omega=omega, cls_reduction=reduction,
                           encoder=[16], prior=[16], decoder=[16], classifier=[8], latent_dim=4, dropout=0.0)
        model.trainer = SimpleNamespace(datamodule=SimpleNamespace(batch_size=20))
        torch.manual_seed(1)
        train = model.loss_terms(batch, 1.0)["loss"]
        torch.manual_seed(1)
        assert float(model.validation_loss(batch)) == pytest.approx(float(train), rel=1e-5)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_loggers_callbacks_and_progress_lines_on_one_short_run(tmp_path):
    """logger=many plus W&B (offline): the config, per-epoch val/* and the final metrics reach each
    logger; callbacks=[default,early_stopping,lr_monitor] and +trainer.callbacks are all used; off a
    terminal the progress is one line per epoch at most."""
    result = run_cli("experiment=jmvae16_vae", "dataset=digits_label", "trainer.max_epochs=40", "eval.k=2", "eval.n_w=2",
                     "callbacks=[default,early_stopping,lr_monitor]", "callbacks.early_stopping.patience=1",
                     "callbacks.early_stopping.min_delta=1000", "callbacks.progress.every_s=0",
                     "+trainer.callbacks=[{_target_: lightning.pytorch.callbacks.Timer}]",
                     "logger=many", "+logger@logger.wandb=wandb", f"paths.runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = records_under(tmp_path)
    assert record["training"]["epochs"] == 2 and record["curves"]["epoch"] == [0, 1]  # stopped by early_stopping
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/40", "2/40"] and "val/loss" in epoch_lines[0]
    assert "━" not in result.stdout  # no Rich bar off a terminal
    run_dir = tmp_path / record["run_dir"].split(str(tmp_path) + "/")[1]
    rows = read_csv(run_dir / "csv" / "version_0" / "metrics.csv")
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert val == pytest.approx(record["curves"]["val/loss"])
    assert any(r.get("lr-Adam") for r in rows)                      # lr_monitor
    final = [r for r in rows if r.get("test/log_p(x)/single")]
    assert float(final[0]["test/log_p(x)/single"]) == pytest.approx(record["metrics"]["test/log_p(x)/single"])
    hparams = (run_dir / "csv" / "version_0" / "hparams.yaml").read_text()
    assert "latent_dim: 64" in hparams and "experiment: jmvae16_vae" in hparams
    assert list((run_dir / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    (wandb_log,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = wandb_log.read_bytes()
    for text in ("jmvae16_vae-seed0", "jmvae16_t1_run", "val/loss", "test/log_p(x)/single", "latent_dim", "run.json"):
        assert text.encode() in data, text


def test_unknown_or_unusable_callbacks_and_trainer_settings_are_one_line_errors(tmp_path):
    vae = ["experiment=jmvae16_vae", "dataset=digits_label"]
    for args, fragment in (([*vae, "callbacks=[default,early_stoping]"], "unknown callbacks 'early_stoping'"),
                           ([*vae, "callbacks=[default,lr_monitor]"], "no logger"),
                           ([*vae, "+trainer.callbacks=[{patience: 3}]"], "trainer.callbacks[0]: needs a _target_"),
                           (["model.n_hidden=16", "+trainer.gradient_clip_val=1.0"],   # the MRBM writes its own gradients
                            "gradient clipping is not supported for manual")):
        result = run_cli(*args, "trainer.max_epochs=1", "eval=none", f"paths.runs_dir={tmp_path}")
        assert result.returncode == 2 and fragment in result.stderr, result.stderr[-2000:]
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_generated_files_do_not_make_a_run_dirty(tmp_path, monkeypatch):
    import subprocess

    from mmrepro import records

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    for name in ("mmrepro/code.py", "results/t1.md", "runs/x/run.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.setattr(records, "REPO_ROOT", tmp_path)
    assert records.git_state()["dirty"] is False
    (tmp_path / "results/t1.md").write_text("2\n")
    (tmp_path / "runs/x/run.json").write_text("2\n")
    assert records.git_state()["dirty"] is False
    (tmp_path / "mmrepro/code.py").write_text("2\n")
    assert records.git_state()["dirty"] is True


def test_make_tables_runs_every_table_target():
    import re

    from tests.conftest import REPO

    makefile = (REPO / "Makefile").read_text()
    with_recipe = set(re.findall(r"^(table-\w+): install\n\t", makefile, flags=re.M))
    listed = re.search(r"^TABLE_TARGETS := ((?:.*\\\n)*.*)$", makefile, flags=re.M).group(1).replace("\\\n", " ").split()
    assert with_recipe and set(listed) == with_recipe


def test_a_regular_install_carries_the_configs_and_runs_from_any_folder(tmp_path):
    """`pip install .` (not editable): the configs ship inside the package; --help is quick."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import REPO

    source, target = tmp_path / "source", tmp_path / "site"   # a copy: the build leaves build/ in its source
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "mmrepro", "configs", "hydra_plugins"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree
                                           else {}))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(source)], check=True, capture_output=True, timeout=300)
    groups = {p.name for p in (REPO / "configs").iterdir() if p.is_dir()}
    assert groups == {p.name for p in (target / "mmrepro" / "configs").iterdir() if p.is_dir()}
    env = {**os.environ, "PYTHONPATH": str(target), "WANDB_MODE": "offline"}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def mmrepro(*args):
        return subprocess.run([sys.executable, "-m", "mmrepro", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)

    helped = mmrepro("--help")
    assert helped.returncode == 0, helped.stderr
    assert "jmvae16_vae" in helped.stdout and "cmmd_t2_mnist (" in helped.stdout
    assert " _mrbm," not in helped.stdout and "_variational" not in helped.stdout  # private configs
    result = mmrepro("trainer.max_epochs=1", "model.n_hidden=16", "trainer.enable_progress_bar=false")
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = records_under(work / "runs")
    assert record["status"] == "ok" and record["metrics"]["test_error/left"] >= 0
    batched = mmrepro("-m", "experiment=m_xo_digits", "seed=0,1", "trainer.max_epochs=1", "hydra/launcher=batched",
                      "trainer.enable_progress_bar=false", "paths.runs_dir=batched")   # the launcher plugin is installed
    assert batched.returncode == 0 and "train as one stacked model" in batched.stderr, batched.stderr[-2000:]
    assert sorted(r["batched"]["member"] for r in records_under(work / "batched")) == [0, 1]


def test_help_imports_neither_torch_nor_lightning():
    """What keeps `mmrepro --help` (and shell completion) at about a second."""
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys; sys.argv = ['mmrepro', '--help']; from mmrepro.__main__ import main; main(); "
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("[]"), out.stdout[-500:] + out.stderr[-2000:]


def test_tables_list_and_unknown_variant_and_data_help(tmp_path):
    listed = run_cli("--list", "--results-dir", str(tmp_path), module="mmrepro.tables")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert ["cmmd_t2_mnist", "mnist5k", "not", "written"] == rows[[r[:2] for r in rows].index(["cmmd_t2_mnist", "mnist5k"])][:4]
    (tmp_path / "cmmd").mkdir()
    (tmp_path / "cmmd" / "t1_xrmb.md").write_text("| row | seed | status |\n|---|---|---|\n| CMMD | 0 | ok |\n"
                                                 "| M-xO | not run (1) | — |\n")
    listed = run_cli("--list", "--results-dir", str(tmp_path), module="mmrepro.tables")
    assert any(line.split()[:4] == ["cmmd_t1", "xrmb", "partly", "measured"] for line in listed.stdout.splitlines())
    bogus = run_cli("cmmd_t1", "--variant", "mnist", module="mmrepro.tables")
    assert bogus.returncode == 2 and bogus.stderr.strip() == \
        "mmrepro-tables: error: table 'cmmd_t1' has no variant 'mnist'; valid: xrmb"
    assert "cmmd_t2_mnist          variants: mnist, mnist5k" in run_cli("--help", module="mmrepro.tables").stdout
    helped = run_cli("--help", module="mmrepro.data")
    assert helped.returncode == 0 and "digits_halves" in helped.stdout and "where to get it" in helped.stdout


def test_every_dataset_root_lives_under_paths_data_dir_which_mmrepro_data_moves(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    from mmrepro.overrides import group_options

    monkeypatch.setenv("MMREPRO_DATA", str(tmp_path / "store"))
    for name in group_options("dataset"):
        node = OmegaConf.to_container(compose_config(f"dataset={name}").dataset, resolve=True)
        roots = {k: v for k, v in node.items() if k.endswith("root")}
        assert all(str(v).startswith(str(tmp_path / "store")) for v in roots.values()), (name, roots)
    from mmrepro.errors import MmreproError
    from mmrepro.train import build_datamodule

    with pytest.raises(MmreproError, match=str(tmp_path / "store" / "xrmb")):   # the datamodule reads it too
        build_datamodule(compose_config("dataset=xrmb").dataset).setup()
    monkeypatch.delenv("MMREPRO_DATA")
    assert OmegaConf.to_container(compose_config("dataset=xrmb").dataset, resolve=True)["root"] == "data/xrmb"
    assert compose_config("paths.data_dir=/d", "dataset=mnist_svhn").dataset.svhn_root == "/d/svhn"


def test_progress_lines_give_the_recent_rate_not_the_average_since_the_start(monkeypatch, capsys):
    """A run slowed down half-way (another process on the cores) shows its current s/epoch."""
    from types import SimpleNamespace

    from mmrepro import progress

    clock = iter([100.0, 101.0, *range(102, 112), 116.0, 121.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    lines = progress.EpochLines(every_s=10)
    trainer = SimpleNamespace(current_epoch=0, max_epochs=50, sanity_checking=False, callback_metrics={}, global_step=0)
    lines.on_train_start(trainer, None)
    for epoch in range(13):                    # 1 s per epoch for 11 epochs, then 5 s
        trainer.current_epoch = epoch
        lines.on_train_epoch_end(trainer, None)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in printed] == ["1/50", "11/50", "13/50"]
    assert [line.split("[")[1] for line in printed] == ["1 s/epoch]", "1 s/epoch]", "5 s/epoch]"]
