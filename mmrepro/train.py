"""One run, as Hydra launches it (mmrepro.launch.task): compose -> instantiate -> fit -> evaluate -> record."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import json
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, ProgressBar
from omegaconf import DictConfig, OmegaConf

import mmrepro.launch  # noqa: F401  registers the config resolvers the run directories use
from mmrepro.checkpointing import CHECKPOINT_NAME, Interrupted, checkpoint_callback, readable_checkpoint
from mmrepro.compiling import check_backend, compile_training
from mmrepro.errors import ConfigError, MmreproError, check_range
from mmrepro.loggers import log_config, log_results, logger_nodes
from mmrepro.overrides import GROUPS, group_options  # noqa: F401  group_options: re-exported
from mmrepro.records import RECORD_NAME, environment, git_state, read_record, write_json_atomic

# Lightning 2.6 still builds torch's LeafSpec, which torch >= 2.10 deprecates: not the user's to act on.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)

# Lightning's start-up chatter (GPU/TPU availability, tips) stays off stderr; its warnings do not.
for _name in ("lightning.pytorch", "lightning.fabric", "tensorboardX"):
    logging.getLogger(_name).setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.callbacks.model_summary").setLevel(logging.INFO)  # callbacks=[...,model_summary]


def build(group: str, node: DictConfig, **kwargs):
    """hydra.utils.instantiate, with errors raised by our constructors re-keyed under `group`.
    Python objects in kwargs (e.g. the datamodule's Modality list) are passed as they are."""
    try:
        return hydra.utils.instantiate(node, _convert_="all", _partial_=True)(**kwargs)
    except hydra.errors.InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            raise cause.under(group) from None
        if isinstance(cause, MmreproError):
            raise cause from None
        raise
    except ConfigError as e:
        raise e.under(group) from None
    except (MisconfigurationException, ValueError, TypeError) as e:
        if group != "trainer":  # Lightning's own checks of its Trainer arguments (raised by the call, not instantiate)
            raise
        raise ConfigError("trainer", " ".join(str(e).split())) from None


def build_datamodule(node: DictConfig):
    """The dataset config's datamodule. `dataset.note` (free text the tables show, e.g. "5,000-digit
    subset"; any dataset, set by a sweep config or `+dataset.note=...`) goes to the run record, not
    to the datamodule."""
    values = OmegaConf.to_container(node, resolve=True)  # resolved in place: roots under ${paths.data_dir}
    values.pop("note", None)
    return build("dataset", OmegaConf.create(values))


class MetricHistory(Callback):
    """Every validation epoch's `val/*` metrics (Lightning's callback_metrics), kept for the run
    record's `curves` ({"epoch": [...], metric: [...]}) and the learning-curve figures."""

    def __init__(self):
        self.curves: dict[str, list] = {}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if values:
            self.curves.setdefault("epoch", []).append(trainer.current_epoch)
            for k, v in values.items():
                self.curves.setdefault(k, []).append(v)

    def state_dict(self) -> dict:
        return {"curves": self.curves}

    def load_state_dict(self, state: dict) -> None:
        self.curves = state.get("curves", {})


def fit(trainer: L.Trainer, model, datamodule, ckpt: Path | None) -> None:
    """trainer.fit, from the checkpoint ckpt if given; Lightning's refusals of a setting it only
    checks when fitting starts (a callback that needs a logger, ...) are one line."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt and readable_checkpoint(ckpt, "resume"))
    except MisconfigurationException as e:
        raise ConfigError("trainer", " ".join(str(e).split())) from None


def trainer_node(cfg: DictConfig) -> DictConfig:
    """The trainer config without `callbacks` (chosen_callbacks adds those)."""
    values = OmegaConf.to_container(cfg.trainer, resolve=True)
    values.pop("callbacks", None)
    return OmegaConf.create(values)


def chosen_callbacks(cfg: DictConfig) -> list[Callback]:
    """The `callbacks` group's entries (configs/callbacks/) and any `+trainer.callbacks=[...]`, each
    instantiated by its _target_; progress bars only with trainer.enable_progress_bar."""
    nodes = list((cfg.get("callbacks") or {}).items()) + [(f"trainer.callbacks[{i}]", n) for i, n in
                                                           enumerate(cfg.trainer.get("callbacks") or [])]
    made = []
    for name, node in nodes:
        key = name if name.startswith("trainer.") else f"callbacks.{name}"
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(key, "needs a _target_ (the callback's class), e.g. "
                              "lightning.pytorch.callbacks.EarlyStopping")
        try:
            callback = hydra.utils.instantiate(node, _convert_="all")
        except hydra.errors.InstantiationException as e:
            raise ConfigError(key, one_line(e.__cause__ or e)) from None
        if not isinstance(callback, Callback):
            raise ConfigError(key, f"{node._target_} is not a Lightning Callback")
        if isinstance(callback, ProgressBar) and not cfg.trainer.get("enable_progress_bar"):
            continue
        made.append(callback)
    return made


def load_weights(model, path: Path, target: str) -> None:
    """init_from=<checkpoint>: start from (or, with trainer.max_epochs=0, evaluate) saved weights
    of the same model with the same settings."""
    if not path.is_file():
        raise ConfigError("init_from", f"{path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ConfigError("init_from", f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    saved = ckpt.get("mmrepro_model") if isinstance(ckpt, dict) else None
    if saved != target:
        raise ConfigError("init_from", f"{path} holds a checkpoint of model {saved or '(not an mmrepro run)'}, "
                          f"but this run's model is {target}; allowed: a checkpoint of {target}")
    state, own = ckpt["state_dict"], model.state_dict()
    # Empty buffers are sized on first use (persistent chains): any saved size fits them.
    differ = [k for k in [*own, *(k for k in state if k not in own)]
              if k not in state or k not in own or (state[k].shape != own[k].shape and own[k].numel() > 0)]
    if differ:
        first = differ[0]
        shapes = ", ".join(f"{where} {tuple(d[first].shape) if first in d else 'absent'}"
                           for where, d in (("saved", state), ("here", own)))
        raise ConfigError("init_from", f"{path} was saved with other model settings: {len(differ)} tensors differ, "
                          f"the first {first} ({shapes}); use the settings of the run that saved it")
    model.load_state_dict(state)


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, dict]:
    """The config of the run being resumed, with this invocation's key=value overrides on top."""
    run_dir = Path(cfg.resume)
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.exists():
        raise ConfigError("resume", f"{run_dir} is not a run directory: {saved} is missing")
    old = OmegaConf.load(saved)
    choices = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices)
    for override in OverridesParser.create().parse_overrides(list(HydraConfig.get().overrides.task)):
        key = override.key_or_group
        if key == "resume":
            continue
        if key in GROUPS:
            raise ConfigError("resume", f"cannot change the config group {key!r} of a resumed run")
        OmegaConf.update(old, key, override.value(), merge=True)
    old.resume = str(run_dir)
    return old, choices


def train(cfg: DictConfig):
    """Hydra task function. A user-facing error is one line on stderr and exit status 2 (an error
    before training leaves no run directory behind); SIGTERM / SIGINT write a checkpoint and exit
    128 + the signal's number with the resume command. Inside a multirun every failure, ours or
    not, is recorded in the member's run.json (status failed, one-line error) and the sweep goes on."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    run_dir = Path(cfg.resume) if cfg.get("resume") else Path(hc.runtime.output_dir)
    started, git = time.time(), imported_code_state()
    continuing = False
    if multirun and not cfg.get("resume"):
        # A sweep started again in its own directory (hydra.sweep.dir=<dir>, or a job that submitit
        # requeued after a preemption): finished members are kept, interrupted ones resume.
        done = run_dir / RECORD_NAME
        if done.exists() and read_record(done)["status"] == "ok":
            print(f"mmrepro: sweep member {hc.job.num} already finished ({done}); kept", file=sys.stderr)
            return None
        continuing = (run_dir / "checkpoints" / CHECKPOINT_NAME).is_file()
    try:
        return fit_and_evaluate(cfg, run_dir, started, git, continuing)
    except Interrupted as e:
        print(f"mmrepro: {e}", file=sys.stderr)
        if multirun:
            failure_record(cfg, run_dir, started, git, str(e), status="interrupted")
        sys.exit(128 + e.signum)
    except Exception as e:
        if not (multirun or isinstance(e, MmreproError)):
            raise  # a defect in a single run: the traceback is what a developer needs
        message = one_line(e)
        if not multirun:
            print(f"mmrepro: error: {message}", file=sys.stderr)
            if not cfg.get("resume"):
                remove_unstarted(run_dir, Path(cfg.paths.runs_dir))
            sys.exit(2)
        print(f"mmrepro: sweep member {hc.job.num} failed: {message}", file=sys.stderr)
        try:
            failure_record(cfg, run_dir, started, git, message)
        except OSError as why:  # the member's directory itself is unwritable: the summary counts it as failed
            print(f"mmrepro: sweep member {hc.job.num}: its record could not be written: {one_line(why)}", file=sys.stderr)
        return None


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if isinstance(e, MmreproError) else f"{type(e).__name__}: {text}"


def failure_record(cfg: DictConfig, run_dir: Path, started: float, git: dict, message: str,
                   status: str = "failed", choices: dict | None = None, sweep: dict | None = None, **extra) -> None:
    """A failed sweep member's run.json; choices and sweep default to the running Hydra job's."""
    if choices is None or sweep is None:
        hc = HydraConfig.get()
        choices, sweep = dict(hc.runtime.choices), {"dir": hc.sweep.dir, "num": hc.job.num}
    write_json_atomic(run_dir / RECORD_NAME, {
        "status": status, "error": message, "table": OmegaConf.to_container(cfg.table),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "choices": choices, "seed": cfg.seed, "run_dir": str(run_dir), "sweep": sweep, "git": git,
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"), **extra,
    })


def remove_unstarted(run_dir: Path, runs_dir: Path) -> None:
    """Remove the directory Hydra made for a single run that failed before writing a checkpoint,
    and its parents up to runs_dir while they are empty."""
    if (run_dir / "checkpoints" / CHECKPOINT_NAME).exists() or not run_dir.is_dir():
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    root = runs_dir.resolve()
    parent = run_dir.resolve().parent
    while parent != root and root in parent.parents and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def model_inputs(node: DictConfig, datamodule) -> dict:
    """What a model takes from the datamodule besides its modalities: the class label y, for the
    models whose constructor has a `label` parameter (CMMD and its baselines)."""
    cls = hydra.utils.get_class(node._target_)
    takes = any("label" in inspect.signature(c.__init__).parameters for c in cls.__mro__ if "__init__" in vars(c))
    return {"label": datamodule.label} if takes else {}


def model_hyperparameters(node: DictConfig, datamodule) -> dict:
    """The model's constructor arguments as plain data, kept in every checkpoint, so that
    `<ModelClass>.load_from_checkpoint(path)` rebuilds the model: the config's values, with the
    datamodule's modalities (and class label) as dicts of their fields."""
    hparams = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not k.startswith("_")}
    hparams["modalities"] = [dataclasses.asdict(m) for m in datamodule.modalities]
    if model_inputs(node, datamodule):
        hparams["label"] = datamodule.label and dataclasses.asdict(datamodule.label)
    return hparams


@functools.cache
def imported_code_state() -> dict:
    """The git state when the process first ran a job: the code every member of an in-process
    sweep runs, even if the tree is edited while the sweep goes on."""
    return git_state()


def fit_and_evaluate(cfg: DictConfig, run_dir: Path, started: float, git: dict, continuing: bool = False) -> dict:
    """continuing: a sweep member resuming in its own directory with its own config."""
    hc = HydraConfig.get()
    choices = dict(hc.runtime.choices)
    resuming = bool(cfg.get("resume")) or continuing
    if cfg.get("resume"):
        cfg, choices = resumed_config(cfg)
    L.seed_everything(check_range("seed", cfg.seed, 0, 2**32 - 1, integer=True), workers=True, verbose=False)
    backend = check_backend(cfg.get("compile"))
    datamodule = build_datamodule(cfg.dataset)
    evaluator = build("eval", cfg.eval)
    model = build("model", cfg.model, modalities=datamodule.modalities, **model_inputs(cfg.model, datamodule))
    model.save_hyperparameters(model_hyperparameters(cfg.model, datamodule), logger=False)
    evaluator.check(model, [m.name for m in datamodule.modalities])  # before any training
    compile_training(model, backend)
    if cfg.get("init_from"):
        load_weights(model, Path(cfg.init_from), cfg.model._target_)
    datamodule.setup()  # read and check the data before any training starts
    loggers = [build(key, node, save_dir=str(run_dir)) for key, node in logger_nodes(cfg.get("logger"))]
    checkpoints = checkpoint_callback(cfg, run_dir, cfg.model._target_)
    history = MetricHistory()
    trainer = build("trainer", trainer_node(cfg), logger=loggers or False, default_root_dir=str(run_dir),
                    callbacks=[checkpoints, history, *chosen_callbacks(cfg)])
    ckpt = checkpoints.path if resuming and checkpoints.path.exists() else None
    pretraining = pretrain(cfg, model, datamodule, run_dir, resuming, main_checkpoint=ckpt)
    log_config(loggers, cfg, choices)
    fit(trainer, model, datamodule, ckpt)
    if trainer.global_rank != 0:
        return {}
    training = {"epochs": trainer.current_epoch, "steps": trainer.global_step, "final_loss": model.last_finite_loss,
                "pretraining": pretraining, "checkpoint_writes": checkpoints.cost()}
    sweep = {"dir": hc.sweep.dir, "num": hc.job.num} if hc.mode == RunMode.MULTIRUN else None
    metrics = evaluate_and_record(cfg, run_dir, model, datamodule, evaluator, choices, training, history.curves,
                                  str(torch.device(trainer.strategy.root_device)), started, git, resuming, sweep)
    checkpoints.finished()
    log_results(loggers, metrics, run_dir, trainer.global_step)
    return metrics


def evaluate_and_record(cfg: DictConfig, run_dir: Path, model, datamodule, evaluator, choices: dict, training: dict,
                        curves: dict, device: str, started: float, git: dict, resuming: bool, sweep: dict | None,
                        **extra) -> dict:
    """Evaluate the trained model and write its run.json (atomically); the metrics. Evaluation
    draws from a stream seeded by the run's seed alone: evaluating the saved weights again
    (init_from=<checkpoint> trainer.max_epochs=0) reproduces the recorded metrics exactly."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    metrics = evaluator(model, datamodule, run_dir)
    data = datamodule.identity()
    data["note"] = cfg.dataset.get("note")
    record = {
        "status": "ok",
        "table": OmegaConf.to_container(cfg.table),
        "choices": choices,
        "seed": cfg.seed,
        "metrics": metrics,
        "training": training,
        "curves": curves,
        "warnings": data.get("warnings", []) + list(getattr(evaluator, "warnings", [])),
        "data": data,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "git": git,
        "environment": environment(),
        "device": device,
        "wall_time_s": round(time.time() - started, 2),
        "started": dt.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "resumed": resuming,
        "run_dir": str(run_dir),
        "sweep": sweep,
        **extra,
    }
    write_json_atomic(run_dir / RECORD_NAME, record)
    print(f"mmrepro: run record {run_dir / RECORD_NAME}: " +
          ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def pretrain(cfg: DictConfig, model, datamodule, run_dir: Path, resuming: bool, main_checkpoint: Path | None):
    """Stage 1 of a two-stage scheme (CMMD on MIR-Flickr, Sec. 4.3.3), when `pretrain.split` is set:
    `pretrain.epochs` epochs on the split `pretrain.split` inside the model's unsupervised_stage(),
    then the main fit starts from those weights with a fresh optimiser (the paper: "we used the
    weights from the first stage"). It has its own checkpoint (checkpoints/pretrain/last.ckpt): a run
    killed in stage 1 resumes stage 1; once the main fit has a checkpoint, resuming skips stage 1
    and reports the summary stage 1 left in checkpoints/pretraining.json."""
    spec = cfg.get("pretrain")
    if not spec or spec.get("split") is None:
        return None
    if not hasattr(model, "unsupervised_stage"):
        raise ConfigError("pretrain", f"{type(model).__name__} has no unsupervised stage; allowed: pretrain.split=null")
    epochs = check_range("pretrain.epochs", spec.get("epochs"), 1, integer=True)
    summary = run_dir / "checkpoints" / "pretraining.json"
    if main_checkpoint is not None and summary.exists():
        return json.loads(summary.read_text())
    checkpoints = checkpoint_callback(cfg, run_dir, cfg.model._target_, subdir="pretrain")
    progress = [c for c in chosen_callbacks(cfg) if isinstance(c, ProgressBar)]
    trainer = build("trainer", OmegaConf.merge(trainer_node(cfg), {"max_epochs": epochs, "limit_val_batches": 0}),
                    logger=False, callbacks=[checkpoints, *progress], default_root_dir=str(run_dir))
    ckpt = checkpoints.path if resuming and checkpoints.path.exists() else None
    with datamodule.training_on(spec.split), model.unsupervised_stage():
        fit(trainer, model, datamodule, ckpt)
        examples = len(next(iter(datamodule.split(spec.split).values())))
    done = {"split": spec.split, "examples": examples, "epochs": trainer.current_epoch, "steps": trainer.global_step}
    write_json_atomic(summary, done)
    return done
