"""MDRNN (Sohn et al. 2014, Sec. 3.3): the recurrent passes of Eq. 10-13 recomputed by hand, their
gradient against finite differences, the unimodal query's blindness to the target, and the staged
training (greedy layers on the probabilities below, then the joint MRBM, then finetuning of the
very weights pretraining left)."""

import lightning as L
import pytest
import torch

from mmrepro.data.modalities import Modality
from mmrepro.errors import ConfigError
from mmrepro.models.mdrnn import MDRNNModule

OPTIM = dict(lr=0.05, lr_decay=0.0, momentum=0.5, initial_momentum=0.5, momentum_warmup_epochs=0, weight_decay=0.0)
MODALITIES = [Modality("left", (3,), "bernoulli"), Modality("right", (2,), "bernoulli")]


def tiny(T=2, visible=None, seed=0, **kw):
    torch.manual_seed(seed)
    model = MDRNNModule(MODALITIES, {"left": [3, 4, 3], "right": [2, 3]}, top_hidden=4, visible=visible,
                        init_std=0.7, stages={"layer_epochs": 1, "top_epochs": 1, "finetune_epochs": 1}, optim=OPTIM,
                        top_objective={"mf_iters": 2}, finetune={"T": T}, inference={"iters": T}, **kw)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_(0, 0.5)
    return model.double()


def batch(n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"left": torch.rand(n, 3, generator=g, dtype=torch.float64).round(),
            "right": torch.rand(n, 2, generator=g, dtype=torch.float64).round()}


def by_hand(model, b, target, T):
    """Eq. 10-13 written out layer by layer for this two-pathway model."""
    sig = torch.sigmoid
    L0, L1, R0 = model.layers["left"][0], model.layers["left"][1], model.layers["right"][0]
    Wt, bt, ct = model.top.W, model.top.b, model.top.c
    Wx, Wy = (Wt[:3], Wt[3:]) if target == "right" else (Wt[3:], Wt[:3])
    cy = ct[3:] if target == "right" else ct[:3]

    def up_left(x):       # Eq. 10: x -> h_x^(1) -> h_x^(2)
        return sig(sig(x @ L0.W + L0.b) @ L1.W + L1.b)

    def up_right(y):      # Eq. 11: y -> h_y^(1)
        return sig(y @ R0.W + R0.b)

    def down_right(h):    # Eq. 13: h(L) -> h_y^(1) -> y
        return sig(sig(h @ Wy.T + cy) @ R0.W.T + R0.c)

    def down_left(h):
        return sig(sig(sig(h @ Wy.T + cy) @ L1.W.T + L1.c) @ L0.W.T + L0.c)

    up_obs, up_tgt, down = (up_left, up_right, down_right) if target == "right" else (up_right, up_left, down_left)
    x = b["left"] if target == "right" else b["right"]
    y = torch.zeros_like(b[target])
    h = sig(up_obs(x) @ Wx + up_tgt(y) @ Wy + bt)       # Eq. 12, the target at 0
    for _ in range(T):
        y = down(h)
        h = sig(up_obs(x) @ Wx + up_tgt(y) @ Wy + bt)
    return h, down(h)


@pytest.mark.parametrize("target", ["left", "right"])
@pytest.mark.parametrize("T", [0, 1, 3])
def test_recurrent_passes_follow_eq_10_to_13(target, T):
    model, b = tiny(T=3), batch()
    h, y = model.recurrent(b, target, T)
    h_ref, y_ref = by_hand(model, b, target, T)
    assert torch.allclose(h, h_ref, atol=1e-12) and torch.allclose(y, y_ref, atol=1e-12)


def test_at_t_0_the_features_are_the_bottom_up_pass_with_the_target_at_zero():
    model, b = tiny(), batch()
    h, _ = model.infer(b, ["left"], iters=0)
    both, _ = model.infer({"left": b["left"], "right": torch.zeros_like(b["right"])}, ["left", "right"])
    assert torch.allclose(h, both, atol=1e-12)


def test_the_unimodal_query_never_reads_the_target():
    model, b = tiny(), batch()
    h, inferred = model.infer(b, ["left"])
    changed = {"left": b["left"], "right": 1 - b["right"]}
    h2, inferred2 = model.infer(changed, ["left"])
    assert torch.equal(h, h2) and torch.equal(inferred["right"], inferred2["right"])
    assert not torch.equal(model.infer(b, ["left", "right"])[0], model.infer(changed, ["left", "right"])[0])


def test_finetuning_gradient_matches_finite_differences():
    model, b = tiny(T=2), batch()
    params = [model.layers["left"][0].W, model.layers["right"][0].c, model.top.W, model.top.b]
    loss = model.finetune_loss(b)
    grads = torch.autograd.grad(loss, params)
    eps = 1e-6
    for p, g in zip(params, grads):
        for idx in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                p[idx] += eps
                up = model.finetune_loss(b)
                p[idx] -= 2 * eps
                down = model.finetune_loss(b)
                p[idx] += eps
            assert float(g[idx]) == pytest.approx(float((up - down) / (2 * eps)), rel=1e-5, abs=1e-8)


def test_finetune_loss_is_the_mean_cross_entropy_of_both_directions():
    model, b = tiny(T=2), batch()
    losses = []
    for target in ("left", "right"):
        _, y = by_hand(model, b, target, 2)
        losses.append(torch.nn.functional.binary_cross_entropy(y, b[target], reduction="none").sum(1).mean())
    assert torch.allclose(model.finetune_loss(b), torch.stack(losses).mean(), atol=1e-10)


class Rows(L.LightningDataModule):
    """Binary rows in the TensorDataModule interface the module reads (split, train_split, resolve,
    train batches)."""

    train_split = "train"

    def __init__(self, n=40):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.data = {"left": torch.rand(n, 3, generator=g).round(), "right": torch.rand(n, 2, generator=g).round()}

    def split(self, name):
        return self.data

    def resolve(self, rows):
        return rows

    def train_dataloader(self):
        rows = [{k: v[i] for k, v in self.data.items()} for i in range(len(self.data["left"]))]
        return torch.utils.data.DataLoader(rows, batch_size=10)


def test_stages_train_each_layer_on_the_probabilities_below_then_finetune_the_same_weights(monkeypatch):
    torch.manual_seed(0)
    model = tiny().float()
    seen = []
    step = model.chains["left"][1].step
    monkeypatch.setattr(model.chains["left"][1], "step", lambda rbm, v, init: seen.append(v.clone()) or step(rbm, v, init))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snapshots = {}

    class Snapshot(L.Callback):
        def on_train_epoch_end(self, trainer, module):
            snapshots[module.stage_at(trainer.current_epoch)[1]] = {k: v.clone() for k, v in module.state_dict().items()}

    trainer = L.Trainer(max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        limit_val_batches=0, callbacks=[Snapshot()])
    trainer.fit(model, datamodule=Rows())
    # Level 1 of the left pathway was trained on level 0's probabilities of the data (no sample).
    assert seen and all(((v > 0) & (v < 1)).all() for v in seen)
    changed = lambda a, b, key: not torch.equal(a[key], b[key])  # noqa: E731
    level0, level1, top, fine = (snapshots[s] for s in ("level_0", "level_1", "top", "finetune"))
    assert changed(before, level0, "layers.left.0.W") and not changed(before, level0, "layers.left.1.W")
    assert not changed(level0, level1, "layers.left.0.W") and changed(level0, level1, "layers.left.1.W")
    assert not changed(level1, top, "layers.left.1.W") and changed(level1, top, "top.W")
    # Finetuning starts from the pretrained stack and moves every layer.
    assert all(changed(top, fine, k) for k in ("layers.left.0.W", "layers.right.0.W", "top.W"))


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="starts with 4 units but modality left has 3"):
        MDRNNModule(MODALITIES, {"left": [4, 3], "right": [2, 3]}, optim=OPTIM)
    with pytest.raises(ConfigError, match="T' = 5 exceeds the T = 2"):
        MDRNNModule(MODALITIES, {"left": [3, 3], "right": [2, 3]}, optim=OPTIM, finetune={"T": 2}, inference={"iters": 5})
    with pytest.raises(ConfigError, match="finetune.T"):
        MDRNNModule(MODALITIES, {"left": [3, 3], "right": [2, 3]}, optim=OPTIM, finetune={"T": -1})
    with pytest.raises(ConfigError, match="one pathway per modality"):
        MDRNNModule(MODALITIES, {"left": [3, 3]}, optim=OPTIM)


def test_a_gaussian_pathway_reconstructs_linearly_and_is_scored_by_squared_error():
    model, b = tiny(T=1, visible={"left": "gaussian"}), batch()
    b["left"] = torch.randn(5, 3, dtype=torch.float64)
    _, y = model.recurrent(b, "left", 1)
    h, _ = model.recurrent(b, "left", 1)
    L0, L1, top = model.layers["left"][0], model.layers["left"][1], model.top
    h1 = torch.sigmoid(torch.sigmoid(h @ top.W[:3].T + top.c[:3]) @ L1.W.T + L1.c)
    assert torch.allclose(y, h1 @ L0.W.T + L0.c, atol=1e-12)           # N(c + W h, I): the mean, no sigmoid
    error = model.reconstruction_error("left", y, b["left"])
    assert torch.allclose(error, 0.5 * (y - b["left"]).pow(2).sum(1), atol=1e-12)


def test_finetuning_starts_from_a_saved_stack_and_a_stack_of_other_sizes_names_its_first_differing_layer(tmp_path):
    from mmrepro.train import load_weights

    target = "mmrepro.models.mdrnn.MDRNNModule"
    stack = tiny()
    stack.chains["left"][0].chain_h = torch.rand(7, 4, dtype=torch.float64)   # chains sized by pretraining
    torch.save({"mmrepro_model": target, "state_dict": stack.state_dict()}, tmp_path / "stage_top.ckpt")
    finetune = tiny(seed=3)
    load_weights(finetune, tmp_path / "stage_top.ckpt", target)
    assert torch.equal(finetune.layers["left"][1].W, stack.layers["left"][1].W) and torch.equal(finetune.top.W, stack.top.W)
    other = MDRNNModule(MODALITIES, {"left": [3, 5, 3], "right": [2, 3]}, top_hidden=4, optim=OPTIM,
                        stages={"layer_epochs": 1, "top_epochs": 1, "finetune_epochs": 1}).double()
    with pytest.raises(ConfigError, match=r"the first layers\.left\.0\.W \(saved \(3, 4\), here \(3, 5\)\)"):
        load_weights(other, tmp_path / "stage_top.ckpt", target)


def test_layer_lr_sets_each_pretrained_layers_rate_and_names_bad_pathways():
    model = MDRNNModule(MODALITIES, {"left": [3, 4, 3], "right": [2, 3]}, top_hidden=4, optim=OPTIM,
                        layer_lr={"left": [0.001]}, stages={"layer_epochs": 1, "top_epochs": 1, "finetune_epochs": 1})
    level_0 = model.configure_optimizers()[0][0]
    assert [g["lr"] for g in level_0.param_groups] == [0.001, 0.001, 0.05, 0.05]   # left's layer 0, right's layer 0
    with pytest.raises(ConfigError, match="names no pathway: middle"):
        MDRNNModule(MODALITIES, {"left": [3, 3], "right": [2, 3]}, optim=OPTIM, layer_lr={"middle": [0.1]})
    with pytest.raises(ConfigError, match="lists 2 learning rates for the 1 layers of pathway left"):
        MDRNNModule(MODALITIES, {"left": [3, 3], "right": [2, 3]}, optim=OPTIM, layer_lr={"left": [0.1, 0.1]})
