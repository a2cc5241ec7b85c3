"""Batched members: the members of a sweep that differ only in their seed and in per-member numeric
hyperparameters train in one process as one stacked model (`hydra/launcher=batched`; the launcher
is hydra_plugins/mmrepro_batched). Each member still gets one run directory and one run.json in
the sequential layout, with `batched: {group, size, member}` added.

Mechanism: torch.func.stack_module_state stacks the members' parameters along a leading member
dimension; one template module runs each member's `loss_terms` through functional_call under
vmap (randomness="different"); the sum of the members' losses gives each member its own gradient
(members share no parameter). What stays per member:
- initialisation: each member module is built after seed_everything(its seed), as a sequential run
  builds it, so its initial weights are the sequential run's;
- batch order: its own permutation each epoch, from a generator seeded by its seed;
- noise: its own draws (vmap's randomness="different"): the same distribution as a sequential
  run, not the same numbers, so a stochastic model matches a sequential run in distribution over
  seeds, a deterministic one (M-xO without dropout) step for step;
- optimiser state: Adam acts elementwise, so the stacked update is each member's own update; a
  per-member learning rate scales the member's step (the update at lr 1, times its lr);
- hyperparameters: the model's MEMBER_HYPERPARAMETERS (JMVAE's alpha, CMMD's omega, alpha, lam)
  become 0-d tensors inside the vmapped call, one value per member;
- NaN guard: a member whose loss becomes non-finite is recorded as failed with the step, and its
  loss leaves the sum; the others go on.
The top-level `compile=true` runs the stacked loss through torch.compile (inductor,
mmrepro/compiling.py): a one-off compilation (about a minute on 2 cores), then a faster step where
vmap's per-call overhead dominates (many small members). Its random draws are inductor's own
stream, so a compiled group matches an eager one in distribution, not number for number (under
inductor's fallback_random, exactly).
Stackable members: the same model class (one that declares MEMBER_HYPERPARAMETERS) and configs
equal but for the seed, those hyperparameters and model.lr, with no logger, pretraining stage,
init_from or resume. A model whose gradients are written by hand (the MRBM objectives) stacks
itself: its class's `stack_members` builds the stacked model (mrbm.StackedMRBM), which keeps the
same per-member bookkeeping (MemberBookkeeping) and records. The launcher runs every other
member on its own, as the basic launcher does, with a one-line note.
"""

from __future__ import annotations

import contextlib
import copy
import math

import lightning as L
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from mmrepro.compiling import check_backend, compiled
from mmrepro.data.tensor_datamodule import IndexBatches


class _Method(nn.Module):
    """functional_call calls forward: this forwards to one method of the wrapped module."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args, **kwargs):
        return getattr(self.module, self.method)(*args, **kwargs)


def hyperparameters_of(module) -> tuple[str, ...]:
    return tuple(getattr(module, "MEMBER_HYPERPARAMETERS", None) or ())


class MemberBookkeeping:
    """What every stacked model keeps per member (a LightningModule mixin): why a member stopped,
    its last finite loss and its validation curves, all saved in checkpoints."""

    def init_members(self, size: int) -> None:
        self.size = size
        self.failed: dict[int, str] = {}            # member -> why it stopped
        self.last_finite_loss = [float("nan")] * size
        self.curves: list[dict[str, list]] = [{} for _ in range(size)]
        self._val: dict[str, list] = {}

    def alive_members(self, losses: Tensor, lr_key: str) -> Tensor:
        """The NaN guard, with one host sync for all members: a member whose loss is not finite is
        recorded as failed (with its step) and stays dead; all dead stops the fit. (E,) bool."""
        alive = torch.ones(self.size, dtype=torch.bool, device=losses.device)
        for e, v in enumerate(losses.detach().tolist()):
            if e in self.failed:
                alive[e] = False
            elif not math.isfinite(v):
                self.failed[e] = (f"training loss became {v} at step {self.global_step} (epoch {self.current_epoch}); "
                                  f"last finite loss {self.last_finite_loss[e]:.6g}; lower {lr_key}")
                alive[e] = False
            else:
                self.last_finite_loss[e] = v
        if len(self.failed) == self.size:
            self.trainer.should_stop = True
        return alive

    def log_train_loss(self, losses: Tensor, alive: Tensor, batch_size: int) -> None:
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", losses.detach()[alive].mean() if alive.any() else losses.detach().mean(),
                     prog_bar=True, batch_size=batch_size)

    def record_val(self, values: dict[str, Tensor], n: int) -> None:
        """One validation batch's per-member values ((E,) each, over n examples)."""
        for k, v in values.items():
            self._val.setdefault(k, []).append((v.detach().cpu(), n))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._val:
            self._val = {}
            return
        for k, parts in self._val.items():
            total = sum(n for _, n in parts)
            mean = sum(v * n for v, n in parts) / total
            for e in range(self.size):
                curve = self.curves[e]
                if k == next(iter(self._val)):
                    curve.setdefault("epoch", []).append(self.current_epoch)
                curve.setdefault(k, []).append(float(mean[e]))
        self._val = {}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["mmrepro_batched"] = {"failed": self.failed, "last_finite_loss": self.last_finite_loss,
                                         "curves": self.curves}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("mmrepro_batched") or {}
        self.failed = {int(k): v for k, v in saved.get("failed", {}).items()}
        self.last_finite_loss = saved.get("last_finite_loss", self.last_finite_loss)
        self.curves = saved.get("curves", self.curves)


class StackedMembers(MemberBookkeeping, L.LightningModule):
    """E members of one model class as one LightningModule (see the module docstring)."""

    def __init__(self, members: list[nn.Module], seeds: list[int], compile: bool | str = False):
        super().__init__()
        if len(members) < 1 or len({type(m) for m in members}) != 1:
            raise ValueError("stacked members must be one or more modules of one class")
        self.init_members(len(members))
        self.seeds = list(seeds)
        self.names = hyperparameters_of(members[0])
        self.compile = compile   # False, True (inductor) or a torch.compile backend's name
        self._vmapped: dict[tuple, object] = {}
        template = copy.deepcopy(members[0])
        self._call = {kind: _Method(template, method) for kind, method in
                      (("loss", "loss_terms"), ("val", "validation_loss"), ("predict", "predict"))
                      if hasattr(template, method)}
        self.__dict__["template"] = template   # not a submodule: its own weights are never used
        params, buffers = stack_module_state(members)
        self.keys = list(params)
        self.buffer_keys = list(buffers)
        # Linear weights are stored (E, in, out) and handed to the members as their (out, in)
        # transpose (a view): vmap's products then read them as stored and their gradients arrive in
        # the stored layout, where an (E, out, in) weight takes a transposing copy per step in
        # AccumulateGrad (6% of the CMMD digits step of `make run`; docs/measurements.md).
        self.transposed = {f"{n}.weight" for n, m in template.named_modules() if isinstance(m, nn.Linear)}
        stored = self.member_layout(params[k].detach() for k in self.keys)   # .mT is its own inverse
        self.stacked = nn.ParameterList([nn.Parameter(t.clone(memory_format=torch.contiguous_format)) for t in stored])
        for i, k in enumerate(self.buffer_keys):
            self.register_buffer(f"stacked_buffer_{i}", buffers[k].clone())
        self.register_buffer("hyper", torch.tensor([[float(getattr(m, n)) for n in self.names] for m in members],
                                                   dtype=torch.float32).reshape(self.size, len(self.names)))
        lrs = [float(m.lr) for m in members]
        self.register_buffer("lrs", torch.tensor(lrs))
        self.same_lr = len(set(lrs)) == 1

    # --- the members' tensors -----------------------------------------------------------------
    def member_layout(self, tensors) -> list[Tensor]:
        """Tensors stored as self.stacked (the parameters, their gradients) in the members' layout."""
        return [t.mT if k in self.transposed else t for k, t in zip(self.keys, tensors)]

    def params(self) -> dict[str, Tensor]:
        return {f"module.{k}": p for k, p in zip(self.keys, self.member_layout(self.stacked))}

    def buffers_(self) -> dict[str, Tensor]:
        return {f"module.{k}": getattr(self, f"stacked_buffer_{i}") for i, k in enumerate(self.buffer_keys)}

    def member_state(self, e: int) -> dict[str, Tensor]:
        """Member e's state_dict (for its own module: evaluation and its record)."""
        state = {k: p.detach()[e].clone(memory_format=torch.contiguous_format)
                 for k, p in zip(self.keys, self.member_layout(self.stacked))}
        state.update({k: getattr(self, f"stacked_buffer_{i}")[e].clone() for i, k in enumerate(self.buffer_keys)})
        return state

    LAYOUT = "linear weights (E, in, out)"

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["mmrepro_batched"]["layout"] = self.LAYOUT

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint of an earlier layout ((E, out, in) weights: a square one would load transposed)
        is refused."""
        if self.transposed and (checkpoint.get("mmrepro_batched") or {}).get("layout") != self.LAYOUT:
            raise ValueError("this stacked group's checkpoint holds its linear weights as (E, out, in), the layout "
                             "of an earlier mmrepro; delete the group's checkpoint (its batched-* directory) to "
                             "train the group again")
        super().on_load_checkpoint(checkpoint)

    @contextlib.contextmanager
    def hyper_values(self, values: Tensor):
        """Set the template's per-member hyperparameters to this member's (0-d) values."""
        saved = {n: getattr(self.template, n) for n in self.names}
        try:
            for i, n in enumerate(self.names):
                setattr(self.template, n, values[i])
            yield
        finally:
            for n, v in saved.items():
                setattr(self.template, n, v)

    def per_member(self, kind: str, batch: dict, *args, batched_input: bool, randomness: str = "different"):
        """Every member's `kind` call (loss, val, predict) at once: vmap over the stacked tensors
        (compiled once per kind for the loss, with compile=True)."""
        if self.template.training != self.training:   # the template is not a submodule: train()/eval()
            self.template.train(self.training)          # and Lightning's mode restore do not reach it
        key = (kind, batched_input, randomness, len(args))
        if key not in self._vmapped:
            call = self._call[kind]

            def one(params, buffers, hyper, batch, *args):
                with self.hyper_values(hyper):
                    out = functional_call(call, {**params, **buffers}, (batch, *args))
                if isinstance(out, dict):
                    return {k: v for k, v in out.items() if k != "z"}
                return out

            fn = vmap(one, in_dims=(0, 0, 0, 0 if batched_input else None, *[None] * len(args)), randomness=randomness)
            if self.compile and kind == "loss":
                fn = compiled(fn, self.compile)
            self._vmapped[key] = fn
        if self.compile:   # a Python float would be baked into the graph: a new compilation per value
            args = tuple(torch.tensor(a, device=self.device) if isinstance(a, float) else a for a in args)
        return self._vmapped[key](self.params(), self.buffers_(), self.hyper, batch, *args)

    # --- training -----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.template.trainer = self.trainer

    def on_fit_start(self) -> None:   # the stacked tensors are on the device now
        self.template.to(self.device)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        beta = self.template.warmup_beta(self.current_epoch)
        terms = self.per_member("loss", batch, beta, batched_input=True)
        losses = terms["loss"]
        alive = self.alive_members(losses, "model.lr")
        self.log_train_loss(losses, alive, next(iter(batch.values())).shape[1])
        return torch.where(alive, losses, torch.zeros_like(losses)).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=float(self.lrs[0]) if self.same_lr else 1.0, fused=True)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        if self.same_lr:
            return super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        before = [p.detach().clone() for p in self.stacked]
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        with torch.no_grad():   # each member's step at lr 1, scaled by its own lr
            for p, b in zip(self.stacked, before):
                p.copy_(b + self.lrs.view(-1, *[1] * (p.dim() - 1)) * (p - b))

    # --- validation: each member's val/* (as ClassifierValidation / VariationalModule log them) ---
    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        n = len(next(iter(batch.values())))
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            loss = self.per_member("val", batch, batched_input=False)
            values = {"val/loss": loss.reshape(self.size, -1).mean(1)}
            label = getattr(self.template, "label", None)
            if label is not None and "predict" in self._call:
                probs = self.per_member("predict", batch, batched_input=False)
                y = batch[label.name]
                if label.likelihood == "categorical":
                    values["val/error"] = 100.0 * (probs.argmax(-1) != y).float().mean(1)
        self.record_val(values, n)


def stacked_model(members: list[nn.Module], seeds: list[int], compile: bool | str = False) -> L.LightningModule:
    """The members as one model: their class's own `stack_members` (hand-written gradients: the
    MRBMs), else StackedMembers."""
    return getattr(type(members[0]), "stack_members", StackedMembers)(members, seeds, compile=compile)


class MemberBatches(IndexBatches):
    """Each member's own minibatches, stacked: (E, batch, ...) per key. Member e's order is a fresh
    permutation each epoch from a generator seeded by its seed; re-binarised keys get a fresh draw
    per member (from the global RNG, which checkpoints restore). Resumes mid-epoch as IndexBatches
    does; its state adds the members' generators."""

    def __init__(self, tensors: dict[str, Tensor], batch_size: int, seeds: list[int], resample=(), resolve=None,
                 generators: list[torch.Generator] | None = None):
        super().__init__(tensors, batch_size, shuffle=True, drop_last=True, resample=resample, resolve=resolve)
        self.generators = generators or member_generators(seeds)

    def draw_order(self) -> Tensor:
        return torch.stack([torch.randperm(self.n, generator=g) for g in self.generators])   # (E, n)

    def take(self, order: Tensor, i: int) -> dict[str, Tensor]:
        idx = order[:, i * self.batch_size:(i + 1) * self.batch_size]              # (E, B)
        flat = self.resolve({k: t[idx.reshape(-1)] for k, t in self.tensors.items()})
        return {k: t.reshape(*idx.shape, *t.shape[1:]) for k, t in flat.items()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "generators": [g.get_state() for g in self.generators]}

    def load_state_dict(self, state: dict) -> None:
        for g, s in zip(self.generators, state.get("generators", [])):
            g.set_state(s)
        super().load_state_dict(state)


def member_generators(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


class MemberData(L.LightningDataModule):
    """A datamodule serving MemberBatches for training and its own validation batches; everything
    else (splits, rows, batch_size) is the wrapped datamodule's. It owns the members' order
    generators and saves them in every checkpoint: Lightning restores a loader's state only when a
    checkpoint is mid-epoch, and a resume from an epoch's end must draw the same next orders too."""

    def __init__(self, inner, seeds: list[int]):
        super().__init__()
        self.inner, self.seeds = inner, list(seeds)
        self.generators = member_generators(self.seeds)

    def __getattr__(self, name):
        if name in ("inner", "seeds", "generators") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def state_dict(self) -> dict:
        return {"generators": [g.get_state() for g in self.generators]}

    def load_state_dict(self, state: dict) -> None:
        for g, saved in zip(self.generators, state.get("generators", [])):
            g.set_state(saved)

    def setup(self, stage: str | None = None) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def train_dataloader(self):
        dm = self.inner
        return MemberBatches(dm.split(dm.train_split), dm.batch_size, self.seeds, dm.resample_train, dm.resolve,
                             generators=self.generators)

    def val_dataloader(self):
        return self.inner.val_dataloader()


# --- a group of sweep members, from their composed configs to their run records ----------------------
def group_key(cfg, hyper: tuple[str, ...]) -> str:
    """What members of one stacked group share: the config without Hydra's node, the seed, model.lr
    and the model's per-member hyperparameters."""
    import json

    from omegaconf import OmegaConf

    values = OmegaConf.to_container(cfg, resolve=False)
    values.pop("hydra", None)
    values.pop("seed", None)
    for k in ("lr", *hyper):
        values.get("model", {}).pop(k, None)
    return json.dumps(values, sort_keys=True, default=str)


def stackable_class(cfg) -> tuple[type | None, str | None]:
    """The member's model class if its config can join a stacked group, else (None, why not, one line)."""
    import hydra

    try:
        cls = hydra.utils.get_class(cfg.model._target_)
    except Exception as e:  # noqa: BLE001 - an unknown class fails in the member's own run, with its own error
        return None, f"model {cfg.model.get('_target_')}: {type(e).__name__}"
    if getattr(cls, "MEMBER_HYPERPARAMETERS", None) is None:
        return None, f"{cls.__name__} does not declare MEMBER_HYPERPARAMETERS"
    if cfg.model.get("gan_weight", 0):
        return None, "the GAN term steps two optimisers by hand"
    for key in ("resume", "init_from"):
        if cfg.get(key):
            return None, f"{key} is set"
    if cfg.get("logger"):
        return None, "a logger is set (batched members write run records only)"
    if (cfg.get("pretrain") or {}).get("split"):
        return None, "a pretraining stage is set"
    return cls, None


def plan_groups(configs: list) -> tuple[list[list[int]], dict[int, str]]:
    """Indices of configs grouped for stacking (groups of two or more), and the others with why."""
    groups: dict[str, list[int]] = {}
    alone: dict[int, str] = {}
    for i, cfg in enumerate(configs):
        cls, why = stackable_class(cfg)
        if why:
            alone[i] = why
            continue
        groups.setdefault(group_key(cfg, cls.MEMBER_HYPERPARAMETERS), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:
            alone[members[0]] = "no other member shares its config but for seed, lr and per-member hyperparameters"
        else:
            out.append(members)
    return out, alone


def prepare_member(cfg) -> dict:
    """The task function of a stacked member's Hydra job: Hydra has made its directory and saved its
    config; this notes what its record needs."""
    import time
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig

    from mmrepro.records import RECORD_NAME, read_record

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    done = (run_dir / RECORD_NAME).exists() and read_record(run_dir / RECORD_NAME)["status"] == "ok"
    return {"cfg": cfg, "run_dir": run_dir, "choices": dict(hc.runtime.choices), "started": time.time(),
            "sweep": {"dir": hc.sweep.dir, "num": hc.job.num}, "done": done}


def train_group(plans: list[dict], sweep_dir) -> list[int]:
    """Train the members of one group as one stacked model (its loss through torch.compile with the
    members' top-level compile, which they share), then evaluate each and write its run record
    (failed members: a failure record). Returns the failed members' job numbers."""
    import sys
    from pathlib import Path

    from mmrepro.checkpointing import Interrupted, checkpoint_callback
    from mmrepro.train import (
        build,
        build_datamodule,
        chosen_callbacks,
        evaluate_and_record,
        failure_record,
        fit,
        imported_code_state,
        model_hyperparameters,
        model_inputs,
        one_line,
        trainer_node,
    )

    git = imported_code_state()
    for p in plans:
        if p["done"]:
            print(f"mmrepro: sweep member {p['sweep']['num']} already finished; kept", file=sys.stderr)
    if all(p["done"] for p in plans):
        return []
    failed: list[int] = []

    def fail(p: dict, message: str, status: str = "failed", **extra) -> None:
        if not p["done"]:
            failure_record(p["cfg"], p["run_dir"], p["started"], git, message, status, p["choices"], p["sweep"], **extra)
            print(f"mmrepro: sweep member {p['sweep']['num']} failed: {message}", file=sys.stderr)
            failed.append(p["sweep"]["num"])

    try:
        compile = check_backend(plans[0]["cfg"].get("compile"))
        datamodule = build_datamodule(plans[0]["cfg"].dataset)
    except Exception as e:  # noqa: BLE001 - as a sequential sweep member: recorded, and the sweep goes on
        for p in plans:
            fail(p, one_line(e))
        return failed
    # Each member is built as its sequential run builds it (from its seed); one whose config its model
    # refuses fails alone. The group trains all the others, finished ones too, so that a sweep killed
    # while it evaluated its members resumes from the group's final checkpoint and evaluates the rest.
    todo, members, evaluators = [], [], []
    for p in plans:
        cfg = p["cfg"]
        try:
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            evaluator = build("eval", cfg.eval)
            model = build("model", cfg.model, modalities=datamodule.modalities, **model_inputs(cfg.model, datamodule))
            model.save_hyperparameters(model_hyperparameters(cfg.model, datamodule), logger=False)
            evaluator.check(model, [m.name for m in datamodule.modalities])
        except Exception as e:  # noqa: BLE001
            fail(p, one_line(e))
            continue
        todo.append(p)
        members.append(model)
        evaluators.append(evaluator)
    if all(p["done"] for p in todo):
        return failed
    nums = [p["sweep"]["num"] for p in todo]
    group_dir = Path(sweep_dir) / f"batched-{nums[0]}-{nums[-1]}-{len(nums)}"
    tag = lambda e: {"batched": {"group": str(group_dir), "size": len(todo), "member": e,  # noqa: E731
                                 "compiled": compile}}
    print(f"mmrepro: batched: members {', '.join(map(str, nums))} train as one stacked model ({group_dir})",
          file=sys.stderr)
    try:
        cfg0 = todo[0]["cfg"]
        datamodule.setup()
        seeds = [int(p["cfg"].seed) for p in todo]
        L.seed_everything(seeds[0], workers=True, verbose=False)
        stacked = stacked_model(members, seeds, compile)
        checkpoints = checkpoint_callback(cfg0, group_dir, f"{type(stacked).__module__}.{type(stacked).__qualname__}")
        trainer = build("trainer", trainer_node(cfg0), logger=False, default_root_dir=str(group_dir),
                        callbacks=[checkpoints, *chosen_callbacks(cfg0)])
        fit(trainer, stacked, MemberData(datamodule, seeds), checkpoints.path if checkpoints.path.exists() else None)
    except Interrupted as e:
        print(f"mmrepro: {e}", file=sys.stderr)
        for i, p in enumerate(todo):
            fail(p, str(e), "interrupted", **tag(i))
        sys.exit(128 + e.signum)
    except Exception as e:  # noqa: BLE001 - as a sequential sweep member: recorded, and the sweep goes on
        for i, p in enumerate(todo):
            fail(p, one_line(e), **tag(i))
        return failed
    device = trainer.strategy.root_device
    for e, (p, model, evaluator) in enumerate(zip(todo, members, evaluators)):
        if p["done"]:
            continue
        if e in stacked.failed:
            fail(p, stacked.failed[e], **tag(e))
            continue
        try:
            model.load_state_dict(stacked.member_state(e))
            model.to(device)
            model.last_finite_loss = stacked.last_finite_loss[e]
            training = {"epochs": trainer.current_epoch, "steps": trainer.global_step,
                        "final_loss": stacked.last_finite_loss[e], "pretraining": None,
                        "checkpoint_writes": checkpoints.cost()}
            evaluate_and_record(p["cfg"], p["run_dir"], model, datamodule, evaluator, p["choices"], training,
                                stacked.curves[e], str(device), p["started"], git, bool(trainer.ckpt_path), p["sweep"],
                                **tag(e))
        except Exception as err:  # noqa: BLE001
            fail(p, one_line(err), **tag(e))
    checkpoints.finished()
    return failed
