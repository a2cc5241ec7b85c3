"""MRBMModule: trains the multimodal RBM of Sohn et al. 2014 with one of three objectives.

The objective (PersistentCD, CDPercLoss or MultiPrediction; config `model.objective`) writes the
gradients; this module owns the optimiser and the hidden-sparsity regulariser (as every RBM model
sets them up: components/rbm_training.py), the NaN guard, and inference for evaluation. Choices the
paper leaves open are the authors' code's, documented in configs/model/_mrbm.yaml:
- sparsity: Lee et al. (2008)-style bias-only update b += lr * cost * (target - q), q a running
  average (damping) of the hidden means on the data, for all three objectives (the authors' code
  uses this form for PCD/CD-PercLoss and a penalty on the final mean-field h for MP);
- visible biases start at logit(training mean), hidden biases at 0, W ~ N(0, init_std^2).
StackedMRBM trains the seeds of a batched sweep (hydra/launcher=batched) as one model.
"""

from __future__ import annotations

import copy

import hydra
import lightning as L
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn import functional as F

from mmrepro.batched import MemberBookkeeping
from mmrepro.compiling import note_eager
from mmrepro.data.modalities import as_modalities
from mmrepro.errors import ConfigError, check_choice, check_range
from mmrepro.models.components.multimodal_rbm import MEAN_FIELD_INITS, MultimodalRBM, sample_bernoulli
from mmrepro.models.components.rbm_training import checked_optim, checked_sparsity, set_momentum, sgd, sparsity_update
from mmrepro.models.guards import check_finite_loss
from mmrepro.models.validation import forked_rng, log_val


class MRBMModule(L.LightningModule):
    MEMBER_HYPERPARAMETERS = ()   # a batched sweep stacks members that differ in their seed only

    def __init__(self, modalities, objective, n_hidden: int = 1024, init_std: float = 0.01,
                 optim: dict | None = None, sparsity: dict | None = None, inference: dict | None = None):
        super().__init__()
        modalities = as_modalities(modalities)
        if isinstance(objective, dict):  # a checkpoint's hyperparameters: the objective's config
            objective = hydra.utils.instantiate(objective)
        if len(modalities) != 2 or any(m.likelihood != "bernoulli" for m in modalities):
            got = ", ".join(f"{m.name} ({m.likelihood})" for m in modalities)
            raise ConfigError("dataset", f"the MRBM needs exactly two bernoulli modalities, got {got}")
        self.modalities = list(modalities)
        self.names = [m.name for m in modalities]
        check_range("n_hidden", n_hidden, 1, integer=True)
        check_range("init_std", init_std, 0, lo_inclusive=False)
        self.optim = checked_optim(optim or {})
        self.sparsity = checked_sparsity(sparsity)
        self.inference = dict(inference or {"init": "zeros", "iters": 10, "tol": 1e-5})
        check_choice("inference.init", self.inference["init"], MEAN_FIELD_INITS)
        check_range("inference.iters", self.inference["iters"], 0, integer=True)
        check_range("inference.tol", self.inference["tol"], 0)

        self.automatic_optimization = False
        self.rbm = MultimodalRBM([m.dim for m in modalities], n_hidden, init_std)
        self.objective = objective
        self.register_buffer("hidden_mean_avg", torch.full((n_hidden,), float(self.sparsity["target"])))
        self.last_finite_loss = float("nan")

    # --- set-up ---------------------------------------------------------------------------------
    def joint(self, batch: dict[str, Tensor]) -> Tensor:
        return torch.cat([batch[name] for name in self.names], -1)

    @staticmethod
    def stack_members(members: list[MRBMModule], seeds: list[int], compile: bool | str = False) -> StackedMRBM:
        if compile:
            note_eager("StackedMRBM", compile)
        return StackedMRBM(members, seeds)

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        dm = self.trainer.datamodule
        train = self.joint(dm.split("train")).to(self.device)
        with torch.no_grad():   # stacked members (StackedMRBM): every member's biases and chains
            self.rbm.c.copy_(torch.logit(train.mean(0).clamp(1e-3, 1 - 1e-3)))
            if hasattr(self.objective, "reset"):
                first = train[: dm.batch_size].expand(*self.rbm.W.shape[:-2], -1, -1)
                self.objective.reset(self.rbm, sample_bernoulli(first))

    def configure_optimizers(self):
        opt, sched = sgd([([self.rbm.W], [self.rbm.b, self.rbm.c], None)], self.optim)
        return [opt], [sched]

    def on_train_epoch_start(self) -> None:
        set_momentum(self.optimizers(), self.optim, self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self.lr_schedulers().step()

    # --- training -------------------------------------------------------------------------------
    def gradient_step(self, batch: dict[str, Tensor]) -> dict:
        """The objective's gradients and the sparsity term, written into the RBM's .grad."""
        v = self.joint(batch)
        if self.objective.resample_inputs:
            v = sample_bernoulli(v)
        out = self.objective.step(self.rbm, v, self.inference["init"])
        sparsity_update(self.rbm, self.hidden_mean_avg, out["hidden_mean"], self.sparsity)
        return out

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self.gradient_step(batch)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for p in self.rbm.parameters():
                dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
        self.optimizers().step()
        check_finite_loss(self, out["loss"], "model.optim.lr")
        if self.global_step % self.trainer.log_every_n_steps == 0:  # self.log costs ~5% of a PCD step
            self.log("train/loss", out["loss"], prog_bar=True, batch_size=len(batch[self.names[0]]))

    def val_terms(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """val/xent_<m>: -log P(m | the other modality) under mean-field inference (Eq. 8, the query
        the tables evaluate), nats per example (per member, for a stacked batch); val/loss: their mean."""
        with forked_rng(self.device):
            xents = {}
            for missing in self.names:
                _, probs = self.infer(batch, [n for n in self.names if n != missing])
                # nan_to_num: a diverged stacked member must not stop the others' validation
                p = probs[missing].nan_to_num(0.5).clamp(1e-7, 1 - 1e-7)
                xents[f"val/xent_{missing}"] = F.binary_cross_entropy(p, batch[missing].reshape(p.shape),
                                                                      reduction="none").sum(-1).mean(-1)
        return {**xents, "val/loss": torch.stack(list(xents.values())).mean(0)}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        size = len(batch[self.names[0]])
        for name, value in self.val_terms(batch).items():
            log_val(self, name, value, size)

    # --- inference (Eq. 6 with every modality, Eq. 8 with one missing) -------------------------
    @torch.no_grad()
    def infer(self, batch: dict[str, Tensor], observed: list[str]) -> tuple[Tensor, dict[str, Tensor]]:
        """Hidden probabilities given the observed modalities, and P(v=1) of each missing one."""
        missing = [n for n in self.names if n not in observed]
        # Missing modalities are zeroed before anything reads them: inference cannot peek.
        v = self.joint({k: (t if k in observed else torch.zeros_like(t)) for k, t in batch.items()})
        if not missing:
            return self.rbm.hidden_probs(v), {}
        if len(missing) == len(self.names):
            raise ConfigError("eval.queries", "a query must observe at least one modality")
        target = self.names.index(missing[0])
        h, logits = self.rbm.mean_field(v, target, self.inference["iters"], self.inference["init"],
                                        tol=self.inference["tol"] or None)
        return h, {missing[0]: torch.sigmoid(logits)}


class StackedMRBM(MemberBookkeeping, L.LightningModule):
    """E MRBM members of one config (their own seeds) as one model, for a batched sweep: the RBM's
    parameters, the sparsity averages and the objective's state (PCD chains) carry a leading member
    dimension (MultimodalRBM.stacked), and one objective step writes every member's hand-written
    gradient with batched products. Per member: initial weights (built from its seed), batch order
    (MemberData), NaN guard and records. The noise is one stream for all members, so a member
    matches its sequential run in distribution, and step for step where the sampling is made
    deterministic (tests/test_batched.py). Not compiled (with `compile` set, a one-line note says so)."""

    def __init__(self, members: list[MRBMModule], seeds: list[int]):
        super().__init__()
        first = members[0]
        self.init_members(len(members))
        self.seeds = list(seeds)
        self.names, self.optim, self.sparsity, self.inference = first.names, first.optim, first.sparsity, first.inference
        self.automatic_optimization = False
        self.rbm = MultimodalRBM.stacked([m.rbm for m in members])
        self.objective = copy.deepcopy(first.objective)
        self.register_buffer("hidden_mean_avg", torch.stack([m.hidden_mean_avg for m in members]))

    joint, setup, gradient_step, val_terms = MRBMModule.joint, MRBMModule.setup, MRBMModule.gradient_step, MRBMModule.val_terms
    infer, configure_optimizers = MRBMModule.infer, MRBMModule.configure_optimizers
    on_train_epoch_start, on_train_epoch_end = MRBMModule.on_train_epoch_start, MRBMModule.on_train_epoch_end

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self.gradient_step(batch)          # batch: (E, B, ...) per modality, each member's own
        alive = self.alive_members(out["loss"], "model.optim.lr")
        if not alive.all():                      # a failed member's non-finite gradient is not applied
            for p in self.rbm.parameters():
                p.grad[~alive] = 0
        self.optimizers().step()
        self.log_train_loss(out["loss"], alive, batch[self.names[0]].shape[1])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        stacked = {k: t.expand(self.size, *t.shape) for k, t in batch.items() if k in self.names}
        self.record_val(self.val_terms(stacked), len(batch[self.names[0]]))

    def member_state(self, e: int) -> dict[str, Tensor]:
        """Member e's MRBMModule state_dict."""
        return {k: t[e].clone() for k, t in self.state_dict().items()}
