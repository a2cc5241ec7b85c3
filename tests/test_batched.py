"""Batched members (mmrepro/batched.py, hydra/launcher=batched): a stacked member trains as its
sequential run does (step for step where the computation is deterministic; per-member
hyperparameters reach the objective), a diverging member does not stop the others, a batched
sweep writes the records a sequential one writes, and members that cannot stack run one by one."""

import json
import math

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir

from mmrepro import CONFIG_DIR
from mmrepro.batched import MemberBatches, MemberData, StackedMembers, plan_groups
from mmrepro.train import build, build_datamodule, model_inputs
from tests.conftest import records_under, run_cli

QUIET = ["trainer.enable_progress_bar=false"]


def composed(*overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", list(overrides))


def members_of(cfg, datamodule, values: list[dict]):
    out = []
    for v in values:
        L.seed_everything(v["seed"], verbose=False)
        node = cfg.model.copy()
        for k, x in v.items():
            if k != "seed":
                node[k] = x
        out.append(build("model", node, modalities=datamodule.modalities, **model_inputs(cfg.model, datamodule)))
    return out


def test_stacked_m_xo_members_train_step_for_step_as_their_sequential_runs():
    """The authors' M-xO (tanh, no dropout) is deterministic given its batches: three stacked members
    (two learning rates) end 3 epochs with the weights each reaches alone with Adam on the same batches."""
    cfg = composed("experiment=m_xo_digits", "trainer.max_epochs=3")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = [{"seed": 0, "lr": 1e-3}, {"seed": 1, "lr": 1e-3}, {"seed": 2, "lr": 3e-3}]
    alone = members_of(cfg, dm, values)
    stacked = StackedMembers(members_of(cfg, dm, values), [v["seed"] for v in values])
    for e, member in enumerate(alone):   # the same initial weights as the sequential runs
        for k, t in member.state_dict().items():
            assert torch.equal(stacked.member_state(e)[k], t), k
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(stacked, datamodule=MemberData(dm, [v["seed"] for v in values]))
    steps = trainer.global_step
    assert steps == 3 * (len(dm.split("train")["left"]) // dm.batch_size)
    for e, (member, v) in enumerate(zip(alone, values)):
        opt = torch.optim.Adam(member.parameters(), lr=v["lr"], fused=True)
        batches = MemberBatches(dm.split("train"), dm.batch_size, [v["seed"]])
        for _ in range(3):
            for batch in batches:
                loss = member.loss_terms({k: t[0] for k, t in batch.items()}, 1.0)["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
        for k, t in member.state_dict().items():
            torch.testing.assert_close(stacked.member_state(e)[k], t, rtol=1e-4, atol=1e-5, msg=f"member {e} {k}")


def test_stacked_members_resumed_from_an_epoch_end_checkpoint_draw_the_same_next_orders(tmp_path):
    """Lightning restores a loader's state only from a mid-epoch checkpoint: the members' order
    generators travel in MemberData's state, so 2 epochs + a resume to 3 equal 3 straight epochs."""
    cfg = composed("experiment=m_xo_digits")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = [{"seed": 0}, {"seed": 1}]

    def fit(epochs: int, ckpt=None):
        stacked = StackedMembers(members_of(cfg, dm, values), [0, 1])
        trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
        trainer.fit(stacked, datamodule=MemberData(dm, [0, 1]), ckpt_path=ckpt)
        return trainer, stacked

    straight = fit(3)[1]
    trainer, _ = fit(2)
    trainer.save_checkpoint(tmp_path / "epoch2.ckpt")
    resumed = fit(3, tmp_path / "epoch2.ckpt")[1]
    for e in range(2):
        for k, t in straight.member_state(e).items():
            assert torch.equal(resumed.member_state(e)[k], t), (e, k)


def test_stacked_linear_weights_are_stored_transposed_and_an_older_layouts_checkpoint_is_refused():
    """Linear weights are stored (E, in, out): each member still reads its own (out, in) weight, its
    state is its module's, the gradients arrive in the stored layout (no transposing copy), and a
    checkpoint without the layout mark (an (E, out, in) one) is refused, not loaded transposed."""
    cfg = composed("experiment=cmmd_digits", "model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]",
                   "model.classifier=[8]", "model.latent_dim=4")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    members = members_of(cfg, dm, [{"seed": 0}, {"seed": 1}])
    stacked = StackedMembers(members, [0, 1])
    weights = [k for k in stacked.keys if k in stacked.transposed]
    assert weights and all(k.endswith(".weight") for k in weights)
    for e, m in enumerate(members):
        own = m.state_dict()
        for k, t in stacked.member_state(e).items():
            assert torch.equal(t, own[k]) and t.is_contiguous(), (e, k)
    for k, p in zip(stacked.keys, stacked.stacked):
        if k in stacked.transposed:
            assert p.shape[1:] == own[k].shape[::-1]
    batch = {k: torch.stack([t] * 2) for k, t in dm.rows("train", 0, 20).items()}
    stacked.per_member("loss", batch, 1.0, batched_input=True)["loss"].sum().backward()
    assert all(p.grad.is_contiguous() for p in stacked.stacked)
    checkpoint = {}
    stacked.on_save_checkpoint(checkpoint)
    stacked.on_load_checkpoint(checkpoint)
    del checkpoint["mmrepro_batched"]["layout"]
    with pytest.raises(ValueError, match=r"\(E, out, in\)"):
        stacked.on_load_checkpoint(checkpoint)


@pytest.mark.parametrize("model", ["mrbm_pcd", "mrbm_cdpl", "mrbm_mp"])
def test_stacked_mrbm_members_step_as_their_sequential_runs(monkeypatch, model):
    """With sampling made deterministic (P > 0.5), one stacked objective step writes each member's
    own gradients, loss, hidden means and sparsity term: the ones its sequential module computes
    on its own batch from its own weights (three seeds, three different batches)."""
    from mmrepro.models import mrbm
    from mmrepro.models.components import multimodal_rbm
    from mmrepro.objectives import cd_percloss, pcd

    threshold = lambda p: (p > 0.5).to(p.dtype)  # noqa: E731
    for module in (multimodal_rbm, pcd, cd_percloss, mrbm):
        monkeypatch.setattr(module, "sample_bernoulli", threshold)
    cfg = composed(f"model={model}", "dataset=digits_halves", "model.n_hidden=24", "model.sparsity.cost=0.1")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = [{"seed": s} for s in (0, 1, 2)]
    alone = members_of(cfg, dm, values)
    stacked = mrbm.MRBMModule.stack_members(members_of(cfg, dm, values), [0, 1, 2])
    batches = [{k: t[10 * e: 10 * e + 20] for k, t in dm.split("train").items()} for e in range(3)]
    if hasattr(stacked.objective, "reset"):
        stacked.objective.reset(stacked.rbm, torch.stack([alone[0].joint(b) for b in batches]))
        for member, b in zip(alone, batches):
            member.objective.reset(member.rbm, member.joint(b))
    out = stacked.gradient_step({k: torch.stack([b[k] for b in batches]) for k in stacked.names})
    assert out["loss"].shape == (3,)
    for e, (member, b) in enumerate(zip(alone, batches)):
        own = member.gradient_step(b)
        torch.testing.assert_close(out["loss"][e], own["loss"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out["hidden_mean"][e], own["hidden_mean"], rtol=1e-5, atol=1e-6)
        for name in ("W", "b", "c"):
            torch.testing.assert_close(getattr(stacked.rbm, name).grad[e], getattr(member.rbm, name).grad,
                                       rtol=1e-4, atol=1e-6, msg=f"member {e} {name}.grad")
        state = stacked.member_state(e)
        assert state.keys() == member.state_dict().keys()
        torch.testing.assert_close(state["hidden_mean_avg"], member.hidden_mean_avg)


def test_a_diverging_stacked_mrbm_member_is_recorded_and_the_others_train_on():
    cfg = composed("model=mrbm_pcd", "dataset=digits_halves", "model.n_hidden=16")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    from mmrepro.models.mrbm import MRBMModule

    stacked = MRBMModule.stack_members(members_of(cfg, dm, [{"seed": 0}, {"seed": 1}]), [0, 1])

    class Poison(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 3:
                with torch.no_grad():
                    module.rbm.W[1] = float("nan")

    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[Poison()])
    before = stacked.rbm.W[0].detach().clone()
    trainer.fit(stacked, datamodule=MemberData(dm, [0, 1]))
    assert list(stacked.failed) == [1] and "at step 3 (epoch 0)" in stacked.failed[1]
    assert "lower model.optim.lr" in stacked.failed[1] and trainer.global_step == 20
    assert torch.isfinite(stacked.rbm.W[0]).all() and not torch.equal(stacked.rbm.W[0], before)
    assert all(math.isfinite(v) for v in stacked.curves[0]["val/loss"]) and len(stacked.curves[0]["val/loss"]) == 2


def test_a_batched_sohn14_sweep_builds_table_1_from_stacked_mrbm_members(tmp_path):
    """Table 1's three objectives, two seeds each, as three stacked groups: every member is
    recorded with its group, trains (joint-feature SVM far below chance) and fills its cell."""
    from mmrepro.tables.build import build_table

    result = run_cli("-m", "sweep=sohn14_t1_digits", "hydra/launcher=batched", "seed=0,1", "model.n_hidden=64",
                     "trainer.max_epochs=20", *QUIET, f"paths.runs_dir={tmp_path}/runs", "checkpoint.keep=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("train as one stacked model") == 3
    records = records_under(tmp_path / "runs")
    assert len(records) == 6 and all(r["status"] == "ok" and r["batched"]["size"] == 2 for r in records)
    assert all(r["metrics"]["test_error/left+right"] < 50 for r in records), [r["metrics"] for r in records]
    text = build_table("sohn14_t1", "digits", tmp_path / "runs", tmp_path / "results").read_text()
    assert "not run" not in text.split("## Results")[1].split("## ")[0]


def test_per_member_hyperparameters_reach_the_cmmd_objective():
    """With one noise draw shared by the members (randomness="same"), each stacked member's loss is
    its own module's Eq. 5 loss: omega 0 (MMD only), 0.5 and 1 (KL only) from identical weights."""
    cfg = composed("experiment=cmmd_digits")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = [{"seed": 3, "omega": w} for w in (0.0, 0.5, 1.0)]
    members = members_of(cfg, dm, values)
    stacked = StackedMembers(members, [3, 3, 3])
    batch = dm.rows("train", 0, 100)
    torch.manual_seed(7)
    terms = stacked.per_member("loss", {k: t.expand(3, *t.shape) for k, t in batch.items()}, 1.0,
                               batched_input=True, randomness="same")
    own = []
    for m in members:
        torch.manual_seed(7)
        own.append(m.loss_terms(batch, 1.0)["loss"])
    torch.testing.assert_close(terms["loss"], torch.stack(own).detach(), rtol=1e-5, atol=1e-4)
    assert len({round(float(x), 3) for x in own}) == 3   # the three omegas give three objectives


def test_a_member_at_omega_zero_gets_finite_gradients_when_the_kl_overflows():
    """A per-member omega is a tensor, so omega = 0 cannot skip the KL as a sequential run does: with
    a prior variance that underflows (the KL is inf), that member's gradient must still be finite and
    equal its own module's (where the KL is left out), not 0 * inf = NaN."""
    cfg = composed("experiment=cmmd_digits", "model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]",
                   "model.classifier=[8]", "model.latent_dim=4", "model.dropout=0")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    members = members_of(cfg, dm, [{"seed": 0, "omega": 0.0}, {"seed": 0, "omega": 0.5}])
    for m in members:   # prior log-variance -200: exp underflows to 0 in float32, the KL divides by it
        with torch.no_grad():
            m.prior_net[-1].logvar.bias.fill_(-200.0)
    stacked = StackedMembers(members, [0, 0])
    batch = dm.rows("train", 0, 50)
    torch.manual_seed(5)
    loss = stacked.per_member("loss", {k: t.expand(2, *t.shape) for k, t in batch.items()}, 1.0,
                              batched_input=True, randomness="same")["loss"]
    assert torch.isfinite(loss[0]) and not torch.isfinite(loss[1])
    grads = stacked.member_layout(torch.autograd.grad(loss[0], list(stacked.stacked)))
    torch.manual_seed(5)
    own = torch.autograd.grad(members[0].loss_terms(batch, 1.0)["loss"], list(members[0].parameters()))
    for g, o in zip(grads, own):
        assert torch.isfinite(g[0]).all()
        torch.testing.assert_close(g[0], o, rtol=1e-4, atol=1e-5)


def test_stacked_validation_runs_the_members_in_eval_mode():
    """Lightning's validation loop calls eval(): the stacked members' predictions (what val/error
    reads) are then each member's own in eval mode (CMMD's dropout off), one noise draw shared."""
    cfg = composed("experiment=cmmd_digits", "model.encoder=[32]", "model.prior=[32]", "model.decoder=[32]",
                   "model.classifier=[8]", "model.latent_dim=4", "model.dropout=0.5")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    members = members_of(cfg, dm, [{"seed": 0, "omega": 0.5}, {"seed": 1, "omega": 0.5}])
    stacked = StackedMembers(members, [0, 1])
    batch = dm.rows("val", 0, 60)
    stacked.eval()
    torch.manual_seed(2)
    probs = stacked.per_member("predict", batch, batched_input=False, randomness="same")
    for e, m in enumerate(members):
        m.eval()
        torch.manual_seed(2)
        torch.testing.assert_close(probs[e], m.predict(batch), rtol=1e-5, atol=1e-5)
    modes = {"train": set(), "val": set()}

    class Modes(L.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            modes["train"].add(module.template.training)

        def on_validation_batch_end(self, trainer, module, *args):
            modes["val"].add(module.template.training)

    stacked.train()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=1, limit_train_batches=2,
                        limit_val_batches=1, callbacks=[Modes()])
    trainer.fit(stacked, datamodule=MemberData(dm, [0, 1]))   # after validation, training has dropout again
    assert modes == {"train": {True}, "val": {False}}, modes


def test_compiled_stacked_loss_and_gradients_equal_the_eager_ones():
    """compile=...: the stacked CMMD loss through torch.compile (dynamo's trace of vmap,
    functional_call and the per-member hyperparameters; the aot_eager backend, which adds no code
    generation) gives the eager losses and gradients, random draws included, on two calls (the second
    with another warm-up beta, which reaches the graph as a tensor input)."""
    cfg = composed("experiment=cmmd_digits", "model.encoder=[16]", "model.prior=[16]", "model.decoder=[16]",
                   "model.classifier=[8]", "model.latent_dim=4")
    dm = build_datamodule(cfg.dataset)
    dm.setup()
    values = [{"seed": e, "omega": w} for e, w in enumerate((0.0, 0.5, 1.0))]
    batch = {k: torch.stack([t] * 3) for k, t in dm.rows("train", 0, 50).items()}
    results = []
    for compile in (False, "aot_eager"):
        stacked = StackedMembers(members_of(cfg, dm, values), [0, 1, 2], compile=compile)
        out = []
        for beta in (1.0, 0.5):
            torch.manual_seed(11)
            loss = stacked.per_member("loss", batch, beta, batched_input=True)["loss"]
            grads = torch.autograd.grad(loss.sum(), list(stacked.stacked))
            out.append((loss.detach(), grads))
        results.append(out)
    for (loss, grads), (loss_c, grads_c) in zip(*results):
        torch.testing.assert_close(loss_c, loss)
        for g, g_c in zip(grads, grads_c):
            torch.testing.assert_close(g_c, g)


def test_a_batched_sweep_records_each_member_and_a_diverging_member_does_not_stop_the_others(tmp_path):
    """Three CMMD members, one at a learning rate that diverges: it is recorded as failed with the
    step, the other two finish with records that carry `batched`, the table builds from them, and the
    sweep exits 1 naming the failed member. The stacked loss is compiled (the top-level compile)."""
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "sweep=cmmd_digits", "hydra/launcher=batched", "compile=aot_eager",
                     "model.omega=0.4", "seed=0,1",
                     "model.lr=0.001,1e8", "trainer.max_epochs=15", *QUIET, f"paths.runs_dir={tmp_path}",
                     f"hydra.sweep.dir={sweep}", "checkpoint.keep=false", "eval.n_latents=0", "eval.collapse_points=60",
                     timeout=600)
    assert "train as one stacked model" in result.stderr, result.stderr[-3000:]
    recs = {r["sweep"]["num"]: r for r in records_under(sweep)}
    assert len(recs) == 4
    diverged = [n for n, r in recs.items() if r["status"] == "failed"]
    assert diverged and all(recs[n]["config"]["model"]["lr"] == 1e8 for n in diverged), recs
    assert all("training loss became" in recs[n]["error"] for n in diverged)
    ok = [r for r in recs.values() if r["status"] == "ok"]
    assert {r["config"]["model"]["lr"] for r in ok} == {0.001} and len(ok) == 2
    for r in ok:
        assert r["batched"]["size"] == 4 and r["batched"]["compiled"] == "aot_eager"
        assert r["curves"]["val/error"] and r["metrics"]["test/error"] < 75   # chance: 90%
        assert (sweep / str(r["sweep"]["num"]) / ".hydra" / "config.yaml").is_file()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("mmrepro: 2 of 4 members finished; failed: ")
    built = run_cli("cmmd_digits", "--variant", "digits", "--runs-dir", str(tmp_path), "--results-dir",
                    str(tmp_path / "results"), module="mmrepro.tables")
    assert "(n=2)" in (tmp_path / "results" / "cmmd" / "cmmd_vs_mxo_digits.md").read_text(), built.stderr


def test_a_batched_sweep_builds_the_table_a_sequential_sweep_builds(tmp_path):
    """The same three M-xO members (the authors' network: deterministic but for its batch order) as a
    sequential and as a batched sweep: both tables have the row from three seeds, and its test errors
    agree in distribution (the members see other batch orders, so not number for number)."""
    errors, cells = {}, {}
    for launcher in ("basic", "batched"):
        runs = tmp_path / launcher
        result = run_cli("-m", "sweep=cmmd_digits_baselines", f"hydra/launcher={launcher}", "seed=0,1,2",
                         "trainer.max_epochs=30", *QUIET, f"paths.runs_dir={runs}", "checkpoint.keep=false")
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("train as one stacked model" in result.stderr) == (launcher == "batched")
        recs = [r for r in records_under(runs) if r["status"] == "ok"]
        assert sorted(r["seed"] for r in recs) == [0, 1, 2] and all(("batched" in r) == (launcher == "batched")
                                                                     for r in recs)
        errors[launcher] = torch.tensor([r["metrics"]["test/error"] for r in recs])
        built = run_cli("cmmd_digits", "--variant", "digits", "--runs-dir", str(runs), "--results-dir",
                        str(tmp_path / f"results_{launcher}"), module="mmrepro.tables")
        table = (tmp_path / f"results_{launcher}" / "cmmd" / "cmmd_vs_mxo_digits.md").read_text()
        cells[launcher] = next(line for line in table.splitlines() if line.startswith("| M-xO"))
        assert "(n=3)" in cells[launcher], (built.stderr, cells)
    seq, bat = errors["basic"], errors["batched"]
    assert seq.mean() < 40 and bat.mean() < 40, errors   # both trained: chance is 90%
    spread = max(seq.std(), bat.std(), torch.tensor(1.0))
    assert (seq.mean() - bat.mean()).abs() < 3 * spread, errors


def test_members_that_cannot_stack_run_one_by_one_with_a_note(tmp_path):
    result = run_cli("-m", "experiment=sohn14_t1_mdrnn", "model.pathways.left=[32,8,8]", "model.pathways.right=[32,8,8]",
                     "model.top_hidden=8", "model.stages.layer_epochs=1", "model.stages.top_epochs=1",
                     "model.stages.finetune_epochs=1", "seed=0,1", "hydra/launcher=batched", *QUIET,
                     f"paths.runs_dir={tmp_path}", "checkpoint.keep=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "run one by one: MDRNNModule does not declare MEMBER_HYPERPARAMETERS" in result.stderr
    assert sorted(r["seed"] for r in records_under(tmp_path) if r["status"] == "ok") == [0, 1]


@pytest.mark.parametrize("differ, stack", [(["seed=1"], True), (["model.omega=0.1", "model.lr=0.01"], True),
                                           (["model.encoder=[32]"], False), (["trainer.max_epochs=7"], False)])
def test_members_stack_only_when_they_differ_in_seed_lr_and_per_member_hyperparameters(differ, stack):
    configs = [composed("experiment=cmmd_digits"), composed("experiment=cmmd_digits", *differ)]
    groups, alone = plan_groups(configs)
    assert (groups == [[0, 1]]) == stack and (not alone) == stack, (groups, alone)
    json.dumps(alone)


KILLED_SWEEPS = {"cmmd": ["sweep=cmmd_digits", "model.omega=0.0,1.0", "seed=0"],        # autograd, vmap
                 "mrbm_pcd": ["sweep=sohn14_t1_digits", "experiment=sohn14_t1_mrbm_pcd", "model.n_hidden=32",
                              "seed=0,1", "trainer.check_val_every_n_epoch=1"]}           # hand-written, chains


@pytest.mark.parametrize("family", list(KILLED_SWEEPS))
def test_a_batched_sweep_killed_at_a_random_step_resumes_in_its_directory_bit_identically(tmp_path, family):
    import random
    import signal
    import time

    from tests.test_reliability import popen, wait_for

    args = ["-m", *KILLED_SWEEPS[family], "hydra/launcher=batched", "trainer.max_epochs=4",
            "checkpoint.every_n_steps=1", "checkpoint.max_cost=1", *QUIET]
    straight = run_cli(*args, f"paths.runs_dir={tmp_path}/a", f"hydra.sweep.dir={tmp_path}/a")
    assert straight.returncode == 0, straight.stderr[-3000:]
    proc = popen(*args, f"paths.runs_dir={tmp_path}/b", f"hydra.sweep.dir={tmp_path}/b")
    ckpt = wait_for("batched-*/checkpoints/last.ckpt", tmp_path / "b", proc)
    delay = random.uniform(0, 1.5)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    step = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    again = run_cli(*args, f"paths.runs_dir={tmp_path}/b", f"hydra.sweep.dir={tmp_path}/b")
    assert again.returncode == 0, f"killed at step {step}: {again.stderr[-3000:]}"
    a = {r["sweep"]["num"]: r for r in records_under(tmp_path / "a")}
    b = {r["sweep"]["num"]: r for r in records_under(tmp_path / "b")}
    where = f"killed {delay:.2f} s after the first checkpoint, at step {step}"
    assert sorted(a) == sorted(b) == [0, 1]
    for n in a:
        assert b[n]["metrics"] == a[n]["metrics"] and b[n]["curves"] == a[n]["curves"], where
        assert b[n]["training"]["final_loss"] == a[n]["training"]["final_loss"], where
    sa, sb = (torch.load(next((tmp_path / d).glob("batched-*/checkpoints/last.ckpt")), map_location="cpu",
                         weights_only=False)["state_dict"] for d in ("a", "b"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa), where
    # Killed while it evaluated its members: member 1 has no record yet; the restart evaluates it
    # from the group's final checkpoint, without training, and member 0's record stays as it was.
    kept = (tmp_path / "b" / "0" / "run.json").read_text()
    (tmp_path / "b" / "1" / "run.json").unlink()
    third = run_cli(*args, f"paths.runs_dir={tmp_path}/b", f"hydra.sweep.dir={tmp_path}/b")
    assert third.returncode == 0, third.stderr[-3000:]
    assert "sweep member 0 already finished; kept" in third.stderr
    assert (tmp_path / "b" / "0" / "run.json").read_text() == kept
    (again1,) = [r for r in records_under(tmp_path / "b") if r["sweep"]["num"] == 1]
    assert again1["metrics"] == a[1]["metrics"] and again1["training"]["checkpoint_writes"]["writes"] == 0
