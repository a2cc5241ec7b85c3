"""Checkpoints during training, exact resume and clean stops on SIGTERM / SIGINT.

One Lightning callback, RunCheckpoint, owns a run's one checkpoint file (checkpoints/last.ckpt):
- when: at an epoch end once the last write is older than `min_interval` (so writes cost at most
  `max_cost` of training time, measured on the run's own writes), after any step once the last
  write is `every_minutes` old (long epochs), every `every_n_steps` steps if set, and always at the
  end of training;
- how: Lightning's own checkpoint (weights, optimisers, schedulers, loop progress, callbacks, the
  training loader's position) written to a temp file, fsynced and renamed over last.ckpt, so a
  kill -9 mid-write leaves the previous checkpoint, never a truncated one, and never a `-v1`;
- what else: the torch (CPU and CUDA), numpy and python RNG states, restored on resume, so a resumed
  run draws what the uninterrupted run draws; and the model's last finite loss for the record;
- stops: SIGTERM (SLURM's preemption signal) and SIGINT (Ctrl-C) finish the current step, write
  the checkpoint and raise Interrupted, which the CLI turns into one line naming the resume command.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from mmrepro.errors import ConfigError, MmreproError, check_range
from mmrepro.records import replace_atomic

CHECKPOINT_NAME = "last.ckpt"


class Interrupted(MmreproError):
    """Training stopped on SIGTERM or SIGINT after writing its checkpoint."""

    def __init__(self, signum: int, run_dir: Path, where: str):
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received; checkpoint written at {where}; "
                         f"resume it with: python -m mmrepro resume={run_dir}")


def rng_states() -> dict:
    """Every global RNG, as tensors and plain values (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RunCheckpoint(Checkpoint):
    """The run's checkpoint policy (config group `checkpoint`, see module docstring).

    every_minutes: a write after the step that finds the last write this old (default 1.0).
    every_n_steps: also a write every n optimiser steps (null: off).
    max_cost: the largest share of training time writes may take (default 0.02): no write comes
        sooner than (its last write's duration) / max_cost after the previous one, except the final one.
    keep: keep the checkpoints once the run's record is written (default true: the weights for
        init_from and re-evaluation); false deletes them then, as a finished run is never resumed
        (a sweep of paper-sized models writes hundreds of MB per member).
    """

    def __init__(self, dirpath: Path, model_target: str, every_minutes: float | None = 1.0,
                 every_n_steps: int | None = None, max_cost: float = 0.02, keep: bool = True):
        self.dirpath = Path(dirpath)
        if not isinstance(keep, bool):
            raise ConfigError("checkpoint.keep", f"must be true or false, got {keep!r}")
        self.keep = keep
        self.model_target = model_target
        self.every_s = None if every_minutes is None else 60.0 * check_range(
            "checkpoint.every_minutes", every_minutes, 0, lo_inclusive=False)
        self.every_n_steps = None if every_n_steps is None else check_range(
            "checkpoint.every_n_steps", every_n_steps, 1, integer=True)
        self.max_cost = check_range("checkpoint.max_cost", max_cost, 0, 1, lo_inclusive=False)
        self.last_write = time.monotonic()
        self.write_seconds = 0.0  # duration of the last write
        self.total_write_seconds = 0.0
        self.writes = 0
        self.started = time.monotonic()
        self.signum: int | None = None
        self.due_at_epoch_end = False
        self.previous_handlers: dict = {}

    @property
    def path(self) -> Path:
        return self.dirpath / CHECKPOINT_NAME

    # --- signals ------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self.started = self.last_write = time.monotonic()
        if trainer.global_rank == 0:  # temp files of a write that a kill interrupted
            for stale in self.dirpath.glob(f".{CHECKPOINT_NAME}.*.tmp"):
                stale.unlink(missing_ok=True)
        if trainer.global_rank == 0 and hasattr(signal, "SIGTERM"):
            for signum in (signal.SIGTERM, signal.SIGINT):
                try:  # replaces Lightning's SIGTERM notifier for the fit; restored at its end
                    self.previous_handlers[signum] = signal.signal(signum, self._on_signal)
                except ValueError:  # not the main thread (e.g. a thread-pool launcher): no handler
                    pass

    def _on_signal(self, signum, frame) -> None:
        self.signum = signum

    def teardown(self, trainer, pl_module, stage: str) -> None:
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)
        self.previous_handlers = {}

    # --- when to write ------------------------------------------------------------------------
    def cheap_enough(self) -> bool:
        return time.monotonic() - self.last_write >= self.write_seconds / self.max_cost

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step_due = self.every_n_steps is not None and trainer.global_step % self.every_n_steps == 0
        time_due = self.every_s is not None and time.monotonic() - self.last_write >= self.every_s
        if batch_idx + 1 >= trainer.num_training_batches:
            # The epoch's last batch: write at the epoch end instead, after the epoch-end hooks (an LR
            # scheduler's step), which a resume from a checkpoint written here would never run.
            self.due_at_epoch_end = step_due or time_due
            return
        if self.signum is not None:
            self.stop(trainer, f"epoch {trainer.current_epoch}, step {trainer.global_step}")
        if (step_due or time_due) and self.cheap_enough():
            self.write(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0) or trainer.should_stop
        if last or self.signum is not None or self.due_at_epoch_end or self.cheap_enough():
            self.write(trainer)
        self.due_at_epoch_end = False
        if self.signum is not None:
            self.stop(trainer, f"the end of epoch {trainer.current_epoch}", written=True)

    def stop(self, trainer, where: str, written: bool = False) -> None:
        if not written:
            self.write(trainer)
        raise Interrupted(self.signum, self.dirpath.parent, where)

    def write(self, trainer) -> None:
        start = time.monotonic()
        if trainer.global_rank == 0:
            replace_atomic(self.path, lambda tmp: trainer.save_checkpoint(tmp, weights_only=False))
        else:
            trainer.save_checkpoint(self.dirpath / f".rank{trainer.global_rank}.ignored", weights_only=False)  # collective call
        self.last_write = time.monotonic()
        self.write_seconds = self.last_write - start
        self.total_write_seconds += self.write_seconds
        self.writes += 1

    def cost(self) -> dict:
        """Writes so far and their share of the fit's wall time (for the run record)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {"writes": self.writes, "seconds": round(self.total_write_seconds, 3),
                "share": round(self.total_write_seconds / elapsed, 4)}

    def finished(self) -> None:
        """The run's record is written: delete its checkpoints unless `keep`."""
        if not self.keep:
            shutil.rmtree(self.dirpath, ignore_errors=True)

    # --- what else a checkpoint holds -----------------------------------------------------------
    def state_dict(self) -> dict:
        return {"rng": rng_states()}

    def load_state_dict(self, state: dict) -> None:
        set_rng_states(state["rng"])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["mmrepro_model"] = self.model_target
        checkpoint["mmrepro_last_finite_loss"] = getattr(pl_module, "last_finite_loss", None)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if checkpoint.get("mmrepro_last_finite_loss") is not None:
            pl_module.last_finite_loss = checkpoint["mmrepro_last_finite_loss"]


def checkpoint_callback(cfg, run_dir: Path, model_target: str, subdir: str = "") -> RunCheckpoint:
    """The run's RunCheckpoint from its `checkpoint` config (unknown keys are an error)."""
    options = dict(cfg.get("checkpoint") or {})
    allowed = {"every_minutes", "every_n_steps", "max_cost", "keep"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"checkpoint.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return RunCheckpoint(Path(run_dir) / "checkpoints" / subdir, model_target, **options)


def readable_checkpoint(path: Path, key: str) -> Path:
    """path if it holds a loadable checkpoint, else a one-line ConfigError under `key`."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ConfigError(key, f"{path} is not a readable checkpoint ({type(e).__name__}); "
                          "it was not written by a finished checkpoint write") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(key, f"{path} is not a Lightning checkpoint")
    return path

