"""MDRNNModule: the multimodal deep recurrent network of Sohn et al. 2014, Sec. 3.3 and 4.2.

One run trains the whole model in stages, each a span of epochs (`stages`):
1. `layer_epochs` per depth level: the RBM at that level of every modality's pathway, greedily, by
   PCD (the MRBM's PersistentCD), each on the hidden probabilities of the layer below. A bottom
   layer is Gaussian (standardised real features, unit variance) or binary (`visible`).
2. `top_epochs`: the joint MRBM over the pathways' top layers, by MinVI multi-prediction (the
   MRBM's MultiPrediction objective, Eq. 9) on their hidden probabilities.
3. `finetune_epochs`: MDRNN (Eq. 10-13). The target modality starts at 0; a bottom-up pass through
   every pathway gives h(L) (Eq. 10-12); then T times a top-down pass through the target's pathway
   (Eq. 13) and a bottom-up pass back (Eq. 11-12). The reconstruction error of the target after the
   last pass is backpropagated through all of them, both directions averaged.
The epoch decides the stage, so a killed run resumes in its stage; the end of each stage writes
`stage_<name>.ckpt` beside the run's checkpoints, from which `init_from` can start a later run.

Features (`infer`): h(L) given every modality (one bottom-up pass), or, with one missing, after
`inference.iters` recurrent passes (T' <= finetune.T, Table 3), with the missing modality's
reconstruction. Choices the paper leaves open are the authors' code's (docs/sohn14.md): SGD with
momentum and lr / (1 + decay * stage epoch) in every stage (a pretrained layer may have its own lr,
`layer_lr`), L2 on weights, the MRBM's sparsity target on the pretrained RBMs' hidden means, binary
bottom layers fed a Bernoulli sample of the grey values and started at logit(data mean); higher
layers' visible biases start at 0.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmrepro.checkpointing import RunCheckpoint
from mmrepro.data.modalities import as_modalities
from mmrepro.errors import ConfigError, check_range
from mmrepro.models.components.multimodal_rbm import MultimodalRBM, sample_bernoulli
from mmrepro.models.components.rbm_training import checked_optim, checked_sparsity, set_momentum, sgd, sparsity_update
from mmrepro.models.guards import check_finite_loss
from mmrepro.models.validation import forked_rng, log_val
from mmrepro.objectives.multi_prediction import MultiPrediction
from mmrepro.objectives.pcd import PersistentCD
from mmrepro.records import replace_atomic


class MDRNNModule(L.LightningModule):
    def __init__(self, modalities, pathways: dict, top_hidden: int = 2048, visible: dict | None = None,
                 layer_lr: dict | None = None, init_std: float = 0.01, stages: dict | None = None, optim: dict | None = None,
                 sparsity: dict | None = None, top_objective: dict | None = None, finetune: dict | None = None,
                 inference: dict | None = None):
        super().__init__()
        modalities = as_modalities(modalities)
        self.names = [m.name for m in modalities]
        if len(self.names) != 2:
            raise ConfigError("dataset", f"MDRNN needs exactly two modalities, got {', '.join(self.names)}")
        if sorted(pathways) != sorted(self.names):
            raise ConfigError("model.pathways", f"one pathway per modality ({', '.join(self.names)}), "
                              f"got {', '.join(map(str, pathways))}")
        self.visible = {m: (visible or {}).get(m, "bernoulli") for m in self.names}
        for m in modalities:
            sizes = [int(s) for s in pathways[m.name]]
            if len(sizes) < 2:
                raise ConfigError(f"model.pathways.{m.name}", "needs the input size and at least one hidden layer")
            if sizes[0] != m.dim:
                raise ConfigError(f"model.pathways.{m.name}", f"starts with {sizes[0]} units but modality "
                                  f"{m.name} has {m.dim}")
            if self.visible[m.name] not in ("bernoulli", "gaussian"):
                raise ConfigError(f"model.visible.{m.name}", f"bernoulli or gaussian, got {self.visible[m.name]!r}")
        self.sizes = {m: [int(s) for s in pathways[m]] for m in self.names}
        self.layer_lr = {}
        for m in self.names:   # per pathway level: a pretraining lr, or None for optim.lr
            lrs = list((layer_lr or {}).get(m) or [])
            if len(lrs) > len(self.sizes[m]) - 1:
                raise ConfigError(f"model.layer_lr.{m}", f"lists {len(lrs)} learning rates for the "
                                  f"{len(self.sizes[m]) - 1} layers of pathway {m}")
            self.layer_lr[m] = [None if lr is None else check_range(f"layer_lr.{m}[]", lr, 0, lo_inclusive=False)
                                for lr in lrs] + [None] * (len(self.sizes[m]) - 1 - len(lrs))
        unknown = sorted(set(layer_lr or {}) - set(self.names))
        if unknown:
            raise ConfigError("layer_lr", f"names no pathway: {', '.join(unknown)} (pathways: {', '.join(self.names)})")
        check_range("top_hidden", top_hidden, 1, integer=True)
        check_range("init_std", init_std, 0, lo_inclusive=False)
        self.stages = dict(stages or {"layer_epochs": 10, "top_epochs": 10, "finetune_epochs": 10})
        for key in ("layer_epochs", "top_epochs", "finetune_epochs"):
            check_range(f"stages.{key}", self.stages[key], 0, integer=True)
        self.optim = {"pretrain": checked_optim(optim),
                      "finetune": checked_optim({**dict(optim), **dict((finetune or {}).get("optim") or {})},
                                                "finetune.optim")}
        self.sparsity = checked_sparsity(sparsity)
        finetune = dict(finetune or {})
        self.T = check_range("finetune.T", finetune.get("T", 10), 0, integer=True)
        self.keep_ratio = check_range("finetune.keep_ratio", finetune.get("keep_ratio", 0.0), 0, 1)
        self.inference = dict(inference or {"iters": self.T})
        check_range("inference.iters", self.inference["iters"], 0, integer=True)
        if self.inference["iters"] > self.T:
            raise ConfigError("inference.iters", f"T' = {self.inference['iters']} exceeds the T = {self.T} "
                              "the network was finetuned with (finetune.T)")

        self.automatic_optimization = False
        self.layers = nn.ModuleDict({m: nn.ModuleList([
            MultimodalRBM([n_in], n_out, init_std, [self.visible[m] if level == 0 else "bernoulli"])
            for level, (n_in, n_out) in enumerate(zip(self.sizes[m][:-1], self.sizes[m][1:]))]) for m in self.names})
        self.top = MultimodalRBM([self.sizes[m][-1] for m in self.names], top_hidden, init_std)
        self.chains = nn.ModuleDict({m: nn.ModuleList([PersistentCD() for _ in self.layers[m]]) for m in self.names})
        objective = dict(top_objective or {})
        objective.pop("_target_", None)
        self.top_objective = MultiPrediction(**objective)
        self.depth = max(len(self.layers[m]) for m in self.names)
        for rbm in self.rbms():  # each pretrained RBM's running hidden mean, for the sparsity update
            rbm.register_buffer("hidden_mean_avg", torch.full((rbm.n_hidden,), float(self.sparsity["target"])))
        self.last_finite_loss = float("nan")

    # --- stages ---------------------------------------------------------------------------------
    def rbms(self) -> list[MultimodalRBM]:
        return [rbm for m in self.names for rbm in self.layers[m]] + [self.top]

    def schedule(self) -> list[tuple[str, int]]:
        """(stage, epochs) in order: level_0 ... level_{depth-1}, top, finetune."""
        return ([(f"level_{d}", self.stages["layer_epochs"]) for d in range(self.depth)]
                + [("top", self.stages["top_epochs"]), ("finetune", self.stages["finetune_epochs"])])

    def stage_at(self, epoch: int) -> tuple[int, str, int]:
        """(index, name, epoch within the stage) of a global epoch."""
        start = 0
        for i, (name, epochs) in enumerate(self.schedule()):
            if epoch < start + epochs:
                return i, name, epoch - start
            start += epochs
        return len(self.schedule()) - 1, "finetune", epoch - start

    def total_epochs(self) -> int:
        return sum(e for _, e in self.schedule())

    def stage_blocks(self, name: str) -> list[tuple[list[nn.Parameter], list[nn.Parameter], float | None]]:
        """(weights, biases, lr or None for the stage's optim.lr) of each RBM trained in a stage."""
        if name.startswith("level_"):
            level = int(name[6:])
            return [([r.W], [r.b, r.c], self.layer_lr[m][level]) for m in self.names if level < len(self.layers[m])
                    for r in [self.layers[m][level]]]
        rbms = [self.top] if name == "top" else self.rbms()
        return [([r.W for r in rbms], [p for r in rbms for p in (r.b, r.c)], None)]

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for name, _ in self.schedule():
            opt, sched = sgd(self.stage_blocks(name), self.optim["finetune" if name == "finetune" else "pretrain"])
            optimizers.append(opt)
            schedulers.append(sched)
        return optimizers, schedulers

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        if self.trainer.max_epochs not in (0, self.total_epochs()):   # 0: evaluate saved weights (init_from)
            raise ConfigError("trainer.max_epochs", f"is {self.trainer.max_epochs} but the stages take "
                              f"{self.total_epochs()} epochs ({', '.join(f'{n} {e}' for n, e in self.schedule())})")
        dm = self.trainer.datamodule
        train = dm.resolve(dm.split(dm.train_split))
        with torch.no_grad():
            for m in self.names:
                x = train[m].flatten(1).to(self.device)
                if self.visible[m] == "gaussian":
                    mean, std = float(x.mean()), float(x.std())
                    if abs(mean) > 0.5 or not 0.5 < std < 2:
                        print(f"mmrepro: warning: modality {m} feeds a Gaussian RBM (unit variance) but its "
                              f"training data has mean {mean:.3g} and std {std:.3g}; standardise it", flush=True)
                else:
                    self.layers[m][0].c.copy_(torch.logit(x.mean(0).clamp(1e-3, 1 - 1e-3)))

    def on_train_epoch_start(self) -> None:
        index, name, local = self.stage_at(self.current_epoch)
        set_momentum(self.optimizers()[index], self.optim["finetune" if name == "finetune" else "pretrain"], local)

    def on_train_epoch_end(self) -> None:
        index, name, local = self.stage_at(self.current_epoch)
        self.lr_schedulers()[index].step()
        directory = next((c.dirpath for c in self.trainer.callbacks if isinstance(c, RunCheckpoint)), None)
        if local == dict(self.schedule())[name] - 1 and directory is not None and self.trainer.is_global_zero:
            Path(directory).mkdir(parents=True, exist_ok=True)
            replace_atomic(Path(directory) / f"stage_{name}.ckpt",
                           lambda tmp: self.trainer.save_checkpoint(tmp, weights_only=False))

    # --- passes (Eq. 10-13) ---------------------------------------------------------------------
    def up(self, m: str, x: Tensor, levels: int | None = None) -> Tensor:
        """Eq. 10/11: hidden probabilities of pathway m's first `levels` layers (all by default)."""
        h = x.flatten(1)
        for rbm in list(self.layers[m])[:levels]:
            h = rbm.hidden_probs(h)
        return h

    def down(self, m: str, h_top: Tensor) -> Tensor:
        """Eq. 13: from h(L) down pathway m to its visible units' expected values."""
        part = self.top.slices[self.names.index(m)]
        h = torch.sigmoid(h_top @ self.top.W[part].T + self.top.c[part])
        for rbm in reversed(self.layers[m]):
            h = rbm.visible_mean(h)
        return h

    def top_input(self, m: str, h: Tensor) -> Tensor:
        return h @ self.top.W[self.top.slices[self.names.index(m)]]

    def recurrent(self, batch: dict[str, Tensor], target: str, T: int, keep: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
        """Predict `target` from the other modality: (h(L), the target's reconstruction) after T
        top-down/bottom-up passes. The target is read only where `keep` clamps it to the data."""
        observed = [m for m in self.names if m != target]
        fixed = sum(self.top_input(m, self.up(m, batch[m])) for m in observed) + self.top.b
        y_data = batch[target].flatten(1)
        y = torch.zeros_like(y_data) if keep is None else y_data * keep
        h = torch.sigmoid(fixed + self.top_input(target, self.up(target, y)))
        for _ in range(T):
            y = self.down(target, h)
            if keep is not None:
                y = torch.where(keep.bool(), y_data, y)
            h = torch.sigmoid(fixed + self.top_input(target, self.up(target, y)))
        return h, self.down(target, h)

    def reconstruction_error(self, target: str, y_hat: Tensor, y: Tensor, keep: Tensor | None = None) -> Tensor:
        """Per example: cross-entropy (binary units) or half squared error (Gaussian), summed over
        the predicted units."""
        y = y.flatten(1)
        if self.visible[target] == "gaussian":
            err = 0.5 * (y_hat - y).pow(2)
        else:
            err = F.binary_cross_entropy(y_hat.clamp(1e-7, 1 - 1e-7), y, reduction="none")
        return (err if keep is None else err * (1 - keep)).sum(1)

    def finetune_loss(self, batch: dict[str, Tensor], T: int | None = None, keep_ratio: float = 0.0) -> Tensor:
        """MDRNN's objective: the mean over both directions of the target's reconstruction error."""
        losses = []
        for target in self.names:
            y = batch[target].flatten(1)
            keep = None
            if keep_ratio > 0:  # the authors' keep-mask: each unit kept with probability keep_ratio * u
                keep = (torch.rand_like(y) < keep_ratio * torch.rand(1, device=y.device)).to(y.dtype)
            _, y_hat = self.recurrent(batch, target, self.T if T is None else T, keep)
            losses.append(self.reconstruction_error(target, y_hat, y, keep).mean())
        return torch.stack(losses).mean()

    # --- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        index, name, _ = self.stage_at(self.current_epoch)
        opt = self.optimizers()[index]
        opt.zero_grad()
        if name.startswith("level_"):
            level = int(name[6:])
            losses = []
            for m in self.names:
                if level >= len(self.layers[m]):
                    continue
                with torch.no_grad():
                    v = self.up(m, batch[m], level)
                    if level == 0 and self.visible[m] == "bernoulli":
                        v = sample_bernoulli(v)
                rbm, chain = self.layers[m][level], self.chains[m][level]
                if chain.chain_h.numel() == 0:
                    chain.reset(rbm, v)
                out = chain.step(rbm, v, "zeros")
                sparsity_update(rbm, rbm.hidden_mean_avg, out["hidden_mean"], self.sparsity)
                losses.append(out["loss"])
            loss = torch.stack(losses).mean()
        elif name == "top":
            with torch.no_grad():
                v = torch.cat([self.up(m, batch[m]) for m in self.names], 1)
            out = self.top_objective.step(self.top, v, "zeros")
            sparsity_update(self.top, self.top.hidden_mean_avg, out["hidden_mean"], self.sparsity)
            loss = out["loss"]
        else:
            loss = self.finetune_loss(batch, keep_ratio=self.keep_ratio)
            self.manual_backward(loss)
        opt.step()
        check_finite_loss(self, loss, "model.optim.lr")
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", loss.detach(), prog_bar=True, batch_size=len(batch[self.names[0]]))

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """val/loss: MDRNN's objective (each modality reconstructed from the other through T passes),
        per example, in every stage, so the curve shows what pretraining and finetuning each bring."""
        with forked_rng(self.device), torch.no_grad():
            loss = self.finetune_loss(batch)
        log_val(self, "val/loss", loss, len(batch[self.names[0]]))

    # --- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def infer(self, batch: dict[str, Tensor], observed: list[str], iters: int | None = None
              ) -> tuple[Tensor, dict[str, Tensor]]:
        """h(L) given the observed modalities; a missing one is zeroed first (never read), then
        inferred by `iters` recurrent passes (default inference.iters)."""
        missing = [m for m in self.names if m not in observed]
        batch = {k: (t if k not in missing else torch.zeros_like(t)) for k, t in batch.items()}
        if not missing:
            return torch.sigmoid(sum(self.top_input(m, self.up(m, batch[m])) for m in self.names) + self.top.b), {}
        if len(missing) == len(self.names):
            raise ConfigError("eval.queries", "a query must observe at least one modality")
        h, y = self.recurrent(batch, missing[0], self.inference["iters"] if iters is None else iters)
        return h, {missing[0]: y}
